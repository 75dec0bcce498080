// Operations: /healthz, /metrics, /api/v1/openapi.json, keep-alive, logs, env config, clean stop and
// durability (DESIGN 5, DESIGN 6; issue 3 items 2, 3, 7 and item 8 "keep-alive reuse").
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, request, num } from './lib/server.mjs';

let srv;
before(async () => {
    srv = await startServer({ accounts: ['acme'] });
});
after(async () => {
    await srv?.stop();
});

// A Prometheus label set; values are quoted and may contain braces (route="/contacts/{id}").
const LABELS = String.raw`\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}`;

function metricSum(text, name) {
    let sum = 0;
    let found = false;
    for (const line of text.split('\n')) {
        if (line.startsWith('#')) continue;
        const m = line.match(new RegExp(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(${LABELS})?\\s+(\\S+)`));
        if (m && m[1] === name) { sum += Number(m[3]); found = true; }
    }
    return found ? sum : undefined;
}

describe('health, metrics, openapi', () => {
    test('GET /healthz -> 200 {"status":"ok"} without credentials', async () => {
        // DESIGN 6: GET /healthz.
        const r = await srv.api('GET', '/healthz', { key: null });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json?.status, 'ok', r.text);
        assert.match(r.headers['content-type'] ?? '', /application\/json/);
    });

    test('GET /metrics -> Prometheus text with request counts and commit batch sizes', async () => {
        // DESIGN 6: GET /metrics (Prometheus text); issue 3 item 7: requests by route and status, latency histogram,
        // commit batch sizes and latency.
        const w = await srv.v1('POST', '/consents', { body: { phone: num(1), scope: 'all', state: 'opted_in' } });
        assert.equal(w.status, 201, w.text);
        const r = await srv.api('GET', '/metrics', { key: null });
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
        assert.ok(r.text.includes('consentd_http_requests_total'), r.text.slice(0, 2000));
        assert.ok(r.text.includes('consentd_commit_batch_size'), r.text.slice(0, 2000));
        for (const line of r.text.split('\n')) {
            if (!line.length || line.startsWith('#')) continue;
            assert.match(line, new RegExp(String.raw`^[a-zA-Z_:][a-zA-Z0-9_:]*(${LABELS})? -?([0-9.]+([eE][-+]?\d+)?|NaN|\+Inf|-Inf)( \d+)?$`),
                `not a Prometheus sample line: ${line}`);
        }
        const batches = metricSum(r.text, 'consentd_commit_batch_size_count');
        if (batches !== undefined) assert.ok(batches >= 1, 'the consent POST was committed in a batch');
    });

    test('consentd_http_requests_total counts requests', async () => {
        // Issue 3 item 7: requests by route and status.
        const a = metricSum((await srv.api('GET', '/metrics', { key: null })).text, 'consentd_http_requests_total');
        assert.ok(a !== undefined, 'consentd_http_requests_total has no samples');
        for (let i = 0; i < 5; i++) await srv.v1('GET', '/contacts');
        await srv.v1('GET', '/nope-404');
        const b = metricSum((await srv.api('GET', '/metrics', { key: null })).text, 'consentd_http_requests_total');
        // 6 requests in between; at least 5 of them must be counted even if a counter is bumped after its reply.
        assert.ok(b - a >= 5, `counter moved by ${b - a}, expected at least 5`);
    });

    test('GET /api/v1/openapi.json describes the native API', async () => {
        // DESIGN 6: GET /api/v1/openapi.json; issue 3 item 7: describing the native API.
        const r = await srv.api('GET', '/api/v1/openapi.json');
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.ok(r.json && typeof r.json === 'object', 'openapi.json is not JSON');
        assert.match(String(r.json.openapi), /^3\./);
        assert.ok(r.json.paths && typeof r.json.paths === 'object');
        const paths = Object.keys(r.json.paths).join(' ');
        for (const p of ['contacts', 'groups', 'message-types', 'consents', 'check', 'events', 'messages', 'keys']) {
            assert.ok(paths.includes(p), `openapi paths lack ${p}: ${paths}`);
        }
    });
});

describe('keep-alive', () => {
    test('requests on one keep-alive connection reuse the socket, writes and errors included', async () => {
        // Issue 3 item 2 and item 8: keep-alive must stay open; keep-alive reuse.
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
            const auth = { Authorization: `Bearer ${srv.key}` };
            const seq = [
                ['GET', '/healthz'],
                ['GET', '/api/v1/contacts'],
                ['POST', '/api/v1/contacts', { phone: num(2), first_name: 'KA' }],
                ['POST', '/api/v1/consents', { phone: num(2), scope: 'all', state: 'opted_in' }],
                // A handler's 404 keeps the connection (a route's 404 no longer does: below).
                ['GET', `/api/v1/contacts/${encodeURIComponent(num(99))}`],
                ['POST', '/api/v1/contacts', { phone: 'bad' }],
                ['GET', `/api/v1/check?to=${encodeURIComponent(num(2))}`],
                ['GET', '/api/v1/contacts'],
            ];
            const results = [];
            for (const [method, p, body] of seq) {
                const r = await request(srv.url, method, p, { agent, headers: auth, body });
                assert.ok(r.status < 500, `${method} ${p}: ${r.text}`);
                assert.ok(!/close/i.test(r.headers.connection ?? ''), `${method} ${p} answered Connection: close`);
                results.push(r);
            }
            assert.equal(results[0].reusedSocket, false);
            for (let i = 1; i < results.length; i++) {
                assert.equal(results[i].reusedSocket, true, `${seq[i][0]} ${seq[i][1]} did not reuse the connection`);
                assert.equal(results[i].localPort, results[0].localPort, `${seq[i][0]} ${seq[i][1]} used another socket`);
            }
            assert.equal(results[6].json.allowed, true);
            assert.equal(results[4].status, 404);
            // Issue 8 item 6: no such route is refused from the request head, before any
            // body is read, and that answer closes the connection.
            const r = await request(srv.url, 'GET', '/api/v1/nope', { agent, headers: auth });
            assert.equal(r.status, 404);
            assert.match(r.headers.connection ?? '', /close/i);
        } finally {
            agent.destroy();
        }
    });

    test('two concurrent keep-alive connections each keep their socket', async () => {
        // Issue 3 item 2: keep-alive with the thread pool; connections are independent.
        const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const b = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
            const auth = { Authorization: `Bearer ${srv.key}` };
            const run = async (agent, n) => {
                const out = [];
                for (let i = 0; i < 4; i++) {
                    out.push(await request(srv.url, 'POST', '/api/v1/consents', {
                        agent, headers: auth, body: { phone: num(n), scope: 'all', state: i % 2 ? 'opted_out' : 'opted_in' },
                    }));
                }
                return out;
            };
            const [ra, rb] = await Promise.all([run(a, 3), run(b, 4)]);
            for (const rs of [ra, rb]) {
                for (const r of rs) assert.equal(r.status, 201, r.text);
                assert.equal(new Set(rs.map((r) => r.localPort)).size, 1);
                assert.deepEqual(rs.map((r) => r.reusedSocket), [false, true, true, true]);
            }
            assert.notEqual(ra[0].localPort, rb[0].localPort);
        } finally {
            a.destroy();
            b.destroy();
        }
    });
});

describe('logs', () => {
    test('stderr is one JSON object per line, with a line per request', async () => {
        // DESIGN 6: logs are one JSON object per line on stderr; issue 3 item 2: one JSON log line per request.
        const marker = '/api/v1/contacts/987654999';
        const r = await srv.api('GET', marker);
        assert.equal(r.status, 404);
        let lines = [];
        for (let i = 0; i < 40; i++) {
            lines = srv.stderr().split('\n').filter((l) => l.includes(marker));
            if (lines.length) break;
            await new Promise((res) => setTimeout(res, 50));
        }
        assert.ok(lines.length >= 1, `no log line for ${marker}`);
        assert.ok(/\b404\b/.test(lines[0]), `the request log line lacks the status: ${lines[0]}`);
        for (const line of srv.stderr().split('\n')) {
            if (!line.trim()) continue;
            let obj;
            assert.doesNotThrow(() => { obj = JSON.parse(line); }, `not JSON: ${line}`);
            assert.equal(typeof obj, 'object');
        }
    });

    test('the API key never appears in the logs', async () => {
        // DESIGN 2: API keys are stored hashed and shown once.
        await srv.v1('GET', '/contacts');
        assert.ok(!srv.stderr().includes(srv.key), 'an API key was logged');
    });
});

describe('process', () => {
    test('CONSENTD_LISTEN and CONSENTD_DB configure serve without flags', async () => {
        // DESIGN 6: every flag has an environment variable (CONSENTD_LISTEN, CONSENTD_DB).
        const s = await startServer({ accounts: ['envacct'], useEnv: true });
        try {
            const r = await s.v1('GET', '/contacts');
            assert.equal(r.status, 200, r.text);
            assert.deepEqual(r.json, { data: [], next_cursor: null });
        } finally {
            await s.stop();
        }
    });

    test('SIGTERM exits 0, and acknowledged writes survive a restart', async () => {
        // DESIGN 5: a request is acknowledged only after its commit is durable; lead contract: SIGTERM stops cleanly (exit 0).
        const s = await startServer({ accounts: ['durable'] });
        const writes = [];
        for (let i = 0; i < 20; i++) {
            writes.push(s.v1('POST', '/consents', { body: { phone: num(10 + i), scope: 'all', state: 'opted_in' } }));
        }
        const answers = await Promise.all(writes);
        for (const a of answers) assert.equal(a.status, 201, a.text);
        const { dir, dbPath, key } = s;
        const ex = await s.stop({ keepDir: true });
        assert.deepEqual(ex, { code: 0, signal: null });

        const s2 = await startServer({ accounts: [], dir, dbPath });
        s2.key = key;
        try {
            const ev = await s2.v1('GET', '/events?limit=1000');
            assert.equal(ev.status, 200, ev.text);
            assert.equal(ev.json.data.length, 20);
            assert.deepEqual(ev.json.data.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 1));
            const v = await s2.cli(['ledger', 'verify']);
            assert.equal(v.code, 0, v.stdout + v.stderr);
            assert.deepEqual(v.json, { ok: true, events: 20 });
            for (let i = 0; i < 20; i++) {
                const c = await s2.v1('GET', `/check?to=${encodeURIComponent(num(10 + i))}`);
                assert.equal(c.json.allowed, true, num(10 + i));
            }
        } finally {
            await s2.stop();
        }
    });

    test('concurrent writes from many connections all commit with a gapless chain', async () => {
        // DESIGN 5: one writer thread commits requests in groups; DESIGN 2: the chain links every event.
        const s = await startServer({ accounts: ['burst'] });
        try {
            const n = 60;
            const answers = await Promise.all(Array.from({ length: n }, (_, i) => s.v1('POST', '/consents', {
                body: { phone: num(100 + i), scope: 'all', state: i % 3 ? 'opted_in' : 'opted_out' },
            })));
            for (const a of answers) assert.equal(a.status, 201, a.text);
            const seqs = answers.map((a) => a.json.event.seq).sort((x, y) => x - y);
            assert.deepEqual(seqs, Array.from({ length: n }, (_, i) => i + 1));
            const ev = await s.v1('GET', '/events?limit=1000');
            for (let i = 1; i < ev.json.data.length; i++) {
                assert.equal(ev.json.data[i].prev_hash, ev.json.data[i - 1].hash);
            }
            const v = await s.cli(['ledger', 'verify']);
            assert.deepEqual(v.json, { ok: true, events: n });
        } finally {
            await s.stop();
        }
    });

    test('consentd migrate is idempotent on an existing database', async () => {
        // DESIGN 5: numbered migrations applied at start (consentd migrate).
        const r1 = await srv.cli(['migrate']);
        assert.equal(r1.code, 0, r1.stdout + r1.stderr);
        const r2 = await srv.cli(['migrate']);
        assert.equal(r2.code, 0, r2.stdout + r2.stderr);
        const h = await srv.v1('GET', '/contacts');
        assert.equal(h.status, 200, h.text);
    });
});
