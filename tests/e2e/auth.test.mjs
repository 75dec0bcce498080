// Accounts, API keys, Bearer auth and tenancy (DESIGN 1 native row, DESIGN 2 "account", DESIGN 6 CLI,
// DESIGN 7 keys row; issue 3 item 4 and item 8 "every auth style rejecting bad credentials, two accounts
// that cannot see each other's data").
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, errorOf, num } from './lib/server.mjs';

let srv;
before(async () => {
    srv = await startServer({ accounts: ['acme', { name: 'beta', login: 'ops@beta.example.com', brand: 'BETA' }] });
});
after(async () => {
    await srv?.stop();
});

const acmeKey = () => srv.accounts.acme.api_key;
const betaKey = () => srv.accounts.beta.api_key;

async function unauthorized(headers, p = '/api/v1/contacts', method = 'GET', body) {
    const r = await request(srv.url, method, p, { headers, body });
    assert.equal(r.status, 401, `${JSON.stringify(headers)}: ${r.text}`);
    const e = errorOf(r);
    assert.equal(e.code, 'unauthorized');
    return r;
}

describe('CLI: account create', () => {
    test('prints one JSON object with the account and its api_key', async () => {
        // DESIGN 6: consentd account create NAME [--login] [--brand] [--region] prints JSON incl. api_key, once.
        const r = await srv.cliOk(['account', 'create', 'gamma', '--login', 'g@gamma.example.com', '--brand', 'GAM',
            '--region', 'US', '--timezone', 'America/New_York']);
        const a = r.json;
        assert.ok(Number.isInteger(a.id), r.stdout);
        assert.equal(a.name, 'gamma');
        assert.equal(a.login, 'g@gamma.example.com');
        assert.equal(a.brand, 'GAM');
        assert.equal(a.region, 'US');
        assert.equal(a.timezone, 'America/New_York');
        assert.match(a.api_key, /^cd_[A-Za-z0-9_-]{16,}$/);
        // The key works at once against the running server.
        const l = await srv.v1('GET', '/contacts', { key: a.api_key });
        assert.equal(l.status, 200, l.text);
        assert.deepEqual(l.json, { data: [], next_cursor: null });
    });

    test('a duplicate name or login exits 1 with an error on stderr', async () => {
        // Lead contract: a duplicate NAME or login exits 1 with an error on stderr.
        const dupName = await srv.cli(['account', 'create', 'acme', '--login', 'fresh@acme2.example.com']);
        assert.equal(dupName.code, 1, dupName.stdout);
        assert.ok(dupName.stderr.trim().length > 0);
        assert.ok(!dupName.stdout.includes('cd_'), 'no key is printed for a refused account');
        const dupLogin = await srv.cli(['account', 'create', 'delta', '--login', 'ops@beta.example.com']);
        assert.equal(dupLogin.code, 1, dupLogin.stdout);
        assert.ok(dupLogin.stderr.trim().length > 0);
    });

    test('consentd token prints an HS256 JWT', async () => {
        // DESIGN 6: consentd token --account NAME [--ttl SECONDS] prints a JWT for X-Auth-Token.
        const r = await srv.cliOk(['token', '--account', 'acme', '--ttl', '600'], {}, { json: false });
        const jwt = r.stdout.trim();
        const parts = jwt.split('.');
        assert.equal(parts.length, 3, jwt);
        const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
        assert.equal(header.alg, 'HS256');
        const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
        if ('exp' in payload) {
            const now = Math.floor(Date.now() / 1000);
            assert.ok(payload.exp > now && payload.exp <= now + 700, JSON.stringify(payload));
        }
        const bad = await srv.cli(['token', '--account', 'nobody']);
        assert.notEqual(bad.code, 0);
    });
});

describe('Bearer key rejection', () => {
    test('missing, malformed, unknown and wrong-scheme credentials -> 401 unauthorized, one body for all', async () => {
        // DESIGN 1: wrong credentials never reveal whether an account exists; lead contract: same 401 body whatever is wrong.
        const cases = [
            {},
            { Authorization: '' },
            { Authorization: 'Bearer' },
            { Authorization: 'Bearer ' },
            { Authorization: 'Bearer nope' },
            { Authorization: 'Bearer cd_0000000000000000000000000000000000000000' },
            { Authorization: `Bearer ${acmeKey()}x` },
            { Authorization: `Bearer ${acmeKey().slice(0, -1)}` },
            { Authorization: `Basic ${Buffer.from(`acme:${acmeKey()}`).toString('base64')}x` },
            { Authorization: `Token ${acmeKey()}` },
            { Authorization: `Bearer ${'A'.repeat(4000)}` },
            { Authorization: `Bearer ${acmeKey()} ${acmeKey()}` },
            { 'X-Api-Key': acmeKey() },
        ];
        const bodies = [];
        for (const h of cases) {
            const r = await unauthorized(h);
            bodies.push(JSON.stringify({ ...r.json.error, message: r.json.error.message }));
        }
        assert.equal(new Set(bodies).size, 1, `401 bodies differ:\n${bodies.join('\n')}`);
    });

    test('every native route needs the key, POST included, and nothing is written', async () => {
        // DESIGN 7: /api/v1 with Authorization: Bearer KEY.
        await unauthorized({}, '/api/v1/contacts', 'POST', { phone: num(80) });
        await unauthorized({}, '/api/v1/consents', 'POST', { phone: num(80), scope: 'all', state: 'opted_in' });
        await unauthorized({}, `/api/v1/check?to=${encodeURIComponent(num(80))}`);
        await unauthorized({}, '/api/v1/events');
        await unauthorized({}, '/api/v1/groups');
        await unauthorized({}, '/api/v1/message-types');
        await unauthorized({}, '/api/v1/keys');
        await unauthorized({}, '/api/v1/messages');
        await unauthorized({ Authorization: 'Bearer nope' }, '/api/v1/keys', 'POST', {});
        const c = await srv.v1('GET', `/contacts/${encodeURIComponent(num(80))}`);
        assert.equal(c.status, 404, 'an unauthorized POST must not create the contact');
        const ev = await srv.v1('GET', '/events');
        assert.deepEqual(ev.json.data, []);
    });

    test('a 401 for an existing contact looks like a 401 for a missing one', async () => {
        // DESIGN 1: wrong credentials never reveal whether a contact exists.
        const c = await srv.v1('POST', '/contacts', { body: { phone: num(81) } });
        assert.ok([200, 201].includes(c.status), c.text);
        const a = await unauthorized({ Authorization: 'Bearer nope' }, `/api/v1/contacts/${c.json.id}`);
        const b = await unauthorized({ Authorization: 'Bearer nope' }, '/api/v1/contacts/987654321');
        assert.deepEqual(a.json.error.code, b.json.error.code);
        assert.equal(a.json.error.message, b.json.error.message);
    });
});

describe('keys via the API', () => {
    test('POST /keys -> 201 {"id","key"}; the new key works; GET /keys never shows keys', async () => {
        // DESIGN 7: POST /keys {"name"?} -> 201 {"id","key"} (key shown once) / GET /keys list without keys.
        const r = await srv.v1('POST', '/keys', { body: { name: 'ci' } });
        assert.equal(r.status, 201, r.text);
        assert.ok(r.json.id !== undefined && r.json.id !== null, r.text);
        assert.match(r.json.key, /^cd_/);
        assert.notEqual(r.json.key, acmeKey());
        const use = await srv.v1('GET', '/contacts', { key: r.json.key });
        assert.equal(use.status, 200, use.text);

        const l = await srv.v1('GET', '/keys');
        assert.equal(l.status, 200, l.text);
        assert.ok(Array.isArray(l.json.data), l.text);
        const mine = l.json.data.find((k) => String(k.id) === String(r.json.id));
        assert.ok(mine, `new key ${r.json.id} not listed: ${l.text}`);
        assert.equal(mine.name, 'ci');
        assert.ok(!('key' in mine), 'GET /keys must not return key material');
        assert.ok(!l.text.includes(r.json.key) && !l.text.includes(acmeKey()), 'GET /keys leaks a key');
        assert.ok(l.json.data.length >= 2);
    });

    test('DELETE /keys/{id} -> 204; the key then gets 401; other keys keep working', async () => {
        // DESIGN 7: DELETE /keys/{id} -> 204; issue 3 item 4: several keys per account, revocable.
        const r = await srv.v1('POST', '/keys', { body: { name: 'temp' } });
        assert.equal(r.status, 201, r.text);
        // issue 10 (perf): the server remembers a key once used; the revocation must win.
        const used = await srv.v1('GET', '/contacts', { key: r.json.key });
        assert.equal(used.status, 200, used.text);
        const d = await srv.v1('DELETE', `/keys/${r.json.id}`);
        assert.equal(d.status, 204, d.text);
        assert.equal(d.text, '');
        await unauthorized({ Authorization: `Bearer ${r.json.key}` });
        const still = await srv.v1('GET', '/contacts');
        assert.equal(still.status, 200);
        const again = await srv.v1('DELETE', `/keys/${r.json.id}`);
        assert.ok([404, 204].includes(again.status), again.text);
    });

    test('a revoked key gets the same 401 as an unknown key', async () => {
        // Lead contract: 401 has the same body whatever is wrong (revoked key included).
        const r = await srv.v1('POST', '/keys', { body: {} });
        assert.equal(r.status, 201, r.text);
        assert.equal((await srv.v1('DELETE', `/keys/${r.json.id}`)).status, 204);
        const revoked = await unauthorized({ Authorization: `Bearer ${r.json.key}` });
        const unknown = await unauthorized({ Authorization: 'Bearer cd_unknownunknownunknown' });
        assert.deepEqual(revoked.json, unknown.json);
    });

    test('DELETE /keys of an unknown id or another account\'s key -> 404, the key keeps working', async () => {
        // DESIGN 2: no query ever crosses accounts.
        const theirs = await srv.v1('POST', '/keys', { key: betaKey(), body: { name: 'beta-2' } });
        assert.equal(theirs.status, 201, theirs.text);
        const d = await srv.v1('DELETE', `/keys/${theirs.json.id}`);
        assert.equal(d.status, 404, d.text);
        assert.equal(errorOf(d).code, 'not_found');
        const use = await srv.v1('GET', '/contacts', { key: theirs.json.key });
        assert.equal(use.status, 200, use.text);
        const unknown = await srv.v1('DELETE', '/keys/987654321');
        assert.equal(unknown.status, 404, unknown.text);
        const l = await srv.v1('GET', '/keys');
        assert.ok(!l.json.data.some((k) => String(k.id) === String(theirs.json.id)), 'acme sees beta\'s key');
    });
});

describe('keys via the CLI', () => {
    test('key create / list / revoke against the running server', async () => {
        // DESIGN 6 + issue 3 item 4: consentd key create|revoke|list; revocation takes effect on a running server.
        const c = await srv.cliOk(['key', 'create', '--account', 'beta', '--name', 'cli-key']);
        assert.ok(c.json.id !== undefined, c.stdout);
        assert.match(c.json.key, /^cd_/);
        const use = await srv.v1('GET', '/contacts', { key: c.json.key });
        assert.equal(use.status, 200, use.text);

        const l = await srv.cliOk(['key', 'list', '--account', 'beta']);
        assert.ok(Array.isArray(l.json), l.stdout);
        const row = l.json.find((k) => String(k.id) === String(c.json.id));
        assert.ok(row, l.stdout);
        assert.equal(row.name, 'cli-key');
        assert.equal(row.revoked_at, null);
        assert.ok('created_at' in row);
        assert.ok(!l.stdout.includes(c.json.key), 'key list must not print key material');

        const rv = await srv.cli(['key', 'revoke', '--account', 'beta', String(c.json.id)]);
        assert.equal(rv.code, 0, rv.stdout + rv.stderr);
        await unauthorized({ Authorization: `Bearer ${c.json.key}` });
        const l2 = await srv.cliOk(['key', 'list', '--account', 'beta']);
        const row2 = l2.json.find((k) => String(k.id) === String(c.json.id));
        assert.notEqual(row2.revoked_at, null);

        const api = await srv.v1('GET', '/keys', { key: betaKey() });
        const viaApi = api.json.data.find((k) => String(k.id) === String(c.json.id));
        if (viaApi) assert.notEqual(viaApi.revoked_at ?? 'revoked', null);
    });

    test('key revoke of another account\'s key fails and leaves it working', async () => {
        // DESIGN 2: no operation crosses accounts.
        const c = await srv.cliOk(['key', 'create', '--account', 'acme', '--name', 'acme-cli']);
        const rv = await srv.cli(['key', 'revoke', '--account', 'beta', String(c.json.id)]);
        assert.notEqual(rv.code, 0, rv.stdout);
        const use = await srv.v1('GET', '/contacts', { key: c.json.key });
        assert.equal(use.status, 200, use.text);
    });

    test('a key revoked with the API shows revoked_at in key list', async () => {
        // DESIGN 7 DELETE /keys/{id} and DESIGN 6 key list agree.
        const r = await srv.v1('POST', '/keys', { body: { name: 'to-revoke' } });
        assert.equal((await srv.v1('DELETE', `/keys/${r.json.id}`)).status, 204);
        const l = await srv.cliOk(['key', 'list', '--account', 'acme']);
        const row = l.json.find((k) => String(k.id) === String(r.json.id));
        assert.ok(row, l.stdout);
        assert.notEqual(row.revoked_at, null);
    });
});

describe('tenancy: two accounts cannot see each other', () => {
    let c;
    let g;
    before(async () => {
        g = (await srv.v1('POST', '/groups', { body: { name: 'acme-only' } })).json.id;
        const r = await srv.v1('POST', '/contacts', { body: { phone: num(85), first_name: 'Private', tags: ['t85'], groups: [g] } });
        assert.equal(r.status, 201, r.text);
        c = r.json;
        const k = await srv.v1('POST', '/consents', { body: { phone: num(85), scope: 'all', state: 'opted_in' } });
        assert.equal(k.status, 201, k.text);
    });

    test('beta gets 404 for acme\'s contact by id and by number', async () => {
        // Issue 3 item 8: two accounts that cannot see each other's data.
        for (const ref of [c.id, encodeURIComponent(num(85)), '16465550185']) {
            const r = await srv.v1('GET', `/contacts/${ref}`, { key: betaKey() });
            assert.equal(r.status, 404, `${ref}: ${r.text}`);
            assert.equal(errorOf(r).code, 'not_found');
            const cs = await srv.v1('GET', `/contacts/${ref}/consents`, { key: betaKey() });
            assert.equal(cs.status, 404, cs.text);
        }
        const p = await srv.v1('PATCH', `/contacts/${c.id}`, { key: betaKey(), body: { first_name: 'Hijacked' } });
        assert.equal(p.status, 404, p.text);
        const mine = await srv.v1('GET', `/contacts/${c.id}`);
        assert.equal(mine.json.first_name, 'Private');
    });

    test('beta\'s lists, filters, events and check show nothing of acme', async () => {
        // DESIGN 2: no query ever crosses accounts.
        for (const p of ['/contacts', '/contacts?q=Private', '/contacts?tag=t85', `/contacts?group=${g}`, '/events',
            `/events?phone=${encodeURIComponent(num(85))}`, '/groups']) {
            const r = await srv.v1('GET', p, { key: betaKey() });
            if (r.status === 200) assert.deepEqual(r.json.data, [], `${p}: ${r.text}`);
            else assert.ok([404, 422].includes(r.status), `${p}: ${r.text}`);
        }
        const chk = await srv.v1('GET', `/check?to=${encodeURIComponent(num(85))}`, { key: betaKey() });
        assert.equal(chk.status, 200, chk.text);
        assert.equal(chk.json.allowed, false);
        assert.equal(chk.json.reason, 'no_consent');
    });

    test('the same number in beta is a separate contact with its own consents', async () => {
        // DESIGN 2: one contact per (account, E.164 number).
        const r = await srv.v1('POST', '/contacts', { key: betaKey(), body: { phone: '16465550185', first_name: 'Beta' } });
        assert.equal(r.status, 201, r.text);
        assert.notEqual(r.json.id, c.id);
        assert.deepEqual(r.json.groups, []);
        const o = await srv.v1('POST', '/consents', { key: betaKey(), body: { phone: num(85), scope: 'all', state: 'opted_out' } });
        assert.equal(o.status, 201, o.text);
        assert.equal(o.json.event.seq, 1);
        const acmeChk = await srv.v1('GET', `/check?to=${encodeURIComponent(num(85))}`);
        assert.equal(acmeChk.json.reason, 'opted_in', 'beta\'s opt-out must not touch acme');
        const mine = await srv.v1('GET', `/contacts/${c.id}`);
        assert.equal(mine.json.first_name, 'Private');
    });

    test('beta cannot use acme\'s group id in contacts or consents', async () => {
        // DESIGN 2: every row belongs to one account.
        const r = await srv.v1('POST', '/consents', { key: betaKey(), body: { phone: num(86), scope: `group:${g}`, state: 'opted_in' } });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).code, 'invalid_scope');
        const k = await srv.v1('POST', '/contacts', { key: betaKey(), body: { phone: num(86), groups: [g] } });
        assert.ok(k.status === 422 || (k.status === 201 && k.json.groups.length === 0), k.text);
        const acmeGroup = await srv.v1('GET', `/contacts?group=${g}`);
        assert.deepEqual(acmeGroup.json.data.map((x) => x.id), [c.id]);
    });
});
