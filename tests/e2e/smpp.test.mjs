// The SMPP transport against the real SMSC simulator (issue 4 item 2 and its "Done when" list; DESIGN 3, 4):
// native sends, STOP/START/HELP from handsets, receipts, concatenation, UCS-2, SMSC outages, malformed PDUs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, num } from './lib/server.mjs';
import { startSmsc } from './lib/smsc.mjs';
import {
    startProxy, pdu, deliverSmBody, tlv, DELIVER_SM, DELIVER_SM_RESP, GENERIC_NACK, SUBMIT_SM_RESP,
    INJECT_SEQ_BASE,
} from './lib/smppwire.mjs';
import {
    waitFor, sleep, optIn, addSender, listMessages, getMessage, waitStatus, eventsOf, check,
    assertNoSanitizerReport,
} from './lib/msgkit.mjs';

const SENDER = num(190);
const STOP_REPLY = 'ACME: You are unsubscribed and will get no more messages. Reply START to resubscribe.';
const START_REPLY = 'ACME: You are subscribed. Msg&data rates may apply. Reply HELP for help, STOP to cancel.';
const HELP_REPLY = 'ACME: Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply.';

/** consentd on the smpp transport, bound to a fresh simulator (or to `port`, e.g. a proxy). */
async function env({ smscOpts = {}, via, accounts = ['acme', 'beta'] } = {}) {
    const smsc = await startSmsc(smscOpts);
    let proxy;
    let port = smsc.port;
    if (via === 'proxy') {
        proxy = await startProxy(smsc.port);
        port = proxy.port;
    }
    const url = `smpp://consentd:secret@127.0.0.1:${port}?window=10&enquire_link=30`;
    const srv = await startServer({ accounts, args: ['--transport', 'smpp', '--smpp', url] });
    await smsc.waitForBound(1, 10000);
    await addSender(srv, SENDER, { isDefault: true });
    return {
        srv, smsc, proxy,
        async close() {
            try {
                await srv.stop();
                assertNoSanitizerReport(srv);
            } finally {
                await proxy?.stop();
                await smsc.stop();
            }
        },
    };
}

/** Whole messages the SMSC received for `to`. */
const at = (smsc, to) => smsc.received.filter((m) => m.to === to);

async function waitAt(smsc, to, n, what = `${n} SMS to ${to} at the SMSC`) {
    return waitFor(() => (at(smsc, to).length >= n ? at(smsc, to) : false), { what });
}

async function send(srv, body, opts) {
    const r = await srv.v1('POST', '/messages', { body, ...opts });
    assert.equal(r.status, 202, `POST /messages ${JSON.stringify(body).slice(0, 200)}: ${r.text.slice(0, 500)}`);
    return r.json;
}

// ---- one shared consentd + SMSC for the tests that do not disturb the link ----

let E;
let next = 0;
const fresh = () => num(next++);
before(async () => {
    E = await env();
});
after(async () => {
    await E?.close();
});

test('a native send reaches the SMSC with its text, to and from; the SMSC id is recorded', async () => {
    // Issue 4 "Done when": a native send reaches the SMSC; item 1: record the transport's id before marking sent.
    const { srv, smsc } = E;
    const to = fresh();
    await optIn(srv, to);
    const m = await send(srv, { to, text: 'Your order has shipped' });
    const [got] = await waitAt(smsc, to, 1);
    assert.equal(got.text, 'Your order has shipped');
    assert.equal(got.to, to);
    assert.equal(got.from, SENDER);
    assert.equal(got.dataCoding, 0, 'GSM-7');
    assert.equal(got.parts, 1);
    assert.equal(got.registeredDelivery & 1, 1, 'a delivery receipt is requested');
    const sent = await waitStatus(srv, m.id, 'sent');
    const h = sent.history.find((x) => x.status === 'sent');
    assert.ok(h && h.detail && h.detail.includes(got.messageId), `sent history carries the SMSC id: ${JSON.stringify(sent.history)}`);
    assert.equal(at(smsc, to).length, 1, 'sent once');
});

test('a delivery receipt marks the message delivered (history); UNDELIV marks it failed', async () => {
    // Issue 4 "Done when": a delivery receipt marks the message delivered; item 5: receipts update status, history shows it.
    const { srv, smsc } = E;
    const to = fresh();
    await optIn(srv, to);
    const a = await send(srv, { to, text: 'receipt me' });
    const [got] = await waitAt(smsc, to, 1);
    // Sent at once, as a fast SMSC does: the receipt may follow the submit_sm_resp immediately.
    assert.deepEqual(await smsc.sendReceipt(got.messageId, 'DELIVRD'), [0]);
    const d = await waitStatus(srv, a.id, 'delivered');
    const statuses = d.history.map((x) => x.status);
    assert.ok(statuses.indexOf('sent') >= 0 && statuses.indexOf('sent') < statuses.indexOf('delivered'),
        JSON.stringify(d.history));
    assert.match(d.history.at(-1).detail ?? '', /DELIVRD/);

    const b = await send(srv, { to, text: 'this one bounces' });
    const got2 = (await waitAt(smsc, to, 2))[1];
    await waitStatus(srv, b.id, 'sent');
    await smsc.sendReceipt(got2.messageId, 'UNDELIV', { err: '001' });
    const f = await waitStatus(srv, b.id, 'failed');
    assert.ok(f.reason, 'a failed message has a reason');

    // A receipt carrying its id only in the text (no receipted_message_id TLV) works too.
    const c = await send(srv, { to, text: 'text-only receipt' });
    const got3 = (await waitAt(smsc, to, 3))[2];
    await waitStatus(srv, c.id, 'sent');
    await smsc.sendReceipt(got3.messageId, 'DELIVRD', { tlv: false });
    await waitStatus(srv, c.id, 'delivered');
    // A receipt for an id consentd never sent is answered and changes nothing.
    assert.deepEqual(await smsc.sendReceipt('999999', 'DELIVRD'), [0]);
    assert.equal((await getMessage(srv, b.id)).status, 'failed');
});

test('STOP from the handset: opted out of everything, exactly one confirmation SMS, next send refused', async () => {
    // Issue 4 "Done when": a STOP sent from the SMSC opts the number out of everything, produces exactly one
    // confirmation SMS, and the next send to it is refused with opted_out.
    const { srv, smsc } = E;
    const phone = fresh();
    const g = await srv.v1('POST', '/groups', { body: { name: 'smpp-stop' } });
    const scope = `group:${g.json.id}`;
    await optIn(srv, phone);
    await optIn(srv, phone, { scope });
    assert.equal(await smsc.sendMo(phone, SENDER, 'Stop'), 0, 'deliver_sm answered OK');
    const [reply] = await waitAt(smsc, phone, 1, 'the STOP confirmation at the SMSC');
    assert.equal(reply.text, STOP_REPLY);
    assert.equal(reply.from, SENDER, 'answered from the number the handset wrote to');
    assert.equal((await check(srv, phone)).reason, 'opted_out');
    assert.equal((await check(srv, phone, { scope })).reason, 'opted_out');
    // A repeated STOP gets no second text. HELP afterwards is a sentinel: once its answer is at the SMSC,
    // anything the second STOP could have caused would be there too.
    await smsc.sendMo(phone, SENDER, 'STOP');
    await smsc.sendMo(phone, SENDER, 'HELP');
    await waitAt(smsc, phone, 2, 'the HELP answer (sentinel)');
    const texts = at(smsc, phone).map((m) => m.text);
    assert.deepEqual(texts, [STOP_REPLY, HELP_REPLY], 'exactly one confirmation of the opt-out');
    for (const s of ['all', scope]) {
        const r = await srv.v1('POST', '/messages', { body: { to: phone, text: 'promo', scope: s } });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).code, 'opted_out');
    }
    const ev = (await eventsOf(srv, phone)).filter((e) => e.channel === 'sms');
    assert.equal(ev[0].keyword, 'STOP');
    assert.equal(ev[0].new_state, 'opted_out');
    assert.equal(ev[0].surface, 'smpp');
    const inb = (await listMessages(srv, { kind: 'inbound' })).filter((m) => m.from === phone);
    assert.deepEqual(inb.map((m) => m.text), ['HELP', 'STOP', 'Stop'], 'every MO is stored');
    assert.equal(inb[0].to, SENDER);
});

test('START from the handset re-subscribes with one confirmation; sends go out again', async () => {
    // Issue 4 "Done when": START re-subscribes.
    const { srv, smsc } = E;
    const phone = fresh();
    await optIn(srv, phone);
    await smsc.sendMo(phone, SENDER, 'STOP');
    await waitAt(smsc, phone, 1);
    await smsc.sendMo(phone, SENDER, 'START');
    const got = await waitAt(smsc, phone, 2, 'the START confirmation');
    assert.equal(got[1].text, START_REPLY);
    assert.equal((await check(srv, phone)).reason, 'opted_in');
    const m = await send(srv, { to: phone, text: 'welcome back' });
    const all = await waitAt(smsc, phone, 3);
    assert.equal(all[2].text, 'welcome back');
    await waitStatus(srv, m.id, 'sent');
    assert.equal(at(smsc, phone).filter((x) => x.text === START_REPLY).length, 1);
});

test('HELP from the handset answers with the help text and changes nothing', async () => {
    // Issue 4 "Done when": HELP answers with the help text.
    const { srv, smsc } = E;
    const phone = fresh();
    await smsc.sendMo(phone, SENDER, 'info');
    const [got] = await waitAt(smsc, phone, 1);
    assert.equal(got.text, HELP_REPLY);
    assert.equal(got.from, SENDER);
    assert.equal((await check(srv, phone)).reason, 'no_consent');
});

test('MOs go to the account that owns the number written to; unknown numbers are kept as unrouted', async () => {
    // Brief: inbound SMS from SMPP are routed to the account owning the `to` number; DESIGN 2: no crossing.
    const { srv, smsc } = E;
    const beta = { key: srv.accounts.beta.api_key };
    const betaNumber = num(191);
    await addSender(srv, betaNumber, beta);
    const phone = fresh();
    await optIn(srv, phone);
    await optIn(srv, phone, beta);
    // Issue 8 item 4: an MO for nobody is stored as unrouted and then acknowledged (ESME_ROK).
    assert.equal(await smsc.sendMo(phone, num(199), 'STOP'), 0, 'an MO for nobody is stored and acknowledged');
    await smsc.sendMo(phone, betaNumber, 'STOP');
    const [reply] = await waitAt(smsc, phone, 1);
    assert.equal(reply.from, betaNumber);
    assert.equal((await check(srv, phone, beta)).reason, 'opted_out');
    assert.equal((await check(srv, phone)).reason, 'opted_in', 'acme is not affected');
    const acmeIn = (await listMessages(srv, { kind: 'inbound' })).filter((m) => m.from === phone);
    assert.deepEqual(acmeIn, []);
    const betaIn = (await listMessages(srv, { kind: 'inbound' }, beta)).filter((m) => m.from === phone);
    assert.deepEqual(betaIn.map((m) => m.to), [betaNumber], 'the MO to an unknown number is in no account');
});

test('other MO texts are stored as inbound messages, no reply', async () => {
    // DESIGN 3: anything else is stored as an inbound message.
    const { srv, smsc } = E;
    const phone = fresh();
    await smsc.sendMo(phone, SENDER, 'Do you deliver on Sundays?');
    const m = await waitFor(async () => (await listMessages(srv, { kind: 'inbound' }))
        .find((x) => x.from === phone), { what: 'the MO to be stored' });
    assert.equal(m.text, 'Do you deliver on Sundays?');
    assert.equal(m.to, SENDER);
    assert.equal(m.status, 'received');
    assert.deepEqual(await listMessages(srv, { to: phone, kind: 'keyword_reply' }), []);
});

test('long messages go out as concatenated parts (UDH) and are reassembled at the SMSC', async () => {
    // Issue 4 item 2: GSM-7 / UCS-2 encoding and concatenation of long messages.
    const { srv, smsc } = E;
    const to = fresh();
    await optIn(srv, to);
    const gsm = Array.from({ length: 40 }, (_, i) => `line ${i} of the long text.`).join(' '); // ~ 900 chars
    const ucs = 'Привет, мир! 😀 你好 ' .repeat(12);
    const m1 = await send(srv, { to, text: gsm });
    const m2 = await send(srv, { to, text: ucs });
    const got = await waitAt(smsc, to, 2);
    const g = got.find((x) => x.text === gsm);
    const u = got.find((x) => x.text === ucs);
    assert.ok(g, `GSM-7 text reassembled exactly: ${JSON.stringify(got.map((x) => x.text.slice(0, 40)))}`);
    assert.ok(u, 'UCS-2 text reassembled exactly');
    assert.equal(g.parts, m1.parts);
    assert.equal(g.parts, Math.ceil(gsm.length / 153));
    assert.equal(g.dataCoding, 0);
    assert.equal(g.esmClass & 0x40, 0x40, 'UDHI set');
    assert.equal(u.parts, m2.parts);
    assert.ok(u.parts > 1);
    assert.equal(u.dataCoding, 8);
    const parts = smsc.submits.filter((s) => s.to === to);
    assert.equal(parts.length, g.parts + u.parts, 'every part submitted once');
    const s1 = await waitStatus(srv, m1.id, 'sent');
    const sentDetail = s1.history.find((h) => h.status === 'sent').detail;
    assert.deepEqual(sentDetail.split(',').sort(), [...g.messageIds].sort(), 'all part ids recorded');
    // Receipts for every part: delivered.
    await smsc.sendReceipt(g.messageId, 'DELIVRD');
    await waitStatus(srv, m1.id, 'delivered');
});

test('a concatenated message with one undeliverable part ends failed, whatever the receipt order', async () => {
    // Issue 4 item 5: delivery receipts update message status (a message is delivered only if all of it is).
    const { srv, smsc } = E;
    const to = fresh();
    await optIn(srv, to);
    const m = await send(srv, { to, text: 'x'.repeat(300) });
    const [got] = await waitAt(smsc, to, 1);
    assert.equal(got.messageIds.length, 2);
    await waitStatus(srv, m.id, 'sent');
    await smsc.sendReceipt(got.messageIds[1], 'UNDELIV');
    await smsc.sendReceipt(got.messageIds[0], 'DELIVRD');
    // Sentinel: a later single-part message's receipt, processed after both.
    const s = await send(srv, { to, text: 'sentinel' });
    const sent = (await waitAt(smsc, to, 2))[1];
    await waitStatus(srv, s.id, 'sent');
    await smsc.sendReceipt(sent.messageId, 'DELIVRD');
    await waitStatus(srv, s.id, 'delivered');
    const final = await getMessage(srv, m.id);
    assert.equal(final.status, 'failed', `part 2 was not delivered: ${JSON.stringify(final.history)}`);
});

test('UCS-2 and GSM-7 extension texts round trip both ways', async () => {
    // Issue 4 item 2: GSM-7 / UCS-2 encoding (outbound) and decoding (inbound).
    const { srv, smsc } = E;
    const phone = fresh();
    await optIn(srv, phone);
    const texts = [
        ['Ünïcödé: 😀🎉 Привет 你好 مرحبا', 8],
        ['GSM: @£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ ÄÖÑÜ§¿äöñüà ^{}\\[~]|€', 0],
    ];
    for (const [text, coding] of texts) {
        const m = await send(srv, { to: phone, text });
        await waitStatus(srv, m.id, 'sent');
    }
    const got = await waitAt(smsc, phone, 2);
    for (const [text, coding] of texts) {
        const g = got.find((x) => x.text === text);
        assert.ok(g, `${text} arrived exactly; got ${JSON.stringify(got.map((x) => x.text))}`);
        assert.equal(g.dataCoding, coding, text);
    }
    // Inbound: UCS-2 and a long concatenated MO are stored as sent by the handset.
    const mo1 = 'Hola 😀 ¿qué tal? 你好';
    const mo2 = `Long reply: ${'abcdefghij'.repeat(40)} end`;
    const mo3 = `Длинный ответ 😀 ${'ж'.repeat(150)} конец`;
    for (const t of [mo1, mo2, mo3]) await smsc.sendMo(phone, SENDER, t);
    const inb = await waitFor(async () => {
        const l = (await listMessages(srv, { kind: 'inbound' })).filter((x) => x.from === phone);
        return l.length >= 3 ? l : false;
    }, { what: 'three MOs stored' });
    assert.deepEqual(inb.map((x) => x.text).sort(), [mo1, mo2, mo3].sort());
});

test('transport per sender number and per account: a sink sender or a sink account never reaches the SMSC', async () => {
    // Issue 4 item 2: transports chosen per account or per sender number.
    const { srv, smsc } = E;
    const to = fresh();
    await optIn(srv, to);
    const sinkNumber = num(193);
    await addSender(srv, sinkNumber, { transport: 'sink' });
    await addSender(srv, '12345'); // a short code on the server's transport (smpp)
    const viaSink = await send(srv, { to, text: 'through the sink sender', from: sinkNumber });
    const viaShort = await send(srv, { to, text: 'from the short code', from: '12345' });
    const [got] = await waitAt(smsc, to, 1);
    assert.equal(got.text, 'from the short code');
    assert.equal(got.from, '12345', 'a short code is not an international number');
    assert.notEqual(got.sourceTon, 1);
    await waitStatus(srv, viaShort.id, 'sent');
    const s = await waitStatus(srv, viaSink.id, 'sent');
    assert.match(s.history.find((h) => h.status === 'sent').detail ?? '', /sink/);

    // An account whose settings say sink.
    const beta = { key: srv.accounts.beta.api_key };
    const r = await srv.v1('PATCH', '/settings', { body: { transport: 'sink' }, ...beta });
    assert.equal(r.status, 200, r.text);
    await optIn(srv, to, beta);
    const b = await send(srv, { to, text: 'beta goes to the sink' }, beta);
    await waitStatus(srv, b.id, 'sent', beta);
    // Sentinel through smpp, after which nothing else for `to` may have arrived.
    const last = await send(srv, { to, text: 'sentinel via smpp' });
    await waitAt(smsc, to, 2);
    await waitStatus(srv, last.id, 'sent');
    assert.deepEqual(at(smsc, to).map((m) => m.text), ['from the short code', 'sentinel via smpp']);
});

test('SMSC errors: a throttled submit is retried and sent; a permanent error fails the message with a reason', async () => {
    // Issue 4 item 1: delivered by a worker with retries and backoff; status failed (with reason).
    const { srv, smsc } = E;
    const to = fresh();
    await optIn(srv, to);
    smsc.failNextSubmits(1, 0x58); // ESME_RTHROTTLED: temporary
    const a = await send(srv, { to, text: 'throttled once' });
    const [got] = await waitAt(smsc, to, 1, 'the throttled message, retried');
    assert.equal(got.text, 'throttled once');
    const sa = await waitStatus(srv, a.id, 'sent');
    assert.ok(sa.history.length >= 3, `the temporary failure is in the history: ${JSON.stringify(sa.history)}`);

    smsc.failNextSubmits(1, 0x0b); // ESME_RINVDSTADR: permanent
    const b = await send(srv, { to, text: 'rejected for good' });
    const fb = await waitStatus(srv, b.id, 'failed');
    assert.ok(fb.reason, `a failed message says why: ${JSON.stringify(fb)}`);
    // Not retried: a later message goes out and the rejected one never arrives.
    const c = await send(srv, { to, text: 'after the rejection' });
    await waitStatus(srv, c.id, 'sent');
    assert.deepEqual(at(smsc, to).map((m) => m.text), ['throttled once', 'after the rejection']);
    assert.equal((await getMessage(srv, b.id)).status, 'failed');
});

// ---- outages: each with its own consentd and SMSC ----

test('dropping the SMSC connection while messages are in flight loses none (rebind, resend)', async (t) => {
    // Issue 4 "Done when": killing the SMSC connection and bringing it back loses no queued message.
    const e = await env({ smscOpts: { ackDelayMs: 150 } });
    t.after(() => e.close());
    const { srv, smsc } = e;
    const to = num(10);
    await optIn(srv, to);
    const ids = [];
    for (let i = 0; i < 30; i++) ids.push((await send(srv, { to, text: `drop test ${i}` })).id);
    await waitFor(() => smsc.submits.length >= 3, { what: 'a few submits in flight' });
    smsc.dropConnections();
    await waitFor(() => smsc.binds.length >= 2 && smsc.boundCount >= 1, { what: 'consentd to bind again' });
    const want = ids.map((_, i) => `drop test ${i}`);
    await waitFor(() => want.every((w) => smsc.received.some((m) => m.text === w)),
        { timeout: 20000, what: 'every message at the SMSC after the drop' });
    for (const id of ids) await waitStatus(srv, id, 'sent');
});

test('stopping the SMSC, queueing while it is down, and starting it again on the same port loses none', async (t) => {
    // Issue 4 "Done when": killing the SMSC connection and bringing it back loses no queued message.
    const e = await env();
    let { smsc } = e;
    const { srv } = e;
    const port = smsc.port;
    let smsc2;
    t.after(async () => {
        await srv.stop();
        await smsc2?.stop();
        assertNoSanitizerReport(srv);
    });
    const to = num(11);
    await optIn(srv, to);
    const first = await send(srv, { to, text: 'before the outage' });
    await waitAt(smsc, to, 1);
    await waitStatus(srv, first.id, 'sent');
    await smsc.stop();
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push((await send(srv, { to, text: `outage ${i}` })).id);
    // Not sent while nobody is there.
    for (const id of ids) {
        const m = await getMessage(srv, id);
        assert.ok(['queued', 'sending'].includes(m.status), `${id} is ${m.status} while the SMSC is down`);
    }
    smsc2 = await startSmsc({ port });
    smsc = smsc2;
    await smsc2.waitForBound(1, 20000);
    const want = ids.map((_, i) => `outage ${i}`);
    await waitFor(() => want.every((w) => smsc2.received.some((m) => m.text === w)),
        { timeout: 20000, what: 'every message queued during the outage at the new SMSC' });
    for (const id of ids) await waitStatus(srv, id, 'sent');
    assert.ok(!smsc2.received.some((m) => m.text === 'before the outage'), 'a sent message is not sent again');
    // Inbound works on the new link too.
    await optIn(srv, num(12));
    await smsc2.sendMo(num(12), SENDER, 'STOP');
    await waitAt(smsc2, num(12), 1);
});

// ---- malformed input from the SMSC ----

/** A small deterministic PRNG (mulberry32). */
function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6D2B79F5) >>> 0;
        let x = a;
        x = Math.imul(x ^ (x >>> 15), x | 1);
        x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
        return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
}

/** consentd is alive and its link works: a fresh send reaches the SMSC. */
async function linkWorks(e, n, label) {
    const to = num(100 + n);
    await optIn(e.srv, to);
    const m = await send(e.srv, { to, text: `after ${label}` });
    await waitFor(() => e.smsc.received.some((x) => x.text === `after ${label}`),
        { timeout: 20000, what: `a send to work after ${label}` });
    await waitStatus(e.srv, m.id, 'sent');
    assert.equal(e.srv.exited(), null, `consentd still runs after ${label}`);
}

test('malformed PDUs from the SMSC: answered or the link is reset; consentd neither crashes nor stops sending', async (t) => {
    // Issue 4 "Done when": malformed PDUs from the SMSC give clear errors and no crash under the sanitizer build.
    const e = await env({ via: 'proxy' });
    t.after(() => e.close());
    const { srv, smsc, proxy } = e;
    await waitFor(() => proxy.connections === 1, { what: 'consentd connected through the proxy' });
    let seq = INJECT_SEQ_BASE;
    let n = 0;

    // Well framed but wrong: answered on the same connection.
    const unknownCmd = ++seq;
    proxy.inject(pdu(0x00000099, 0, unknownCmd));
    const nack = await proxy.waitReply(unknownCmd);
    assert.equal(nack.commandId, GENERIC_NACK);
    assert.equal(nack.status, 0x03, 'ESME_RINVCMDID');

    const strayResp = ++seq;
    proxy.inject(pdu(SUBMIT_SM_RESP, 0, strayResp, Buffer.from('424242\0')));

    // MOs from num(130) to our sender number: whatever survives decoding reaches the store and the keyword engine.
    const dsm = (o) => deliverSmBody({ src: num(130).slice(1), dst: SENDER.slice(1), ...o });
    const framedBad = [
        ['deliver_sm with no body', Buffer.alloc(0)],
        ['deliver_sm cut in the middle of a C string', Buffer.from('\x00\x01\x0116465550', 'latin1')],
        ['deliver_sm whose sm_length runs past the PDU', dsm({ shortMessage: Buffer.from('hi'), smLength: 200 })],
        ['deliver_sm with a UDH longer than the message', dsm({ esmClass: 0x40, shortMessage: Buffer.from([200, 0, 3, 1, 2, 1, 65]) })],
        ['deliver_sm with a concatenation IE of 0 parts', dsm({ esmClass: 0x40, shortMessage: Buffer.from([5, 0, 3, 7, 0, 0, 65, 66]) })],
        ['deliver_sm with part 9 of 2', dsm({ esmClass: 0x40, shortMessage: Buffer.from([5, 0, 3, 8, 2, 9, 65, 66]) })],
        ['deliver_sm with binary data_coding', dsm({ dataCoding: 0x04, shortMessage: Buffer.from([0, 1, 2, 255]) })],
        ['deliver_sm with odd-length UCS-2', dsm({ dataCoding: 0x08, shortMessage: Buffer.from([0, 65, 0]) })],
        ['deliver_sm with a lone surrogate in UCS-2', dsm({ dataCoding: 0x08, shortMessage: Buffer.from([0xd8, 0x3d, 0, 65]) })],
        ['deliver_sm with GSM-7 escape at the end', dsm({ dataCoding: 0x00, shortMessage: Buffer.from([0x48, 0x1b]) })],
        ['deliver_sm with septets over 0x7F', dsm({ dataCoding: 0x00, shortMessage: Buffer.from([0x80, 0xff, 0x41]) })],
        ['deliver_sm with a 65-char address', dsm({ src: '1'.repeat(65) })],
        ['deliver_sm with an empty source', dsm({ src: '' })],
        ['deliver_sm with a TLV running past the end', dsm({ tlvs: Buffer.from([0x04, 0x24, 0x10, 0x00, 65]) })],
        ['deliver_sm with an empty message_payload TLV', dsm({ shortMessage: Buffer.alloc(0), tlvs: tlv(0x0424, Buffer.alloc(0)) })],
        ['deliver_sm with a huge message_payload TLV', dsm({ shortMessage: Buffer.alloc(0), tlvs: tlv(0x0424, Buffer.alloc(60000, 0x41)) })],
        ['receipt with no id anywhere', dsm({ esmClass: 0x04, shortMessage: Buffer.from('stat:DELIVRD') })],
        ['receipt with a 200-char id', dsm({ esmClass: 0x04, shortMessage: Buffer.from(`id:${'9'.repeat(200)} stat:DELIVRD err:000`) })],
        ['receipt with an unterminated receipted_message_id', dsm({ esmClass: 0x04, shortMessage: Buffer.from('x'), tlvs: tlv(0x001e, Buffer.from('12345')) })],
        ['receipt with garbage stat', dsm({ esmClass: 0x04, shortMessage: Buffer.from('id:1 stat:\xff\xfe\x00 err:') })],
        ['SAR TLVs with total 0', dsm({ tlvs: Buffer.concat([tlv(0x020c, Buffer.from([0, 1])), tlv(0x020e, Buffer.from([0])), tlv(0x020f, Buffer.from([1]))]) })],
    ];
    for (const [label, body] of framedBad) {
        const s = ++seq;
        const before = proxy.accepted;
        proxy.inject(pdu(DELIVER_SM, 0, s, body));
        // Either an answer on this connection (deliver_sm_resp or generic_nack), or a reset and a new bind.
        await waitFor(() => proxy.replies.some((r) => r.seq === s) || proxy.accepted > before,
            { what: `an answer to "${label}" or a reconnect` });
        const r = proxy.replies.find((x) => x.seq === s);
        if (process.env.DEBUG_E2E) console.error(label, r ? `0x${r.commandId.toString(16)} status 0x${r.status.toString(16)}` : "reconnect");
        if (r) assert.ok([DELIVER_SM_RESP, GENERIC_NACK].includes(r.commandId), `${label}: 0x${r.commandId.toString(16)}`);
        assert.equal(srv.exited(), null, `consentd still runs after "${label}"`);
        await smsc.waitForBound(1, 20000);
        await waitFor(() => proxy.connections === 1, { what: 'the link through the proxy' });
    }
    await linkWorks(e, n++, 'framed garbage');

    // What was decodable was stored as inbound text (U+FFFD for what cannot be mapped).
    const inb = (await listMessages(srv, { kind: 'inbound' })).filter((m) => m.from === num(130));
    assert.ok(inb.length >= 1, 'some of the odd MOs were stored');
    for (const m of inb) {
        assert.equal(typeof m.text, 'string');
        assert.equal(m.to, SENDER);
        assert.ok(!m.text.includes('\u0000'), 'no NUL in stored text');
    }

    // Unframeable streams: consentd resets the connection and binds again.
    const unframeable = [
        ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
        ['command_length 8', Buffer.from([0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1])],
        ['command_length 0xFFFFFFFF', Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1])],
        ['command_length 70000', (() => { const b = Buffer.alloc(16); b.writeUInt32BE(70000, 0); b.writeUInt32BE(5, 4); return b; })()],
        ['a bad length split across two writes', Buffer.from([0, 0, 0])],
    ];
    for (const [label, bytes] of unframeable) {
        const before = proxy.accepted;
        const binds = smsc.binds.length;
        proxy.inject(bytes);
        if (label.startsWith('a bad length split')) {
            await sleep(20); // a separate TCP write: command_length 0x00000001 arrives in two pieces
            proxy.inject(Buffer.from([1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]));
        }
        await waitFor(() => proxy.accepted > before && smsc.binds.length > binds && smsc.boundCount >= 1,
            { timeout: 20000, what: `a reconnect after ${label}` });
        assert.equal(srv.exited(), null, `consentd still runs after ${label}`);
        await linkWorks(e, n++, label);
    }

    // Fuzz: 300 deliver_sm with random bodies (fixed seed), some with random esm_class/data_coding.
    const rand = rng(0xC0FFEE);
    const before = proxy.accepted;
    const fuzzSeqs = [];
    for (let i = 0; i < 300; i++) {
        const len = Math.floor(rand() * 300);
        const body = Buffer.alloc(len);
        for (let j = 0; j < len; j++) body[j] = Math.floor(rand() * 256);
        if (i % 3 === 0) {
            const sm = Buffer.alloc(Math.floor(rand() * 140));
            for (let j = 0; j < sm.length; j++) sm[j] = Math.floor(rand() * 256);
            const esm = [0, 0x04, 0x40, 0x44][Math.floor(rand() * 4)];
            const dc = [0, 1, 3, 4, 8, 0xf0, 0xf4, 0xff][Math.floor(rand() * 8)];
            const b2 = deliverSmBody({ src: num(180).slice(1), dst: (i % 2 ? SENDER : num(181)).slice(1), esmClass: esm, dataCoding: dc, shortMessage: sm });
            fuzzSeqs.push(++seq);
            proxy.inject(pdu(DELIVER_SM, 0, seq, b2));
        } else {
            fuzzSeqs.push(++seq);
            proxy.inject(pdu(DELIVER_SM, 0, seq, body));
        }
    }
    await waitFor(() => proxy.accepted > before || fuzzSeqs.every((s) => proxy.replies.some((r) => r.seq === s)),
        { timeout: 20000, what: 'every fuzzed deliver_sm answered (or a reset)' });
    assert.equal(srv.exited(), null, 'consentd still runs after the fuzz');
    await smsc.waitForBound(1, 20000);
    await linkWorks(e, n++, 'the fuzz');

    // And the keyword engine still works over this link.
    const phone = num(120);
    await optIn(srv, phone);
    await smsc.sendMo(phone, SENDER, 'STOP');
    await waitAt(smsc, phone, 1);
    assert.equal((await check(srv, phone)).reason, 'opted_out');
});
