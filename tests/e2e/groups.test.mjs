// Native API: groups and message types (DESIGN 2 "group / list", "message type"; DESIGN 7 rows).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, errorOf, allPages, num } from './lib/server.mjs';

let srv;
before(async () => {
    srv = await startServer({ accounts: ['acme', 'other'] });
});
after(async () => {
    await srv?.stop();
});

test('POST /groups -> 201 {"id","name"}; GET /groups lists it', async () => {
    // DESIGN 7: POST /groups {"name"} -> 201 {"id","name"} / GET /groups list.
    const a = await srv.v1('POST', '/groups', { body: { name: 'Newsletter' } });
    assert.equal(a.status, 201, a.text);
    assert.ok(Number.isInteger(a.json.id), a.text);
    assert.equal(a.json.name, 'Newsletter');
    const b = await srv.v1('POST', '/groups', { body: { name: 'Promotions' } });
    assert.equal(b.status, 201, b.text);
    assert.notEqual(b.json.id, a.json.id);

    const l = await srv.v1('GET', '/groups');
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(Object.keys(l.json).sort(), ['data', 'next_cursor']);
    assert.equal(l.json.next_cursor, null);
    const byId = new Map(l.json.data.map((g) => [g.id, g.name]));
    assert.equal(byId.get(a.json.id), 'Newsletter');
    assert.equal(byId.get(b.json.id), 'Promotions');
});

test('GET /groups pages with limit and cursor', async () => {
    // DESIGN 7: every list takes ?limit= and ?cursor=.
    for (const name of ['g1', 'g2', 'g3']) {
        const r = await srv.v1('POST', '/groups', { body: { name } });
        assert.equal(r.status, 201, r.text);
    }
    const all = await srv.v1('GET', '/groups');
    const pages = await allPages(srv, '/groups', { limit: 2 });
    const ids = pages.flatMap((p) => p.data.map((g) => g.id));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort((x, y) => x - y), all.json.data.map((g) => g.id).sort((x, y) => x - y));
    assert.ok(pages.length >= 3);
});

test('POST /groups without a name or with a non-string name -> 422 naming "name"', async () => {
    // DESIGN 7: POST /groups {"name"}; lead contract: wrong types -> 422 invalid_field with the field.
    const missing = await srv.v1('POST', '/groups', { body: {} });
    assert.equal(missing.status, 422, missing.text);
    assert.equal(errorOf(missing).field, 'name');
    for (const name of [5, null, ['x'], { a: 1 }, true]) {
        const r = await srv.v1('POST', '/groups', { body: { name } });
        assert.equal(r.status, 422, `${JSON.stringify(name)}: ${r.text}`);
        const e = errorOf(r);
        assert.equal(e.field, 'name');
        if (name !== null) assert.equal(e.code, 'invalid_field');
    }
});

test('a contact can be put into groups and filtered by them', async () => {
    // DESIGN 7: POST /contacts "groups": [id]; GET /contacts ?group=.
    const g = await srv.v1('POST', '/groups', { body: { name: 'Members' } });
    const c = await srv.v1('POST', '/contacts', { body: { phone: num(20), groups: [g.json.id] } });
    assert.equal(c.status, 201, c.text);
    assert.deepEqual(c.json.groups, [g.json.id]);
    const l = await srv.v1('GET', `/contacts?group=${g.json.id}`);
    assert.deepEqual(l.json.data.map((x) => x.id), [c.json.id]);
    const p = await srv.v1('PATCH', `/contacts/${c.json.id}`, { body: { groups: [] } });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.json.groups, []);
    const l2 = await srv.v1('GET', `/contacts?group=${g.json.id}`);
    assert.deepEqual(l2.json.data, []);
});

test('groups belong to one account', async () => {
    // DESIGN 2: every row belongs to one account; no query ever crosses accounts.
    const mine = await srv.v1('POST', '/groups', { body: { name: 'Secret' } });
    const theirs = await srv.v1('GET', '/groups', { key: srv.accounts.other.api_key });
    assert.equal(theirs.status, 200, theirs.text);
    assert.deepEqual(theirs.json, { data: [], next_cursor: null });
    const c = await srv.v1('POST', '/consents', {
        key: srv.accounts.other.api_key,
        body: { phone: num(21), scope: `group:${mine.json.id}`, state: 'opted_in' },
    });
    assert.equal(c.status, 422, c.text);
    assert.equal(errorOf(c).code, 'invalid_scope');
});

test('POST /message-types with an explicit id -> 201 {"id","name"} keeping that id', async () => {
    // DESIGN 7: POST /message-types {"id"?, "name"} -> 201 {"id","name"} (Omeda MessageTypeId).
    const r = await srv.v1('POST', '/message-types', { body: { id: 42, name: 'Promos' } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json, { id: 42, name: 'Promos' });
});

test('POST /message-types without id -> 201 with an assigned id', async () => {
    // DESIGN 7: POST /message-types "id" is optional.
    const r = await srv.v1('POST', '/message-types', { body: { name: 'Alerts' } });
    assert.equal(r.status, 201, r.text);
    assert.ok(Number.isInteger(r.json.id), r.text);
    assert.notEqual(r.json.id, 42);
    assert.equal(r.json.name, 'Alerts');
});

test('GET /message-types lists them', async () => {
    // DESIGN 7: GET /message-types -> list.
    const l = await srv.v1('GET', '/message-types');
    assert.equal(l.status, 200, l.text);
    assert.equal(l.json.next_cursor, null);
    const names = new Map(l.json.data.map((t) => [t.id, t.name]));
    assert.equal(names.get(42), 'Promos');
    assert.ok([...names.values()].includes('Alerts'));
});

test('a second message type with the same id does not create a duplicate', async () => {
    // DESIGN 2: message type = Omeda MessageTypeId, one per id and account.
    const r = await srv.v1('POST', '/message-types', { body: { id: 42, name: 'Other' } });
    assert.ok(r.status < 500, r.text);
    if (r.status >= 400) errorOf(r);
    const l = await srv.v1('GET', '/message-types');
    assert.equal(l.json.data.filter((t) => t.id === 42).length, 1, l.text);
});

test('POST /message-types with bad id or name -> 422 naming the field', async () => {
    // DESIGN 7 (lead contract): wrong JSON types -> 422 invalid_field with the field name.
    for (const [body, field] of [
        [{ id: 'x', name: 'A' }, 'id'],
        [{ id: 1.5, name: 'A' }, 'id'],
        [{ id: -3, name: 'A' }, 'id'],
        [{ id: 7, name: 7 }, 'name'],
        [{ id: 7 }, 'name'],
    ]) {
        const r = await srv.v1('POST', '/message-types', { body });
        assert.equal(r.status, 422, `${JSON.stringify(body)}: ${r.text}`);
        assert.equal(errorOf(r).field, field, JSON.stringify(body));
    }
});

test('a message type scope is usable in consents once it exists', async () => {
    // DESIGN 2: consent scope can be a message type; DESIGN 7 scopes `type:ID`.
    const ok = await srv.v1('POST', '/consents', { body: { phone: num(22), scope: 'type:42', state: 'opted_in' } });
    assert.equal(ok.status, 201, ok.text);
    const bad = await srv.v1('POST', '/consents', { body: { phone: num(22), scope: 'type:4242', state: 'opted_in' } });
    assert.equal(bad.status, 422, bad.text);
    assert.equal(errorOf(bad).code, 'invalid_scope');
});

test('message types belong to one account', async () => {
    // DESIGN 2: no query ever crosses accounts.
    const l = await srv.v1('GET', '/message-types', { key: srv.accounts.other.api_key });
    assert.equal(l.status, 200, l.text);
    assert.deepEqual(l.json.data, []);
    // The other account may use the same Omeda id for its own type.
    const r = await srv.v1('POST', '/message-types', { key: srv.accounts.other.api_key, body: { id: 42, name: 'Theirs' } });
    assert.equal(r.status, 201, r.text);
    const mine = await srv.v1('GET', '/message-types');
    assert.equal(mine.json.data.find((t) => t.id === 42).name, 'Promos');
});
