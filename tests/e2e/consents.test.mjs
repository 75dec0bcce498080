// Native API: consents and the send check (DESIGN 2 "consent", DESIGN 7 consents/check rows; issue 3 item 6-7).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, num, sha256hex, RFC3339_UTC, HEX64 } from './lib/server.mjs';

const EVENT_FIELDS = ['id', 'seq', 'phone', 'scope', 'old_state', 'new_state', 'surface', 'channel', 'keyword',
    'disclosure_sha256', 'ip', 'user_agent', 'site', 'session', 'ext_ref', 'credential_id', 'request_id',
    'created_at', 'hash', 'prev_hash'];

let srv;
let g1;
let g2;
before(async () => {
    srv = await startServer({ accounts: ['acme'] });
    g1 = (await srv.v1('POST', '/groups', { body: { name: 'one' } })).json.id;
    g2 = (await srv.v1('POST', '/groups', { body: { name: 'two' } })).json.id;
    const t = await srv.v1('POST', '/message-types', { body: { id: 7, name: 'promo' } });
    assert.equal(t.status, 201, t.text);
});
after(async () => {
    await srv?.stop();
});

async function setConsent(phone, scope, state, extra = {}) {
    const r = await srv.v1('POST', '/consents', { body: { phone, scope, state, ...extra } });
    assert.equal(r.status, 201, `POST /consents ${phone} ${scope} ${state}: ${r.status} ${r.text}`);
    return r.json;
}

async function check(to, scope) {
    const q = new URLSearchParams({ to });
    if (scope !== undefined) q.set('scope', scope);
    const r = await srv.v1('GET', `/check?${q}`);
    assert.equal(r.status, 200, `GET /check?${q}: ${r.text}`);
    return r.json;
}

describe('POST /consents', () => {
    test('answers 201 {"consent":{scope,state,updated_at},"event":event} with full provenance', async () => {
        // DESIGN 7: POST /consents -> 201 {"consent":{"scope","state","updated_at"},"event":event}; DESIGN 2 consent event provenance.
        const disclosure = 'Reply STOP to stop. Msg&data rates may apply. Up to 4 msgs/month.';
        const j = await setConsent('+1 (646) 555-0130', 'all', 'opted_in', {
            channel: 'web', disclosure, ip: '203.0.113.9', user_agent: 'e2e-agent/1.0', ext_ref: 'ref-130',
        });
        assert.deepEqual(Object.keys(j).sort(), ['consent', 'event']);
        assert.equal(j.consent.scope, 'all');
        assert.equal(j.consent.state, 'opted_in');
        assert.match(j.consent.updated_at, RFC3339_UTC);
        const e = j.event;
        for (const f of EVENT_FIELDS) assert.ok(f in e, `event lacks "${f}": ${JSON.stringify(e)}`);
        assert.equal(e.phone, '+16465550130');
        assert.equal(e.scope, 'all');
        assert.ok(e.old_state === null || e.old_state === 'none', `old_state of a first consent: ${e.old_state}`);
        assert.equal(e.new_state, 'opted_in');
        assert.equal(e.surface, 'native');
        assert.equal(e.channel, 'web');
        assert.equal(e.disclosure_sha256, sha256hex(disclosure));
        assert.equal(e.ip, '203.0.113.9');
        assert.equal(e.user_agent, 'e2e-agent/1.0');
        assert.equal(e.ext_ref, 'ref-130');
        assert.notEqual(e.credential_id, null);
        assert.match(e.created_at, RFC3339_UTC);
        assert.match(e.hash, HEX64);
        assert.match(e.prev_hash, HEX64);
        assert.ok(Number.isInteger(e.seq) && e.seq >= 1);
    });

    test('credential_id names the API key that made the change', async () => {
        // DESIGN 2: consent event records who (account, credential id).
        const keys = await srv.cliOk(['key', 'list', '--account', 'acme']);
        assert.ok(Array.isArray(keys.json) && keys.json.length >= 1, keys.stdout);
        const j = await setConsent(num(31), 'all', 'opted_in');
        assert.equal(String(j.event.credential_id), String(keys.json[0].id));
    });

    test('a second change records the old state', async () => {
        // DESIGN 2: what (scope, old -> new state).
        await setConsent(num(32), `group:${g1}`, 'opted_in');
        const j = await setConsent(num(32), `group:${g1}`, 'opted_out', { channel: 'sms' });
        assert.equal(j.event.old_state, 'opted_in');
        assert.equal(j.event.new_state, 'opted_out');
        assert.equal(j.event.channel, 'sms');
        assert.equal(j.consent.state, 'opted_out');
    });

    test('creates the contact when the number has none', async () => {
        // Lead contract: POST /consents for a phone with no contact creates the contact.
        const before = await srv.v1('GET', `/contacts/${encodeURIComponent(num(33))}`);
        assert.equal(before.status, 404, before.text);
        await setConsent('16465550133', 'all', 'opted_in');
        const c = await srv.v1('GET', `/contacts/${encodeURIComponent(num(33))}`);
        assert.equal(c.status, 200, c.text);
        assert.equal(c.json.phone, num(33));
    });

    test('accepts every documented channel', async () => {
        // DESIGN 7: "channel"?: "api"|"sms"|"web"|"email"|"paper"|"import".
        const channels = ['api', 'sms', 'web', 'email', 'paper', 'import'];
        for (const [i, channel] of channels.entries()) {
            const j = await setConsent(num(100 + i), 'all', 'opted_in', { channel });
            assert.equal(j.event.channel, channel);
        }
    });

    test('invalid phone -> 422 invalid_phone', async () => {
        // DESIGN 2: invalid numbers get the surface's validation error.
        const r = await srv.v1('POST', '/consents', { body: { phone: '+1 646 123 4567', scope: 'all', state: 'opted_in' } });
        assert.equal(r.status, 422, r.text);
        const e = errorOf(r);
        assert.equal(e.code, 'invalid_phone');
        assert.equal(e.field, 'phone');
    });

    test('unknown or malformed scope -> 422 invalid_scope', async () => {
        // Lead contract: POST /consents with an unknown scope (group:999) -> 422 invalid_scope; DESIGN 7 scopes all|group:ID|type:ID.
        for (const scope of ['group:999', 'type:999', 'bogus', 'group:', 'group:abc', 'type:1.5', 'group:-1',
            'group:1180591620717411303424', 'group:1e400', '']) {
            const r = await srv.v1('POST', '/consents', { body: { phone: num(35), scope, state: 'opted_in' } });
            assert.equal(r.status, 422, `${JSON.stringify(scope)}: ${r.text}`);
            const e = errorOf(r);
            assert.equal(e.code, 'invalid_scope', JSON.stringify(scope));
            assert.equal(e.field, 'scope');
        }
    });

    test('unknown state or channel -> 422 naming the field', async () => {
        // DESIGN 7: "state":"opted_in"|"opted_out"|"pending"; "channel" one of six values.
        const s = await srv.v1('POST', '/consents', { body: { phone: num(35), scope: 'all', state: 'maybe' } });
        assert.equal(s.status, 422, s.text);
        assert.equal(errorOf(s).field, 'state');
        const c = await srv.v1('POST', '/consents', { body: { phone: num(35), scope: 'all', state: 'opted_in', channel: 'pigeon' } });
        assert.equal(c.status, 422, c.text);
        assert.equal(errorOf(c).field, 'channel');
        const m = await srv.v1('POST', '/consents', { body: { phone: num(35), scope: 'all' } });
        assert.equal(m.status, 422, m.text);
        assert.equal(errorOf(m).field, 'state');
    });

    test('pending over opted_out -> 409 opted_out, state unchanged', async () => {
        // DESIGN 2: only an explicit override lifts an opt-out; lead contract: pending over opted_out -> 409 "opted_out".
        await setConsent(num(36), 'all', 'opted_out');
        const r = await srv.v1('POST', '/consents', { body: { phone: num(36), scope: 'all', state: 'pending' } });
        assert.equal(r.status, 409, r.text);
        assert.equal(errorOf(r).code, 'opted_out');
        const chk = await check(num(36), 'all');
        assert.equal(chk.reason, 'opted_out');
    });
});

describe('GET /contacts/{id}/consents', () => {
    test('lists every scope of the contact with its current state', async () => {
        // DESIGN 7: GET /contacts/{id or number}/consents -> list of {"scope","state","updated_at"}.
        const phone = num(40);
        await setConsent(phone, 'all', 'opted_in');
        await setConsent(phone, `group:${g1}`, 'pending');
        await setConsent(phone, 'type:7', 'opted_out');
        const c = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}`);
        for (const ref of [c.json.id, encodeURIComponent(phone), '16465550140']) {
            const r = await srv.v1('GET', `/contacts/${ref}/consents`);
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json.next_cursor, null);
            const m = Object.fromEntries(r.json.data.map((x) => [x.scope, x.state]));
            assert.deepEqual(m, { all: 'opted_in', [`group:${g1}`]: 'pending', 'type:7': 'opted_out' });
            for (const x of r.json.data) {
                assert.deepEqual(Object.keys(x).sort(), ['scope', 'state', 'updated_at']);
                assert.match(x.updated_at, RFC3339_UTC);
            }
        }
    });

    test('unknown contact -> 404', async () => {
        // DESIGN 7: 404 for unknown resources.
        const r = await srv.v1('GET', '/contacts/987654321/consents');
        assert.equal(r.status, 404, r.text);
        assert.equal(errorOf(r).code, 'not_found');
    });
});

describe('GET /check precedence', () => {
    test('no consent -> allowed:false no_consent; default scope is all', async () => {
        // DESIGN 7: GET /check ?to=&scope= (default all) -> {"phone","scope","allowed","reason"}.
        const j = await check('+1 (646) 555-0150');
        assert.deepEqual(j, { phone: '+16465550150', scope: 'all', allowed: false, reason: 'no_consent' });
    });

    test('opt-in of all -> allowed, number in any format', async () => {
        // DESIGN 7: reason opted_in; numbers accepted in any format and returned as E.164.
        await setConsent(num(51), 'all', 'opted_in');
        for (const to of ['16465550151', '+16465550151', '(646) 555-0151']) {
            const j = await check(to, 'all');
            assert.deepEqual(j, { phone: '+16465550151', scope: 'all', allowed: true, reason: 'opted_in' });
        }
    });

    test('opt-out of all beats any opt-in below it', async () => {
        // DESIGN 2: an opt-out at any scope beats an opt-in below it; STOP at account level is an opt-out of all.
        const p = num(52);
        await setConsent(p, `group:${g1}`, 'opted_in');
        await setConsent(p, 'type:7', 'opted_in');
        assert.equal((await check(p, `group:${g1}`)).allowed, true);
        await setConsent(p, 'all', 'opted_out');
        for (const scope of ['all', `group:${g1}`, 'type:7', `group:${g2}`]) {
            const j = await check(p, scope);
            assert.equal(j.allowed, false, scope);
            assert.equal(j.reason, 'opted_out', scope);
            assert.equal(j.scope, scope);
        }
    });

    test('group opt-in is allowed when all is not opted out; all itself has no consent', async () => {
        // Lead contract: group opt-in allowed when all is not opted out.
        const p = num(53);
        await setConsent(p, `group:${g1}`, 'opted_in');
        assert.deepEqual(await check(p, `group:${g1}`), { phone: p, scope: `group:${g1}`, allowed: true, reason: 'opted_in' });
        assert.equal((await check(p, `group:${g2}`)).reason, 'no_consent');
        assert.equal((await check(p, 'all')).reason, 'no_consent');
        assert.equal((await check(p, 'type:7')).reason, 'no_consent');
    });

    test('an all opt-in allows every group/type scope unless that scope is opted out', async () => {
        // Lead contract: "all" opt-in allows every group/type scope unless that scope is opted out.
        const p = num(54);
        await setConsent(p, 'all', 'opted_in');
        await setConsent(p, `group:${g2}`, 'opted_out');
        assert.equal((await check(p, `group:${g1}`)).allowed, true);
        assert.equal((await check(p, 'type:7')).allowed, true);
        const out = await check(p, `group:${g2}`);
        assert.equal(out.allowed, false);
        assert.equal(out.reason, 'opted_out');
        assert.equal((await check(p, 'all')).allowed, true);
    });

    test('pending -> allowed:false pending_confirmation', async () => {
        // DESIGN 7: reason pending_confirmation; DESIGN 2 state pending = asked, not yet confirmed.
        const p = num(55);
        await setConsent(p, 'all', 'pending');
        assert.deepEqual(await check(p, 'all'), { phone: p, scope: 'all', allowed: false, reason: 'pending_confirmation' });
        await setConsent(p, `group:${g1}`, 'pending');
        assert.equal((await check(p, `group:${g1}`)).reason, 'pending_confirmation');
        await setConsent(p, 'all', 'opted_in');
        assert.equal((await check(p, 'all')).reason, 'opted_in');
    });

    test('invalid number -> 200 allowed:false invalid_number', async () => {
        // DESIGN 7: invalid numbers answer 200 with allowed:false, reason invalid_number.
        for (const to of ['16461234567', 'garbage', '1', '+999']) {
            const j = await check(to, 'all');
            assert.equal(j.allowed, false, to);
            assert.equal(j.reason, 'invalid_number', to);
        }
    });

    test('check of an unknown scope is not allowed', async () => {
        // DESIGN 7: scopes are all, group:ID, type:ID; nothing is allowed for a scope that does not exist.
        const p = num(51);
        const r = await srv.v1('GET', `/check?to=${encodeURIComponent(p)}&scope=bogus`);
        if (r.status === 200) assert.equal(r.json.allowed, false, r.text);
        else { assert.equal(r.status, 422, r.text); assert.equal(errorOf(r).field, 'scope'); }
    });

    test('check does not create a contact or an event', async () => {
        // DESIGN 7: GET /check is a read.
        const p = num(56);
        const ev = await srv.v1('GET', '/events?limit=1000');
        await check(p, 'all');
        const c = await srv.v1('GET', `/contacts/${encodeURIComponent(p)}`);
        assert.equal(c.status, 404, c.text);
        const ev2 = await srv.v1('GET', '/events?limit=1000');
        assert.equal(ev2.json.data.length, ev.json.data.length);
    });
});
