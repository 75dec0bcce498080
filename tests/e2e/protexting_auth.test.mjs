// issue 10: the ProTexting surface's own credential style (?access_token=KEY): missing, wrong,
// revoked and another account's key, each writing nothing; the per-credential rate limit
// (default 60 per second, X-Rate-Limit-*, 429) and the account's own rate_limit; the 404, 405 and
// 413 of every path under /v1/contacts-opt-in/ and /v1/contacts/ in ProTexting's format.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, num, rawHttp } from './lib/server.mjs';
import { assertNoSanitizerReport } from './lib/msgkit.mjs';
import {
    CACHE_CONTROL, create, optOut, undo, pt, digits, makeGroup, nativeContact, outTo,
} from './lib/protexting.mjs';

let srv;
let g1;
let next = 120;
const fresh = () => num(next++);
const UNAUTHORIZED = {
    name: 'Unauthorized', message: 'Your request was made with invalid credentials.', code: 0, status: 401,
};

before(async () => {
    srv = await startServer({ accounts: ['acme', 'beta', 'rl', 'own'] });
    g1 = await makeGroup(srv, 'news');
});
after(async () => {
    await srv?.stop();
    if (srv) assertNoSanitizerReport(srv);
});

/** Nothing about `phone` exists in either account. */
async function nothingWritten(phone) {
    for (const key of [srv.key, srv.accounts.beta.api_key]) {
        assert.equal(await nativeContact(srv, phone, { key }), null);
        assert.deepEqual(await outTo(srv, phone, { key }), []);
    }
}

describe('credentials', () => {
    const calls = {
        create: (p, o) => create(srv, { PhoneNumber: digits(p), GroupIds: [g1] }, o),
        'opt-out': (p, o) => optOut(srv, { PhoneNumber: digits(p) }, o),
        'create-custom': (p, o) => undo(srv, { PhoneNumber: digits(p) }, o),
    };
    for (const [name, call] of Object.entries(calls)) {
        test(`${name}: a missing or wrong token is 401 in JSON and XML, nothing written`, async () => {
            const phone = fresh();
            for (const key of [null, '', 'nope', `${srv.key}x`, srv.key.slice(0, -1)]) {
                const r = await call(phone, { key });
                assert.equal(r.status, 401, `${key}: ${r.text}`);
                assert.deepEqual(r.json, UNAUTHORIZED);
                assert.equal(r.headers['cache-control'], CACHE_CONTROL);
                assert.equal(r.headers['x-rate-limit-limit'], undefined, 'nothing counted for nobody');
            }
            const x = await call(phone, { key: 'nope', xml: true });
            assert.equal(x.status, 401);
            assert.equal(x.headers['content-type'], 'application/xml; charset=UTF-8');
            assert.equal(x.text, '<?xml version="1.0" encoding="UTF-8"?>\n<response><name>Unauthorized</name>' +
                '<message>Your request was made with invalid credentials.</message><code>0</code>' +
                '<status>401</status></response>\n');
            // A Bearer header (the native style) is not this surface's credential.
            const b = await pt(srv, '/v1/contacts/opt-out', {
                key: null, body: { PhoneNumber: digits(phone) }, headers: { Authorization: `Bearer ${srv.key}` },
            });
            assert.equal(b.status, 401);
            await nothingWritten(phone);
        });
    }

    test('a revoked key is 401 and writes nothing', async () => {
        const k = await srv.v1('POST', '/keys', { body: { name: 'pt' } });
        assert.equal(k.status, 201, k.text);
        const ok = await create(srv, { PhoneNumber: digits(fresh()), GroupIds: [g1] }, { key: k.json.key });
        assert.equal(ok.status, 201, 'the new key works first');
        const d = await srv.v1('DELETE', `/keys/${k.json.id}`);
        assert.equal(d.status, 204, d.text);
        const phone = fresh();
        for (const call of [create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] }, { key: k.json.key }),
            optOut(srv, { PhoneNumber: digits(phone) }, { key: k.json.key })]) {
            const r = await call;
            assert.equal(r.status, 401, r.text);
            assert.deepEqual(r.json, UNAUTHORIZED);
        }
        await nothingWritten(phone);
    });

    test("another account's valid key works on that account only: acme's group is unknown, nothing written", async () => {
        const beta = srv.accounts.beta.api_key;
        const phone = fresh();
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] }, { key: beta });
        assert.equal(r.status, 422, r.text);
        assert.deepEqual(r.json, [{ field: 'GroupIds', message: `Group Ids contains an unknown group: ${g1}.` }]);
        // An acme contact cannot be undone with beta's key either.
        const a = fresh();
        assert.equal((await optOut(srv, { PhoneNumber: digits(a) })).status, 201);
        const u = await undo(srv, { PhoneNumber: digits(a) }, { key: beta });
        assert.equal(u.status, 422, u.text);
        assert.deepEqual(u.json, [{ field: 'PhoneNumber', message: 'Phone Number was not found.' }]);
        const c = await srv.v1('GET', `/contacts/${encodeURIComponent(a)}/consents`);
        assert.deepEqual(c.json.data.map((x) => [x.scope, x.state]), [['all', 'opted_out']]);
        await nothingWritten(phone);
        assert.equal(await nativeContact(srv, a, { key: beta }), null);
    });
});

describe('rate limit', () => {
    test('default 60 per second per credential: headers, then 429 in the same format; native unaffected', async () => {
        const key = srv.accounts.rl.api_key;
        const first = await create(srv, {}, { key });
        assert.equal(first.status, 422);
        assert.equal(first.headers['x-rate-limit-limit'], '60');
        assert.equal(first.headers['x-rate-limit-remaining'], '59');
        assert.equal(first.headers['x-rate-limit-reset'], '1');
        const burst = await Promise.all(Array.from({ length: 80 }, () => create(srv, {}, { key })));
        const limited = burst.filter((r) => r.status === 429);
        assert.ok(limited.length >= 1, `some of 81 requests in a burst are over 60/s: ${burst.map((r) => r.status)}`);
        for (const r of limited) {
            assert.deepEqual(r.json, { name: 'Too Many Requests', message: 'Rate limit exceeded.', code: 0, status: 429 });
            assert.equal(r.headers['x-rate-limit-limit'], '60');
            assert.equal(r.headers['x-rate-limit-remaining'], '0');
            assert.match(r.headers['retry-after'], /^[1-9]\d*$/);
            assert.equal(r.headers['cache-control'], CACHE_CONTROL);
        }
        const x = await create(srv, {}, { key, xml: true });
        if (x.status === 429) {
            assert.match(x.text, /<name>Too Many Requests<\/name>/);
        }
        // The native surface keeps its own default: no limit unless the account sets one.
        const n = await srv.v1('GET', '/groups', { key });
        assert.equal(n.status, 200, n.text);
        assert.equal(n.headers['x-rate-limit-limit'], undefined);
    });

    test("the account's rate_limit setting replaces the default", async () => {
        const own = srv.accounts.own.api_key;
        const k2 = await srv.v1('POST', '/keys', { key: own, body: { name: 'second' } });
        assert.equal(k2.status, 201, k2.text);
        const key = k2.json.key; // counted apart from `own`, which reads the outcome below
        const p = await srv.v1('PATCH', '/settings', { key: own, body: { rate_limit: { limit: 3, window_seconds: 60 } } });
        assert.equal(p.status, 200, p.text);
        const seen = [];
        for (let i = 0; i < 4; i++) seen.push(await create(srv, {}, { key }));
        assert.deepEqual(seen.map((r) => r.status), [422, 422, 422, 429]);
        assert.deepEqual(seen.map((r) => r.headers['x-rate-limit-remaining']), ['2', '1', '0', '0']);
        assert.equal(seen[0].headers['x-rate-limit-limit'], '3');
        const reset = Number(seen[3].headers['x-rate-limit-reset']);
        assert.ok(reset > 1 && reset <= 60, `reset ${reset}`);
        // Nothing was written by the refused request.
        const phone = fresh();
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] }, { key });
        assert.equal(r.status, 429);
        assert.equal(await nativeContact(srv, phone, { key: own }), null);
    });
});

describe('404, 405 and 413 in ProTexting format', () => {
    test('wrong method: 405 with Allow: POST, JSON and XML', async () => {
        for (const path of ['/v1/contacts-opt-in/create', '/v1/contacts/opt-out', '/v1/contacts-opt-in/create-custom']) {
            for (const method of ['GET', 'PUT', 'DELETE']) {
                const r = await pt(srv, path, { method });
                assert.equal(r.status, 405, `${method} ${path}: ${r.text}`);
                assert.equal(r.headers.allow, 'POST');
                assert.deepEqual(r.json, {
                    name: 'Method Not Allowed',
                    message: 'Method Not Allowed. This URL can only handle the following request methods: POST.',
                    code: 0, status: 405,
                });
            }
        }
        const x = await pt(srv, '/v1/contacts/opt-out', { method: 'GET', xml: true });
        assert.equal(x.status, 405);
        assert.match(x.text, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<response><name>Method Not Allowed<\/name>/);
    });

    test('unknown paths under the two prefixes: 404, with or without a token', async () => {
        const NOT_FOUND = { name: 'Not Found', message: 'Page not found.', code: 0, status: 404 };
        for (const path of ['/v1/contacts-opt-in/nope', '/v1/contacts/', '/v1/contacts/opt-out/x',
            '/v1/contacts-opt-in', '/v1/contacts']) {
            for (const key of [undefined, null]) {
                const r = await pt(srv, path, { key });
                assert.equal(r.status, 404, `${path}: ${r.text}`);
                assert.deepEqual(r.json, NOT_FOUND);
                assert.equal(r.headers['cache-control'], CACHE_CONTROL);
            }
        }
        const x = await pt(srv, '/v1/contacts/zzz', { xml: true });
        assert.equal(x.text, '<?xml version="1.0" encoding="UTF-8"?>\n<response><name>Not Found</name>' +
            '<message>Page not found.</message><code>0</code><status>404</status></response>\n');
        // Outside them, the native format still answers.
        const other = await pt(srv, '/v1/elsewhere');
        assert.equal(other.status, 404);
        assert.ok(other.json.error, other.text);
    });

    test('a body over 64 KiB: 413 in the same format, nothing written', async () => {
        const phone = fresh();
        const body = JSON.stringify({ PhoneNumber: digits(phone), GroupIds: [g1], CTAMessage: 'x'.repeat(70000) });
        const r = await rawHttp(srv.port, {
            path: `/v1/contacts-opt-in/create?access_token=${srv.key}`,
            headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
            body,
        });
        assert.equal(r.status, 413, JSON.stringify(r).slice(0, 500));
        assert.deepEqual(r.json, {
            name: 'Request Entity Too Large', message: 'The request body is larger than the server accepts.',
            code: 0, status: 413,
        });
        await nothingWritten(phone);
    });
});

describe('Idempotency-Key', () => {
    test('a retry with the same key answers the first answer and writes nothing more', async () => {
        const phone = fresh();
        const headers = { 'Idempotency-Key': `pt-${phone}` };
        const body = { PhoneNumber: digits(phone), GroupIds: [g1], SendCTAMessage: 1 };
        const a = await create(srv, body, { headers });
        const b = await create(srv, body, { headers, xml: true });
        assert.equal(a.status, 201, a.text);
        assert.equal(b.status, 201, b.text);
        assert.equal(b.headers['idempotent-replayed'], 'true');
        assert.match(b.text, new RegExp(`<Id>${a.json.Id}</Id>`));
        assert.equal((await outTo(srv, phone)).length, 1);
    });
});
