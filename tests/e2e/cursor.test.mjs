// issue 13: the CURSOR CRM opt-in module (seed 003) under /rest/api/optin, with e-mail double
// opt-in over SMTP against a real SMTP server (lib/smtpsink.mjs, on smtp-server). Every test
// checks outcomes: the records (flows), consents, ledger events, CTA messages and the mails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, num, request, RFC3339_UTC } from './lib/server.mjs';
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
});
