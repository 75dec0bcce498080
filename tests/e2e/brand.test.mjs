// issue 9 part 9: "{brand}" in reply texts and in the CTA is the account's brand, not its
// name (a fresh install's account "default" has the brand DEFAULT, and its STOP reply must
// start "DEFAULT:", not "default:").
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, num } from './lib/server.mjs';
import { optIn, listMessages, inbound, assertNoSanitizerReport } from './lib/msgkit.mjs';

let srv;
let dflt;
let shop;

before(async () => {
    srv = await startServer({ accounts: ['default', { name: 'shop', brand: 'SHOPCO' }] });
    dflt = { key: srv.accounts.default.api_key };
    shop = { key: srv.accounts.shop.api_key };
});
after(async () => {
    await srv?.stop();
    if (srv) assertNoSanitizerReport(srv);
});

async function replyTo(phone, k) {
    const l = await listMessages(srv, { to: phone, kind: 'keyword_reply' }, k);
    assert.equal(l.length, 1, JSON.stringify(l));
    return l[0].text;
}

test('a fresh install: the STOP reply of account "default" starts with its brand DEFAULT', async () => {
    const phone = num(40);
    await optIn(srv, phone, dflt);
    const r = await inbound(srv, phone, num(41), 'STOP', dflt);
    assert.equal(r.action, 'opted_out');
    assert.equal(await replyTo(phone, dflt),
        'DEFAULT: You are unsubscribed and will get no more messages. Reply START to resubscribe.');
});

test('a brand that is not the name: HELP reply and the CTA carry the brand', async () => {
    const phone = num(42);
    const r = await inbound(srv, phone, num(43), 'HELP', shop);
    assert.equal(r.action, 'help');
    assert.equal(await replyTo(phone, shop),
        'SHOPCO: Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply.');
    const f = await srv.v1('POST', '/flows', { body: { channel: 'sms', phone: num(44), scopes: ['all'] }, ...shop });
    assert.equal(f.status, 201, f.text);
    assert.match(f.json.disclosure, /^SHOPCO: Reply YES/);
    assert.match(f.json.message.text, /^SHOPCO: Reply YES/);
});
