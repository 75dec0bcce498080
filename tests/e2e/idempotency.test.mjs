// Idempotency-Key on every POST (DESIGN 7 last paragraph; issue 3 item 7 and item 8 "idempotency").
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

async function eventCount(key) {
    const r = await srv.v1('GET', '/events?limit=1000', { key });
    assert.equal(r.status, 200, r.text);
    return r.json.data.length;
}

async function contactCount(key) {
    const r = await srv.v1('GET', '/contacts?limit=1000', { key });
    assert.equal(r.status, 200, r.text);
    return r.json.data.length;
}

test('POST /consents retried with the same key and body -> same status and body, no new ledger event', async () => {
    // DESIGN 7: a retry with the same key and body returns the first answer (same status and body) and writes nothing.
    const body = { phone: num(70), scope: 'all', state: 'opted_in', channel: 'web' };
    const headers = { 'Idempotency-Key': 'consent-70-a' };
    const first = await srv.v1('POST', '/consents', { body, headers });
    assert.equal(first.status, 201, first.text);
    const n = await eventCount();
    for (let i = 0; i < 3; i++) {
        const again = await srv.v1('POST', '/consents', { body, headers });
        assert.equal(again.status, first.status);
        assert.equal(again.text, first.text);
    }
    assert.equal(await eventCount(), n);
    const v = await srv.cli(['ledger', 'verify', '--account', 'acme']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(v.json.events, n);
});

test('the replayed answer is the first one even after the state changed', async () => {
    // DESIGN 7: a retry returns the first answer and writes nothing (it does not re-apply the change).
    const body = { phone: num(71), scope: 'all', state: 'opted_in' };
    const headers = { 'Idempotency-Key': 'consent-71' };
    const first = await srv.v1('POST', '/consents', { body, headers });
    assert.equal(first.status, 201, first.text);
    const out = await srv.v1('POST', '/consents', { body: { ...body, state: 'opted_out' } });
    assert.equal(out.status, 201, out.text);
    const again = await srv.v1('POST', '/consents', { body, headers });
    assert.equal(again.status, 201);
    assert.equal(again.text, first.text);
    const chk = await srv.v1('GET', `/check?to=${encodeURIComponent(num(71))}`);
    assert.equal(chk.json.reason, 'opted_out', 'the replay must not opt the number back in');
});

test('same key with a different body -> 422 idempotency_mismatch, nothing written', async () => {
    // DESIGN 7: the same key with another body is 422 idempotency_mismatch.
    const headers = { 'Idempotency-Key': 'consent-72' };
    const first = await srv.v1('POST', '/consents', { body: { phone: num(72), scope: 'all', state: 'opted_in' }, headers });
    assert.equal(first.status, 201, first.text);
    const n = await eventCount();
    const other = await srv.v1('POST', '/consents', { body: { phone: num(72), scope: 'all', state: 'opted_out' }, headers });
    assert.equal(other.status, 422, other.text);
    assert.equal(errorOf(other).code, 'idempotency_mismatch');
    assert.equal(await eventCount(), n);
    const chk = await srv.v1('GET', `/check?to=${encodeURIComponent(num(72))}`);
    assert.equal(chk.json.reason, 'opted_in');
});

test('POST /contacts replay -> same 201 and body, no second contact; mismatch -> 422', async () => {
    // DESIGN 7: every POST accepts Idempotency-Key.
    const headers = { 'Idempotency-Key': 'contact-73' };
    const body = { phone: num(73), first_name: 'Idem' };
    const first = await srv.v1('POST', '/contacts', { body, headers });
    assert.equal(first.status, 201, first.text);
    const n = await contactCount();
    const again = await srv.v1('POST', '/contacts', { body, headers });
    assert.equal(again.status, 201, 'a replay keeps the first status (201), not the upsert status (200)');
    assert.equal(again.text, first.text);
    assert.equal(await contactCount(), n);
    const diff = await srv.v1('POST', '/contacts', { body: { ...body, first_name: 'Other' }, headers });
    assert.equal(diff.status, 422, diff.text);
    assert.equal(errorOf(diff).code, 'idempotency_mismatch');
    const g = await srv.v1('GET', `/contacts/${first.json.id}`);
    assert.equal(g.json.first_name, 'Idem');
});

test('POST /groups replay -> one group', async () => {
    // DESIGN 7: every POST accepts Idempotency-Key.
    const headers = { 'Idempotency-Key': 'group-1' };
    const first = await srv.v1('POST', '/groups', { body: { name: 'Once' }, headers });
    assert.equal(first.status, 201, first.text);
    const again = await srv.v1('POST', '/groups', { body: { name: 'Once' }, headers });
    assert.equal(again.status, 201);
    assert.equal(again.text, first.text);
    const l = await srv.v1('GET', '/groups');
    assert.equal(l.json.data.filter((g) => g.name === 'Once').length, 1);
});

test('without a key, two identical POST /groups create two groups', async () => {
    // DESIGN 7: only the Idempotency-Key makes a POST idempotent (control for the test above).
    const a = await srv.v1('POST', '/groups', { body: { name: 'Twice' } });
    const b = await srv.v1('POST', '/groups', { body: { name: 'Twice' } });
    if (a.status === 201 && b.status === 201) assert.notEqual(a.json.id, b.json.id);
});

test('keys are per account: another account using the same key gets its own answer', async () => {
    // DESIGN 7: Idempotency keys are per account.
    const headers = { 'Idempotency-Key': 'shared-key' };
    const a = await srv.v1('POST', '/consents', { body: { phone: num(74), scope: 'all', state: 'opted_in' }, headers });
    assert.equal(a.status, 201, a.text);
    const beta = srv.accounts.beta.api_key;
    const b = await srv.v1('POST', '/consents', {
        key: beta, headers, body: { phone: num(75), scope: 'all', state: 'opted_out' },
    });
    assert.equal(b.status, 201, b.text);
    assert.equal(b.json.event.phone, num(75));
    assert.equal(b.json.event.new_state, 'opted_out');
    const bEvents = await srv.v1('GET', '/events', { key: beta });
    assert.deepEqual(bEvents.json.data.map((e) => e.phone), [num(75)]);
    // And beta's body with the same key does not collide with acme's stored one on replay.
    const b2 = await srv.v1('POST', '/consents', {
        key: beta, headers, body: { phone: num(75), scope: 'all', state: 'opted_out' },
    });
    assert.equal(b2.text, b.text);
});

test('a replay after a restart still returns the first answer (keys are durable)', async () => {
    // DESIGN 7: keys are kept at least 24 hours; DESIGN 5: a request is acknowledged only after its commit is durable.
    const headers = { 'Idempotency-Key': 'durable-76' };
    const body = { phone: num(76), scope: 'all', state: 'opted_in' };
    const first = await srv.v1('POST', '/consents', { body, headers });
    assert.equal(first.status, 201, first.text);
    const { dir, dbPath, key, accounts } = srv;
    await srv.stop({ keepDir: true });
    srv = await startServer({ accounts: [], dir, dbPath });
    srv.key = key;
    srv.accounts = accounts;
    const n = await eventCount();
    const again = await srv.v1('POST', '/consents', { body, headers });
    assert.equal(again.status, 201);
    assert.equal(again.text, first.text);
    assert.equal(await eventCount(), n);
});

test('POST /keys retried with its Idempotency-Key: the same key id, but the secret is not shown again', async () => {
    // DESIGN 7: a new key is shown once and stored hashed; a retry returns the first answer
    // except the secret, which the idempotency record does not keep.
    const headers = { 'Idempotency-Key': 'key-once' };
    const first = await srv.v1('POST', '/keys', { body: { name: 'ci' }, headers });
    assert.equal(first.status, 201, first.text);
    assert.match(first.json.key, /^cd_[0-9a-f]{16}_/);
    const again = await srv.v1('POST', '/keys', { body: { name: 'ci' }, headers });
    assert.equal(again.status, 201, again.text);
    assert.equal(again.json.id, first.json.id);
    assert.equal(again.json.key, null);
    const list = await srv.v1('GET', '/keys');
    assert.equal(list.json.data.filter((k) => k.name === 'ci').length, 1, 'one key was made');
    // The secret itself works.
    const me = await srv.v1('GET', '/contacts', { key: first.json.key });
    assert.equal(me.status, 200);
});
