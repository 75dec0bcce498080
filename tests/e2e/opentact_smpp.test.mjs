// issue 14: the number pool over SMPP, against the real SMSC simulator: sender health from real
// delivery receipts (unhealthy numbers skipped, all unhealthy -> no_healthy_sender), keyword replies
// keep the number the person wrote to, and after a STOP the pool's send path sends nothing but the
// one confirmation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, num, errorOf } from './lib/server.mjs';
import { startSmsc } from './lib/smsc.mjs';
import {
    waitFor, optIn, addSender, patchSettings, waitStatus, getMessage, check, assertNoSanitizerReport,
} from './lib/msgkit.mjs';

const BASE = '/rest/profile/messaging';
const STOP_REPLY = 'ACME: You are unsubscribed and will get no more messages. Reply START to resubscribe.';
const HELP_REPLY = 'ACME: Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply.';

let srv;
let smsc;
let tok;

const at = (to) => smsc.received.filter((m) => m.to === to);
const waitAt = (to, n, what = `${n} SMS to ${to} at the SMSC`) =>
    waitFor(() => (at(to).length >= n ? at(to) : false), { what });

async function profile(body) {
    const r = await request(srv.url, 'POST', BASE, { headers: { 'X-Auth-Token': tok }, body });
    assert.equal(r.status, 201, r.text);
    return r.json.payload;
}

async function patchProfile(uuid, body) {
    const r = await request(srv.url, 'PATCH', `${BASE}/${uuid}`, { headers: { 'X-Auth-Token': tok }, body });
    assert.equal(r.status, 200, r.text);
    return r.json.payload;
}

/** Registers the numbers and leases them to a new pooled profile (long codes only). */
async function pooled(name, numbers, extra = {}) {
    const p = await profile({ name, number_pool_enable: true, toll_free_weight: 0, ...extra });
    for (const n of numbers) {
        await addSender(srv, n);
        const r = await srv.v1('POST', `/senders/${encodeURIComponent(n)}/lease`, { body: { profile: p.uuid } });
        assert.equal(r.status, 201, r.text);
    }
    return p;
}

async function send(body) {
    const r = await srv.v1('POST', '/messages', { body });
    assert.equal(r.status, 202, `POST /messages ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

const healthOf = async (number) => (await srv.v1('GET', '/senders')).json.data.find((s) => s.number === number).healthy;

before(async () => {
    smsc = await startSmsc();
    const url = `smpp://consentd:secret@127.0.0.1:${smsc.port}?window=10&enquire_link=30`;
    srv = await startServer({ accounts: ['acme'], args: ['--transport', 'smpp', '--smpp', url] });
    await smsc.waitForBound(1, 10000);
    tok = (await srv.cli(['token', '--account', 'acme'])).stdout.trim();
});

after(async () => {
    try {
        await srv?.stop();
        assertNoSanitizerReport(srv);
    } finally {
        await smsc?.stop();
    }
});

/** Sends one pooled message to `to`, waits for it at the SMSC, answers it with `stat`, and waits
 * for the receipt to land. Returns the number it came from. */
async function sendAndReceipt(p, to, stat) {
    await optIn(srv, to);
    const m = await send({ to, text: `hello ${to}`, profile: p.uuid });
    const [got] = await waitAt(to, 1);
    assert.equal(got.from, m.from, 'sent from the number the answer named');
    await waitStatus(srv, m.id, 'sent');
    await smsc.sendReceipt(got.messageId, stat);
    await waitStatus(srv, m.id, stat === 'DELIVRD' ? 'delivered' : 'failed');
    return m.from;
}

test('issue 14: a number whose real receipts fail is unhealthy and skipped; the healthy one takes over', async () => {
    const A = num(120);
    const B = num(121);
    const p = await pooled('health', [A, B], { skip_unhealthy_tns: true });
    // Spread: the pool alternates A and B; A's receipts say UNDELIV, B's DELIVRD.
    const froms = [];
    for (let i = 0; i < 8; i++) {
        const to = num(10 + i);
        await optIn(srv, to);
        const m = await send({ to, text: `t${i}`, profile: p.uuid });
        froms.push(m.from);
        const [got] = await waitAt(to, 1);
        await waitStatus(srv, m.id, 'sent');
        await smsc.sendReceipt(got.messageId, m.from === A ? 'UNDELIV' : 'DELIVRD');
        await waitStatus(srv, m.id, m.from === A ? 'failed' : 'delivered');
    }
    assert.equal(froms.filter((f) => f === A).length, 4, `spread over both: ${froms}`);
    assert.equal(await healthOf(A), false, 'A: 0 of 4 delivered');
    assert.equal(await healthOf(B), true);
    for (let i = 0; i < 6; i++) {
        const to = num(20 + i);
        await optIn(srv, to);
        const m = await send({ to, text: `after ${i}`, profile: p.uuid });
        assert.equal(m.from, B, 'the unhealthy number is skipped');
        const [got] = await waitAt(to, 1);
        assert.equal(got.from, B);
    }
    // Without skip_unhealthy_tns the pool uses A again.
    await patchProfile(p.uuid, { skip_unhealthy_tns: false });
    const again = new Set();
    for (let i = 0; i < 4; i++) again.add((await send({ to: num(20), text: `any ${i}`, profile: p.uuid })).from);
    assert.ok(again.has(A));
});

test('issue 14: every number unhealthy (carrier blocks) -> refused with no_healthy_sender, nothing sent', async () => {
    const C = num(122);
    const D = num(123);
    const p = await pooled('blocked', [C, D], { skip_unhealthy_tns: true });
    let n = 30;
    for (let i = 0; i < 8; i++) await sendAndReceipt(p, num(n++), 'REJECTD');
    assert.equal(await healthOf(C), false);
    assert.equal(await healthOf(D), false);
    const to = num(40);
    await optIn(srv, to);
    const r = await srv.v1('POST', '/messages', { body: { to, text: 'nobody left', profile: p.uuid } });
    assert.equal(r.status, 422, r.text);
    const e = errorOf(r);
    assert.equal(e.code, 'no_healthy_sender');
    // The refusal is on record, like every refused send.
    assert.equal(r.json.message.status, 'refused');
    assert.equal(r.json.message.reason, 'no_healthy_sender');
    assert.equal((await getMessage(srv, r.json.message.id)).status, 'refused');
    // Sentinel: a message from another path goes out; the refused one never did.
    await addSender(srv, num(124));
    const ok = await send({ to, text: 'sentinel', from: num(124) });
    await waitAt(to, 1);
    assert.deepEqual(at(to).map((m) => m.text), ['sentinel']);
    assert.equal((await getMessage(srv, ok.id)).from, num(124));
});

test('issue 14: a keyword reply goes from the number the person wrote to, not the pool\'s pick', async () => {
    const E = num(125);
    const F = num(126);
    const p = await pooled('replies', [E, F], { sticky_sender: true });
    const to = num(41);
    await optIn(srv, to);
    const first = await send({ to, text: 'sticky hello', profile: p.uuid });
    const other = first.from === E ? F : E;
    await waitAt(to, 1);
    // The person writes HELP to the other number: the reply comes from that one.
    await smsc.sendMo(to, other, 'HELP');
    const got = await waitAt(to, 2, 'the HELP reply');
    assert.equal(got[1].text, HELP_REPLY);
    assert.equal(got[1].from, other, 'the reply keeps the number written to');
    const replies = (await srv.v1('GET', `/messages?to=${encodeURIComponent(to)}&kind=keyword_reply`)).json.data;
    assert.equal(replies[0].from, other);
    // And the sticky sender is unchanged for the next send.
    assert.equal((await send({ to, text: 'sticky again', profile: p.uuid })).from, first.from);
    await waitAt(to, 3);
    assert.equal(at(to)[2].from, first.from);
});

test('consent: after STOP the pool\'s send path sends nothing but the one confirmation', async () => {
    const G = num(127);
    const H = num(128);
    const p = await pooled('stop', [G, H]);
    await patchSettings(srv, { default_profile: p.uuid });
    const to = num(42);
    await optIn(srv, to);
    const m = await send({ to, text: 'before stop' }); // the default profile's pool
    assert.ok([G, H].includes(m.from));
    const [got] = await waitAt(to, 1);
    assert.equal(got.from, m.from);
    // Two more held by quiet hours (marketing), queued from the pool before the STOP.
    await patchSettings(srv, { quiet_hours: { start: '00:00', end: '23:59' } });
    const held = [await send({ to, text: 'held 1' }), await send({ to, text: 'held 2', profile: p.uuid })];
    for (const h of held) assert.equal((await getMessage(srv, h.id)).status, 'queued');
    await smsc.sendMo(to, m.from, 'STOP');
    const after = await waitAt(to, 2, 'the STOP confirmation');
    assert.equal(after[1].text, STOP_REPLY);
    assert.equal(after[1].from, m.from, 'confirmed from the number written to');
    assert.equal((await check(srv, to)).reason, 'opted_out');
    for (const h of held) {
        const x = await getMessage(srv, h.id);
        assert.equal(x.status, 'refused');
        assert.equal(x.reason, 'opted_out');
    }
    await patchSettings(srv, { quiet_hours: null });
    for (const body of [{ to, text: 'promo' }, { to, text: 'promo', profile: p.uuid },
        { to, text: 'txn', category: 'transactional', profile: p.uuid }]) {
        const r = await srv.v1('POST', '/messages', { body });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).code, 'opted_out');
    }
    // Sentinel: once the HELP answer is at the SMSC, anything else would be there too.
    await smsc.sendMo(to, m.from, 'HELP');
    await waitAt(to, 3, 'the HELP answer (sentinel)');
    assert.deepEqual(at(to).map((x) => x.text), ['before stop', STOP_REPLY, HELP_REPLY]);
    await patchSettings(srv, { default_profile: null });
});
