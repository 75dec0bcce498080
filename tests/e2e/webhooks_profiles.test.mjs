// issue 15 with issue 14's messaging profiles: a profile's callback_url receives the events
// of messages sent from or received on its leased numbers, and every event of the account
// when it is the account's default profile; deliveries are signed with the profile's
// signing_secret; after 3 failed attempts on callback_url they continue on callback_url2.
// Real node HTTP receivers; assertions on what each received and on the delivery states.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, num } from './lib/server.mjs';
import { startReceiver, verify } from './lib/receiver.mjs';
import { waitFor, addSender, optIn, inbound, sleep } from './lib/msgkit.mjs';

const BASE = '/rest/profile/messaging';
let srv;
let tok;
let rxA;  // the default profile's callback_url
let rxA2; // ... its callback_url2
let rxB;  // a second profile's callback_url
let A;
let B;
const S1 = num(120); // leased to B
const S2 = num(121); // not leased

async function profile(body) {
    const r = await request(srv.url, 'POST', BASE, { headers: { 'X-Auth-Token': tok }, body });
    assert.equal(r.status, 201, r.text);
    return r.json.payload;
}

async function deliveries(query = '') {
    const r = await srv.v1('GET', `/webhooks/deliveries${query}`);
    assert.equal(r.status, 200, r.text);
    return r.json.data;
}

before(async () => {
    [rxA, rxA2, rxB] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
    srv = await startServer({
        accounts: ['acme'],
        args: ['--allow-private-webhooks', '--webhook-schedule', '0.1,0.1,0.1,0.1,0.1'],
    });
    const r = await srv.cli(['token', '--account', 'acme']);
    assert.equal(r.code, 0, r.stderr);
    tok = r.stdout.trim();
    A = await profile({ name: 'default one', callback_url: rxA.url, callback_url2: rxA2.url });
    B = await profile({ name: 'leasing one', callback_url: rxB.url });
    assert.match(A.signing_secret, /\S{16,}/);
    await addSender(srv, S1);
    await addSender(srv, S2);
    const l = await srv.v1('POST', `/senders/${encodeURIComponent(S1)}/lease`, { body: { profile: B.uuid } });
    assert.equal(l.status, 201, l.text);
});
after(async () => {
    await srv.stop();
    await Promise.all([rxA, rxA2, rxB].map((r) => r.stop()));
});

test('the default profile gets every event, signed with its signing_secret; the other gets none', async () => {
    const phone = num(60);
    await optIn(srv, phone);
    const got = await waitFor(() => rxA.events('consent.changed').find((g) => g.json.payload.phone === phone),
        { what: 'consent.changed at the default profile' });
    assert.ok(verify(A.signing_secret, got.headers, got.body), 'signed with the profile secret');
    assert.ok(!verify(B.signing_secret, got.headers, got.body));
    await sleep(300);
    assert.equal(rxB.events('consent.changed').length, 0, 'not the default profile: no consent events');
    const [d] = (await deliveries(`?event=${got.json.id}`));
    assert.equal(d.endpoint, `profile_${A.uuid}`);
    assert.equal(d.status, 'delivered');
    // The profile's callbacks are not account subscriptions: not listed, not editable.
    assert.deepEqual((await srv.v1('GET', '/webhooks')).json.data, []);
    assert.equal((await srv.v1('GET', `/webhooks/profile_${A.uuid}`)).status, 404);
    assert.equal((await srv.v1('PATCH', `/webhooks/profile_${A.uuid}`, { body: { enabled: false } })).status, 404);
    assert.equal((await srv.v1('DELETE', `/webhooks/profile_${A.uuid}`)).status, 404);
});

test('a leased number\'s messages go to its profile too; another number\'s only to the default', async () => {
    const phone = num(61);
    await optIn(srv, phone);
    const m1 = await srv.v1('POST', '/messages', { body: { to: phone, text: 'from S1', from: S1 } });
    assert.equal(m1.status, 202, m1.text);
    const m2 = await srv.v1('POST', '/messages', { body: { to: phone, text: 'from S2', from: S2 } });
    assert.equal(m2.status, 202, m2.text);
    const atB = await waitFor(() => {
        const x = rxB.events('message.status').filter((g) => g.json.payload.id === m1.json.id);
        return x.some((g) => g.json.payload.status === 'sent') && x;
    }, { what: 'S1 message statuses at profile B' });
    for (const g of atB) assert.ok(verify(B.signing_secret, g.headers, g.body));
    await waitFor(() => rxA.events('message.status').some((g) => g.json.payload.id === m2.json.id
        && g.json.payload.status === 'sent'), { what: 'S2 message at the default profile' });
    await waitFor(() => rxA.events('message.status').some((g) => g.json.payload.id === m1.json.id),
        { what: 'S1 message at the default profile too' });
    await sleep(300);
    assert.equal(rxB.events('message.status').filter((g) => g.json.payload.id === m2.json.id).length, 0,
        'S2 is not leased to B');
    // An inbound message on S1 goes to B (and to the default profile).
    await inbound(srv, phone, S1, 'hello there');
    const inB = await waitFor(() => rxB.events('message.inbound').find((g) => g.json.payload.text === 'hello there'),
        { what: 'message.inbound at B' });
    assert.equal(inB.json.payload.to, S1);
    assert.ok(verify(B.signing_secret, inB.headers, inB.body));
    await waitFor(() => rxA.events('message.inbound').some((g) => g.json.payload.text === 'hello there'),
        { what: 'message.inbound at A' });
});

test('failing 3 times on callback_url, the event goes to callback_url2', async () => {
    // issue 15 Done when: "a receiver failing 3 times gets the event on callback_url2".
    rxA.failAll(500);
    const phone = num(62);
    try {
        await optIn(srv, phone);
        const got = await waitFor(() => rxA2.accepted('consent.changed').find((g) => g.json.payload.phone === phone),
            { timeout: 15000, what: 'the event at callback_url2' });
        assert.ok(verify(A.signing_secret, got.headers, got.body), 'signed with the same secret');
        const tries = rxA.events('consent.changed').filter((g) => g.json.payload.phone === phone);
        assert.equal(tries.length, 3, 'three attempts on callback_url first');
        assert.ok(tries.every((g) => g.body === got.body), 'the same event each time');
        const [d] = await deliveries(`?event=${got.json.id}`);
        assert.equal(d.status, 'delivered');
        assert.equal(d.attempts, 4);
        assert.equal(d.last_url, 'failover');
    } finally {
        rxA.heal();
    }
});

test('a deleted profile\'s pending deliveries become dead letters; secrets never logged', async () => {
    const C = await profile({ name: 'short-lived', callback_url: rxB.url.replace('/hook', '/c') });
    await srv.v1('POST', `/senders/${encodeURIComponent(S2)}/lease`, { body: { profile: C.uuid } });
    rxB.failAll(503);
    const phone = num(63);
    await optIn(srv, phone);
    await inbound(srv, phone, S2, 'to C');
    const pend = await waitFor(async () => (await deliveries(`?endpoint=profile_${C.uuid}&status=pending`))[0],
        { what: 'a pending delivery to C' });
    const del = await request(srv.url, 'DELETE', `${BASE}/${C.uuid}`, { headers: { 'X-Auth-Token': tok } });
    assert.ok(del.status === 200 || del.status === 204, del.text);
    const dead = await waitFor(async () => {
        const r = await srv.v1('GET', `/webhooks/deliveries/${pend.id}`);
        return r.json.status === 'dead' && r.json;
    }, { what: 'the delivery to the deleted profile to be dead' });
    assert.equal(dead.last_error, 'endpoint_deleted');
    rxB.heal();
    for (const p of [A, B, C]) assert.ok(!srv.stderr().includes(p.signing_secret), 'no signing secret in the log');
});
