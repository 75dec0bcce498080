// Issue 16: the delivery worker claims and records in batches, and submits while a batch's
// commit is in flight. What must still hold: a STOP that arrives during a long delivery
// refuses every message not claimed yet (a claim is a bounded batch, consent checked in its
// transaction), nothing is sent twice, and every message ends sent or refused.
// (kill -9 during batched delivery: crash.test.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, num } from './lib/server.mjs';
import { startSmsc } from './lib/smsc.mjs';
import { waitFor, optIn, addSender, getMessage, SLOW, assertNoSanitizerReport } from './lib/msgkit.mjs';

const SENDER = num(196);
const STOP_REPLY = 'ACME: You are unsubscribed and will get no more messages. Reply START to resubscribe.';
const TOTAL = 400; // more than one claim can hold (256 waiting per transport)

test('a STOP from the handset mid-delivery refuses what is not claimed yet; none is sent twice',
    { timeout: 90000 * SLOW }, async () => {
        const smsc = await startSmsc({ ackDelayMs: 10 });
        const url = smsc.url('consentd', 'secret', { window: 1, enquire_link: 30 });
        const srv = await startServer({ accounts: ['acme'], args: ['--transport', 'smpp', '--smpp', url] });
        try {
            await smsc.waitForBound(1, 10000);
            await addSender(srv, SENDER, { isDefault: true });
            const phone = num(61);
            await optIn(srv, phone);
            const ids = [];
            for (let i = 0; i < TOTAL; i += 50) {
                const batch = await Promise.all(Array.from({ length: Math.min(50, TOTAL - i) }, (_, k) =>
                    srv.v1('POST', '/messages', { body: { to: phone, text: `batch ${i + k}` } })));
                for (const r of batch) {
                    assert.equal(r.status, 202, r.text);
                    ids.push(r.json.id);
                }
            }
            await waitFor(() => smsc.received.length >= 5, { timeout: 20000 * SLOW, what: 'the first sends' });
            assert.equal(await smsc.sendMo(phone, SENDER, 'STOP'), 0, 'the STOP is stored and acknowledged');
            const atStop = smsc.received.length;
            smsc.setAckDelay(0);
            await waitFor(() => smsc.received.some((m) => m.text === STOP_REPLY),
                { timeout: 30000 * SLOW, what: 'the STOP confirmation at the SMSC' });
            const final = new Map();
            await waitFor(async () => {
                for (const id of ids) {
                    if (final.has(id)) continue;
                    const m = await getMessage(srv, id);
                    if (m.status === 'sent' || m.status === 'refused') final.set(id, m);
                    else return false;
                }
                return true;
            }, { timeout: 30000 * SLOW, interval: 100, what: 'every message sent or refused' });
            const texts = smsc.received.map((m) => m.text).filter((t) => t !== STOP_REPLY);
            assert.equal(new Set(texts).size, texts.length, 'no message reached the SMSC twice');
            const sent = [...final.values()].filter((m) => m.status === 'sent');
            const refused = [...final.values()].filter((m) => m.status === 'refused');
            assert.equal(sent.length + refused.length, TOTAL);
            assert.equal(sent.length, texts.length, 'what is recorded sent is what the SMSC got');
            assert.ok(refused.length > 0, `the STOP refused what was still queued (sent ${sent.length})`);
            for (const m of refused) {
                assert.equal(m.reason, 'opted_out');
                assert.ok(!texts.includes(m.text), `refused ${m.id} never reached the SMSC`);
            }
            // What went out after the STOP was claimed before it: at most one claim's worth.
            assert.ok(texts.length - atStop <= 256 + 1, `${texts.length - atStop} sent after the STOP`);
        } finally {
            await srv.stop();
            assertNoSanitizerReport(srv);
            await smsc.stop();
        }
    });
