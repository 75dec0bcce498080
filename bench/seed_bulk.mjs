// bench/seed_bulk.mjs -- issue 16: seeds consentd with many contacts quickly, through its
// fastest durable API path (Octopush's POST /v1/public/contact/create, up to 10,000 contacts
// per call, one writer transaction per call), then checks the seeded and the new numbers.
//
//   node bench/seed_bulk.mjs --url URL --login LOGIN --key KEY --from 0 --count N
//        [--batch 5000] [--conns 2] [--list bench_list] [--probe "F1 F2 ..."]
//
// Seeds numbers FROM .. FROM+COUNT-1 of bench/numbers.cjs (lib.lua's big_number); with
// --list (the default "bench_list", "" for none) each new contact joins that list and is
// opted in to its scope group:<id> (one hash-chained event each). Every call must answer 201
// with one "added" item per contact (the numbers must be new). Then:
// - GET /api/v1/contacts/{number} of the first and last seeded number must answer 200;
// - for each FIRST of --probe (the first number of a new-number run's block), 50 numbers
//   spread over FIRST .. FIRST+4,000,000 must be valid (GET /api/v1/check does not answer
//   invalid_number) and new (GET /api/v1/contacts answers 404).
// Prints one line: seeded N contacts in S s (R contacts/s); list group:<id>
// and, on stdout only, "group <id>" as its last line (for the callers).
import { createRequire } from 'node:module';
import http from 'node:http';

const require = createRequire(import.meta.url);
const { bigNumber, CAPACITY } = require('./numbers.cjs');

function args(argv) {
    const o = {};
    for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
    return o;
}
const a = args(process.argv.slice(2));
const url = new URL(a.url ?? 'http://127.0.0.1:8080');
const FROM = Number(a.from ?? 0);
const COUNT = Number(a.count ?? 0);
const BATCH = Math.min(Number(a.batch ?? 5000), 10000);
const CONNS = Number(a.conns ?? 2);
const LIST = a.list ?? 'bench_list';
if (!a.login || !a.key || !(COUNT >= 0) || FROM + COUNT > CAPACITY) {
    console.error('usage: node bench/seed_bulk.mjs --url URL --login LOGIN --key KEY --from F --count N [...]');
    process.exit(2);
}
const fail = (msg) => { console.error(`seed_bulk: ${msg}`); process.exit(1); };

const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
function call(method, path, headers, body) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: url.hostname, port: url.port, method, path, agent,
            headers: { ...headers, ...(body ? { 'Content-Type': 'application/json', 'Content-Length': body.length } : {}) } },
        (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end(body);
    });
}
const native = (path) => call('GET', path, { Authorization: `Bearer ${a.key}` });

let next = FROM;
const end = FROM + COUNT;
async function worker() {
    while (next < end) {
        const start = next;
        const n = Math.min(BATCH, end - start);
        next += n;
        const contacts = [];
        for (let i = 0; i < n; i++) contacts.push({ phone_number: bigNumber(start + i) });
        const body = Buffer.from(JSON.stringify(LIST ? { contacts, list_name: LIST } : { contacts }));
        const r = await call('POST', '/v1/public/contact/create', { 'api-login': a.login, 'api-key': a.key }, body);
        if (r.status !== 201) fail(`contact/create of ${start}..${start + n - 1}: HTTP ${r.status}: ${r.text.slice(0, 400)}`);
        const items = JSON.parse(r.text).items;
        const added = items.filter((it) => it.status === 'added').length;
        if (items.length !== n || added !== n) fail(`contact/create of ${start}..: ${added} of ${n} added (not new numbers?)`);
    }
}
const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: CONNS }, worker));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;

// The seeded numbers are there, in the form the wrk scripts ask for them.
let group = '';
for (const n of COUNT > 0 ? [FROM, end - 1] : []) {
    const r = await native(`/api/v1/contacts/${bigNumber(n)}`);
    if (r.status !== 200) fail(`GET /api/v1/contacts/${bigNumber(n)}: HTTP ${r.status}: ${r.text.slice(0, 300)}`);
    const g = JSON.parse(r.text).groups;
    if (LIST && Array.isArray(g) && g.length) group = String(g[0]);
    const c = await native(`/api/v1/check?to=%2B${bigNumber(n).slice(1)}&scope=all`);
    if (c.status !== 200) fail(`GET /api/v1/check: HTTP ${c.status}: ${c.text.slice(0, 300)}`);
}
// The new-number blocks: valid, and new.
for (const first of (a.probe ?? '').split(/[ ,]+/).filter(Boolean).map(Number)) {
    for (let i = 0; i < 50; i++) {
        const n = first + Math.floor((i * 4_000_000) / 50) + i;
        const phone = bigNumber(n);
        const c = await native(`/api/v1/check?to=%2B${phone.slice(1)}&scope=all`);
        if (c.status !== 200 || JSON.parse(c.text).reason === 'invalid_number') {
            fail(`number ${n} (${phone}) is not valid for consentd: HTTP ${c.status}: ${c.text.slice(0, 300)}`);
        }
        const g = await native(`/api/v1/contacts/${phone}`);
        if (g.status !== 404) fail(`number ${n} (${phone}) is not new: GET answered ${g.status}`);
    }
}
agent.destroy();
console.error(`seed_bulk: seeded ${COUNT} contacts in ${secs.toFixed(1)} s (${(COUNT / secs).toFixed(0)} contacts/s)` +
    `${group ? `, each opted in to group:${group}` : ''}`);
console.log(`group ${group}`);
