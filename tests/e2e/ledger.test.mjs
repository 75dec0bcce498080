// Consent ledger: GET /events and `consentd ledger verify`, including tampering with the sqlite3 CLI
// (DESIGN 2 "consent event", DESIGN 7 events row; issue 3 item 6 and item 8 "ledger verify failing after a
// row is edited with the sqlite3 CLI").
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, access, rm } from 'node:fs/promises';
import path from 'node:path';
import { startServer, runCli, errorOf, allPages, num, makeTempDir, ZERO_HASH, HEX64, RFC3339_UTC } from './lib/server.mjs';

let srv;
let group;
const scratch = []; // temp dirs holding tampered copies
const posted = []; // acme's events as returned by POST /consents, in order

function sqlite(db, sql) {
    return new Promise((resolve, reject) => {
        execFile('sqlite3', ['-bail', db, sql], { timeout: 10000 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`sqlite3 ${db} "${sql}" failed: ${stderr || err.message}`));
            else resolve(stdout.trim());
        });
    });
}

before(async () => {
    srv = await startServer({ accounts: ['acme', 'beta'] });
    group = (await srv.v1('POST', '/groups', { body: { name: 'G' } })).json.id;
    const steps = [
        [num(60), 'all', 'opted_in'],
        [num(60), 'all', 'opted_out'],
        [num(61), `group:${group}`, 'opted_in'],
        [num(62), 'all', 'pending'],
        [num(61), `group:${group}`, 'opted_out'],
    ];
    for (const [phone, scope, state] of steps) {
        const r = await srv.v1('POST', '/consents', { body: { phone, scope, state } });
        assert.equal(r.status, 201, r.text);
        posted.push(r.json.event);
    }
    for (const phone of [num(60), num(63)]) {
        const r = await srv.v1('POST', '/consents', {
            key: srv.accounts.beta.api_key, body: { phone, scope: 'all', state: 'opted_in' },
        });
        assert.equal(r.status, 201, r.text);
    }
});
after(async () => {
    await srv?.stop();
    if (!process.env.CONSENTD_E2E_KEEP) {
        for (const d of scratch) await rm(d, { recursive: true, force: true });
    }
});

describe('GET /events', () => {
    test('lists the ledger oldest first, seq 1..N, each prev_hash the previous hash, first prev_hash zeros', async () => {
        // DESIGN 2: each event stores the SHA-256 of its content plus the previous event's hash; lead contract: seq from 1, prev_hash 64 zeros.
        const r = await srv.v1('GET', '/events');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.next_cursor, null);
        const ev = r.json.data;
        assert.deepEqual(ev.map((e) => e.seq), [1, 2, 3, 4, 5]);
        assert.equal(ev[0].prev_hash, ZERO_HASH);
        for (let i = 0; i < ev.length; i++) {
            assert.match(ev[i].hash, HEX64);
            assert.match(ev[i].prev_hash, HEX64);
            assert.match(ev[i].created_at, RFC3339_UTC);
            if (i > 0) {
                assert.equal(ev[i].prev_hash, ev[i - 1].hash, `seq ${ev[i].seq}`);
                assert.ok(ev[i].created_at >= ev[i - 1].created_at);
            }
        }
        assert.equal(new Set(ev.map((e) => e.hash)).size, ev.length);
        assert.deepEqual(ev.map((e) => [e.phone, e.scope, e.old_state, e.new_state]), [
            [num(60), 'all', ev[0].old_state, 'opted_in'],
            [num(60), 'all', 'opted_in', 'opted_out'],
            [num(61), `group:${group}`, ev[2].old_state, 'opted_in'],
            [num(62), 'all', ev[3].old_state, 'pending'],
            [num(61), `group:${group}`, 'opted_in', 'opted_out'],
        ]);
    });

    test('the listed events are exactly the events POST /consents returned', async () => {
        // DESIGN 7: POST /consents answers with the event; GET /events lists the same events.
        const r = await srv.v1('GET', '/events');
        assert.deepEqual(r.json.data, posted);
    });

    test('?phone= in any format filters by contact', async () => {
        // DESIGN 7: GET /events ?phone=; numbers accepted in any format.
        for (const p of ['+16465550160', '16465550160', '+1 (646) 555-0160']) {
            const r = await srv.v1('GET', `/events?phone=${encodeURIComponent(p)}`);
            assert.equal(r.status, 200, r.text);
            assert.deepEqual(r.json.data.map((e) => e.seq), [1, 2], p);
        }
    });

    test('?scope= filters by scope', async () => {
        // DESIGN 7: GET /events ?scope=.
        const r = await srv.v1('GET', `/events?scope=${encodeURIComponent(`group:${group}`)}`);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.data.map((e) => e.seq), [3, 5]);
        const all = await srv.v1('GET', '/events?scope=all');
        assert.deepEqual(all.json.data.map((e) => e.seq), [1, 2, 4]);
    });

    test('?since= filters by time', async () => {
        // DESIGN 7: GET /events ?since= (RFC 3339).
        const past = await srv.v1('GET', `/events?since=${encodeURIComponent('2000-01-01T00:00:00Z')}`);
        assert.equal(past.status, 200, past.text);
        assert.equal(past.json.data.length, 5);
        const future = await srv.v1('GET', `/events?since=${encodeURIComponent('2999-01-01T00:00:00Z')}`);
        assert.equal(future.status, 200, future.text);
        assert.deepEqual(future.json, { data: [], next_cursor: null });
    });

    test('?since= that is not a time -> 4xx naming since', async () => {
        // DESIGN 7: times are RFC 3339; errors are {"error":{...}} with 400/422.
        const r = await srv.v1('GET', '/events?since=yesterday');
        assert.ok([400, 422].includes(r.status), r.text);
        assert.equal(errorOf(r).field, 'since');
    });

    test('limit=2 pages 2,2,1 in seq order without duplicates', async () => {
        // DESIGN 7: lists page with ?limit= and ?cursor=; events oldest first.
        const pages = await allPages(srv, '/events', { limit: 2 });
        assert.deepEqual(pages.map((p) => p.data.length), [2, 2, 1]);
        assert.deepEqual(pages.flatMap((p) => p.data.map((e) => e.seq)), [1, 2, 3, 4, 5]);
    });

    test('each account has its own chain starting at seq 1 and sees only its events', async () => {
        // DESIGN 2: no query ever crosses accounts; lead contract: seq increases by 1 per account from 1.
        const r = await srv.v1('GET', '/events', { key: srv.accounts.beta.api_key });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.data.map((e) => [e.seq, e.phone]), [[1, num(60)], [2, num(63)]]);
        assert.equal(r.json.data[0].prev_hash, ZERO_HASH);
        assert.equal(r.json.data[1].prev_hash, r.json.data[0].hash);
        const mine = await srv.v1('GET', `/events?phone=${encodeURIComponent(num(63))}`);
        assert.deepEqual(mine.json.data, []);
    });
});

describe('ledger verify', () => {
    test('an intact ledger verifies: exit 0, {"ok":true,"events":N}', async () => {
        // DESIGN 2/6: `consentd ledger verify [--account NAME]`.
        const all = await srv.cli(['ledger', 'verify']);
        assert.equal(all.code, 0, all.stdout + all.stderr);
        assert.deepEqual(all.json, { ok: true, events: 7 });
        const acme = await srv.cli(['ledger', 'verify', '--account', 'acme']);
        assert.equal(acme.code, 0, acme.stdout + acme.stderr);
        assert.deepEqual(acme.json, { ok: true, events: 5 });
        const beta = await srv.cli(['ledger', 'verify', '--account', 'beta']);
        assert.deepEqual(beta.json, { ok: true, events: 2 });
    });
});

describe('tampering with the sqlite3 CLI is detected', () => {
    let baseDir;
    let acmeId;

    before(async () => {
        // Stop the server (cleanly) so the database file is quiescent, then tamper with copies of it.
        await srv.stop({ keepDir: true });
        baseDir = srv.dir;
        acmeId = srv.accounts.acme.id;
    });

    async function copyDb(label) {
        const dir = await makeTempDir();
        scratch.push(dir);
        const db = path.join(dir, `${label}.db`);
        for (const suffix of ['', '-wal', '-shm']) {
            const src = srv.dbPath + suffix;
            try { await access(src); } catch { continue; }
            await copyFile(src, db + suffix);
        }
        // Issue 8 item 12: the head signatures are checked with the key kept next to the database.
        await copyFile(path.join(path.dirname(srv.dbPath), 'ledger.key'), path.join(dir, 'ledger.key'));
        // An attacker with file access can drop any append-only trigger first.
        const triggers = await sqlite(db, "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='events';");
        for (const t of triggers.split('\n').filter(Boolean)) await sqlite(db, `DROP TRIGGER "${t}";`);
        return db;
    }

    async function verify(db, account) {
        const args = ['ledger', 'verify'];
        if (account) args.push('--account', account);
        return runCli(args, { dbPath: db });
    }

    function assertBroken(r, seqs, problems) {
        assert.equal(r.code, 1, `ledger verify should exit 1\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
        assert.ok(r.json, `ledger verify should print JSON: ${r.stdout}`);
        assert.equal(r.json.ok, false, r.stdout);
        assert.equal(r.json.account, 'acme', r.stdout);
        if (seqs) assert.ok(seqs.includes(r.json.seq), `expected seq in ${seqs}: ${r.stdout}`);
        assert.equal(typeof r.json.problem, 'string', r.stdout);
        if (problems) assert.ok(problems.includes(r.json.problem), `expected problem in ${problems}: ${r.stdout}`);
    }

    test('the copied database still verifies before tampering', async () => {
        // DESIGN 2: ledger verify on an untouched ledger (and the ledger survives a clean stop).
        const db = await copyDb('clean');
        const r = await verify(db);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.deepEqual(r.json, { ok: true, events: 7 });
    });

    test('editing new_state of seq 2 -> exit 1 naming seq 2 (hash_mismatch)', async () => {
        // Issue 3 item 8: ledger verify fails after a row is edited with the sqlite3 CLI; DESIGN 2: any edit is detectable.
        const db = await copyDb('edit');
        await sqlite(db, `UPDATE events SET new_state='opted_in' WHERE seq=2 AND account_id=${acmeId};`);
        assert.equal(await sqlite(db, `SELECT new_state FROM events WHERE seq=2 AND account_id=${acmeId};`), 'opted_in');
        const r = await verify(db);
        assertBroken(r, [2], ['hash_mismatch']);
        const scoped = await verify(db, 'acme');
        assertBroken(scoped, [2], ['hash_mismatch']);
    });

    test('editing provenance (created_at, phone) is detected at that seq', async () => {
        // DESIGN 2: the hash covers the event's content (who, what, how, when).
        const db = await copyDb('edit2');
        // The time column is created_at (RFC 3339 text) or created_ms (integer), depending on the schema.
        const cols = (await sqlite(db, "SELECT name FROM pragma_table_info('events');")).split('\n');
        const set = cols.includes('created_at') ? "created_at='2001-01-01T00:00:00Z'" : 'created_ms=978307200000';
        assert.ok(cols.includes('created_at') || cols.includes('created_ms'), `events columns: ${cols}`);
        await sqlite(db, `UPDATE events SET ${set} WHERE seq=4 AND account_id=${acmeId};`);
        assertBroken(await verify(db, 'acme'), [4]);
        const db2 = await copyDb('edit3');
        await sqlite(db2, `UPDATE events SET phone='+16465550199' WHERE seq=3 AND account_id=${acmeId};`);
        assertBroken(await verify(db2, 'acme'), [3]);
    });

    test('deleting seq 2 -> exit 1 naming seq 2', async () => {
        // DESIGN 2: any deletion is detectable; lead contract: problem "missing".
        const db = await copyDb('delete');
        await sqlite(db, `DELETE FROM events WHERE seq=2 AND account_id=${acmeId};`);
        assertBroken(await verify(db), [2]);
    });

    test('deleting the newest event -> exit 1', async () => {
        // DESIGN 2: any deletion is detectable, including the last one (lead contract: head_mismatch).
        const db = await copyDb('delete-last');
        await sqlite(db, `DELETE FROM events WHERE seq=5 AND account_id=${acmeId};`);
        assertBroken(await verify(db, 'acme'), null);
    });

    test('swapping seq 2 and 3 -> exit 1 at the reordered position', async () => {
        // Issue 3 item 6: ledger verify reports the first altered, deleted or reordered event.
        const db = await copyDb('reorder');
        await sqlite(db, [
            `UPDATE events SET seq=-2 WHERE seq=2 AND account_id=${acmeId};`,
            `UPDATE events SET seq=2 WHERE seq=3 AND account_id=${acmeId};`,
            `UPDATE events SET seq=3 WHERE seq=-2 AND account_id=${acmeId};`,
        ].join(' '));
        assertBroken(await verify(db), [2, 3]);
    });

    test('tampering with one account leaves the other account verifiable', async () => {
        // DESIGN 2: every account has its own chain.
        const db = await copyDb('other');
        await sqlite(db, `UPDATE events SET new_state='opted_out' WHERE seq=1 AND account_id=${acmeId};`);
        const beta = await verify(db, 'beta');
        assert.equal(beta.code, 0, beta.stdout + beta.stderr);
        assert.deepEqual(beta.json, { ok: true, events: 2 });
        assertBroken(await verify(db, 'acme'), [1]);
    });

    test('the server does not "repair" a tampered ledger on restart', async () => {
        // DESIGN 2: the ledger is append-only; a restart must keep the evidence of tampering.
        const db = await copyDb('restart');
        await sqlite(db, `UPDATE events SET new_state='opted_in' WHERE seq=2 AND account_id=${acmeId};`);
        const s2 = await startServer({ accounts: [], dir: path.dirname(db), dbPath: db });
        try {
            const h = await s2.api('GET', '/healthz');
            assert.equal(h.status, 200);
        } finally {
            await s2.stop({ keepDir: true });
        }
        assertBroken(await verify(db, 'acme'), [2]);
    });

    test('unknown account -> non-zero exit', async () => {
        // DESIGN 6: ledger verify [--account NAME] for an account that does not exist is an error.
        const r = await verify(path.join(baseDir, 'consentd.db'), 'nobody');
        assert.notEqual(r.code, 0, r.stdout);
    });
});
