// Raw SMPP bytes for the "malformed input from the SMSC" tests: a PDU builder and a TCP proxy
// that sits between consentd and the SMSC simulator (lib/smsc.mjs) and can inject any bytes
// into the stream consentd reads.
//
//   const proxy = await startProxy(smsc.port);
//   ... consentd --smpp smpp://id:pw@127.0.0.1:${proxy.port} ...
//   proxy.inject(pdu(DELIVER_SM, 0, INJECT_SEQ_BASE + 1, body));   // to every consentd connection
//   await proxy.waitReply(INJECT_SEQ_BASE + 1);                      // consentd's answer to it
//
// consentd's answers to injected PDUs (sequence numbers >= INJECT_SEQ_BASE) are kept by the proxy
// and not forwarded, so the simulator never sees answers to requests it did not send.

import net from 'node:net';

export const DELIVER_SM = 0x00000005;
export const DELIVER_SM_RESP = 0x80000005;
export const SUBMIT_SM_RESP = 0x80000004;
export const GENERIC_NACK = 0x80000000;
export const ENQUIRE_LINK = 0x00000015;
export const INJECT_SEQ_BASE = 0x70000000;

/** One PDU: 16-octet header + body. */
export function pdu(commandId, status, seq, body = Buffer.alloc(0)) {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(16 + body.length, 0);
    h.writeUInt32BE(commandId >>> 0, 4);
    h.writeUInt32BE(status >>> 0, 8);
    h.writeUInt32BE(seq >>> 0, 12);
    return Buffer.concat([h, body]);
}

/** A C-octet string. */
export const cstr = (s) => Buffer.concat([Buffer.from(String(s), 'latin1'), Buffer.from([0])]);

/** A TLV. */
export function tlv(tag, value) {
    const v = Buffer.isBuffer(value) ? value : Buffer.from(value);
    const h = Buffer.alloc(4);
    h.writeUInt16BE(tag, 0);
    h.writeUInt16BE(v.length, 2);
    return Buffer.concat([h, v]);
}

/**
 * The body of a deliver_sm, field by field (SMPP 3.4 section 4.6.1). short_message is a Buffer
 * (its length octet is computed unless smLength is given, to lie about it).
 */
export function deliverSmBody({
    serviceType = '', srcTon = 1, srcNpi = 1, src = '16465550100', dstTon = 1, dstNpi = 1,
    dst = '16465550190', esmClass = 0, protocolId = 0, priority = 0, schedule = '', validity = '',
    registered = 0, replace = 0, dataCoding = 0, smDefault = 0, shortMessage = Buffer.from('hello'),
    smLength, tlvs = Buffer.alloc(0),
} = {}) {
    return Buffer.concat([
        cstr(serviceType), Buffer.from([srcTon, srcNpi]), cstr(src), Buffer.from([dstTon, dstNpi]),
        cstr(dst), Buffer.from([esmClass, protocolId, priority]), cstr(schedule), cstr(validity),
        Buffer.from([registered, replace, dataCoding, smDefault, smLength ?? shortMessage.length]),
        shortMessage, tlvs,
    ]);
}

/**
 * A TCP proxy to 127.0.0.1:targetPort. Every accepted connection (consentd) gets its own upstream
 * connection. Returns {port, connections, accepted, inject(buf), replies, waitReply(seq), closeClients(), stop()}.
 */
export async function startProxy(targetPort) {
    const clients = new Set();
    const replies = []; // {commandId, status, seq} of consentd's answers to injected PDUs
    let accepted = 0;

    const server = net.createServer((client) => {
        accepted++;
        const up = net.connect({ host: '127.0.0.1', port: targetPort });
        clients.add(client);
        let buf = Buffer.alloc(0);
        const closeBoth = () => {
            clients.delete(client);
            client.destroy();
            up.destroy();
        };
        client.on('error', closeBoth);
        up.on('error', closeBoth);
        client.on('close', closeBoth);
        up.on('close', closeBoth);
        up.on('data', (d) => { if (!client.destroyed) client.write(d); });
        client.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            while (buf.length >= 16) {
                const len = buf.readUInt32BE(0);
                if (len < 16 || len > 1 << 20) { // consentd never does this; pass it on as it is
                    up.write(buf);
                    buf = Buffer.alloc(0);
                    return;
                }
                if (buf.length < len) break;
                const frame = buf.subarray(0, len);
                buf = buf.subarray(len);
                const seq = frame.readUInt32BE(12);
                const cmd = frame.readUInt32BE(4);
                if (seq >= INJECT_SEQ_BASE && (cmd & 0x80000000)) {
                    replies.push({ commandId: cmd, status: frame.readUInt32BE(8), seq });
                } else if (!up.destroyed) {
                    up.write(Buffer.from(frame));
                }
            }
        });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

    return {
        port: server.address().port,
        replies,
        get connections() { return clients.size; },
        get accepted() { return accepted; },
        /** Writes raw bytes to every consentd connection; returns how many got them. */
        inject(bytes) {
            let n = 0;
            for (const c of clients) {
                if (!c.destroyed) { c.write(bytes); n++; }
            }
            return n;
        },
        /** Resolves with consentd's answer to the injected PDU `seq`. */
        async waitReply(seq, timeout = 10000) {
            const deadline = Date.now() + timeout;
            for (;;) {
                const r = replies.find((x) => x.seq === seq);
                if (r) return r;
                if (Date.now() > deadline) throw new Error(`proxy: no answer to injected seq 0x${seq.toString(16)}`);
                await new Promise((res) => setTimeout(res, 10));
            }
        },
        closeClients() {
            for (const c of clients) c.destroy();
        },
        async stop() {
            for (const c of clients) c.destroy();
            await new Promise((resolve) => server.close(() => resolve()));
        },
    };
}
