'use strict';
// Benchmark peer, issue 16: seeds the peer's database directly with better-sqlite3 (its
// seeding speed is not what is measured), with the same contacts bench/seed_bulk.mjs gives
// consentd: numbers FROM .. FROM+COUNT-1 of bench/numbers.cjs, each in the list (a group,
// created on first use) and opted in to its scope group:<id>. No ledger events are written
// (the reads measured never look at them). Safe while the server runs (SQLite WAL).
//
//   node seed.js --db sqlite:PATH --from F --count N [--list bench_list]
// Prints "group <id>" on stdout.
const Database = require('better-sqlite3');
const { bigNumber } = require('../../numbers.cjs');

const opt = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
const file = String(opt.db || '').replace(/^sqlite:/, '');
const from = Number(opt.from || 0);
const count = Number(opt.count || 0);
const list = opt.list ?? 'bench_list';
if (!file) {
  process.stderr.write('usage: node seed.js --db sqlite:PATH --from F --count N [--list bench_list]\n');
  process.exit(2);
}

const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 10000');
const account = db.prepare('SELECT id FROM accounts ORDER BY id LIMIT 1').pluck().get();
if (account === undefined) {
  process.stderr.write('seed.js: no account in the database (run `server.js account create` first)\n');
  process.exit(1);
}
db.prepare('INSERT OR IGNORE INTO groups (account_id, name) VALUES (?, ?)').run(account, list);
const group = db.prepare('SELECT id FROM groups WHERE account_id = ? AND name = ?').pluck().get(account, list);
const insContact = db.prepare('INSERT INTO contacts (account_id, phone, created_at, updated_at) VALUES (?, ?, ?, ?)');
const insMember = db.prepare('INSERT INTO contact_groups (contact_id, group_id) VALUES (?, ?)');
const insConsent = db.prepare("INSERT INTO consents (contact_id, scope, state, updated_at) VALUES (?, ?, 'opted_in', ?)");
const scope = `group:${group}`;
const chunk = db.transaction((start, n) => {
  const ts = new Date().toISOString();
  for (let i = start; i < start + n; i++) {
    const id = insContact.run(account, bigNumber(i), ts, ts).lastInsertRowid;
    insMember.run(id, group);
    insConsent.run(id, scope, ts);
  }
});
const t0 = Date.now();
for (let s = from; s < from + count; s += 50000) chunk(s, Math.min(50000, from + count - s));
db.close();
process.stderr.write(`peer seed.js: ${count} contacts in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
process.stdout.write(`group ${group}\n`);
