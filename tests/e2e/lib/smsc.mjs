// An SMSC simulator for the e2e tests, built on the npm package `smpp` acting as the server.
//
//   const smsc = await startSmsc({ port: 0, ackDelayMs: 0, failNext: 0, failStatus: 0x58 });
//   const url = smsc.url('consentd', 'secret');  // smpp://consentd:secret@127.0.0.1:PORT
//   ... consentd submits ...
//   await smsc.waitForMessages(1);               // smsc.received[0]: {to, from, text, messageId, ...}
//   await smsc.sendMo('+16465550123', '12345', 'STOP');   // resolves with the deliver_sm_resp status
//   await smsc.sendReceipt(smsc.received[0].messageId, 'DELIVRD');
//   smsc.dropConnections();                      // every ESME sees its TCP connection close
//   await smsc.stop();
//
// It accepts any bind (unless rejectBinds(true)), answers submit_sm with increasing ids
// ("1", "2", ...) after ackDelayMs, decodes GSM-7 (data_coding 0), Latin-1 (3) and UCS-2 (8),
// and reassembles UDH-concatenated parts (IE 0x00 and 0x08) into one entry of `received`.
// Everything listens on 127.0.0.1 only. Parallel-safe: one kernel-chosen port per simulator.

import { EventEmitter } from 'node:events';
import smpp from 'smpp';

const ESME_ROK = 0x00;
const ESME_RBINDFAIL = 0x0d;
const ESME_RINVCMDID = 0x03;
const ESME_RTHROTTLED = 0x58;
const UDHI = 0x40;
const RECEIPT = 0x04;

/** The SMPP message_state for each receipt stat (SMPP 3.4 section 5.2.28, Appendix B). */
const STATES = {
    ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7,
    REJECTD: 8,
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** "+E.164" -> TON 1 / NPI 1 without the '+'; anything else -> 0/0 as it is. */
function smppAddr(s) {
    const v = String(s ?? '');
    if (v.startsWith('+')) return { addr: v.slice(1), ton: 1, npi: 1 };
    return { addr: v, ton: 0, npi: 0 };
}

/** How consentd reports an address: TON 1 gets its '+' back. */
function showAddr(addr, ton) {
    return ton === 1 && !addr.startsWith('+') ? `+${addr}` : addr;
}

/** The concatenation IE of a decoded UDH list (Buffers of [iei, len, ...data]), or null. */
function concatInfo(udhList) {
    for (const ie of udhList || []) {
        if (ie[0] === 0x00 && ie[1] === 3) return { ref: ie[2], total: ie[3], index: ie[4] };
        if (ie[0] === 0x08 && ie[1] === 4) {
            return { ref: (ie[2] << 8) | ie[3], total: ie[4], index: ie[5] };
        }
    }
    return null;
}

/**
 * The short_message of a decoded submit_sm as {text, udh}. The `smpp` package has already
 * turned it into {message, udh?} by data_coding; a Buffer means a coding it does not know.
 */
function messageOf(pdu) {
    const sm = pdu.short_message;
    if (sm && typeof sm === 'object' && !Buffer.isBuffer(sm)) {
        const text = Buffer.isBuffer(sm.message) ? sm.message.toString('latin1') : sm.message;
        return { text: text ?? '', udh: sm.udh || [] };
    }
    if (Buffer.isBuffer(sm)) return { text: sm.toString('latin1'), udh: [] };
    // An empty short_message with the text in message_payload.
    const mp = pdu.message_payload;
    if (mp && typeof mp === 'object') return { text: mp.message ?? '', udh: [] };
    return { text: '', udh: [] };
}

/** The bytes of one character in GSM-7 (unpacked) or UCS-2. */
function charBytes(ch, gsm) {
    return gsm ? smpp.encodings.ASCII.encode(ch) : smpp.encodings.UCS2.encode(ch);
}

/**
 * Splits text into the short_message bodies of an MO: one part if it fits in 160 septets or
 * 140 octets, else parts of 153 / 134 octets behind a 6-octet UDH. An escape pair or a
 * surrogate pair is never split.
 */
function encodeMo(text, ref) {
    const gsm = smpp.encodings.ASCII.match(text);
    const chars = Array.from(text).map((ch) => charBytes(ch, gsm));
    const total = chars.reduce((n, b) => n + b.length, 0);
    const dataCoding = gsm ? 0x00 : 0x08;
    if (total <= 140 || (gsm && total <= 160)) {
        return { dataCoding, parts: [Buffer.concat(chars)] };
    }
    const cap = gsm ? 153 : 134;
    const bodies = [];
    let cur = [];
    let len = 0;
    for (const b of chars) {
        if (len + b.length > cap) {
            bodies.push(Buffer.concat(cur));
            cur = [];
            len = 0;
        }
        cur.push(b);
        len += b.length;
    }
    if (cur.length) bodies.push(Buffer.concat(cur));
    if (bodies.length > 255) throw new Error(`sendMo: text needs ${bodies.length} parts`);
    const parts = bodies.map((body, i) =>
        Buffer.concat([Buffer.from([5, 0x00, 3, ref & 0xff, bodies.length, i + 1]), body]));
    return { dataCoding, parts, udh: true };
}

/** YYMMDDhhmm, the receipt text's date format. */
function receiptDate(d = new Date()) {
    const p = (n) => String(n).padStart(2, '0');
    return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
        `${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

/**
 * Starts a simulator. Options:
 *   port        0 (default) for a free port
 *   ackDelayMs  delay before each submit_sm_resp (default 0)
 *   failNext    answer the next N submit_sm with failStatus (default 0)
 *   failStatus  the command_status for those (default 0x58 ESME_RTHROTTLED: temporary)
 */
export async function startSmsc({ port = 0, ackDelayMs = 0, failNext = 0,
    failStatus = ESME_RTHROTTLED } = {}) {
    const events = new EventEmitter();
    const sessions = new Set(); // every open session
    const bound = [];           // bound transceiver/receiver sessions, newest last
    const pending = new Map();  // reassembly: key -> {parts: [], have, first}
    const received = [];        // whole messages, in the order their last part arrived
    const submits = [];         // every submit_sm PDU as decoded, with its id
    const deliverResps = [];    // command_status of every deliver_sm_resp
    const binds = [];           // {systemId, password, systemType, ok}
    let nextId = 0;
    let nextRef = 0;
    let refuse = false;
    let fails = failNext;
    let delay = ackDelayMs;

    function onSubmit(session, pdu) {
        const id = String(++nextId);
        const status = fails > 0 ? (fails--, failStatus) : ESME_ROK;
        const answer = () => {
            if (!sessions.has(session)) return; // dropped meanwhile: the ESME gets no answer
            session.send(pdu.response(status === ESME_ROK ? { message_id: id } :
                { command_status: status }));
        };
        if (delay > 0) setTimeout(answer, delay);
        else answer();
        if (status !== ESME_ROK) return;

        const { text, udh } = messageOf(pdu);
        const part = {
            to: showAddr(pdu.destination_addr, pdu.dest_addr_ton),
            from: showAddr(pdu.source_addr, pdu.source_addr_ton),
            text, messageId: id, dataCoding: pdu.data_coding, esmClass: pdu.esm_class,
            registeredDelivery: pdu.registered_delivery, sourceTon: pdu.source_addr_ton,
            sourceNpi: pdu.source_addr_npi, destTon: pdu.dest_addr_ton,
            destNpi: pdu.dest_addr_npi,
        };
        submits.push(part);
        const ci = (pdu.esm_class & UDHI) ? concatInfo(udh) : null;
        if (!ci || ci.total <= 1) {
            finish([part]);
            return;
        }
        const key = `${part.from}|${part.to}|${ci.ref}|${ci.total}`;
        let p = pending.get(key);
        if (!p) {
            p = { parts: new Array(ci.total).fill(null), have: 0 };
            pending.set(key, p);
        }
        if (ci.index >= 1 && ci.index <= ci.total && !p.parts[ci.index - 1]) {
            p.parts[ci.index - 1] = part;
            p.have++;
        }
        if (p.have === ci.total) {
            pending.delete(key);
            finish(p.parts);
        }
    }

    function finish(parts) {
        const first = parts[0];
        const msg = {
            ...first,
            text: parts.map((p) => p.text).join(''),
            messageId: parts.map((p) => p.messageId).join(','), // as consentd joins them
            messageIds: parts.map((p) => p.messageId),
            parts: parts.length,
        };
        received.push(msg);
        events.emit('message', msg);
    }

    function onSession(session) {
        sessions.add(session);
        session.on('error', () => { /* a reset by the ESME is normal here */ });
        session.on('close', () => {
            sessions.delete(session);
            const i = bound.indexOf(session);
            if (i >= 0) bound.splice(i, 1);
        });
        const onBind = (pdu) => {
            const ok = !refuse;
            binds.push({ systemId: pdu.system_id, password: pdu.password,
                systemType: pdu.system_type, ok });
            session.send(pdu.response(ok ? { system_id: 'sim' } :
                { command_status: ESME_RBINDFAIL }));
            if (ok) {
                bound.push(session);
                events.emit('bind', pdu.system_id);
            }
        };
        session.on('bind_transceiver', onBind);
        session.on('bind_receiver', onBind);
        session.on('bind_transmitter', onBind);
        session.on('submit_sm', (pdu) => onSubmit(session, pdu));
        session.on('enquire_link', (pdu) => session.send(pdu.response()));
        session.on('deliver_sm_resp', (pdu) => deliverResps.push(pdu.command_status));
        session.on('unbind', (pdu) => {
            session.send(pdu.response());
            session.close();
        });
        session.on('unknown', (pdu) => session.send(pdu.response({
            command_status: ESME_RINVCMDID })));
    }

    const server = smpp.createServer(onSession);
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
        });
    });
    const actualPort = server.address().port;

    /** Sends one deliver_sm on the newest bound session; resolves with its resp status. */
    function deliver(fields) {
        const session = bound[bound.length - 1];
        if (!session) return Promise.reject(new Error('smsc: no ESME is bound'));
        return new Promise((resolve, reject) => {
            const ok = session.deliver_sm(fields, (resp) => resolve(resp.command_status));
            if (!ok) reject(new Error('smsc: the session is not writable'));
        });
    }

    async function waitFor(pred, what, timeout) {
        const deadline = Date.now() + timeout;
        while (!pred()) {
            if (Date.now() > deadline) throw new Error(`smsc: timed out waiting for ${what}`);
            await sleep(10);
        }
    }

    return {
        port: actualPort,
        received,
        submits,
        deliverResps,
        binds,
        events,
        /** The consentd transport URL for this simulator; `params` become the query. */
        url(systemId = 'consentd', password = 'secret', params = {}) {
            const q = new URLSearchParams(params).toString();
            return `smpp://${encodeURIComponent(systemId)}:${encodeURIComponent(password)}` +
                `@127.0.0.1:${actualPort}${q ? `?${q}` : ''}`;
        },
        /** Number of sessions that are bound now. */
        get boundCount() { return bound.length; },
        /**
         * An MO from a handset. Long texts go as UDH parts, all sent before any answer is awaited
         * (as an SMSC with a window does: consentd answers each part only once the whole message
         * is stored, issue 8 item 13); resolves with the last part's resp status.
         */
        async sendMo(from, to, text) {
            const statuses = await Promise.all(this.moParts(from, to, text).map((send) => send()));
            return statuses.at(-1);
        },
        /** The parts of an MO as functions that each send one deliver_sm and resolve with its resp status. */
        moParts(from, to, text) {
            const src = smppAddr(from);
            const dst = smppAddr(to);
            const { dataCoding, parts, udh } = encodeMo(String(text), nextRef++);
            return parts.map((body) => () => deliver({
                source_addr: src.addr, source_addr_ton: src.ton, source_addr_npi: src.npi,
                destination_addr: dst.addr, dest_addr_ton: dst.ton, dest_addr_npi: dst.npi,
                esm_class: udh ? UDHI : 0, data_coding: dataCoding, short_message: body,
            }));
        },
        /**
         * A delivery receipt for messageId (a joined "a,b" id sends one per part) with the
         * receipted_message_id and message_state TLVs and the Appendix B text; {tlv: false}
         * leaves the TLVs out so only the text carries the id. Resolves with the statuses.
         */
        async sendReceipt(messageId, stat = 'DELIVRD', { err = '000', tlv = true } = {}) {
            const ids = String(messageId).split(',');
            const out = [];
            for (const id of ids) {
                const sub = submits.find((s) => s.messageId === id);
                const now = receiptDate();
                const fields = {
                    // A receipt comes from the handset to the sender.
                    ...(sub ? {
                        source_addr: smppAddr(sub.to).addr, source_addr_ton: sub.to.startsWith('+') ? 1 : 0,
                        destination_addr: smppAddr(sub.from).addr,
                    } : {}),
                    esm_class: RECEIPT,
                    short_message: Buffer.from(`id:${id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} ` +
                        `submit date:${now} done date:${now} stat:${stat} err:${err} text:`, 'latin1'),
                };
                if (tlv) {
                    fields.receipted_message_id = id;
                    fields.message_state = STATES[stat] ?? STATES.UNKNOWN;
                }
                out.push(await deliver(fields));
            }
            return out;
        },
        /** Closes every ESME connection at once (TCP reset), as a crashing SMSC would. */
        dropConnections() {
            for (const s of sessions) s.destroy();
        },
        /** While true, binds are refused with ESME_RBINDFAIL. */
        rejectBinds(on = true) { refuse = on; },
        /** Answers the next n submit_sm with `status` (default: throttled, temporary). */
        failNextSubmits(n, status = ESME_RTHROTTLED) { fails = n; failStatus = status; },
        /** Changes the submit_sm_resp delay from now on. */
        setAckDelay(ms) { delay = ms; },
        /** Resolves once `received` holds at least n whole messages. */
        async waitForMessages(n, timeout = 10000) {
            await waitFor(() => received.length >= n, `${n} message(s), have ${received.length}`,
                timeout);
            return received;
        },
        /** Resolves once at least n sessions are bound. */
        async waitForBound(n = 1, timeout = 10000) {
            await waitFor(() => bound.length >= n, `${n} bound session(s)`, timeout);
        },
        async stop() {
            for (const s of sessions) s.destroy();
            await new Promise((resolve) => server.close(() => resolve()));
        },
    };
}
