// The HTTP provider transport (issue 4 item 2: `http` POSTs to a configured provider URL;
// DESIGN 4): what the provider receives, its id becoming the transport id, retries with
// backoff on 5xx, a permanent failure on 4xx, and the per-sender transport choice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, num } from './lib/server.mjs';
import { optIn, addSender, inbound, waitFor, waitStatus, getMessage, assertNoSanitizerReport } from './lib/msgkit.mjs';

let srv;
let provider;
const received = [];
let answer = () => ({ status: 200, body: { id: `prov-${received.length}` } });

before(async () => {
    provider = http.createServer((req, res) => {
        let data = '';
        req.on('data', (c) => { data += c; });
        req.on('end', () => {
            received.push({ headers: req.headers, body: JSON.parse(data) });
            const a = answer(received.at(-1));
            res.writeHead(a.status, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify(a.body ?? {}));
        });
    });
    await new Promise((r) => provider.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${provider.address().port}/sms`;
    srv = await startServer({ args: ['--transport', 'http', '--http-sms', url] });
    // Issue 8 item 4: sends over http come from a registered sender of the account.
    await addSender(srv, num(49), { isDefault: true });
});

after(async () => {
    if (srv) assertNoSanitizerReport(srv);
    await srv?.stop();
    await new Promise((r) => provider.close(r));
});

test('a send is POSTed to the provider as JSON; its id is recorded', async () => {
    // Issue 4 item 2: `http` transport; item 1: record the transport's message id.
    answer = () => ({ status: 202, body: { id: 'prov-abc' } });
    await optIn(srv, num(1));
    const r = await srv.v1('POST', '/messages', { body: { to: num(1), text: 'over http' } });
    assert.equal(r.status, 202, r.text);
    const m = await waitStatus(srv, r.json.id, 'sent');
    const got = received.find((x) => x.body.text === 'over http');
    assert.ok(got, 'the provider received it');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.body.to, num(1));
    assert.ok(got.body.id.endsWith(r.json.id), `the provider sees our id: ${got.body.id}`);
    assert.equal(got.body.from, num(49), 'from the registered default sender');
    assert.equal(m.history.at(-1).detail, 'prov-abc');
});

test('a 5xx is retried with backoff and the message goes out on the next attempt', async () => {
    // Issue 4 item 1: delivered by a worker with retries and backoff.
    let failures = 1;
    answer = () => (failures-- > 0 ? { status: 503, body: { error: 'busy' } } : { status: 200, body: { id: 'prov-retry' } });
    await optIn(srv, num(2));
    const r = await srv.v1('POST', '/messages', { body: { to: num(2), text: 'retry me' } });
    assert.equal(r.status, 202, r.text);
    const m = await waitStatus(srv, r.json.id, 'sent', { timeout: 15000 });
    const statuses = m.history.map((h) => h.status);
    assert.deepEqual(statuses, ['queued', 'queued', 'sent'], JSON.stringify(m.history));
    assert.match(m.history[1].detail, /503/);
    assert.equal(received.filter((x) => x.body.text === 'retry me').length, 2);
});

test('a STOP refuses a send waiting for its retry; only the STOP confirmation goes out', async () => {
    // Issue 8 item 1: an opt-out refuses every queued message (here one waiting for a retry
    // after a 503), the worker checks consent again at claim, and the one confirmation is exempt.
    answer = (x) => (x.body.text === 'after stop?' ? { status: 503, body: { error: 'busy' } } : { status: 200, body: { id: `prov-${received.length}` } });
    await optIn(srv, num(6));
    const r = await srv.v1('POST', '/messages', { body: { to: num(6), text: 'after stop?' } });
    assert.equal(r.status, 202, r.text);
    await waitFor(async () => (await getMessage(srv, r.json.id)).history.length >= 2, { what: 'the first attempt failed' });
    const before = received.filter((x) => x.body.to === num(6)).length;
    await inbound(srv, num(6), num(49), 'STOP');
    const m = await waitStatus(srv, r.json.id, 'refused');
    assert.equal(m.reason, 'opted_out');
    await waitFor(() => received.some((x) => x.body.to === num(6) && /unsubscribed/i.test(x.body.text)), { what: 'the STOP confirmation' });
    await new Promise((res) => setTimeout(res, 2500)); // past the retry's backoff
    const after = received.filter((x) => x.body.to === num(6)).slice(before);
    assert.equal(after.length, 1, JSON.stringify(after.map((x) => x.body.text)));
    assert.match(after[0].body.text, /unsubscribed/i);
});

test('a 4xx is a permanent refusal: failed at once, not retried', async () => {
    // Issue 4 item 1: status failed (with reason).
    answer = () => ({ status: 400, body: { error: 'bad number' } });
    await optIn(srv, num(3));
    const r = await srv.v1('POST', '/messages', { body: { to: num(3), text: 'refused by provider' } });
    assert.equal(r.status, 202, r.text);
    const m = await waitStatus(srv, r.json.id, 'failed');
    assert.match(m.reason, /400/);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(received.filter((x) => x.body.text === 'refused by provider').length, 1);
});

test('a sender number can name its own transport (sink here), overriding the default', async () => {
    // Issue 4 item 2: transports chosen per account or per sender number.
    answer = () => ({ status: 200, body: { id: 'unused' } });
    await addSender(srv, num(50), { transport: 'sink' });
    await optIn(srv, num(4));
    const before = received.length;
    const r = await srv.v1('POST', '/messages', { body: { to: num(4), from: num(50), text: 'via sink' } });
    assert.equal(r.status, 202, r.text);
    const m = await waitStatus(srv, r.json.id, 'sent');
    assert.match(m.history.at(-1).detail, /^sink-/);
    assert.equal(received.length, before, 'the provider saw nothing');
    const again = await getMessage(srv, r.json.id);
    assert.equal(again.from, num(50));
});

test('an unreachable provider keeps the message queued for another try', async () => {
    // Issue 4 item 1: retries; nothing is lost while the provider is down.
    const dead = await startServer({ args: ['--transport', 'http', '--http-sms', 'http://127.0.0.1:9/none'] });
    try {
        await addSender(dead, num(49), { isDefault: true }); // issue 8 item 4
        await optIn(dead, num(5));
        const r = await dead.v1('POST', '/messages', { body: { to: num(5), text: 'nobody home' } });
        assert.equal(r.status, 202, r.text);
        const m = await waitFor(async () => {
            const x = await getMessage(dead, r.json.id);
            return x.history.length >= 2 ? x : null;
        }, { what: 'a failed attempt' });
        assert.equal(m.status, 'queued');
        assert.ok(m.history[1].detail, 'the error is recorded');
    } finally {
        assertNoSanitizerReport(dead);
        await dead.stop();
    }
});
