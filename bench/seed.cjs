'use strict';
// bench/seed.cjs -- seeds one server (consentd or the peer) for bench/run.sh and checks
// that it answers the two benchmarked endpoints as the contract says, so a broken server
// fails here with its answer shown instead of producing a table full of errors.
//
//   node bench/seed.cjs --url http://127.0.0.1:PORT --key KEY [--set a] [--state opted_in]
//                      [--concurrency 16] [--shape FILE]
//
// POSTs a consent for each of the 1000 numbers of the set (the same list as bench/lib.lua),
// then GETs a few of them back. --shape writes the key paths of both answers to FILE so
// run.sh can point out where the two servers' JSON shapes differ.

const fs = require('node:fs');
const path = require('node:path');

function args(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  return o;
}

// The numbers, read from bench/lib.lua so the two lists cannot drift apart.
function phones(set) {
  const lua = fs.readFileSync(path.join(__dirname, 'lib.lua'), 'utf8');
  const m = lua.match(new RegExp('\\b' + set + '\\s*=\\s*\\{([^}]*)\\}'));
  if (!m) throw new Error(`no phone set "${set}" in lib.lua`);
  const out = [];
  for (const area of m[1].split(',').map((s) => s.trim()).filter(Boolean)) {
    for (let i = 0; i < 100; i++) out.push(`+1${area}55501${String(i).padStart(2, '0')}`);
  }
  return out;
}

function keyPaths(v, prefix, out) {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const k of Object.keys(v)) keyPaths(v[k], prefix ? `${prefix}.${k}` : k, out);
    if (Object.keys(v).length === 0) out.push(`${prefix} {}`);
  } else {
    out.push(`${prefix} ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}`);
  }
  return out;
}

async function call(url, key, method, p, body) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, json };
}

function fail(what, r) {
  process.stderr.write(`seed: ${what}: HTTP ${r.status}: ${r.text.slice(0, 600)}\n`);
  process.exit(1);
}

async function main() {
  const o = args(process.argv.slice(2));
  const url = (o.url || '').replace(/\/$/, '');
  const key = o.key || '';
  const state = o.state || 'opted_in';
  const list = phones(o.set || 'a');
  const conc = Number(o.concurrency || 16);
  if (!url || !key) {
    process.stderr.write('usage: node bench/seed.cjs --url URL --key KEY [--set a] [--state opted_in] [--shape FILE]\n');
    process.exit(2);
  }

  // One request first, checked closely.
  const body = (phone) => ({ phone, scope: 'all', state, channel: 'api' });
  const first = await call(url, key, 'POST', '/api/v1/consents', body(list[0]));
  if (first.status !== 201) fail(`POST /api/v1/consents ${list[0]}`, first);
  if (!first.json || !first.json.consent || first.json.consent.state !== state || !first.json.event) {
    fail('POST /api/v1/consents answered 201 without {"consent":{"state"},"event"}', first);
  }

  // The rest, a few at a time.
  let next = 1;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < list.length) {
      const phone = list[next++];
      const r = await call(url, key, 'POST', '/api/v1/consents', body(phone));
      if (r.status !== 201) fail(`POST /api/v1/consents ${phone}`, r);
    }
  }));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;

  // Reads, in the exact form the wrk script sends.
  let got;
  for (const phone of [list[0], list[list.length - 1]]) {
    got = await call(url, key, 'GET', `/api/v1/contacts/${phone}`);
    if (got.status !== 200) fail(`GET /api/v1/contacts/${phone}`, got);
    if (!got.json || got.json.phone !== phone) fail(`GET /api/v1/contacts/${phone} answered another phone`, got);
  }
  const unauth = await call(url, 'cd_not_a_key', 'GET', `/api/v1/contacts/${list[0]}`);
  if (unauth.status !== 401) fail('GET with a wrong key was not refused with 401', unauth);

  if (o.shape) {
    const lines = [
      ...keyPaths(first.json, 'POST /api/v1/consents 201:', []),
      ...keyPaths(got.json, 'GET /api/v1/contacts/{phone} 200:', []),
    ].map((l) => l.replace(/: ?\./, ': '));
    fs.writeFileSync(o.shape, lines.sort().join('\n') + '\n');
  }
  process.stdout.write(`seeded ${list.length} contacts (${state}) in ${ms.toFixed(0)} ms\n`);
}

main().catch((e) => {
  process.stderr.write(`seed: ${e && e.stack || e}\n`);
  process.exit(1);
});
