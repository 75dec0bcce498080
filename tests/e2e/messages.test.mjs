// Native API: outbox messages (DESIGN 2 "message", DESIGN 7 messages rows; issue 3 item 7 "outbox messages (list)").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, num } from './lib/server.mjs';

let srv;
before(async () => {
    srv = await startServer({ accounts: ['acme', 'beta'] });
});
after(async () => {
    await srv?.stop();
});

test('GET /messages on a fresh account -> {"data":[],"next_cursor":null}', async () => {
    // DESIGN 7: GET /messages -> list {"data":[...],"next_cursor":null}.
    const r = await srv.v1('GET', '/messages');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { data: [], next_cursor: null });
});

test('GET /messages with filters -> empty list', async () => {
    // DESIGN 7: GET /messages ?to=&status=&kind=.
    const q = new URLSearchParams({ to: '+1 (646) 555-0101', status: 'queued', kind: 'send', limit: '10' });
    const r = await srv.v1('GET', `/messages?${q}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { data: [], next_cursor: null });
});

test('GET /messages with an unknown status or kind -> 422 naming it, or an empty list', async () => {
    // DESIGN 7: status is one of queued|sent|delivered|failed|refused; kind one of cta|confirmation|keyword_reply|send.
    for (const [k, v] of [['status', 'exploded'], ['kind', 'spam']]) {
        const r = await srv.v1('GET', `/messages?${k}=${v}`);
        if (r.status === 200) assert.deepEqual(r.json.data, []);
        else { assert.equal(r.status, 422, r.text); assert.equal(errorOf(r).field, k); }
    }
});

test('GET /messages/{unknown} -> 404 not_found', async () => {
    // DESIGN 7: GET /messages/{id}; unknown -> 404.
    for (const id of ['unknown', '987654321', '00000000-0000-0000-0000-000000000000']) {
        const r = await srv.v1('GET', `/messages/${id}`);
        assert.equal(r.status, 404, `${id}: ${r.text}`);
        assert.equal(errorOf(r).code, 'not_found');
    }
});

test('consent changes alone queue no message in the outbox', async () => {
    // DESIGN 2: outbound messages are written by CTA, confirmation, keyword replies or the send API only.
    const c = await srv.v1('POST', '/consents', { body: { phone: num(1), scope: 'all', state: 'opted_in' } });
    assert.equal(c.status, 201, c.text);
    const r = await srv.v1('GET', '/messages');
    assert.deepEqual(r.json, { data: [], next_cursor: null });
});

test('POST /messages to a number without consent -> 422 no_consent, stored as refused',
    async () => {
        // DESIGN 7: POST /messages refused: 422 with error.code = the check's reason, stored with status refused.
        const r = await srv.v1('POST', '/messages', { body: { to: num(2), text: 'hello' } });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).code, 'no_consent');
        const l = await srv.v1('GET', '/messages?status=refused');
        assert.equal(l.json.data.length, 1);
        assert.equal(l.json.data[0].to, num(2));
        assert.equal(l.json.data[0].reason, 'no_consent');
        assert.equal(l.json.data[0].kind, 'send');
    });

test('POST /messages to an opted-in number -> 202 queued, listed and fetchable',
    async () => {
        // DESIGN 7: POST /messages -> 202 message; GET /messages/{id}.
        const r = await srv.v1('POST', '/messages', { body: { to: '16465550101', text: 'hi there' } });
        assert.equal(r.status, 202, r.text);
        assert.equal(r.json.to, num(1));
        assert.ok(['queued', 'sent', 'delivered'].includes(r.json.status));
        const g = await srv.v1('GET', `/messages/${r.json.id}`);
        assert.equal(g.status, 200, g.text);
        assert.equal(g.json.text, 'hi there');
        const other = await srv.v1('GET', `/messages/${r.json.id}`, { key: srv.accounts.beta.api_key });
        assert.equal(other.status, 404, 'another account must not see the message');
    });

test('GET /messages of another account stays empty', async () => {
    // DESIGN 2: no query ever crosses accounts.
    const r = await srv.v1('GET', '/messages', { key: srv.accounts.beta.api_key });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { data: [], next_cursor: null });
});
