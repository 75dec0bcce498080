// issue 11 "Done when": a contact created through Octopush is the same contact seen through the
// native API and the ProTexting and Omeda surfaces (DESIGN 2: one contact per account and E.164
// number). The ProTexting and Omeda surfaces are built on their own branches (issues 10 and 12):
// each test skips itself, saying so, while the build it runs against has no such surface (its
// paths then answer the native 404), and runs once they are merged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, num } from './lib/server.mjs';
import { eventsOf, assertNoSanitizerReport } from './lib/msgkit.mjs';

let srv;
let acme;
before(async () => {
    srv = await startServer({ accounts: [{ name: 'acme', brand: 'ACME' }] });
    acme = srv.accounts.acme;
    const t = await srv.v1('POST', '/message-types', { body: { id: 6, name: 'Daily deals' } });
    assert.equal(t.status, 201, t.text);
});
after(async () => {
    if (srv) assertNoSanitizerReport(srv);
    await srv?.stop();
});

function octopush(body) {
    return request(srv.url, 'POST', '/v1/public/contact/create', { body,
        headers: { 'api-login': acme.login, 'api-key': acme.api_key } });
}

/** True when `path` is not a route of this build: the native 404 (another surface answers in its own format). */
async function absent(method, path) {
    const r = await request(srv.url, method, path, { body: {} });
    return r.status === 404 && r.json && typeof r.json.error === 'object';
}

async function nativeContact(phone) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}`);
    assert.equal(r.status, 200, r.text);
    return r.json;
}

async function consents(phone) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}/consents`);
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries(r.json.data.map((c) => [c.scope, c.state]));
}

test('ProTexting sees the Octopush contact: its opt-out lands on it and blacklists it here', async (t) => {
    if (await absent('POST', '/v1/contacts/opt-out')) {
        t.skip('no ProTexting surface in this build (issue 10)');
        return;
    }
    const phone = num(150);
    const c = await octopush({ contacts: [{ phone_number: phone, first_name: 'Cross' }], list_name: 'cross' });
    assert.equal(c.status, 201, c.text);
    const before = await nativeContact(phone);
    // ProTexting's number form: 11 digits, no "+"
    const o = await request(srv.url, 'POST', `/v1/contacts/opt-out?access_token=${encodeURIComponent(acme.api_key)}`,
        { body: { PhoneNumber: phone.slice(1) }, headers: { Accept: 'application/json' } });
    assert.equal(o.status, 201, o.text);
    const after = await nativeContact(phone);
    assert.equal(after.id, before.id, 'one contact');
    assert.equal(after.first_name, 'Cross');
    assert.equal((await consents(phone)).all, 'opted_out');
    assert.equal((await eventsOf(srv, phone)).at(-1).surface, 'protexting');
    const again = await octopush({ contacts: [{ phone_number: phone }], list_name: 'cross',
        auto_remove_blacklisted_numbers: true });
    assert.equal(again.status, 201, again.text);
    assert.equal(again.json.items[0].status, 'skipped');
});

test('Omeda sees the Octopush contact: its opt-in by message type lands on it', async (t) => {
    if (await absent('POST', '/webservices/rest/brand/ACME/messageoptqueue')) {
        t.skip('no Omeda surface in this build (issue 12)');
        return;
    }
    const phone = num(151);
    const c = await octopush({ contacts: [{ phone_number: phone, last_name: 'Omeda' }], list_name: 'cross2' });
    assert.equal(c.status, 201, c.text);
    const before = await nativeContact(phone);
    // Omeda's number form: CountryCallingCode + national PhoneNumber
    const o = await request(srv.url, 'POST', '/webservices/rest/brand/ACME/messageoptqueue', {
        body: { PhoneNumber: phone.slice(2), CountryCallingCode: 1,
            MessageOpts: [{ Status: 1, MessageTypeId: [6] }] },
        headers: { 'x-omeda-appid': acme.api_key } });
    assert.equal(o.status, 200, o.text);
    const after = await nativeContact(phone);
    assert.equal(after.id, before.id, 'one contact');
    assert.equal(after.last_name, 'Omeda');
    const s = await consents(phone);
    assert.equal(s['type:6'], 'opted_in');
    assert.equal(s[`group:${before.groups[0]}`], 'opted_in');
});
