// Issue 8 items 11 (part), 12 and 13 (part): the ledger can be checked by anyone from an export, its
// head is signed with a key kept outside the database, raw user agents are kept as valid UTF-8, the
// export is streamed a page at a time, and CSV cells cannot run as spreadsheet formulas.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, chmod, copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, runCli, rawExchange, num, makeTempDir, REPO, ZERO_HASH } from './lib/server.mjs';
import { eventHash, parseCsv } from '../../scripts/verify-export.mjs';

const VERIFIER = path.join(REPO, 'scripts', 'verify-export.mjs');
// The hashed content of an event (core/ledger.c cd_ledger_content): the export carries exactly these plus "hash".
const HASHED = ['account_id', 'channel', 'contact_id', 'created_ms', 'credential_id', 'disclosure_sha256', 'ext_ref',
    'ip', 'keyword', 'new_state', 'old_state', 'phone', 'prev_hash', 'request_id', 'scope', 'seq', 'session', 'site',
    'surface', 'user_agent'];
const scratch = [];

function run(cmd, args, opts = {}) {
    return new Promise((resolve) => {
        execFile(cmd, args, { timeout: 20000, ...opts }, (err, stdout, stderr) => {
            resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
        });
    });
}
const sqlite = async (db, sql) => {
    const r = await run('sqlite3', ['-bail', db, sql]);
    if (r.code !== 0) throw new Error(`sqlite3 ${sql}: ${r.stderr}`);
    return r.stdout.trim();
};
const verifyFile = async (text, name = 'proof.json') => {
    const dir = await makeTempDir();
    scratch.push(dir);
    const f = path.join(dir, name);
    await writeFile(f, text);
    return run(process.execPath, [VERIFIER, f]);
};

// POST /api/v1/consents with raw header bytes (Node would re-encode a string header as UTF-8).
async function postRaw(srv, headerBytes, body) {
    const json = Buffer.from(JSON.stringify(body));
    const head = Buffer.from(`POST /api/v1/consents HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` +
        `Authorization: Bearer ${srv.key}\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n`, 'latin1');
    const raw = await rawExchange(srv.port, Buffer.concat([head, headerBytes, Buffer.from('\r\n\r\n'), json]));
    const status = Number(raw.slice(9, 12));
    const bodyText = Buffer.from(raw.slice(raw.indexOf('\r\n\r\n') + 4), 'latin1').toString('utf8');
    return { status, json: JSON.parse(bodyText) };
}

describe('export: exactly the hashed fields, checked by an independent verifier', () => {
    let srv;
    before(async () => {
        srv = await startServer();
        // site "" must stay "", and ext_ref/user_agent hold formula-like text for the CSV test.
        for (const [phone, state] of [[num(70), 'opted_in'], [num(71), 'opted_in'], [num(70), 'opted_out'], [num(70), 'opted_in']]) {
            const r = await srv.v1('POST', '/consents', {
                body: { phone, scope: 'all', state, site: '', ext_ref: '=HYPERLINK("http://evil")', user_agent: "'+1 caf\u00e9 \u{1F600}" },
            });
            assert.equal(r.status, 201, r.text);
        }
    });
    after(async () => { await srv?.stop(); });

    test('JSON export: each event is the hashed content plus hash, "" stays "", and the verifier passes', async () => {
        // Issue 8 item 12: "the export omits fields that are hashed, turns "" into null".
        const r = await srv.v1('GET', `/export?phone=${num(70)}`);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.events.map((e) => e.seq), [1, 3, 4]);
        for (const e of r.json.events) {
            assert.deepEqual(Object.keys(e).sort(), [...HASHED, 'hash'].sort());
            assert.equal(e.site, '');
            assert.equal(e.disclosure_sha256, '');
            assert.equal(eventHash(e), e.hash);
        }
        assert.equal(r.json.events[0].prev_hash, ZERO_HASH);
        assert.equal(r.json.events[2].prev_hash, r.json.events[1].hash); // seq 3 -> 4
        assert.equal(r.json.contact.phone, num(70));
        const v = await verifyFile(r.text);
        assert.equal(v.code, 0, v.stdout + v.stderr);
        assert.match(v.stdout, /ok: 3 events/);
    });

    test('a tampered export fails the verifier (edited field, broken link)', async () => {
        // Issue 8 item 12: the verifier recomputes every hash and the chain link.
        const r = await srv.v1('GET', `/export?phone=${num(70)}`);
        const edited = structuredClone(r.json);
        edited.events[1].new_state = 'opted_in';
        const v1 = await verifyFile(JSON.stringify(edited));
        assert.equal(v1.code, 1, v1.stdout);
        assert.match(v1.stderr, /seq 3: hash mismatch/);
        // Rehashing the edited event is not enough: the next event's prev_hash no longer matches.
        edited.events[1].hash = eventHash(edited.events[1]);
        const v2 = await verifyFile(JSON.stringify(edited));
        assert.equal(v2.code, 1, v2.stdout);
        assert.match(v2.stderr, /seq 4: prev_hash/);
    });

    test('the short verifier shown in README.md passes a real export and fails a tampered one', async () => {
        // Issue 8 item 12: "README shows a short verifier and a test runs it on an export".
        const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
        const m = readme.match(/## Proof[\s\S]*?```js\n([\s\S]*?)```/);
        assert.ok(m, 'README.md has a js verifier under "## Proof"');
        const dir = await makeTempDir();
        scratch.push(dir);
        const script = path.join(dir, 'verify.mjs');
        await writeFile(script, m[1]);
        const r = await srv.v1('GET', `/export?phone=${num(70)}`);
        await writeFile(path.join(dir, 'proof.json'), r.text);
        const ok = await run(process.execPath, [script, path.join(dir, 'proof.json')]);
        assert.equal(ok.code, 0, ok.stdout + ok.stderr);
        assert.match(ok.stdout, /ok: 3 events/);
        const edited = structuredClone(r.json);
        edited.events[0].scope = 'group:9';
        await writeFile(path.join(dir, 'bad.json'), JSON.stringify(edited));
        const bad = await run(process.execPath, [script, path.join(dir, 'bad.json')]);
        assert.equal(bad.code, 1, bad.stdout);
        assert.match(bad.stdout, /BROKEN/);
    });

    test('CSV export: same fields and values, formula cells prefixed with \', phones kept, verifier passes', async () => {
        // Issue 8 item 13: "CSV export neutralises cells starting with =, +, -, @".
        const r = await srv.v1('GET', `/export?phone=${num(70)}&format=csv`);
        assert.equal(r.status, 200, r.text);
        const lines = r.text.trim().split('\r\n');
        assert.equal(lines[0], [...HASHED, 'hash'].join(','));
        assert.ok(lines[1].includes(`"'=HYPERLINK(""http://evil"")"`), lines[1]);
        assert.ok(lines[1].includes(`"''+1 caf\u00e9 \u{1F600}"`), lines[1]);
        assert.ok(lines[1].includes(`"${num(70)}"`), lines[1]); // E.164: + and digits only, not a formula
        for (const line of lines.slice(1)) {
            // No cell starts with a formula character unless the ' is in front of it.
            for (const cell of line.match(/"(?:[^"]|"")*"|[^,]+/g)) assert.doesNotMatch(cell, /^"?[=\-@]/, cell);
        }
        const json = await srv.v1('GET', `/export?phone=${num(70)}`);
        assert.deepEqual(parseCsv(r.text), json.json.events);
        const v = await verifyFile(r.text, 'proof.csv');
        assert.equal(v.code, 0, v.stdout + v.stderr);
        const bad = await verifyFile(r.text.replace('"opted_out"', '"opted_in"'), 'proof.csv');
        assert.equal(bad.code, 1, bad.stdout);
    });
});

describe('export is streamed in pages', () => {
    let srv;
    before(async () => { srv = await startServer(); });
    after(async () => { await srv?.stop(); });

    test('a contact with more events than one page (256) exports completely and verifies', async () => {
        // Issue 8 item 11: "export builds up to a million events in memory in one read transaction".
        let state = 'opted_out';
        for (let i = 0; i < 300; i++) {
            state = state === 'opted_in' ? 'opted_out' : 'opted_in';
            const r = await srv.v1('POST', '/consents', { body: { phone: num(80), scope: 'all', state } });
            assert.equal(r.status, 201, r.text);
            if (i % 100 === 0) { // other contacts' events in between: the export skips them
                const o = await srv.v1('POST', '/consents', { body: { phone: num(81 + i / 100), scope: 'all', state: 'opted_in' } });
                assert.equal(o.status, 201, o.text);
            }
        }
        const r = await srv.v1('GET', `/export?phone=${num(80)}`);
        assert.equal(r.status, 200);
        assert.equal(r.headers['transfer-encoding'], 'chunked');
        assert.equal(r.json.events.length, 300);
        assert.ok(r.json.events.every((e) => e.phone === num(80)));
        const v = await verifyFile(r.text);
        assert.equal(v.code, 0, v.stdout + v.stderr);
        const csv = await srv.v1('GET', `/export?phone=${num(80)}&format=csv`);
        assert.equal(parseCsv(csv.text).length, 300);
    });

    test('consentd export pages through the whole account: every hash and every link verifies', async () => {
        // Issue 8 item 11: "The CLI export should page through the events too"; DESIGN 6 `consentd export`.
        const all = await srv.cli(['export', '--account', 'acme']);
        assert.equal(all.code, 0, all.stderr);
        const doc = JSON.parse(all.stdout);
        assert.deepEqual(doc.events.map((e) => e.seq), Array.from({ length: 303 }, (_, i) => i + 1));
        const v = await verifyFile(all.stdout);
        assert.equal(v.code, 0, v.stdout + v.stderr);
        const one = await srv.cli(['export', '--account', 'acme', '--contact', num(81)]);
        assert.equal(one.code, 0, one.stderr);
        assert.deepEqual(JSON.parse(one.stdout).events.map((e) => e.phone), [num(81)]);
        assert.equal(JSON.parse(one.stdout).consents[0].state, 'opted_in');
        const csv = await srv.cli(['export', '--account', 'acme', '--format', 'csv']);
        assert.equal(csv.code, 0, csv.stderr);
        assert.deepEqual(parseCsv(csv.stdout), doc.events);
        const vc = await verifyFile(csv.stdout, 'all.csv');
        assert.equal(vc.code, 0, vc.stdout + vc.stderr);
        // An event dropped from a whole-account export (here the first of the second page) is found.
        doc.events.splice(256, 1);
        const broken = await verifyFile(JSON.stringify(doc));
        assert.equal(broken.code, 1, broken.stdout);
        assert.match(broken.stderr, /seq 258: events missing before it/);
    });
});

describe('the ledger head is signed with a key kept outside the database', () => {
    let srv;
    let dir;
    before(async () => {
        srv = await startServer({ accounts: ['acme', 'beta'] });
        for (const st of ['opted_in', 'opted_out', 'opted_in']) {
            assert.equal((await srv.v1('POST', '/consents', { body: { phone: num(90), scope: 'all', state: st } })).status, 201);
        }
        assert.equal((await srv.v1('POST', '/consents', { body: { phone: num(91), scope: 'all', state: 'opted_in' } })).status, 201);
        await srv.stop({ keepDir: true });
        dir = srv.dir;
    });
    after(async () => {
        if (!process.env.CONSENTD_E2E_KEEP) for (const d of [dir, ...scratch]) if (d) await rm(d, { recursive: true, force: true });
    });

    async function copy(withKey = true) {
        const d = await makeTempDir();
        scratch.push(d);
        for (const s of ['', '-wal', '-shm']) {
            try { await access(srv.dbPath + s); } catch { continue; }
            await copyFile(srv.dbPath + s, path.join(d, 'consentd.db' + s));
        }
        if (withKey) await copyFile(path.join(dir, 'ledger.key'), path.join(d, 'ledger.key'));
        return path.join(d, 'consentd.db');
    }

    test('the key file is created on first use next to the database, mode 0600, 32 random bytes', async () => {
        // Issue 8 items 12 and 13: "a key file created 0600 on first start"; "key files are created 0600".
        const st = await stat(path.join(dir, 'ledger.key'));
        assert.equal(st.mode & 0o777, 0o600);
        assert.match(await readFile(path.join(dir, 'ledger.key'), 'utf8'), /^[0-9a-f]{64}\n$/);
        // Every head is signed, an empty one too (from `account create` on).
        const acc = await sqlite(srv.dbPath, 'SELECT ledger_seq, length(ledger_sig) FROM accounts ORDER BY id');
        assert.equal(acc, '4|64\n0|64');
        // The key is not in the database.
        const key = (await readFile(path.join(dir, 'ledger.key'), 'utf8')).trim();
        const dump = await run('sqlite3', [srv.dbPath, '.dump'], { maxBuffer: 64 << 20 });
        assert.ok(!dump.stdout.includes(key));
    });

    test('an untampered copy verifies', async () => {
        const r = await runCli(['ledger', 'verify'], { dbPath: await copy() });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.deepEqual(r.json, { ok: true, events: 4 });
    });

    test('rewriting events AND the head consistently, without the key, is detected', async () => {
        // Issue 8 item 12: "Anyone who can write the database can rewrite events and the head and
        // `ledger verify` still passes".
        const db = await copy();
        const acme = srv.accounts.acme.id;
        const events = JSON.parse((await run('sqlite3', ['-json', db, `SELECT ${HASHED.join(',')}, hash FROM events WHERE account_id=${acme} ORDER BY seq`])).stdout);
        assert.equal(events.length, 4);
        // The attacker turns the opt-out (seq 2) into an opt-in and rebuilds the chain and the head.
        events[1].new_state = 'opted_in';
        let prev = ZERO_HASH;
        const sql = []; // an attacker with file access drops any append-only trigger first
        for (const t of (await sqlite(db, "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='events'")).split('\n').filter(Boolean)) {
            sql.push(`DROP TRIGGER "${t}";`);
        }
        for (const e of events) {
            e.prev_hash = prev;
            e.hash = eventHash(e);
            prev = e.hash;
            sql.push(`UPDATE events SET new_state='${e.new_state}', prev_hash='${e.prev_hash}', hash='${e.hash}' WHERE account_id=${acme} AND seq=${e.seq};`);
        }
        sql.push(`UPDATE accounts SET ledger_head='${prev}' WHERE id=${acme};`);
        await sqlite(db, sql.join(' '));
        const r = await runCli(['ledger', 'verify'], { dbPath: db });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.json.ok, false);
        assert.equal(r.json.account, 'acme');
        assert.equal(r.json.problem, 'head_signature');
        // Blanking the signature is no way out either.
        await sqlite(db, `UPDATE accounts SET ledger_sig='' WHERE id=${acme};`);
        const r2 = await runCli(['ledger', 'verify', '--account', 'acme'], { dbPath: db });
        assert.equal(r2.code, 1, r2.stdout);
        assert.equal(r2.json.problem, 'head_unsigned');
    });

    test('erasing an account\'s whole ledger (head back to seq 0) is detected', async () => {
        // Issue 8 item 12: rewriting the events and the head, here to nothing at all.
        const db = await copy();
        const acme = srv.accounts.acme.id;
        const sql = [];
        for (const t of (await sqlite(db, "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='events'")).split('\n').filter(Boolean)) {
            sql.push(`DROP TRIGGER "${t}";`);
        }
        sql.push(`DELETE FROM events WHERE account_id=${acme};`);
        sql.push(`UPDATE accounts SET ledger_seq=0, ledger_head='${ZERO_HASH}' WHERE id=${acme};`);
        await sqlite(db, sql.join(' '));
        const r = await runCli(['ledger', 'verify'], { dbPath: db });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.json.problem, 'head_signature');
        const beta = await runCli(['ledger', 'verify', '--account', 'beta'], { dbPath: db });
        assert.equal(beta.code, 0, beta.stdout + beta.stderr);
    });

    test('without the key file, ledger verify says it cannot check the signatures and fails', async () => {
        // Issue 8 item 12: "a missing key file -> verify says it cannot check the signature".
        const r = await runCli(['ledger', 'verify'], { dbPath: await copy(false) });
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stderr, /cannot check the ledger head signatures/);
        assert.match(r.stderr, /--ledger-key/);
        assert.equal(r.stdout.trim(), '');
    });

    test('--ledger-key and CONSENTD_LEDGER_KEY choose the key file', async () => {
        // Issue 8 item 12: "flag and variable".
        const d = await makeTempDir();
        scratch.push(d);
        const keyPath = path.join(d, 'elsewhere.key');
        const db = path.join(d, 'consentd.db');
        const acc = await runCli(['account', 'create', 'acme', '--login', 'k@e2e.example.com'],
            { dbPath: db, env: { CONSENTD_LEDGER_KEY: keyPath } });
        assert.equal(acc.code, 0, acc.stderr);
        const s = await startServer({ accounts: [], dir: d, dbPath: db, args: ['--ledger-key', keyPath] });
        try {
            const r = await s.v1('POST', '/consents', { key: acc.json.api_key, body: { phone: num(95), scope: 'all', state: 'opted_in' } });
            assert.equal(r.status, 201, r.text);
        } finally {
            await s.stop({ keepDir: true });
        }
        assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
        await assert.rejects(access(path.join(s.dir, 'ledger.key')));
        const viaEnv = await s.cli(['ledger', 'verify'], { env: { CONSENTD_LEDGER_KEY: keyPath } });
        assert.equal(viaEnv.code, 0, viaEnv.stdout + viaEnv.stderr);
        const viaFlag = await s.cli(['ledger', 'verify', '--ledger-key', keyPath]);
        assert.equal(viaFlag.code, 0, viaFlag.stdout + viaFlag.stderr);
        const wrong = await s.cli(['ledger', 'verify']); // the default path has no key
        assert.notEqual(wrong.code, 0);
        // Another key (a different file) does not verify this ledger.
        await writeFile(path.join(s.dir, 'ledger.key'), 'ab'.repeat(32) + '\n', { mode: 0o600 });
        const other = await s.cli(['ledger', 'verify']);
        assert.equal(other.code, 1, other.stdout);
        assert.equal(other.json.problem, 'head_signature');
        // Issue 8 item 13: a key file others can read is used, with a warning naming its mode.
        await chmod(keyPath, 0o644);
        const s2 = await startServer({ accounts: [], dir: d, dbPath: db, args: ['--ledger-key', keyPath] });
        await s2.stop({ keepDir: true });
        assert.deepEqual(s2.logLines().filter((l) => l.msg === 'ledger_key_mode').map((l) => l.mode), ['644']);
    });

    test('a server that creates a new key signs the existing heads (first start after upgrade)', async () => {
        const db = await copy(false);
        const s = await startServer({ accounts: [], dir: path.dirname(db), dbPath: db });
        await s.stop({ keepDir: true });
        const created = s.logLines().find((l) => l.msg === 'ledger_key_created');
        assert.ok(created, s.stderr());
        assert.equal(created.heads_signed, 2);
        const r = await s.cli(['ledger', 'verify']);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.deepEqual(r.json, { ok: true, events: 4 });
    });
});

describe('user agents are kept as valid UTF-8 and cut at a character boundary', () => {
    let srv;
    before(async () => { srv = await startServer(); });
    after(async () => { await srv?.stop(); });

    test('a User-Agent header that is not UTF-8 is stored with its bad bytes as \\xHH, and exported', async () => {
        // Issue 8 item 12: the export "drops a user agent that is not UTF-8"; "Store a non-UTF-8 user agent escaped".
        const ua = Buffer.concat([Buffer.from('User-Agent: Bad'), Buffer.from([0xff, 0xfe]), Buffer.from('Agent/1.0 caf'),
            Buffer.from([0xc3, 0xa9])]);
        const r = await postRaw(srv, ua, { phone: num(100), scope: 'all', state: 'opted_in' });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        assert.equal(r.json.event.user_agent, 'Bad\\xFF\\xFEAgent/1.0 caf\u00e9');
        const ex = await srv.v1('GET', `/export?phone=${num(100)}`);
        assert.equal(ex.json.events[0].user_agent, 'Bad\\xFF\\xFEAgent/1.0 caf\u00e9');
        assert.equal(eventHash(ex.json.events[0]), ex.json.events[0].hash);
        const v = await srv.cli(['ledger', 'verify']);
        assert.equal(v.code, 0, v.stdout + v.stderr);
    });

    test('a User-Agent longer than 511 bytes is cut at a character boundary, not dropped', async () => {
        // Issue 8 item 12: "cut long ones at a character boundary".
        const long = 'Agent/2.0 ' + '\u00e9'.repeat(400); // 10 + 800 bytes
        const r = await postRaw(srv, Buffer.from(`User-Agent: ${long}`, 'utf8'), { phone: num(101), scope: 'all', state: 'opted_in' });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        const got = r.json.event.user_agent;
        assert.equal(Buffer.byteLength(got), 510); // 10 + 250 whole two-byte characters; 511 would split one
        assert.ok(long.startsWith(got));
        const v = await srv.cli(['ledger', 'verify']);
        assert.equal(v.code, 0, v.stdout + v.stderr);
    });

    test('a user_agent field longer than 511 bytes is refused with 422 naming the field', async () => {
        // DESIGN 7 errors: a client's own over-long field is an error, not silently cut.
        const r = await srv.v1('POST', '/consents', { body: { phone: num(102), scope: 'all', state: 'opted_in', user_agent: 'x'.repeat(600) } });
        assert.ok([400, 422].includes(r.status), r.text);
        assert.equal(r.json.error.field, 'user_agent');
    });
});
