'use strict';
// Benchmark peer for consentd: the native endpoints that bench/run.sh measures
// (POST /api/v1/consents, GET /api/v1/contacts/{id or number}, and for issue 16
// GET /api/v1/check and POST /api/v1/contacts) written the way a
// careful Node team would: fastify + better-sqlite3, one SQLite file in WAL mode with
// synchronous=FULL, one transaction (so one durable commit) per consent POST, an
// append-only event ledger with a SHA-256 hash chain, API keys stored as SHA-256.
// It runs as one node process, as fastify is normally deployed.
//
// The CLI mirrors consentd's so bench/run.sh drives both the same way:
//   node server.js migrate --db sqlite:PATH
//   node server.js account create NAME [--region US] --db sqlite:PATH   # prints JSON incl. api_key
//   node server.js serve --listen 127.0.0.1:PORT --db sqlite:PATH       # JSON log lines on stderr
//   node seed.js --db sqlite:PATH --from F --count N [--list bench_list] # issue 16: bulk seeding
//
// Simplifications (all of them make the peer cheaper, never dearer, than consentd):
// phone numbers are validated with a NANP/E.164 pattern rather than libphonenumber;
// no Idempotency-Key store, no webhooks or outbox rows on consent changes.

const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');
const Database = require('better-sqlite3');

// ---------------------------------------------------------------------------- CLI

function usage(code) {
  process.stderr.write(
    'usage: node server.js migrate --db sqlite:PATH\n' +
    '       node server.js account create NAME [--region US] --db sqlite:PATH\n' +
    '       node server.js serve [--listen 127.0.0.1:8080] --db sqlite:PATH\n');
  process.exit(code);
}

function parseArgs(argv) {
  const pos = [];
  const opt = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) opt[a.slice(2, eq)] = a.slice(eq + 1);
      else if (i + 1 < argv.length) opt[a.slice(2)] = argv[++i];
      else usage(2);
    } else {
      pos.push(a);
    }
  }
  return { pos, opt };
}

function log(level, msg, extra) {
  process.stderr.write(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...extra }) + '\n');
}

function dbPath(opt) {
  const url = opt.db || process.env.PEER_DB || 'sqlite:./data/peer.db';
  if (!url.startsWith('sqlite:')) {
    log('error', 'only sqlite: databases are supported', { db: url });
    process.exit(2);
  }
  return url.slice('sqlite:'.length);
}

// ---------------------------------------------------------------------------- storage

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  region TEXT NOT NULL DEFAULT 'US',
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,                  -- key_<16 hex>; the key is cd_<same 16 hex>_<secret>
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  key_sha256 TEXT NOT NULL,             -- SHA-256 (hex) of the whole key
  name TEXT,
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS groups (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  name TEXT NOT NULL,
  UNIQUE (account_id, name)
);
CREATE TABLE IF NOT EXISTS message_types (
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  PRIMARY KEY (account_id, id)
);
CREATE TABLE IF NOT EXISTS contacts (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  phone TEXT NOT NULL,
  first_name TEXT, last_name TEXT, email TEXT, birthday TEXT, zip TEXT, city TEXT,
  params TEXT NOT NULL DEFAULT '{"param1":null,"param2":null,"param3":null,"param4":null,"param5":null}',
  custom TEXT NOT NULL DEFAULT '{}',
  tags TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (account_id, phone)
);
CREATE TABLE IF NOT EXISTS contact_groups (
  contact_id INTEGER NOT NULL REFERENCES contacts(id),
  group_id INTEGER NOT NULL REFERENCES groups(id),
  PRIMARY KEY (contact_id, group_id)
);
CREATE TABLE IF NOT EXISTS consents (
  contact_id INTEGER NOT NULL REFERENCES contacts(id),
  scope TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'opted_in', 'opted_out')),
  updated_at TEXT NOT NULL,
  PRIMARY KEY (contact_id, scope)
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  seq INTEGER NOT NULL,                 -- per account; the hash chain is per account
  contact_id INTEGER NOT NULL REFERENCES contacts(id),
  phone TEXT NOT NULL,
  scope TEXT NOT NULL,
  old_state TEXT,
  new_state TEXT NOT NULL,
  surface TEXT NOT NULL,
  channel TEXT,
  keyword TEXT,
  disclosure_sha256 TEXT,
  ip TEXT,
  user_agent TEXT,
  site TEXT,
  session TEXT,
  ext_ref TEXT,
  credential_id TEXT,
  request_id TEXT,
  created_at TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  UNIQUE (account_id, seq)
);
CREATE INDEX IF NOT EXISTS events_contact ON events (contact_id, seq);
CREATE TABLE IF NOT EXISTS flows (       -- issue 10: the ProTexting opt-in flow
  id TEXT PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  contact_id INTEGER NOT NULL REFERENCES contacts(id),
  phone TEXT NOT NULL,
  scopes TEXT NOT NULL,
  disclosure TEXT NOT NULL,
  confirm_text TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flows_contact ON flows (account_id, contact_id, status);
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  contact_id INTEGER,
  to_phone TEXT NOT NULL,
  text TEXT NOT NULL,
  kind TEXT NOT NULL,
  scope TEXT NOT NULL,
  status TEXT NOT NULL,
  flow_id TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_to ON messages (account_id, to_phone, kind, created_at);
CREATE TRIGGER IF NOT EXISTS events_append_only_u BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_d BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
`;

function openDb(file) {
  if (path.dirname(file) !== '.') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL'); // every commit fsyncs the WAL before it returns
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

const sha256hex = (s) => crypto.createHash('sha256').update(s).digest('hex');
const now = () => new Date().toISOString();
const GENESIS = '0'.repeat(64);

// ---------------------------------------------------------------------------- phones

// E.164 from the common written forms; NANP numbers must be valid (NXX-NXX-XXXX, no N11).
// A stand-in for libphonenumber, cheaper than it, so it only flatters the peer.
function normalizePhone(raw, region) {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 64) return null;
  if (!/^[0-9+()\[\]\-. /]+$/.test(raw)) return null;
  const plus = raw.trimStart().startsWith('+');
  let d = raw.replace(/[^0-9]/g, '');
  if (!plus) {
    if ((region || 'US').toUpperCase() !== 'US') return null;
    if (d.length === 10) d = '1' + d;
    else if (!(d.length === 11 && d[0] === '1')) return null;
  }
  if (d[0] === '1') {
    if (!/^1[2-9][0-9]{2}[2-9][0-9]{6}$/.test(d)) return null;
    if (d.slice(2, 4) === '11' || d.slice(5, 7) === '11') return null;
    return '+' + d;
  }
  if (d.length < 8 || d.length > 15 || d[0] === '0') return null;
  return '+' + d;
}

// ---------------------------------------------------------------------------- errors

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.statusCode = status;
    this.code = code;
    this.field = field === undefined ? null : field;
  }
}

const errorBody = (code, message, field) => ({ error: { code, message, field: field === undefined ? null : field } });

// ---------------------------------------------------------------------------- commands

function cmdMigrate(opt) {
  const db = openDb(dbPath(opt));
  db.exec(SCHEMA);
  db.close();
  log('info', 'migrated', {});
}

function cmdAccountCreate(name, opt) {
  if (!name) usage(2);
  const db = openDb(dbPath(opt));
  db.exec(SCHEMA);
  const account = { id: 0, name, region: (opt.region || 'US').toUpperCase(), created_at: now() };
  // Same key format as consentd: cd_<16 hex key id>_<43 base64url secret>.
  const hex = crypto.randomBytes(8).toString('hex');
  const apiKey = `cd_${hex}_${crypto.randomBytes(32).toString('base64url')}`;
  db.transaction(() => {
    account.id = Number(db.prepare('INSERT INTO accounts (name, region, created_at) VALUES (?, ?, ?)')
      .run(account.name, account.region, account.created_at).lastInsertRowid);
    db.prepare('INSERT INTO api_keys (id, account_id, key_sha256, name, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(`key_${hex}`, account.id, sha256hex(apiKey), 'first', account.created_at);
  })();
  db.close();
  process.stdout.write(JSON.stringify({ ...account, api_key: apiKey }, null, 2) + '\n');
}

function cmdServe(opt) {
  const fastify = require('fastify');
  const db = openDb(dbPath(opt));
  db.exec(SCHEMA);

  const q = {
    key: db.prepare(`SELECT k.id AS key_id, k.key_sha256, a.id AS account_id, a.region
                     FROM api_keys k JOIN accounts a ON a.id = k.account_id
                     WHERE k.id = ? AND k.revoked_at IS NULL`),
    groupExists: db.prepare('SELECT 1 FROM groups WHERE account_id = ? AND id = ?').pluck(),
    typeExists: db.prepare('SELECT 1 FROM message_types WHERE account_id = ? AND id = ?').pluck(),
    insertContact: db.prepare(`INSERT INTO contacts (account_id, phone, created_at, updated_at)
                               VALUES (?, ?, ?, ?) ON CONFLICT (account_id, phone) DO NOTHING`),
    contactIdByPhone: db.prepare('SELECT id FROM contacts WHERE account_id = ? AND phone = ?').pluck(),
    contactByPhone: db.prepare('SELECT * FROM contacts WHERE account_id = ? AND phone = ?'),
    contactById: db.prepare('SELECT * FROM contacts WHERE account_id = ? AND id = ?'),
    contactGroups: db.prepare('SELECT group_id FROM contact_groups WHERE contact_id = ? ORDER BY group_id').pluck(),
    consentState: db.prepare('SELECT state FROM consents WHERE contact_id = ? AND scope = ?').pluck(),
    upsertConsent: db.prepare(`INSERT INTO consents (contact_id, scope, state, updated_at) VALUES (?, ?, ?, ?)
                               ON CONFLICT (contact_id, scope) DO UPDATE SET state = excluded.state,
                               updated_at = excluded.updated_at`),
    lastEvent: db.prepare('SELECT seq, hash FROM events WHERE account_id = ? ORDER BY seq DESC LIMIT 1'),
    insertEvent: db.prepare(`INSERT INTO events (account_id, seq, contact_id, phone, scope, old_state,
                               new_state, surface, channel, keyword, disclosure_sha256, ip, user_agent, site,
                               session, ext_ref, credential_id, request_id, created_at, prev_hash, hash)
                             VALUES (@account_id, @seq, @contact_id, @phone, @scope, @old_state,
                               @new_state, @surface, @channel, @keyword, @disclosure_sha256, @ip, @user_agent,
                               @site, @session, @ext_ref, @credential_id, @request_id, @created_at,
                               @prev_hash, @hash)`),
  };

  // One IMMEDIATE transaction per consent: contact upsert, consent upsert, chained event.
  // better-sqlite3 is synchronous, so each request waits for its own commit (and fsync).
  const recordConsent = db.transaction((auth, phone, body, req) => {
    const ts = now();
    q.insertContact.run(auth.account_id, phone, ts, ts);
    const contactId = q.contactIdByPhone.get(auth.account_id, phone);
    const oldState = q.consentState.get(contactId, body.scope) ?? null;
    q.upsertConsent.run(contactId, body.scope, body.state, ts);
    const last = q.lastEvent.get(auth.account_id);
    const ev = {
      account_id: auth.account_id,
      channel: body.channel ?? 'api',
      contact_id: contactId,
      created_at: ts,
      credential_id: auth.key_id,
      disclosure_sha256: body.disclosure == null ? null : sha256hex(body.disclosure),
      ext_ref: body.ext_ref ?? null,
      ip: body.ip ?? req.ip ?? null,
      keyword: null,
      new_state: body.state,
      old_state: oldState,
      phone,
      request_id: req.id,
      scope: body.scope,
      seq: last ? last.seq + 1 : 1,
      prev_hash: last ? last.hash : GENESIS,
      session: null,
      site: null,
      surface: 'native',
      user_agent: body.user_agent ?? req.headers['user-agent'] ?? null,
    };
    // Like consentd's ledger: the hash is the SHA-256 of the canonical JSON (sorted keys, no
    // spaces) of the event's content, prev_hash included.
    ev.hash = sha256hex(JSON.stringify(ev, CANON_KEYS));
    ev.id = Number(q.insertEvent.run(ev).lastInsertRowid);
    return ev;
  });

  // issue 10: the ProTexting opt-in flow, the same work as consentd's: contact upsert, group
  // membership, each group not yet opted in marked pending (a chained event each), a flow,
  // and the CTA queued (after the per-number CTA cap is counted), in one transaction.
  Object.assign(q, {
    insertGroup: db.prepare('INSERT INTO groups (account_id, name) VALUES (?, ?)'),
    addGroup: db.prepare('INSERT OR IGNORE INTO contact_groups (contact_id, group_id) VALUES (?, ?)'),
    insertFlow: db.prepare(`INSERT INTO flows (id, account_id, contact_id, phone, scopes, disclosure,
                              confirm_text, status, created_at, expires_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`),
    ctaCount: db.prepare(`SELECT count(*) FROM messages WHERE account_id = ? AND to_phone = ? AND kind = 'cta'
                            AND created_at >= ? AND status <> 'refused'`).pluck(),
    insertMessage: db.prepare(`INSERT INTO messages (id, account_id, contact_id, to_phone, text, kind, scope,
                                 status, flow_id, created_at) VALUES (?, ?, ?, ?, ?, 'cta', ?, ?, ?, ?)`),
  });
  const appendEvent = (auth, contactId, phone, scope, oldState, newState, disclosure, req, ts) => {
    const last = q.lastEvent.get(auth.account_id);
    const ev = {
      account_id: auth.account_id, channel: 'sms', contact_id: contactId, created_at: ts,
      credential_id: auth.key_id, disclosure_sha256: sha256hex(disclosure), ext_ref: null, ip: req.ip ?? null,
      keyword: null, new_state: newState, old_state: oldState, phone, request_id: req.id, scope,
      seq: last ? last.seq + 1 : 1, prev_hash: last ? last.hash : GENESIS, session: null, site: null,
      surface: 'protexting', user_agent: req.headers['user-agent'] ?? null,
    };
    ev.hash = sha256hex(JSON.stringify(ev, CANON_KEYS));
    q.insertEvent.run(ev);
  };
  const PT_CTA = 'Reply with YES to confirm your phone number. Msg&Data rates may apply.';
  const optInFlow = db.transaction((auth, phone, groups, req) => {
    const ts = now();
    q.insertContact.run(auth.account_id, phone, ts, ts);
    const contact = q.contactByPhone.get(auth.account_id, phone);
    for (const g of groups) q.addGroup.run(contact.id, g);
    const all = q.consentState.get(contact.id, 'all');
    const scopes = groups.map((g) => `group:${g}`);
    let asked = all === 'opted_out' ? [] : scopes.filter((s) => q.consentState.get(contact.id, s) !== 'opted_in');
    for (const s of asked) {
      const old = q.consentState.get(contact.id, s) ?? null;
      if (old === 'opted_out') continue;
      q.upsertConsent.run(contact.id, s, 'pending', ts);
      appendEvent(auth, contact.id, phone, s, old, 'pending', PT_CTA, req, ts);
    }
    if (asked.length) {
      const flowId = 'flow_' + crypto.randomBytes(16).toString('hex');
      q.insertFlow.run(flowId, auth.account_id, contact.id, phone, JSON.stringify(scopes), PT_CTA,
        'Your phone number is successfully confirmed', ts, new Date(Date.now() + 30 * 86400000).toISOString());
      const since = new Date(Date.now() - 86400000).toISOString();
      const over = q.ctaCount.get(auth.account_id, phone, since) >= 5;
      q.insertMessage.run('msg_' + crypto.randomBytes(16).toString('hex'), auth.account_id, contact.id, phone,
        PT_CTA, scopes[0], over ? 'refused' : 'queued', flowId, ts);
    }
    return { contact, optedOut: all === 'opted_out', groups: q.contactGroups.all(contact.id) };
  });

  // Logs: one JSON line per request on stderr, like consentd's access log (PEER_LOG=0: none).
  const accessLog = process.env.PEER_LOG !== '0';
  const app = fastify({
    logger: accessLog ? { level: 'info', stream: process.stderr } : false,
    // fastify's own two lines per request are replaced by the one in the onResponse hook.
    ...(fastify.LogController
      ? { logController: new fastify.LogController({ disableRequestLogging: true }) }
      : { disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    genReqId: () => crypto.randomBytes(16).toString('hex'),
  });
  if (accessLog) {
    app.addHook('onResponse', (req, reply, done) => {
      req.log.info({ method: req.method, path: req.url, status: reply.statusCode,
        ms: Number(reply.elapsedTime.toFixed(3)), ip: req.ip }, 'request');
      done();
    });
  }

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).send(errorBody(err.code, err.message, err.field));
    }
    if (err.validation) {
      const v = err.validation[0] || {};
      const field = (v.instancePath || '').replace(/^\//, '') || (v.params && v.params.missingProperty) || null;
      return reply.code(422).send(errorBody('invalid_request', err.message, field));
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.code(415).send(errorBody('unsupported_media_type', err.message));
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(errorBody('payload_too_large', err.message));
    if (err.statusCode === 400) return reply.code(400).send(errorBody('invalid_json', 'the body is not valid JSON'));
    req.log.error(err);
    log('error', 'request failed', { err: String(err && err.stack || err) });
    return reply.code(500).send(errorBody('internal', 'internal error'));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('not_found', 'no such route')));

  // Authorization: Bearer KEY. The key names its id (cd_<id>_<secret>); the row holds the
  // key's SHA-256, compared in constant time.
  const KEY_RE = /^cd_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/;
  const authenticate = (h) => {
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return undefined;
    const key = h.slice(7).trim();
    const m = KEY_RE.exec(key);
    if (!m) return undefined;
    const row = q.key.get(`key_${m[1]}`);
    const want = Buffer.from(row ? row.key_sha256 : GENESIS, 'hex');
    const same = crypto.timingSafeEqual(crypto.createHash('sha256').update(key).digest(), want);
    return row && same ? row : undefined;
  };
  app.addHook('onRequest', (req, reply, done) => {
    // issue 10: ProTexting's paths take the key as ?access_token=KEY.
    const token = req.url.startsWith('/v1/') ? new URL(req.url, 'http://x').searchParams.get('access_token') : null;
    const row = authenticate(token !== null ? `Bearer ${token}` : req.headers.authorization);
    if (!row) {
      reply.code(401).header('www-authenticate', 'Bearer').send(errorBody('unauthorized', 'missing or invalid API key'));
      return;
    }
    req.auth = row;
    done();
  });

  const nullableString = { type: ['string', 'null'] };
  const consentSchema = {
    type: 'object',
    properties: { scope: { type: 'string' }, state: { type: 'string' }, updated_at: { type: 'string' } },
  };
  const eventSchema = {
    type: 'object',
    properties: {
      id: { type: 'integer' }, seq: { type: 'integer' }, phone: { type: 'string' }, scope: { type: 'string' },
      old_state: nullableString, new_state: { type: 'string' }, surface: { type: 'string' },
      channel: nullableString, keyword: nullableString, disclosure_sha256: nullableString, ip: nullableString,
      user_agent: nullableString, site: nullableString, session: nullableString, ext_ref: nullableString,
      credential_id: nullableString, request_id: nullableString, created_at: { type: 'string' },
      hash: { type: 'string' }, prev_hash: { type: 'string' },
    },
  };
  const contactSchema = {
    type: 'object',
    properties: {
      id: { type: 'integer' }, phone: { type: 'string' },
      first_name: nullableString, last_name: nullableString, email: nullableString, birthday: nullableString,
      zip: nullableString, city: nullableString,
      params: { type: 'object', additionalProperties: true },
      custom: { type: 'object', additionalProperties: true },
      tags: { type: 'array', items: { type: 'string' } },
      groups: { type: 'array', items: { type: 'integer' } },
      created_at: { type: 'string' }, updated_at: { type: 'string' },
    },
  };

  app.post('/api/v1/consents', {
    schema: {
      body: {
        type: 'object',
        required: ['phone', 'scope', 'state'],
        properties: {
          phone: { type: 'string', minLength: 1, maxLength: 64 },
          scope: { type: 'string', pattern: '^(all|group:[0-9]+|type:[A-Za-z0-9_.:-]{1,64})$' },
          state: { type: 'string', enum: ['pending', 'opted_in', 'opted_out'] },
          channel: { type: 'string', enum: ['api', 'sms', 'web', 'email', 'paper', 'import'] },
          disclosure: { type: 'string', maxLength: 8192 },
          ip: { type: 'string', maxLength: 64 },
          user_agent: { type: 'string', maxLength: 1024 },
          ext_ref: { type: 'string', maxLength: 256 },
        },
      },
      response: { 201: { type: 'object', properties: { consent: consentSchema, event: eventSchema } } },
    },
  }, (req, reply) => {
    const body = req.body;
    const phone = normalizePhone(body.phone, req.auth.region);
    if (!phone) throw new ApiError(422, 'invalid_phone', 'not a valid phone number', 'phone');
    if (body.scope.startsWith('group:') && !q.groupExists.get(req.auth.account_id, Number(body.scope.slice(6)))) {
      throw new ApiError(404, 'not_found', 'no such group', 'scope');
    }
    if (body.scope.startsWith('type:') && !q.typeExists.get(req.auth.account_id, body.scope.slice(5))) {
      throw new ApiError(404, 'not_found', 'no such message type', 'scope');
    }
    const ev = recordConsent(req.auth, phone, body, req);
    reply.code(201);
    return {
      consent: { scope: ev.scope, state: ev.new_state, updated_at: ev.created_at },
      event: ev,
    };
  });

  const contactJson = (row) => ({
    id: row.id,
    phone: row.phone,
    first_name: row.first_name,
    last_name: row.last_name,
    email: row.email,
    birthday: row.birthday,
    zip: row.zip,
    city: row.city,
    params: JSON.parse(row.params),
    custom: JSON.parse(row.custom),
    tags: JSON.parse(row.tags),
    groups: q.contactGroups.all(row.id),
    created_at: row.created_at,
    updated_at: row.updated_at,
  });

  app.get('/api/v1/contacts/:id', {
    schema: { response: { 200: contactSchema } },
  }, (req, reply) => {
    const id = req.params.id;
    let row;
    if (/^[0-9]{1,9}$/.test(id)) {
      row = q.contactById.get(req.auth.account_id, Number(id));
    } else {
      const phone = normalizePhone(id, req.auth.region);
      if (phone) row = q.contactByPhone.get(req.auth.account_id, phone);
    }
    if (!row) throw new ApiError(404, 'not_found', 'no such contact', null);
    return contactJson(row);
  });

  // issue 16: GET /api/v1/check?to=&scope= -- the contact by its number, then the consent for
  // the scope and for 'all', decided as consentd does (an opt-out of all beats everything).
  const decide = (all, scoped, scopeIsAll) => {
    if (all === 'opted_out') return 'opted_out';
    if (!scopeIsAll) {
      if (scoped === 'opted_out') return 'opted_out';
      if (scoped === 'opted_in') return 'opted_in';
    }
    if (all === 'opted_in') return 'opted_in';
    if (all === 'pending' || (!scopeIsAll && scoped === 'pending')) return 'pending_confirmation';
    return 'no_consent';
  };
  app.get('/api/v1/check', {
    schema: {
      querystring: {
        type: 'object',
        required: ['to'],
        properties: {
          to: { type: 'string', minLength: 1 },
          scope: { type: 'string', pattern: '^(all|group:[0-9]+|type:[A-Za-z0-9_.:-]{1,64})$' },
        },
      },
      response: {
        200: {
          type: 'object',
          properties: { phone: nullableString, scope: { type: 'string' }, allowed: { type: 'boolean' }, reason: { type: 'string' } },
        },
      },
    },
  }, (req) => {
    const scope = req.query.scope || 'all';
    const phone = normalizePhone(req.query.to, req.auth.region);
    if (!phone) return { phone: req.query.to.length <= 64 ? req.query.to : null, scope, allowed: false, reason: 'invalid_number' };
    const contactId = q.contactIdByPhone.get(req.auth.account_id, phone);
    let reason = 'no_consent';
    if (contactId !== undefined) {
      const all = q.consentState.get(contactId, 'all');
      const scoped = scope === 'all' ? all : q.consentState.get(contactId, scope);
      reason = decide(all, scoped, scope === 'all');
    }
    return { phone, scope, allowed: reason === 'opted_in', reason };
  });

  // issue 16: POST /api/v1/contacts, an upsert by number (201 new, 200 existing): the contact.
  const contactFields = ['first_name', 'last_name', 'email', 'birthday', 'zip', 'city'];
  const updateStmts = new Map();
  const upsertContact = db.transaction((auth, phone, body) => {
    const ts = now();
    const fresh = q.insertContact.run(auth.account_id, phone, ts, ts).changes === 1;
    const sets = contactFields.filter((f) => body[f] !== undefined);
    if (sets.length) {
      const k = sets.join(',');
      let st = updateStmts.get(k);
      if (!st) {
        st = db.prepare(`UPDATE contacts SET ${sets.map((f) => `${f} = ?`).join(', ')}, updated_at = ?
                         WHERE account_id = ? AND phone = ?`);
        updateStmts.set(k, st);
      }
      st.run(...sets.map((f) => body[f]), ts, auth.account_id, phone);
    }
    return { fresh, row: q.contactByPhone.get(auth.account_id, phone) };
  });
  app.post('/api/v1/contacts', {
    schema: {
      body: {
        type: 'object',
        required: ['phone'],
        properties: {
          phone: { type: 'string', minLength: 1, maxLength: 64 },
          ...Object.fromEntries(contactFields.map((f) => [f, { type: ['string', 'null'], maxLength: 255 }])),
        },
      },
      response: { 200: contactSchema, 201: contactSchema },
    },
  }, (req, reply) => {
    const phone = normalizePhone(req.body.phone, req.auth.region);
    if (!phone) throw new ApiError(422, 'invalid_phone', 'not a valid phone number', 'phone');
    const { fresh, row } = upsertContact(req.auth, phone, req.body);
    reply.code(fresh ? 201 : 200);
    return contactJson(row);
  });

  app.post('/api/v1/groups', {
    schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 255 } } } },
  }, (req, reply) => {
    const id = Number(q.insertGroup.run(req.auth.account_id, req.body.name).lastInsertRowid);
    reply.code(201);
    return { id, name: req.body.name };
  });

  // issue 10: POST /v1/contacts-opt-in/create, answered in ProTexting's shape (JSON only).
  app.post('/v1/contacts-opt-in/create', (req, reply) => {
    const body = req.body && typeof req.body === 'object' ? req.body : {};
    const errors = [];
    const phone = normalizePhone(typeof body.PhoneNumber === 'string' && /^[0-9]+$/.test(body.PhoneNumber)
      ? '+' + body.PhoneNumber : body.PhoneNumber, req.auth.region);
    if (!phone) errors.push({ field: 'PhoneNumber', message: 'Phone Number is not a valid phone number.' });
    const groups = Array.isArray(body.GroupIds) ? body.GroupIds.map(Number) : [];
    if (!groups.length || groups.some((g) => !Number.isInteger(g) || !q.groupExists.get(req.auth.account_id, g))) {
      errors.push({ field: 'GroupIds', message: 'Group Ids contains an unknown group.' });
    }
    if (errors.length) return reply.code(422).send(errors);
    const r = optInFlow(req.auth, phone, groups, req);
    reply.code(201).header('cache-control', 'no-store, no-cache, must-revalidate, post-check=0, pre-check=0')
      .header('pragma', 'no-cache');
    return {
      Id: r.contact.id, Number: phone.slice(1), OptedOut: r.optedOut ? 1 : 0,
      FirstName: r.contact.first_name ?? '', LastName: r.contact.last_name ?? '', BirthDay: r.contact.birthday ?? '0000-00-00',
      Email: r.contact.email ?? '', Zip: r.contact.zip ?? '', City: r.contact.city ?? '',
      DateCreated: r.contact.created_at.replace('T', ' ').slice(0, 19), DateUpdated: r.contact.updated_at.replace('T', ' ').slice(0, 19),
      GroupIds: r.groups, CustomFieldIds: [],
    };
  });

  const listen = opt.listen || process.env.PEER_LISTEN || '127.0.0.1:8080';
  const colon = listen.lastIndexOf(':');
  const host = colon > 0 ? listen.slice(0, colon) : '127.0.0.1';
  const port = Number(colon >= 0 ? listen.slice(colon + 1) : listen);

  let closing = false;
  const stop = (sig) => {
    if (closing) return;
    closing = true;
    log('info', 'stopping', { signal: sig });
    app.close().then(() => { db.close(); process.exit(0); });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  app.listen({ host, port }).then(() => {
    log('info', 'listening', {
      listen: `${host}:${port}`, pid: process.pid, node: process.version,
      journal_mode: db.pragma('journal_mode', { simple: true }),
      synchronous: db.pragma('synchronous', { simple: true }),
    });
  }, (err) => {
    log('error', 'listen failed', { err: String(err) });
    process.exit(1);
  });
}

// The event's content fields, sorted: what the hash covers (all but the id and the hash).
const CANON_KEYS = [
  'account_id', 'channel', 'contact_id', 'created_at', 'credential_id', 'disclosure_sha256', 'ext_ref',
  'ip', 'keyword', 'new_state', 'old_state', 'phone', 'prev_hash', 'request_id', 'scope', 'seq', 'session',
  'site', 'surface', 'user_agent',
];

// ---------------------------------------------------------------------------- main

const { pos, opt } = parseArgs(process.argv.slice(2));
switch (pos[0]) {
  case 'migrate': cmdMigrate(opt); break;
  case 'account':
    if (pos[1] !== 'create') usage(2);
    cmdAccountCreate(pos[2], opt);
    break;
  case 'serve': cmdServe(opt); break;
  default: usage(pos.length ? 2 : 0);
}
