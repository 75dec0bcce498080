// The SMSC simulator (lib/smsc.mjs) on its own, driven by the `smpp` package as the ESME:
// the messaging e2e tests lean on it, so it has to be right before consentd is involved.
// issue 4: "tests run against a real SMSC simulator (the npm package smpp can act as the server)".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import smpp from 'smpp';

import { startSmsc } from './lib/smsc.mjs';

/** Connects an ESME and binds it as a transceiver; resolves with the session. */
async function bindEsme(smsc, systemId = 'esme', password = 'pw') {
    const session = smpp.connect({ url: `smpp://127.0.0.1:${smsc.port}` });
    session.on('error', () => { /* the drop test resets the connection */ });
    await new Promise((resolve) => session.once('connect', resolve));
    const resp = await new Promise((resolve) =>
        session.bind_transceiver({ system_id: systemId, password }, resolve));
    assert.equal(resp.command_status, 0, 'bind_transceiver');
    return session;
}

const submit = (session, fields) =>
    new Promise((resolve) => session.submit_sm(fields, resolve));

function closeEsme(session) {
    return new Promise((resolve) => {
        session.once('close', resolve);
        session.destroy();
    });
}

test('binds, answers submit_sm with increasing ids, decodes GSM-7 and UCS-2', async (t) => {
    const smsc = await startSmsc();
    t.after(() => smsc.stop());
    const esme = await bindEsme(smsc, 'consentd', 's3cret');
    t.after(() => closeEsme(esme));
    assert.deepEqual(smsc.binds[0], { systemId: 'consentd', password: 's3cret', systemType: '',
        ok: true });
    assert.match(smsc.url('a b', 'p@ss'), /^smpp:\/\/a%20b:p%40ss@127\.0\.0\.1:\d+$/);

    const r1 = await submit(esme, {
        source_addr: 'Acme', source_addr_ton: 5, destination_addr: '16465550123',
        dest_addr_ton: 1, dest_addr_npi: 1, registered_delivery: 1, data_coding: 0,
        short_message: Buffer.from([0x48, 0x69, 0x20, 0x1b, 0x65, 0x00]), // "Hi €@"
    });
    const r2 = await submit(esme, {
        destination_addr: '16465550123', dest_addr_ton: 1, data_coding: 8,
        short_message: Buffer.from('d83dde00043f', 'hex'), // 😀п in UTF-16BE
    });
    assert.equal(r1.command_status, 0);
    assert.equal(r1.message_id, '1');
    assert.equal(r2.message_id, '2');
    const got = await smsc.waitForMessages(2);
    assert.equal(got[0].text, 'Hi €@');
    assert.equal(got[0].to, '+16465550123');
    assert.equal(got[0].from, 'Acme');
    assert.equal(got[0].registeredDelivery, 1);
    assert.equal(got[0].messageId, '1');
    assert.equal(got[1].text, '😀п');
    assert.equal(got[1].dataCoding, 8);
});

test('reassembles UDH-concatenated parts into one message', async (t) => {
    const smsc = await startSmsc();
    t.after(() => smsc.stop());
    const esme = await bindEsme(smsc);
    t.after(() => closeEsme(esme));
    const udh = (i) => Buffer.from([5, 0x00, 3, 0x2a, 2, i]);
    // Second part first: reassembly goes by the index, not the arrival order.
    await submit(esme, { destination_addr: '15550001', dest_addr_ton: 1, esm_class: 0x40,
        short_message: Buffer.concat([udh(2), Buffer.from(' world')]) });
    assert.equal(smsc.received.length, 0, 'half a message is not a message');
    await submit(esme, { destination_addr: '15550001', dest_addr_ton: 1, esm_class: 0x40,
        short_message: Buffer.concat([udh(1), Buffer.from('hello')]) });
    const [m] = await smsc.waitForMessages(1);
    assert.equal(m.text, 'hello world');
    assert.equal(m.parts, 2);
    assert.deepEqual(m.messageIds, ['2', '1'], 'part order; ids were given in arrival order');
    assert.equal(m.messageId, '2,1');
});

test('sends MO messages and receipts, and records the answers', async (t) => {
    const smsc = await startSmsc();
    t.after(() => smsc.stop());
    const esme = await bindEsme(smsc);
    t.after(() => closeEsme(esme));
    const delivered = [];
    esme.on('deliver_sm', (pdu) => {
        delivered.push(pdu);
        esme.send(pdu.response());
    });
    await submit(esme, { destination_addr: '16465550123', dest_addr_ton: 1, short_message: 'x' });
    await smsc.waitForMessages(1);

    assert.equal(await smsc.sendMo('+16465550123', '12345', 'STOP'), 0);
    const long = 'é'.repeat(170); // GSM-7, two parts
    await smsc.sendMo('+16465550123', '12345', long);
    const statuses = await smsc.sendReceipt('1', 'DELIVRD');
    assert.deepEqual(statuses, [0]);
    await smsc.sendReceipt('1', 'UNDELIV', { tlv: false, err: '001' });

    assert.equal(delivered.length, 5);
    assert.equal(delivered[0].source_addr, '16465550123');
    assert.equal(delivered[0].source_addr_ton, 1);
    assert.equal(delivered[0].short_message.message, 'STOP');
    assert.equal(delivered[1].esm_class & 0x40, 0x40);
    assert.equal(delivered[1].short_message.message.length + delivered[2].short_message.message.length, 170);
    assert.equal(delivered[3].esm_class, 0x04);
    assert.equal(delivered[3].receipted_message_id, '1');
    assert.equal(delivered[3].message_state, 2);
    assert.match(delivered[3].short_message.message, /^id:1 .*stat:DELIVRD err:000/);
    assert.equal(delivered[4].receipted_message_id, undefined);
    assert.match(delivered[4].short_message.message, /stat:UNDELIV err:001/);
    assert.deepEqual(smsc.deliverResps, [0, 0, 0, 0, 0]);
});

test('failNext, refused binds and dropped connections', async (t) => {
    const smsc = await startSmsc({ failNext: 1 });
    t.after(() => smsc.stop());
    const esme = await bindEsme(smsc);
    const r1 = await submit(esme, { destination_addr: '1555', short_message: 'a' });
    assert.equal(r1.command_status, 0x58);
    const r2 = await submit(esme, { destination_addr: '1555', short_message: 'b' });
    assert.equal(r2.command_status, 0);
    assert.equal((await smsc.waitForMessages(1))[0].text, 'b');

    const closed = new Promise((resolve) => esme.once('close', resolve));
    smsc.dropConnections();
    await closed;
    assert.equal(smsc.boundCount, 0);
    await assert.rejects(smsc.sendMo('+1555', '1', 'hi'), /no ESME is bound/);

    smsc.rejectBinds(true);
    const s2 = smpp.connect({ url: `smpp://127.0.0.1:${smsc.port}` });
    s2.on('error', () => {});
    await new Promise((resolve) => s2.once('connect', resolve));
    const resp = await new Promise((resolve) =>
        s2.bind_transceiver({ system_id: 'x', password: 'y' }, resolve));
    assert.equal(resp.command_status, 0x0d);
    await closeEsme(s2);
    smsc.rejectBinds(false);
    const s3 = await bindEsme(smsc);
    await smsc.waitForBound(1);
    await closeEsme(s3);
});
