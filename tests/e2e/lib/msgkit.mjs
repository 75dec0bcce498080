// Helpers for the messaging e2e tests (messaging, flows, smpp, crash): polling with timeouts,
// consent shortcuts and outbox queries. Nothing here sleeps for a fixed time to "let things
// settle": every wait is a poll for a condition, with a deadline that names what was awaited.

import assert from 'node:assert/strict';
import { allPages } from './server.mjs';

/** The sanitizer build is ~3x slower: scale deadlines when CONSENTD_BIN points at it. */
export const SLOW = Number(process.env.CONSENTD_E2E_SLOW) ||
    (/asan|sanitize/i.test(process.env.CONSENTD_BIN || '') ? 3 : 1);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll fn() until it returns a truthy value (returned) or the deadline passes (throws, naming
 * `what` and the last value or error seen).
 */
export async function waitFor(fn, { timeout = 10000, interval = 25, what = 'condition' } = {}) {
    const deadline = Date.now() + timeout * SLOW;
    let last;
    let lastErr;
    for (;;) {
        try {
            last = await fn();
            lastErr = undefined;
            if (last) return last;
        } catch (e) {
            lastErr = e;
        }
        if (Date.now() > deadline) {
            const seen = lastErr ? `last error: ${lastErr.stack || lastErr}` :
                `last value: ${JSON.stringify(last)?.slice(0, 2000)}`;
            throw new Error(`timed out after ${timeout * SLOW} ms waiting for ${what}; ${seen}`);
        }
        await sleep(interval);
    }
}

/** POST /consents and insist on 201. */
export async function setConsent(srv, phone, state, { scope = 'all', key, channel } = {}) {
    const body = { phone, scope, state };
    if (channel) body.channel = channel;
    const r = await srv.v1('POST', '/consents', { body, key });
    assert.equal(r.status, 201, `POST /consents ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

export const optIn = (srv, phone, opts) => setConsent(srv, phone, 'opted_in', opts);

/** POST /senders and insist on 201. */
export async function addSender(srv, number, { key, transport, isDefault } = {}) {
    const body = { number };
    if (transport) body.transport = transport;
    if (isDefault !== undefined) body.default = isDefault;
    const r = await srv.v1('POST', '/senders', { body, key });
    assert.equal(r.status, 201, `POST /senders ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

/** PATCH /settings and insist on 200. */
export async function patchSettings(srv, body, { key } = {}) {
    const r = await srv.v1('PATCH', '/settings', { body, key });
    assert.equal(r.status, 200, `PATCH /settings ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

/** Every message matching the filters (all pages, newest first). */
export async function listMessages(srv, filters = {}, { key } = {}) {
    const q = new URLSearchParams({ limit: '1000', ...filters });
    const pages = await allPages(srv, `/messages?${q}`, { key });
    return pages.flatMap((p) => p.data);
}

/** GET /messages/{id} and insist on 200. */
export async function getMessage(srv, id, { key } = {}) {
    const r = await srv.v1('GET', `/messages/${encodeURIComponent(id)}`, { key });
    assert.equal(r.status, 200, `GET /messages/${id}: ${r.text}`);
    return r.json;
}

/** Wait until message `id` has one of `statuses` (a string or an array); returns the message. */
export async function waitStatus(srv, id, statuses, { key, timeout = 10000 } = {}) {
    const want = [].concat(statuses);
    return waitFor(async () => {
        const m = await getMessage(srv, id, { key });
        return want.includes(m.status) ? m : false;
    }, { timeout, what: `message ${id} to reach ${want.join('|')}` });
}

/** POST /inbound and insist on 200. */
export async function inbound(srv, from, to, text, { key, provider_id } = {}) {
    const body = { from, to, text };
    if (provider_id) body.provider_id = provider_id;
    const r = await srv.v1('POST', '/inbound', { body, key });
    assert.equal(r.status, 200, `POST /inbound ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

/** The ledger events of one phone, oldest first. */
export async function eventsOf(srv, phone, { key } = {}) {
    const pages = await allPages(srv, `/events?phone=${encodeURIComponent(phone)}`, { key });
    return pages.flatMap((p) => p.data);
}

/** GET /check -> {allowed, reason}. */
export async function check(srv, phone, { scope = 'all', key } = {}) {
    const q = new URLSearchParams({ to: phone, scope });
    const r = await srv.v1('GET', `/check?${q}`, { key });
    assert.equal(r.status, 200, `GET /check ${q}: ${r.text}`);
    return r.json;
}

/** "HH:MM" of a Date in an IANA time zone. */
export function hhmmIn(date, timeZone) {
    const s = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
        .format(date);
    return s;
}

/**
 * Throws if consentd's stderr holds a sanitizer report. UBSan reports ("runtime error:") do not
 * stop the process under the default options, so a clean exit alone does not prove a clean run.
 */
export function assertNoSanitizerReport(srv) {
    const err = srv.stderr();
    const m = err.match(/^.*(runtime error:|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer).*$/m);
    if (m) {
        const i = err.indexOf(m[0]);
        throw new Error(`sanitizer report in consentd's stderr:\n${err.slice(Math.max(0, i - 200), i + 3000)}`);
    }
}
