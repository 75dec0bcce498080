// issue 11: an Octopush batch's list opt-ins reach webhook subscribers as consent.changed,
// one per new contact, as any other consent change does; an account without a subscription
// gets no delivery. (The batch asks once whether anyone listens, not once per contact.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request } from './lib/server.mjs';
import { startReceiver } from './lib/receiver.mjs';
import { waitFor, sleep, assertNoSanitizerReport } from './lib/msgkit.mjs';

let srv;
let rx;
before(async () => {
    rx = await startReceiver();
    srv = await startServer({ accounts: ['acme', 'globex'], args: ['--allow-private-webhooks'] });
});
after(async () => {
    if (srv) assertNoSanitizerReport(srv);
    await srv?.stop();
    await rx?.stop();
});

function op(body, as) {
    const acct = srv.accounts[as];
    return request(srv.url, 'POST', '/v1/public/contact/create', {
        body,
        headers: { 'api-login': acct.login, 'api-key': acct.api_key },
    });
}

const PHONES = ['+16465550181', '+16465550182', '+16465550183'];

test('each new contact of a batch sends one consent.changed for the list', async () => {
    const s = await srv.v1('POST', '/webhooks', { body: { url: rx.url, events: ['consent.changed'] } });
    assert.equal(s.status, 201, s.text);
    const r = await op({ contacts: PHONES.map((p) => ({ phone_number: p })), list_name: 'hooked' }, 'acme');
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.json.items.map((i) => i.status), ['added', 'added', 'added']);
    await waitFor(() => PHONES.every((p) => rx.events('consent.changed').some((g) => g.json.payload.phone === p)),
        { what: 'a consent.changed per contact' });
    for (const p of PHONES) {
        const got = rx.events('consent.changed').filter((g) => g.json.payload.phone === p);
        assert.equal(got.length, 1, `one event for ${p}`);
        assert.match(got[0].json.payload.scope, /^group:\d+$/);
        assert.equal(got[0].json.payload.new_state, 'opted_in');
        assert.equal(got[0].json.payload.surface, 'octopush');
    }
});

test('an account without a subscription gets no delivery for its batch', async () => {
    const r = await op({ contacts: [{ phone_number: '+16465550184' }], list_name: 'quiet' }, 'globex');
    assert.equal(r.status, 201, r.text);
    await sleep(300);
    assert.equal(rx.events('consent.changed').filter((g) => g.json.payload.phone === '+16465550184').length, 0);
    const d = await srv.v1('GET', '/webhooks/deliveries', { key: srv.accounts.globex.api_key });
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.data.length, 0);
});
