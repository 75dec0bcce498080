// issue 13: the CURSOR CRM opt-in module (seed 003) under /rest/api/optin, with e-mail double
// opt-in over SMTP against a real SMTP server (lib/smtpsink.mjs, on smtp-server). Every test
// checks outcomes: the records (flows), consents, ledger events, CTA messages and the mails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, num, request, sha256hex, RFC3339_UTC } from './lib/server.mjs';
import { startSmtpSink } from './lib/smtpsink.mjs';
import {
    waitFor, listMessages, inbound, eventsOf, patchSettings, addSender, setConsent, sleep,
    assertNoSanitizerReport, SLOW,
} from './lib/msgkit.mjs';

const CTYPE = 'application/json; charset=UTF-8';
const BASE = '/rest/api/optin/v1/optins';
const SMTP_USER = 'mailer';
const SMTP_PASS = 'S3cret-smtp-Pa55word';

let srv;
let sink;
let next = 0;
const fresh = () => num(next++);
let group;

function basic(login, key) {
    return `Basic ${Buffer.from(`${login}:${key}`).toString('base64')}`;
}

/** A CURSOR call: Basic login:key of acme by default; auth: 'bearer', null, or a header value. */
function cur(method, p, { body, auth = 'basic', account = 'acme', headers = {}, raw } = {}) {
    const a = srv.accounts[account];
    const h = { ...headers };
    if (auth === 'basic') h.Authorization = basic(a.login ?? `${account}@e2e.example.com`, a.api_key);
    else if (auth === 'bearer') h.Authorization = `Bearer ${a.api_key}`;
    else if (auth) h.Authorization = auth;
    return request(srv.url, method, `${BASE}${p}`, { body: raw ?? body, headers: h, timeout: 20000 });
}

async function contact(phone, email) {
    const body = { phone };
    if (email) body.email = email;
    const r = await srv.v1('POST', '/contacts', { body });
    assert.ok(r.status === 201 || r.status === 200, r.text);
    return r.json;
}

function assertCursorError(r, status) {
    assert.equal(r.status, status, r.text);
    assert.equal(r.headers['content-type'], CTYPE);
    assert.equal(r.json.status, status);
    assert.equal(typeof r.json.message, 'string');
    assert.ok(r.json.message.length > 0);
}

async function flowsOf(extRef, key) {
    const r = await srv.v1('GET', `/flows?ext_ref=${encodeURIComponent(extRef)}`, { key });
    assert.equal(r.status, 200, r.text);
    return r.json.data;
}

async function consents(phone) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}/consents`);
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries(r.json.data.map((c) => [c.scope, c.state]));
}

before(async () => {
    sink = await startSmtpSink({ users: { [SMTP_USER]: SMTP_PASS } });
    srv = await startServer({ accounts: ['acme', 'beta'] });
    await addSender(srv, num(199), { isDefault: true });
    const g = await srv.v1('POST', '/groups', { body: { name: 'news' } });
    assert.equal(g.status, 201, g.text);
    group = g.json.id;
    await patchSettings(srv, {
        smtp: { url: sink.url, username: SMTP_USER, password: SMTP_PASS, from: 'optin@acme.example' },
    });
});
after(async () => {
    await srv?.stop();
    await sink?.close();
    if (srv) assertNoSanitizerReport(srv);
});

test('EMAIL opt-in: the mail carries a link that confirms once and cannot be forged', async () => {
    // issue 13: create -> mail received with a working link -> following it confirms.
    const phone = fresh();
    const c = await contact(phone, 'ada@example.com');
    const before = sink.mails.length;
    const r = await cur('POST', `/${c.id}`, {
        body: { optIns: [{ type: 'ALL', channel: 'EMAIL', extRefNo: 'ref-mail-1' }] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['content-type'], CTYPE);
    assert.equal(r.json.extRefNo, 'ref-mail-1');
    assert.equal(r.json.mailSent, true);
    assert.ok(Array.isArray(r.json.messages));
    assert.equal(r.json.optIns.length, 1);
    const rec = r.json.optIns[0];
    assert.match(rec.pk, /^flow_/);
    assert.equal(rec.type, 'ALL');
    assert.equal(rec.channel, 'EMAIL');
    assert.equal(rec.status, 'PENDING');
    assert.equal(rec.approval, true);
    assert.equal(rec.origin, 'API');
    assert.equal(rec.extRefNo, 'ref-mail-1');
    assert.match(rec.createdOn, RFC3339_UTC);
    assert.match(rec.updatedOn, RFC3339_UTC);
    // The answer came after the first attempt: the mail is there already.
    assert.equal(sink.mails.length, before + 1);
    const mail = sink.mails[before];
    assert.deepEqual(mail.to, ['ada@example.com']);
    assert.equal(mail.from, 'optin@acme.example');
    assert.match(mail.headers.subject, /confirm/i);
    assert.equal(mail.links.length, 1);
    // The mail shows a text meant for a mail (not the SMS CTA's "Reply YES").
    assert.match(mail.text, /please confirm that you want to receive our text messages at \+1646/);
    assert.doesNotMatch(mail.text, /Reply YES/);
    // The SMTP server got the stored password: it is usable.
    assert.ok(sink.auths.some((a) => a.username === SMTP_USER && a.ok));
    const link = mail.links[0];
    // Consent is only pending until the link is followed; nothing under "all" yet.
    assert.equal((await consents(phone)).all, 'pending');
    // A forged link (another MAC, another account id, another flow) is not valid.
    const [acct, flowId, mac] = link.slice(3).split('.');
    const forged = [`/c/${acct}.${flowId}.${mac.replace(/^./, (ch) => (ch === 'a' ? 'b' : 'a'))}`,
        `/c/${srv.accounts.beta.id ?? 2}.${flowId}.${mac}`, `/c/${acct}.flow_${'0'.repeat(32)}.${mac}`];
    for (const f of forged) {
        const g = await request(srv.url, 'POST', f, { body: '', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
        assert.equal(g.status, 404, `${f}: ${g.text}`);
    }
    assert.equal((await consents(phone)).all, 'pending');
    // GET shows the page without confirming (mail scanners open links).
    const page = await request(srv.url, 'GET', link);
    assert.equal(page.status, 200);
    assert.match(page.text, /<form method="post"/);
    assert.equal((await consents(phone)).all, 'pending');
    const ok = await request(srv.url, 'POST', link, { body: '', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await consents(phone)).all, 'opted_in');
    const o = await cur('GET', '/flows/ref-mail-1');
    assert.equal(o.status, 200, o.text);
    assert.equal(o.headers['content-type'], CTYPE);
    assert.equal(o.json.contactId, String(c.id));
    assert.equal(o.json.extRefNo, 'ref-mail-1');
    assert.equal(o.json.optIns[0].status, 'APPROVED');
    assert.equal(o.json.optIns[0].origin, 'EMAIL');
    // Once used, the link confirms nothing more: no new ledger event.
    const n = (await eventsOf(srv, phone)).length;
    const again = await request(srv.url, 'POST', link, { body: '', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(again.status, 200);
    assert.equal((await eventsOf(srv, phone)).length, n);
    // The ledger has the request and the confirmation, both with the extRefNo.
    const evs = (await eventsOf(srv, phone)).filter((e) => e.scope === 'all');
    assert.deepEqual(evs.map((e) => [e.new_state, e.ext_ref]),
        [['pending', 'ref-mail-1'], ['opted_in', 'ref-mail-1']]);
    assert.equal(evs[0].surface, 'cursor');
    // The native views show the record as a flow.
    const [f] = await flowsOf('ref-mail-1');
    assert.equal(f.id, rec.pk);
    assert.equal(f.status, 'confirmed');
    assert.equal(f.confirmed_via, 'link');
    // The ledger hashes the text the mail showed.
    assert.ok(mail.text.includes(f.disclosure));
    assert.equal(evs[0].disclosure_sha256, sha256hex(f.disclosure));
});

test('SMS opt-in: the CTA goes out, YES approves, STOP revokes; an API opt-out revokes too', async () => {
    // issue 13: an SMS record sends the CTA and is confirmed by a YES; a confirmed flow whose
    // contact opts out becomes revoked (REVOKED here, "revoked" in the native flow shapes).
    const phone = fresh();
    const c = await contact(phone);
    const r = await cur('POST', `/${encodeURIComponent(phone)}`, {
        body: [{ type: `GROUP:${group}`, channel: 'SMS' }], auth: 'bearer',
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.mailSent, false);
    const ext = r.json.extRefNo;
    assert.match(ext, /\S/);
    assert.equal(r.json.optIns[0].extRefNo, ext); // generated, shared by the call's records
    assert.equal(r.json.optIns[0].status, 'PENDING');
    assert.equal(r.json.optIns[0].type, `GROUP:${group}`);
    const ctas = await listMessages(srv, { to: phone, kind: 'cta' });
    assert.equal(ctas.length, 1);
    assert.equal((await consents(phone))[`group:${group}`], 'pending');
    await inbound(srv, phone, num(199), 'YES');
    let o = await cur('GET', `/${c.id}`);
    assert.equal(o.status, 200, o.text);
    assert.equal(o.json.contactId, String(c.id));
    assert.equal(o.json.extRefNo, undefined);
    assert.equal(o.json.optIns.length, 1);
    assert.equal(o.json.optIns[0].status, 'APPROVED');
    assert.equal(o.json.optIns[0].origin, 'SMS');
    assert.equal((await consents(phone))[`group:${group}`], 'opted_in');
    // STOP: APPROVED -> REVOKED; the record is kept; nothing more goes out but the confirmation.
    const sentBefore = (await listMessages(srv, { to: phone })).length;
    await inbound(srv, phone, num(199), 'STOP');
    o = await cur('GET', `/flows/${ext}`);
    assert.equal(o.json.optIns[0].status, 'REVOKED');
    assert.equal(o.json.optIns[0].pk, r.json.optIns[0].pk);
    const [f] = await flowsOf(ext);
    assert.equal(f.status, 'revoked');
    const revoked = await srv.v1('GET', '/flows?status=revoked');
    assert.ok(revoked.json.data.some((x) => x.id === f.id));
    const after = await listMessages(srv, { to: phone });
    assert.equal(after.length, sentBefore + 1);
    assert.equal(after[0].kind, 'keyword_reply');
    // A new record for someone opted out of everything is refused (522), nothing made.
    const refused = await cur('POST', `/${c.id}`, { body: { optIns: [{ type: 'ALL', channel: 'SMS' }] } });
    assertCursorError(refused, 522);
    assert.equal((await cur('GET', `/${c.id}`)).json.optIns.length, 1);
    assert.equal((await listMessages(srv, { to: phone })).length, sentBefore + 1);

    // An opt-out through the native API revokes the confirmed records it covers.
    const p2 = fresh();
    const c2 = await contact(p2);
    const r2 = await cur('POST', `/${c2.id}`, {
        body: { optIns: [{ type: `GROUP:${group}`, channel: 'SMS' }, { type: 'ALL', channel: 'SMS', extRefNo: 'other-2' }] },
    });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json.optIns[0].extRefNo, 'other-2'); // the call's extRefNo is the first given
    await inbound(srv, p2, num(199), 'YES');
    assert.deepEqual((await cur('GET', `/${c2.id}`)).json.optIns.map((x) => x.status), ['APPROVED', 'APPROVED']);
    await setConsent(srv, p2, 'opted_out', { scope: `group:${group}` });
    const st = (await cur('GET', `/${c2.id}`)).json.optIns.map((x) => [x.type, x.status]);
    assert.deepEqual(st, [[`GROUP:${group}`, 'REVOKED'], ['ALL', 'APPROVED']]);
});

test('PUT flows/{extRefNo}: approval true confirms, false declines; 521 once nothing is pending', async () => {
    const phone = fresh();
    const c = await contact(phone, 'bob@example.com');
    const mails = sink.mails.length;
    const r = await cur('POST', `/${c.id}`, {
        body: { optIns: [{ type: 'ALL', channel: 'SMS', extRefNo: 'put-1' }, { type: `GROUP:${group}`, channel: 'EMAIL', extRefNo: 'put-1' }] },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.mailSent, true);
    assert.equal(sink.mails.length, mails + 1);
    // Decline the EMAIL record by its pk, approve the rest with the query's approval.
    const emailPk = r.json.optIns[1].pk;
    let u = await cur('PUT', '/flows/put-1?approval=true', { body: { optIns: [{ pk: emailPk, approval: false }] } });
    assert.equal(u.status, 200, u.text);
    assert.equal(u.headers['content-type'], CTYPE);
    assert.deepEqual(u.json.optIns.map((x) => [x.pk, x.status, x.approval]), [[emailPk, 'DECLINED', false]]);
    assert.equal((await consents(phone))[`group:${group}`], undefined); // the pending request withdrawn
    assert.equal((await consents(phone)).all, 'pending');
    // The declined link is dead.
    const link = sink.mails[mails].links[0];
    const g = await request(srv.url, 'GET', link);
    assert.equal(g.status, 410);
    // An empty list with approval=true approves what is still pending.
    u = await cur('PUT', '/flows/put-1?approval=true', { body: { optIns: [] } });
    assert.equal(u.status, 200, u.text);
    assert.deepEqual(u.json.optIns.map((x) => [x.type, x.status, x.origin]), [['ALL', 'APPROVED', 'API']]);
    assert.equal((await consents(phone)).all, 'opted_in');
    const evs = (await eventsOf(srv, phone));
    assert.ok(evs.every((e) => e.ext_ref === 'put-1'), JSON.stringify(evs));
    assert.deepEqual(evs.filter((e) => e.scope === 'all').map((e) => e.new_state), ['pending', 'opted_in']);
    // Nothing pending any more: 521, and nothing changes.
    u = await cur('PUT', '/flows/put-1?approval=false', { body: [] });
    assertCursorError(u, 521);
    assert.equal((await consents(phone)).all, 'opted_in');
    // An empty list without the query's approval is incomplete.
    const c2 = await contact(fresh());
    assert.equal((await cur('POST', `/${c2.id}`, { body: [{ type: 'ALL', channel: 'SMS', extRefNo: 'put-2' }] })).status, 200);
    assertCursorError(await cur('PUT', '/flows/put-2', { body: { optIns: [] } }), 522);
    assertCursorError(await cur('PUT', '/flows/put-2?approval=maybe', { body: [] }), 522);
    // A record naming nothing pending is 521; one naming nothing at all is 522.
    assertCursorError(await cur('PUT', '/flows/put-2', { body: [{ type: `GROUP:${group}`, channel: 'SMS' }] }), 521);
    assertCursorError(await cur('PUT', '/flows/put-2', { body: [{ approval: true }] }), 522);
    // By type and channel, approval false: declined.
    u = await cur('PUT', '/flows/put-2', { body: [{ type: 'ALL', channel: 'SMS', approval: false }] });
    assert.equal(u.status, 200, u.text);
    assert.equal(u.json.optIns[0].status, 'DECLINED');
    assertCursorError(await cur('PUT', '/flows/unknown-ref?approval=true', { body: [] }), 521);
});

test('POST with approval false: DECLINED at once, nothing sent, the request and refusal in the ledger', async () => {
    const phone = fresh();
    const c = await contact(phone, 'cy@example.com');
    const mails = sink.mails.length;
    const r = await cur('POST', `/${c.id}?approval=false`, {
        body: { optIns: [{ type: 'ALL', channel: 'SMS' }, { type: 'ALL', channel: 'EMAIL' }, { type: `GROUP:${group}`, channel: 'SMS', approval: true }] },
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.optIns.map((x) => [x.status, x.approval]),
        [['DECLINED', false], ['DECLINED', false], ['PENDING', true]]);
    assert.equal(r.json.mailSent, false);
    assert.equal(sink.mails.length, mails);
    const ctas = await listMessages(srv, { to: phone, kind: 'cta' });
    assert.equal(ctas.length, 1); // only the approved GROUP record's CTA
    const cs = await consents(phone);
    assert.equal(cs.all, undefined);
    assert.equal(cs[`group:${group}`], 'pending');
    const evs = (await eventsOf(srv, phone)).filter((e) => e.scope === 'all');
    assert.ok(evs.length >= 2);
    assert.ok(evs.every((e) => e.ext_ref === r.json.extRefNo));
    assert.equal(evs.at(-1).old_state, 'pending');
});

test('520, 521, 522: unknown contact, unknown flow, bad type or channel, no e-mail, malformed', async () => {
    const phone = fresh();
    const c = await contact(phone); // no e-mail
    const flows0 = (await srv.v1('GET', '/flows?limit=1000')).json.data.length;
    assertCursorError(await cur('POST', '/999999', { body: [{ type: 'ALL', channel: 'SMS' }] }), 520);
    assertCursorError(await cur('POST', `/${encodeURIComponent(num(150))}`, { body: [{ type: 'ALL', channel: 'SMS' }] }), 520);
    assertCursorError(await cur('GET', '/999999'), 520);
    assertCursorError(await cur('GET', '/flows/no-such-ref'), 521);
    const bad = [
        [{ type: 'EVERYTHING', channel: 'SMS' }],
        [{ type: 'GROUP:abc', channel: 'SMS' }],
        [{ type: 'GROUP:987654', channel: 'SMS' }], // no such group
        [{ type: 'ALL', channel: 'FAX' }],
        [{ type: 'ALL' }],
        [{ channel: 'SMS' }],
        [{ type: 'ALL', channel: 'SMS', approval: 'yes' }],
        [{ type: 'ALL', channel: 'EMAIL' }], // the contact has no e-mail
        [{ type: 'ALL', channel: 'SMS' }, { type: 'ALL', channel: 'EMAIL' }], // all or nothing
        [],
        { optIns: 'not json' },
        { optIns: 3 },
        ['x'],
    ];
    for (const body of bad) {
        assertCursorError(await cur('POST', `/${c.id}`, { body }), 522);
    }
    assertCursorError(await cur('POST', `/${c.id}`, { raw: '{"optIns":[', headers: { 'Content-Type': 'application/json' } }), 522);
    assertCursorError(await cur('POST', `/${c.id}`), 522);
    // Nothing was made by any of them.
    assert.equal((await srv.v1('GET', '/flows?limit=1000')).json.data.length, flows0);
    assert.equal((await listMessages(srv, { to: phone })).length, 0);
    assert.deepEqual(await consents(phone), {});
});

test('bodies: a bare array, {"optIns":[...]}, or a form field optIns holding JSON', async () => {
    const c = await contact(fresh());
    const form = `optIns=${encodeURIComponent(JSON.stringify([{ type: 'ALL', channel: 'SMS', extRefNo: 'form-1' }]))}`;
    const r = await cur('POST', `/${c.id}`, { raw: form, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.extRefNo, 'form-1');
    const u = await cur('PUT', '/flows/form-1', { raw: 'optIns=%5B%5D', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assertCursorError(u, 522); // empty, no approval in the query
    const u2 = await cur('PUT', '/flows/form-1?approval=TRUE', { raw: 'optIns=%5B%5D', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(u2.status, 200, u2.text);
    assert.equal(u2.json.optIns[0].status, 'APPROVED');
});

test('errors under the prefix are JSON {status, message}: 401, 404, 405', async () => {
    assertCursorError(await cur('GET', '/flows/x', { auth: null }), 401);
    assertCursorError(await cur('GET', '/nope/deeper/path'), 404);
    const m = await cur('DELETE', '/flows/x');
    assertCursorError(m, 405);
    assert.match(m.headers.allow, /GET/);
    const r = await request(srv.url, 'GET', '/rest/api/optin/v2/whatever');
    assertCursorError(r, 404);
    // The routes' body cap (64 KiB), answered in the same format.
    const big = JSON.stringify({ optIns: [{ type: 'ALL', channel: 'SMS', note: 'x'.repeat(70000) }] });
    assertCursorError(await cur('POST', '/1', { raw: big }), 413);
});

test('525: a refused or hanging SMTP server; records stay PENDING and the mail is retried', async () => {
    // issue 13: a 525 leaves nothing half-done: records kept PENDING, mail queued for retry.
    const phone = fresh();
    const c = await contact(phone, 'dee@example.com');
    const mails = sink.mails.length;
    sink.setMode('reject');
    let r;
    try {
        r = await cur('POST', `/${c.id}`, { body: [{ type: 'ALL', channel: 'EMAIL', extRefNo: 'fail-1' }] });
    } finally {
        sink.setMode('accept');
    }
    assert.equal(r.status, 525, r.text);
    assert.equal(r.headers['content-type'], CTYPE);
    assert.equal(r.json.status, 525);
    assert.match(r.json.message, /mail/i);
    assert.equal(r.json.mailSent, false);
    assert.ok(r.json.messages.some((m) => /could not be sent.*retried/.test(m)), JSON.stringify(r.json.messages));
    assert.equal(r.json.extRefNo, 'fail-1');
    assert.equal(r.json.optIns[0].status, 'PENDING');
    assert.equal(sink.mails.length, mails);
    assert.equal((await consents(phone)).all, 'pending');
    // Kept and retried (the first retry is due about 5 s later): the mail arrives, and works.
    const mail = await sink.waitForMail(mails + 1, { timeout: 15000 * SLOW });
    assert.deepEqual(mail.to, ['dee@example.com']);
    const ok = await request(srv.url, 'POST', mail.links[0], { body: '', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(ok.status, 200);
    assert.equal((await cur('GET', '/flows/fail-1')).json.optIns[0].status, 'APPROVED');

    // A server that never answers: the attempt gives up within the 5 s timeout: 525.
    const c2 = await contact(fresh(), 'eve@example.com');
    sink.setMode('timeout');
    const t0 = Date.now();
    try {
        r = await cur('POST', `/${c2.id}`, { body: [{ type: 'ALL', channel: 'EMAIL', extRefNo: 'fail-2' }] });
    } finally {
        sink.setMode('accept');
    }
    const took = Date.now() - t0;
    assert.equal(r.status, 525, r.text);
    assert.ok(took >= 4000 && took < 9000 * SLOW, `took ${took} ms`);
    assert.equal(r.json.optIns[0].status, 'PENDING');
    // A PUT approval confirms the record without the mail; the retry then sends nothing.
    const u = await cur('PUT', '/flows/fail-2?approval=true', { body: [] });
    assert.equal(u.status, 200, u.text);
    assert.equal(u.json.optIns[0].status, 'APPROVED');
    const n = sink.mails.length;
    await sleep(7000 * SLOW);
    assert.ok(sink.mails.slice(n).every((m) => !m.to.includes('eve@example.com')));
});

test('the SMTP password is stored usable but never answered or logged', async () => {
    const s = await srv.v1('GET', '/settings');
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.smtp.password, '***');
    assert.equal(s.json.smtp.username, SMTP_USER);
    assert.equal(s.json.smtp.url, sink.url);
    const body = { smtp: { url: sink.url, username: SMTP_USER, password: SMTP_PASS, from: 'optin@acme.example' } };
    const p1 = await srv.v1('PATCH', '/settings', { body, headers: { 'Idempotency-Key': 'smtp-1' } });
    assert.equal(p1.status, 200, p1.text);
    const p2 = await srv.v1('PATCH', '/settings', { body, headers: { 'Idempotency-Key': 'smtp-1' } });
    assert.equal(p2.status, 200, p2.text);
    assert.equal(p2.headers['idempotent-replayed'], 'true');
    for (const t of [s.text, p1.text, p2.text]) assert.ok(!t.includes(SMTP_PASS), t);
    assert.equal(p2.json.smtp.password, '***');
    // A PATCH without the password (or with the "***" shown) keeps the stored one.
    const p3 = await srv.v1('PATCH', '/settings', { body: { smtp: { ...body.smtp, password: '***' } } });
    assert.equal(p3.status, 200, p3.text);
    const c = await contact(fresh(), 'fay@example.com');
    const auths = sink.auths.length;
    const r = await cur('POST', `/${c.id}`, { body: [{ type: 'ALL', channel: 'EMAIL' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.mailSent, true);
    assert.ok(sink.auths.slice(auths).some((a) => a.password === SMTP_PASS && a.ok));
    // Bad settings are refused.
    for (const smtp of [{ url: 'http://x', from: 'a@b.c' }, { url: sink.url }, { url: sink.url, from: 'nobody' },
        { url: sink.url, from: 'a@b.c', extra: 1 }, { url: sink.url, from: 'a@b.c\r\nBcc: x@y.z' }, 'smtp://x']) {
        const b = await srv.v1('PATCH', '/settings', { body: { smtp } });
        assert.equal(b.status, 422, b.text);
        assert.equal(b.json.error.field, 'smtp');
    }
    // Never in a log line.
    assert.ok(!srv.stderr().includes(SMTP_PASS));
});

test('credentials: missing, wrong, revoked, another account\'s key (Basic and Bearer)', async () => {
    // issue 13: 401 for bad credentials; another account's valid key sees nothing (520/521).
    const phone = fresh();
    const c = await contact(phone);
    const r = await cur('POST', `/${c.id}`, { body: [{ type: 'ALL', channel: 'SMS', extRefNo: 'auth-1' }] });
    assert.equal(r.status, 200, r.text);
    const acme = srv.accounts.acme;
    const k = await srv.v1('POST', '/keys', { body: { name: 'cursor' } });
    assert.equal(k.status, 201, k.text);
    const login = acme.login ?? 'acme@e2e.example.com';
    assert.equal((await cur('GET', '/flows/auth-1', { auth: `Bearer ${k.json.key}` })).status, 200);
    assert.equal((await cur('GET', '/flows/auth-1', { auth: basic(login, k.json.key) })).status, 200);
    const d = await srv.v1('DELETE', `/keys/${k.json.id}`);
    assert.equal(d.status, 204, d.text);
    const refused = [
        null,
        'Bearer cd_0000000000000000_' + 'A'.repeat(43),
        basic(login, 'cd_0000000000000000_' + 'A'.repeat(43)),
        basic('someone-else@e2e.example.com', acme.api_key), // the login must be the key's
        basic(login, ''),
        'Basic !!!',
        `Bearer ${k.json.key}`, // revoked
        basic(login, k.json.key),
    ];
    for (const auth of refused) {
        for (const [m, p, body] of [['GET', '/flows/auth-1'], ['PUT', '/flows/auth-1?approval=true', []],
            ['GET', `/${c.id}`], ['POST', `/${c.id}`, [{ type: 'ALL', channel: 'SMS' }]]]) {
            assertCursorError(await cur(m, p, { auth, body }), 401);
        }
    }
    // Another account's valid key, in both styles: acme's contact and flow do not exist for it.
    for (const auth of ['basic', 'bearer']) {
        const opts = { auth, account: 'beta' };
        assertCursorError(await cur('GET', `/${c.id}`, opts), 520);
        assertCursorError(await cur('GET', `/${encodeURIComponent(phone)}`, opts), 520);
        assertCursorError(await cur('POST', `/${c.id}`, { ...opts, body: [{ type: 'ALL', channel: 'SMS' }] }), 520);
        assertCursorError(await cur('GET', '/flows/auth-1', opts), 521);
        assertCursorError(await cur('PUT', '/flows/auth-1?approval=true', { ...opts, body: [] }), 521);
    }
    // Nothing changed for acme: one pending record, one CTA, consent pending.
    const o = await cur('GET', '/flows/auth-1');
    assert.deepEqual(o.json.optIns.map((x) => x.status), ['PENDING']);
    assert.equal((await listMessages(srv, { to: phone, kind: 'cta' })).length, 1);
    assert.equal((await consents(phone)).all, 'pending');
    const betaFlows = await srv.v1('GET', '/flows', { key: srv.accounts.beta.api_key });
    assert.equal(betaFlows.json.data.length, 0);
});

test('the OpenAPI document describes the CURSOR routes and the smtp setting', async () => {
    const r = await srv.api('GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200);
    assert.ok(r.json.paths['/rest/api/optin/v1/optins/{contactId}'].post);
    assert.ok(r.json.paths['/rest/api/optin/v1/optins/flows/{extRefNo}'].put);
    assert.deepEqual(r.json.components.schemas.OptInInfoDTO.properties.status.enum,
        ['PENDING', 'APPROVED', 'DECLINED', 'REVOKED', 'EXPIRED']);
    assert.ok(r.json.components.schemas.Settings.properties.smtp);
});

test('TLS: STARTTLS is used when offered (an untrusted certificate fails, no plaintext fallback); smtps:// is TLS', async () => {
    // issue 13: smtp:// upgrades with STARTTLS when the server offers it, certificates verified.
    const dir = srv.dir;
    const key = path.join(dir, 'smtp.key');
    const cert = path.join(dir, 'smtp.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
        '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    const tlsSink = await startSmtpSink({ tls: { key: readFileSync(key), cert: readFileSync(cert) } });
    const beta = { key: srv.accounts.beta.api_key };
    try {
        const c = await srv.v1('POST', '/contacts', { body: { phone: fresh(), email: 'tls@example.com' }, key: beta.key });
        assert.equal(c.status, 201, c.text);
        for (const url of [tlsSink.url, `smtps://127.0.0.1:${sink.port}`]) {
            await patchSettings(srv, { smtp: { url, from: 'optin@beta.example' } }, beta);
            const mails = sink.mails.length;
            const r = await cur('POST', `/${c.json.id}`, { account: 'beta', auth: 'bearer', body: [{ type: 'ALL', channel: 'EMAIL' }] });
            assert.equal(r.status, 525, `${url}: ${r.text}`);
            assert.equal(r.json.mailSent, false);
            assert.equal(tlsSink.mails.length, 0);
            assert.equal(sink.mails.length, mails);
        }
    } finally {
        await patchSettings(srv, { smtp: null }, beta);
        await tlsSink.close();
    }
});

function sqlite(dbPath, sql) {
    return new Promise((resolve, reject) => {
        execFile('sqlite3', ['-cmd', '.timeout 5000', dbPath, sql], { timeout: 20000 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`sqlite3 ${sql}: ${err.message}\n${stderr}`));
            else resolve(stdout.split('\n').filter((l) => l.length));
        });
    });
}

test('the mailed link expires with its flow: EXPIRED, 410, and PUT finds nothing eligible', async () => {
    const phone = fresh();
    const c = await contact(phone, 'gus@example.com');
    const mails = sink.mails.length;
    const r = await cur('POST', `/${c.id}`, { body: [{ type: 'ALL', channel: 'EMAIL', extRefNo: 'exp-1' }] });
    assert.equal(r.status, 200, r.text);
    const link = (await sink.waitForMail(mails + 1)).links[0];
    // Its expiry passes (30 days by default: moved, not waited for); the sweep expires it.
    await sqlite(srv.dbPath, `UPDATE flows SET expires_ms = 1 WHERE id = '${r.json.optIns[0].pk}'`);
    await waitFor(async () => (await cur('GET', '/flows/exp-1')).json.optIns[0].status === 'EXPIRED',
        { what: 'the record to expire' });
    assert.equal((await request(srv.url, 'GET', link)).status, 410);
    const p = await request(srv.url, 'POST', link, { body: '', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(p.status, 410);
    assertCursorError(await cur('PUT', '/flows/exp-1?approval=true', { body: [] }), 521);
    assert.equal((await consents(phone)).all, undefined); // the pending request withdrawn
    assert.equal((await cur('GET', `/${c.id}`)).json.optIns[0].status, 'EXPIRED');
});
