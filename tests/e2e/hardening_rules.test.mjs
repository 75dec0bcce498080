// Issue 8 (consent safety and hardening), the rules part: items 2 (a flow never lifts an
// opt-out), 3 (the opt-out words cannot be configured away), 5 (caps on consent-exempt
// replies), 10 (time zones are checked when they are set) and 13 (the confirmation page).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, num, request, runCli, makeTempDir } from './lib/server.mjs';
import {
    waitFor, setConsent, optIn, addSender, patchSettings, listMessages, inbound, eventsOf, check, hhmmIn,
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

// ---- item 5: caps on consent-exempt messages ----

const refusedRateLimited = (m) => m.status === 'refused' && m.reason === 'rate_limited' &&
    m.history.some((h) => h.status === 'refused' && h.detail === 'rate_limited');

test('item 5: the 6th CTA to a number in a day is stored refused rate_limited; the flow is still made', async () => {
    // Issue 8 item 5: "by default at most 5 CTAs per number per 24 hours ... what is over the
    // cap is stored as refused with reason rate_limited".
    const k = keyOf('caps');
    const phone = fresh();
    for (let i = 0; i < 5; i++) {
        const f = await startFlow({ phone, scopes: ['all'] }, k);
        assert.notEqual(f.message.status, 'refused', `CTA ${i + 1}: ${JSON.stringify(f.message)}`);
    }
    const f6 = await startFlow({ phone, scopes: ['all'] }, k);
    assert.equal(f6.status, 'pending', 'the API call itself succeeds');
    assert.ok(refusedRateLimited(f6.message), JSON.stringify(f6.message));
    const ctas = await listMessages(srv, { to: phone, kind: 'cta' }, k);
    assert.equal(ctas.length, 6);
    assert.equal(ctas.filter((m) => m.status === 'refused').length, 1);
    // Per number and per account: another number, and the same number in another account, are not capped.
    const other = await startFlow({ phone: fresh(), scopes: ['all'] }, k);
    assert.notEqual(other.message.status, 'refused');
    const elsewhere = await startFlow({ phone, scopes: ['all'] }, keyOf('caps2'));
    assert.notEqual(elsewhere.message.status, 'refused');
    // A refused CTA does not count: the cap stays at 5 sent, whatever is tried.
    const f7 = await startFlow({ phone, scopes: ['all'] }, k);
    assert.ok(refusedRateLimited(f7.message), JSON.stringify(f7.message));
});

test('item 5: the 4th HELP reply to a number in an hour is refused; the STOP confirmation never is', async () => {
    // Issue 8 item 5: "at most 3 HELP replies per number per hour"; DESIGN 2: the one
    // confirmation of an opt-out is allowed without consent.
    const k = keyOf('caps');
    const phone = fresh();
    for (let i = 0; i < 4; i++) assert.equal((await inbound(srv, phone, SENDER, 'HELP', k)).action, 'help');
    let replies = await listMessages(srv, { to: phone, kind: 'keyword_reply' }, k);
    assert.equal(replies.length, 4);
    assert.equal(replies.filter((m) => m.status !== 'refused').length, 3, JSON.stringify(replies));
    assert.ok(refusedRateLimited(replies[0]), 'the newest (4th) is refused');
    assert.equal((await inbound(srv, phone, SENDER, 'info', k)).action, 'help');
    assert.equal((await inbound(srv, phone, SENDER, 'STOP', k)).action, 'opted_out');
    replies = await listMessages(srv, { to: phone, kind: 'keyword_reply' }, k);
    assert.equal(replies.length, 6);
    assert.notEqual(replies[0].status, 'refused', `the STOP confirmation: ${JSON.stringify(replies[0])}`);
    assert.ok(refusedRateLimited(replies[1]), 'the 5th HELP is refused too');
});

test('item 5: a caller-supplied CTA text over 4 SMS parts -> 422 text_too_long', async () => {
    // Issue 8 item 5: "A CTA's caller-supplied text is limited to 4 SMS parts."
    const phone = fresh();
    const r = await srv.v1('POST', '/flows', {
        body: { phone, scopes: ['all'], channel: 'sms', disclosure: 'a'.repeat(153 * 4 + 1) },
    });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorOf(r).code, 'text_too_long');
    assert.equal(errorOf(r).field, 'disclosure');
    assert.deepEqual(await listMessages(srv, { to: phone }), []);
    assert.equal((await check(srv, phone)).reason, 'no_consent', 'nothing was written');
    const f = await startFlow({ phone, scopes: ['all'], disclosure: 'a'.repeat(153 * 4) });
    assert.equal(f.message.parts, 4);
});

test('item 5: the caps are settings, shown with their defaults and validated', async () => {
    const k = keyOf('caps2');
    const g = await srv.v1('GET', '/settings', k);
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.json.exempt_caps, {
        cta: { limit: 5, window_seconds: 86400 }, help: { limit: 3, window_seconds: 3600 },
    });
    for (const exempt_caps of [
        [], { cta: 5 }, { sms: { limit: 1 } }, { cta: { limit: -1 } }, { cta: { limit: '2' } },
        { help: { window_seconds: 0 } }, { help: { limit: 1, burst: 2 } },
    ]) {
        const r = await srv.v1('PATCH', '/settings', { body: { exempt_caps }, ...k });
        assert.equal(r.status, 422, `${JSON.stringify(exempt_caps)}: ${r.text}`);
        assert.equal(errorOf(r).field, 'exempt_caps');
    }
    const s = await patchSettings(srv, { exempt_caps: { cta: { limit: 1 }, help: { limit: 0 } } }, k);
    assert.deepEqual(s.exempt_caps, {
        cta: { limit: 1, window_seconds: 86400 }, help: { limit: 0, window_seconds: 3600 },
    });
    const phone = fresh();
    assert.notEqual((await startFlow({ phone, scopes: ['all'] }, k)).message.status, 'refused');
    assert.ok(refusedRateLimited((await startFlow({ phone, scopes: ['all'] }, k)).message));
    await inbound(srv, phone, SENDER, 'HELP', k);
    const [help] = await listMessages(srv, { to: phone, kind: 'keyword_reply' }, k);
    assert.ok(refusedRateLimited(help), JSON.stringify(help));
    const back = await patchSettings(srv, { exempt_caps: null }, k);
    assert.deepEqual(back.exempt_caps, g.json.exempt_caps);
});

// ---- item 10: time zones ----

test('item 10: account create refuses a time zone that cannot be loaded', async () => {
    // Issue 8 item 10: "A zone that cannot be loaded is an error when it is set, not a silent skip."
    const dbPath = `${await makeTempDir()}/tz.db`;
    for (const tz of ['Mars/Olympus', 'America/Nowhere', 'GMT+5', 'Etc/Unknown']) {
        const r = await runCli(['account', 'create', 'zoned', '--timezone', tz], { dbPath });
        assert.notEqual(r.code, 0, `${tz}: ${r.stdout}`);
        assert.match(r.stderr, /unknown time zone/, tz);
        assert.match(r.stderr, /timezone/, tz);
    }
    const ok = await runCli(['account', 'create', 'zoned', '--timezone', 'America/New_York'], { dbPath });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.json.timezone, 'America/New_York');
});

test('item 10: quiet hours hold in the account\'s zone without the system\'s tzdata', async () => {
    // Issue 8 item 10: "without tzdata quiet hours are silently skipped" -- glibc reads zones
    // from TZDIR; ICU carries its own zone data.
    const s2 = await startServer({ accounts: [{ name: 'tokyo', timezone: 'Asia/Tokyo' }],
        env: { TZDIR: '/nonexistent-tzdata' } });
    try {
        const k = { key: s2.accounts.tokyo.api_key };
        const to = num(5);
        await optIn(s2, to, k);
        const now = Date.now();
        // A window around Tokyo's time of day, which never contains UTC's (+9 h).
        await patchSettings(s2, { quiet_hours: {
            start: hhmmIn(new Date(now - 30 * 60000), 'Asia/Tokyo'),
            end: hhmmIn(new Date(now + 30 * 60000), 'Asia/Tokyo'),
        } }, k);
        const t0 = Date.now();
        const r = await s2.v1('POST', '/messages', { body: { to, text: 'Tokyo night sale' }, ...k });
        assert.equal(r.status, 202, r.text);
        const h = r.json.history.find((x) => /held for quiet hours until/.test(x.detail ?? ''));
        assert.ok(h, `held in Tokyo's night: ${JSON.stringify(r.json.history)}`);
        const until = Date.parse(h.detail.match(/until (\S+)/)[1]);
        const expected = t0 - (t0 % 60000) + 30 * 60000;
        assert.ok(Math.abs(until - expected) <= 60000, `${h.detail}; expected about ${new Date(expected).toISOString()}`);
    } finally {
        await s2.stop();
        assertNoSanitizerReport(s2);
    }
});

// ---- item 13 (part): the confirmation page ----

function assertNoFraming(r, what) {
    assert.equal(r.headers['x-frame-options'], 'DENY', what);
    const csp = r.headers['content-security-policy'] ?? '';
    assert.match(csp, /frame-ancestors 'none'/, `${what}: ${csp}`);
    assert.match(csp, /default-src 'none'/, `${what}: ${csp}`);
    assert.match(csp, /form-action 'self'/, `${what}: ${csp}`);
}

test('item 13: the confirmation page posts to its fixed path and forbids framing', async () => {
    // Issue 8 item 13: "the confirmation page posts to a fixed path and forbids framing".
    const phone = fresh();
    const f = await startFlow({ phone, scopes: ['all'], channel: 'email', email: 'ann@example.com' });
    const path = new URL(f.confirm_url).pathname;
    assert.match(path, /^\/c\/[^/]+$/);
    // The same page however the path was spelled: the form names the one path of this flow.
    for (const p of [path, `${path}?next=//evil.example/`, path.replaceAll('.', '%2E')]) {
        const g = await request(srv.url, 'GET', p);
        assert.equal(g.status, 200, `${p}: ${g.text}`);
        assertNoFraming(g, `GET ${p}`);
        const forms = [...g.text.matchAll(/<form\b[^>]*>/gi)].map((m) => m[0]);
        assert.equal(forms.length, 1, g.text);
        assert.match(forms[0], /method="post"/i);
        const action = forms[0].match(/action="([^"]*)"/i)?.[1];
        assert.equal(action, path, `the form posts to ${path}: ${forms[0]}`);
    }
    const bad = await request(srv.url, 'GET', '/c/garbage');
    assert.equal(bad.status, 404);
    assertNoFraming(bad, 'the 404 page');
    const p = await request(srv.url, 'POST', path);
    assert.equal(p.status, 200, p.text);
    assertNoFraming(p, 'the confirmed page');
    assert.equal((await getFlow(f.id)).status, 'confirmed');
});
