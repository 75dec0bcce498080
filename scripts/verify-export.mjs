#!/usr/bin/env node
// Checks a consentd consent proof (GET /api/v1/export, JSON or CSV) without consentd: every
// event's hash is the SHA-256 of the canonical JSON of the event without "hash", and where two
// events follow each other (seq n-1, n) the second's prev_hash is the first's hash (64 zeros
// before seq 1). Usage: node scripts/verify-export.mjs FILE   (exit 0 when intact, 1 if not)
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';

// Canonical JSON as consentd writes it: keys sorted, no whitespace, jansson's short escapes,
// other control characters and all non-ASCII as \uXXXX (upper-case hex, UTF-16 units).
const ESC = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const str = (s) => '"' + Array.from(Array(s.length), (_, i) => {
    const c = s.charCodeAt(i);
    return ESC[s[i]] ?? (c < 0x20 || c > 0x7f ? '\\u' + c.toString(16).toUpperCase().padStart(4, '0') : s[i]);
}).join('') + '"';
const canon = (v) => (typeof v === 'string' ? str(v) : typeof v === 'number' ? String(v)
    : '{' + Object.keys(v).sort().map((k) => str(k) + ':' + canon(v[k])).join(',') + '}');

export const eventHash = ({ hash, ...content }) => createHash('sha256').update(canon(content)).digest('hex');

// whole: the export holds every event of the account (`consentd export` without --contact), so
// the seqs must run 1, 2, 3... without a gap.
export function verifyEvents(events, { whole = false } = {}) {
    const problems = [];
    events.forEach((e, i) => {
        if (eventHash(e) !== e.hash) problems.push(`seq ${e.seq}: hash mismatch`);
        const prev = events[i - 1];
        if (e.seq === 1 && e.prev_hash !== '0'.repeat(64)) problems.push('seq 1: prev_hash is not 64 zeros');
        if (prev && prev.seq >= e.seq) problems.push(`seq ${e.seq}: out of order`);
        if (whole && e.seq !== (prev?.seq ?? 0) + 1) problems.push(`seq ${e.seq}: events missing before it`);
        if (prev && prev.seq === e.seq - 1 && e.prev_hash !== prev.hash) problems.push(`seq ${e.seq}: prev_hash is not the hash of seq ${prev.seq}`);
    });
    return problems;
}

// CSV (RFC 4180): integer columns become numbers; a string cell that starts with ' had one added
// against spreadsheet formulas, so exactly one is dropped.
const INTS = new Set(['account_id', 'contact_id', 'created_ms', 'seq']);
export function parseCsv(text) {
    const rows = [[]];
    let cell = '', quoted = false, wasQuoted = false;
    for (let i = 0; i < text.length; i++) {
        const ch = text[i];
        if (quoted) {
            if (ch === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (ch === '"') quoted = false; else cell += ch;
        } else if (ch === '"') { quoted = wasQuoted = true; } else if (ch === ',' || ch === '\n') {
            rows.at(-1).push(wasQuoted && cell.startsWith("'") ? cell.slice(1) : cell);
            cell = ''; wasQuoted = false;
            if (ch === '\n') rows.push([]);
        } else if (ch !== '\r') cell += ch;
    }
    const [head, ...body] = rows.filter((r) => r.length > 1);
    return body.map((r) => Object.fromEntries(head.map((k, i) => [k, INTS.has(k) ? Number(r[i]) : r[i]])));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
    const text = readFileSync(process.argv[2] ?? 0, 'utf8');
    const doc = text.trimStart().startsWith('{') ? JSON.parse(text) : { events: parseCsv(text) };
    const events = doc.events;
    const problems = verifyEvents(events, { whole: doc.account !== undefined && doc.contact === undefined });
    for (const p of problems) console.error(p);
    console.log(problems.length ? `BROKEN: ${problems.length} problem(s)` : `ok: ${events.length} events`);
    process.exit(problems.length ? 1 : 0);
}
