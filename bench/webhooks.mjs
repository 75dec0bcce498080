#!/usr/bin/env node
// bench/webhooks.mjs -- issue 15: sustained webhook delivery to a local receiver.
//
//   node bench/webhooks.mjs            (or: make bench-webhooks, if wired)
//
// 1. Starts consentd (--allow-private-webhooks, --webhook-schedule 0) with one account and
//    one endpoint whose port nobody listens on yet, and queues BENCH_EVENTS consent changes
//    through POST /api/v1/consents (BENCH_CONNS at a time). Every delivery fails twice
//    (connection refused) and becomes a dead letter: a backlog, durable, ready to go.
// 2. Starts the receiver (node:http, answers 200) on that port, replays the dead letters with
//    POST /api/v1/webhooks/replay (1,000 a call), and times until the receiver has them all.
// Prints queueing rate, delivery rate (events/s) and the receiver's count, as Markdown.
//
// Environment: BENCH_EVENTS=20000, BENCH_CONNS=64, CONSENTD=build/consentd, BENCH_KEEP=0,
// TMPDIR (a real disk: synchronous=FULL).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.resolve(ROOT, process.env.CONSENTD || 'build/consentd');
const EVENTS = Number(process.env.BENCH_EVENTS || 20000);
const CONNS = Number(process.env.BENCH_CONNS || 64);
const say = (s) => process.stderr.write(`bench: ${s}\n`);

async function freePort() {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address();
    await new Promise((r) => s.close(r));
    return port;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
function call(port, key, method, p, body) {
    return new Promise((resolve, reject) => {
        const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
        const req = http.request({
            host: '127.0.0.1', port, method, path: p, agent,
            headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json',
                ...(data ? { 'Content-Length': data.length } : {}) },
        }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString();
                resolve({ status: res.statusCode, json: text ? JSON.parse(text) : undefined });
            });
        });
        req.on('error', reject);
        req.end(data);
    });
}

/* Distinct valid US numbers: five area codes, exchanges from 200 (never an N11 code). */
function phone(i) {
    const area = ['646', '212', '718', '917', '347'][i % 5];
    let ex = 200 + Math.floor(i / 50000);
    if (ex % 100 === 11) ex++;
    return `+1${area}${ex}${String(Math.floor(i / 5) % 10000).padStart(4, '0')}`;
}

function sqliteCount(db, sql) {
    return Number(execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, sql]).toString().trim());
}

async function main() {
    const dir = mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'consentd-bench-wh-'));
    const db = path.join(dir, 'consentd.db');
    const acct = JSON.parse(execFileSync(BIN, ['account', 'create', 'bench', '--login', 'b@bench.example',
        '--region', 'US', '--db', `sqlite:${db}`]).toString());
    const port = await freePort();
    const rxPort = await freePort();
    const srv = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--db', `sqlite:${db}`, '--quiet',
        '--allow-private-webhooks', '--webhook-schedule', '0', '--writer-queue', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    srv.stderr.on('data', (d) => { log += d; });
    for (let i = 0; i < 200 && !/"listening"/.test(log); i++) await new Promise((r) => setTimeout(r, 50));
    const key = acct.api_key;
    try {
        const w = await call(port, key, 'POST', '/api/v1/webhooks',
            { url: `http://127.0.0.1:${rxPort}/hook`, events: ['consent.changed'] });
        if (w.status !== 201) throw new Error(`subscribe: ${w.status}`);

        say(`queueing ${EVENTS} consent changes (${CONNS} at a time); the receiver is down`);
        let next = 0;
        const t0 = Date.now();
        await Promise.all(Array.from({ length: CONNS }, async () => {
            while (next < EVENTS) {
                const i = next++;
                const r = await call(port, key, 'POST', '/api/v1/consents',
                    { phone: phone(i), scope: 'all', state: i % 2 ? 'opted_out' : 'opted_in' });
                if (r.status !== 201) throw new Error(`POST /consents ${phone(i)}: ${r.status} ${JSON.stringify(r.json)}`);
            }
        }));
        const queueSecs = (Date.now() - t0) / 1000;
        say(`queued in ${queueSecs.toFixed(1)} s; waiting for the backlog to become dead letters`);
        for (;;) {
            const dead = sqliteCount(db, "SELECT count(*) FROM webhook_deliveries WHERE status = 'dead'");
            if (dead === EVENTS) break;
            await new Promise((r) => setTimeout(r, 500));
        }

        let got = 0;
        const rx = http.createServer((req, res) => {
            req.on('data', () => {});
            req.on('end', () => { got++; res.writeHead(200); res.end('ok'); });
        });
        rx.keepAliveTimeout = 60000;
        await new Promise((r) => rx.listen(rxPort, '127.0.0.1', r));
        say('receiver up; replaying the dead letters');
        const t1 = Date.now();
        const range = { from: new Date(t0 - 60000).toISOString(), to: new Date(Date.now() + 3600000).toISOString() };
        let replayed = 0;
        for (;;) {
            const r = await call(port, key, 'POST', '/api/v1/webhooks/replay', range);
            if (r.status !== 200) throw new Error(`replay: ${r.status}`);
            replayed += r.json.replayed;
            if (!r.json.more) break;
        }
        while (got < EVENTS) await new Promise((r) => setTimeout(r, 20));
        const secs = (Date.now() - t1) / 1000;
        const delivered = sqliteCount(db, "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'");
        await new Promise((r) => rx.close(r));
        console.log('| events | queued/s (POST /consents) | delivered/s (replayed backlog) | receiver got | delivered rows |');
        console.log('| ---: | ---: | ---: | ---: | ---: |');
        console.log(`| ${EVENTS} | ${(EVENTS / queueSecs).toFixed(0)} | ${(EVENTS / secs).toFixed(0)} | ${got} | ${delivered} (replayed ${replayed}) |`);
    } finally {
        srv.kill('SIGTERM');
        await new Promise((r) => srv.on('exit', r));
        agent.destroy();
        if (process.env.BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    }
}

main().catch((e) => { console.error(e); process.exit(1); });
