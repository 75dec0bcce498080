// Messaging on the sink transport (issue 4 items 1, 3, 5, 6; DESIGN 2 "consent"/"message", 3, 4, 7):
// consent-gated send, input validation, senders and settings, quiet hours, inbound keywords.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, num, RFC3339_UTC } from './lib/server.mjs';
import {
    waitFor, setConsent, optIn, addSender, patchSettings, listMessages, getMessage, waitStatus,
    inbound, eventsOf, check, hhmmIn,
    assertNoSanitizerReport,
} from './lib/msgkit.mjs';

let srv;
let beta; // keys
const SENDER = num(190); // acme's default sender
const SENDER2 = num(191); // acme's second sender
const BETA_SENDER = num(192);
let next = 0;
/** A number no other test in this file uses. */
const fresh = () => num(next++);

const STOP_REPLY = 'ACME: You are unsubscribed and will get no more messages. Reply START to resubscribe.';
const START_REPLY = 'ACME: You are subscribed. Msg&data rates may apply. Reply HELP for help, STOP to cancel.';
const HELP_REPLY = 'ACME: Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply.';

before(async () => {
    srv = await startServer({
        accounts: ['acme', 'beta', 'night', 'tokyo', 'kw'].map((name) => (name === 'tokyo'
            ? { name, timezone: 'Asia/Tokyo' } : name)),
    });
    beta = { key: srv.accounts.beta.api_key };
    await addSender(srv, SENDER, { isDefault: true });
    await addSender(srv, SENDER2);
    await addSender(srv, BETA_SENDER, { ...beta, isDefault: true });
});
after(async () => {
    await srv?.stop();
    if (srv) assertNoSanitizerReport(srv);
});

/** POST /messages; returns the raw answer. */
function send(body, opts) {
    return srv.v1('POST', '/messages', { body, ...opts });
}

async function expectRefused(to, code, body = {}) {
    const r = await send({ to, text: `refused ${code}`, ...body });
    assert.equal(r.status, 422, r.text);
    const e = errorOf(r);
    assert.equal(e.code, code);
    assert.equal(e.field, 'to');
    const m = r.json.message;
    assert.ok(m && typeof m.id === 'string', `422 body carries the stored message: ${r.text}`);
    assert.equal(m.status, 'refused');
    assert.equal(m.reason, code);
    assert.equal(m.kind, 'send');
    const g = await getMessage(srv, m.id);
    assert.equal(g.status, 'refused');
    assert.equal(g.reason, code);
    assert.equal(g.text, `refused ${code}`);
    assert.equal(g.history.at(-1).status, 'refused');
    return g;
}

// ---- consent-gated send ----

test('send to an opted-in number -> 202 queued from the default sender, then sent by the worker', async () => {
    // Issue 4 item 5 / DESIGN 7 POST /messages: 202 message; item 1: queued, then delivered by the worker.
    const to = fresh();
    await optIn(srv, to);
    const r = await send({ to, text: 'Your table is ready' });
    assert.equal(r.status, 202, r.text);
    const m = r.json;
    assert.match(m.id, /\S/);
    assert.equal(m.to, to);
    assert.equal(m.from, SENDER, 'no explicit from: the account default sender');
    assert.equal(m.text, 'Your table is ready');
    assert.equal(m.kind, 'send');
    assert.equal(m.scope, 'all');
    assert.equal(m.parts, 1);
    assert.equal(m.reason, null);
    assert.ok(['queued', 'sending', 'sent'].includes(m.status), m.status);
    assert.match(m.created_at, RFC3339_UTC);
    assert.equal(m.history[0].status, 'queued');
    const sent = await waitStatus(srv, m.id, 'sent');
    assert.deepEqual(sent.history.map((h) => h.status).filter((s) => s !== 'sending'), ['queued', 'sent']);
    for (const h of sent.history) assert.match(h.at, RFC3339_UTC);
    // Any input format, E.164 out (DESIGN 7).
    const digits = to.slice(1);
    const r2 = await send({ to: `+1 (${digits.slice(1, 4)}) ${digits.slice(4, 7)}-${digits.slice(7)}`, text: 'again' });
    assert.equal(r2.status, 202, r2.text);
    assert.equal(r2.json.to, to);
});

test('send with an explicit registered from uses it', async () => {
    // Issue 4 item 5: sender choice: an explicit `from`, else the default sender.
    const to = fresh();
    await optIn(srv, to);
    const r = await send({ to, text: 'from the second number', from: SENDER2.slice(2) });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.from, SENDER2);
    await waitStatus(srv, r.json.id, 'sent');
});

test('no consent on record -> 422 no_consent, the refusal stored', async () => {
    // Issue 4 item 5: otherwise 422 with the reason code, and the refusal is recorded.
    await expectRefused(fresh(), 'no_consent');
});

test('an opted-out number -> 422 opted_out', async () => {
    // Issue 4 item 5 / DESIGN 7 check reasons: opted_out.
    const to = fresh();
    await setConsent(srv, to, 'opted_out');
    await expectRefused(to, 'opted_out');
});

test('an opt-out of all beats an opt-in of a group: send in the group -> opted_out', async () => {
    // DESIGN 2 consent rules: an opt-out at any scope beats an opt-in below it.
    const g = await srv.v1('POST', '/groups', { body: { name: 'vip' } });
    assert.equal(g.status, 201, g.text);
    const scope = `group:${g.json.id}`;
    const to = fresh();
    await optIn(srv, to, { scope });
    const ok = await send({ to, text: 'group news', scope });
    assert.equal(ok.status, 202, ok.text);
    assert.equal(ok.json.scope, scope);
    await setConsent(srv, to, 'opted_out');
    await expectRefused(to, 'opted_out', { scope });
});

test('a pending (unconfirmed) number -> 422 pending_confirmation', async () => {
    // DESIGN 7 check reasons: pending_confirmation; DESIGN 2: pending = asked, not yet confirmed.
    const to = fresh();
    await setConsent(srv, to, 'pending');
    await expectRefused(to, 'pending_confirmation');
});

test('an invalid number -> 422 invalid_number, the refusal stored', async () => {
    // Issue 4 "Done when": invalid numbers give clear errors; DESIGN 2: 16461234567 is not valid NANP.
    const m = await expectRefused('16461234567', 'invalid_number');
    assert.equal(m.kind, 'send');
    for (const bad of ['12', 'not a number']) {
        const r = await send({ to: bad, text: 'x' });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).code, 'invalid_number');
    }
});

test('refusals are listed with ?status=refused and never sent', async () => {
    // DESIGN 7 GET /messages ?status=; issue 4 item 5: the refusal is recorded.
    const to = fresh();
    await expectRefused(to, 'no_consent');
    const l = await listMessages(srv, { to, status: 'refused' });
    assert.equal(l.length, 1);
    assert.equal(l[0].reason, 'no_consent');
    assert.deepEqual(await listMessages(srv, { to, status: 'sent' }), []);
    assert.deepEqual(await listMessages(srv, { to, status: 'queued' }), []);
});

test('consent is per account: another account\'s opt-in does not allow a send', async () => {
    // DESIGN 2: every row belongs to one account; no query ever crosses accounts.
    const to = fresh();
    await optIn(srv, to, beta);
    await expectRefused(to, 'no_consent');
    const r = await send({ to, text: 'beta may' }, beta);
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.from, BETA_SENDER);
    const g = await srv.v1('GET', `/messages/${r.json.id}`);
    assert.equal(g.status, 404, 'acme must not see beta\'s message');
});

// ---- bad input ----

test('empty or missing text -> 422 invalid_field text', async () => {
    // Issue 4 "Done when": empty text gives a clear error.
    const to = fresh();
    await optIn(srv, to);
    for (const body of [{ to, text: '' }, { to }]) {
        const r = await send(body);
        assert.equal(r.status, 422, r.text);
        const e = errorOf(r);
        assert.equal(e.code, 'invalid_field');
        assert.equal(e.field, 'text');
    }
    assert.deepEqual(await listMessages(srv, { to }), [], 'nothing stored for a malformed request');
});

test('part counting: 10 parts accepted, 11 -> 422 text_too_long (GSM-7, extension table, UCS-2, astral)', async () => {
    // Issue 4 "Done when": text over 10 concatenated parts gives a clear error (gsm.h part sizes).
    const to = fresh();
    await optIn(srv, to);
    const cases = [
        ['a'.repeat(160), 1], ['a'.repeat(161), 2], ['a'.repeat(1530), 10], ['a'.repeat(1531), 11],
        ['{'.repeat(80), 1], ['{'.repeat(81), 2], ['€'.repeat(760), 10], ['€'.repeat(761), 11],
        ['ж'.repeat(70), 1], ['ж'.repeat(71), 2], ['ж'.repeat(670), 10], ['ж'.repeat(671), 11],
        ['😀'.repeat(35), 1], ['😀'.repeat(36), 2], ['😀'.repeat(330), 10], ['😀'.repeat(331), 11],
    ];
    for (const [text, parts] of cases) {
        const label = `${[...text].length} x ${JSON.stringify([...text][0])}`;
        const r = await send({ to, text });
        if (parts <= 10) {
            assert.equal(r.status, 202, `${label}: ${r.text.slice(0, 300)}`);
            assert.equal(r.json.parts, parts, label);
        } else {
            assert.equal(r.status, 422, `${label}: ${r.text.slice(0, 300)}`);
            const e = errorOf(r);
            assert.equal(e.code, 'text_too_long', label);
            assert.equal(e.field, 'text', label);
        }
    }
});

test('a text far over 10 parts (6,000 characters, 40 parts) -> 422 text_too_long as well', async () => {
    // Issue 4 "Done when": text over 10 concatenated parts gives a clear error (the same one at any length).
    const to = fresh();
    await optIn(srv, to);
    for (const text of ['a'.repeat(6000), 'ж'.repeat(3000)]) {
        const r = await send({ to, text });
        assert.equal(r.status, 422, r.text);
        const e = errorOf(r);
        assert.equal(e.field, 'text');
        assert.equal(e.code, 'text_too_long', `${text.length} chars: ${r.text}`);
    }
});

test('too long text to a number without consent is the caller\'s error (text_too_long), not a refusal', async () => {
    // Issue 4 item 5 + "Done when": bad input is reported as such; a refusal is recorded only for valid sends.
    const to = fresh();
    const r = await send({ to, text: 'a'.repeat(1531) });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorOf(r).code, 'text_too_long');
});

test('unknown sender -> 422 unknown_sender (unregistered, or another account\'s number)', async () => {
    // Issue 4 "Done when": unknown sender gives a clear error; DESIGN 2: no query crosses accounts.
    const to = fresh();
    await optIn(srv, to);
    for (const from of [num(199), BETA_SENDER, '99999']) {
        const r = await send({ to, text: 'x', from });
        assert.equal(r.status, 422, `${from}: ${r.text}`);
        const e = errorOf(r);
        assert.equal(e.code, 'unknown_sender');
        assert.equal(e.field, 'from');
    }
    assert.deepEqual(await listMessages(srv, { to }), []);
});

test('bad scope -> 422 invalid_scope', async () => {
    // DESIGN 7: scopes are all, group:ID, type:ID.
    const to = fresh();
    await optIn(srv, to);
    for (const scope of ['bogus', 'group:', 'type:', 'group:987654', '']) {
        const r = await send({ to, text: 'x', scope });
        assert.equal(r.status, 422, `${JSON.stringify(scope)}: ${r.text}`);
        const e = errorOf(r);
        assert.equal(e.code, 'invalid_scope', JSON.stringify(scope));
        assert.equal(e.field, 'scope');
    }
});

test('wrong types and bad categories -> 422 invalid_field naming the field; bad JSON -> 400', async () => {
    // DESIGN 7 errors: {"error":{"code","message","field"}} with 400/422.
    const to = fresh();
    await optIn(srv, to);
    const cases = [
        [{ to: 16465550100, text: 'x' }, 'to'], [{ text: 'x' }, 'to'], [{ to, text: 5 }, 'text'],
        [{ to, text: ['x'] }, 'text'], [{ to, text: 'x', scope: [] }, 'scope'],
        [{ to, text: 'x', from: true }, 'from'], [{ to, text: 'x', category: 'spam' }, 'category'],
        [{ to, text: 'x', category: 1 }, 'category'],
    ];
    for (const [body, field] of cases) {
        const r = await send(body);
        assert.equal(r.status, 422, `${JSON.stringify(body)}: ${r.text}`);
        const e = errorOf(r);
        assert.equal(e.code, 'invalid_field', JSON.stringify(body));
        assert.equal(e.field, field, JSON.stringify(body));
    }
    const arr = await send([to]);
    assert.equal(arr.status, 422, arr.text);
    const bad = await send('{"to":');
    assert.equal(bad.status, 400, bad.text);
    assert.equal(errorOf(bad).code, 'invalid_json');
    assert.deepEqual(await listMessages(srv, { to }), []);
    for (const category of ['marketing', 'transactional']) {
        const r = await send({ to, text: category, category });
        assert.equal(r.status, 202, r.text);
    }
});

// ---- senders ----

test('senders: add, list with the default flag, delete; default_sender follows', async () => {
    // Brief: POST/GET/DELETE /senders; PATCH /settings default_sender must be a registered sender.
    const a = await addSender(srv, num(193), { transport: 'sink' });
    assert.equal(a.number, num(193));
    assert.equal(a.transport, 'sink');
    assert.equal(a.default, false);
    assert.match(a.created_at, RFC3339_UTC);
    const short = await addSender(srv, '54321');
    assert.equal(short.number, '54321', 'short codes are senders too');
    let l = await srv.v1('GET', '/senders');
    assert.equal(l.status, 200, l.text);
    const byNum = Object.fromEntries(l.json.data.map((s) => [s.number, s]));
    assert.equal(byNum[SENDER].default, true);
    assert.equal(byNum[SENDER2].default, false);
    assert.ok(byNum[num(193)] && byNum['54321']);
    assert.ok(!byNum[BETA_SENDER], 'another account\'s sender is not listed');
    assert.equal(l.json.next_cursor, null);

    // Make it the default through settings, then delete it: the default goes with it.
    const s = await patchSettings(srv, { default_sender: `1${num(193).slice(2)}` });
    assert.equal(s.default_sender, num(193));
    l = await srv.v1('GET', '/senders');
    assert.equal(l.json.data.find((x) => x.number === num(193)).default, true);
    assert.equal(l.json.data.find((x) => x.number === SENDER).default, false);
    const d = await srv.v1('DELETE', `/senders/${encodeURIComponent(num(193))}`);
    assert.equal(d.status, 204, d.text);
    const g = await srv.v1('GET', '/settings');
    assert.equal(g.json.default_sender, undefined, JSON.stringify(g.json));
    const d2 = await srv.v1('DELETE', `/senders/${encodeURIComponent(num(193))}`);
    assert.equal(d2.status, 404, d2.text);
    assert.equal(errorOf(d2).code, 'not_found');
    const d3 = await srv.v1('DELETE', '/senders/54321');
    assert.equal(d3.status, 204, d3.text);
    // Restore the default for the other tests.
    await patchSettings(srv, { default_sender: SENDER });
});

test('senders: a number belongs to one account (409), bad numbers and fields -> 422', async () => {
    // Brief: a number belongs to one account (409 otherwise); DESIGN 7 errors.
    const r = await srv.v1('POST', '/senders', { body: { number: SENDER }, ...beta });
    assert.equal(r.status, 409, r.text);
    errorOf(r);
    const del = await srv.v1('DELETE', `/senders/${encodeURIComponent(SENDER)}`, beta);
    assert.equal(del.status, 404, 'another account cannot delete the number');
    const cases = [
        [{ number: '16461234567' }, 'number'], [{ number: 'abc' }, 'number'], [{}, 'number'],
        [{ number: 5 }, 'number'], [{ number: num(194), transport: 'pigeon' }, 'transport'],
        [{ number: num(194), default: 'yes' }, 'default'],
    ];
    for (const [body, field] of cases) {
        const x = await srv.v1('POST', '/senders', { body });
        assert.equal(x.status, 422, `${JSON.stringify(body)}: ${x.text}`);
        assert.equal(errorOf(x).field, field, JSON.stringify(body));
    }
    const l = await srv.v1('GET', '/senders');
    assert.ok(!l.json.data.some((s) => s.number === num(194)), 'nothing added by a rejected request');
});

// ---- settings ----

test('settings: validation of every key; unknown keys -> 422 invalid_field; a bad PATCH changes nothing', async () => {
    // Brief: GET/PATCH /settings keys and their validation.
    const before = (await srv.v1('GET', '/settings')).json;
    const bad = [
        [{ bogus: 1 }, 'bogus', 'invalid_field'],
        [{ transport: 'pigeon' }, 'transport', 'invalid_field'],
        [{ transport: 3 }, 'transport', 'invalid_field'],
        [{ default_sender: num(199) }, 'default_sender', 'unknown_sender'],
        [{ default_sender: BETA_SENDER }, 'default_sender', 'unknown_sender'],
        [{ keywords: ['STOP'] }, 'keywords', 'invalid_field'],
        [{ keywords: { unsubscribe: ['X'] } }, 'keywords', 'invalid_field'],
        [{ keywords: { stop: [] } }, 'keywords', 'invalid_field'],
        [{ keywords: { stop: 'STOP' } }, 'keywords', 'invalid_field'],
        [{ keywords: { stop: ['TWO WORDS'] } }, 'keywords', 'invalid_field'],
        [{ keywords: { stop: [''] } }, 'keywords', 'invalid_field'],
        [{ keywords: { stop: [7] } }, 'keywords', 'invalid_field'],
        [{ replies: { stop: '' } }, 'replies', 'invalid_field'],
        [{ replies: { stop: 'x'.repeat(641) } }, 'replies', 'invalid_field'],
        [{ replies: { bye: 'x' } }, 'replies', 'invalid_field'],
        [{ quiet_hours: { start: '25:00', end: '07:00' } }, 'quiet_hours', 'invalid_field'],
        [{ quiet_hours: { start: '21:60', end: '07:00' } }, 'quiet_hours', 'invalid_field'],
        [{ quiet_hours: { start: '21:00' } }, 'quiet_hours', 'invalid_field'],
        [{ quiet_hours: { start: '9:00', end: '17:00' } }, 'quiet_hours', 'invalid_field'],
        [{ quiet_hours: { start: '21:00', end: '07:00', tz: 'UTC' } }, 'quiet_hours', 'invalid_field'],
        [{ quiet_hours: '21:00-07:00' }, 'quiet_hours', 'invalid_field'],
        [{ flow_ttl_days: 0 }, 'flow_ttl_days', 'invalid_field'],
        [{ flow_ttl_days: 367 }, 'flow_ttl_days', 'invalid_field'],
        [{ flow_ttl_days: '3' }, 'flow_ttl_days', 'invalid_field'],
        [{ cta_text: '' }, 'cta_text', 'invalid_field'],
        [{ cta_text: 'ok', bogus: 1 }, 'bogus', 'invalid_field'],
    ];
    for (const [body, field, code] of bad) {
        const r = await srv.v1('PATCH', '/settings', { body });
        assert.equal(r.status, 422, `${JSON.stringify(body).slice(0, 100)}: ${r.text}`);
        const e = errorOf(r);
        assert.equal(e.code, code, JSON.stringify(body).slice(0, 100));
        assert.equal(e.field, field, JSON.stringify(body).slice(0, 100));
    }
    assert.deepEqual((await srv.v1('GET', '/settings')).json, before, 'rejected PATCHes change nothing');
});

test('settings: valid values round trip, PATCH merges, null removes a key', async () => {
    // Brief: settings keys; PATCH semantics.
    const k = { key: srv.accounts.kw.api_key };
    const s1 = await patchSettings(srv, {
        transport: 'sink', flow_ttl_days: 7, cta_text: '{brand}: reply YES',
        quiet_hours: { start: '21:00', end: '08:00' },
    }, k);
    assert.equal(s1.transport, 'sink');
    assert.equal(s1.flow_ttl_days, 7);
    assert.equal(s1.cta_text, '{brand}: reply YES');
    assert.deepEqual(s1.quiet_hours, { start: '21:00', end: '08:00' });
    const s2 = await patchSettings(srv, { quiet_hours: null, flow_ttl_days: 30 }, k);
    assert.equal(s2.quiet_hours, undefined, JSON.stringify(s2));
    assert.equal(s2.flow_ttl_days, 30);
    assert.equal(s2.cta_text, '{brand}: reply YES', 'keys not in the PATCH stay');
    const g = await srv.v1('GET', '/settings', k);
    assert.deepEqual(g.json, s2);
    await patchSettings(srv, { transport: null, cta_text: null, flow_ttl_days: null }, k);
    // Settings are per account.
    assert.equal((await srv.v1('GET', '/settings')).json.cta_text, undefined);
});

// ---- quiet hours ----

/** A quiet window of +-`half` minutes around now in `tz`. */
function windowAround(tz, half) {
    const now = Date.now();
    return {
        start: hhmmIn(new Date(now - half * 60000), tz),
        end: hhmmIn(new Date(now + half * 60000), tz),
    };
}

test('quiet hours: marketing held with a history entry, transactional and keyword replies go out', async () => {
    // Issue 4 item 6: quiet hours hold marketing sends until morning; keyword replies are never held.
    const k = { key: srv.accounts.night.api_key };
    const from = num(195);
    await addSender(srv, from, { ...k, isDefault: true });
    const to = num(150);
    await optIn(srv, to, k);
    const qh = windowAround('UTC', 60);
    await patchSettings(srv, { quiet_hours: qh }, k);
    const t0 = Date.now();

    const mk = await send({ to, text: 'Big sale tonight!' }, k);
    assert.equal(mk.status, 202, mk.text);
    assert.equal(mk.json.status, 'queued');
    const held = mk.json.history.find((h) => /held for quiet hours until/.test(h.detail ?? ''));
    assert.ok(held, `history has a "held" entry: ${JSON.stringify(mk.json.history)}`);
    assert.equal(held.status, 'queued');
    const until = held.detail.match(/until (\S+)/)[1];
    assert.match(until, RFC3339_UTC);
    // The window ends 60 minutes after the minute the test started in.
    const expected = t0 - (t0 % 60000) + 60 * 60000;
    assert.ok(Math.abs(Date.parse(until) - expected) <= 60000,
        `held until ${until}, expected about ${new Date(expected).toISOString()}`);

    const explicitMk = await send({ to, text: 'Another sale', category: 'marketing' }, k);
    assert.equal(explicitMk.status, 202, explicitMk.text);
    assert.ok(explicitMk.json.history.some((h) => /held for quiet hours/.test(h.detail ?? '')));

    const tx = await send({ to, text: 'Your code is 1234', category: 'transactional' }, k);
    assert.equal(tx.status, 202, tx.text);
    assert.ok(!tx.json.history.some((h) => /held/.test(h.detail ?? '')), JSON.stringify(tx.json.history));
    await waitStatus(srv, tx.json.id, 'sent', k);

    const help = await inbound(srv, to, from, 'HELP', k);
    assert.equal(help.action, 'help');
    const replies = await waitFor(async () => {
        const l = await listMessages(srv, { to, kind: 'keyword_reply' }, k);
        return l.length === 1 && l[0].status === 'sent' ? l : false;
    }, { what: 'the HELP reply to be sent during quiet hours' });
    assert.ok(!replies[0].history.some((h) => /held/.test(h.detail ?? '')));

    // The transactional send and the reply were queued after the marketing ones and are out:
    // the marketing ones are still waiting.
    for (const id of [mk.json.id, explicitMk.json.id]) {
        const m = await getMessage(srv, id, k);
        assert.equal(m.status, 'queued', `marketing message ${id} must stay queued: ${JSON.stringify(m.history)}`);
    }

    // STOP's confirmation is not held either.
    const stop = await inbound(srv, to, from, 'STOP', k);
    assert.equal(stop.action, 'opted_out');
    await waitFor(async () => {
        const l = await listMessages(srv, { to, kind: 'keyword_reply' }, k);
        return l.length === 2 && l.every((m) => m.status === 'sent');
    }, { what: 'the STOP confirmation to be sent during quiet hours' });
    await patchSettings(srv, { quiet_hours: null }, k);
});

test('quiet hours: a window that does not contain now holds nothing', async () => {
    // Issue 4 item 6: quiet hours are an optional window; outside it marketing goes out at once.
    const k = { key: srv.accounts.night.api_key };
    const to = num(151);
    await optIn(srv, to, k);
    const now = Date.now();
    await patchSettings(srv, { quiet_hours: {
        start: hhmmIn(new Date(now + 120 * 60000), 'UTC'), end: hhmmIn(new Date(now + 180 * 60000), 'UTC'),
    } }, k);
    const r = await send({ to, text: 'Daytime offer' }, k);
    assert.equal(r.status, 202, r.text);
    assert.ok(!r.json.history.some((h) => /held/.test(h.detail ?? '')), JSON.stringify(r.json.history));
    await waitStatus(srv, r.json.id, 'sent', k);
    await patchSettings(srv, { quiet_hours: null }, k);
});

test('quiet hours are read in the account\'s time zone (Asia/Tokyo)', async () => {
    // Issue 4 item 6: quiet hours per account time zone.
    const k = { key: srv.accounts.tokyo.api_key };
    const to = num(152);
    await addSender(srv, num(196), { ...k, isDefault: true });
    await optIn(srv, to, k);
    // A window around Tokyo's local time (which never contains the UTC time of day: +9 h).
    await patchSettings(srv, { quiet_hours: windowAround('Asia/Tokyo', 30) }, k);
    const t0 = Date.now();
    const held = await send({ to, text: 'Tokyo night sale' }, k);
    assert.equal(held.status, 202, held.text);
    const h = held.json.history.find((x) => /held for quiet hours until/.test(x.detail ?? ''));
    assert.ok(h, `held in Tokyo's night: ${JSON.stringify(held.json.history)}`);
    const until = Date.parse(h.detail.match(/until (\S+)/)[1]);
    const expected = t0 - (t0 % 60000) + 30 * 60000;
    assert.ok(Math.abs(until - expected) <= 60000, `${h.detail}; expected about ${new Date(expected).toISOString()}`);

    // A window around the UTC time of day is not quiet in Tokyo.
    await patchSettings(srv, { quiet_hours: windowAround('UTC', 30) }, k);
    const out = await send({ to, text: 'Tokyo daytime' }, k);
    assert.equal(out.status, 202, out.text);
    assert.ok(!out.json.history.some((x) => /held/.test(x.detail ?? '')), JSON.stringify(out.json.history));
    await waitStatus(srv, out.json.id, 'sent', k);
    assert.equal((await getMessage(srv, held.json.id, k)).status, 'queued');
    await patchSettings(srv, { quiet_hours: null }, k);
});

// ---- inbound keywords ----

async function replies(to, k) {
    return listMessages(srv, { to, kind: 'keyword_reply' }, k);
}

test('STOP: opted out of all, exactly one confirmation from the number written to, next send refused', async () => {
    // Issue 4 item 3 + DESIGN 3: STOP -> opt-out of all plus one confirmation SMS (no marketing content).
    const from = fresh();
    const g = await srv.v1('POST', '/groups', { body: { name: 'stop-test' } });
    const scope = `group:${g.json.id}`;
    await optIn(srv, from);
    await optIn(srv, from, { scope });
    const r = await inbound(srv, from, SENDER2, 'STOP', { provider_id: 'prov-1' });
    assert.equal(r.action, 'opted_out');
    assert.equal(r.message.kind, 'inbound');
    assert.equal(r.message.status, 'received');
    assert.equal(r.message.from, from);
    assert.equal(r.message.to, SENDER2);
    assert.equal(r.message.text, 'STOP');
    const l = await replies(from);
    assert.equal(l.length, 1, JSON.stringify(l));
    assert.equal(l[0].text, STOP_REPLY);
    assert.equal(l[0].from, SENDER2, 'the reply comes from the number the contact wrote to');
    assert.equal(l[0].to, from);
    await waitStatus(srv, l[0].id, 'sent');
    assert.equal((await check(srv, from)).reason, 'opted_out');
    await expectRefused(from, 'opted_out');
    await expectRefused(from, 'opted_out', { scope });
});

test('a repeated STOP (any stop word) while opted out sends no second confirmation', async () => {
    // Issue 4 item 3: exactly one confirmation reply, never more than one per revocation.
    const from = fresh();
    await optIn(srv, from);
    assert.equal((await inbound(srv, from, SENDER, 'stop')).action, 'opted_out');
    for (const w of ['STOP', 'quit', ' Unsubscribe ']) {
        assert.equal((await inbound(srv, from, SENDER, w)).action, 'opted_out', w);
    }
    const l = await replies(from);
    assert.equal(l.length, 1, `one confirmation only: ${JSON.stringify(l.map((m) => m.text))}`);
    const inb = await listMessages(srv, { kind: 'inbound' });
    assert.equal(inb.filter((m) => m.from === from).length, 4, 'every STOP is stored as inbound');
});

test('every FCC stop word, any case, trimmed, opts out; a longer text containing STOP does not', async () => {
    // DESIGN 3 / issue 4 item 3: STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT, whole message, trimmed, case-insensitive.
    const words = ['STOP', 'stopall', 'Unsubscribe', ' cancel', 'END\n', '\tQuIt ', 'revoke', 'OptOut'];
    for (const w of words) {
        const from = fresh();
        await optIn(srv, from);
        const r = await inbound(srv, from, SENDER, w);
        assert.equal(r.action, 'opted_out', JSON.stringify(w));
        assert.equal((await check(srv, from)).reason, 'opted_out', JSON.stringify(w));
        assert.equal((await replies(from)).length, 1, JSON.stringify(w));
    }
    for (const text of ['STOP please', 'please stop', 'S T O P', 'STOPP', 'stop.']) {
        const from = fresh();
        await optIn(srv, from);
        const r = await inbound(srv, from, SENDER, text);
        assert.equal(r.action, 'none', JSON.stringify(text));
        assert.equal((await check(srv, from)).allowed, true, JSON.stringify(text));
        assert.equal((await replies(from)).length, 0, JSON.stringify(text));
    }
});

test('START after STOP: opted in again with one confirmation, sends allowed', async () => {
    // Issue 4 item 3 / DESIGN 3: START, YES, UNSTOP -> opt-in (an explicit override lifts an opt-out).
    for (const w of ['START', 'yes', ' Unstop ']) {
        const from = fresh();
        await optIn(srv, from);
        await inbound(srv, from, SENDER, 'STOP');
        await expectRefused(from, 'opted_out');
        const r = await inbound(srv, from, SENDER, w);
        assert.equal(r.action, 'opted_in', w);
        const l = await replies(from);
        assert.equal(l.length, 2, JSON.stringify(l.map((m) => m.text)));
        assert.equal(l[0].text, START_REPLY, 'newest first: the START confirmation');
        assert.equal(l[1].text, STOP_REPLY);
        assert.equal((await check(srv, from)).reason, 'opted_in');
        const s = await send({ to: from, text: 'welcome back' });
        assert.equal(s.status, 202, s.text);
    }
});

test('HELP / INFO: the help text, also to an opted-out contact; consent unchanged', async () => {
    // DESIGN 3: HELP, INFO -> help text; DESIGN 2: HELP replies are allowed without consent.
    const a = fresh();
    await optIn(srv, a);
    const r = await inbound(srv, a, SENDER, 'help');
    assert.equal(r.action, 'help');
    let l = await replies(a);
    assert.equal(l.length, 1);
    assert.equal(l[0].text, HELP_REPLY);
    assert.equal((await check(srv, a)).reason, 'opted_in');

    const b = fresh();
    await setConsent(srv, b, 'opted_out');
    assert.equal((await inbound(srv, b, SENDER, ' INFO ')).action, 'help');
    l = await replies(b);
    assert.equal(l.length, 1);
    assert.equal(l[0].text, HELP_REPLY);
    await waitStatus(srv, l[0].id, 'sent');
    assert.equal((await check(srv, b)).reason, 'opted_out', 'HELP does not opt in');

    const c = fresh(); // never seen before
    assert.equal((await inbound(srv, c, SENDER, 'HELP')).action, 'help');
    assert.equal((await replies(c)).length, 1);
    assert.equal((await check(srv, c)).reason, 'no_consent');
});

test('other texts: action none, stored as inbound, no reply, consent unchanged', async () => {
    // DESIGN 3: anything else is stored as an inbound message.
    const from = fresh();
    await optIn(srv, from);
    const text = 'What time do you open tomorrow? 😀';
    const r = await inbound(srv, from, SENDER, text, { provider_id: 'abc-123' });
    assert.equal(r.action, 'none');
    assert.equal(r.message.text, text);
    assert.equal(r.message.kind, 'inbound');
    assert.equal(r.message.status, 'received');
    assert.equal(r.message.from, from);
    assert.equal(r.message.to, SENDER);
    const g = await getMessage(srv, r.message.id);
    assert.equal(g.text, text);
    assert.equal(g.kind, 'inbound');
    const inb = await listMessages(srv, { kind: 'inbound' });
    assert.ok(inb.some((m) => m.id === r.message.id));
    assert.equal((await replies(from)).length, 0);
    assert.equal((await check(srv, from)).reason, 'opted_in');
    const empty = await inbound(srv, from, SENDER, '   ');
    assert.equal(empty.action, 'none');
    // Inbound validation.
    for (const [body, field] of [[{ to: SENDER, text: 'x' }, 'from'], [{ from, text: 'x' }, 'to'],
        [{ from, to: SENDER }, 'text'], [{ from, to: SENDER, text: 5 }, 'text']]) {
        const x = await srv.v1('POST', '/inbound', { body });
        assert.equal(x.status, 422, `${JSON.stringify(body)}: ${x.text}`);
        assert.equal(errorOf(x).field, field);
    }
});

test('keyword events in the ledger: channel sms, keyword in upper case, old -> new state', async () => {
    // Issue 4 item 3: the consent change carries the ledger provenance "keyword"; brief: channel "sms".
    const from = fresh();
    await optIn(srv, from);
    await inbound(srv, from, SENDER, ' stop ');
    await inbound(srv, from, SENDER, 'Unstop');
    const ev = await eventsOf(srv, from);
    const kw = ev.filter((e) => e.channel === 'sms');
    assert.equal(kw.length, 2, JSON.stringify(ev));
    assert.equal(kw[0].keyword, 'STOP');
    assert.equal(kw[0].scope, 'all');
    assert.equal(kw[0].old_state, 'opted_in');
    assert.equal(kw[0].new_state, 'opted_out');
    assert.equal(kw[1].keyword, 'UNSTOP');
    assert.equal(kw[1].old_state, 'opted_out');
    assert.equal(kw[1].new_state, 'opted_in');
    for (const e of kw) {
        assert.equal(e.surface, 'native');
        assert.equal(e.phone, from);
        assert.equal(e.prev_hash, ev[ev.indexOf(e) - 1].hash, 'chained');
    }
    // HELP changes no consent: no event.
    await inbound(srv, from, SENDER, 'HELP');
    assert.equal((await eventsOf(srv, from)).length, ev.length);
});

test('custom keyword lists and reply texts per account replace the defaults', async () => {
    // Issue 4 item 3 / DESIGN 3: keywords and reply texts are configurable per account.
    const k = { key: srv.accounts.kw.api_key };
    const ours = num(197);
    await addSender(srv, ours, { ...k, isDefault: true });
    await patchSettings(srv, {
        keywords: { stop: ['ARRET', 'Fin'], start: ['GO'], help: ['AIDE'] },
        replies: { stop: '{brand}: au revoir', start: '{brand}: bienvenue', help: '{brand}: aide ici' },
    }, k);
    const a = num(160);
    await optIn(srv, a, k);
    // The default start and help words no longer count for this account (issue 8 item 3: the
    // default opt-out words always do, see hardening_rules.test.mjs).
    for (const w of ['START', 'HELP']) {
        const r = await inbound(srv, a, ours, w, k);
        assert.equal(r.action, 'none', w);
    }
    assert.equal((await replies(a, k)).length, 0);
    assert.equal((await check(srv, a, k)).reason, 'opted_in');

    let r = await inbound(srv, a, ours, 'arret', k);
    assert.equal(r.action, 'opted_out');
    let l = await replies(a, k);
    assert.equal(l.length, 1);
    assert.equal(l[0].text, 'KW: au revoir');
    assert.equal((await check(srv, a, k)).reason, 'opted_out');
    r = await inbound(srv, a, ours, 'FIN', k);
    assert.equal(r.action, 'opted_out');
    assert.equal((await replies(a, k)).length, 1, 'still one confirmation');
    r = await inbound(srv, a, ours, 'aide', k);
    assert.equal(r.action, 'help');
    r = await inbound(srv, a, ours, 'Go', k);
    assert.equal(r.action, 'opted_in');
    l = await replies(a, k);
    assert.deepEqual(l.map((m) => m.text), ['KW: bienvenue', 'KW: aide ici', 'KW: au revoir']);
    // (A repeated opt-out may be logged as opted_out -> opted_out; only the changes matter here.)
    const ev = (await eventsOf(srv, a, k)).filter((e) => e.channel === 'sms' && e.old_state !== e.new_state);
    assert.deepEqual(ev.map((e) => [e.keyword, e.new_state]), [['ARRET', 'opted_out'], ['GO', 'opted_in']]);

    // Only the lists that were set are replaced: a PATCH of stop keeps the default start/help
    // words, and a stop list adds to the default opt-out words (issue 8 item 3).
    const kw2 = num(161);
    await patchSettings(srv, { keywords: { stop: ['BASTA'] }, replies: null }, k);
    await optIn(srv, kw2, k);
    assert.equal((await inbound(srv, kw2, ours, 'HELP', k)).action, 'help');
    assert.equal((await replies(kw2, k))[0].text, HELP_REPLY.replace('ACME', 'KW'));
    assert.equal((await inbound(srv, kw2, ours, 'basta', k)).action, 'opted_out');
    assert.equal((await inbound(srv, kw2, ours, 'STOP', k)).action, 'opted_out');

    // Another account keeps the defaults.
    const b = fresh();
    await optIn(srv, b);
    assert.equal((await inbound(srv, b, SENDER, 'ARRET')).action, 'none');
    assert.equal((await inbound(srv, b, SENDER, 'STOP')).action, 'opted_out');
    await patchSettings(srv, { keywords: null }, k);
});

test('STOP to one account does not touch the same number in another account', async () => {
    // DESIGN 2: no query ever crosses accounts.
    const from = fresh();
    await optIn(srv, from);
    await optIn(srv, from, beta);
    assert.equal((await inbound(srv, from, SENDER, 'STOP')).action, 'opted_out');
    assert.equal((await check(srv, from)).reason, 'opted_out');
    assert.equal((await check(srv, from, beta)).reason, 'opted_in');
    const r = await send({ to: from, text: 'still subscribed here' }, beta);
    assert.equal(r.status, 202, r.text);
    assert.equal((await replies(from, beta)).length, 0);
});

test('GET /messages filters by to, status and kind, newest first', async () => {
    // DESIGN 7: GET /messages ?to=&status=&kind=.
    const to = fresh();
    await optIn(srv, to);
    const ids = [];
    for (let i = 0; i < 3; i++) {
        const r = await send({ to, text: `m${i}` });
        assert.equal(r.status, 202, r.text);
        ids.push(r.json.id);
    }
    await inbound(srv, to, SENDER, 'HELP');
    for (const id of ids) await waitStatus(srv, id, 'sent');
    const sends = await listMessages(srv, { to, kind: 'send' });
    assert.deepEqual(sends.map((m) => m.id), [...ids].reverse());
    assert.equal((await listMessages(srv, { to, kind: 'keyword_reply' })).length, 1);
    assert.equal((await listMessages(srv, { to, status: 'sent', kind: 'send' })).length, 3);
    assert.equal((await listMessages(srv, { to, status: 'refused' })).length, 0);
    const other = await listMessages(srv, { to: fresh() });
    assert.deepEqual(other, []);
});

test('a send retried with the same Idempotency-Key is queued (and sent) once; a refusal replays too', async () => {
    // DESIGN 7: every POST accepts Idempotency-Key: a retry returns the first answer and writes nothing.
    const to = fresh();
    await optIn(srv, to);
    const body = { to, text: 'exactly once, please' };
    const headers = { 'Idempotency-Key': `send-${to}` };
    const first = await send(body, { headers });
    assert.equal(first.status, 202, first.text);
    for (let i = 0; i < 3; i++) {
        const again = await send(body, { headers });
        assert.equal(again.status, 202, again.text);
        assert.equal(again.json.id, first.json.id);
    }
    assert.equal((await listMessages(srv, { to, kind: 'send' })).length, 1);
    const other = await send({ ...body, text: 'different' }, { headers });
    assert.equal(other.status, 422, other.text);
    assert.equal(errorOf(other).code, 'idempotency_mismatch');

    const nobody = fresh();
    const rh = { 'Idempotency-Key': `refused-${nobody}` };
    const r1 = await send({ to: nobody, text: 'no' }, { headers: rh });
    const r2 = await send({ to: nobody, text: 'no' }, { headers: rh });
    assert.equal(r1.status, 422);
    assert.equal(r2.status, 422);
    assert.equal(r2.text, r1.text);
    assert.equal((await listMessages(srv, { to: nobody })).length, 1, 'one stored refusal');
});

test('an inbound STOP retried with the same Idempotency-Key is stored and answered once', async () => {
    // DESIGN 7 Idempotency-Key + issue 4 item 3: never more than one confirmation per revocation.
    const from = fresh();
    await optIn(srv, from);
    const headers = { 'Idempotency-Key': `inbound-${from}` };
    const body = { from, to: SENDER, text: 'STOP', provider_id: 'p-1' };
    const a = await srv.v1('POST', '/inbound', { body, headers });
    const b = await srv.v1('POST', '/inbound', { body, headers });
    assert.equal(a.status, 200, a.text);
    assert.equal(b.text, a.text);
    assert.equal((await listMessages(srv, { kind: 'inbound' })).filter((m) => m.from === from).length, 1);
    assert.equal((await replies(from)).length, 1);
});

test('a keyword written to a number that is not ours is answered from the default sender', async () => {
    // Issue 4 item 5: sender choice falls back to the account's default number.
    const from = fresh();
    const r = await inbound(srv, from, num(198), 'HELP');
    assert.equal(r.action, 'help');
    const [reply] = await replies(from);
    assert.equal(reply.from, SENDER);
    assert.equal(r.message.to, num(198), 'the inbound keeps the number it was written to');
});
