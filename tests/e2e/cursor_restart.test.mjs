// issue 13: a CURSOR confirmation mail is a durable job: one queued for retry before a restart,
// and one whose attempt was cut by kill -9, are both sent by the next process, and their
// links work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, num, request } from './lib/server.mjs';
import { startSmtpSink } from './lib/smtpsink.mjs';
import { waitFor, patchSettings, assertNoSanitizerReport, SLOW } from './lib/msgkit.mjs';

const BASE = '/rest/api/optin/v1/optins';

function post(srv, contactId, body) {
    return request(srv.url, 'POST', `${BASE}/${contactId}`, {
        body, headers: { Authorization: `Bearer ${srv.key}` }, timeout: 20000,
    });
}

async function contact(srv, phone, email) {
    const r = await srv.v1('POST', '/contacts', { body: { phone, email } });
    assert.equal(r.status, 201, r.text);
    return r.json;
}

async function confirmVia(srv, link) {
    const r = await request(srv.url, 'POST', link, { body: '', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(r.status, 200, r.text);
}

test('mails queued before a restart, or cut by kill -9, are sent after it', { timeout: 90000 * SLOW }, async (t) => {
    const sink = await startSmtpSink();
    let srv = await startServer({ accounts: ['acme'] });
    const { dir, dbPath, key } = srv;
    t.after(async () => {
        await srv.stop({ expectClean: false });
        await sink.close();
    });
    await patchSettings(srv, { smtp: { url: sink.url, from: 'optin@acme.example' } });
    const a = await contact(srv, num(1), 'ann@example.com');
    const b = await contact(srv, num(2), 'ben@example.com');

    // 1. Refused now (525), kept for retry; the server stops before the retry is due.
    sink.setMode('reject');
    const r = await post(srv, a.id, [{ type: 'ALL', channel: 'EMAIL', extRefNo: 'restart-a' }]);
    assert.equal(r.status, 525, r.text);
    await srv.stop({ keepDir: true });
    assertNoSanitizerReport(srv);
    sink.setMode('accept');
    assert.equal(sink.mails.length, 0);
    srv = await startServer({ accounts: [], dir, dbPath });
    srv.key = key;
    const mailA = await sink.waitForMail(1, { timeout: 20000 * SLOW });
    const urlA = srv.url;
    assert.deepEqual(mailA.to, ['ann@example.com']);

    // 2. The attempt hangs (the SMTP server never greets) and the process is killed in it.
    sink.setMode('timeout');
    const pending = post(srv, b.id, [{ type: `ALL`, channel: 'EMAIL', extRefNo: 'restart-b' }]).catch((e) => e);
    await waitFor(() => sink.hung.length >= 1, { what: 'the mail attempt to connect' });
    await srv.kill9();
    const cut = await pending;
    assert.ok(cut instanceof Error, 'the request was cut by the kill');
    sink.setMode('accept');
    srv = await startServer({ accounts: [], dir, dbPath });
    srv.key = key;
    const mailB = await waitFor(() => sink.mails.find((m) => m.to.includes('ben@example.com')),
        { timeout: 20000, what: 'the mail cut by the kill' });

    // Both links work on the new process, and the records are approved. A job due at start
    // waits for the server's address: the link is absolute, to this process's port.
    for (const [m, ref, url] of [[mailA, 'restart-a', urlA], [mailB, 'restart-b', srv.url]]) {
        assert.equal(m.links.length, 1, m.text);
        assert.ok(m.text.includes(`${url}/c/`), m.text);
        await confirmVia(srv, m.links[0]);
        const o = await request(srv.url, 'GET', `${BASE}/flows/${ref}`, { headers: { Authorization: `Bearer ${key}` } });
        assert.equal(o.status, 200, o.text);
        assert.equal(o.json.optIns[0].status, 'APPROVED');
        assert.equal(o.json.optIns[0].origin, 'EMAIL');
    }
    // Each mail went out once after the restarts (no duplicate of the one already sent).
    assert.equal(sink.mails.filter((m) => m.to.includes('ann@example.com')).length, 1);
});

test('a stop while a POST waits for its mail answers it, exits cleanly, and the mail goes out later',
    { timeout: 90000 * SLOW }, async (t) => {
        // issue 13: the waiting request is suspended (cd_req_wait); a stop must neither hang on
        // it nor crash; the mail stays queued.
        const sink = await startSmtpSink();
        let srv = await startServer({ accounts: ['acme'] });
        const { dir, dbPath, key } = srv;
        t.after(async () => {
            await srv.stop({ expectClean: false });
            await sink.close();
        });
        await patchSettings(srv, { smtp: { url: sink.url, from: 'optin@acme.example' } });
        const c = await contact(srv, num(3), 'cat@example.com');
        sink.setMode('timeout');
        const pending = post(srv, c.id, [{ type: 'ALL', channel: 'EMAIL', extRefNo: 'stop-1' }]).catch((e) => e);
        await waitFor(() => sink.hung.length >= 1, { what: 'the mail attempt to connect' });
        await srv.stop({ keepDir: true }); // insists on exit code 0
        assertNoSanitizerReport(srv);
        const r = await pending;
        assert.ok(!(r instanceof Error), `the waiting request was answered: ${r}`);
        assert.ok([503, 525].includes(r.status), r.text);
        sink.setMode('accept');
        srv = await startServer({ accounts: [], dir, dbPath });
        srv.key = key;
        const mail = await waitFor(() => sink.mails.find((m) => m.to.includes('cat@example.com')),
            { timeout: 20000, what: 'the mail after the stop' });
        await confirmVia(srv, mail.links[0]);
    });
