// issue 11: the Octopush surface (seed 001). POST /v1/public/contact/create with the headers
// api-login and api-key; 201 {"items":[{"phone_number","email","status"}]}; errors
// {"code":<int>,"message"} on every path under /v1/public/. Every outcome is read back through
// the native API: contacts, list members (groups), tags, consents and ledger events.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, num, allPages } from './lib/server.mjs';
import { inbound, eventsOf, check, setConsent, assertNoSanitizerReport } from './lib/msgkit.mjs';

const PATH = '/v1/public/contact/create';

let srv;
before(async () => {
    srv = await startServer({ accounts: ['acme', 'other', 'limited'] });
});
after(async () => {
    if (srv) assertNoSanitizerReport(srv);
    await srv?.stop();
});

/** POST the Octopush route as account `as` (default acme); login/key null leave a header out. */
function op(body, { as = 'acme', login, key, headers = {} } = {}) {
    const h = { 'cache-control': 'no-cache', ...headers };
    const acct = srv.accounts[as];
    if (login !== null) h['api-login'] = login ?? acct.login;
    if (key !== null) h['api-key'] = key ?? acct.api_key;
    return request(srv.url, 'POST', PATH, { body, headers: h });
}

/** Asserts Octopush's error shape, exactly {"code":status,"message":"..."}; returns the message. */
function opError(r, status) {
    assert.equal(r.status, status, r.text);
    assert.match(r.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(Object.keys(r.json ?? {}).sort(), ['code', 'message'], r.text);
    assert.equal(r.json.code, status, r.text);
    assert.equal(typeof r.json.message, 'string');
    assert.ok(r.json.message.length > 0);
    return r.json.message;
}

const keyOf = (as) => (as ? { key: srv.accounts[as].api_key } : {});

/** The native contact, or null when the number is not a contact of the account. */
async function contact(phone, as) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}`, keyOf(as));
    if (r.status === 404) return null;
    assert.equal(r.status, 200, r.text);
    return r.json;
}

/** The id of the group called `name`, or undefined. */
async function groupId(name, as) {
    const pages = await allPages(srv, '/groups', { limit: 1000, ...keyOf(as) });
    return pages.flatMap((p) => p.data).find((g) => g.name === name)?.id;
}

/** The phones of the list's members, sorted. */
async function members(gid, as) {
    const pages = await allPages(srv, `/contacts?group=${gid}`, { limit: 1000, ...keyOf(as) });
    return pages.flatMap((p) => p.data).map((c) => c.phone).sort();
}

/** {scope: state} of a contact. */
async function consents(phone, as) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}/consents`, keyOf(as));
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries(r.json.data.map((c) => [c.scope, c.state]));
}

async function eventCount(as) {
    const pages = await allPages(srv, '/events', { limit: 1000, ...keyOf(as) });
    return pages.reduce((n, p) => n + p.data.length, 0);
}

async function contactCount(as) {
    const pages = await allPages(srv, '/contacts', { limit: 1000, ...keyOf(as) });
    return pages.reduce((n, p) => n + p.data.length, 0);
}

/** Distinct valid US numbers (917-2XX-XXXX) outside the 555-01XX range that num() uses; i < 1e6. */
function bulkPhone(i) {
    return `+1917${200 + Math.floor(i / 10000)}${String(i % 10000).padStart(4, '0')}`;
}

describe('the seed example', () => {
    test('seed 001 curl example (host changed, valid numbers): 201, two added, list, tag, opt-ins', async () => {
        // seed 001 "Ejemplo Curl", with +16465550123 and +16465550124 for the seed's invalid numbers.
        const body = '{"contacts": [{"phone_number": "+16465550123","first_name": "Axelle", "last_name": ' +
            '"Durand", "param3": "Mme"}, {"phone_number": "+16465550124", "first_name": "John", ' +
            '"last_name": "Smith", "param3": "M"}],"list_name": "my_list", "tag_name":"vip"}';
        const r = await op(body, { headers: { 'Content-Type': 'application/json' } });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json, { items: [
            { phone_number: '+16465550123', email: null, status: 'added' },
            { phone_number: '+16465550124', email: null, status: 'added' },
        ] });

        // the list is a group of the native model, with both contacts in it
        const gid = await groupId('my_list');
        assert.ok(Number.isInteger(gid), 'my_list is a group');
        assert.deepEqual(await members(gid), ['+16465550123', '+16465550124']);
        const a = await contact('+16465550123');
        assert.equal(a.first_name, 'Axelle');
        assert.equal(a.last_name, 'Durand');
        assert.deepEqual(a.params, { param1: null, param2: null, param3: 'Mme', param4: null, param5: null });
        assert.deepEqual(a.tags, ['vip']);
        assert.deepEqual(a.groups, [gid]);
        const b = await contact('+16465550124');
        assert.equal(b.first_name, 'John');
        assert.equal(b.params.param3, 'M');
        assert.deepEqual(b.tags, ['vip']);

        // adding to the list is the client asserting consent for it: one opt-in event each
        const keyId = `key_${srv.accounts.acme.api_key.slice(3, 19)}`;
        for (const p of ['+16465550123', '+16465550124']) {
            assert.deepEqual(await consents(p), { [`group:${gid}`]: 'opted_in' });
            const ev = await eventsOf(srv, p);
            assert.equal(ev.length, 1, JSON.stringify(ev));
            assert.equal(ev[0].scope, `group:${gid}`);
            assert.equal(ev[0].old_state, null);
            assert.equal(ev[0].new_state, 'opted_in');
            assert.equal(ev[0].surface, 'octopush');
            assert.equal(ev[0].channel, 'api');
            assert.equal(ev[0].credential_id, keyId);
            assert.equal(ev[0].request_id, r.headers['x-request-id']);
            assert.equal((await check(srv, p, { scope: `group:${gid}` })).allowed, true);
        }
        // opting in to the list is not opting in to everything
        assert.equal((await check(srv, '+16465550123')).reason, 'no_consent');
    });

    test('the same call again: both updated, no second opt-in event, data as sent', async () => {
        // issue 11: updated = the number was a contact; an opt-in that changes nothing is not re-written.
        const body = { contacts: [
            { phone_number: '+16465550123', first_name: 'Axelle', last_name: 'Durand', param3: 'Mme' },
            { phone_number: '+16465550124', first_name: 'Johnny', last_name: 'Smith', param3: 'M' },
        ], list_name: 'my_list', tag_name: 'vip' };
        const r = await op(body);
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json.items.map((i) => i.status), ['updated', 'updated']);
        assert.equal((await contact('+16465550124')).first_name, 'Johnny');
        assert.equal((await eventsOf(srv, '+16465550124')).length, 1);
        assert.deepEqual((await contact('+16465550123')).tags, ['vip']);
    });
});

describe('statuses and do_not_overwrite', () => {
    test('added, updated; absent fields kept, null clears, email reported as sent', async () => {
        // issue 11 "Statuses": added = not a contact; updated = it was, its data rewritten.
        const old = await srv.v1('POST', '/contacts', { body: { phone: num(30), first_name: 'Old',
            last_name: 'Name', email: 'old@example.com', params: { param1: 'keep', param2: 'drop' } } });
        assert.equal(old.status, 201, old.text);
        const r = await op({ contacts: [
            { phone_number: num(30), first_name: 'New', param2: null, email: 'new@example.com' },
            { phone_number: num(31), first_name: 'Fresh', email: 'fresh@example.com' },
        ], tag_name: 'spring' });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json.items, [
            { phone_number: num(30), email: 'new@example.com', status: 'updated' },
            { phone_number: num(31), email: 'fresh@example.com', status: 'added' },
        ]);
        const c = await contact(num(30));
        assert.equal(c.id, old.json.id, 'the same contact');
        assert.equal(c.first_name, 'New');
        assert.equal(c.last_name, 'Name', 'an absent member leaves the field alone');
        assert.equal(c.email, 'new@example.com');
        assert.equal(c.params.param1, 'keep');
        assert.equal(c.params.param2, null, 'null clears the field');
        assert.deepEqual(c.tags, ['spring']);
        assert.deepEqual(c.groups, [], 'no list_name: no list');
        // no list, no consent: nothing in the ledger for either
        assert.equal((await eventsOf(srv, num(30))).length, 0);
        assert.equal((await eventsOf(srv, num(31))).length, 0);
    });

    test('do_not_overwrite: an existing contact is skipped and left untouched; a new one is added', async () => {
        // seed 001 do_not_overwrite; issue 11: skipped = do_not_overwrite on an existing contact.
        const old = await srv.v1('POST', '/contacts', { body: { phone: num(32), first_name: 'Keep', tags: ['old'] } });
        assert.equal(old.status, 201, old.text);
        const before = await contact(num(32));
        const r = await op({ contacts: [
            { phone_number: num(32), first_name: 'Overwrite', param1: 'x' },
            { phone_number: num(33), first_name: 'New' },
        ], list_name: 'dno_list', tag_name: 'dno', do_not_overwrite: true });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json.items.map((i) => i.status), ['skipped', 'added']);
        assert.deepEqual(await contact(num(32)), before, 'nothing of the skipped contact changed');
        assert.deepEqual(await consents(num(32)), {});
        assert.equal((await eventsOf(srv, num(32))).length, 0);
        const gid = await groupId('dno_list');
        assert.deepEqual(await members(gid), [num(33)]);
        assert.deepEqual((await contact(num(33))).tags, ['dno']);
        assert.deepEqual(await consents(num(33)), { [`group:${gid}`]: 'opted_in' });

        // do_not_overwrite false (and the string form "false"): the same number is updated
        const u = await op({ contacts: [{ phone_number: num(32), first_name: 'Overwrite' }],
            list_name: 'dno_list', do_not_overwrite: 'false' });
        assert.equal(u.status, 201, u.text);
        assert.equal(u.json.items[0].status, 'updated');
        assert.equal((await contact(num(32))).first_name, 'Overwrite');
        assert.deepEqual(await members(gid), [num(32), num(33)]);
    });
});

describe('the blacklist', () => {
    test('a number opted out by STOP elsewhere gets no group opt-in, and is skipped with auto_remove', async () => {
        // issue 11 "Done when": STOP elsewhere; skipped with auto_remove_blacklisted_numbers,
        // no group opt-in event without it. A group opt-in never lifts an opt-out of all.
        const stopped = num(40);
        const r0 = await inbound(srv, stopped, num(199), 'STOP');
        assert.equal(r0.action, 'opted_out');
        const stopEvents = await eventsOf(srv, stopped);
        assert.deepEqual(stopEvents.map((e) => [e.scope, e.new_state]), [['all', 'opted_out']]);

        // without auto_remove_blacklisted_numbers: updated, a member, but no opt-in for the list
        const r1 = await op({ contacts: [{ phone_number: stopped, first_name: 'Stopped' },
            { phone_number: num(41), first_name: 'Fine' }], list_name: 'bl_list' });
        assert.equal(r1.status, 201, r1.text);
        assert.deepEqual(r1.json.items.map((i) => i.status), ['updated', 'added']);
        const gid = await groupId('bl_list');
        assert.deepEqual(await members(gid), [stopped, num(41)]);
        assert.deepEqual(await eventsOf(srv, stopped), stopEvents, 'no event for the stopped number');
        assert.deepEqual(await consents(stopped), { all: 'opted_out' });
        assert.equal((await check(srv, stopped, { scope: `group:${gid}` })).allowed, false);
        assert.equal((await eventsOf(srv, num(41))).length, 1);

        // with it: skipped, its data untouched, and removed from the list it is already in
        const r2 = await op({ contacts: [{ phone_number: stopped, first_name: 'Changed' },
            { phone_number: num(42) }], list_name: 'bl_list', tag_name: 'x',
            auto_remove_blacklisted_numbers: true });
        assert.equal(r2.status, 201, r2.text);
        assert.deepEqual(r2.json.items, [
            { phone_number: stopped, email: null, status: 'skipped' },
            { phone_number: num(42), email: null, status: 'added' },
        ]);
        assert.deepEqual(await members(gid), [num(41), num(42)]);
        const s = await contact(stopped);
        assert.equal(s.first_name, 'Stopped');
        assert.deepEqual(s.tags, []);
        assert.deepEqual(await eventsOf(srv, stopped), stopEvents);
        assert.deepEqual(await consents(stopped), { all: 'opted_out' });
    });

    test('auto_remove_blacklisted_numbers removes blacklisted members not in the call', async () => {
        // seed 001: "the blacklisted numbers will be automatically removed from your list".
        const r1 = await op({ contacts: [{ phone_number: num(43) }, { phone_number: num(44) }],
            list_name: 'clean_list' });
        assert.equal(r1.status, 201, r1.text);
        const gid = await groupId('clean_list');
        // num(44) joins the blacklist through the native consent API (scope all, opted_out)
        await setConsent(srv, num(44), 'opted_out');
        const r2 = await op({ contacts: [{ phone_number: num(45) }], list_name: 'clean_list',
            auto_remove_blacklisted_numbers: true });
        assert.equal(r2.status, 201, r2.text);
        assert.deepEqual(r2.json.items.map((i) => i.status), ['added']);
        assert.deepEqual(await members(gid), [num(43), num(45)]);
        // the consents are untouched: only the membership went
        assert.deepEqual(await consents(num(44)), { all: 'opted_out', [`group:${gid}`]: 'opted_in' });

        // leaving the blacklist (an explicit opt-in of all) makes the number addable again
        await setConsent(srv, num(44), 'opted_in');
        const r3 = await op({ contacts: [{ phone_number: num(44) }], list_name: 'clean_list',
            auto_remove_blacklisted_numbers: 'true' });
        assert.equal(r3.status, 201, r3.text);
        assert.deepEqual(r3.json.items.map((i) => i.status), ['updated']);
        assert.deepEqual(await members(gid), [num(43), num(44), num(45)]);
    });

    test('a group opt-out is not lifted by adding the number to the list again', async () => {
        // issue 11: adding to a list never lifts an opt-out.
        const r1 = await op({ contacts: [{ phone_number: num(46) }], list_name: 'oo_list' });
        assert.equal(r1.status, 201, r1.text);
        const gid = await groupId('oo_list');
        await setConsent(srv, num(46), 'opted_out', { scope: `group:${gid}` });
        const n = (await eventsOf(srv, num(46))).length;
        const r2 = await op({ contacts: [{ phone_number: num(46) }], list_name: 'oo_list' });
        assert.equal(r2.status, 201, r2.text);
        assert.equal(r2.json.items[0].status, 'updated');
        assert.equal((await eventsOf(srv, num(46))).length, n);
        assert.deepEqual(await consents(num(46)), { [`group:${gid}`]: 'opted_out' });
    });
});

describe('validation', () => {
    test('list_name up to 30 characters and tag_name up to 20; longer is 422, nothing written', async () => {
        // seed 001: list_name [max-length : 30 chars], tag_name [max-length : 20 chars].
        const list30 = 'L'.repeat(29) + 'é'; // 30 characters, 31 bytes
        const tag20 = 'T'.repeat(19) + 'ü';
        const ok = await op({ contacts: [{ phone_number: num(50) }], list_name: list30, tag_name: tag20 });
        assert.equal(ok.status, 201, ok.text);
        assert.ok(await groupId(list30));
        assert.deepEqual((await contact(num(50))).tags, [tag20]);

        const events = await eventCount();
        const longList = await op({ contacts: [{ phone_number: num(51) }], list_name: 'L'.repeat(31) });
        assert.match(opError(longList, 422), /list_name.*30/);
        const longTag = await op({ contacts: [{ phone_number: num(51) }], list_name: 'tagged', tag_name: 'T'.repeat(21) });
        assert.match(opError(longTag, 422), /tag_name.*20/);
        assert.equal(await contact(num(51)), null);
        assert.equal(await groupId('L'.repeat(31)), undefined);
        assert.equal(await groupId('tagged'), undefined);
        assert.equal(await eventCount(), events);
    });

    test('one invalid phone_number fails the whole batch, naming the index and field', async () => {
        // issue 11: an invalid phone_number fails the whole batch (400/422 naming the index and
        // field; nothing applied). The seed's own numbers are not valid numbers.
        const events = await eventCount();
        const r = await op({ contacts: [{ phone_number: num(52), first_name: 'A' },
            { phone_number: '+111222233334444', first_name: 'Axelle' },
            { phone_number: num(53) }], list_name: 'atomic_list', tag_name: 'atomic' });
        assert.match(opError(r, 422), /contacts\[1\]\.phone_number/);
        assert.equal(await contact(num(52)), null);
        assert.equal(await contact(num(53)), null);
        assert.equal(await groupId('atomic_list'), undefined);
        assert.equal(await eventCount(), events);
    });

    test('malformed items are 400 naming the index and field', async () => {
        const cases = [
            [{ contacts: [{ phone_number: num(54) }, { first_name: 'no number' }] }, /contacts\[1\]\.phone_number/],
            [{ contacts: [{ phone_number: num(54) }, { phone_number: 16465550154 }] }, /contacts\[1\]\.phone_number/],
            [{ contacts: [{ phone_number: num(54) }, { phone_number: num(55), first_name: 7 }] }, /contacts\[1\]\.first_name/],
            [{ contacts: [{ phone_number: num(54), param4: ['x'] }] }, /contacts\[0\]\.param4/],
            [{ contacts: [{ phone_number: num(54) }, 'x'] }, /contacts\[1\]/],
            [{ contacts: [] }, /contacts/],
            [{ contacts: { phone_number: num(54) } }, /contacts/],
            [{ list_name: 'x' }, /contacts/],
            [{ contacts: [{ phone_number: num(54) }], list_name: 5 }, /list_name/],
            [{ contacts: [{ phone_number: num(54) }], do_not_overwrite: 'yes' }, /do_not_overwrite/],
            [{ contacts: [{ phone_number: num(54) }], auto_remove_blacklisted_numbers: 1 }, /auto_remove_blacklisted_numbers/],
        ];
        for (const [body, re] of cases) {
            const r = await op(body);
            assert.match(opError(r, 400), re, JSON.stringify(body));
        }
        const email = await op({ contacts: [{ phone_number: num(54) }, { phone_number: num(55), email: 'not-an-address' }] });
        assert.match(opError(email, 422), /contacts\[1\]\.email/);
        const notJson = await op('{"contacts": [', {});
        opError(notJson, 400);
        const array = await op('[1,2]', {});
        opError(array, 400);
        const form = await op('contacts=1', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
        opError(form, 415);
        assert.equal(await contact(num(54)), null);
        assert.equal(await contact(num(55)), null);
    });

    test('a failure inside the transaction takes back the items already applied', async () => {
        // issue 11: the whole batch is one writer job in one transaction. A contact that already
        // holds the most tags a contact may have cannot take the call's tag; the earlier item,
        // applied in the same job, must not survive.
        const tags = Array.from({ length: 100 }, (_, i) => `t${i}`);
        const full = await srv.v1('POST', '/contacts', { body: { phone: num(57), tags } });
        assert.equal(full.status, 201, full.text);
        const events = await eventCount();
        const r = await op({ contacts: [{ phone_number: num(56), first_name: 'First' },
            { phone_number: num(57) }], list_name: 'tx_list', tag_name: 'one_more' });
        assert.match(opError(r, 422), /contacts\[1\]/);
        assert.equal(await contact(num(56)), null);
        assert.equal(await groupId('tx_list'), undefined);
        assert.equal(await eventCount(), events);
        assert.equal((await contact(num(57))).tags.length, 100);
    });
});

describe('duplicates in one batch', () => {
    test('the same number in several formats is applied once and reported for each occurrence', async () => {
        // issue 11: duplicates inside one batch are applied once and reported per occurrence.
        const r = await op({ contacts: [
            { phone_number: '+1 646-555-0160', first_name: 'First', email: 'a@example.com' },
            { phone_number: num(61) },
            { phone_number: '+16465550160', first_name: 'Second', email: 'b@example.com' },
            { phone_number: '+1 (646) 555 0160', first_name: 'Third' },
        ], list_name: 'dup_list', tag_name: 'dup' });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json.items, [
            { phone_number: num(60), email: 'a@example.com', status: 'added' },
            { phone_number: num(61), email: null, status: 'added' },
            { phone_number: num(60), email: 'b@example.com', status: 'added' },
            { phone_number: num(60), email: null, status: 'added' },
        ]);
        const c = await contact(num(60));
        assert.equal(c.first_name, 'First', 'the first occurrence is the one applied');
        assert.equal(c.email, 'a@example.com');
        const gid = await groupId('dup_list');
        assert.deepEqual(await members(gid), [num(60), num(61)]);
        assert.equal((await eventsOf(srv, num(60))).length, 1, 'one opt-in event');

        const again = await op({ contacts: [{ phone_number: num(60) }, { phone_number: '16465550160' }],
            list_name: 'dup_list', do_not_overwrite: true });
        assert.equal(again.status, 201, again.text);
        assert.deepEqual(again.json.items.map((i) => i.status), ['skipped', 'skipped']);
    });
});

describe('batch size', () => {
    test('10,000 contacts (over the global 1 MiB body cap) are accepted in one call', async () => {
        // issue 11: the route's own body cap takes 10,000 contacts; documented maximum 10,000.
        const contacts = Array.from({ length: 10000 }, (_, i) => ({ phone_number: bulkPhone(i),
            first_name: 'Bulk', last_name: `Contact ${i}`, param1: 'p1', param2: null, param3: 'Mme',
            email: `bulk${i}@example.com` }));
        const body = JSON.stringify({ contacts, list_name: 'bulk_list', tag_name: 'bulk' });
        assert.ok(body.length > 1024 * 1024, `the body is ${body.length} bytes`);
        const r = await request(srv.url, 'POST', PATH, { body, timeout: 120000, headers: {
            'api-login': srv.accounts.acme.login, 'api-key': srv.accounts.acme.api_key } });
        assert.equal(r.status, 201, r.text.slice(0, 500));
        assert.equal(r.json.items.length, 10000);
        assert.ok(r.json.items.every((it, i) => it.status === 'added' && it.phone_number === bulkPhone(i)));
        const gid = await groupId('bulk_list');
        assert.equal((await members(gid)).length, 10000);
        const last = await contact(bulkPhone(9999));
        assert.equal(last.last_name, 'Contact 9999');
        assert.deepEqual(last.tags, ['bulk']);
    });

    test('10,001 contacts are refused with 413 and nothing is written', async () => {
        const before = await contactCount();
        const contacts = Array.from({ length: 10001 }, (_, i) => ({ phone_number: bulkPhone(20000 + i) }));
        const r = await request(srv.url, 'POST', PATH, { body: { contacts, list_name: 'too_big' },
            timeout: 60000, headers: { 'api-login': srv.accounts.acme.login, 'api-key': srv.accounts.acme.api_key } });
        assert.match(opError(r, 413), /10000/);
        assert.equal(await contactCount(), before);
        assert.equal(await groupId('too_big'), undefined);
    });

    test('a body over the route cap (8 MiB) is 413 in Octopush format', async () => {
        const big = JSON.stringify({ contacts: [{ phone_number: num(70), first_name: 'x'.repeat(9 * 1024 * 1024) }] });
        const r = await request(srv.url, 'POST', PATH, { body: big, timeout: 60000, headers: {
            'api-login': srv.accounts.acme.login, 'api-key': srv.accounts.acme.api_key } });
        opError(r, 413);
        assert.equal(await contact(num(70)), null);
    });
});

describe('credentials', () => {
    const body = () => ({ contacts: [{ phone_number: num(80) }], list_name: 'auth_list' });
    async function nothingWritten() {
        for (const as of ['acme', 'other']) {
            assert.equal(await contact(num(80), as), null);
            assert.equal(await groupId('auth_list', as), undefined);
        }
    }

    test('missing headers are 401, wrong ones 403, with the same message whatever was wrong', async () => {
        // issue 11: 401/403 for missing or wrong credentials, never saying which.
        const acme = srv.accounts.acme;
        const other = srv.accounts.other;
        const missing = [{ login: null, key: null }, { login: null }, { key: null }, { key: '' }];
        for (const m of missing) opError(await op(body(), m), 401);
        const wrong = [
            { key: acme.api_key.slice(0, -1) + (acme.api_key.endsWith('A') ? 'B' : 'A') }, // wrong key
            { key: 'not-a-key' },
            { login: 'nobody@example.com' }, // unknown login, acme's key
            { login: other.login }, // another account's login with acme's key
            { key: other.api_key }, // acme's login with another account's valid key
        ];
        const messages = new Set();
        for (const w of wrong) messages.add(opError(await op(body(), w), 403));
        assert.equal(messages.size, 1, [...messages].join(' | '));
        await nothingWritten();
    });

    test('a revoked key is refused (403) and writes nothing', async () => {
        const k = await srv.v1('POST', '/keys', { body: { name: 'octopush' } });
        assert.equal(k.status, 201, k.text);
        const ok = await op({ contacts: [{ phone_number: num(81) }] }, { key: k.json.key });
        assert.equal(ok.status, 201, ok.text);
        const d = await srv.v1('DELETE', `/keys/${k.json.id}`);
        assert.equal(d.status, 204, d.text);
        opError(await op(body(), { key: k.json.key }), 403);
        await nothingWritten();
    });

    test("another account's valid pair writes only into that account", async () => {
        // DESIGN 2: tenants are isolated.
        const r = await op({ contacts: [{ phone_number: num(82), first_name: 'Theirs' }], list_name: 'their_list' },
            { as: 'other' });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.json.items[0].status, 'added');
        assert.equal(await contact(num(82)), null, 'not a contact of acme');
        assert.equal(await groupId('their_list'), undefined);
        assert.equal((await contact(num(82), 'other')).first_name, 'Theirs');
        assert.ok(await groupId('their_list', 'other'));
    });
});

describe('the surface', () => {
    test('404 and 405 under /v1/public/ are in Octopush format', async () => {
        // issue 11: errors in Octopush's form for every path under /v1/public/ (kit prefix fallback).
        opError(await request(srv.url, 'POST', '/v1/public/contact/nothing', { body: {} }), 404);
        opError(await request(srv.url, 'GET', '/v1/public/sms-campaign/send'), 404);
        opError(await request(srv.url, 'GET', '/v1/public'), 404);
        const m = await request(srv.url, 'GET', PATH, { headers: {
            'api-login': srv.accounts.acme.login, 'api-key': srv.accounts.acme.api_key } });
        opError(m, 405);
        assert.equal(m.headers.allow, 'POST');
        // paths outside /v1/public/ keep the native format
        const n = await request(srv.url, 'GET', '/v1/elsewhere');
        assert.equal(n.status, 404);
        assert.equal(typeof n.json.error, 'object', n.text);
    });

    test('a retry with the same Idempotency-Key replays the answer and writes nothing more', async () => {
        const body = { contacts: [{ phone_number: num(90) }], list_name: 'idem_list' };
        const h = { headers: { 'Idempotency-Key': 'octo-1' } };
        const a = await op(body, h);
        assert.equal(a.status, 201, a.text);
        const events = await eventCount();
        const b = await op(body, h);
        assert.equal(b.status, 201, b.text);
        assert.equal(b.headers['idempotent-replayed'], 'true');
        assert.deepEqual(b.json, a.json);
        assert.equal(await eventCount(), events);
        opError(await op({ ...body, tag_name: 'other' }, h), 422);
    });

    test("the account's rate limit is answered 429 in Octopush format with Retry-After", async () => {
        const lim = { key: srv.accounts.limited.api_key };
        // the limit is per credential: a second key reads the outcome back
        const k2 = await srv.v1('POST', '/keys', { body: { name: 'reader' }, ...lim });
        assert.equal(k2.status, 201, k2.text);
        const p = await srv.v1('PATCH', '/settings', { body: { rate_limit: { limit: 1, window_seconds: 60 } }, ...lim });
        assert.equal(p.status, 200, p.text);
        const ok = await op({ contacts: [{ phone_number: num(91) }] }, { as: 'limited' });
        assert.equal(ok.status, 201, ok.text);
        const over = await op({ contacts: [{ phone_number: num(92) }] }, { as: 'limited' });
        opError(over, 429);
        assert.ok(Number(over.headers['retry-after']) >= 1);
        const r = await srv.v1('GET', `/contacts/${encodeURIComponent(num(92))}`, { key: k2.json.key });
        assert.equal(r.status, 404, r.text);
    });

    test('a contact created here is the native contact, whatever format the number is read in', async () => {
        // DESIGN 2: one contact per (account, E.164 number), the same under every surface.
        const r = await op({ contacts: [{ phone_number: '+1 646 555 0193', first_name: 'Same' }] });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.json.items[0].phone_number, num(93));
        const c = await contact(num(93));
        for (const ref of ['16465550193', '(646) 555-0193', '+1 (646) 555-0193', String(c.id)]) {
            assert.equal((await contact(ref)).id, c.id, ref);
        }
        // and a native upsert of the same number updates that contact, as an Octopush update does
        const n = await srv.v1('POST', '/contacts', { body: { phone: '(646) 555-0193', last_name: 'Native' } });
        assert.equal(n.status, 200, n.text);
        assert.equal(n.json.id, c.id);
        const u = await op({ contacts: [{ phone_number: num(93) }] });
        assert.equal(u.json.items[0].status, 'updated');
        assert.equal((await contact(num(93))).last_name, 'Native');
    });

    test('the ledger written through this surface verifies', async () => {
        const v = await srv.cliOk(['ledger', 'verify']);
        assert.equal(v.json.ok, true, v.stdout);
    });
});
