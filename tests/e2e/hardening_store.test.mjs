// Issue 8, the storage side: writer backpressure (item 7), total caps on a contact's tags
// and custom fields (item 11), the idempotency purge keeping up (item 11), and a database
// created for its owner only (item 13).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { startServer, errorOf, num } from './lib/server.mjs';

const servers = [];
after(async () => {
    for (const s of servers) await s.stop();
});

async function start(opts) {
    const s = await startServer(opts);
    servers.push(s);
    return s;
}

function sqlite(db, sql) {
    return new Promise((resolve, reject) => {
        execFile('sqlite3', ['-bail', db, sql], { timeout: 20000 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`sqlite3 ${sql}: ${stderr || err.message}`));
            else resolve(stdout.trim());
        });
    });
}

/** Holds the database's write lock from another process (the sqlite3 CLI) until release(). */
async function holdWriteLock(db) {
    const p = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    await new Promise((resolve, reject) => {
        p.stdout.on('data', (d) => { out += d; if (out.includes('locked')) resolve(); });
        p.on('error', reject);
        p.on('exit', () => reject(new Error('sqlite3 exited before taking the lock')));
        p.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n");
    });
    return {
        release() {
            const done = new Promise((r) => p.on('exit', r));
            p.stdin.end('COMMIT;\n');
            return done;
        },
    };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a stalled writer: over the queue bound and past the deadline -> 503 with Retry-After, nothing written', async () => {
    // issue 8 item 7: bound the writer queue (over it: 503 with Retry-After), give jobs a deadline.
    const srv = await start({ args: ['--writer-queue', '2', '--writer-deadline-ms', '300'] });
    const ok = await srv.v1('POST', '/contacts', { body: { phone: num(1) } });
    assert.equal(ok.status, 201, ok.text);

    const lock = await holdWriteLock(srv.dbPath);
    const phones = [2, 3, 4, 5, 6, 7].map(num);
    const answers = [];
    const pending = phones.map((phone) => srv.v1('POST', '/contacts', { body: { phone } })
        .then((r) => { answers.push(r); return r; }));
    // The writer takes at most the queue's worth at a time and the queue holds 2: of the six,
    // at least two are refused at once, while the writer is still stuck.
    for (let i = 0; i < 100 && answers.length < 2; i++) await sleep(20);
    assert.ok(answers.length >= 2, `only ${answers.length} answered while the writer was stuck`);
    for (const r of answers) {
        assert.equal(r.status, 503, r.text);
        assert.equal(r.headers['retry-after'], '1');
        assert.equal(errorOf(r).code, 'overloaded');
    }
    await sleep(500); // the queued ones are now past their 300 ms deadline
    await lock.release();
    const all = await Promise.all(pending);
    // The queued ones were not run: past their deadline, they are answered 503 too.
    for (const r of all) {
        assert.equal(r.status, 503, r.text);
        assert.equal(r.headers['retry-after'], '1');
        assert.equal(errorOf(r).code, 'overloaded');
    }
    const stored = await sqlite(srv.dbPath, `SELECT count(*) FROM contacts WHERE phone IN (${phones.map((p) => `'${p}'`).join(',')})`);
    assert.equal(stored, '0', 'a request answered 503 must have written nothing');

    // Once the writer is free, the retry goes through.
    const retry = await srv.v1('POST', '/contacts', { body: { phone: phones[0] } });
    assert.equal(retry.status, 201, retry.text);
});

test('--writer-queue and --writer-deadline-ms reject bad values', async () => {
    // one number syntax for every numeric flag: digits only, in range (no sign, no spaces)
    for (const args of [['--writer-queue', '-1'], ['--writer-deadline-ms', 'soon'],
        ['--writer-queue', '+5'], ['--writer-queue', ' 5'], ['--writer-queue', '10000001'],
        ['--max-connections', '+5'], ['--max-connections', '1000001'],
        ['--request-timeout', '99999999999999999999999']]) {
        let srv;
        try {
            srv = await startServer({ accounts: [], args });
        } catch (e) {
            assert.match(e.message, /exited early/);
            continue;
        }
        await srv.stop(); // accepted: stop it, so that the failure is reported, not a hang
        assert.fail(`${args.join(' ')} was accepted`);
    }
});

test('tags and custom fields have total caps that hold after a merge (422)', async () => {
    // issue 8 item 11: cap the totals (clear 413/422); an upsert merges, so the totals can grow.
    const srv = await start();
    const phone = num(20);
    const tags = (from, n) => Array.from({ length: n }, (_, i) => `t${from + i}`);
    let r = await srv.v1('POST', '/contacts', { body: { phone, tags: tags(0, 60) } });
    assert.equal(r.status, 201, r.text);
    const id = r.json.id;
    r = await srv.v1('POST', '/contacts', { body: { phone, tags: tags(60, 60) } });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorOf(r).code, 'too_many_tags');
    assert.equal(errorOf(r).field, 'tags');
    r = await srv.v1('GET', `/contacts/${id}`);
    assert.equal(r.json.tags.length, 60, 'the refused merge changed nothing');
    // Up to the cap is fine, and tags it already has do not count twice.
    r = await srv.v1('POST', '/contacts', { body: { phone, tags: tags(20, 80) } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.tags.length, 100);

    const custom = (from, n, size = 8) => Object.fromEntries(
        Array.from({ length: n }, (_, i) => [`k${from + i}`, 'v'.repeat(size)]));
    r = await srv.v1('POST', '/contacts', { body: { phone, custom: custom(0, 30) } });
    assert.equal(r.status, 200, r.text);
    r = await srv.v1('POST', '/contacts', { body: { phone, custom: custom(30, 30) } });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorOf(r).code, 'too_many_custom_fields');
    assert.equal(errorOf(r).field, 'custom');
    // Updating keys it has does not add to the count, but their size does count.
    r = await srv.v1('POST', '/contacts', { body: { phone, custom: custom(0, 10, 1000) } });
    assert.equal(r.status, 200, r.text);
    r = await srv.v1('POST', '/contacts', { body: { phone, custom: custom(10, 10, 1000) } });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorOf(r).code, 'custom_too_large');
    assert.equal(errorOf(r).field, 'custom');
    r = await srv.v1('GET', `/contacts/${id}`);
    assert.equal(Object.keys(r.json.custom).length, 30);
    assert.equal(r.json.custom.k10, 'v'.repeat(8));
    // One request within the per-item limits can be too large as a whole.
    r = await srv.v1('POST', '/contacts', { body: { phone: num(21), custom: custom(0, 20, 1000) } });
    assert.equal(r.status, 422, r.text);
    assert.equal(errorOf(r).code, 'custom_too_large');
    // PATCH replaces, so it can bring a contact back under the cap.
    r = await srv.v1('PATCH', `/contacts/${id}`, { body: { tags: ['a'], custom: { k: 'v' } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.tags, ['a']);
});

test('the idempotency purge removes every expired record, not 1000 a minute', async () => {
    // issue 8 item 11: the idempotency purge removed at most 1000 rows a minute; it now purges until done.
    const first = await start();
    await first.stop({ keepDir: true });
    servers.splice(servers.indexOf(first), 1);
    const old = Date.now() - 8 * 24 * 3600 * 1000;
    const acct = first.account.id;
    await sqlite(first.dbPath, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3500)
        INSERT INTO idempotency (account_id, key, request_hash, status, body, created_ms)
        SELECT ${acct}, 'old-' || i, '', 200, '{}', ${old} + i FROM n;
        INSERT INTO idempotency VALUES (${acct}, 'fresh', '', 200, '{}', ${Date.now()});`);
    assert.equal(await sqlite(first.dbPath, 'SELECT count(*) FROM idempotency'), '3501');

    const srv = await start({ dir: first.dir, dbPath: first.dbPath, accounts: [] });
    let left;
    for (let i = 0; i < 50; i++) {
        left = await sqlite(srv.dbPath, 'SELECT count(*) FROM idempotency');
        if (left === '1') break;
        await sleep(100);
    }
    assert.equal(left, '1', 'every record past its week is gone within seconds');
    assert.equal(await sqlite(srv.dbPath, 'SELECT key FROM idempotency'), 'fresh');
});

test('a fresh database and its -wal and -shm files are created 0600', async () => {
    // issue 8 item 13: database files are created 0600.
    const srv = await start();
    const r = await srv.v1('POST', '/contacts', { body: { phone: num(30) } });
    assert.equal(r.status, 201, r.text);
    for (const f of [srv.dbPath, `${srv.dbPath}-wal`, `${srv.dbPath}-shm`]) {
        const st = await stat(f);
        assert.equal((st.mode & 0o777).toString(8), '600', f);
    }
});
