// issue 9 part 10: the `consentd` command line end to end, every subcommand against a real temp
// SQLite database (src/main.c usage, src/cli/cli.c). Output for machines is JSON on stdout,
// errors go to stderr with a non-zero exit; usage errors exit 2.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { startServer, runCli, cliOk, createAccount, makeTempDir, num, RFC3339_UTC } from './lib/server.mjs';

const dirs = [];
async function freshDb() {
    const d = await makeTempDir();
    dirs.push(d);
    return path.join(d, 'consentd.db');
}
after(async () => {
    if (!process.env.CONSENTD_E2E_KEEP) {
        for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
});

describe('account', () => {
    test('create prints the account as JSON with its api_key, once', async () => {
        // Proves: `account create` prints {id,name,login,brand,region,timezone,created_at,api_key}
        // and the key is shown only at creation (`account list` never shows it again).
        const db = await freshDb();
        const r = await cliOk(['account', 'create', 'acme', '--login', 'ops@acme.example.com'], { dbPath: db });
        const a = r.json;
        assert.equal(a.name, 'acme');
        assert.equal(a.login, 'ops@acme.example.com');
        assert.ok(Number.isInteger(a.id) && a.id > 0, r.stdout);
        assert.match(a.created_at, RFC3339_UTC);
        assert.equal(typeof a.api_key, 'string');
        assert.ok(a.api_key.length >= 20, a.api_key);
        const list = await cliOk(['account', 'list'], { dbPath: db });
        assert.ok(!list.stdout.includes(a.api_key), 'account list must not print the key');
    });

    test('a duplicate name is refused with a clear error and a non-zero exit', async () => {
        // Proves: names are unique; the second create fails, says why on stderr, prints nothing on stdout.
        const db = await freshDb();
        await createAccount(db, 'acme');
        const r = await runCli(['account', 'create', 'acme', '--login', 'other@acme.example.com'], { dbPath: db });
        assert.notEqual(r.code, 0, r.stdout);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /cannot create the account/);
        assert.match(r.stderr, /name|exist|taken|duplicate|conflict/i, r.stderr);
        const list = await cliOk(['account', 'list'], { dbPath: db });
        assert.equal(list.json.filter((x) => x.name === 'acme').length, 1);
    });

    test('--brand, --region and --timezone are stored and printed', async () => {
        // Proves: the optional flags reach the account (create output and list agree).
        const db = await freshDb();
        const a = await createAccount(db, 'shop', { brand: 'SHOP', region: 'GB', timezone: 'Europe/London' });
        assert.equal(a.brand, 'SHOP');
        assert.equal(a.region, 'GB');
        assert.equal(a.timezone, 'Europe/London');
        const list = await cliOk(['account', 'list'], { dbPath: db });
        const row = list.json.find((x) => x.name === 'shop');
        assert.deepEqual({ brand: row.brand, region: row.region, timezone: row.timezone },
            { brand: 'SHOP', region: 'GB', timezone: 'Europe/London' });
    });

    test('an unknown --timezone is refused and creates nothing', async () => {
        // Proves: the timezone is validated (error names the field), exit non-zero, no account left behind.
        const db = await freshDb();
        const r = await runCli(['account', 'create', 'tz', '--login', 'tz@e2e.example.com',
            '--timezone', 'Mars/Olympus_Mons'], { dbPath: db });
        assert.notEqual(r.code, 0, r.stdout);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /timezone/);
        const list = await cliOk(['account', 'list'], { dbPath: db });
        assert.deepEqual(list.json.filter((x) => x.name === 'tz'), []);
    });

    test('list prints every account and no secrets', async () => {
        // Proves: `account list` is a JSON array of all accounts, without api_key or key hashes.
        const db = await freshDb();
        const a = await createAccount(db, 'acme');
        const b = await createAccount(db, 'beta');
        const r = await cliOk(['account', 'list'], { dbPath: db });
        assert.ok(Array.isArray(r.json));
        assert.deepEqual(r.json.map((x) => x.name).sort(), ['acme', 'beta']);
        for (const row of r.json) {
            for (const k of Object.keys(row)) assert.doesNotMatch(k, /key|secret|hash|password/i, k);
        }
        assert.ok(!r.stdout.includes(a.api_key) && !r.stdout.includes(b.api_key));
    });
});

describe('key, token and ledger against a running server', () => {
    let srv;
    before(async () => {
        srv = await startServer({ accounts: ['acme', 'beta'] });
    });
    after(async () => {
        await srv?.stop();
    });

    test('key create gives a key that works on the native API; revoke makes it 401', async () => {
        // Proves: key create prints {id,key}; list shows it without the secret; the key
        // authenticates against the started server; after key revoke the same key gets 401.
        const c = await srv.cliOk(['key', 'create', '--account', 'acme', '--name', 'ci']);
        assert.equal(typeof c.json.id, 'string');
        assert.equal(typeof c.json.key, 'string');
        const ok = await srv.v1('GET', '/contacts', { key: c.json.key });
        assert.equal(ok.status, 200, ok.text);

        const l = await srv.cliOk(['key', 'list', '--account', 'acme']);
        const row = l.json.find((k) => k.id === c.json.id);
        assert.ok(row, l.stdout);
        assert.equal(row.name, 'ci');
        assert.equal(row.revoked_at, null);
        assert.ok(!l.stdout.includes(c.json.key), 'key list must not print the secret');
        // Tenants are isolated: beta's list does not show acme's key.
        const lb = await srv.cliOk(['key', 'list', '--account', 'beta']);
        assert.ok(!lb.json.some((k) => k.id === c.json.id));

        const rv = await srv.cliOk(['key', 'revoke', '--account', 'acme', c.json.id]);
        assert.deepEqual(rv.json, { id: c.json.id, revoked: true });
        const denied = await srv.v1('GET', '/contacts', { key: c.json.key });
        assert.equal(denied.status, 401, denied.text);
        const l2 = await srv.cliOk(['key', 'list', '--account', 'acme']);
        assert.match(l2.json.find((k) => k.id === c.json.id).revoked_at, RFC3339_UTC);
        // The account's first key still works.
        assert.equal((await srv.v1('GET', '/contacts')).status, 200);
    });

    test('key commands refuse an unknown account and a revoke without KEY_ID', async () => {
        // Proves: a missing/unknown --account is an error (exit 1), revoke without an id is usage (exit 2).
        const u = await srv.cli(['key', 'list', '--account', 'nobody']);
        assert.equal(u.code, 1);
        assert.match(u.stderr, /no account named nobody/);
        const m = await srv.cli(['key', 'create']);
        assert.equal(m.code, 1);
        assert.match(m.stderr, /--account/);
        const r = await srv.cli(['key', 'revoke', '--account', 'acme']);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /KEY_ID/);
    });

    test('token prints a three-part JWT whose payload names the account and has exp', async () => {
        // Proves: `token --account NAME [--ttl]` mints a JWT: sub is the account id, exp = now + ttl.
        const now = Math.floor(Date.now() / 1000);
        const r = await srv.cliOk(['token', '--account', 'beta', '--ttl', '120'], {}, { json: false });
        const parts = r.stdout.trim().split('.');
        assert.equal(parts.length, 3, r.stdout);
        const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
        assert.equal(String(payload.sub), String(srv.accounts.beta.id));
        assert.ok(payload.exp >= now + 110 && payload.exp <= now + 130, JSON.stringify(payload));
        // Default ttl is an hour.
        const d = await srv.cliOk(['token', '--account', 'beta'], {}, { json: false });
        const p2 = JSON.parse(Buffer.from(d.stdout.trim().split('.')[1], 'base64url').toString('utf8'));
        assert.ok(p2.exp >= now + 3590 && p2.exp <= now + 3610, JSON.stringify(p2));
        const bad = await srv.cli(['token', '--account', 'beta', '--ttl', '0']);
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /--ttl/);
    });

    test('ledger verify is ok before and after consents written through the server', async () => {
        // Proves: verify finds the signing key next to the db (where serve/account create put it),
        // reports ok with the event count, per account and for all.
        const before0 = await srv.cliOk(['ledger', 'verify']);
        assert.equal(before0.json.ok, true);
        const n0 = before0.json.events;
        for (const [phone, state] of [[num(1), 'opted_in'], [num(2), 'opted_in'], [num(1), 'opted_out']]) {
            const r = await srv.v1('POST', '/consents', { body: { phone, scope: 'all', state } });
            assert.equal(r.status, 201, r.text);
        }
        const all = await srv.cliOk(['ledger', 'verify']);
        assert.deepEqual(all.json, { ok: true, events: n0 + 3 });
        const one = await srv.cliOk(['ledger', 'verify', '--account', 'acme']);
        assert.equal(one.json.ok, true);
        assert.ok(one.json.events >= 3, one.stdout);
        // An explicit --ledger-key pointing at the same default file works too.
        const k = await srv.cliOk(['ledger', 'verify', '--ledger-key', path.join(srv.dir, 'ledger.key')]);
        assert.equal(k.json.ok, true);
        // A key file that does not exist: refused with a hint, exit 1.
        const missing = await srv.cli(['ledger', 'verify', '--ledger-key', path.join(srv.dir, 'nope.key')]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /--ledger-key/);
    });

    test('export prints the account proof as JSON, per contact, and as CSV', async () => {
        // Proves: `export --account NAME [--contact N] [--format json|csv]` returns the ledger events
        // of that tenant only; --contact narrows to one contact with its consents.
        for (const [phone, state] of [[num(10), 'opted_in'], [num(11), 'opted_in']]) {
            const r = await srv.v1('POST', '/consents', { body: { phone, scope: 'all', state } });
            assert.equal(r.status, 201, r.text);
        }
        const b = await srv.v1('POST', '/consents', {
            key: srv.accounts.beta.api_key, body: { phone: num(12), scope: 'all', state: 'opted_in' },
        });
        assert.equal(b.status, 201, b.text);

        const all = await srv.cliOk(['export', '--account', 'acme']);
        assert.equal(all.json.account, 'acme');
        assert.ok(Array.isArray(all.json.events) && all.json.events.length >= 2, all.stdout);
        assert.ok(!all.stdout.includes(num(12)), 'beta\'s contact must not be in acme\'s export');

        const one = await srv.cliOk(['export', '--account', 'acme', '--contact', num(10), '--format', 'json']);
        assert.equal(one.json.contact.phone, num(10));
        assert.deepEqual(one.json.consents.map((c) => [c.scope, c.state]), [['all', 'opted_in']]);
        assert.ok(one.json.events.length >= 1);
        assert.ok(!one.stdout.includes(num(11)));

        const csv = await srv.cliOk(['export', '--account', 'acme', '--format', 'csv'], {}, { json: false });
        const lines = csv.stdout.trim().split('\n');
        assert.ok(lines.length >= 1 + all.json.events.length, csv.stdout);
        assert.equal(lines.length - 1, all.json.events.length, 'one CSV row per event');

        const badFmt = await srv.cli(['export', '--account', 'acme', '--format', 'xml']);
        assert.equal(badFmt.code, 2);
        assert.match(badFmt.stderr, /usage/);
        const noContact = await srv.cli(['export', '--account', 'acme', '--contact', num(99)]);
        assert.equal(noContact.code, 1);
        assert.equal(noContact.stdout, '');
    });
});

describe('serve: one server per database', () => {
    test('a second serve on the same database exits with a clear error; the first serves on', async () => {
        // Proves: `serve` holds <db>.lock while it runs. A second server would requeue the
        // first one's messages in flight as it starts and miss its opt-outs: it is refused
        // before it does anything. CLI commands still work beside the server, and once the
        // server stops, another can start.
        const srv = await startServer({ accounts: ['acme'] });
        let stopped = false;
        try {
            const second = await runCli(['serve', '--listen', '127.0.0.1:0'], { dbPath: srv.dbPath });
            assert.equal(second.code, 1, second.stderr);
            assert.match(second.stderr, /another consentd serves .*consentd\.db .*one server per database/);
            const r = await srv.v1('GET', '/contacts');
            assert.equal(r.status, 200, 'the first server still answers');
            await srv.cliOk(['account', 'create', 'beta', '--login', 'ops@beta.example.com']);
            await srv.stop({ keepDir: true });
            stopped = true;
            const next = await startServer({ accounts: [], dbPath: srv.dbPath });
            const again = await next.v1('GET', '/contacts', { key: srv.accounts.acme.api_key });
            assert.equal(again.status, 200, 'the lock went with the first server');
            await next.stop();
            await rm(path.dirname(srv.dbPath), { recursive: true, force: true });
        } finally {
            if (!stopped) await srv.stop();
        }
    });
});

describe('inbound, migrate and usage', () => {
    test('inbound unrouted is an empty JSON array on a fresh db', async () => {
        // Proves: the operator's view of unowned inbound messages works on an empty database.
        const db = await freshDb();
        await createAccount(db, 'acme');
        const r = await cliOk(['inbound', 'unrouted'], { dbPath: db });
        assert.deepEqual(r.json, []);
        const l = await cliOk(['inbound', 'unrouted', '--limit', '5'], { dbPath: db });
        assert.deepEqual(l.json, []);
        const bad = await runCli(['inbound', 'unrouted', '--limit', '0'], { dbPath: db });
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /usage/);
    });

    test('migrate is idempotent and exits 0', async () => {
        // Proves: migrate on a fresh db and again on a migrated one gives the same schema version,
        // and the data survives.
        const db = await freshDb();
        const first = await cliOk(['migrate'], { dbPath: db });
        assert.equal(first.json.ok, true);
        assert.ok(Number.isInteger(first.json.schema) && first.json.schema > 0, first.stdout);
        await createAccount(db, 'acme');
        const second = await cliOk(['migrate'], { dbPath: db });
        assert.deepEqual(second.json, first.json);
        const list = await cliOk(['account', 'list'], { dbPath: db });
        assert.deepEqual(list.json.map((a) => a.name), ['acme']);
    });

    test('no command, an unknown command and a bad flag print usage on stderr and exit 2', async () => {
        // Proves: usage errors are exit 2 with the usage text on stderr and nothing on stdout.
        const db = await freshDb();
        for (const args of [[], ['frobnicate'], ['account'], ['account', 'delete', 'x'],
            ['ledger', 'rewrite'], ['inbound', 'routed'], ['key', 'rotate', '--account', 'acme']]) {
            const r = await runCli(args, { dbPath: args.length ? db : undefined });
            assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
            assert.match(r.stderr, /usage:/, args.join(' '));
            assert.equal(r.stdout, '', args.join(' '));
        }
        // A global flag with a bad value is refused before any command runs.
        const t = await runCli(['serve', '--threads', '0'], { dbPath: db });
        assert.equal(t.code, 2);
        assert.match(t.stderr, /--threads/);
        const listen = await runCli(['migrate', '--listen', 'nonsense'], { dbPath: db });
        assert.equal(listen.code, 2);
        assert.match(listen.stderr, /--listen/);
        // issue 9 part 10 (bug found by this file): an unknown or misspelt flag was silently
        // ignored (`account list --bogus` exited 0); now every command refuses it with usage, exit 2.
        await createAccount(db, 'acme');
        for (const args of [['account', 'list', '--bogus'], ['account', 'create', 'x', '--brnad', 'X'],
            ['key', 'list', '--acount', 'acme'], ['token', '--account', 'acme', '--tll', '5'],
            ['ledger', 'verify', '--bogus=1'], ['export', '--account', 'acme', '--fromat', 'csv'],
            ['inbound', 'unrouted', '--bogus'], ['migrate', '--bogus'], ['serve', '--bogus']]) {
            const r = await runCli(args, { dbPath: db });
            assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}`);
            assert.equal(r.stdout, '', args.join(' '));
            assert.match(r.stderr, /unknown flag --/, args.join(' '));
            assert.match(r.stderr, /usage:/, args.join(' '));
        }
        // Nothing was created by the refused `account create`.
        const list = await cliOk(['account', 'list'], { dbPath: db });
        assert.deepEqual(list.json.map((a) => a.name), ['acme']);
    });
});
