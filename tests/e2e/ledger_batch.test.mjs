// issue 16: the writer writes and signs each account's ledger head once per commit batch. Concurrent
// consent writes of two accounts, some of them refused inside their writer job (their savepoint rolled
// back between jobs that succeed, in the same batches), must leave `consentd ledger verify` passing with
// every event chained and each head signed, and GET /events gapless.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';

let srv;
const N = 120;
// Valid NANP numbers (exchange 220, as bench/protexting.lua uses), distinct per purpose.
const phone = (block, i) => `+1646${220 + block}${String(i).padStart(4, '0')}`;

before(async () => {
    srv = await startServer({ accounts: ['acme', 'beta'] });
    for (let i = 0; i < N; i++) {
        const r = await srv.v1('POST', '/consents', { body: { phone: phone(0, i), scope: 'all', state: 'opted_in' } });
        assert.equal(r.status, 201, r.text);
    }
});
after(async () => {
    await srv?.stop();
});

test('concurrent writes of two accounts with refused jobs between them: the ledger verifies', async () => {
    const beta = srv.accounts.beta.api_key;
    const rs = [];
    // Waves of 16 triples (48 requests at once, below the server's connection limits).
    for (let w = 0; w < N; w += 16) {
        const calls = [];
        for (let i = w; i < Math.min(N, w + 16); i++) {
            calls.push(srv.v1('POST', '/consents', { body: { phone: phone(1, i), scope: 'all', state: 'opted_in' } }));
            // Refused in the writer job (already opted in): its savepoint is rolled back.
            calls.push(srv.v1('POST', '/consents', { body: { phone: phone(0, i), scope: 'all', state: 'pending' } }));
            calls.push(srv.v1('POST', '/consents', {
                key: beta, body: { phone: phone(2, i), scope: 'all', state: 'opted_in' },
            }));
        }
        rs.push(...(await Promise.all(calls)));
    }
    for (let i = 0; i < rs.length; i++) {
        assert.equal(rs[i].status, i % 3 === 1 ? 409 : 201, rs[i].text);
    }
    const all = await srv.cli(['ledger', 'verify']);
    assert.equal(all.code, 0, all.stdout + all.stderr);
    assert.deepEqual(all.json, { ok: true, events: 3 * N });
    const acme = await srv.cli(['ledger', 'verify', '--account', 'acme']);
    assert.deepEqual(acme.json, { ok: true, events: 2 * N });

    // The seqs each answer carried are exactly 1..2N for acme and 1..N for beta, no gap, no repeat.
    const seqs = (k) => rs.filter((r, i) => i % 3 === k).map((r) => r.json.event.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs(0), Array.from({ length: N }, (_, i) => N + 1 + i));
    assert.deepEqual(seqs(2), Array.from({ length: N }, (_, i) => 1 + i));
});
