// issue 11 (performance): an Octopush batch's new contacts, consents and ledger events are
// written many rows to a statement (src/store/sqlite_rows.c, chunks of up to 256 rows, the rest
// in statements of 128, 64 ... 1). A batch larger than a chunk, of new and known numbers, in-batch
// duplicates and a blacklisted number, must store exactly what writing row by row stored: the
// same rows, ids in order, one opt-in event per new contact, and a ledger that verifies.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, allPages } from './lib/server.mjs';
import { eventsOf, setConsent, assertNoSanitizerReport } from './lib/msgkit.mjs';

const PATH = '/v1/public/contact/create';

let srv;
before(async () => {
    srv = await startServer({ accounts: ['acme'] });
});
after(async () => {
    if (srv) assertNoSanitizerReport(srv);
    await srv?.stop();
});

function op(body) {
    const acct = srv.accounts.acme;
    return request(srv.url, 'POST', PATH, {
        body, headers: { 'api-login': acct.login, 'api-key': acct.api_key },
    });
}

/** Distinct valid US numbers (917-3XX-XXXX). */
const phone = (i) => `+1917${300 + Math.floor(i / 10000)}${String(i % 10000).padStart(4, '0')}`;

async function groupId(name) {
    const pages = await allPages(srv, '/groups', { limit: 1000 });
    return pages.flatMap((p) => p.data).find((g) => g.name === name)?.id;
}

async function listed(gid) {
    const pages = await allPages(srv, `/contacts?group=${gid}`, { limit: 1000 });
    return new Map(pages.flatMap((p) => p.data).map((c) => [c.phone, c]));
}

async function eventCount() {
    const pages = await allPages(srv, '/events', { limit: 1000 });
    return pages.reduce((n, p) => n + p.data.length, 0);
}

describe('a batch over the multi-row chunk size', () => {
    test('new and known numbers, duplicates and a blacklisted one: rows, ids, events, ledger', async () => {
        const known = Array.from({ length: 40 }, (_, i) => phone(i));
        const r0 = await op({ contacts: known.map((p) => ({ phone_number: p, first_name: 'Old' })),
            list_name: 'rows_list', tag_name: 'a' });
        assert.equal(r0.status, 201, r0.text);
        const gid = await groupId('rows_list');
        const stopped = known[5];
        await setConsent(srv, stopped, 'opted_out');
        const before0 = await eventCount();

        // 260 new numbers (a chunk of 256 and a rest of 4), a known one every 7th item,
        // then a repeat of a new and of a known number
        const items = [];
        const fresh = [];
        for (let i = 0; i < 260; i++) {
            if (i % 7 === 0) items.push({ phone_number: known[i / 7], first_name: 'Known', kind: 'known' });
            const p = phone(1000 + i);
            fresh.push(p);
            items.push({ phone_number: p, first_name: `N${i}`, param1: `p${i}`, email: i % 2 ? null : `n${i}@x.example`, kind: 'new' });
        }
        items.push({ phone_number: fresh[3], first_name: 'N3', param1: 'p3', email: null, kind: 'new' });
        items.push({ phone_number: known[0], first_name: 'Known', kind: 'known' });
        const body = { contacts: items.map(({ kind, ...c }) => c), list_name: 'rows_list', tag_name: 'b' };
        const r = await op(body);
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json.items.map((it) => it.status),
            items.map((it) => (it.kind === 'new' ? 'added' : 'updated')));

        const m = await listed(gid);
        assert.equal(m.size, 40 + 260, 'every number a member of the list');
        let prev = 0;
        fresh.forEach((p, i) => {
            const c = m.get(p);
            assert.ok(c, p);
            assert.equal(c.first_name, `N${i}`);
            assert.equal(c.params.param1, `p${i}`);
            assert.equal(c.email, i % 2 ? null : `n${i}@x.example`);
            assert.deepEqual(c.tags, ['b']);
            assert.deepEqual(c.groups, [gid]);
            // ids as SQLite gives them row by row: consecutive, in the batch's order
            if (prev) assert.equal(c.id, prev + 1, `id of ${p}`);
            prev = c.id;
        });
        for (let k = 0; k < 38; k++) {
            const c = m.get(known[k]);
            assert.equal(c.first_name, 'Known', known[k]);
            assert.deepEqual(c.tags, ['a', 'b']);
        }

        // one opt-in per new number; the known ones were opted in already, the blacklisted one
        // gets no group opt-in
        assert.equal(await eventCount(), before0 + 260);
        for (const p of [fresh[0], fresh[127], fresh[128], fresh[255], fresh[256], fresh[259]]) {
            const ev = await eventsOf(srv, p);
            assert.equal(ev.length, 1, p);
            assert.equal(ev[0].scope, `group:${gid}`);
            assert.equal(ev[0].new_state, 'opted_in');
            assert.equal(ev[0].surface, 'octopush');
            const c = await srv.v1('GET', `/contacts/${encodeURIComponent(p)}/consents`);
            assert.deepEqual(c.json.data.map((x) => [x.scope, x.state]), [[`group:${gid}`, 'opted_in']]);
        }
        const se = await eventsOf(srv, stopped);
        assert.deepEqual(se.map((e) => [e.scope, e.new_state]).at(-1), ['all', 'opted_out']);
        // the events' ids and seqs follow each other as row-by-row inserts made them
        const all = (await allPages(srv, '/events', { limit: 1000 })).flatMap((p) => p.data);
        const tail = all.slice(-260);
        tail.forEach((e, i) => {
            if (i) {
                assert.equal(e.seq, tail[i - 1].seq + 1);
                assert.equal(e.id, tail[i - 1].id + 1);
                assert.equal(e.prev_hash, tail[i - 1].hash);
            }
        });
        assert.deepEqual(tail.map((e) => e.phone), fresh);

        const v = await srv.cliOk(['ledger', 'verify']);
        assert.equal(v.json.ok, true, v.stdout);

        // with auto_remove_blacklisted_numbers the blacklisted member goes, the rest stay
        const r2 = await op({ contacts: [{ phone_number: stopped }, { phone_number: phone(5000) }],
            list_name: 'rows_list', auto_remove_blacklisted_numbers: true });
        assert.deepEqual(r2.json.items.map((it) => it.status), ['skipped', 'added']);
        const m2 = await listed(gid);
        assert.equal(m2.size, 300);
        assert.ok(!m2.has(stopped));
        assert.equal((await srv.cliOk(['ledger', 'verify'])).json.ok, true);
    });
});
