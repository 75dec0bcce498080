// bench/octopush.mjs -- issue 11: Octopush batch contact creation, durable.
//
//   node bench/octopush.mjs --url http://127.0.0.1:PORT --login LOGIN --key KEY
//        [--batch 1000] [--conns 8] [--duration 10] [--list bench_list] [--tag bench]
//        [--fresh 1]
//
// Each of --conns keep-alive connections POSTs /v1/public/contact/create with --batch
// contacts at a time, back to back, for --duration seconds. Every number is new (--fresh 1,
// the default: each contact is added to the list with its group opt-in event) or, with
// --fresh 0, the same numbers are sent again (every contact updated). A 201 is counted only
// when its items are as many as the contacts sent; the server acknowledges it only once its
// commit is durable. Prints one line: BENCH_RESULT contacts_per_s=... batches=... p50_ms=...
// p99_ms=... errors=...
import http from 'node:http';

function args(argv) {
    const o = {};
    for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
    return o;
}

const a = args(process.argv.slice(2));
const url = new URL(a.url ?? 'http://127.0.0.1:8080');
const BATCH = Number(a.batch ?? 1000);
const CONNS = Number(a.conns ?? 8);
const DURATION_MS = Number(a.duration ?? 10) * 1000;
const FRESH = (a.fresh ?? '1') !== '0';
if (!a.login || !a.key) {
    console.error('usage: node bench/octopush.mjs --url URL --login LOGIN --key KEY [...]');
    process.exit(2);
}

// Valid, distinct US numbers: NANP area codes in use, exchanges 200-999 without N11 and 555.
const AREAS = [212, 213, 310, 312, 415, 469, 512, 617, 646, 702, 713, 718, 805, 917, 971];
const EXCHANGES = [];
for (let x = 200; x <= 999; x++) if (x % 100 !== 11 && x !== 555) EXCHANGES.push(x);
function phone(n) {
    const sub = n % 10000;
    const rest = Math.floor(n / 10000);
    const ex = EXCHANGES[rest % EXCHANGES.length];
    const area = AREAS[Math.floor(rest / EXCHANGES.length) % AREAS.length];
    return `+1${area}${ex}${String(sub).padStart(4, '0')}`;
}

let next = 0;
function body() {
    const start = FRESH ? next : 0;
    next += BATCH;
    const contacts = [];
    for (let i = 0; i < BATCH; i++) {
        contacts.push({ phone_number: phone(start + i), first_name: 'Bench', last_name: `N${start + i}`,
            param1: 'p1', param3: 'M' });
    }
    return Buffer.from(JSON.stringify({ contacts, list_name: a.list ?? 'bench_list',
        tag_name: a.tag ?? 'bench' }));
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
function post(buf) {
    return new Promise((resolve) => {
        const t0 = process.hrtime.bigint();
        const req = http.request({ host: url.hostname, port: url.port, method: 'POST',
            path: '/v1/public/contact/create', agent,
            headers: { 'Content-Type': 'application/json', 'Content-Length': buf.length,
                'api-login': a.login, 'api-key': a.key } }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const ms = Number(process.hrtime.bigint() - t0) / 1e6;
                let ok = res.statusCode === 201;
                if (ok) {
                    try { ok = JSON.parse(Buffer.concat(chunks).toString()).items.length === BATCH; } catch { ok = false; }
                }
                if (!ok && errors++ < 3) console.error(`bench: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`);
                resolve({ ok, ms });
            });
        });
        req.on('error', (e) => { if (errors++ < 3) console.error(`bench: ${e.message}`); resolve({ ok: false, ms: 0 }); });
        req.end(buf);
    });
}

let errors = 0;
const lat = [];
let contacts = 0;
const t0 = Date.now();
async function worker() {
    while (Date.now() - t0 < DURATION_MS) {
        const r = await post(body()); // the body is built between requests, as a client would
        if (r.ok) { contacts += BATCH; lat.push(r.ms); }
    }
}
await Promise.all(Array.from({ length: CONNS }, worker));
const secs = (Date.now() - t0) / 1000;
lat.sort((x, y) => x - y);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] : 0);
console.log(`BENCH_RESULT contacts_per_s=${(contacts / secs).toFixed(0)} batches=${lat.length} ` +
    `batch=${BATCH} conns=${CONNS} fresh=${FRESH ? 1 : 0} p50_ms=${pct(0.5).toFixed(1)} ` +
    `p99_ms=${pct(0.99).toFixed(1)} errors=${errors} seconds=${secs.toFixed(1)}`);
agent.destroy();
