// issue 15: webhooks -- the subscription API (/api/v1/webhooks), the events each change
// queues (consent.changed, flow.confirmed, flow.expired, message.status, message.inbound),
// signatures a receiver can verify, the private-address refusal when an endpoint is set,
// and the native Bearer credential style with tenant isolation. A real node HTTP receiver
// (lib/receiver.mjs) gets the deliveries; every test asserts what it received and the
// delivery states read back through the API.
import { test, before, after } from 'node:test';
import net from 'node:net';
import assert from 'node:assert/strict';
import { startServer, num, HEX64 } from './lib/server.mjs';
import { startReceiver, verify } from './lib/receiver.mjs';
import { waitFor, addSender, inbound, eventsOf, optIn, sleep } from './lib/msgkit.mjs';

let srv;
let rx;
const ALL = ['consent.changed', 'flow.confirmed', 'flow.expired', 'message.status', 'message.inbound'];

before(async () => {
    rx = await startReceiver();
    srv = await startServer({ accounts: ['acme', 'globex'], args: ['--allow-private-webhooks'] });
});
after(async () => {
    await srv.stop();
    await rx.stop();
});

/** A TCP port nobody listens on (an SMSC that is down). */
async function deadPort() {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address();
    await new Promise((r) => s.close(r));
    return port;
}

const globexKey = () => srv.accounts.globex.api_key;

async function subscribe(body, { key } = {}) {
    const r = await srv.v1('POST', '/webhooks', { body, key });
    assert.equal(r.status, 201, r.text);
    return r.json;
}

async function deliveries(query = '', { key } = {}) {
    const r = await srv.v1('GET', `/webhooks/deliveries${query}`, { key });
    assert.equal(r.status, 200, r.text);
    return r.json.data;
}

/** The receiver's requests carrying an event for `phone` (consent.changed) of the endpoint's url. */
function forPhone(type, phone) {
    return rx.events(type).filter((g) => g.json.payload.phone === phone);
}

test('create answers the secret once; list, get, PATCH and an Idempotency-Key retry never do', async () => {
    // issue 15 Decisions: POST -> 201 {id,url,events,enabled,secret}; secret shown once.
    const r = await srv.v1('POST', '/webhooks', {
        body: { url: rx.url, events: ['message.inbound'] },
        headers: { 'Idempotency-Key': 'wh-create-1' },
    });
    assert.equal(r.status, 201, r.text);
    const w = r.json;
    assert.match(w.id, /^wh_[0-9a-f]{24}$/);
    assert.equal(w.url, rx.url);
    assert.deepEqual(w.events, ['message.inbound']);
    assert.equal(w.enabled, true);
    assert.match(w.secret, /^whsec_[A-Za-z0-9_-]{40,}$/);

    const again = await srv.v1('POST', '/webhooks', {
        body: { url: rx.url, events: ['message.inbound'] },
        headers: { 'Idempotency-Key': 'wh-create-1' },
    });
    assert.equal(again.status, 201);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.json.id, w.id);
    assert.equal(again.json.secret, null, 'a retry does not bring the secret back');

    const list = await srv.v1('GET', '/webhooks');
    assert.equal(list.status, 200);
    assert.equal(list.json.data.filter((x) => x.id === w.id).length, 1, 'the retry created nothing');
    const one = await srv.v1('GET', `/webhooks/${w.id}`);
    assert.equal(one.status, 200);
    const patched = await srv.v1('PATCH', `/webhooks/${w.id}`, { body: { enabled: false } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.enabled, false);
    for (const text of [list.text, one.text, patched.text, again.text]) {
        assert.ok(!text.includes(w.secret), 'no answer after creation carries the secret');
        assert.ok(!/"secret":"/.test(text), text);
    }
    assert.ok(!srv.stderr().includes(w.secret), 'the secret is never logged');
    const del = await srv.v1('DELETE', `/webhooks/${w.id}`);
    assert.equal(del.status, 204);
    assert.equal((await srv.v1('GET', `/webhooks/${w.id}`)).status, 404);
    assert.equal((await srv.v1('DELETE', `/webhooks/${w.id}`)).status, 404);
});

test('events default to every type; unknown types, bad URLs and bad fields are 422', async () => {
    const w = await subscribe({ url: rx.url, enabled: false });
    assert.deepEqual(w.events, ALL);
    assert.equal(w.enabled, false);
    const cases = [
        [{}, 'url', 'invalid_field'],
        [{ url: 'ftp://example.com/x' }, 'url', 'invalid_url'],
        [{ url: 'not a url' }, 'url', 'invalid_url'],
        [{ url: `http://example.com/${'x'.repeat(600)}` }, 'url', 'invalid_field'],
        [{ url: rx.url, events: ['consent.changed', 'nope'] }, 'events', 'invalid_field'],
        [{ url: rx.url, events: 'consent.changed' }, 'events', 'invalid_field'],
        [{ url: rx.url, enabled: 'yes' }, 'enabled', 'invalid_field'],
    ];
    for (const [body, field, code] of cases) {
        const r = await srv.v1('POST', '/webhooks', { body });
        assert.equal(r.status, 422, `${JSON.stringify(body)}: ${r.text}`);
        assert.equal(r.json.error.code, code, JSON.stringify(body));
        assert.equal(r.json.error.field, field, JSON.stringify(body));
    }
    const bad = await srv.v1('PATCH', `/webhooks/${w.id}`, { body: { url: 'gopher://x.example' } });
    assert.equal(bad.status, 422);
    assert.equal((await srv.v1('GET', `/webhooks/${w.id}`)).json.url, rx.url, 'a refused PATCH changes nothing');
    await srv.v1('DELETE', `/webhooks/${w.id}`);
});

test('at most 32 subscriptions per account: the 33rd is 409 too_many_webhooks', async () => {
    const before1 = (await srv.v1('GET', '/webhooks')).json.data.length;
    const made = [];
    for (let i = before1; i < 32; i++) made.push((await subscribe({ url: rx.url, enabled: false })).id);
    const r = await srv.v1('POST', '/webhooks', { body: { url: rx.url } });
    assert.equal(r.status, 409, r.text);
    assert.equal(r.json.error.code, 'too_many_webhooks');
    assert.equal((await srv.v1('GET', '/webhooks')).json.data.length, 32);
    for (const id of made) assert.equal((await srv.v1('DELETE', `/webhooks/${id}`)).status, 204);
    const g = await srv.v1('POST', '/webhooks', { key: globexKey(), body: { url: rx.url, enabled: false } });
    assert.equal(g.status, 201, 'the limit is per account');
    assert.equal((await srv.v1('DELETE', `/webhooks/${g.json.id}`, { key: globexKey() })).status, 204);
});

test('a consent change arrives signed and verifiable, with the ledger seq and hash', async () => {
    // issue 15 Done when: "a consent change arrives signed and verifiable, with its seq and hash".
    const w = await subscribe({ url: rx.url, events: ['consent.changed'] });
    const phone = num(11);
    await optIn(srv, phone);
    const [got] = await waitFor(() => forPhone('consent.changed', phone).length && forPhone('consent.changed', phone),
        { what: 'consent.changed at the receiver' });
    assert.ok(verify(w.secret, got.headers, got.body), 'the signature verifies with the secret');
    assert.ok(!verify('whsec_wrong', got.headers, got.body), 'and not with another secret');
    const ts = Number(got.headers['consentd-timestamp']);
    assert.ok(Math.abs(ts - Date.now() / 1000) < 60, `timestamp in unix seconds: ${ts}`);
    assert.equal(got.headers['consentd-event-id'], got.json.id);
    assert.match(got.json.id, /^evt_[0-9a-f]{24}$/);
    assert.deepEqual(Object.keys(got.json), ['id', 'type', 'account', 'created_at', 'payload']);
    assert.equal(got.json.type, 'consent.changed');
    assert.equal(got.json.account, 'acme');
    const [ev] = await eventsOf(srv, phone);
    assert.equal(got.json.payload.seq, ev.seq);
    assert.equal(got.json.payload.hash, ev.hash);
    assert.match(got.json.payload.hash, HEX64);
    assert.equal(got.json.payload.prev_hash, ev.prev_hash);
    assert.equal(got.json.payload.new_state, 'opted_in');
    // The delivery is recorded as delivered, with the receiver's status.
    const d = await waitFor(async () => {
        const list = await deliveries(`?event=${got.json.id}`);
        return list.length === 1 && list[0].status === 'delivered' && list[0];
    }, { what: 'the delivery to be delivered' });
    assert.equal(d.endpoint, w.id);
    assert.equal(d.attempts, 1);
    assert.equal(d.last_status, 200);
    assert.equal(d.event_type, 'consent.changed');
    await srv.v1('DELETE', `/webhooks/${w.id}`);
});

test('a repeated STOP yields a second consent.changed; message.inbound and message.status follow', async () => {
    // issue 15: consent.changed is one per ledger event; a repeated STOP writes a second one.
    const w = await subscribe({ url: rx.url });
    const phone = num(12);
    const sender = num(190);
    await addSender(srv, sender);
    await optIn(srv, phone);
    await inbound(srv, phone, sender, 'STOP');
    await inbound(srv, phone, sender, 'STOP');
    const events = (await eventsOf(srv, phone));
    assert.equal(events.length, 3, 'opt-in and two STOPs are three ledger events');
    const changed = await waitFor(() => {
        const c = forPhone('consent.changed', phone);
        return c.length === 3 && c;
    }, { what: 'three consent.changed' });
    assert.deepEqual(changed.map((c) => c.json.payload.seq).sort((a, b) => a - b), events.map((e) => e.seq));
    assert.deepEqual(new Set(changed.map((c) => c.json.payload.hash)), new Set(events.map((e) => e.hash)));
    for (const c of changed) assert.ok(verify(w.secret, c.headers, c.body));
    const stops = changed.filter((c) => c.json.payload.new_state === 'opted_out');
    assert.equal(stops.length, 2);
    // Both STOPs arrived as message.inbound with their action; the one confirmation reply
    // went out as a message.status queued (the second STOP's reply is consent-exempt too).
    const ins = await waitFor(() => {
        const x = rx.events('message.inbound').filter((g) => g.json.payload.from === phone);
        return x.length === 2 && x;
    }, { what: 'two message.inbound' });
    assert.deepEqual(ins.map((g) => g.json.payload.action), ['opted_out', 'opted_out']);
    assert.equal(ins[0].json.payload.text, 'STOP');
    assert.equal(ins[0].json.payload.to, sender);
    const replies = await waitFor(() => {
        const x = rx.events('message.status').filter((g) => g.json.payload.to === phone);
        return x.some((g) => g.json.payload.status === 'sent') && x;
    }, { what: 'the STOP confirmation to be sent' });
    const statuses = replies.map((g) => `${g.json.payload.kind}:${g.json.payload.status}`);
    assert.ok(statuses.includes('keyword_reply:queued'), statuses.join());
    assert.ok(statuses.includes('keyword_reply:sent'), statuses.join());
    assert.ok(!statuses.some((s) => s.endsWith(':sending')), 'sending is never an event');
    await srv.v1('DELETE', `/webhooks/${w.id}`);
});

test('message.status: a queued send refused by a STOP, and a send refused at once', async () => {
    // A consentd whose SMSC is unreachable keeps sends queued, where the STOP finds them
    // (issue 8 item 1): each refused message gets its message.status in the STOP's commit.
    const dead = await deadPort();
    const other = await startServer({
        accounts: ['acme'],
        args: ['--allow-private-webhooks', '--transport', 'smpp', '--smpp', `smpp://a:b@127.0.0.1:${dead}`],
    });
    try {
        const r0 = await other.v1('POST', '/webhooks', { body: { url: rx.url, events: ['message.status'] } });
        assert.equal(r0.status, 201, r0.text);
        const phone = num(13);
        const sender = num(191);
        await addSender(other, sender);
        await optIn(other, phone);
        const ids = [];
        for (const text of ['one', 'two']) {
            const m = await other.v1('POST', '/messages', { body: { to: phone, text, from: sender } });
            assert.equal(m.status, 202, m.text);
            assert.equal(m.json.status, 'queued');
            ids.push(m.json.id);
        }
        await inbound(other, phone, sender, 'STOP');
        for (const id of ids) {
            const seen = await waitFor(() => {
                const x = rx.events('message.status').filter((g) => g.json.payload.id === id);
                return x.length === 2 && x;
            }, { what: `queued and refused for ${id}` });
            // Deliveries are concurrent: their order at the receiver is not the order of events.
            assert.deepEqual(seen.map((g) => g.json.payload.status).sort(), ['queued', 'refused']);
            const refusal = seen.find((g) => g.json.payload.status === 'refused');
            assert.equal(refusal.json.payload.reason, 'opted_out');
            assert.ok(verify(r0.json.secret, refusal.headers, refusal.body));
        }
        // A send to a number that never opted in is refused at once: one refused event.
        const r = await other.v1('POST', '/messages', { body: { to: num(14), text: 'no consent', from: sender } });
        assert.equal(r.status, 422);
        const refused = await waitFor(() => rx.events('message.status').find((g) => g.json.payload.to === num(14)),
            { what: 'message.status refused' });
        assert.equal(refused.json.payload.status, 'refused');
        assert.equal(refused.json.payload.reason, 'no_consent');
    } finally {
        await other.stop();
    }
});

test('message.status: sent, then delivered or failed by a delivery receipt', async () => {
    const w = await subscribe({ url: rx.url, events: ['message.status'] });
    const phone = num(20);
    const sender = num(192);
    await addSender(srv, sender);
    await optIn(srv, phone);
    const ids = [];
    for (const text of ['will be delivered', 'will fail']) {
        const m = await srv.v1('POST', '/messages', { body: { to: phone, text, from: sender } });
        assert.equal(m.status, 202, m.text);
        ids.push(m.json.id);
    }
    for (const id of ids) {
        await waitFor(() => rx.events('message.status').some((g) => g.json.payload.id === id
            && g.json.payload.status === 'sent'), { what: `${id} sent` });
    }
    const r1 = await srv.v1('POST', '/receipts', { body: { message_id: ids[0], status: 'delivered' } });
    assert.equal(r1.status, 200, r1.text);
    const r2 = await srv.v1('POST', '/receipts', { body: { message_id: ids[1], status: 'failed' } });
    assert.equal(r2.status, 200, r2.text);
    const final = await waitFor(() => {
        const a = rx.events('message.status').find((g) => g.json.payload.id === ids[0] && g.json.payload.status === 'delivered');
        const b = rx.events('message.status').find((g) => g.json.payload.id === ids[1] && g.json.payload.status === 'failed');
        return a && b && [a, b];
    }, { what: 'delivered and failed events' });
    assert.ok(final.every((g) => verify(w.secret, g.headers, g.body)));
    assert.equal(final[1].json.payload.reason, 'failed');
    const seq = rx.events('message.status').filter((g) => g.json.payload.id === ids[0]).map((g) => g.json.payload.status);
    assert.deepEqual(seq.sort(), ['delivered', 'queued', 'sent'], 'one event per status, never sending');
    await srv.v1('DELETE', `/webhooks/${w.id}`);
});

test('flow.confirmed and flow.expired', async () => {
    const w = await subscribe({ url: rx.url, events: ['flow.confirmed', 'flow.expired'] });
    const a = await srv.v1('POST', '/flows', { body: { phone: num(15), scopes: ['all'], channel: 'sms' } });
    assert.equal(a.status, 201, a.text);
    const c = await srv.v1('POST', `/flows/${a.json.id}/confirm`, { body: {} });
    assert.equal(c.status, 200, c.text);
    const conf = await waitFor(() => rx.events('flow.confirmed').find((g) => g.json.payload.id === a.json.id),
        { what: 'flow.confirmed' });
    assert.equal(conf.json.payload.status, 'confirmed');
    assert.equal(conf.json.payload.phone, num(15));
    assert.ok(verify(w.secret, conf.headers, conf.body));
    const b = await srv.v1('POST', '/flows', {
        body: { phone: num(16), scopes: ['all'], channel: 'sms', ttl_seconds: 1 },
    });
    assert.equal(b.status, 201, b.text);
    const exp = await waitFor(() => rx.events('flow.expired').find((g) => g.json.payload.id === b.json.id),
        { timeout: 10000, what: 'flow.expired' });
    assert.equal(exp.json.payload.status, 'expired');
    // Subscribed to flows only: no consent.changed of these numbers reached this endpoint.
    const mine = (await deliveries(`?endpoint=${w.id}`)).map((d) => d.event_type);
    assert.ok(mine.length >= 2 && mine.every((t) => t.startsWith('flow.')), mine.join());
    await srv.v1('DELETE', `/webhooks/${w.id}`);
});

test('a disabled or deleted endpoint gets nothing; deliveries filter by status, event and endpoint', async () => {
    const on = await subscribe({ url: rx.url, events: ['consent.changed'] });
    const off = await subscribe({ url: rx.url, events: ['consent.changed'], enabled: false });
    const phone = num(17);
    await optIn(srv, phone);
    await waitFor(async () => (await deliveries(`?endpoint=${on.id}&status=delivered`)).length === 1,
        { what: 'the enabled endpoint delivered' });
    assert.deepEqual(await deliveries(`?endpoint=${off.id}`), [], 'the disabled one got no delivery');
    const byType = await deliveries('?event=consent.changed&status=delivered');
    assert.ok(byType.every((d) => d.event_type === 'consent.changed' && d.status === 'delivered'));
    assert.deepEqual(await deliveries('?status=dead'), []);
    for (const q of ['?status=sending', '?event=nope', '?limit=0']) {
        const r = await srv.v1('GET', `/webhooks/deliveries${q}`);
        assert.equal(r.status, 422, q);
    }
    // paging: limit 1 and the cursor walk every delivery once
    const all = await deliveries('?limit=1000');
    let cursor = null;
    const walked = [];
    do {
        const r = await srv.v1('GET', `/webhooks/deliveries?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        walked.push(...r.json.data.map((d) => d.id));
        cursor = r.json.next_cursor;
    } while (cursor);
    assert.deepEqual(walked, all.map((d) => d.id));
    await srv.v1('DELETE', `/webhooks/${on.id}`);
    await srv.v1('DELETE', `/webhooks/${off.id}`);
    const before = rx.got.length;
    await optIn(srv, num(18));
    await sleep(500);
    assert.equal(rx.got.length, before, 'deleted endpoints get nothing');
});

test('credentials: missing, wrong and revoked keys are 401; another account sees none of this one', async () => {
    // issue 15 Done when: missing, wrong, revoked key, and another account's valid key.
    const w = await subscribe({ url: rx.url, events: ['consent.changed'] });
    await optIn(srv, num(19));
    const d = await waitFor(async () => (await deliveries(`?endpoint=${w.id}&status=delivered`))[0],
        { what: 'a delivery' });
    const k = await srv.v1('POST', '/keys', { body: { name: 'soon revoked' } });
    assert.equal((await srv.v1('DELETE', `/keys/${k.json.id}`)).status, 204);
    const routes = [['GET', '/webhooks'], ['POST', '/webhooks', { url: rx.url }], ['GET', `/webhooks/${w.id}`],
        ['PATCH', `/webhooks/${w.id}`, { enabled: false }], ['DELETE', `/webhooks/${w.id}`],
        ['GET', '/webhooks/deliveries'], ['GET', `/webhooks/deliveries/${d.id}`],
        ['POST', `/webhooks/deliveries/${d.id}/replay`, {}],
        ['POST', '/webhooks/replay', { from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z', status: 'delivered' }]];
    for (const key of [null, 'ck_live_wrong.wrong', k.json.key]) {
        for (const [m, p, body] of routes) {
            const r = await srv.v1(m, p, { key, body });
            assert.equal(r.status, 401, `${m} ${p} with ${key}: ${r.text}`);
        }
    }
    const other = globexKey();
    for (const [m, p, body] of routes.slice(2, 5).concat([routes[6], routes[7]])) {
        const r = await srv.v1(m, p, { key: other, body });
        assert.equal(r.status, 404, `${m} ${p} as globex: ${r.text}`);
        assert.equal(r.json.error.code, 'not_found');
    }
    assert.deepEqual((await srv.v1('GET', '/webhooks', { key: other })).json.data, []);
    assert.deepEqual(await deliveries('', { key: other }), []);
    const bulk = await srv.v1('POST', '/webhooks/replay', { key: other, body: routes[8][2] });
    assert.equal(bulk.status, 200);
    assert.equal(bulk.json.replayed, 0);
    // Nothing changed for acme: the endpoint is enabled and its one delivery untouched.
    assert.equal((await srv.v1('GET', `/webhooks/${w.id}`)).json.enabled, true);
    const after1 = await deliveries(`?endpoint=${w.id}`);
    assert.equal(after1.length, 1);
    assert.equal(after1[0].attempts, 1);
    assert.equal(after1[0].status, 'delivered');
    assert.equal(forPhone('consent.changed', num(19)).length, 1, 'nothing was delivered again');
    await srv.v1('DELETE', `/webhooks/${w.id}`);
});

test('private addresses are refused when not allowed: literals and names that resolve to one', async () => {
    // issue 15 Safety: refuse loopback, link-local, private and metadata addresses when set.
    const strict = await startServer({ accounts: ['acme'] });
    try {
        for (const url of ['http://127.0.0.1:9/x', 'http://10.1.2.3/x', 'http://192.168.1.1/x',
            'http://172.16.0.1/x', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:8080/x',
            'http://[fd00::1]/x', 'http://0.0.0.0/x', 'http://localhost:8080/x', `http://localhost:${rx.port}/hook`]) {
            const r = await strict.v1('POST', '/webhooks', { body: { url } });
            assert.equal(r.status, 422, `${url}: ${r.text}`);
            assert.equal(r.json.error.code, 'private_address', url);
            assert.equal(r.json.error.field, 'url');
        }
        assert.deepEqual((await strict.v1('GET', '/webhooks')).json.data, [], 'nothing was stored');
        const r = await strict.v1('POST', '/webhooks', { body: { url: 'https://no-such-host.invalid/x' } });
        assert.equal(r.status, 422);
        assert.equal(r.json.error.code, 'invalid_url');
    } finally {
        await strict.stop();
    }
    // With --allow-private-webhooks (this file's server) the same names are accepted.
    const ok = await subscribe({ url: `http://localhost:${rx.port}/hook`, enabled: false });
    await srv.v1('DELETE', `/webhooks/${ok.id}`);
});
