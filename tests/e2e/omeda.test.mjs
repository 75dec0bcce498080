// issue 12: the Omeda surface (seed 002), SMS opt in/out queue by message type.
// POST /webservices/rest/brand/{brandAbbreviation}/messageoptqueue with x-omeda-appid, all or
// nothing, the DeleteOptOut rule, every submission recorded. Outcomes are read back through
// the native API: consents, ledger events, submissions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, rawHttp, num } from './lib/server.mjs';
import { eventsOf, check, assertNoSanitizerReport, patchSettings, getMessage, hhmmIn, sleep } from './lib/msgkit.mjs';

// A version 7 UUID: its first 48 bits are the submission's time in ms (the submissions
// table is keyed on it, so that inserts append).
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const uuidMs = (u) => parseInt(u.replace(/-/g, '').slice(0, 12), 16);
const FINAL = 'There were errors with your submission. None of the Opts submitted in your request were created.';
const SUCCESS = 'Your submission was successful';

let srv;
let acme; // {key} of the account whose brand is ACME
let other; // {key} of another account (brand OTHER)

before(async () => {
    srv = await startServer({ accounts: [{ name: 'acme', brand: 'ACME' }, { name: 'other', brand: 'OTHER' },
        { name: 'limited', brand: 'LIM' }, { name: 'cross', brand: 'CROSS' }, { name: 'night', brand: 'NIGHT' }] });
    acme = { key: srv.accounts.acme.api_key };
    other = { key: srv.accounts.other.api_key };
    // Message types are the account's, with ids it chooses (native API).
    for (const [id, name] of [[6, 'Daily deals'], [7, 'Alerts'], [8, 'News'], [9, 'Events'], [10, 'Tips']]) {
        const r = await srv.v1('POST', '/message-types', { body: { id, name }, ...acme });
        assert.equal(r.status, 201, r.text);
    }
    // 4194 is a message type, but another account's.
    const r = await srv.v1('POST', '/message-types', { body: { id: 4194, name: 'Theirs' }, ...other });
    assert.equal(r.status, 201, r.text);
});
after(async () => {
    await srv?.stop();
    if (srv) assertNoSanitizerReport(srv);
});

function omeda(body, { appid = acme.key, brand = 'ACME', slash = false, headers = {}, method = 'POST' } = {}) {
    const h = { ...headers };
    if (appid !== null) h['x-omeda-appid'] = appid;
    const p = `/webservices/rest/brand/${brand}/messageoptqueue${slash ? '/' : ''}`;
    return request(srv.url, method, p, { body, headers: h });
}

async function consentsOf(phone, k = acme) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}/consents`, k);
    if (r.status === 404) return null; // no such contact
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries(r.json.data.map((c) => [c.scope, c.state]));
}

async function submission(uuid, k = acme) {
    return srv.v1('GET', `/submissions/${uuid}`, k);
}

async function allEvents(k = acme) {
    const r = await srv.v1('GET', '/events?limit=1000', k);
    assert.equal(r.status, 200, r.text);
    return r.json.data;
}

/** An Omeda error body: {"Errors":[{"Error":"..."}]} (plus Submission when it names one). */
function omedaErrors(res) {
    assert.ok(res.json && Array.isArray(res.json.Errors), `not an Omeda error body: ${res.status} ${res.text}`);
    for (const e of res.json.Errors) assert.deepEqual(Object.keys(e), ['Error']);
    return res.json.Errors.map((e) => e.Error);
}

const national = (n) => num(n).slice(2); // "+16465550150" -> "6465550150"

// seed 002, Request Examples, first JSON example, verbatim.
test('seed example 1: OptIn for type 6 of +16303303039 with DeleteOptOut 1', async () => {
    const r = await omeda(JSON.stringify(JSON.parse(`{
"SiteId": 498,
"SiteSessionId": "ECD8906C31075A7A44F98F39E5F57671",
"PhoneNumber": "6303303039",
"CountryCallingCode": 1,
"MessageOpts": [
{
"Status": 1,
"DeleteOptOut": 1,
"MessageTypeId": [
6
]
}
]
}`)));
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.deepEqual(Object.keys(r.json), ['Submission', 'Success']);
    assert.match(r.json.Submission, UUID);
    assert.ok(Math.abs(uuidMs(r.json.Submission) - Date.now()) < 60000, r.json.Submission);
    assert.equal(r.json.Success, SUCCESS);

    // Outcome: the contact is opted in to type 6, with one event carrying the submission.
    assert.deepEqual(await consentsOf('+16303303039'), { 'type:6': 'opted_in' });
    const evs = await eventsOf(srv, '+16303303039', acme);
    assert.equal(evs.length, 1);
    const e = evs[0];
    assert.equal(e.scope, 'type:6');
    assert.equal(e.old_state, null);
    assert.equal(e.new_state, 'opted_in');
    assert.equal(e.surface, 'omeda');
    assert.equal(e.ext_ref, r.json.Submission); // the Submission uuid is the events' ext_ref
    assert.equal(e.site, '498');
    assert.equal(e.session, 'ECD8906C31075A7A44F98F39E5F57671');
    assert.ok(e.credential_id);

    // GET /api/v1/submissions/{uuid} matches the answer.
    const s = await submission(r.json.Submission);
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.uuid, r.json.Submission);
    assert.equal(s.json.status, 200);
    assert.equal(s.json.result, 'success');
    assert.deepEqual(s.json.answer, r.json);
    assert.equal(s.json.site, '498');
    assert.equal(s.json.session, 'ECD8906C31075A7A44F98F39E5F57671');
    assert.equal(s.json.phone, '+16303303039');
    assert.deepEqual(s.json.opts, [{ message_type_id: 6, state: 'opted_in', delete_opt_out: true,
        outcome: 'written', event_seq: e.seq }]);
});

// seed 002, Request Examples, second JSON example, verbatim.
test('seed example 2: OptIn for type 7 of +17083303909 without DeleteOptOut', async () => {
    const r = await omeda(`{
"SiteId": 498,
"SiteSessionId": "ECD8906C31075A7A44F98F39E5F57671",
"PhoneNumber": "7083303909",
"CountryCallingCode": 1,
"MessageOpts": [
{
"Status": 1,
"DeleteOptOut": 0,
"MessageTypeId": [
7
]
}
]
}`, { slash: true });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { Submission: r.json.Submission, Success: SUCCESS });
    assert.deepEqual(await consentsOf('+17083303909'), { 'type:7': 'opted_in' });
    const evs = await eventsOf(srv, '+17083303909', acme);
    assert.deepEqual(evs.map((e) => [e.scope, e.new_state, e.ext_ref]), [['type:7', 'opted_in', r.json.Submission]]);
    assert.equal((await check(srv, '+17083303909', { scope: 'type:7', ...acme })).allowed, true);
});

// seed 002, Failed Submission, JSON example: a MessageTypeId that is not this account's.
test('seed error example: a MessageTypeId of another account is refused, nothing written', async () => {
    const before = (await allEvents()).length;
    const r = await omeda({ PhoneNumber: '6303030983', CountryCallingCode: 1,
        MessageOpts: [{ Status: 1, MessageTypeId: [4194] }] });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(Object.keys(r.json), ['Submission', 'Errors']);
    assert.match(r.json.Submission, UUID);
    assert.deepEqual(r.json.Errors, [
        { Error: 'MessageOpts submission (4194): the MessageTypeId is not authorized for Opts for the AppId submitted. Phone number 6303030983 was not opted in.' },
        { Error: FINAL },
    ]);
    assert.equal(await consentsOf('+16303030983'), null); // no contact was created
    assert.equal((await allEvents()).length, before);
    // The refused submission is recorded with what it answered.
    const s = await submission(r.json.Submission);
    assert.equal(s.status, 200, s.text);
    assert.equal(s.json.status, 400);
    assert.equal(s.json.result, 'rejected');
    assert.deepEqual(s.json.answer, r.json);
    assert.deepEqual(s.json.opts.map((o) => [o.message_type_id, o.outcome, o.event_seq]), [[4194, 'unknown_type', null]]);
    // The other account does not see it.
    assert.equal((await submission(r.json.Submission, other)).status, 404);
});

test('all or nothing: a valid first opt and an invalid second write nothing', async () => {
    const phone = num(1);
    const before = (await allEvents()).length;
    // An unknown type second.
    let r = await omeda({ PhoneNumber: national(1), CountryCallingCode: 1,
        MessageOpts: [{ Status: 1, MessageTypeId: [8] }, { Status: 1, MessageTypeId: [99] }] });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(r.json.Errors, [
        { Error: `MessageOpts submission (99): the MessageTypeId is not authorized for Opts for the AppId submitted. Phone number ${national(1)} was not opted in.` },
        { Error: FINAL },
    ]);
    assert.equal(await consentsOf(phone), null);
    assert.equal((await allEvents()).length, before);
    let s = await submission(r.json.Submission);
    assert.deepEqual(s.json.opts.map((o) => [o.message_type_id, o.outcome]), [[8, 'not_applied'], [99, 'unknown_type']]);
    // A malformed second opt (Status 2), and a type of another account in the same request:
    // every fault is listed, then the final line.
    r = await omeda({ PhoneNumber: national(1), CountryCallingCode: 1,
        MessageOpts: [{ Status: 0, MessageTypeId: 8 }, { Status: 2, MessageTypeId: [9] }, { Status: 0, MessageTypeId: 4194 }] });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(omedaErrors(r), [
        'MessageOpts element 2: Status is required: 0 (opt out) or 1 (opt in).',
        `MessageOpts submission (4194): the MessageTypeId is not authorized for Opts for the AppId submitted. Phone number ${national(1)} was not opted out.`,
        FINAL,
    ]);
    assert.equal(await consentsOf(phone), null);
    assert.equal((await allEvents()).length, before);
    s = await submission(r.json.Submission);
    assert.equal(s.json.result, 'rejected');
    assert.deepEqual(s.json.answer, r.json);
});

test('the request\'s own faults: each listed, in Omeda\'s words, nothing written', async () => {
    const before = (await allEvents()).length;
    let r = await omeda({});
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.Submission, UUID);
    assert.deepEqual(omedaErrors(r), ['CountryCallingCode is required.', 'PhoneNumber is required.', FINAL]);
    r = await omeda({ SiteId: 'x', SiteSessionId: 5, CountryCallingCode: 1, PhoneNumber: '6465550123',
        MessageOpts: [{ Status: 1, MessageTypeId: [6], DeleteOptOut: 3 }, 'x', { Status: 1 }] });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(omedaErrors(r), [
        'SiteId must be an integer.',
        'SiteSessionId must be a string of at most 127 characters.',
        'MessageOpts element 1: DeleteOptOut must be 0 or 1.',
        'MessageOpts element 2 must be an object.',
        'MessageOpts element 3: MessageTypeId is required: an integer or an array of integers.',
        FINAL,
    ]);
    r = await omeda({ CountryCallingCode: 1, PhoneNumber: '6461234567', MessageOpts: [{ Status: 1, MessageTypeId: 6 }] });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(omedaErrors(r), ['PhoneNumber 6461234567 is not a valid cell phone number for CountryCallingCode 1.', FINAL]);
    r = await omeda({ CountryCallingCode: 1, PhoneNumber: 'abc', MessageOpts: {} });
    assert.deepEqual(omedaErrors(r), [
        'PhoneNumber must be an integer: the cell phone number without its country calling code.',
        'MessageOpts must be an array.', FINAL]);
    r = await omeda('{"CountryCallingCode":1,');
    assert.equal(r.status, 400);
    assert.deepEqual(omedaErrors(r), ['The request body must be a JSON object.', FINAL]);
    assert.equal((await allEvents()).length, before);
    assert.equal(await consentsOf('+16465550123'), null);
});

// seed 002: "If omitted, the default content type is application/json"; others are a 400.
test('content type: JSON is the default; another type is a 400 in Omeda\'s form', async () => {
    const body = JSON.stringify({ CountryCallingCode: 1, PhoneNumber: national(2), MessageOpts: [{ Status: 1, MessageTypeId: 8 }] });
    let r = await rawHttp(srv.port, { path: '/webservices/rest/brand/ACME/messageoptqueue', body,
        headers: { 'x-omeda-appid': acme.key } }); // no Content-Type at all
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.Success, SUCCESS);
    assert.deepEqual(await consentsOf(num(2)), { 'type:8': 'opted_in' });

    const before = (await allEvents()).length;
    r = await omeda(JSON.stringify({ CountryCallingCode: 1, PhoneNumber: national(3), MessageOpts: [{ Status: 1, MessageTypeId: 8 }] }),
        { headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.Submission, UUID);
    assert.deepEqual(omedaErrors(r), ['Content type text/plain is not supported: send application/json.', FINAL]);
    r = await omeda('<Opts/>', { headers: { 'Content-Type': 'application/xml' } });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(omedaErrors(r), ['Content type application/xml is not supported: send application/json.', FINAL]);
    assert.equal(await consentsOf(num(3)), null);
    assert.equal((await allEvents()).length, before);
});

// seed 002, DeleteOptOut Rules table.
test('DeleteOptOut: an IN where an OUT exists is not written unless DeleteOptOut is 1', async () => {
    const phone = num(4);
    const base = { SiteId: 12, CountryCallingCode: 1, PhoneNumber: national(4) };
    let r = await omeda({ ...base, MessageOpts: [{ Status: 0, MessageTypeId: [9, 10] }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await consentsOf(phone), { 'type:9': 'opted_out', 'type:10': 'opted_out' });
    const outs = (await eventsOf(srv, phone, acme)).length;
    assert.equal(outs, 2);

    // "DeleteOptOut not set to 1 or omitted": the IN is not written, the OUT remains, and a
    // Message says why (once per IN not written).
    for (const opt of [{ Status: 1, MessageTypeId: 9 }, { Status: 1, MessageTypeId: [9], DeleteOptOut: 0 }]) {
        r = await omeda({ ...base, MessageOpts: [opt] });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, { Submission: r.json.Submission, Success: SUCCESS, Messages: [
            `MessageOpts submission (9): an OUT exists for Phone number ${national(4)} and DeleteOptOut was not set to 1. The OptIn was not processed; the OUT remains.`,
        ] });
        assert.deepEqual(await consentsOf(phone), { 'type:9': 'opted_out', 'type:10': 'opted_out' });
        assert.equal((await eventsOf(srv, phone, acme)).length, outs);
        const s = await submission(r.json.Submission);
        assert.deepEqual(s.json.answer, r.json);
        assert.deepEqual(s.json.opts.map((o) => [o.outcome, o.event_seq]), [['kept_opt_out', null]]);
    }
    assert.equal((await check(srv, phone, { scope: 'type:9', ...acme })).allowed, false);

    // "DeleteOptOut = 1": the OUT is overwritten with the IN. Type 10 in the same
    // submission, without DeleteOptOut, stays out.
    r = await omeda({ ...base, MessageOpts: [{ Status: 1, DeleteOptOut: 1, MessageTypeId: [9] }, { Status: 1, MessageTypeId: [10] }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.Messages.length, 1);
    assert.match(r.json.Messages[0], /^MessageOpts submission \(10\): an OUT exists/);
    assert.deepEqual(await consentsOf(phone), { 'type:9': 'opted_in', 'type:10': 'opted_out' });
    const evs = await eventsOf(srv, phone, acme);
    assert.equal(evs.length, outs + 1);
    const last = evs.at(-1);
    assert.deepEqual([last.scope, last.old_state, last.new_state, last.ext_ref, last.site],
        ['type:9', 'opted_out', 'opted_in', r.json.Submission, '12']);
    assert.equal((await check(srv, phone, { scope: 'type:9', ...acme })).allowed, true);
    assert.equal((await check(srv, phone, { scope: 'type:10', ...acme })).allowed, false);
});

test('a STOP (opt-out of all) is not lifted by an opt of one type, even with DeleteOptOut 1', async () => {
    const phone = num(5);
    const r0 = await srv.v1('POST', '/consents', { body: { phone, scope: 'all', state: 'opted_out' }, ...acme });
    assert.equal(r0.status, 201, r0.text);
    const r = await omeda({ CountryCallingCode: 1, PhoneNumber: national(5), MessageOpts: [{ Status: 1, DeleteOptOut: 1, MessageTypeId: 6 }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.Messages, [
        `MessageOpts submission (6): Phone number ${national(5)} has opted out of all messages (STOP). The OptIn was not processed.`]);
    assert.deepEqual(await consentsOf(phone), { all: 'opted_out' });
    assert.equal((await eventsOf(srv, phone, acme)).length, 1);
});

test('PhoneNumber as a JSON number and as a string is one contact, the native one', async () => {
    const r1 = await omeda({ CountryCallingCode: 1, PhoneNumber: Number(national(6)), MessageOpts: [{ Status: 1, MessageTypeId: 6 }] });
    assert.equal(r1.status, 200, r1.text);
    const r2 = await omeda({ CountryCallingCode: '1', PhoneNumber: national(6), MessageOpts: [{ Status: 0, MessageTypeId: [7] }] });
    assert.equal(r2.status, 200, r2.text);
    assert.deepEqual(await consentsOf(num(6)), { 'type:6': 'opted_in', 'type:7': 'opted_out' });
    const list = await srv.v1('GET', `/contacts?q=${national(6)}`, acme);
    assert.equal(list.json.data.length, 1, list.text);
    assert.deepEqual((await eventsOf(srv, num(6), acme)).map((e) => e.ext_ref), [r1.json.Submission, r2.json.Submission]);
});

// DESIGN section 2: CountryCallingCode 1 + PhoneNumber 6303303039 is the contact every other
// surface names 16303303039 (ProTexting), +16303303039 (Octopush) or +1 (630) 330-3039.
test('CountryCallingCode 1 + PhoneNumber 6303303039 is the same contact as 16303303039', async () => {
    const a = await srv.v1('GET', '/contacts/16303303039', acme);
    assert.equal(a.status, 200, a.text); // created by seed example 1
    const b = await srv.v1('GET', `/contacts/${encodeURIComponent('+1 (630) 330-3039')}`, acme);
    assert.equal(b.json.id, a.json.id);
    assert.equal(a.json.phone, '+16303303039');
    // A native opt-out of the same number is the OUT the DeleteOptOut rule sees.
    const r0 = await srv.v1('POST', '/consents', { body: { phone: '16303303039', scope: 'type:7', state: 'opted_out' }, ...acme });
    assert.equal(r0.status, 201, r0.text);
    const r = await omeda({ CountryCallingCode: 1, PhoneNumber: 6303303039, MessageOpts: [{ Status: 1, MessageTypeId: [7] }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.Messages.length, 1);
    assert.deepEqual(await consentsOf('16303303039'), { 'type:6': 'opted_in', 'type:7': 'opted_out' });
});

test('the brand: the account\'s own in any case; another brand is 403, nothing written', async () => {
    const opts = { CountryCallingCode: 1, PhoneNumber: national(7), MessageOpts: [{ Status: 1, MessageTypeId: 6 }] };
    for (const brand of ['OTHER', 'NOSUCHBRAND', 'ACM']) {
        const r = await omeda(opts, { brand });
        assert.equal(r.status, 403, `${brand}: ${r.text}`);
        assert.deepEqual(Object.keys(r.json), ['Errors']);
        assert.equal(omedaErrors(r).length, 1);
    }
    // The two 403s read the same: nobody learns whether a brand exists.
    const a = await omeda(opts, { brand: 'OTHER' });
    const b = await omeda(opts, { brand: 'NOSUCHBRAND' });
    assert.equal(a.text, b.text);
    assert.equal(await consentsOf(num(7)), null);
    const r = await omeda(opts, { brand: 'acme' });
    assert.equal(r.status, 200, r.text);
    const r2 = await omeda({ ...opts, MessageOpts: [{ Status: 1, MessageTypeId: 7 }] }, { brand: 'AcMe', slash: true });
    assert.equal(r2.status, 200, r2.text);
    assert.deepEqual(await consentsOf(num(7)), { 'type:6': 'opted_in', 'type:7': 'opted_in' });
});

// seed 002: "The request will fail without a valid id" -> 403 Forbidden.
test('x-omeda-appid: missing, wrong, revoked, or another account\'s key is 403, nothing written', async () => {
    const k = await srv.v1('POST', '/keys', { body: { name: 'omeda' }, ...acme });
    assert.equal(k.status, 201, k.text);
    const opts = { CountryCallingCode: 1, PhoneNumber: national(8), MessageOpts: [{ Status: 1, MessageTypeId: 6 }] };
    let r = await omeda(opts, { appid: k.json.key });
    assert.equal(r.status, 200, r.text); // the new key works...
    const d = await srv.v1('DELETE', `/keys/${k.json.id}`, acme);
    assert.equal(d.status, 204, d.text);
    const before = (await allEvents()).length;
    const otherBefore = (await allEvents(other)).length;
    const phone = num(9);
    const body = { ...opts, PhoneNumber: national(9) };
    const wrong = acme.key.slice(0, -4) + (acme.key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const texts = new Set();
    for (const [what, appid] of [['missing', null], ['empty', ''], ['wrong', wrong], ['garbage', 'not-a-key'],
        ['revoked', k.json.key], ['another account\'s', other.key]]) {
        r = await omeda(body, { appid });
        assert.equal(r.status, 403, `${what}: ${r.text}`);
        assert.deepEqual(Object.keys(r.json), ['Errors'], what);
        texts.add(r.text);
    }
    assert.equal(texts.size, 1); // one answer whatever was wrong
    // A native Bearer key is not an Omeda credential either.
    r = await omeda(body, { appid: null, headers: { Authorization: `Bearer ${acme.key}` } });
    assert.equal(r.status, 403, r.text);
    assert.equal(await consentsOf(phone), null);
    assert.equal(await consentsOf(phone, other), null);
    assert.equal((await allEvents()).length, before);
    assert.equal((await allEvents(other)).length, otherBefore);
});

test('other methods are 405 with Allow: POST, in Omeda\'s form', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
        for (const slash of [false, true]) {
            const r = await omeda(undefined, { method, slash });
            assert.equal(r.status, 405, `${method}: ${r.text}`);
            assert.equal(r.headers.allow, 'POST');
            assert.equal(omedaErrors(r).length, 1);
        }
    }
});

test('every error under /webservices/ is in Omeda\'s form: 404, 413', async () => {
    for (const p of ['/webservices/rest/brand/ACME/nothing', '/webservices/rest/brand/ACME/messageoptqueue/extra',
        '/webservices/rest', '/webservices']) {
        const r = await request(srv.url, 'POST', p, { body: {}, headers: { 'x-omeda-appid': acme.key } });
        assert.equal(r.status, 404, `${p}: ${r.text}`);
        assert.equal(omedaErrors(r).length, 1, p);
    }
    // Past the route's 64 KiB cap: 413, nothing written.
    const big = JSON.stringify({ CountryCallingCode: 1, PhoneNumber: national(10), SiteSessionId: 'x'.repeat(70000),
        MessageOpts: [{ Status: 1, MessageTypeId: 6 }] });
    const r = await rawHttp(srv.port, { path: '/webservices/rest/brand/ACME/messageoptqueue', body: big,
        headers: { 'x-omeda-appid': acme.key, 'Content-Type': 'application/json' } });
    assert.equal(r.status, 413, r.text || r.raw);
    assert.equal(omedaErrors(r).length, 1);
    assert.equal(await consentsOf(num(10)), null);
    // The native API keeps its own format beside it.
    const n = await srv.v1('GET', '/nothing', acme);
    assert.equal(n.status, 404);
    assert.ok(n.json.error);
});

test('many types in one submission, one transaction: one event each, one submission', async () => {
    const phone = num(11);
    const r = await omeda({ SiteId: '77', SiteSessionId: 'abc', CountryCallingCode: 1, PhoneNumber: national(11),
        MessageOpts: [{ Status: 1, MessageTypeId: [6, 7, 8] }, { Status: 0, MessageTypeId: 9 }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await consentsOf(phone), { 'type:6': 'opted_in', 'type:7': 'opted_in', 'type:8': 'opted_in', 'type:9': 'opted_out' });
    const evs = await eventsOf(srv, phone, acme);
    assert.equal(evs.length, 4);
    for (const e of evs) {
        assert.equal(e.ext_ref, r.json.Submission);
        assert.equal(e.site, '77');
        assert.equal(e.session, 'abc');
    }
    const s = await submission(r.json.Submission);
    assert.deepEqual(s.json.opts.map((o) => o.event_seq), evs.map((e) => e.seq));
    assert.deepEqual(s.json.opts.map((o) => o.state), ['opted_in', 'opted_in', 'opted_in', 'opted_out']);
    // No such submission (or another account's) is the native 404.
    const nf = await submission('00000000-0000-4000-8000-000000000000');
    assert.equal(nf.status, 404);
    assert.equal(nf.json.error.code, 'not_found');
});

test('Idempotency-Key: a retry gets the first answer, the same Submission, and writes nothing', async () => {
    const phone = num(12);
    const body = { CountryCallingCode: 1, PhoneNumber: national(12), MessageOpts: [{ Status: 1, MessageTypeId: [6, 7] }] };
    const headers = { 'Idempotency-Key': 'omeda-retry-1' };
    const a = await omeda(body, { headers });
    assert.equal(a.status, 200, a.text);
    const b = await omeda(body, { headers });
    assert.equal(b.status, 200, b.text);
    assert.equal(b.headers['idempotent-replayed'], 'true');
    assert.deepEqual(b.json, a.json);
    assert.equal((await eventsOf(srv, phone, acme)).length, 2);
    const c = await omeda({ ...body, MessageOpts: [{ Status: 0, MessageTypeId: 6 }] }, { headers });
    assert.equal(c.status, 400, c.text);
    assert.equal(omedaErrors(c).length, 1);
    assert.deepEqual(await consentsOf(phone), { 'type:6': 'opted_in', 'type:7': 'opted_in' });
});

test('openapi.json describes GET /api/v1/submissions/{uuid}', async () => {
    const r = await srv.api('GET', '/api/v1/openapi.json');
    assert.equal(r.status, 200);
    const op = r.json.paths['/api/v1/submissions/{uuid}']?.get;
    assert.ok(op, 'no GET /api/v1/submissions/{uuid}');
    const props = Object.keys(op.responses['200'].content['application/json'].schema.properties);
    assert.deepEqual(props, ['uuid', 'site', 'session', 'phone', 'status', 'result', 'answer', 'opts', 'created_at']);
});

// issue 9 part 5 on this surface: over the account's rate_limit, 429 in Omeda's form.
test('rate limit: 429 with Retry-After in Omeda\'s form, nothing written', async () => {
    const lim = { key: srv.accounts.limited.api_key };
    const t = await srv.v1('POST', '/message-types', { body: { id: 6, name: 'Deals' }, ...lim });
    assert.equal(t.status, 201, t.text);
    // The limit counts per credential: the Omeda client gets a key of its own.
    const k = await srv.v1('POST', '/keys', { body: { name: 'omeda' }, ...lim });
    assert.equal(k.status, 201, k.text);
    const p = await srv.v1('PATCH', '/settings', { body: { rate_limit: { limit: 2, window_seconds: 60 } }, ...lim });
    assert.equal(p.status, 200, p.text);
    const body = (n) => ({ CountryCallingCode: 1, PhoneNumber: national(n), MessageOpts: [{ Status: 1, MessageTypeId: 6 }] });
    for (const n of [13, 14]) {
        const r = await omeda(body(n), { appid: k.json.key, brand: 'LIM' });
        assert.equal(r.status, 200, r.text);
    }
    const r = await omeda(body(15), { appid: k.json.key, brand: 'LIM' });
    assert.equal(r.status, 429, r.text);
    assert.ok(Number(r.headers['retry-after']) >= 1, JSON.stringify(r.headers));
    assert.equal(omedaErrors(r).length, 1);
    assert.deepEqual(Object.keys(r.json), ['Errors']);
    assert.equal(await consentsOf(num(15), lim), null);
    assert.deepEqual(await consentsOf(num(14), lim), { 'type:6': 'opted_in' });
});

// issue 12 "done when": Omeda's CountryCallingCode 1 + PhoneNumber 6303303039 is the native
// contact ProTexting calls 16303303039 (DESIGN 2). ProTexting is built on its own branch
// (issue 10): this skips itself while the build has no ProTexting surface.
test('Omeda 1 + 6303303039 and ProTexting 16303303039 are one contact', async (t) => {
    const cross = { key: srv.accounts.cross.api_key };
    const probe = await request(srv.url, 'POST', `/v1/contacts/opt-out?access_token=${cross.key}`, { body: {} });
    if (probe.status === 404) {
        t.skip('no ProTexting surface in this build (issue 10)');
        return;
    }
    const ty = await srv.v1('POST', '/message-types', { body: { id: 6, name: 'Deals' }, ...cross });
    assert.equal(ty.status, 201, ty.text);
    const o = await omeda({ CountryCallingCode: 1, PhoneNumber: '6303303039', MessageOpts: [{ Status: 1, MessageTypeId: [6] }] },
        { appid: cross.key, brand: 'CROSS' });
    assert.equal(o.status, 200, o.text);
    const before = await srv.v1('GET', '/contacts/+16303303039', cross);
    assert.equal(before.status, 200, before.text);
    const p = await request(srv.url, 'POST', `/v1/contacts/opt-out?access_token=${cross.key}`,
        { body: { PhoneNumber: '16303303039' } });
    assert.equal(p.status, 201, p.text);
    const after = await srv.v1('GET', '/contacts/16303303039', cross);
    assert.equal(after.json.id, before.json.id, 'one contact');
    assert.deepEqual(await consentsOf('+16303303039', cross), { all: 'opted_out', 'type:6': 'opted_in' });
    const evs = await eventsOf(srv, '+16303303039', cross);
    assert.deepEqual(evs.map((e) => [e.surface, e.scope, e.new_state]),
        [['omeda', 'type:6', 'opted_in'], ['protexting', 'all', 'opted_out']]);
    // ProTexting's opt-out is the OUT Omeda's rule now sees: the next IN is not written.
    const again = await omeda({ CountryCallingCode: 1, PhoneNumber: 6303303039, MessageOpts: [{ Status: 1, DeleteOptOut: 1, MessageTypeId: 6 }] },
        { appid: cross.key, brand: 'CROSS' });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.Messages.length, 1);
    assert.equal((await eventsOf(srv, '+16303303039', cross)).length, 2);
});

// Consent is the product (issue 8 item 1 on this surface): an Omeda OUT refuses what is
// still queued for that message type, in the same transaction; other types keep theirs.
test('an Omeda OUT refuses the queued messages of its type, and only those', async () => {
    const night = { key: srv.accounts.night.api_key };
    for (const [id, name] of [[6, 'Deals'], [7, 'Alerts']]) {
        const t = await srv.v1('POST', '/message-types', { body: { id, name }, ...night });
        assert.equal(t.status, 201, t.text);
    }
    const phone = num(16);
    const o = await omeda({ CountryCallingCode: 1, PhoneNumber: national(16), MessageOpts: [{ Status: 1, MessageTypeId: [6, 7] }] },
        { appid: night.key, brand: 'NIGHT' });
    assert.equal(o.status, 200, o.text);
    // Held by quiet hours (a window around now), so both stay queued.
    const now = Date.now();
    await patchSettings(srv, { quiet_hours: { start: hhmmIn(new Date(now - 3600e3), 'UTC'),
        end: hhmmIn(new Date(now + 3600e3), 'UTC') } }, night);
    const held = {};
    for (const scope of ['type:6', 'type:7']) {
        const m = await srv.v1('POST', '/messages', { body: { to: phone, text: `News of ${scope}`, scope }, ...night });
        assert.equal(m.status, 202, m.text);
        assert.ok(m.json.history.some((h) => /held for quiet hours/.test(h.detail ?? '')), m.text);
        held[scope] = m.json.id;
    }
    const out = await omeda({ CountryCallingCode: 1, PhoneNumber: national(16), MessageOpts: [{ Status: 0, MessageTypeId: 6 }] },
        { appid: night.key, brand: 'NIGHT' });
    assert.equal(out.status, 200, out.text);
    const m6 = await getMessage(srv, held['type:6'], night);
    assert.equal(m6.status, 'refused', JSON.stringify(m6));
    assert.equal(m6.reason, 'opted_out');
    await sleep(200);
    assert.equal((await getMessage(srv, held['type:7'], night)).status, 'queued');
    // A new message of the type is refused when it is created.
    const again = await srv.v1('POST', '/messages', { body: { to: phone, text: 'More news', scope: 'type:6' }, ...night });
    assert.equal(again.status, 422, again.text);
    assert.equal(again.json.error.code, 'opted_out');
});
