// Native API: contacts (DESIGN 2 "contact", DESIGN 7 contacts rows; issue 3 item 5 and item 7).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, allPages, num, RFC3339_UTC } from './lib/server.mjs';

const CONTACT_FIELDS = ['id', 'phone', 'first_name', 'last_name', 'email', 'birthday', 'zip', 'city',
    'params', 'custom', 'tags', 'groups', 'created_at', 'updated_at'];

let srv;
before(async () => {
    srv = await startServer({ accounts: ['acme', 'pager'] });
});
after(async () => {
    await srv?.stop();
});

describe('create and upsert', () => {
    let created;

    test('POST /contacts creates a contact with every field -> 201', async () => {
        // DESIGN 7: POST /contacts {"phone",...} -> 201 new: contact; numbers returned as E.164.
        const r = await srv.v1('POST', '/contacts', {
            body: {
                phone: '+1 (646) 555-0100',
                first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com',
                birthday: '1815-12-10', zip: '10001', city: 'New York',
                params: { param1: 'p1', param2: 'p2', param3: 'p3', param4: 'p4', param5: 'p5' },
                custom: { plan: 'gold', seats: '3' },
                tags: ['vip', 'beta'],
            },
        });
        assert.equal(r.status, 201, r.text);
        const c = r.json;
        for (const f of CONTACT_FIELDS) assert.ok(f in c, `contact lacks "${f}": ${r.text}`);
        assert.equal(c.phone, '+16465550100');
        assert.equal(c.first_name, 'Ada');
        assert.equal(c.last_name, 'Lovelace');
        assert.equal(c.email, 'ada@example.com');
        assert.equal(c.birthday, '1815-12-10');
        assert.equal(c.zip, '10001');
        assert.equal(c.city, 'New York');
        assert.deepEqual(c.params, { param1: 'p1', param2: 'p2', param3: 'p3', param4: 'p4', param5: 'p5' });
        assert.deepEqual(c.custom, { plan: 'gold', seats: '3' });
        assert.deepEqual([...c.tags].sort(), ['beta', 'vip']);
        assert.deepEqual(c.groups, []);
        assert.match(c.created_at, RFC3339_UTC);
        assert.match(c.updated_at, RFC3339_UTC);
        created = c;
    });

    test('POST /contacts with the same number in another format -> 200, same contact', async () => {
        // DESIGN 7: POST /contacts upsert by number -> 200 existing; DESIGN 2: one contact per (account, E.164).
        for (const phone of ['16465550100', '+16465550100', '(646) 555-0100', '646.555.0100']) {
            const r = await srv.v1('POST', '/contacts', { body: { phone } });
            assert.equal(r.status, 200, `${phone}: ${r.text}`);
            assert.equal(r.json.id, created.id, phone);
            assert.equal(r.json.phone, '+16465550100');
        }
    });

    test('upsert updates the given fields and keeps the others', async () => {
        // DESIGN 7: POST /contacts upsert by number -> 200 existing: contact (fields merged).
        const r = await srv.v1('POST', '/contacts', { body: { phone: '16465550100', city: 'London' } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.city, 'London');
        assert.equal(r.json.first_name, 'Ada');
        assert.equal(r.json.created_at, created.created_at);
        assert.ok(r.json.updated_at >= created.updated_at);
        const g = await srv.v1('GET', `/contacts/${created.id}`);
        assert.equal(g.json.city, 'London');
    });

    test('unknown extra fields are ignored -> 201', async () => {
        // DESIGN 7 (lead contract): unknown extra fields are ignored.
        const r = await srv.v1('POST', '/contacts', {
            body: { phone: num(1), first_name: 'Extra', favourite_colour: 'green', nested: { a: [1, 2, { b: null }] } },
        });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.json.first_name, 'Extra');
        assert.ok(!('favourite_colour' in r.json));
    });

    test('POST /contacts with an invalid number -> 422 invalid_phone, field phone', async () => {
        // DESIGN 2: validity is libphonenumber isValidNumber; 646-123-4567 is not a valid NANP number.
        for (const phone of ['16461234567', '+1 646 123 4567', '12', 'not a number', '+999 123', '']) {
            const r = await srv.v1('POST', '/contacts', { body: { phone, first_name: 'Bad' } });
            assert.equal(r.status, 422, `${JSON.stringify(phone)}: ${r.text}`);
            const e = errorOf(r);
            // An empty string may count as a missing phone rather than an invalid one.
            if (phone === '') assert.ok(['invalid_phone', 'invalid_field'].includes(e.code), r.text);
            else assert.equal(e.code, 'invalid_phone', `${JSON.stringify(phone)}: ${r.text}`);
            assert.equal(e.field, 'phone');
        }
    });

    test('POST /contacts with a group id that does not exist -> 422 naming groups, nothing stored', async () => {
        // DESIGN 7: "groups"?: [id] are the account's group ids; DESIGN 2: every row belongs to one account.
        const r = await srv.v1('POST', '/contacts', { body: { phone: num(5), groups: [987654] } });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).field, 'groups');
        const g = await srv.v1('GET', `/contacts/${encodeURIComponent(num(5))}`);
        assert.equal(g.status, 404, g.text);
    });

    test('POST /contacts without phone -> 422, field phone', async () => {
        // DESIGN 7: "phone" is required in POST /contacts.
        const r = await srv.v1('POST', '/contacts', { body: { first_name: 'Nobody' } });
        assert.equal(r.status, 422, r.text);
        assert.equal(errorOf(r).field, 'phone');
    });
});

describe('get by id or by number', () => {
    let c;
    before(async () => {
        const r = await srv.v1('POST', '/contacts', { body: { phone: num(2), first_name: 'Grace' } });
        assert.equal(r.status, 201, r.text);
        c = r.json;
    });

    test('GET /contacts/{id} -> contact with id, created_at, updated_at', async () => {
        // DESIGN 7: GET /contacts/{id or number} -> contact: the fields + "id", "created_at", "updated_at".
        const r = await srv.v1('GET', `/contacts/${c.id}`);
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json, c);
    });

    test('GET /contacts/{number} in any format finds the same contact', async () => {
        // DESIGN 7: numbers are accepted in any format anywhere (path); lead: URL-encoded "+1 (646) 555-0102".
        for (const n of ['+16465550102', '16465550102', '+1 (646) 555-0102', '(646) 555-0102', '6465550102']) {
            const r = await srv.v1('GET', `/contacts/${encodeURIComponent(n)}`);
            assert.equal(r.status, 200, `${n}: ${r.text}`);
            assert.equal(r.json.id, c.id, n);
            assert.equal(r.json.phone, '+16465550102');
        }
    });

    test('GET /contacts/{unknown id or number} -> 404 not_found', async () => {
        // DESIGN 7: errors use {"error":{...}} with 404.
        for (const p of ['987654321', encodeURIComponent('+16465550199')]) {
            const r = await srv.v1('GET', `/contacts/${p}`);
            assert.equal(r.status, 404, `${p}: ${r.text}`);
            assert.equal(errorOf(r).code, 'not_found');
        }
    });
});

describe('PATCH', () => {
    let c;
    before(async () => {
        const r = await srv.v1('POST', '/contacts', { body: { phone: num(3), first_name: 'Alan', tags: ['a'] } });
        assert.equal(r.status, 201, r.text);
        c = r.json;
    });

    test('PATCH /contacts/{id} changes the given fields -> contact', async () => {
        // DESIGN 7: PATCH /contacts/{id or number}: any contact field but phone -> contact.
        const r = await srv.v1('PATCH', `/contacts/${c.id}`, {
            body: { last_name: 'Turing', email: 'alan@example.com', tags: ['x', 'y'], custom: { k: 'v' },
                params: { param3: 'three' } },
        });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.id, c.id);
        assert.equal(r.json.first_name, 'Alan');
        assert.equal(r.json.last_name, 'Turing');
        assert.equal(r.json.email, 'alan@example.com');
        assert.deepEqual([...r.json.tags].sort(), ['x', 'y']);
        assert.deepEqual(r.json.custom, { k: 'v' });
        assert.equal(r.json.params.param3, 'three');
        assert.equal(r.json.created_at, c.created_at);
        assert.ok(r.json.updated_at >= c.updated_at);
        const g = await srv.v1('GET', `/contacts/${c.id}`);
        assert.deepEqual(g.json, r.json);
    });

    test('PATCH /contacts/{number} addresses the contact by number', async () => {
        // DESIGN 7: PATCH /contacts/{id or number}.
        const r = await srv.v1('PATCH', `/contacts/${encodeURIComponent('+1 (646) 555-0103')}`, {
            body: { city: 'Bletchley' },
        });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.id, c.id);
        assert.equal(r.json.city, 'Bletchley');
    });

    test('PATCH cannot change phone', async () => {
        // DESIGN 7: PATCH takes any contact field but phone.
        const r = await srv.v1('PATCH', `/contacts/${c.id}`, { body: { phone: num(4) } });
        if (r.status === 200) {
            assert.equal(r.json.phone, num(3));
        } else {
            assert.equal(r.status, 422, r.text);
            assert.equal(errorOf(r).field, 'phone');
        }
        const g = await srv.v1('GET', `/contacts/${c.id}`);
        assert.equal(g.json.phone, num(3));
        const other = await srv.v1('GET', `/contacts/${encodeURIComponent(num(4))}`);
        assert.equal(other.status, 404, other.text);
    });

    test('PATCH unknown contact -> 404 not_found', async () => {
        // DESIGN 7: 404 for a contact that does not exist.
        const r = await srv.v1('PATCH', '/contacts/987654321', { body: { city: 'Nowhere' } });
        assert.equal(r.status, 404, r.text);
        assert.equal(errorOf(r).code, 'not_found');
    });

    test('PATCH with a wrong type -> 422 invalid_field naming the field, nothing changed', async () => {
        // DESIGN 7 (lead contract): wrong JSON types -> 422 invalid_field with the field name.
        const r = await srv.v1('PATCH', `/contacts/${c.id}`, { body: { city: 12, first_name: 'Changed' } });
        assert.equal(r.status, 422, r.text);
        const e = errorOf(r);
        assert.equal(e.code, 'invalid_field');
        assert.equal(e.field, 'city');
        const g = await srv.v1('GET', `/contacts/${c.id}`);
        assert.equal(g.json.first_name, 'Alan');
    });
});

describe('list, paging and filters', () => {
    const pagerKey = () => srv.accounts.pager.api_key;
    let vip;
    let ids = [];

    before(async () => {
        const g = await srv.v1('POST', '/groups', { key: pagerKey(), body: { name: 'VIP' } });
        assert.equal(g.status, 201, g.text);
        vip = g.json.id;
        const people = [
            { phone: num(10), first_name: 'Zyxwvut', last_name: 'One', tags: ['red'], groups: [vip] },
            { phone: num(11), first_name: 'Bob', last_name: 'Two', tags: ['red', 'blue'] },
            { phone: num(12), first_name: 'Carol', last_name: 'Three', tags: ['blue'], groups: [vip] },
            { phone: num(13), first_name: 'Dan', last_name: 'Four' },
            { phone: num(14), first_name: 'Eve', last_name: 'Five', tags: ['red'] },
        ];
        ids = [];
        for (const body of people) {
            const r = await srv.v1('POST', '/contacts', { key: pagerKey(), body });
            assert.equal(r.status, 201, r.text);
            ids.push(r.json.id);
        }
    });

    test('GET /contacts -> {"data":[...],"next_cursor":null}', async () => {
        // DESIGN 7: lists are {"data":[...],"next_cursor":"..."|null}, default limit 50.
        const r = await srv.v1('GET', '/contacts', { key: pagerKey() });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(Object.keys(r.json).sort(), ['data', 'next_cursor']);
        assert.equal(r.json.next_cursor, null);
        assert.deepEqual(r.json.data.map((c) => c.id).sort(), [...ids].sort());
        for (const c of r.json.data) assert.match(c.phone, /^\+1\d{10}$/);
    });

    test('limit=2 over 5 contacts pages 2,2,1 with no duplicates and next_cursor null at the end', async () => {
        // DESIGN 7: ?limit= and ?cursor=; issue 3 item 7: list with cursor paging.
        const pages = await allPages(srv, '/contacts', { limit: 2, key: pagerKey() });
        assert.deepEqual(pages.map((p) => p.data.length), [2, 2, 1]);
        const seen = pages.flatMap((p) => p.data.map((c) => c.id));
        assert.equal(new Set(seen).size, 5, `duplicates in ${seen}`);
        assert.deepEqual([...seen].sort(), [...ids].sort());
        assert.equal(pages.at(-1).next_cursor, null);
    });

    test('paging is stable: a contact created mid-way is not returned twice', async () => {
        // DESIGN 7: cursor paging (a cursor is a position, not an offset).
        const first = await srv.v1('GET', '/contacts?limit=2', { key: pagerKey() });
        assert.equal(first.status, 200, first.text);
        const extra = await srv.v1('POST', '/contacts', { key: pagerKey(), body: { phone: num(15) } });
        assert.equal(extra.status, 201, extra.text);
        const rest = await allPages(srv, `/contacts?cursor=${encodeURIComponent(first.json.next_cursor)}`,
            { key: pagerKey(), limit: 2 });
        const seen = [...first.json.data, ...rest.flatMap((p) => p.data)].map((c) => c.id);
        assert.equal(new Set(seen).size, seen.length, `duplicates in ${seen}`);
        for (const id of ids) assert.ok(seen.includes(id), `contact ${id} missing from pages`);
        // The extra contact has no name, tags or groups, so the filter tests below are unaffected.
    });

    test('?group= filters by group membership', async () => {
        // DESIGN 7: GET /contacts ?group=.
        const r = await srv.v1('GET', `/contacts?group=${vip}`, { key: pagerKey() });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.data.map((c) => c.phone).sort(), [num(10), num(12)]);
        for (const c of r.json.data) assert.ok(c.groups.includes(vip));
    });

    test('?tag= filters by tag', async () => {
        // DESIGN 7: GET /contacts ?tag=.
        const r = await srv.v1('GET', '/contacts?tag=red', { key: pagerKey() });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.data.map((c) => c.phone).sort(), [num(10), num(11), num(14)]);
        const b = await srv.v1('GET', '/contacts?tag=blue&limit=1', { key: pagerKey() });
        assert.equal(b.json.data.length, 1);
        assert.notEqual(b.json.next_cursor, null);
        const pages = await allPages(srv, '/contacts?tag=blue', { limit: 1, key: pagerKey() });
        assert.deepEqual(pages.flatMap((p) => p.data.map((c) => c.phone)).sort(), [num(11), num(12)]);
    });

    test('?q= searches names', async () => {
        // DESIGN 7: GET /contacts ?q=.
        const r = await srv.v1('GET', '/contacts?q=Zyxwvut', { key: pagerKey() });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.data.map((c) => c.phone), [num(10)]);
        const none = await srv.v1('GET', '/contacts?q=NoSuchNameAnywhere', { key: pagerKey() });
        assert.equal(none.status, 200, none.text);
        assert.deepEqual(none.json, { data: [], next_cursor: null });
    });

    test('filters combine (group and tag)', async () => {
        // DESIGN 7: GET /contacts ?group=&tag= together.
        const r = await srv.v1('GET', `/contacts?group=${vip}&tag=blue`, { key: pagerKey() });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.data.map((c) => c.phone), [num(12)]);
    });

    test('?group= of an unknown group -> empty list or 404/422, never someone else', async () => {
        // DESIGN 2: no query ever crosses accounts; unknown filters find nothing.
        const r = await srv.v1('GET', '/contacts?group=987654', { key: pagerKey() });
        if (r.status === 200) assert.deepEqual(r.json.data, []);
        else { assert.ok([404, 422].includes(r.status), r.text); errorOf(r); }
    });

    test('groups given on create are returned on the contact', async () => {
        // DESIGN 7: POST /contacts "groups"?: [id].
        const r = await srv.v1('GET', `/contacts/${ids[0]}`, { key: pagerKey() });
        assert.deepEqual(r.json.groups, [vip]);
    });
});

test('a number with slashes in the path: %2F stays inside the parameter, %252F is not decoded twice', async () => {
    // DESIGN 7: numbers are accepted in any format anywhere (path, query, body).
    const c = await srv.v1('POST', '/contacts', { body: { phone: '646/555/0177' } });
    assert.ok([200, 201].includes(c.status), c.text);
    const g = await srv.v1('GET', `/contacts/${encodeURIComponent('646/555/0177')}`);
    assert.equal(g.status, 200, g.text);
    assert.equal(g.json.phone, '+16465550177');
    const consents = await srv.v1('GET', `/contacts/${encodeURIComponent('646/555/0177')}/consents`);
    assert.equal(consents.status, 200, consents.text);
    const twice = await srv.v1('GET', '/contacts/646%252F555%252F0177');
    assert.equal(twice.status, 404, twice.text);
    const q = await srv.v1('GET', `/check?to=${encodeURIComponent('646/555/0177')}`);
    assert.equal(q.json.phone, '+16465550177');
});
