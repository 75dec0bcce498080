// issue 10: the ProTexting surface (seed 000): POST /v1/contacts-opt-in/create with JSON and form
// bodies, the seed's contact shape in JSON and XML, every validation error (all failing fields
// listed), the SendCTAMessage rules, the YES path sending ConfirmMessage once, opt-out and its undo.
// Outcomes are read back through the native API: contacts, consents, ledger events, messages.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, num } from './lib/server.mjs';
import { addSender, inbound, eventsOf, setConsent, waitFor, assertNoSanitizerReport } from './lib/msgkit.mjs';
import {
    DEFAULT_CTA, DEFAULT_CONFIRM, CACHE_CONTROL, CONTACT_KEYS, LOCAL_TIME, create, optOut, undo, pt,
    digits, makeGroup, nativeContact, consentsOf, outTo, xmlErrors,
} from './lib/protexting.mjs';

const TZ = 'America/New_York';
const SENDER = num(190);
let srv;
let g1;
let g2;
let next = 0;
const fresh = () => num(next++);

before(async () => {
    srv = await startServer({ accounts: [{ name: 'acme', timezone: TZ }, 'seed', 'beta'] });
    await addSender(srv, SENDER, { isDefault: true });
    g1 = await makeGroup(srv, 'news');
    g2 = await makeGroup(srv, 'deals');
    // The many requests below must not meet the surface's default 60/s limit (tested apart).
    const r = await srv.v1('PATCH', '/settings', { body: { rate_limit: { limit: 100000, window_seconds: 1 } } });
    assert.equal(r.status, 200, r.text);
});
after(async () => {
    await srv?.stop();
    if (srv) assertNoSanitizerReport(srv);
});

/** "YYYY-MM-DD HH:MM:SS" of an RFC 3339 time in a zone. */
function localOf(rfc3339, timeZone) {
    const f = new Intl.DateTimeFormat('sv-SE', {
        timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
        second: '2-digit', hourCycle: 'h23',
    });
    return f.format(new Date(Math.floor(Date.parse(rfc3339) / 1000) * 1000));
}

describe('the seed example', () => {
    test('curl example (host changed, a valid number): 201, the exact shape, headers and outcome', async () => {
        // issue 10: the seed's curl with 16465550123 for its invalid number; a fresh account, so the
        // rate-limit headers are the seed's (60, 59) from the surface's default limit.
        const seed = srv.accounts.seed.api_key;
        const gid = await makeGroup(srv, 'seed-group', { key: seed });
        const r = await create(srv, { PhoneNumber: '16465550123', GroupIds: [gid] }, {
            key: seed, headers: { 'Content-Type': 'application/json' },
        });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.headers['content-type'], 'application/json; charset=UTF-8');
        assert.equal(r.headers['cache-control'], CACHE_CONTROL);
        assert.equal(r.headers.pragma, 'no-cache');
        assert.equal(r.headers['x-rate-limit-limit'], '60');
        assert.equal(r.headers['x-rate-limit-remaining'], '59');
        assert.equal(r.headers['x-rate-limit-reset'], '1');
        assert.deepEqual(Object.keys(r.json), CONTACT_KEYS);
        const native = await nativeContact(srv, '+16465550123', { key: seed });
        assert.ok(native, 'the contact exists natively');
        assert.deepEqual(r.json, {
            Id: native.id, Number: '16465550123', OptedOut: 0, FirstName: '', LastName: '',
            BirthDay: '0000-00-00', Email: '', Zip: '', City: '',
            DateCreated: localOf(native.created_at, 'UTC'), DateUpdated: localOf(native.updated_at, 'UTC'),
            GroupIds: [gid], CustomFieldIds: [],
        });
        assert.deepEqual(native.groups, [gid]);
        // A double opt-in flow: the group is pending, the CTA (seed default text) queued, nothing else.
        assert.deepEqual(await consentsOf(srv, '+16465550123', { key: seed }), { [`group:${gid}`]: 'pending' });
        const msgs = await outTo(srv, '+16465550123', { key: seed });
        assert.deepEqual(msgs.map((m) => [m.kind, m.text]), [['cta', DEFAULT_CTA]]);
        const ev = await eventsOf(srv, '+16465550123', { key: seed });
        assert.deepEqual(ev.map((e) => [e.scope, e.new_state, e.surface]), [[`group:${gid}`, 'pending', 'protexting']]);
    });

    test('a known contact with any text in its fields: the JSON is exactly what jansson writes', async () => {
        // seed 000 (the contact object), written as text (perf): quotes, backslashes, controls (short and \\u00XX
        // forms, upper-case hex), DEL, '/', and UTF-8 as is; the groups ascending, once each.
        const phone = fresh();
        const name = 'a"b\\c/d\u0001\u001f\u007f\b\f\n\r\t é€😀 <x>&';
        const c = await srv.v1('POST', '/contacts', { body: { phone, first_name: name, city: '\u2028' } });
        assert.equal(c.status, 201, c.text);
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g2, g1, g2] });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.json.FirstName, name);
        assert.equal(r.json.City, '\u2028');
        assert.deepEqual(r.json.GroupIds, [g1, g2].sort((a, b) => a - b));
        assert.ok(r.text.includes('"FirstName":"a\\"b\\\\c/d\\u0001\\u001F\u007f\\b\\f\\n\\r\\t é€😀 <x>&"'), r.text);
        const fresh2 = fresh();
        const n = await create(srv, { PhoneNumber: digits(fresh2), GroupIds: [g2, g1, g2] });
        assert.equal(n.status, 201, n.text);
        assert.deepEqual(n.json.GroupIds, [g1, g2].sort((a, b) => a - b));
        assert.deepEqual((await nativeContact(srv, fresh2)).groups, n.json.GroupIds);
    });

    test("the seed's own number 16461234567 is invalid: 422 PhoneNumber, nothing written", async () => {
        const r = await create(srv, { PhoneNumber: '16461234567', GroupIds: [g1] });
        assert.equal(r.status, 422, r.text);
        assert.deepEqual(r.json, [{ field: 'PhoneNumber', message: 'Phone Number is not a valid phone number.' }]);
        assert.equal(await nativeContact(srv, '+16461234567'), null);
    });

    test('DateCreated and DateUpdated are in the account time zone', async () => {
        const phone = fresh();
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] });
        assert.equal(r.status, 201, r.text);
        const native = await nativeContact(srv, phone);
        assert.match(r.json.DateCreated, LOCAL_TIME);
        assert.equal(r.json.DateCreated, localOf(native.created_at, TZ));
        assert.equal(r.json.DateUpdated, localOf(native.updated_at, TZ));
        assert.notEqual(localOf(native.created_at, TZ), localOf(native.created_at, 'UTC'));
    });

    test('Accept: application/xml answers the contact as the seed XML', async () => {
        const phone = fresh();
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1, g2] }, { xml: true });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.headers['content-type'], 'application/xml; charset=UTF-8');
        assert.equal(r.headers['cache-control'], CACHE_CONTROL);
        const c = await nativeContact(srv, phone);
        const d = localOf(c.created_at, TZ);
        const u = localOf(c.updated_at, TZ);
        assert.equal(r.text, '<?xml version="1.0" encoding="UTF-8"?>\n<response><item>' +
            `<Id>${c.id}</Id><Number>${digits(phone)}</Number><OptedOut>0</OptedOut><FirstName/><LastName/>` +
            '<BirthDay>0000-00-00</BirthDay><Email/><Zip/><City/>' +
            `<DateCreated>${d}</DateCreated><DateUpdated>${u}</DateUpdated>` +
            `<GroupIds><item>${g1}</item><item>${g2}</item></GroupIds><CustomFieldIds/></item></response>\n`);
    });

    test('a PHP form body (GroupIds[]=1&GroupIds[]=2) is the same request', async () => {
        const phone = fresh();
        const r = await create(srv, { form: `PhoneNumber=${digits(phone)}&GroupIds[]=${g1}&GroupIds[]=${g2}` });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json.GroupIds, [g1, g2]);
        assert.deepEqual(await consentsOf(srv, phone), { [`group:${g1}`]: 'pending', [`group:${g2}`]: 'pending' });
        assert.deepEqual((await outTo(srv, phone)).map((m) => m.kind), ['cta']);
    });

    test('CTAMessage is the CTA text; else the account cta_text; else the seed default', async () => {
        const a = fresh();
        let r = await create(srv, { PhoneNumber: digits(a), GroupIds: [g1], CTAMessage: 'Join ACME news? YES' });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual((await outTo(srv, a)).map((m) => m.text), ['Join ACME news? YES']);
        const beta = srv.accounts.beta.api_key;
        const bg = await makeGroup(srv, 'b', { key: beta });
        const p = await srv.v1('PATCH', '/settings', { key: beta, body: { cta_text: '{brand}: reply YES' } });
        assert.equal(p.status, 200, p.text);
        const b = fresh();
        r = await create(srv, { PhoneNumber: digits(b), GroupIds: [bg] }, { key: beta });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual((await outTo(srv, b, { key: beta })).map((m) => m.text), ['BETA: reply YES']);
    });

    test('a number first seen here is the same contact natively, in any format', async () => {
        // issue 10: "a number first seen through ProTexting is the same contact in the native API".
        const phone = fresh();
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] });
        assert.equal(r.status, 201, r.text);
        const nat = await srv.v1('POST', '/contacts', { body: { phone: `+1 (${phone.slice(2, 5)}) ${phone.slice(5, 8)}-${phone.slice(8)}` } });
        assert.equal(nat.status, 200, nat.text);
        assert.equal(nat.json.id, r.json.Id);
        const again = await create(srv, { PhoneNumber: `+1 ${phone.slice(2, 5)}-${phone.slice(5, 8)}-${phone.slice(8)}`, GroupIds: [g2] });
        assert.equal(again.status, 201, again.text);
        assert.equal(again.json.Id, r.json.Id);
        assert.deepEqual(again.json.GroupIds, [g1, g2]);
    });
});

describe('validation: 422 [{field, message}] listing every failing field', () => {
    const BLANK = [
        { field: 'PhoneNumber', message: 'Phone Number cannot be blank.' },
        { field: 'GroupIds', message: 'Group Ids cannot be blank.' },
    ];
    const bodies = {
        json: {},
        form: { form: '' },
        'text/plain (read as empty)': { raw: 'PhoneNumber is 16465550150', type: 'text/plain' },
        'broken JSON (read as empty)': { raw: '{"PhoneNumber":', type: 'application/json' },
    };
    for (const [name, body] of Object.entries(bodies)) {
        test(`an empty ${name} body lists both required fields, in JSON and XML`, async () => {
            let r = await create(srv, body);
            assert.equal(r.status, 422, r.text);
            assert.equal(r.headers['content-type'], 'application/json; charset=UTF-8');
            assert.deepEqual(r.json, BLANK);
            r = await create(srv, body, { xml: true });
            assert.equal(r.status, 422, r.text);
            assert.equal(r.headers['content-type'], 'application/xml; charset=UTF-8');
            assert.equal(r.text, '<?xml version="1.0" encoding="UTF-8"?>\n<response>' +
                '<item><field>PhoneNumber</field><message>Phone Number cannot be blank.</message></item>' +
                '<item><field>GroupIds</field><message>Group Ids cannot be blank.</message></item></response>\n');
        });
    }

    const cases = [
        ['an invalid number and an unknown group', (p) => ({ PhoneNumber: '16461234567', GroupIds: [g1, 999] }),
            (p) => `PhoneNumber=16461234567&GroupIds[]=${g1}&GroupIds[]=999`,
            [{ field: 'PhoneNumber', message: 'Phone Number is not a valid phone number.' },
                { field: 'GroupIds', message: 'Group Ids contains an unknown group: 999.' }]],
        ['group ids that are not ids', (p) => ({ PhoneNumber: digits(p), GroupIds: ['news'] }),
            (p) => `PhoneNumber=${digits(p)}&GroupIds[]=news`,
            [{ field: 'GroupIds', message: 'Group Ids must be a list of group ids.' }]],
        ['an empty GroupIds list', (p) => ({ PhoneNumber: digits(p), GroupIds: [] }), null,
            [{ field: 'GroupIds', message: 'Group Ids cannot be blank.' }]],
        ['a CTA over 4 SMS parts, a bad SendCTAMessage', (p) => ({
            PhoneNumber: digits(p), GroupIds: [g1], CTAMessage: 'a'.repeat(700), SendCTAMessage: 2,
        }), (p) => `PhoneNumber=${digits(p)}&GroupIds[]=${g1}&CTAMessage=${'a'.repeat(700)}&SendCTAMessage=2`,
        [{ field: 'CTAMessage', message: 'CTA Message is too long: 5 SMS parts, at most 4 are allowed.' },
            { field: 'SendCTAMessage', message: 'Send CTA Message must be either "1" or "0".' }]],
        ['a ConfirmMessage that is not text, a blank number', (p) => ({ PhoneNumber: '', GroupIds: [g1], ConfirmMessage: 12 }),
            null,
            [{ field: 'PhoneNumber', message: 'Phone Number cannot be blank.' },
                { field: 'ConfirmMessage', message: 'Confirm Message must be a string.' }]],
        ['a ConfirmMessage over 4 SMS parts', (p) => ({ PhoneNumber: digits(p), GroupIds: [g1], ConfirmMessage: 'b'.repeat(620) }),
            (p) => `PhoneNumber=${digits(p)}&GroupIds[]=${g1}&ConfirmMessage=${'b'.repeat(620)}`,
            [{ field: 'ConfirmMessage', message: 'Confirm Message is too long: 5 SMS parts, at most 4 are allowed.' }]],
    ];
    for (const [name, json, form, want] of cases) {
        test(`${name}: JSON, XML and form bodies, nothing written`, async () => {
            const phone = fresh();
            const forms = [{ body: json(phone) }, { body: json(phone), xml: true }];
            if (form) forms.push({ body: { form: form(phone) } }, { body: { form: form(phone) }, xml: true });
            for (const f of forms) {
                const r = await create(srv, f.body, { xml: f.xml });
                assert.equal(r.status, 422, r.text);
                assert.deepEqual(f.xml ? xmlErrors(r.text) : r.json, want, r.text);
            }
            assert.equal(await nativeContact(srv, phone), null, 'nothing written');
            assert.deepEqual(await outTo(srv, phone), []);
        });
    }

    test("another account's group is unknown here", async () => {
        const beta = srv.accounts.beta.api_key;
        const bg = await makeGroup(srv, 'beta-only', { key: beta });
        const phone = fresh();
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [bg] });
        assert.equal(r.status, 422);
        assert.deepEqual(r.json, [{ field: 'GroupIds', message: `Group Ids contains an unknown group: ${bg}.` }]);
        assert.equal(await nativeContact(srv, phone), null);
    });
});

describe('SendCTAMessage (seed rules, issue 10 Decisions)', () => {
    // Each state of a fresh contact, set up before the call under test.
    const states = {
        new: async () => {},
        pending: async (p) => {
            const r = await create(srv, { PhoneNumber: digits(p), GroupIds: [g1] });
            assert.equal(r.status, 201, r.text);
        },
        'opted in': async (p) => { await setConsent(srv, p, 'opted_in', { scope: `group:${g1}` }); },
        'opted out by STOP': async (p) => { await inbound(srv, p, SENDER, 'STOP'); },
        'opted out by API': async (p) => {
            const r = await optOut(srv, { PhoneNumber: digits(p) });
            assert.equal(r.status, 201, r.text);
        },
    };
    // state -> [CTA sent?, OptedOut] for SendCTAMessage absent, 0 and 1.
    const want = {
        new: [[true, true, true], 0],
        pending: [[true, true, true], 0],
        'opted in': [[false, false, true], 0],
        'opted out by STOP': [['refused', 'refused', 'refused'], 1],
        'opted out by API': [[true, true, true], 1],
    };
    const sends = [undefined, 0, 1];
    for (const [state, setup] of Object.entries(states)) {
        for (const [i, send] of sends.entries()) {
            test(`${state}, SendCTAMessage ${send ?? 'absent'}`, async () => {
                const phone = fresh();
                await setup(phone);
                const before = new Set((await outTo(srv, phone)).map((m) => m.id));
                const body = { PhoneNumber: digits(phone), GroupIds: [g1], CTAMessage: `cta ${state} ${send}` };
                if (send !== undefined) body.SendCTAMessage = i % 2 ? String(send) : send;
                const r = await create(srv, body);
                assert.equal(r.status, 201, r.text);
                assert.equal(r.json.OptedOut, want[state][1]);
                const added = (await outTo(srv, phone)).filter((m) => !before.has(m.id));
                const w = want[state][0][i];
                if (w === false) {
                    assert.deepEqual(added, []);
                } else if (w === 'refused') {
                    assert.deepEqual(added.map((m) => [m.kind, m.status, m.reason, m.text]),
                        [['cta', 'refused', 'opted_out', body.CTAMessage]]);
                } else {
                    assert.deepEqual(added.map((m) => [m.kind, m.text]), [['cta', body.CTAMessage]]);
                    assert.notEqual(added[0].status, "refused", JSON.stringify((await srv.v1("GET", `/messages/${added[0].id}`)).json));
                    // It really goes out (the sink), also after an opt-out made through the API.
                    await waitFor(async () => (await outTo(srv, phone)).find((m) => m.id === added[0].id && m.status === 'sent'),
                        { what: 'the CTA sent' });
                }
            });
        }
    }
});

describe('the YES path', () => {
    test('YES opts in to the groups and sends ConfirmMessage once, kind confirmation', async () => {
        const phone = fresh();
        const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1, g2], ConfirmMessage: 'You are in!' });
        assert.equal(r.status, 201, r.text);
        const yes = await inbound(srv, phone, SENDER, 'YES');
        assert.equal(yes.action, 'opted_in');
        assert.deepEqual(await consentsOf(srv, phone), { [`group:${g1}`]: 'opted_in', [`group:${g2}`]: 'opted_in' });
        let out = await outTo(srv, phone);
        assert.deepEqual(out.map((m) => [m.kind, m.text]), [['cta', DEFAULT_CTA], ['confirmation', 'You are in!']]);
        const conf = out[1];
        await waitFor(async () => (await outTo(srv, phone)).find((m) => m.id === conf.id && m.status === 'sent'),
            { what: 'the confirmation sent' });
        // A second YES confirms nothing more: the ConfirmMessage is not sent again.
        await inbound(srv, phone, SENDER, 'YES');
        out = await outTo(srv, phone);
        assert.equal(out.filter((m) => m.kind === 'confirmation').length, 1);
        const ev = await eventsOf(srv, phone);
        assert.ok(ev.some((e) => e.scope === `group:${g1}` && e.new_state === 'opted_in' && e.channel === 'sms'));
    });

    test('without ConfirmMessage the seed default is sent', async () => {
        const phone = fresh();
        assert.equal((await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] })).status, 201);
        await inbound(srv, phone, SENDER, 'yes');
        const out = await outTo(srv, phone);
        assert.deepEqual(out.map((m) => [m.kind, m.text]), [['cta', DEFAULT_CTA], ['confirmation', DEFAULT_CONFIRM]]);
    });

    test('after a STOP nothing more goes out but the one STOP confirmation', async () => {
        // common rules: a new send path is tested with a STOP.
        const phone = fresh();
        assert.equal((await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] })).status, 201);
        const stop = await inbound(srv, phone, SENDER, 'STOP');
        assert.equal(stop.action, 'opted_out');
        const seen = new Set((await outTo(srv, phone)).map((m) => m.id));
        for (const send of [1, 0, undefined]) {
            const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1, g2], SendCTAMessage: send });
            assert.equal(r.status, 201, r.text);
            assert.equal(r.json.OptedOut, 1);
        }
        const after = await outTo(srv, phone);
        const added = after.filter((m) => !seen.has(m.id));
        assert.deepEqual(added.map((m) => [m.kind, m.status, m.reason]),
            [['cta', 'refused', 'opted_out'], ['cta', 'refused', 'opted_out'], ['cta', 'refused', 'opted_out']]);
        const before = after.filter((m) => seen.has(m.id));
        assert.deepEqual(before.map((m) => m.kind), ['cta', 'keyword_reply']);
        assert.equal(before[0].status === 'sent' || before[0].status === 'refused', true);
        // No flow was started: the groups are not pending, and a YES now is a START by the person.
        const c = await consentsOf(srv, phone);
        assert.equal(c.all, 'opted_out');
        assert.notEqual(c[`group:${g2}`], 'pending');
    });
});

describe('opt-out and its undo', () => {
    test('opt-out: 201 OptedOut 1, all opted out via the API, flows cancelled, no SMS', async () => {
        const phone = fresh();
        assert.equal((await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] })).status, 201);
        const seen = (await outTo(srv, phone)).length;
        const r = await optOut(srv, { PhoneNumber: digits(phone) });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(Object.keys(r.json), CONTACT_KEYS);
        assert.equal(r.json.OptedOut, 1);
        assert.deepEqual(r.json.GroupIds, [g1]);
        const c = await consentsOf(srv, phone);
        assert.equal(c.all, 'opted_out');
        assert.equal(c[`group:${g1}`], undefined, 'the pending group was withdrawn with the flow');
        const ev = await eventsOf(srv, phone);
        const last = ev.filter((e) => e.scope === 'all').at(-1);
        assert.deepEqual([last.new_state, last.surface, last.channel], ['opted_out', 'protexting', 'api']);
        const flows = await srv.v1('GET', '/flows?limit=1000');
        const mine = flows.json.data.filter((f) => f.phone === phone);
        assert.deepEqual(mine.map((f) => f.status), ['cancelled']);
        const out = await outTo(srv, phone);
        assert.equal(out.length, seen, 'no SMS for an API opt-out');
        // XML too; an unknown number is recorded as opted out.
        const other = fresh();
        const x = await optOut(srv, { form: `PhoneNumber=${digits(other)}` }, { xml: true });
        assert.equal(x.status, 201, x.text);
        assert.match(x.text, /<OptedOut>1<\/OptedOut>/);
        assert.equal((await consentsOf(srv, other)).all, 'opted_out');
        const bad = await optOut(srv, {});
        assert.equal(bad.status, 422);
        assert.deepEqual(bad.json, [{ field: 'PhoneNumber', message: 'Phone Number cannot be blank.' }]);
    });

    test('undo of an API opt-out: 201 message, the opt-out lifted, contact asked again', async () => {
        const phone = fresh();
        await setConsent(srv, phone, 'opted_in', { scope: `group:${g1}` });
        assert.equal((await optOut(srv, { PhoneNumber: digits(phone) })).status, 201);
        assert.equal((await consentsOf(srv, phone)).all, 'opted_out');
        const r = await undo(srv, { PhoneNumber: digits(phone) });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json, { message: 'Phone number successfully opted in' });
        assert.deepEqual(await consentsOf(srv, phone), { [`group:${g1}`]: 'opted_in' });
        const last = (await eventsOf(srv, phone)).at(-1);
        assert.deepEqual([last.scope, last.old_state, last.new_state, last.surface], ['all', 'opted_out', 'none', 'protexting']);
        const x = await undo(srv, { PhoneNumber: digits(phone) }, { xml: true });
        assert.equal(x.status, 201, x.text);
        assert.equal(x.text, '<?xml version="1.0" encoding="UTF-8"?>\n<response><message>Phone number successfully opted in</message></response>\n');
        // Opted in to the group again, so without SendCTAMessage nobody is asked; with 1 the CTA goes out.
        const r0 = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1] });
        assert.equal(r0.status, 201, r0.text);
        assert.equal(r0.json.OptedOut, 0);
        assert.deepEqual(await outTo(srv, phone), []);
        const r1 = await create(srv, { PhoneNumber: digits(phone), GroupIds: [g1], SendCTAMessage: 1 });
        assert.equal(r1.status, 201, r1.text);
        assert.deepEqual((await outTo(srv, phone)).map((m) => m.kind), ['cta']);
    });

    test('undo refused for a STOP, also when an API opt-out came after it', async () => {
        const MSG = [{ field: 'PhoneNumber', message: 'The contact opted out by text message (STOP) and must re-subscribe by texting START.' }];
        const a = fresh();
        await inbound(srv, a, SENDER, 'STOP');
        let r = await undo(srv, { PhoneNumber: digits(a) });
        assert.equal(r.status, 422, r.text);
        assert.deepEqual(r.json, MSG);
        assert.equal((await consentsOf(srv, a)).all, 'opted_out');
        // An API opt-out over a STOP changes nothing, so it cannot turn the STOP into an undoable one.
        assert.equal((await optOut(srv, { PhoneNumber: digits(a) })).status, 201);
        r = await undo(srv, { PhoneNumber: digits(a) }, { xml: true });
        assert.equal(r.status, 422, r.text);
        assert.deepEqual(xmlErrors(r.text), MSG);
        assert.equal((await consentsOf(srv, a)).all, 'opted_out');
        // An API opt-out followed by a STOP: the STOP is the person's, and wins.
        const b = fresh();
        assert.equal((await optOut(srv, { PhoneNumber: digits(b) })).status, 201);
        await inbound(srv, b, SENDER, 'STOP');
        r = await undo(srv, { PhoneNumber: digits(b) });
        assert.equal(r.status, 422, r.text);
        // A number never seen: 422, nothing created.
        const c = fresh();
        r = await undo(srv, { PhoneNumber: digits(c) });
        assert.equal(r.status, 422, r.text);
        assert.deepEqual(r.json, [{ field: 'PhoneNumber', message: 'Phone Number was not found.' }]);
        assert.equal(await nativeContact(srv, c), null);
    });
});
