// Issue 8 (consent safety and hardening), the delivery items: a STOP refuses what is still
// queued (item 1), sends over smpp/http need a registered sender and MOs to unknown numbers are
// kept (item 4), fair delivery across accounts and transports (item 9), and the SMPP details of
// item 13 (long MOs acknowledged only once stored, receipts kept on a graceful stop).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, errorOf, num } from './lib/server.mjs';
import { startSmsc } from './lib/smsc.mjs';
import {
    waitFor, sleep, optIn, addSender, patchSettings, getMessage, waitStatus, inbound, hhmmIn,
    listMessages, assertNoSanitizerReport,
} from './lib/msgkit.mjs';

const SENDER = num(190);
const BETA_SENDER = num(191);
const STOP_REPLY = 'ACME: You are unsubscribed and will get no more messages. Reply START to resubscribe.';

/** consentd on the smpp transport bound to a fresh simulator; acme (and beta) get a default sender. */
async function smppEnv({ smscOpts = {}, accounts = ['acme', 'beta'], params = {} } = {}) {
    const smsc = await startSmsc(smscOpts);
    const url = smsc.url('consentd', 'secret', { window: 10, enquire_link: 30, ...params });
    const srv = await startServer({ accounts, args: ['--transport', 'smpp', '--smpp', url] });
    await smsc.waitForBound(1, 10000);
    await addSender(srv, SENDER, { isDefault: true });
    if (srv.accounts.beta) await addSender(srv, BETA_SENDER, { key: srv.accounts.beta.api_key, isDefault: true });
    return {
        srv, smsc,
        beta: srv.accounts.beta ? { key: srv.accounts.beta.api_key } : undefined,
        async close() {
            try {
                await srv.stop();
                assertNoSanitizerReport(srv);
            } finally {
                await smsc.stop();
            }
        },
    };
}

async function send(srv, body, opts) {
    const r = await srv.v1('POST', '/messages', { body, ...opts });
    assert.equal(r.status, 202, `POST /messages ${JSON.stringify(body)}: ${r.text}`);
    return r.json;
}

/** Takes the SMPP link down (and keeps it down) and waits until consentd has noticed. */
async function linkDown(srv, smsc) {
    const seen = srv.logLines().filter((l) => l.msg === 'transport link' && l.up === false).length;
    smsc.rejectBinds(true);
    smsc.dropConnections();
    await waitFor(() => srv.logLines().filter((l) => l.msg === 'transport link' && l.up === false).length > seen,
        { what: 'consentd to see the SMPP link go down' });
}

/** A counter or gauge of /metrics (NaN when absent). */
async function metric(srv, name) {
    const m = await srv.api('GET', '/metrics', { key: null });
    return Number(m.text.match(new RegExp(`^${name} (\\d+)$`, 'm'))?.[1]);
}

function assertRefusedOptedOut(m) {
    assert.equal(m.status, 'refused', JSON.stringify(m));
    assert.equal(m.reason, 'opted_out');
    const last = m.history.at(-1);
    assert.equal(last.status, 'refused');
    assert.equal(last.detail, 'opted_out');
}

test('a STOP refuses what is queued: held for quiet hours, waiting for a down link; only the confirmation goes out', async () => {
    // issue 8 item 1: "A STOP does not stop what is already queued."
    const E = await smppEnv({ accounts: ['acme', 'night'] });
    try {
        const { srv, smsc } = E;
        const night = { key: srv.accounts.night.api_key };
        const NIGHT_SENDER = num(192);
        await addSender(srv, NIGHT_SENDER, { ...night, isDefault: true });
        const phone = num(10);
        await optIn(srv, phone);
        await optIn(srv, phone, night);

        // Held by quiet hours (night's window is around now).
        const now = Date.now();
        await patchSettings(srv, { quiet_hours: { start: hhmmIn(new Date(now - 3600e3), 'UTC'),
            end: hhmmIn(new Date(now + 3600e3), 'UTC') } }, night);
        const held = await send(srv, { to: phone, text: 'Night sale!' }, night);
        assert.ok(held.history.some((h) => /held for quiet hours/.test(h.detail ?? '')), JSON.stringify(held));

        // Waiting for a down SMPP link.
        await linkDown(srv, smsc);
        const waiting = await send(srv, { to: phone, text: 'Weekend sale!' });
        await sleep(400);
        assert.equal((await getMessage(srv, waiting.id)).status, 'queued');

        // STOP to both accounts (natively: the link is down).
        await inbound(srv, phone, SENDER, 'STOP');
        await inbound(srv, phone, NIGHT_SENDER, 'STOP', night);
        assertRefusedOptedOut(await getMessage(srv, waiting.id));
        assertRefusedOptedOut(await getMessage(srv, held.id, night));

        // The link comes back: only the two confirmations reach the SMSC.
        smsc.rejectBinds(false);
        await smsc.waitForBound(1, 15000);
        await waitFor(() => smsc.received.filter((m) => m.to === phone).length >= 2,
            { timeout: 15000, what: 'the two STOP confirmations at the SMSC' });
        await sleep(500);
        const got = smsc.received.filter((m) => m.to === phone).map((m) => m.text).sort();
        assert.deepEqual(got, ['NIGHT: You are unsubscribed and will get no more messages. Reply START to resubscribe.',
            STOP_REPLY].sort());
    } finally {
        await E.close();
    }
});

test('an opt-out of one group refuses only that group\'s queued messages', async () => {
    // issue 8 item 1: "for the scopes it covers".
    const E = await smppEnv({ accounts: ['acme'] });
    try {
        const { srv, smsc } = E;
        const g = await srv.v1('POST', '/groups', { body: { name: 'deals' } });
        assert.equal(g.status, 201, g.text);
        const scope = `group:${g.json.id}`;
        const phone = num(11);
        await optIn(srv, phone);
        await optIn(srv, phone, { scope });
        await linkDown(srv, smsc);
        const inGroup = await send(srv, { to: phone, text: 'deal', scope });
        const general = await send(srv, { to: phone, text: 'news' });
        const r = await srv.v1('POST', '/consents', { body: { phone, scope, state: 'opted_out' } });
        assert.equal(r.status, 201, r.text);
        assertRefusedOptedOut(await getMessage(srv, inGroup.id));
        assert.equal((await getMessage(srv, general.id)).status, 'queued');
        smsc.rejectBinds(false);
        await waitStatus(srv, general.id, 'sent', { timeout: 15000 });
        assert.deepEqual(smsc.received.filter((m) => m.to === phone).map((m) => m.text), ['news']);
    } finally {
        await E.close();
    }
});

test('the claim checks consent again: an opt-out written around the API still stops the message', async () => {
    // issue 8 item 1: "the outbox checks consent again when it claims a message".
    const E = await smppEnv({ accounts: ['acme'] });
    try {
        const { srv, smsc } = E;
        const phone = num(12);
        await optIn(srv, phone);
        await linkDown(srv, smsc);
        const m = await send(srv, { to: phone, text: 'should not go' });
        // A write that does not go through cd_consent_set (an operator's SQL, a race).
        execFileSync('sqlite3', [srv.dbPath, '.timeout 5000',
            "UPDATE consents SET state = 'opted_out' WHERE scope = 'all'"]);
        assert.equal((await getMessage(srv, m.id)).status, 'queued', 'nothing refused it yet');
        smsc.rejectBinds(false);
        const done = await waitStatus(srv, m.id, ['refused', 'sent'], { timeout: 15000 });
        assertRefusedOptedOut(done);
        await sleep(300);
        assert.deepEqual(smsc.received.filter((x) => x.to === phone), []);
    } finally {
        await E.close();
    }
});

test('sends over smpp need a registered sender; the sink does not', async () => {
    // issue 8 item 4: "Sends over smpp and http must come from a registered sender of the account".
    const E = await smppEnv({ accounts: ['acme', 'bare'] });
    const sink = await startServer();
    try {
        const { srv } = E;
        const bare = { key: srv.accounts.bare.api_key };
        const phone = num(13);
        await optIn(srv, phone, bare);
        const r = await srv.v1('POST', '/messages', { body: { to: phone, text: 'from nowhere' }, ...bare });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).code, 'no_sender');
        assert.match(errorOf(r).message, /POST \/api\/v1\/senders/);
        await addSender(srv, num(193), { ...bare, isDefault: true });
        const ok = await send(srv, { to: phone, text: 'from a registered number' }, bare);
        assert.equal(ok.from, num(193));
        // A fresh install on the sink still sends without any sender.
        await optIn(sink, phone);
        const s = await send(sink, { to: phone, text: 'sink without sender' });
        await waitStatus(sink, s.id, 'sent');
    } finally {
        await sink.stop();
        await E.close();
    }
});

test('an MO to a number no account owns is stored as unrouted, acknowledged, listed and counted', async () => {
    // issue 8 item 4: "an MO that still matches no account is stored as unrouted".
    const E = await smppEnv({ accounts: ['acme'] });
    try {
        const { srv, smsc } = E;
        const nobody = num(199);
        assert.equal(await smsc.sendMo(num(14), nobody, 'STOP please'), 0, 'ESME_ROK once stored');
        const r = await srv.cliOk(['inbound', 'unrouted', '--limit', '10']);
        const list = r.json ?? r;
        assert.ok(Array.isArray(list), JSON.stringify(list));
        const row = list.find((x) => x.to === nobody);
        assert.ok(row, `listed: ${JSON.stringify(list)}`);
        assert.equal(row.from, num(14));
        assert.equal(row.text, 'STOP please');
        assert.equal(row.transport, 'smpp');
        assert.match(row.provider_id, /^smpp:/);
        const metrics = await srv.api('GET', '/metrics', { key: null });
        assert.match(metrics.text, /^consentd_inbound_unrouted_total 1$/m);
    } finally {
        await E.close();
    }
});

test('one account\'s backlog does not delay another account\'s STOP confirmation', async () => {
    // issue 8 item 9: "round-robin between accounts, keyword replies first".
    const E = await smppEnv({ smscOpts: { ackDelayMs: 15 }, params: { window: 1 } });
    try {
        const { srv, smsc, beta } = E;
        const customer = num(20);
        await optIn(srv, customer);
        const N = 300;
        for (let i = 0; i < N; i += 30) {
            await Promise.all(Array.from({ length: Math.min(30, N - i) },
                (_, k) => send(srv, { to: customer, text: `backlog ${i + k}` })));
        }
        const stopper = num(21);
        await optIn(srv, stopper, beta);
        await inbound(srv, stopper, BETA_SENDER, 'STOP', beta);
        await waitFor(() => smsc.received.some((m) => m.to === stopper),
            { timeout: 30000, what: 'beta\'s STOP confirmation at the SMSC' });
        const delivered = smsc.received.filter((m) => m.to === customer).length;
        assert.ok(delivered < N - 50, `the confirmation went out before the backlog drained (${delivered}/${N} sent)`);
    } finally {
        await E.close();
    }
});

test('a dead SMPP link with a large queue does not stop sink deliveries', async () => {
    // issue 8 item 9: "a claim cap per transport so one dead link does not stop the others".
    const srv = await startServer({ accounts: ['acme', 'beta'],
        args: ['--transport', 'sink', '--smpp', 'smpp://consentd:secret@127.0.0.1:9?window=10'] });
    try {
        const beta = { key: srv.accounts.beta.api_key };
        await addSender(srv, SENDER, { transport: 'smpp', isDefault: true });
        const customer = num(30);
        await optIn(srv, customer);
        const N = 1100; // more than the outbox keeps claimed at once (1024)
        for (let i = 0; i < N; i += 50) {
            await Promise.all(Array.from({ length: Math.min(50, N - i) },
                (_, k) => send(srv, { to: customer, text: `stuck ${i + k}` })));
        }
        const other = num(31);
        await optIn(srv, other, beta);
        const m = await send(srv, { to: other, text: 'over the sink' }, beta);
        await waitStatus(srv, m.id, 'sent', { timeout: 10000, key: beta.key });
        const stuck = await listMessages(srv, { to: customer, status: 'sent' });
        assert.equal(stuck.length, 0, 'nothing went over the dead link');
    } finally {
        await srv.stop();
        assertNoSanitizerReport(srv);
    }
});

test('a long MO: no part is acknowledged before the whole message is stored', async () => {
    // issue 8 item 13: "every part of a long MO is acknowledged only after it is stored".
    const E = await smppEnv({ accounts: ['acme'] });
    try {
        const { srv, smsc } = E;
        const phone = num(40);
        const text = 'Hello there, this is a long message from a handset. '.repeat(4).trim();
        const parts = smsc.moParts(phone, SENDER, text);
        assert.equal(parts.length, 2, 'the simulator splits it in two');
        let firstAnswered = false;
        const first = parts[0]().then((status) => { firstAnswered = true; return status; });
        await sleep(500);
        assert.equal(firstAnswered, false, 'part 1 is not answered on arrival');
        const second = parts[1]();
        assert.equal(await first, 0);
        // The answer came after the commit: the message is there as soon as part 1 is answered.
        const stored = (await listMessages(srv, { kind: 'inbound' })).filter((m) => m.from === phone);
        assert.deepEqual(stored.map((m) => m.text), [text]);
        assert.equal(await second, 0);
    } finally {
        await E.close();
    }
});

test('messages claimed for a link that goes down go back to the queue, where a STOP refuses them', async () => {
    // issue 8 item 1: "waiting for a down SMPP link ... goes out later" -- also when they were
    // already claimed (waiting behind a full window) when the link went down.
    const E = await smppEnv({ accounts: ['acme'], smscOpts: { ackDelayMs: 5000 }, params: { window: 2 } });
    try {
        const { srv, smsc } = E;
        const phone = num(41);
        await optIn(srv, phone);
        const sent = await Promise.all(Array.from({ length: 12 }, (_, i) => send(srv, { to: phone, text: `wave ${i}` })));
        // Some are claimed and wait in the outbox behind the full window (the waiting gauge).
        await waitFor(async () => await metric(srv, 'consentd_outbox_waiting') > 0,
            { what: 'claimed messages waiting for the window' });
        await linkDown(srv, smsc);
        const inFlight = smsc.received.map((m) => m.text);
        await inbound(srv, phone, SENDER, 'STOP');
        smsc.setAckDelay(0);
        smsc.rejectBinds(false);
        await waitFor(() => smsc.received.some((m) => m.text === STOP_REPLY),
            { timeout: 15000, what: 'the STOP confirmation at the SMSC' });
        for (const m of sent) {
            if (inFlight.includes(m.text)) continue; // handed to the SMSC before the STOP
            assertRefusedOptedOut(await waitStatus(srv, m.id, ['refused', 'sent'], { timeout: 10000 }));
        }
        await sleep(300);
        const late = smsc.received.filter((m) => m.text !== STOP_REPLY && !inFlight.includes(m.text));
        assert.deepEqual(late.map((m) => m.text), [], 'nothing queued before the STOP went out after it');
    } finally {
        await E.close();
    }
});

test('a STOP also stops what waits claimed behind a full window: checked again before the submit', async () => {
    // issue 8 item 1 ("a STOP must stop everything already queued"), also for messages the
    // outbox has claimed and holds while the SMPP window is full: once the opt-out is
    // durable they are checked again before they are submitted, and refused.
    const E = await smppEnv({ accounts: ['acme'], smscOpts: { ackDelayMs: 3000 }, params: { window: 2 } });
    try {
        const { srv, smsc } = E;
        const phone = num(43);
        await optIn(srv, phone);
        const sent = await Promise.all(Array.from({ length: 12 }, (_, i) => send(srv, { to: phone, text: `held ${i}` })));
        await waitFor(async () => await metric(srv, 'consentd_outbox_waiting') >= 5,
            { what: 'claimed messages waiting behind the full window' });
        const claimed = (await listMessages(srv, { status: 'sending' })).filter((m) => m.to === phone);
        await inbound(srv, phone, SENDER, 'STOP'); // answered once the opt-out is durable
        const handed = new Set(smsc.received.map((m) => m.text)); // in the window before it
        smsc.setAckDelay(0);
        await waitFor(() => smsc.received.some((m) => m.text === STOP_REPLY),
            { timeout: 15000, what: 'the STOP confirmation at the SMSC' });
        const claimedIds = new Set(claimed.map((m) => m.id));
        let refused = 0;
        for (const m of sent) {
            const done = await waitStatus(srv, m.id, ['refused', 'sent', 'delivered'], { timeout: 10000 });
            if (handed.has(m.text)) continue;
            assertRefusedOptedOut(done);
            refused += claimedIds.has(m.id);
        }
        assert.ok(refused >= 3, `claimed ones were refused (${claimed.length} claimed, ${refused} refused)`);
        await sleep(300);
        const late = smsc.received.filter((m) => m.text !== STOP_REPLY && !handed.has(m.text));
        assert.deepEqual(late.map((m) => m.text), [], 'nothing claimed before the STOP went out after it');
        assert.ok(await metric(srv, 'consentd_outbox_refused_total') >= refused);
    } finally {
        await E.close();
    }
});

test('ids from the SMSC are quoted in the logs, never written raw', async () => {
    // issue 8 item 13: "SMSC ids escaped".
    const E = await smppEnv({ accounts: ['acme'] });
    try {
        const { srv, smsc } = E;
        const evil = 'x"}\n{"msg":"forged"}'; // no comma: the simulator splits ids on commas
        await smsc.sendReceipt(evil);
        const line = await waitFor(() => srv.logLines().find((l) => l.msg === 'report skipped'),
            { what: 'the log line about the unknown receipt' });
        assert.equal(line.id, evil);
        assert.equal(srv.logLines().filter((l) => l.msg === 'forged').length, 0, 'no forged log line');
    } finally {
        await E.close();
    }
});
