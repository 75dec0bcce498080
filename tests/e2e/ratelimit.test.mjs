// issue 9 part 5: the per-account request limit. PATCH /api/v1/settings {"rate_limit":
// {"limit","window_seconds"}} limits each credential of the account; over it the native API
// answers 429 rate_limited with Retry-After; no limit unless one is set; null removes it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, runCli } from './lib/server.mjs';

let srv;
let betaKey;
before(async () => {
    srv = await startServer({ accounts: ['acme', 'beta'] });
    betaKey = srv.accounts.beta.api_key;
});
after(async () => {
    await srv?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('rate_limit setting', () => {
    test('no limit set: 200 requests in a row all pass, with no rate-limit headers', async () => {
        for (let i = 0; i < 200; i++) {
            const r = await srv.v1('GET', '/settings');
            assert.equal(r.status, 200, `request ${i + 1}: ${r.text}`);
            assert.equal(r.headers['retry-after'], undefined);
            assert.equal(r.headers['x-rate-limit-limit'], undefined);
        }
    });

    test('bad rate_limit values are 422 invalid_field on rate_limit', async () => {
        const bad = [5, 'x', {}, { limit: 5 }, { window_seconds: 2 }, { limit: 0, window_seconds: 2 },
            { limit: 1000001, window_seconds: 2 }, { limit: 5, window_seconds: 0 },
            { limit: 5, window_seconds: 86401 }, { limit: 5.5, window_seconds: 2 },
            { limit: '5', window_seconds: 2 }, { limit: 5, window_seconds: 2, burst: 1 }];
        for (const v of bad) {
            const r = await srv.v1('PATCH', '/settings', { body: { rate_limit: v } });
            assert.equal(r.status, 422, `${JSON.stringify(v)}: ${r.text}`);
            const e = errorOf(r);
            assert.equal(e.code, 'invalid_field');
            assert.equal(e.field, 'rate_limit');
        }
        const g = await srv.v1('GET', '/settings');
        assert.equal(g.json.rate_limit, undefined, g.text);
    });

    test('limit 5 per 2 s: the 6th request is 429 with Retry-After, then it passes again', async () => {
        const p = await srv.v1('PATCH', '/settings', { body: { rate_limit: { limit: 5, window_seconds: 2 } } });
        assert.equal(p.status, 200, p.text);
        assert.deepEqual(p.json.rate_limit, { limit: 5, window_seconds: 2 });
        const g = await srv.v1('GET', '/settings'); // 1st of the window
        assert.equal(g.status, 200, g.text);
        assert.deepEqual(g.json.rate_limit, { limit: 5, window_seconds: 2 });
        for (let i = 2; i <= 5; i++) {
            const r = await srv.v1('GET', '/contacts');
            assert.equal(r.status, 200, `request ${i}: ${r.text}`);
        }
        const over = await srv.v1('GET', '/contacts');
        assert.equal(over.status, 429, over.text);
        assert.equal(errorOf(over).code, 'rate_limited');
        const ra = over.headers['retry-after'];
        assert.match(String(ra), /^[12]$/, `Retry-After: ${ra}`);
        // writes are refused too, before anything is written
        const w = await srv.v1('POST', '/groups', { body: { name: 'limited' } });
        assert.equal(w.status, 429, w.text);

        // another account is not affected
        for (let i = 0; i < 10; i++) {
            const r = await srv.v1('GET', '/contacts', { key: betaKey });
            assert.equal(r.status, 200, r.text);
        }

        await sleep(Number(ra) * 1000 + 100);
        const again = await srv.v1('GET', '/contacts');
        assert.equal(again.status, 200, again.text);
    });

    test('null removes the limit', async () => {
        await sleep(2100); // a fresh window, so that the PATCH itself passes
        const p = await srv.v1('PATCH', '/settings', { body: { rate_limit: null } });
        assert.equal(p.status, 200, p.text);
        assert.equal(p.json.rate_limit, undefined, p.text);
        for (let i = 0; i < 20; i++) {
            const r = await srv.v1('GET', '/contacts');
            assert.equal(r.status, 200, `request ${i + 1}: ${r.text}`);
        }
    });
});

// issue 9 part 5: unauthenticated routes are limited per client address (--public-rate-limit
// LIMIT/SECONDS, default 600/60), answered 429 in the native format from the request head.
describe('public routes: a limit per client address', () => {
    let pub;
    before(async () => {
        pub = await startServer({ args: ['--public-rate-limit', '4/60'] });
    });
    after(async () => {
        await pub?.stop();
    });

    test('the 5th public request in the window is 429; authenticated routes are not counted', async () => {
        // the server's start-up probe may have used some of the window: count from what is left
        let ok = 0;
        let over;
        for (let i = 0; i < 6 && !over; i++) {
            const r = await pub.api('GET', i % 2 ? '/metrics' : '/healthz');
            if (r.status === 429) over = r;
            else assert.equal(r.status, 200, r.text), ok++;
        }
        assert.ok(over, 'no request was refused');
        assert.ok(ok <= 4, `${ok} passed`);
        assert.equal(errorOf(over).code, 'rate_limited');
        assert.match(String(over.headers['retry-after']), /^\d+$/);
        assert.ok(Number(over.headers['retry-after']) <= 60);
        // the confirmation page shares the same per-address count
        const c = await pub.api('GET', '/c/not-a-token');
        assert.equal(c.status, 429, c.text);
        // keyed routes keep the account's limit (none here)
        for (let i = 0; i < 10; i++) {
            const r = await pub.v1('GET', '/contacts');
            assert.equal(r.status, 200, r.text);
        }
    });

    test('a bad --public-rate-limit is refused at start', async () => {
        for (const v of ['5', '5/0', 'x/60', '-1/60', '5/86401']) {
            const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--public-rate-limit', v]);
            assert.equal(r.code, 2, `${v}: ${r.stderr}`);
            assert.match(r.stderr, /--public-rate-limit/);
        }
    });
});
