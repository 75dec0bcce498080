// issue 14: the Opentact surface (seed 004): messaging profiles under /rest/profile/messaging with
// X-Auth-Token (JWT) authentication, Opentact's {"success","payload"} answers and errors, every
// field limit and both spellings, tenant isolation, deletion, leases, `consentd token revoke`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, num, RFC3339_UTC } from './lib/server.mjs';
import { addSender, sleep, assertNoSanitizerReport } from './lib/msgkit.mjs';

const BASE = '/rest/profile/messaging';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UNKNOWN = '00000000-0000-4000-8000-000000000000';

let srv;
let tokA; // acme's token
let tokB; // beta's token

async function mint(account, ttl) {
    const args = ['token', '--account', account];
    if (ttl) args.push('--ttl', String(ttl));
    const r = await srv.cli(args);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
}

/** An Opentact request: X-Auth-Token unless token is null. */
function ot(method, path, { body, token = tokA, headers = {} } = {}) {
    const h = { ...headers };
    if (token !== null) h['X-Auth-Token'] = token;
    return request(srv.url, method, path, { body, headers: h });
}

/** Opentact's error form, with the status. */
function assertFail(r, status, re) {
    assert.equal(r.status, status, r.text);
    assert.equal(r.json?.success, false, r.text);
    assert.deepEqual(Object.keys(r.json), ['success', 'payload'], r.text);
    assert.equal(typeof r.json.payload.message, 'string', r.text);
    if (re) assert.match(r.json.payload.message, re);
}

async function create(body, token = tokA) {
    const r = await ot('POST', BASE, { body, token });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.success, true);
    return r.json.payload;
}

async function list(token = tokA) {
    const r = await ot('GET', BASE, { token });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.success, true);
    return r.json.payload;
}

before(async () => {
    srv = await startServer({ accounts: ['acme', 'beta'] });
    tokA = await mint('acme');
    tokB = await mint('beta');
});

after(async () => {
    await srv?.stop();
    assertNoSanitizerReport(srv);
});

test('seed 004: create answers the payload keys, signing_secret once, secrets null', async () => {
    const body = {
        name: 'Main', callback_url: 'https://hooks.example.com/a', callback_url2: 'https://hooks.example.com/b',
        number_pool_enable: true, long_code_weight: 3, toll_free_weight: 7, skip_unhealthy_tns: true,
        sticky_sender: true,
    };
    const p = await create(body);
    assert.deepEqual(Object.keys(p), ['created_on', 'modified_on', 'uuid', 'name', 'callback_url',
        'callback_url2', 'number_pool_enable', 'long_code_weight', 'tollfree_weight', 'skip_unhealthy_tns',
        'sticky_sender', 'account', 'created_by', 'modified_by', 'leases', 'signing_secret']);
    assert.match(p.uuid, UUID);
    assert.match(p.created_on, RFC3339_UTC);
    assert.equal(p.name, 'Main');
    assert.equal(p.callback_url, body.callback_url);
    assert.equal(p.callback_url2, body.callback_url2);
    assert.equal(p.number_pool_enable, true);
    assert.equal(p.long_code_weight, 3);
    assert.equal(p.tollfree_weight, 7);
    assert.equal(p.skip_unhealthy_tns, true);
    assert.equal(p.sticky_sender, true);
    assert.deepEqual(p.leases, []);
    assert.match(p.signing_secret, /^[0-9a-f]{64}$/);
    assert.equal(p.account.name, 'acme');
    for (const who of [p.created_by, p.modified_by]) {
        assert.ok('password' in who && 'token' in who);
        assert.equal(who.password, null);
        assert.equal(who.token, null);
    }
    // Shown once: neither get nor list nor update show it again.
    const g = await ot('GET', `${BASE}/${p.uuid}`);
    assert.equal(g.status, 200);
    assert.equal(g.json.payload.signing_secret, undefined);
    assert.ok(!g.text.includes(p.signing_secret));
    const l = await ot('GET', BASE);
    assert.ok(!l.text.includes(p.signing_secret));
    const u = await ot('PATCH', `${BASE}/${p.uuid}`, { body: { name: 'Main 2' } });
    assert.ok(!u.text.includes(p.signing_secret));
    assert.ok(!srv.stderr().includes(p.signing_secret), 'the secret is never logged');
});

test('seed 004: defaults, get, list, patch, and an Idempotency-Key replay without the secret', async () => {
    const p = await create({ name: 'Defaults' });
    assert.equal(p.callback_url, null);
    assert.equal(p.callback_url2, null);
    assert.equal(p.number_pool_enable, false);
    assert.equal(p.long_code_weight, 1);
    assert.equal(p.tollfree_weight, 1);
    assert.equal(p.skip_unhealthy_tns, false);
    assert.equal(p.sticky_sender, false);
    const g = await ot('GET', `${BASE}/${p.uuid}`);
    assert.equal(g.json.payload.name, 'Defaults');
    assert.ok((await list()).some((x) => x.uuid === p.uuid));
    const u = await ot('PATCH', `${BASE}/${p.uuid}`, {
        body: { sticky_sender: 'true', callback_url: 'http://hooks.example.org/x' },
    });
    assert.equal(u.status, 200, u.text);
    assert.equal(u.json.payload.sticky_sender, true);
    assert.equal(u.json.payload.name, 'Defaults', 'what a PATCH leaves out stays');
    assert.equal(u.json.payload.callback_url, 'http://hooks.example.org/x');
    const cleared = await ot('PATCH', `${BASE}/${p.uuid}`, { body: { callback_url: null } });
    assert.equal(cleared.json.payload.callback_url, null);
    assert.equal((await ot('GET', `${BASE}/${p.uuid}`)).json.payload.callback_url, null);

    const headers = { 'Idempotency-Key': 'ot-create-1' };
    const first = await ot('POST', BASE, { body: { name: 'Once' }, headers });
    assert.equal(first.status, 201);
    assert.ok(first.json.payload.signing_secret);
    const again = await ot('POST', BASE, { body: { name: 'Once' }, headers });
    assert.equal(again.status, 201);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.json.payload.uuid, first.json.payload.uuid);
    assert.equal(again.json.payload.signing_secret, undefined, 'a replay does not show the secret again');
    assert.equal((await list()).filter((x) => x.name === 'Once').length, 1, 'the retry wrote nothing');
});

test('seed 004: every field limit, in the surface error form, and nothing written', async () => {
    const before = (await list()).length;
    const cases = [
        [{}, /name/],
        [{ name: '' }, /name/],
        [{ name: 'x'.repeat(256) }, /name/],
        [{ name: 5 }, /name/],
        [{ name: 'ok', callback_url: 'http://a' }, /callback_url/], // 8 characters
        [{ name: 'ok', callback_url: `https://e.com/${'x'.repeat(242)}` }, /callback_url/], // 256
        [{ name: 'ok', callback_url2: 'https://a' }, /callback_url2/],
        [{ name: 'ok', callback_url2: `https://e.com/${'x'.repeat(242)}` }, /callback_url2/],
        [{ name: 'ok', callback_url: 'ftp://files.example.com/x' }, /callback_url/],
        [{ name: 'ok', callback_url: 'not a url at all' }, /callback_url/],
        [{ name: 'ok', long_code_weight: 10 }, /long_code_weight/],
        [{ name: 'ok', long_code_weight: -1 }, /long_code_weight/],
        [{ name: 'ok', long_code_weight: 1.5 }, /long_code_weight/],
        [{ name: 'ok', toll_free_weight: 10 }, /toll_free_weight/],
        [{ name: 'ok', tollfree_weight: 10 }, /tollfree_weight/],
        [{ name: 'ok', toll_free_weight: 2, tollfree_weight: 3 }, /toll_?free_weight/],
        [{ name: 'ok', number_pool_enable: 'yes' }, /number_pool_enable/],
        [{ name: 'ok', skip_unhealthy_tns: 1 }, /skip_unhealthy_tns/],
        [{ name: 'ok', sticky_sender: 'maybe' }, /sticky_sender/],
    ];
    for (const [body, re] of cases) {
        const r = await ot('POST', BASE, { body });
        assertFail(r, 422, re);
    }
    assertFail(await ot('POST', BASE, { body: '{"name":' }), 400);
    assertFail(await ot('POST', BASE, { body: '[1]' }), 400);
    assert.equal((await list()).length, before, 'no refused create was stored');
    // The limits themselves are accepted: 255 characters (multi-byte counts once), 10 and 255.
    const ok = await create({
        name: 'é'.repeat(255), callback_url: 'http://e.c', callback_url2: `https://e.com/${'x'.repeat(241)}`,
        long_code_weight: 0, toll_free_weight: 9,
    });
    assert.equal(ok.name, 'é'.repeat(255));
    assert.equal(ok.callback_url2.length, 255);
    assert.equal(ok.long_code_weight, 0);
    assert.equal(ok.tollfree_weight, 9);
    // PATCH applies the same limits and leaves the profile as it was.
    assertFail(await ot('PATCH', `${BASE}/${ok.uuid}`, { body: { long_code_weight: 12 } }), 422, /long_code_weight/);
    assertFail(await ot('PATCH', `${BASE}/${ok.uuid}`, { body: { name: '' } }), 422, /name/);
    const g = await ot('GET', `${BASE}/${ok.uuid}`);
    assert.equal(g.json.payload.long_code_weight, 0);
    assert.equal(g.json.payload.name, 'é'.repeat(255));
});

test('issue 14: both spellings of the toll-free weight; number_pool_enable as boolean or string', async () => {
    const a = await create({ name: 'spell a', toll_free_weight: 4, number_pool_enable: 'true' });
    assert.equal(a.tollfree_weight, 4);
    assert.equal(a.number_pool_enable, true);
    const b = await create({ name: 'spell b', tollfree_weight: 6, number_pool_enable: false });
    assert.equal(b.tollfree_weight, 6);
    assert.equal(b.number_pool_enable, false);
    const c = await create({ name: 'spell c', toll_free_weight: 2, tollfree_weight: 2, number_pool_enable: 'false' });
    assert.equal(c.tollfree_weight, 2);
    assert.equal(c.number_pool_enable, false);
    const u = await ot('PATCH', `${BASE}/${b.uuid}`, { body: { toll_free_weight: 8, number_pool_enable: 'true' } });
    assert.equal(u.json.payload.tollfree_weight, 8);
    assert.equal(u.json.payload.number_pool_enable, true);
    const u2 = await ot('PATCH', `${BASE}/${b.uuid}`, { body: { tollfree_weight: 0 } });
    assert.equal(u2.json.payload.tollfree_weight, 0);
});

test('issue 14: private or non-http(s) callback URLs are refused when set', async () => {
    for (const url of ['http://127.0.0.1/hook', 'http://localhost:8080/x', 'https://10.1.2.3/x',
        'http://192.168.0.10/x', 'http://[::1]:9000/x', 'http://169.254.169.254/latest', 'http://172.20.0.1/x',
        'gopher://example.com/x']) {
        assertFail(await ot('POST', BASE, { body: { name: 'p', callback_url: url } }), 422, /callback_url/);
        assertFail(await ot('POST', BASE, { body: { name: 'p', callback_url2: url } }), 422, /callback_url2/);
    }
    const p = await create({ name: 'public' });
    assertFail(await ot('PATCH', `${BASE}/${p.uuid}`, { body: { callback_url: 'http://127.0.0.1:1/x' } }), 422);
    assert.equal((await ot('GET', `${BASE}/${p.uuid}`)).json.payload.callback_url, null);
});

test('issue 14: --allow-private-webhooks and CONSENTD_ALLOW_PRIVATE_WEBHOOKS=1 allow them', async () => {
    for (const opts of [{ args: ['--allow-private-webhooks'] }, { env: { CONSENTD_ALLOW_PRIVATE_WEBHOOKS: '1' } }]) {
        const s2 = await startServer({ accounts: ['acme'], ...opts });
        try {
            const t = (await s2.cli(['token', '--account', 'acme'])).stdout.trim();
            const r = await request(s2.url, 'POST', BASE, {
                headers: { 'X-Auth-Token': t },
                body: { name: 'local', callback_url: 'http://127.0.0.1:9/hook', callback_url2: 'http://localhost:9/b' },
            });
            assert.equal(r.status, 201, r.text);
            assert.equal(r.json.payload.callback_url, 'http://127.0.0.1:9/hook');
            // Still http(s) only.
            const bad = await request(s2.url, 'POST', BASE, {
                headers: { 'X-Auth-Token': t }, body: { name: 'x', callback_url: 'file:///etc/passwd' },
            });
            assert.equal(bad.status, 422);
        } finally {
            await s2.stop();
        }
    }
});

test('seed 004: unknown uuid 404, malformed uuid 404, wrong method 405, unknown path 404 — all in the form', async () => {
    assertFail(await ot('GET', `${BASE}/${UNKNOWN}`), 404);
    assertFail(await ot('PATCH', `${BASE}/${UNKNOWN}`, { body: { name: 'x' } }), 404);
    assertFail(await ot('DELETE', `${BASE}/${UNKNOWN}`), 404);
    assertFail(await ot('GET', `${BASE}/${UNKNOWN}/leases`), 404);
    assertFail(await ot('GET', `${BASE}/not-a-uuid`), 404);
    const m = await ot('PUT', BASE, { body: {} });
    assertFail(m, 405);
    assert.match(m.headers.allow, /POST/);
    assertFail(await ot('POST', `${BASE}/${UNKNOWN}`, { body: {} }), 405);
    assertFail(await ot('GET', '/rest/profile/other'), 404);
    assertFail(await ot('GET', '/rest/profile'), 404);
});

test('X-Auth-Token: missing, forged, expired, revoked -> 401 in the form, nothing read or changed', async () => {
    const p = await create({ name: 'Guarded' });
    const [h, , s] = tokA.split('.');
    // The same header and signature with the claims of another account (sub) or a later expiry.
    const claims = JSON.parse(Buffer.from(tokA.split('.')[1], 'base64url').toString());
    const forgedClaims = Buffer.from(JSON.stringify({ ...claims, exp: claims.exp + 99999 })).toString('base64url');
    const noneAlg = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${tokA.split('.')[1]}.`;
    const expired = await mint('acme', 1);
    const revoked = await mint('acme');
    assert.equal((await ot('GET', BASE, { token: revoked })).status, 200, 'usable before the revoke');
    const rv = await srv.cli(['token', 'revoke', '--account', 'acme', revoked]);
    assert.equal(rv.code, 0, rv.stderr);
    assert.deepEqual(JSON.parse(rv.stdout), { revoked: true });
    await sleep(2100); // `expired` is now past its exp
    const bad = {
        missing: null, empty: '', garbage: 'not.a.jwt', forged: `${h}.${forgedClaims}.${s}`, none: noneAlg,
        expired, revoked,
    };
    for (const [what, token] of Object.entries(bad)) {
        for (const [method, path, body] of [['GET', BASE], ['POST', BASE, { name: 'evil' }],
            ['GET', `${BASE}/${p.uuid}`], ['PATCH', `${BASE}/${p.uuid}`, { name: 'evil' }],
            ['DELETE', `${BASE}/${p.uuid}`], ['GET', `${BASE}/${p.uuid}/leases`],
            ['GET', `${BASE}/${UNKNOWN}`]]) {
            const r = await ot(method, path, { token, body });
            assertFail(r, 401, /Unauthorized/);
            assert.ok(!r.text.includes('Guarded'), `${what}: nothing read`);
        }
    }
    const g = await ot('GET', `${BASE}/${p.uuid}`);
    assert.equal(g.json.payload.name, 'Guarded', 'nothing changed');
    assert.ok(!(await list()).some((x) => x.name === 'evil'), 'nothing created');
    // A native API key is not an X-Auth-Token, and a JWT is not a native key.
    assertFail(await ot('GET', BASE, { token: srv.key }), 401);
    const native = await srv.v1('GET', '/senders', { key: tokA });
    assert.equal(native.status, 401);
    // Revoking a token of another account (or garbage) fails and revokes nothing.
    const cross = await srv.cli(['token', 'revoke', '--account', 'beta', tokA]);
    assert.notEqual(cross.code, 0);
    assert.equal((await ot('GET', BASE)).status, 200);
});

test('tenant isolation: another account\'s valid token gets 404 for this account\'s uuid', async () => {
    const p = await create({ name: 'Acme only', callback_url: 'https://acme.example.com/h' });
    await addSender(srv, num(150));
    const lease = await srv.v1('POST', `/senders/${encodeURIComponent(num(150))}/lease`, { body: { profile: p.uuid } });
    assert.equal(lease.status, 201, lease.text);
    const unknownForB = await ot('GET', `${BASE}/${UNKNOWN}`, { token: tokB });
    for (const [method, path, body] of [['GET', `${BASE}/${p.uuid}`], ['PATCH', `${BASE}/${p.uuid}`, { name: 'B was here' }],
        ['DELETE', `${BASE}/${p.uuid}`], ['GET', `${BASE}/${p.uuid}/leases`]]) {
        const r = await ot(method, path, { token: tokB, body });
        assertFail(r, 404);
        assert.deepEqual(r.json, unknownForB.json, 'the same answer as an unknown uuid');
        assert.ok(!r.text.includes('Acme only') && !r.text.includes(num(150)));
    }
    assert.ok(!(await list(tokB)).some((x) => x.uuid === p.uuid), 'not in beta\'s list');
    const g = await ot('GET', `${BASE}/${p.uuid}`);
    assert.equal(g.json.payload.name, 'Acme only', 'beta changed nothing');
    assert.equal(g.json.payload.leases.length, 1, 'nor released the lease');
    // beta cannot lease its way into acme's profile either.
    const r = await srv.v1('POST', '/senders', { key: srv.accounts.beta.api_key, body: { number: num(151) } });
    assert.equal(r.status, 201);
    const l2 = await srv.v1('POST', `/senders/${encodeURIComponent(num(151))}/lease`,
        { key: srv.accounts.beta.api_key, body: { profile: p.uuid } });
    assert.equal(l2.status, 404);
});

test('seed 004: leases list; deletion removes the profile from list and get and releases its leases', async () => {
    const p = await create({ name: 'Doomed', number_pool_enable: true });
    await addSender(srv, num(60));
    await addSender(srv, '+18005550160');
    for (const n of [num(60), '+18005550160']) {
        const r = await srv.v1('POST', `/senders/${encodeURIComponent(n)}/lease`, { body: { profile: p.uuid } });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['created_on', 'number', 'profile', 'type', 'uuid']);
        assert.equal(r.json.profile, p.uuid);
        assert.match(r.json.uuid, UUID);
    }
    const leases = await ot('GET', `${BASE}/${p.uuid}/leases`);
    assert.equal(leases.status, 200);
    assert.equal(leases.json.success, true);
    assert.deepEqual(leases.json.payload.map((l) => [l.number, l.type]).sort(),
        [['+16465550160', 'long_code'], ['+18005550160', 'toll_free']]);
    const g = await ot('GET', `${BASE}/${p.uuid}`);
    assert.equal(g.json.payload.leases.length, 2);

    const d = await ot('DELETE', `${BASE}/${p.uuid}`);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.success, true);
    assert.equal(d.json.payload.uuid, p.uuid);
    assertFail(await ot('GET', `${BASE}/${p.uuid}`), 404);
    assertFail(await ot('GET', `${BASE}/${p.uuid}/leases`), 404);
    assertFail(await ot('DELETE', `${BASE}/${p.uuid}`), 404);
    assert.ok(!(await list()).some((x) => x.uuid === p.uuid));
    const senders = (await srv.v1('GET', '/senders')).json.data;
    for (const n of [num(60), '+18005550160']) {
        assert.equal(senders.find((s) => s.number === n).profile, null, `${n} released`);
    }
});

test('CLI: sender add|list|lease|release', async () => {
    const p = await create({ name: 'CLI' });
    const add = await srv.cliOk(['sender', 'add', '--account', 'acme', '(646) 555-0170']);
    assert.equal(add.json.number, num(70));
    assert.equal(add.json.type, 'long_code');
    assert.equal(add.json.healthy, true);
    const tf = await srv.cliOk(['sender', 'add', '--account', 'acme', '+1 888 555 0170']);
    assert.equal(tf.json.type, 'toll_free');
    const sc = await srv.cliOk(['sender', 'add', '--account', 'acme', '55517', '--type', 'short_code']);
    assert.equal(sc.json.type, 'short_code');
    const lease = await srv.cliOk(['sender', 'lease', '--account', 'acme', num(70), '--profile', p.uuid]);
    assert.equal(lease.json.profile, p.uuid);
    assert.equal(lease.json.number, num(70));
    const ls = await srv.cliOk(['sender', 'list', '--account', 'acme']);
    assert.equal(ls.json.find((s) => s.number === num(70)).profile, p.uuid);
    // What the CLI did is what the API sees.
    const api = (await ot('GET', `${BASE}/${p.uuid}/leases`)).json.payload;
    assert.deepEqual(api.map((l) => l.number), [num(70)]);
    const rel = await srv.cliOk(['sender', 'release', '--account', 'acme', num(70)]);
    assert.equal(rel.json.released, true);
    assert.deepEqual((await ot('GET', `${BASE}/${p.uuid}/leases`)).json.payload, []);
    const again = await srv.cli(['sender', 'release', '--account', 'acme', num(70)]);
    assert.notEqual(again.code, 0, 'not leased any more');
    const badType = await srv.cli(['sender', 'add', '--account', 'acme', num(71), '--type', 'pager']);
    assert.equal(badType.code, 2);
    const noProfile = await srv.cli(['sender', 'lease', '--account', 'acme', num(70), '--profile', UNKNOWN]);
    assert.notEqual(noProfile.code, 0);
    const cross = await srv.cli(['sender', 'add', '--account', 'beta', num(70)]);
    assert.notEqual(cross.code, 0, 'a number of another account');
});

test('issue 14: 413 and 429 under /rest/profile/ come in the surface form too', async () => {
    const s = await startServer({ accounts: ['acme'], args: ['--max-body', '4096'] });
    try {
        const t = (await s.cli(['token', '--account', 'acme'])).stdout.trim();
        const big = await request(s.url, 'POST', BASE, {
            headers: { 'X-Auth-Token': t }, body: { name: 'x'.repeat(8000) },
        });
        assert.equal(big.status, 413, big.text);
        assert.equal(big.json.success, false);
        assert.equal(typeof big.json.payload.message, 'string');
        const r = await s.v1('PATCH', '/settings', { body: { rate_limit: { limit: 2, window_seconds: 60 } } });
        assert.equal(r.status, 200, r.text);
        const got = [];
        for (let i = 0; i < 4; i++) got.push(await request(s.url, 'GET', BASE, { headers: { 'X-Auth-Token': t } }));
        const limited = got.filter((x) => x.status === 429);
        assert.ok(limited.length >= 1, got.map((x) => x.status).join(','));
        for (const x of limited) {
            assert.equal(x.json.success, false);
            assert.equal(typeof x.json.payload.message, 'string');
            assert.match(x.headers['retry-after'] ?? '', /^\d+$/);
        }
    } finally {
        await s.stop();
    }
});
