// issue 14: sender numbers (type, health, leasing profile), leases, receipts from HTTP providers,
// and the number pool behind POST /api/v1/messages: weights, spreading, the default profile,
// sticky senders across a restart. The SMPP half (health from real receipts, replies, STOP) is in
// opentact_smpp.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, request, num, errorOf } from './lib/server.mjs';
import {
    addSender, optIn, patchSettings, waitStatus, getMessage, assertNoSanitizerReport,
} from './lib/msgkit.mjs';

const BASE = '/rest/profile/messaging';
const TF1 = '+18005550101';
const TF2 = '+18885550102';
const LC1 = num(80);
const LC2 = num(81);
const LC3 = num(82);

let srv;
let tok;

async function profile(body, s = srv, token = tok) {
    const r = await request(s.url, 'POST', BASE, { headers: { 'X-Auth-Token': token }, body });
    assert.equal(r.status, 201, r.text);
    return r.json.payload;
}

async function lease(number, uuid, s = srv, key) {
    const r = await s.v1('POST', `/senders/${encodeURIComponent(number)}/lease`, { body: { profile: uuid }, key });
    assert.equal(r.status, 201, r.text);
    return r.json;
}

async function send(body, s = srv) {
    const r = await s.v1('POST', '/messages', { body });
    assert.equal(r.status, 202, `POST /messages ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

/** Runs fn(i) for i in 0..n-1 with at most `width` at once. */
async function pool(n, width, fn) {
    const out = new Array(n);
    let next = 0;
    const worker = async () => {
        while (next < n) {
            const i = next++;
            out[i] = await fn(i);
        }
    };
    await Promise.all(Array.from({ length: width }, worker));
    return out;
}

before(async () => {
    srv = await startServer({ accounts: ['acme', 'beta'] });
    tok = (await srv.cli(['token', '--account', 'acme'])).stdout.trim();
    for (const n of [1, 2, 3, 4, 5, 6, 7]) await optIn(srv, num(n));
});

after(async () => {
    await srv?.stop();
    assertNoSanitizerReport(srv);
});

test('issue 14: POST /senders infers the type (toll_free by libphonenumber), shows healthy and profile', async () => {
    const cases = [[LC1, 'long_code'], [TF1, 'toll_free'], ['+1 (888) 555-0102', 'toll_free'], ['55501', 'short_code']];
    for (const [number, type] of cases) {
        const r = await srv.v1('POST', '/senders', { body: { number } });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(Object.keys(r.json).sort(),
            ['created_at', 'default', 'healthy', 'number', 'profile', 'transport', 'type']);
        assert.equal(r.json.type, type, number);
        assert.equal(r.json.healthy, true);
        assert.equal(r.json.profile, null);
    }
    const explicit = await srv.v1('POST', '/senders', { body: { number: LC2, type: 'toll_free' } });
    assert.equal(explicit.json.type, 'toll_free', 'a given type wins');
    const back = await srv.v1('POST', '/senders', { body: { number: LC2, type: 'long_code' } });
    assert.equal(back.json.type, 'long_code', 'adding again updates the type');
    const bad = await srv.v1('POST', '/senders', { body: { number: LC3, type: 'pager' } });
    assert.equal(bad.status, 422);
    assert.equal(errorOf(bad).field, 'type');
    const list = (await srv.v1('GET', '/senders')).json;
    assert.ok(Array.isArray(list.data) && 'next_cursor' in list);
    const tf = list.data.find((s) => s.number === TF2);
    assert.equal(tf.type, 'toll_free');
    assert.equal(tf.healthy, true);
    assert.equal(tf.profile, null);
    assert.ok(!list.data.some((s) => s.number === LC3), 'the refused one was not added');
});

test('issue 14: a number owned by another account is 409; leases: 201, 404s, release 204', async () => {
    const beta = srv.accounts.beta.api_key;
    const taken = await srv.v1('POST', '/senders', { key: beta, body: { number: TF1 } });
    assert.equal(taken.status, 409, taken.text);
    const p = await profile({ name: 'leases' });
    const l = await lease(LC1, p.uuid);
    assert.equal(l.number, LC1);
    assert.equal(l.type, 'long_code');
    assert.equal(l.profile, p.uuid);
    const s = (await srv.v1('GET', '/senders')).json.data.find((x) => x.number === LC1);
    assert.equal(s.profile, p.uuid);
    // A number in any format; an unknown number or profile is 404; profile is required.
    const again = await srv.v1('POST', `/senders/${encodeURIComponent('(888) 555-0102')}/lease`, { body: { profile: p.uuid } });
    assert.equal(again.status, 201, again.text);
    assert.equal(again.json.number, TF2);
    const noNum = await srv.v1('POST', `/senders/${encodeURIComponent(num(99))}/lease`, { body: { profile: p.uuid } });
    assert.equal(noNum.status, 404);
    const noProf = await srv.v1('POST', `/senders/${encodeURIComponent(LC2)}/lease`,
        { body: { profile: '00000000-0000-4000-8000-000000000000' } });
    assert.equal(noProf.status, 404);
    const missing = await srv.v1('POST', `/senders/${encodeURIComponent(LC2)}/lease`, { body: {} });
    assert.equal(missing.status, 422);
    assert.equal(errorOf(missing).field, 'profile');
    // beta can neither lease nor release acme's number.
    const bl = await srv.v1('DELETE', `/senders/${encodeURIComponent(LC1)}/lease`, { key: beta });
    assert.equal(bl.status, 404);
    const rel = await srv.v1('DELETE', `/senders/${encodeURIComponent(LC1)}/lease`);
    assert.equal(rel.status, 204);
    assert.equal(rel.text, '');
    const gone = await request(srv.url, 'GET', `${BASE}/${p.uuid}/leases`, { headers: { 'X-Auth-Token': tok } });
    assert.deepEqual(gone.json.payload.map((x) => x.number), [TF2]);
    const twice = await srv.v1('DELETE', `/senders/${encodeURIComponent(LC1)}/lease`);
    assert.equal(twice.status, 404);
    await srv.v1('DELETE', `/senders/${encodeURIComponent(TF2)}/lease`);
});

test('issue 14: the pool picks from the profile\'s leases; the answer names from; weight 0 never', async () => {
    const p = await profile({ name: 'tf only', number_pool_enable: true, long_code_weight: 0, toll_free_weight: 5 });
    await lease(LC2, p.uuid);
    await lease(TF1, p.uuid);
    const froms = await pool(60, 8, async (i) => (await send({ to: num(1 + (i % 3)), text: `w0 ${i}`, profile: p.uuid })).from);
    assert.deepEqual([...new Set(froms)], [TF1], 'the long code (weight 0) is never used');
    const stored = await getMessage(srv, (await send({ to: num(1), text: 'stored', profile: p.uuid })).id);
    assert.equal(stored.from, TF1);
    const u = await request(srv.url, 'PATCH', `${BASE}/${p.uuid}`,
        { headers: { 'X-Auth-Token': tok }, body: { long_code_weight: 5, toll_free_weight: 0 } });
    assert.equal(u.status, 200);
    const froms2 = await pool(40, 8, async (i) => (await send({ to: num(1), text: `w0b ${i}`, profile: p.uuid })).from);
    assert.deepEqual([...new Set(froms2)], [LC2]);
    const u2 = await request(srv.url, 'PATCH', `${BASE}/${p.uuid}`,
        { headers: { 'X-Auth-Token': tok }, body: { long_code_weight: 0 } });
    assert.equal(u2.status, 200);
    const none = await srv.v1('POST', '/messages', { body: { to: num(1), text: 'nothing', profile: p.uuid } });
    assert.equal(none.status, 422, none.text);
    assert.equal(errorOf(none).code, 'no_sender');
    const unknown = await srv.v1('POST', '/messages',
        { body: { to: num(1), text: 'x', profile: '00000000-0000-4000-8000-000000000000' } });
    assert.equal(unknown.status, 422);
    assert.equal(errorOf(unknown).code, 'unknown_profile');
    for (const n of [LC2, TF1]) await srv.v1('DELETE', `/senders/${encodeURIComponent(n)}/lease`);
});

test('issue 14: 10,000 selections follow the weights within 3 points; load spread within a type', async () => {
    const p = await profile({ name: 'weights', number_pool_enable: true, long_code_weight: 1, toll_free_weight: 3 });
    await addSender(srv, LC3);
    for (const n of [LC2, LC3, TF1]) await lease(n, p.uuid);
    const N = 10000;
    const froms = await pool(N, 16, async (i) => (await send({ to: num(4), text: `r${i}`, profile: p.uuid })).from);
    const count = (n) => froms.filter((f) => f === n).length;
    const tf = count(TF1) / N;
    assert.ok(Math.abs(tf - 0.75) <= 0.03, `toll-free share ${tf} (weights 1:3)`);
    assert.equal(count(LC2) + count(LC3) + count(TF1), N, 'only leased numbers');
    // Within the long codes the load is spread: the two differ by very little.
    assert.ok(Math.abs(count(LC2) - count(LC3)) <= 0.02 * N, `long codes ${count(LC2)} / ${count(LC3)}`);
    for (const n of [LC2, LC3, TF1]) await srv.v1('DELETE', `/senders/${encodeURIComponent(n)}/lease`);
});

test('issue 14: the default profile is the first created, or settings default_profile', async () => {
    const s = await startServer({ accounts: ['acme'] });
    try {
        const t = (await s.cli(['token', '--account', 'acme'])).stdout.trim();
        await optIn(s, num(9));
        await addSender(s, LC1, { isDefault: true });
        await addSender(s, TF1);
        await addSender(s, LC2);
        // No profile yet: the default sender, as before.
        assert.equal((await send({ to: num(9), text: 'before' }, s)).from, LC1);
        const first = await profile({ name: 'first', number_pool_enable: true, long_code_weight: 0 }, s, t);
        const second = await profile({ name: 'second', number_pool_enable: true, toll_free_weight: 0 }, s, t);
        await lease(TF1, first.uuid, s);
        await lease(LC2, second.uuid, s);
        assert.equal((await send({ to: num(9), text: 'default first' }, s)).from, TF1);
        const bad = await s.v1('PATCH', '/settings', { body: { default_profile: '00000000-0000-4000-8000-000000000000' } });
        assert.equal(bad.status, 422);
        assert.equal(errorOf(bad).code, 'unknown_profile');
        const set = await patchSettings(s, { default_profile: second.uuid });
        assert.equal(set.default_profile, second.uuid);
        assert.equal((await send({ to: num(9), text: 'default second' }, s)).from, LC2);
        assert.equal((await send({ to: num(9), text: 'named', profile: first.uuid }, s)).from, TF1);
        assert.equal((await send({ to: num(9), text: 'explicit', from: LC1 }, s)).from, LC1, 'from wins');
        // A profile with its pool off leaves the default sender in charge.
        await request(s.url, 'PATCH', `${BASE}/${second.uuid}`,
            { headers: { 'X-Auth-Token': t }, body: { number_pool_enable: false } });
        assert.equal((await send({ to: num(9), text: 'pool off' }, s)).from, LC1);
    } finally {
        await s.stop();
    }
});

test('issue 14: sticky sender keeps a recipient on one number, across a restart, until released', async () => {
    let s = await startServer({ accounts: ['acme'] });
    const { dir, dbPath } = s;
    try {
        const t = (await s.cli(['token', '--account', 'acme'])).stdout.trim();
        for (const n of [11, 12, 13, 14]) await optIn(s, num(n));
        for (const n of [LC1, LC2, LC3]) await addSender(s, n);
        const p = await profile({ name: 'sticky', number_pool_enable: true, sticky_sender: true, toll_free_weight: 0 }, s, t);
        for (const n of [LC1, LC2, LC3]) await lease(n, p.uuid, s);
        const first = {};
        for (const n of [11, 12, 13, 14]) first[n] = (await send({ to: num(n), text: 'hi', profile: p.uuid }, s)).from;
        assert.ok(new Set(Object.values(first)).size > 1, 'different recipients spread over the pool');
        for (let i = 0; i < 5; i++) {
            for (const n of [11, 12, 13, 14]) {
                assert.equal((await send({ to: num(n), text: `again ${i}`, profile: p.uuid }, s)).from, first[n]);
            }
        }
        const key = s.key;
        await s.stop({ keepDir: true });
        s = await startServer({ accounts: [], dir, dbPath });
        s.key = key;
        for (const n of [11, 12, 13, 14]) {
            assert.equal((await send({ to: num(n), text: 'after restart', profile: p.uuid }, s)).from, first[n],
                'the sticky sender survives a restart');
        }
        // Released: the recipient gets another number, and keeps that one.
        const r = await s.v1('DELETE', `/senders/${encodeURIComponent(first[11])}/lease`);
        assert.equal(r.status, 204);
        const moved = (await send({ to: num(11), text: 'moved', profile: p.uuid }, s)).from;
        assert.notEqual(moved, first[11]);
        assert.equal((await send({ to: num(11), text: 'moved 2', profile: p.uuid }, s)).from, moved);
        // Without sticky_sender the same recipient is spread.
        await request(s.url, 'PATCH', `${BASE}/${p.uuid}`, {
            headers: { 'X-Auth-Token': (await s.cli(['token', '--account', 'acme'])).stdout.trim() },
            body: { sticky_sender: false },
        });
        const spread = new Set();
        for (let i = 0; i < 6; i++) spread.add((await send({ to: num(12), text: `s${i}`, profile: p.uuid }, s)).from);
        assert.equal(spread.size, 2, 'both remaining numbers');
    } finally {
        await s.stop();
    }
});

test('issue 14: POST /receipts by message_id; blocked is a failure and counts against the sender', async () => {
    const p = await profile({ name: 'receipts', number_pool_enable: true, toll_free_weight: 0 });
    await lease(LC1, p.uuid);
    const m = await send({ to: num(5), text: 'receipt me', profile: p.uuid });
    await waitStatus(srv, m.id, 'sent');
    const r = await srv.v1('POST', '/receipts', { body: { message_id: m.id, status: 'delivered' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.id, m.id);
    assert.equal(r.json.status, 'delivered');
    assert.match(r.json.history.at(-1).detail, /receipt delivered/);
    assert.equal((await getMessage(srv, m.id)).status, 'delivered');
    // blocked, four times: the sender is unhealthy (over 75% blocked).
    for (let i = 0; i < 4; i++) {
        const b = await send({ to: num(5), text: `block ${i}`, profile: p.uuid });
        await waitStatus(srv, b.id, 'sent');
        const rb = await srv.v1('POST', '/receipts', { body: { message_id: b.id, status: 'blocked', error_code: '0x45' } });
        assert.equal(rb.status, 200, rb.text);
        assert.equal(rb.json.status, 'failed');
        assert.equal(rb.json.reason, 'blocked');
        assert.match(rb.json.history.at(-1).detail, /error_code:0x45/);
    }
    const s = (await srv.v1('GET', '/senders')).json.data.find((x) => x.number === LC1);
    assert.equal(s.healthy, false);
    // Errors: a bad status, neither or both ids, another account's message, one never sent.
    const bad = await srv.v1('POST', '/receipts', { body: { message_id: m.id, status: 'read' } });
    assert.equal(bad.status, 422);
    assert.equal(errorOf(bad).field, 'status');
    assert.equal((await srv.v1('POST', '/receipts', { body: { status: 'delivered' } })).status, 422);
    assert.equal((await srv.v1('POST', '/receipts', { body: { message_id: m.id, provider_id: 'x', status: 'delivered' } })).status, 422);
    const other = await srv.v1('POST', '/receipts', { key: srv.accounts.beta.api_key, body: { message_id: m.id, status: 'failed' } });
    assert.equal(other.status, 404);
    assert.equal((await getMessage(srv, m.id)).status, 'delivered', 'beta changed nothing');
    assert.equal((await srv.v1('POST', '/receipts', { body: { message_id: 'msg_nope', status: 'failed' } })).status, 404);
    await patchSettings(srv, { quiet_hours: { start: '00:00', end: '23:59' } });
    const held = await send({ to: num(5), text: 'held', profile: p.uuid });
    const ns = await srv.v1('POST', '/receipts', { body: { message_id: held.id, status: 'delivered' } });
    assert.equal(ns.status, 409);
    assert.equal(errorOf(ns).code, 'not_sent');
    await patchSettings(srv, { quiet_hours: null });
    await srv.v1('DELETE', `/senders/${encodeURIComponent(LC1)}/lease`);
});

test('issue 14: POST /receipts by provider_id (the http transport\'s message_parts)', async () => {
    let n = 0;
    const provider = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ id: `prov-${++n}` }));
        });
    });
    await new Promise((r) => provider.listen(0, '127.0.0.1', r));
    const s = await startServer({
        accounts: ['acme', 'beta'],
        args: ['--transport', 'http', '--http-sms', `http://127.0.0.1:${provider.address().port}/sms`],
    });
    try {
        await optIn(s, num(6));
        await addSender(s, LC1, { isDefault: true });
        const m = await send({ to: num(6), text: 'via http' }, s);
        const sent = await waitStatus(s, m.id, 'sent');
        const pid = sent.history.at(-1).detail;
        assert.match(pid, /^prov-\d+$/);
        const other = await s.v1('POST', '/receipts', { key: s.accounts.beta.api_key, body: { provider_id: pid, status: 'failed' } });
        assert.equal(other.status, 404, 'another account\'s provider id is not found');
        const r = await s.v1('POST', '/receipts', { body: { provider_id: pid, status: 'delivered' } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.id, m.id);
        assert.equal(r.json.status, 'delivered');
        assert.equal((await getMessage(s, m.id)).status, 'delivered');
        assert.equal((await s.v1('POST', '/receipts', { body: { provider_id: 'prov-none', status: 'delivered' } })).status, 404);
    } finally {
        await s.stop();
        await new Promise((r) => provider.close(r));
    }
});
