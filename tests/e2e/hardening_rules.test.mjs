// Issue 8 (consent safety and hardening), the rules part: items 2 (a flow never lifts an
// opt-out), 3 (the opt-out words cannot be configured away), 5 (caps on consent-exempt
// replies), 10 (time zones are checked when they are set) and 13 (the confirmation page).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, num, request, createAccount } from './lib/server.mjs';
import {
    waitFor, setConsent, optIn, addSender, patchSettings, listMessages, inbound, eventsOf, check,
    assertNoSanitizerReport,
} from './lib/msgkit.mjs';

let srv;
const SENDER = num(199);
let next = 0;
const fresh = () => num(next++);
let group; // "group:ID"

before(async () => {
    srv = await startServer({ accounts: ['acme', 'kw', 'caps', 'caps2'] });
    await addSender(srv, SENDER, { isDefault: true });
    const g = await srv.v1('POST', '/groups', { body: { name: 'news' } });
    assert.equal(g.status, 201, g.text);
    group = `group:${g.json.id}`;
});
after(async () => {
    await srv?.stop();
    if (srv) assertNoSanitizerReport(srv);
});

const keyOf = (name) => ({ key: srv.accounts[name].api_key });

async function startFlow(body, opts) {
    const r = await srv.v1('POST', '/flows', { body: { channel: 'sms', ...body }, ...opts });
    assert.equal(r.status, 201, `POST /flows ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

async function getFlow(id, opts) {
    const r = await srv.v1('GET', `/flows/${encodeURIComponent(id)}`, opts);
    assert.equal(r.status, 200, r.text);
    return r.json;
}

/** all opted in, `group` opted out: the scenario of issue 8 item 2. */
async function optedOutOfGroup() {
    const phone = fresh();
    await optIn(srv, phone);
    await setConsent(srv, phone, 'opted_out', { scope: group });
    assert.equal((await check(srv, phone, { scope: group })).reason, 'opted_out');
    return phone;
}

// ---- item 2: starting a double opt-in does not lift a scope opt-out ----

test('item 2: a flow for an opted-out scope leaves it opted out until confirmed', async () => {
    // Issue 8 item 2: "A flow never changes an opted_out state; only its confirmation does,
    // and then the ledger shows it."
    const phone = await optedOutOfGroup();
    const before = (await eventsOf(srv, phone)).length;
    const f = await startFlow({ phone, scopes: [group] });
    assert.equal(f.status, 'pending');
    assert.equal(f.message?.kind, 'cta', 'the person is still asked');
    const c = await check(srv, phone, { scope: group });
    assert.equal(c.allowed, false, JSON.stringify(c));
    assert.equal(c.reason, 'opted_out');
    const s = await srv.v1('POST', '/messages', { body: { to: phone, text: 'news', scope: group } });
    assert.equal(s.status, 422, s.text);
    assert.equal(errorOf(s).code, 'opted_out');
    assert.equal((await eventsOf(srv, phone)).length, before, 'starting a flow writes no state over the opt-out');
    const r = await srv.v1('POST', `/flows/${f.id}/confirm`);
    assert.equal(r.status, 200, r.text);
    assert.equal((await check(srv, phone, { scope: group })).reason, 'opted_in');
    const last = (await eventsOf(srv, phone)).at(-1);
    assert.equal(last.scope, group);
    assert.equal(last.old_state, 'opted_out');
    assert.equal(last.new_state, 'opted_in');
});

test('item 2: cancelling such a flow keeps the opt-out', async () => {
    const phone = await optedOutOfGroup();
    const f = await startFlow({ phone, scopes: [group] });
    const r = await srv.v1('POST', `/flows/${f.id}/cancel`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'cancelled');
    assert.equal((await check(srv, phone, { scope: group })).reason, 'opted_out');
    const ev = await eventsOf(srv, phone);
    assert.ok(!ev.some((e) => e.scope === group && e.new_state !== 'opted_out'), JSON.stringify(ev));
});

test('item 2: expiry of such a flow keeps the opt-out', async () => {
    const phone = await optedOutOfGroup();
    const f = await startFlow({ phone, scopes: [group], ttl_seconds: 1 });
    await waitFor(async () => (await getFlow(f.id)).status === 'expired',
        { timeout: 8000, what: `flow ${f.id} to expire` });
    assert.equal((await check(srv, phone, { scope: group })).reason, 'opted_out');
    assert.equal((await check(srv, phone)).reason, 'opted_in');
});

test('item 2: a pending scope next to an opted-out one: only the pending one is withdrawn', async () => {
    const phone = fresh();
    await setConsent(srv, phone, 'opted_out', { scope: group });
    const f = await startFlow({ phone, scopes: ['all', group] });
    assert.equal((await check(srv, phone)).reason, 'pending_confirmation');
    assert.equal((await check(srv, phone, { scope: group })).reason, 'opted_out');
    await srv.v1('POST', `/flows/${f.id}/cancel`);
    assert.equal((await check(srv, phone)).reason, 'no_consent');
    assert.equal((await check(srv, phone, { scope: group })).reason, 'opted_out');
});

// ---- item 3: the opt-out words cannot be configured away ----

test('item 3: a start or help word that is an opt-out word is refused with 422', async () => {
    // Issue 8 item 3: "a word that would be both is refused with 422"; DESIGN 3.
    const k = keyOf('kw');
    const cases = [
        [{ stop: ['XYZ'], start: ['STOP'] }, 'keywords.start'],
        [{ start: ['GO', 'unsubscribe'] }, 'keywords.start'],
        [{ stop: ['XYZ'], help: ['xyz'] }, 'keywords.help'],
        [{ help: ['Quit'] }, 'keywords.help'],
        [{ start: ['GO'], help: ['GO'] }, 'keywords.help'],
        [{ stop: ['YES'] }, 'keywords.stop'],
    ];
    for (const [keywords, field] of cases) {
        const r = await srv.v1('PATCH', '/settings', { body: { keywords }, ...k });
        assert.equal(r.status, 422, `${JSON.stringify(keywords)}: ${r.text}`);
        const e = errorOf(r);
        assert.equal(e.code, 'keyword_conflict', JSON.stringify(keywords));
        assert.equal(e.field, field, JSON.stringify(keywords));
    }
    for (const keywords of [{ stop: [' X'] }, { stop: ['A\tB'] }, { start: ['x'.repeat(32)] }]) {
        const r = await srv.v1('PATCH', '/settings', { body: { keywords }, ...k });
        assert.equal(r.status, 422, `${JSON.stringify(keywords)}: ${r.text}`);
        assert.equal(errorOf(r).code, 'invalid_field');
    }
    const g = await srv.v1('GET', '/settings', k);
    assert.equal(g.json.keywords, undefined, 'nothing refused was stored');
});

test('item 3: STOP still opts out after a PATCH that tried to remove it', async () => {
    // Issue 8 item 3: "The default opt-out words of DESIGN section 3 are always opt-out words;
    // accounts may add words".
    const k = keyOf('kw');
    const ours = num(198);
    await addSender(srv, ours, { ...k, isDefault: true });
    const bad = await srv.v1('PATCH', '/settings', { body: { keywords: { stop: ['XYZ'], start: ['STOP'] } }, ...k });
    assert.equal(bad.status, 422, bad.text);
    await patchSettings(srv, { keywords: { stop: ['XYZ'], start: ['GO'] } }, k);
    const a = fresh();
    await optIn(srv, a, k);
    assert.equal((await inbound(srv, a, ours, 'STOP', k)).action, 'opted_out');
    assert.equal((await check(srv, a, k)).reason, 'opted_out');
    assert.equal((await inbound(srv, a, ours, 'go', k)).action, 'opted_in');
    assert.equal((await inbound(srv, a, ours, 'xyz', k)).action, 'opted_out', 'an added word opts out too');
    for (const w of ['STOPALL', 'unsubscribe', 'Cancel', 'END', 'quit', 'REVOKE', 'optout']) {
        const b = fresh();
        await optIn(srv, b, k);
        assert.equal((await inbound(srv, b, ours, w, k)).action, 'opted_out', w);
    }
    await patchSettings(srv, { keywords: null }, k);
});
