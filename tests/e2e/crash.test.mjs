// Crash safety of the outbox (issue 4 "Done when": queue 1,000 messages, kill -9 consentd mid-delivery, restart:
// every message is sent at least once and none that the SMSC acknowledged is sent twice; issue 4 item 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { startServer, num } from './lib/server.mjs';
import { startSmsc } from './lib/smsc.mjs';
import { waitFor, addSender, optIn, SLOW, assertNoSanitizerReport } from './lib/msgkit.mjs';

const NUMBERS = 100;
const PER_NUMBER = 10;
const TOTAL = NUMBERS * PER_NUMBER;
const KILL_AT = [250, 600]; // kill -9 once the SMSC has seen this many messages (cumulative)
const text = (i) => `crash test message #${i}`;

function sqlite(dbPath, sql) {
    return new Promise((resolve, reject) => {
        execFile('sqlite3', [dbPath, sql], { timeout: 20000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`sqlite3 ${sql}: ${err.message}\n${stderr}`));
            else resolve(stdout.split('\n').filter((l) => l.length));
        });
    });
}

/** A TCP port nobody listens on (for a consentd that must not reach any SMSC). */
async function deadPort() {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address();
    await new Promise((r) => s.close(r));
    return port;
}

/** Run fn over items with at most `n` at once. */
async function pool(items, n, fn) {
    let i = 0;
    await Promise.all(Array.from({ length: n }, async () => {
        while (i < items.length) {
            const k = i++;
            await fn(items[k], k);
        }
    }));
}

test('kill -9 mid-delivery, twice: every one of 1,000 messages reaches the SMSC, none recorded as sent is sent again',
    { timeout: 120000 * SLOW }, async (t) => {
        // Issue 4 "Done when" (crash test) + item 1: record the transport's id before marking sent; nothing queued is lost.
        const smsc = await startSmsc({ ackDelayMs: 15 });
        const smppArgs = (port) => ['--transport', 'smpp', '--smpp',
            `smpp://consentd:secret@127.0.0.1:${port}?window=10&enquire_link=30`];
        let srv = await startServer({ accounts: ['acme'], args: smppArgs(await deadPort()) });
        const { dir, dbPath, key } = srv;
        t.after(async () => {
            await srv.kill9();
            await srv.stop({ expectClean: false }); // removes the temp dir
            await smsc.stop();
        });

        // 1. Queue everything while consentd cannot reach any SMSC.
        await addSender(srv, num(190), { isDefault: true });
        const phones = Array.from({ length: NUMBERS }, (_, i) => num(i));
        await pool(phones, 16, (p) => optIn(srv, p));
        const ids = new Array(TOTAL);
        await pool(Array.from({ length: TOTAL }, (_, i) => i), 16, async (i) => {
            const r = await srv.v1('POST', '/messages', { body: { to: phones[i % NUMBERS], text: text(i) } });
            assert.equal(r.status, 202, r.text);
            ids[i] = r.json.id;
        });
        const byText = new Map(ids.map((id, i) => [text(i), id]));
        assert.equal(smsc.received.length, 0);
        const queued = await sqlite(dbPath, "SELECT count(*) FROM messages WHERE kind = 'send' AND status IN ('queued', 'sending')");
        assert.equal(Number(queued[0]), TOTAL, 'all 1,000 wait in the outbox');
        await srv.stop({ keepDir: true });

        // 2. Restart against the SMSC and kill -9 mid-delivery, twice.
        const sentSoFar = new Set(); // ids the DB recorded as sent at an earlier kill
        let mark = 0; // smsc.received index where the current run's submits start
        const violations = [];
        const checkRun = () => {
            // Nothing recorded as sent before this run started may have been submitted during it.
            for (const m of smsc.received.slice(mark)) {
                if (sentSoFar.has(byText.get(m.text)) && violations.length < 20) violations.push(m.text);
            }
        };
        const restart = async () => {
            assertNoSanitizerReport(srv);
            srv = await startServer({ accounts: [], dir, dbPath, args: smppArgs(smsc.port) });
            srv.key = key;
        };
        for (const killAt of KILL_AT) {
            await restart();
            await waitFor(() => smsc.received.length >= killAt,
                { timeout: 30000, interval: 2, what: `${killAt} messages at the SMSC` });
            await srv.kill9();
            const atKill = smsc.received.length;
            assert.ok(atKill < TOTAL, `killed mid-delivery (${atKill} of ${TOTAL} at the SMSC)`);
            // The dead process's connection closes; whatever it wrote before dying is in by then.
            await waitFor(() => smsc.boundCount === 0, { what: 'the SMSC to see the connection close' });
            const sent = await sqlite(dbPath, "SELECT id FROM messages WHERE kind = 'send' AND status = 'sent'");
            assert.ok(sent.length > 0, 'some messages were recorded as sent before the kill');
            assert.ok(sent.length < TOTAL, 'and some were not');
            const seen = new Set(smsc.received.map((m) => byText.get(m.text)));
            for (const id of sent) assert.ok(seen.has(id), `${id} is recorded as sent, so the SMSC must have it`);
            checkRun();
            for (const id of sent) sentSoFar.add(id);
            mark = smsc.received.length;
            t.diagnostic(`kill -9 with ${atKill} submits at the SMSC: ${sent.length} recorded as sent`);
        }

        // 3. Final restart: everything goes out.
        await restart();
        await waitFor(() => {
            const have = new Set(smsc.received.map((m) => m.text));
            return ids.every((_, i) => have.has(text(i)));
        }, { timeout: 40000, what: 'every one of the 1,000 messages at the SMSC' });
        await waitFor(async () => {
            const r = await sqlite(dbPath, "SELECT count(*) FROM messages WHERE kind = 'send' AND status = 'sent'");
            return Number(r[0]) === TOTAL;
        }, { timeout: 20000, what: 'all 1,000 recorded as sent' });
        checkRun();
        assert.deepEqual(violations, [], 'messages recorded as sent before a kill were submitted again');

        // Every text is known, and each reached the SMSC at least once; count the allowed re-sends.
        const counts = new Map();
        for (const m of smsc.received) {
            assert.ok(byText.has(m.text), `unexpected text at the SMSC: ${m.text}`);
            counts.set(m.text, (counts.get(m.text) ?? 0) + 1);
        }
        assert.equal(counts.size, TOTAL);
        const dups = [...counts.values()].filter((c) => c > 1).length;
        t.diagnostic(`${smsc.received.length} submits for ${TOTAL} messages; ${dups} sent more than once ` +
            `(in flight at a kill, never recorded as sent)`);
        // The restarted server still serves the API with the old key.
        const g = await srv.v1('GET', `/messages/${ids[0]}`);
        assert.equal(g.status, 200, g.text);
        assert.equal(g.json.status, 'sent');
        await srv.stop();
        assertNoSanitizerReport(srv);
    });

