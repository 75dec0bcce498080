// issue 10: the ProTexting opt-in flow over the real SMPP transport: the CTA reaches the SMSC
// simulator, the handset's YES (deliver_sm) opts in and brings exactly one ConfirmMessage, and
// after the handset's STOP nothing more goes out but the one STOP confirmation, whatever
// SendCTAMessage says.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, num } from './lib/server.mjs';
import { startSmsc } from './lib/smsc.mjs';
import { waitFor, sleep, addSender, assertNoSanitizerReport } from './lib/msgkit.mjs';
import { DEFAULT_CTA, create, digits, makeGroup, consentsOf, outTo } from './lib/protexting.mjs';

const SENDER = num(190);
let smsc;
let srv;
let group;

before(async () => {
    smsc = await startSmsc();
    const url = `smpp://consentd:secret@127.0.0.1:${smsc.port}?window=10&enquire_link=30`;
    srv = await startServer({ args: ['--transport', 'smpp', '--smpp', url] });
    await smsc.waitForBound(1, 10000);
    await addSender(srv, SENDER, { isDefault: true });
    group = await makeGroup(srv, 'news');
});
after(async () => {
    try {
        await srv?.stop();
        if (srv) assertNoSanitizerReport(srv);
    } finally {
        await smsc?.stop();
    }
});

const at = (to) => smsc.received.filter((m) => m.to === to);
const waitAt = (to, n) => waitFor(() => (at(to).length >= n ? at(to) : false), { what: `${n} SMS to ${to} at the SMSC` });

test('CTA out, YES in, one ConfirmMessage out; STOP in, one confirmation, then nothing', async () => {
    const phone = num(40);
    const r = await create(srv, { PhoneNumber: digits(phone), GroupIds: [group], ConfirmMessage: 'Welcome to ACME news' });
    assert.equal(r.status, 201, r.text);
    let got = await waitAt(phone, 1);
    assert.equal(got[0].text, DEFAULT_CTA);
    assert.equal(got[0].from, SENDER);

    assert.equal(await smsc.sendMo(phone, SENDER, 'YES'), 0, 'deliver_sm answered OK');
    got = await waitAt(phone, 2);
    assert.equal(got[1].text, 'Welcome to ACME news');
    await waitFor(async () => (await consentsOf(srv, phone))[`group:${group}`] === 'opted_in', { what: 'opted in' });
    const kinds = (await outTo(srv, phone)).map((m) => m.kind);
    assert.deepEqual(kinds, ['cta', 'confirmation']);

    assert.equal(await smsc.sendMo(phone, SENDER, 'STOP'), 0);
    got = await waitAt(phone, 3);
    assert.match(got[2].text, /unsubscribed/);
    for (const send of [1, 0, undefined]) {
        const again = await create(srv, { PhoneNumber: digits(phone), GroupIds: [group], SendCTAMessage: send });
        assert.equal(again.status, 201, again.text);
        assert.equal(again.json.OptedOut, 1);
    }
    // Give anything wrongly queued the time to reach the SMSC: nothing more arrives.
    await sleep(500);
    assert.equal(at(phone).length, 3, `nothing after the STOP confirmation: ${JSON.stringify(at(phone).map((m) => m.text))}`);
    const out = await outTo(srv, phone);
    assert.deepEqual(out.map((m) => [m.kind, m.status === 'refused' ? m.reason : 'out']),
        [['cta', 'out'], ['confirmation', 'out'], ['keyword_reply', 'out'],
            ['cta', 'opted_out'], ['cta', 'opted_out'], ['cta', 'opted_out']]);
});
