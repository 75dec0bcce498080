/* tests/unit/core/test_ledger.c -- core/ledger.h: the tamper-evident consent ledger
 * (DESIGN.md section 2: each event stores the SHA-256 of its content plus the previous
 * event's hash, so any edit or deletion is detectable).
 *
 * The first part checks the hash on in-memory events; the second writes a real chain through
 * cd_consent_set into a SQLite file, edits that file behind the store's back with the sqlite3
 * API, and expects cd_ledger_verify to name the first broken seq. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/consent.h"
#include "core/contact.h"
#include "core/ledger.h"
#include "core/phone.h"
#include "util/canon.h"
#include "util/crypto.h"

#include "../testutil.h"

/* ---- the hash ---- */

static void fill_event(cd_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->id = 17;
    ev->account_id = 3;
    ev->seq = 5;
    ev->contact_id = 9;
    snprintf(ev->phone, sizeof ev->phone, "+16465550123");
    snprintf(ev->scope, sizeof ev->scope, "group:4");
    snprintf(ev->old_state, sizeof ev->old_state, "pending");
    snprintf(ev->new_state, sizeof ev->new_state, "opted_in");
    snprintf(ev->surface, sizeof ev->surface, "native");
    snprintf(ev->channel, sizeof ev->channel, "sms");
    snprintf(ev->keyword, sizeof ev->keyword, "YES");
    cd_sha256_hex("Reply YES to join", 17, ev->disclosure_sha256);
    snprintf(ev->ip, sizeof ev->ip, "203.0.113.7");
    snprintf(ev->user_agent, sizeof ev->user_agent, "curl/8.0 caf\xc3\xa9");
    snprintf(ev->site, sizeof ev->site, "site-1");
    snprintf(ev->session, sizeof ev->session, "sess-1");
    snprintf(ev->ext_ref, sizeof ev->ext_ref, "ext-42");
    snprintf(ev->credential_id, sizeof ev->credential_id, "key_0123456789abcdef");
    snprintf(ev->request_id, sizeof ev->request_id, "req-1");
    ev->created_ms = 1795457574123LL;
    snprintf(ev->prev_hash, sizeof ev->prev_hash, "%s", CD_LEDGER_GENESIS);
    snprintf(ev->hash, sizeof ev->hash, "%064d", 0);
}

enum kind { INT, STR };

struct field {
    const char *name;
    size_t off;
    size_t size;
    enum kind kind;
    bool hashed; /* id and hash are not part of the content */
};

#define F(name, kind, hashed)                                                                      \
    {                                                                                              \
#name, offsetof(cd_event, name), sizeof(((cd_event *)0)->name), kind, hashed               \
    }

/* Every member of cd_event: keep in step with store/store.h. */
static const struct field fields[] = {
    F(id, INT, false),        F(account_id, INT, true), F(seq, INT, true),
    F(contact_id, INT, true), F(phone, STR, true),      F(scope, STR, true),
    F(old_state, STR, true),  F(new_state, STR, true),  F(surface, STR, true),
    F(channel, STR, true),    F(keyword, STR, true),    F(disclosure_sha256, STR, true),
    F(ip, STR, true),         F(user_agent, STR, true), F(site, STR, true),
    F(session, STR, true),    F(ext_ref, STR, true),    F(credential_id, STR, true),
    F(request_id, STR, true), F(created_ms, INT, true), F(prev_hash, STR, true),
    F(hash, STR, false),
};

/* Changes one field of ev a little: +1, or the first character. */
static void nudge(cd_event *ev, const struct field *f, int how)
{
    char *p = (char *)ev + f->off;
    if (f->kind == INT) {
        int64_t v;
        memcpy(&v, p, sizeof v);
        v += how == 0 ? 1 : -1;
        memcpy(p, &v, sizeof v);
    } else if (how == 0) {
        p[0] = p[0] == 'Z' ? 'Y' : 'Z';
    } else {
        p[0] = '\0'; /* emptied */
    }
}

static void test_hash_deterministic(void **state)
{
    cd_event a, b;
    char h1[65], h2[65];
    (void)state;

    fill_event(&a);
    fill_event(&b);
    cd_ledger_hash(&a, h1);
    cd_ledger_hash(&b, h2);
    assert_string_equal(h1, h2);
    cd_ledger_hash(&a, h2);
    assert_string_equal(h1, h2);
    assert_int_equal(strlen(h1), 64);
    assert_int_equal(strspn(h1, "0123456789abcdef"), 64);
}

/* The member table covers the whole struct: its rows are in member order and leave no gap
 * wider than alignment padding, so a field added to cd_event without a row here fails. */
static void test_field_table_complete(void **state)
{
    size_t end = 0;
    (void)state;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        assert_true(fields[i].off >= end);
        assert_true(fields[i].off - end < sizeof(int64_t));
        if (fields[i].kind == INT)
            assert_int_equal(fields[i].size, sizeof(int64_t));
        end = fields[i].off + fields[i].size;
    }
    assert_true(sizeof(cd_event) - end < sizeof(int64_t));
}

static void test_hash_changes_with_every_field(void **state)
{
    cd_event base;
    char want[65];
    (void)state;

    fill_event(&base);
    cd_ledger_hash(&base, want);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        for (int how = 0; how < 2; how++) {
            cd_event ev = base;
            char got[65];
            nudge(&ev, &fields[i], how);
            cd_ledger_hash(&ev, got);
            if ((strcmp(got, want) != 0) != fields[i].hashed) {
                print_error("field %s (change %d): hash %s\n", fields[i].name, how,
                            fields[i].hashed ? "did not change" : "changed");
                fail();
            }
        }
    }
}

/* Moving a character from one field to the next must not keep the hash: the content is
 * structured JSON, not a concatenation. */
static void test_hash_field_boundaries(void **state)
{
    cd_event a, b;
    char ha[65], hb[65];
    (void)state;

    fill_event(&a);
    fill_event(&b);
    snprintf(a.site, sizeof a.site, "ab");
    snprintf(a.session, sizeof a.session, "c");
    snprintf(b.site, sizeof b.site, "a");
    snprintf(b.session, sizeof b.session, "bc");
    cd_ledger_hash(&a, ha);
    cd_ledger_hash(&b, hb);
    assert_string_not_equal(ha, hb);
}

/* cd_ledger_hash writes the canonical form by hand: strings that need escaping must come
 * out as jansson writes them, or old chains would stop verifying. */
static void test_hash_escapes_like_jansson(void **state)
{
    cd_event ev;
    char got[65], want[CD_SHA256_HEX];
    (void)state;
    fill_event(&ev);
    snprintf(ev.user_agent, sizeof ev.user_agent,
             "Mozilla \"5.0\" \\ caf\xc3\xa9 \xf0\x9f\x98\x80\n\x01");
    snprintf(ev.ext_ref, sizeof ev.ext_ref, "tab\there/slash");
    cd_ledger_hash(&ev, got);
    json_t *content = cd_ledger_content(&ev);
    char *canon = cd_canon_json(content);
    cd_sha256_hex(canon, strlen(canon), want);
    assert_string_equal(got, want);
    free(canon);
    json_decref(content);
}

/* issue 16: an event whose strings need no escape is hashed without a heap buffer; the
 * bytes must be those of the canonical JSON all the same, at every length up to the
 * longest user agent, and with each kind of character that sends it the other way. */
static void test_hash_plain_like_jansson(void **state)
{
    cd_event ev;
    char got[65], want[CD_SHA256_HEX];
    (void)state;
    const char *odd[] = {"",
                         "plain ascii 0123",
                         "quote\"",
                         "back\\slash",
                         "tab\t",
                         "caf\xc3\xa9",
                         "~!@#$%^&*()_+{}|:<>?`-=[];',./"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        for (size_t len = 0; len < sizeof ev.user_agent; len += 97) {
            fill_event(&ev);
            memset(ev.user_agent, 'u', len);
            ev.user_agent[len] = '\0';
            snprintf(ev.site, sizeof ev.site, "%s", odd[i]);
            ev.seq = (int64_t)len * 1000003;
            ev.contact_id = -(int64_t)i;
            ev.account_id = i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : (int64_t)len;
            cd_ledger_hash(&ev, got);
            json_t *content = cd_ledger_content(&ev);
            char *canon = cd_canon_json(content);
            cd_sha256_hex(canon, strlen(canon), want);
            assert_string_equal(got, want);
            free(canon);
            json_decref(content);
        }
    }
}

static void test_hash_is_sha256_of_canonical_content(void **state)
{
    cd_event ev;
    char got[65], want[CD_SHA256_HEX];
    (void)state;

    fill_event(&ev);
    cd_ledger_hash(&ev, got);

    json_t *content = cd_ledger_content(&ev);
    assert_non_null(content);
    char *canon = cd_canon_json(content);
    assert_non_null(canon);
    cd_sha256_hex(canon, strlen(canon), want);
    assert_string_equal(got, want);

    /* The content is every field but id and hash, under its own name. */
    assert_int_equal(json_object_size(content), 20);
    assert_null(json_object_get(content, "id"));
    assert_null(json_object_get(content, "hash"));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *v = json_object_get(content, fields[i].name);
        if (!fields[i].hashed)
            continue;
        assert_non_null(v);
        if (fields[i].kind == INT) {
            int64_t n;
            memcpy(&n, (const char *)&ev + fields[i].off, sizeof n);
            assert_true(json_is_integer(v));
            assert_int_equal(json_integer_value(v), n);
        } else {
            assert_string_equal(json_string_value(v), (const char *)&ev + fields[i].off);
        }
    }
    /* Canonical: sorted keys, no spaces, non-ASCII escaped. */
    assert_non_null(strstr(canon, "{\"account_id\":3,\"channel\":\"sms\","));
    assert_non_null(strstr(canon, "\"user_agent\":\"curl/8.0 caf\\u00E9\""));
    assert_null(strchr(canon, 0xc3)); /* non-ASCII is escaped (strchr takes an int) */

    free(canon);
    json_decref(content);
}

/* ---- a real chain in SQLite ---- */

#define PHONE_A "+16465550123"
#define PHONE_B "+16465550124"

typedef struct chain {
    char dir[TU_PATH_MAX];
    cd_store *store;
    int64_t account_id, other_account_id;
    cd_event events[8];
    int nevents;
} chain;

typedef struct account_job {
    const char *name;
    cd_account out;
    char key[CD_KEY_LEN];
} account_job;

static int job_account(cd_db *db, void *arg, cd_err *err)
{
    account_job *j = arg;
    cd_account_in in = {.name = j->name};
    if (cd_account_create(db, &in, &j->out, j->key, err) != 0)
        return -1;
    return cd_ledger_sign_account(db, &j->out, err); /* as `consentd account create` does */
}

typedef struct consent_job {
    int64_t account_id;
    const char *phone;
    const char *scope;
    cd_state state;
    unsigned flags;
    const char *user_agent; /* NULL: "unit" */
    cd_event ev;
} consent_job;

/* Finds or creates the contact, then sets one consent: what a request to POST /consents
 * does in its job. */
static int job_consent(cd_db *db, void *arg, cd_err *err)
{
    consent_job *j = arg;
    cd_contact_patch p = {.phone = j->phone, .merge = true};
    cd_contact c;
    bool created;
    cd_scope sc;
    cd_provenance prov = {.surface = "native",
                          .channel = "api",
                          .disclosure = "Reply STOP to stop",
                          .ip = "203.0.113.9",
                          .user_agent = j->user_agent ? j->user_agent : "unit",
                          .request_id = "req"};
    if (cd_scope_parse(j->scope, "scope", &sc, err) != 0)
        return -1;
    if (cd_contact_apply(db, j->account_id, 0, &p, true, &c, &created, err) != 0)
        return -1;
    int rc =
        cd_consent_set(db, j->account_id, &c, sc, j->state, j->flags, &prov, NULL, &j->ev, err);
    cd_contact_clear(&c);
    return rc;
}

static void add_event(chain *ch, int64_t account_id, const char *phone, const char *scope,
                      cd_state st, unsigned flags)
{
    consent_job j = {
        .account_id = account_id, .phone = phone, .scope = scope, .state = st, .flags = flags};
    cd_err err = {0};
    if (cd_store_run(ch->store, job_consent, &j, &err) != 0)
        fail_msg("consent job: %s", err.msg);
    if (account_id == ch->account_id)
        ch->events[ch->nevents++] = j.ev;
}

static int64_t create_account(cd_store *s, const char *name)
{
    account_job j = {.name = name};
    cd_err err = {0};
    if (cd_store_run(s, job_account, &j, &err) != 0)
        fail_msg("account job: %s", err.msg);
    return j.out.id;
}

/* A fresh database with five events for "acme" and one for "other". */
static int chain_setup(void **state)
{
    chain *ch = calloc(1, sizeof *ch);
    assert_non_null(ch);
    tu_mkdtemp(ch->dir);
    ch->store = tu_store_open(ch->dir, "t.db");
    ch->account_id = create_account(ch->store, "acme");
    ch->other_account_id = create_account(ch->store, "other");
    add_event(ch, ch->account_id, PHONE_A, "all", CD_STATE_PENDING, 0);
    add_event(ch, ch->account_id, PHONE_A, "all", CD_STATE_OPTED_IN, 0);
    add_event(ch, ch->other_account_id, PHONE_A, "all", CD_STATE_OPTED_IN, 0);
    add_event(ch, ch->account_id, PHONE_A, "type:7", CD_STATE_OPTED_OUT, 0);
    add_event(ch, ch->account_id, PHONE_B, "all", CD_STATE_OPTED_IN, 0);
    add_event(ch, ch->account_id, PHONE_A, "all", CD_STATE_OPTED_OUT, 0);
    *state = ch;
    return 0;
}

static int chain_teardown(void **state)
{
    chain *ch = *state;
    cd_store_close(ch->store);
    tu_rmtree(ch->dir);
    free(ch);
    return 0;
}

static void verify(chain *ch, int64_t account_id, cd_ledger_report *r)
{
    cd_err err = {0};
    cd_db *db = cd_store_reader(ch->store);
    assert_non_null(db);
    int rc = cd_ledger_verify(db, account_id, r, &err);
    cd_store_release(ch->store, db);
    if (rc != 0)
        fail_msg("cd_ledger_verify: %s", err.msg);
}

/* Edits the file with plain SQL while the store is closed, then reopens it. */
static void tamper(chain *ch, const char *sql)
{
    char path[TU_PATH_MAX + 8];
    sqlite3 *h = NULL;
    char *msg = NULL;

    cd_store_close(ch->store);
    ch->store = NULL;
    snprintf(path, sizeof path, "%s/t.db", ch->dir);
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("tamper: %s: %s", sql, msg ? msg : "?");
    assert_true(sqlite3_changes(h) > 0);
    sqlite3_close(h);
    ch->store = tu_store_open(ch->dir, "t.db");
}

static void test_chain_verifies(void **state)
{
    chain *ch = *state;
    cd_ledger_report r;

    assert_int_equal(ch->nevents, 5);
    verify(ch, ch->account_id, &r);
    assert_true(r.ok);
    assert_int_equal(r.events, 5);
    assert_null(r.problem);

    /* Every account at once. */
    verify(ch, 0, &r);
    assert_true(r.ok);
    assert_int_equal(r.events, 6);
    assert_int_equal(r.account_id, 0);

    verify(ch, ch->other_account_id, &r);
    assert_true(r.ok);
    assert_int_equal(r.events, 1);
}

/* Seqs count per account from 1, each event links to the one before it, and the account
 * row keeps the head. */
static void test_chain_links(void **state)
{
    chain *ch = *state;
    (void)state;

    for (int i = 0; i < ch->nevents; i++) {
        const cd_event *ev = &ch->events[i];
        char h[65];
        assert_int_equal(ev->seq, i + 1);
        assert_int_equal(ev->account_id, ch->account_id);
        assert_string_equal(ev->prev_hash, i == 0 ? CD_LEDGER_GENESIS : ch->events[i - 1].hash);
        cd_ledger_hash(ev, h);
        assert_string_equal(h, ev->hash);
        assert_true(ev->id > 0);
    }
    assert_string_equal(ch->events[0].old_state, "");
    assert_string_equal(ch->events[0].new_state, "pending");
    assert_string_equal(ch->events[1].old_state, "pending");
    assert_string_equal(ch->events[2].scope, "type:7");
    assert_string_equal(ch->events[3].phone, PHONE_B);
    /* Only the disclosure's hash is kept. */
    char dh[CD_SHA256_HEX];
    cd_sha256_hex("Reply STOP to stop", 18, dh);
    assert_string_equal(ch->events[0].disclosure_sha256, dh);

    cd_db *db = cd_store_reader(ch->store);
    cd_account a;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)ch->account_id);
    assert_int_equal(cd_store_account_get(db, "id", id, &a, NULL), 0);
    cd_store_release(ch->store, db);
    assert_int_equal(a.ledger_seq, 5);
    assert_string_equal(a.ledger_head, ch->events[4].hash);
}

/* What the store gives back is what was hashed, field by field. */
static int compare_stored(const cd_event *ev, void *arg)
{
    chain *ch = arg;
    assert_in_range(ev->seq, 1, ch->nevents);
    const cd_event *want = &ch->events[ev->seq - 1];
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *a = (const char *)ev + fields[i].off;
        const char *b = (const char *)want + fields[i].off;
        if (fields[i].kind == INT)
            assert_memory_equal(a, b, sizeof(int64_t));
        else
            assert_string_equal(a, b);
    }
    return 0;
}

static void test_stored_events_equal_appended(void **state)
{
    chain *ch = *state;
    cd_db *db = cd_store_reader(ch->store);
    assert_int_equal(cd_store_event_scan(db, ch->account_id, compare_stored, ch, NULL), 0);
    cd_store_release(ch->store, db);
}

static void expect_problem(chain *ch, int64_t seq, const char *problem)
{
    cd_ledger_report r;
    verify(ch, ch->account_id, &r);
    assert_false(r.ok);
    assert_int_equal(r.account_id, ch->account_id);
    assert_string_equal(r.account, "acme");
    assert_int_equal(r.seq, seq);
    if (problem != NULL) {
        assert_non_null(r.problem);
        assert_string_equal(r.problem, problem);
    }
    /* The all-accounts check finds the same thing. */
    cd_ledger_report all;
    verify(ch, 0, &all);
    assert_false(all.ok);
    assert_int_equal(all.account_id, ch->account_id);
    assert_int_equal(all.seq, seq);
}

static void test_tamper_edit_field(void **state)
{
    chain *ch = *state;
    tamper(ch, "UPDATE events SET ip = '198.51.100.1' WHERE seq = 2 AND account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    expect_problem(ch, 2, "hash_mismatch");
}

static void test_tamper_edit_state(void **state)
{
    chain *ch = *state;
    /* The most tempting edit: turn the final opt-out into an opt-in. */
    tamper(ch, "UPDATE events SET new_state = 'opted_in' WHERE seq = 5 AND account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    expect_problem(ch, 5, "hash_mismatch");
}

static void test_tamper_edit_hash(void **state)
{
    chain *ch = *state;
    tamper(ch, "UPDATE events SET hash = '" CD_LEDGER_GENESIS "' WHERE seq = 3 AND account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    expect_problem(ch, 3, "hash_mismatch");
}

/* An editor who also recomputes the edited event's hash still breaks the next link. */
static void test_tamper_edit_and_rehash(void **state)
{
    chain *ch = *state;
    cd_event ev = ch->events[1];
    char sql[512];

    snprintf(ev.ip, sizeof ev.ip, "198.51.100.1");
    cd_ledger_hash(&ev, ev.hash);
    snprintf(sql, sizeof sql,
             "UPDATE events SET ip = '%s', hash = '%s' WHERE seq = 2 AND account_id = %lld", ev.ip,
             ev.hash, (long long)ch->account_id);
    tamper(ch, sql);
    expect_problem(ch, 3, NULL);
}

static void test_tamper_delete_middle(void **state)
{
    chain *ch = *state;
    tamper(ch, "DELETE FROM events WHERE seq = 3 AND account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    expect_problem(ch, 3, "missing");
}

static void test_tamper_delete_first(void **state)
{
    chain *ch = *state;
    tamper(ch, "DELETE FROM events WHERE seq = 1 AND account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    expect_problem(ch, 1, "missing");
}

static void test_tamper_swap_seqs(void **state)
{
    chain *ch = *state;
    char sql[512];
    /* Three steps around UNIQUE (account_id, seq). */
    snprintf(sql, sizeof sql,
             "UPDATE events SET seq = -2 WHERE seq = 2 AND account_id = %lld;"
             "UPDATE events SET seq = 2 WHERE seq = 4 AND account_id = %lld;"
             "UPDATE events SET seq = 4 WHERE seq = -2 AND account_id = %lld;",
             (long long)ch->account_id, (long long)ch->account_id, (long long)ch->account_id);
    tamper(ch, sql);
    expect_problem(ch, 2, NULL);
}

/* Deleting the newest events leaves an intact but shorter chain; the account's head
 * still says how long it was. */
static void test_tamper_delete_newest(void **state)
{
    chain *ch = *state;
    tamper(ch, "DELETE FROM events WHERE seq = 5 AND account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    expect_problem(ch, 5, "missing");
}

static void test_tamper_delete_all(void **state)
{
    chain *ch = *state;
    tamper(ch, "DELETE FROM events WHERE account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    expect_problem(ch, 1, "missing");
}

/* The account row's head is checked against the chain too. */
static void test_tamper_head_behind(void **state)
{
    chain *ch = *state;
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE accounts SET ledger_seq = 4, ledger_head = '%s' WHERE id = %lld",
             ch->events[3].hash, (long long)ch->account_id);
    tamper(ch, sql);
    expect_problem(ch, 6, "head_mismatch");
}

static void test_tamper_head_hash(void **state)
{
    chain *ch = *state;
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE accounts SET ledger_head = '%s' WHERE id = %lld",
             CD_LEDGER_GENESIS, (long long)ch->account_id);
    tamper(ch, sql);
    expect_problem(ch, 6, "head_mismatch");
}

/* The other account's chain is unaffected by an edit to acme's. */
static void test_tamper_is_per_account(void **state)
{
    chain *ch = *state;
    cd_ledger_report r;
    tamper(ch, "DELETE FROM events WHERE seq = 3 AND account_id = "
               "(SELECT id FROM accounts WHERE name = 'acme')");
    verify(ch, ch->other_account_id, &r);
    assert_true(r.ok);
    assert_int_equal(r.events, 1);
}

/* A refused transition writes no event: the chain stays as it was. */
static void test_refused_change_appends_nothing(void **state)
{
    chain *ch = *state;
    consent_job j = {
        .account_id = ch->account_id, .phone = PHONE_A, .scope = "all", .state = CD_STATE_OPTED_IN};
    cd_err err = {0};
    cd_ledger_report r;

    assert_int_equal(cd_store_run(ch->store, job_consent, &j, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_string_equal(err.reason, "opted_out");
    verify(ch, ch->account_id, &r);
    assert_true(r.ok);
    assert_int_equal(r.events, 5);

    /* With the override it goes through, as event 6. */
    j.flags = CD_CONSENT_OVERRIDE;
    assert_int_equal(cd_store_run(ch->store, job_consent, &j, &err), 0);
    assert_int_equal(j.ev.seq, 6);
    assert_string_equal(j.ev.prev_hash, ch->events[4].hash);
    verify(ch, ch->account_id, &r);
    assert_true(r.ok);
    assert_int_equal(r.events, 6);
}

static void test_verify_unknown_account(void **state)
{
    chain *ch = *state;
    cd_ledger_report r;
    cd_err err = {0};
    cd_db *db = cd_store_reader(ch->store);
    assert_int_equal(cd_ledger_verify(db, 999, &r, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    cd_store_release(ch->store, db);
}

/* ---- issue 8 item 12: the signed head, the key file, raw user agents ---- */

static const unsigned char test_key[CD_LEDGER_KEY_LEN] = "0123456789abcdef0123456789abcdef";

/* Rewrites acme's events from seq 2 on as someone with the database and no key would:
 * a new ip in each, every hash and link recomputed, and the head moved to the new chain. */
static void rewrite_like_an_attacker(chain *ch)
{
    char sql[8192] = "";
    char prev[65];
    snprintf(prev, sizeof prev, "%s", ch->events[0].hash);
    for (int i = 1; i < ch->nevents; i++) {
        cd_event ev = ch->events[i];
        snprintf(ev.ip, sizeof ev.ip, "198.51.100.%d", i);
        memcpy(ev.prev_hash, prev, sizeof prev);
        cd_ledger_hash(&ev, ev.hash);
        memcpy(prev, ev.hash, sizeof prev);
        size_t n = strlen(sql);
        snprintf(sql + n, sizeof sql - n,
                 "UPDATE events SET ip = '%s', prev_hash = '%s', hash = '%s' "
                 "WHERE seq = %lld AND account_id = %lld;",
                 ev.ip, ev.prev_hash, ev.hash, (long long)ev.seq, (long long)ch->account_id);
    }
    size_t n = strlen(sql);
    snprintf(sql + n, sizeof sql - n, "UPDATE accounts SET ledger_head = '%s' WHERE id = %lld;",
             prev, (long long)ch->account_id);
    tamper(ch, sql);
}

static int signed_setup(void **state)
{
    chain *ch = calloc(1, sizeof *ch);
    assert_non_null(ch);
    tu_mkdtemp(ch->dir);
    ch->store = tu_store_open(ch->dir, "t.db");
    cd_store_set_ledger_key(ch->store, test_key);
    ch->account_id = create_account(ch->store, "acme");
    ch->other_account_id = create_account(ch->store, "other");
    add_event(ch, ch->account_id, PHONE_A, "all", CD_STATE_PENDING, 0);
    add_event(ch, ch->account_id, PHONE_A, "all", CD_STATE_OPTED_IN, 0);
    add_event(ch, ch->account_id, PHONE_B, "all", CD_STATE_OPTED_IN, 0);
    add_event(ch, ch->account_id, PHONE_A, "all", CD_STATE_OPTED_OUT, 0);
    *state = ch;
    return 0;
}

static void test_signed_head_verifies(void **state)
{
    chain *ch = *state;
    cd_ledger_report r;
    verify(ch, 0, &r);
    assert_true(r.ok);
    assert_true(r.signature_checked);
    assert_int_equal(r.events, 4);
}

/* issue 8 item 12: a consistent rewrite of events and head passes the chain check, which is
 * why the head is signed; with the key the rewrite is caught. */
static void test_rewrite_without_key_is_detected(void **state)
{
    chain *ch = *state;
    cd_ledger_report r;
    rewrite_like_an_attacker(ch); /* reopens the store: no key in it yet */
    verify(ch, ch->account_id, &r);
    assert_true(r.ok); /* the hash chain alone cannot tell */
    assert_false(r.signature_checked);
    cd_store_set_ledger_key(ch->store, test_key);
    verify(ch, ch->account_id, &r);
    assert_false(r.ok);
    assert_string_equal(r.problem, "head_signature");
    assert_int_equal(r.seq, 4);
    verify(ch, ch->other_account_id, &r); /* no events: nothing to sign */
    assert_true(r.ok);
}

/* issue 8 item 12: erasing an account's whole ledger (head back to seq 0) is a rewrite too. */
static void test_erase_all_is_detected(void **state)
{
    chain *ch = *state;
    char sql[512];
    cd_ledger_report r;
    snprintf(sql, sizeof sql,
             "DELETE FROM events WHERE account_id = %lld; UPDATE accounts SET ledger_seq = 0, "
             "ledger_head = '" CD_LEDGER_GENESIS "' WHERE id = %lld",
             (long long)ch->account_id, (long long)ch->account_id);
    tamper(ch, sql);
    cd_store_set_ledger_key(ch->store, test_key);
    verify(ch, ch->account_id, &r);
    assert_false(r.ok);
    assert_string_equal(r.problem, "head_signature");
    /* The other account never had an event, and its signed empty head still verifies. */
    verify(ch, ch->other_account_id, &r);
    assert_true(r.ok);
}

static int job_sign_all(cd_db *db, void *arg, cd_err *err)
{
    return cd_ledger_sign_all(db, arg, err);
}

static void test_unsigned_head_is_reported(void **state)
{
    chain *ch = *state;
    char sql[128];
    cd_ledger_report r;
    snprintf(sql, sizeof sql, "UPDATE accounts SET ledger_sig = '' WHERE id = %lld",
             (long long)ch->account_id);
    tamper(ch, sql);
    cd_store_set_ledger_key(ch->store, test_key);
    verify(ch, 0, &r);
    assert_false(r.ok);
    assert_string_equal(r.problem, "head_unsigned");
    /* A new key signs the heads as they are (what the server does when it creates one). */
    cd_err err = {0};
    int n = 0;
    assert_int_equal(cd_store_run(ch->store, job_sign_all, &n, &err), 0);
    assert_int_equal(n, 2);
    verify(ch, 0, &r);
    assert_true(r.ok);
}

/* issue 8 items 12 and 13: the key file is created 0600 with 32 random bytes, read back as
 * the same key, and its absence or a damaged file is an error, never a silent new key. */
static void test_key_file(void **state)
{
    char dir[TU_PATH_MAX], path[TU_PATH_MAX + 16];
    unsigned char k1[CD_LEDGER_KEY_LEN], k2[CD_LEDGER_KEY_LEN];
    bool created = false;
    cd_err err = {0};
    struct stat st;
    (void)state;
    tu_mkdtemp(dir);
    snprintf(path, sizeof path, "%s/ledger.key", dir);
    assert_int_equal(cd_ledger_key_load(path, false, k1, &created, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    mode_t old = umask(0); /* a permissive umask must not widen the file */
    assert_int_equal(cd_ledger_key_load(path, true, k1, &created, &err), 0);
    umask(old);
    assert_true(created);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);
    char tmp[TU_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    assert_int_not_equal(stat(tmp, &st), 0); /* written aside, then linked into place */
    assert_int_equal(cd_ledger_key_load(path, true, k2, &created, &err), 0);
    assert_false(created);
    assert_memory_equal(k1, k2, sizeof k1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(cd_ledger_key_load(path, false, k2, NULL, &err), -1);
    assert_int_equal(err.code, CD_EINVAL);
    tu_rmtree(dir);
}

/* issue 8 item 12: a raw User-Agent that is not UTF-8 is kept, escaped, and hashed as the
 * canonical JSON says; one longer than the column is cut at a character boundary. */
static void test_append_cleans_user_agent(void **state)
{
    chain *ch = *state;
    char ua[2048] = "Bad\xff\xfe"
                    "Agent/1.0 ";
    cd_err err = {0};
    char h[65];
    consent_job j = {.account_id = ch->account_id,
                     .phone = "+16465550125",
                     .scope = "all",
                     .state = CD_STATE_OPTED_IN,
                     .user_agent = ua};
    assert_int_equal(cd_store_run(ch->store, job_consent, &j, &err), 0);
    assert_string_equal(j.ev.user_agent, "Bad\\xFF\\xFEAgent/1.0 ");
    json_t *content = cd_ledger_content(&j.ev);
    assert_non_null(content); /* jansson refuses strings that are not UTF-8 */
    cd_canon_sha256(content, h);
    json_decref(content);
    assert_string_equal(h, j.ev.hash);

    for (int i = 0; i < 300; i++)
        strcat(ua, "\xc3\xa9"); /* 600 more bytes of two-byte characters */
    j.phone = "+16465550126";
    assert_int_equal(cd_store_run(ch->store, job_consent, &j, &err), 0);
    /* 21 bytes of escaped prefix, then 245 whole two-byte characters: 511 bytes. */
    size_t n = strlen(j.ev.user_agent);
    assert_int_equal(n, 511);
    assert_memory_equal(j.ev.user_agent + n - 2, "\xc3\xa9", 2);
    json_t *s = json_string(j.ev.user_agent);
    assert_non_null(s);
    json_decref(s);
    cd_ledger_report r;
    verify(ch, ch->account_id, &r);
    assert_true(r.ok);
}

/* issue 12 (perf): cd_ledger_append hashes without a second look at strings its copies
 * found plain; one that needs an escape (a quote, a backslash, a control character, a
 * character beyond ASCII) in any field takes the escaping path. Either way the hash is
 * that of the canonical JSON jansson writes, and the chain verifies. */
static void test_append_hash_plain_and_escaped(void **state)
{
    chain *ch = *state;
    const char *agents[] = {"curl/8.0 (plain)",
                            "say \"hi\"",
                            "back\\slash",
                            "tab\there",
                            "caf\xc3\xa9",
                            "",
                            "~ !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}"};
    for (size_t i = 0; i < sizeof agents / sizeof agents[0]; i++) {
        char phone[16], h[65];
        cd_err err = {0};
        snprintf(phone, sizeof phone, "+1646555020%zu", i);
        consent_job j = {.account_id = ch->account_id,
                         .phone = phone,
                         .scope = "all",
                         .state = CD_STATE_OPTED_IN,
                         .user_agent = agents[i]};
        assert_int_equal(cd_store_run(ch->store, job_consent, &j, &err), 0);
        assert_string_equal(j.ev.user_agent, agents[i]);
        json_t *content = cd_ledger_content(&j.ev);
        assert_non_null(content);
        cd_canon_sha256(content, h);
        json_decref(content);
        assert_string_equal(h, j.ev.hash);
        cd_ledger_hash(&j.ev, h);
        assert_string_equal(h, j.ev.hash);
    }
    cd_ledger_report r;
    verify(ch, ch->account_id, &r);
    assert_true(r.ok);
}

#define SIGNED_TEST(f) cmocka_unit_test_setup_teardown(f, signed_setup, chain_teardown)
#define CHAIN_TEST(f)  cmocka_unit_test_setup_teardown(f, chain_setup, chain_teardown)

static int group_setup(void **state)
{
    (void)state;
    cd_phone_init(); /* cd_account_create checks the region with libphonenumber */
    return cd_crypto_init();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_deterministic),
        cmocka_unit_test(test_field_table_complete),
        cmocka_unit_test(test_hash_changes_with_every_field),
        cmocka_unit_test(test_hash_field_boundaries),
        cmocka_unit_test(test_hash_is_sha256_of_canonical_content),
        cmocka_unit_test(test_hash_escapes_like_jansson),
        cmocka_unit_test(test_hash_plain_like_jansson),
        CHAIN_TEST(test_chain_verifies),
        CHAIN_TEST(test_chain_links),
        CHAIN_TEST(test_stored_events_equal_appended),
        CHAIN_TEST(test_tamper_edit_field),
        CHAIN_TEST(test_tamper_edit_state),
        CHAIN_TEST(test_tamper_edit_hash),
        CHAIN_TEST(test_tamper_edit_and_rehash),
        CHAIN_TEST(test_tamper_delete_middle),
        CHAIN_TEST(test_tamper_delete_first),
        CHAIN_TEST(test_tamper_swap_seqs),
        CHAIN_TEST(test_tamper_delete_newest),
        CHAIN_TEST(test_tamper_delete_all),
        CHAIN_TEST(test_tamper_head_behind),
        CHAIN_TEST(test_tamper_head_hash),
        CHAIN_TEST(test_tamper_is_per_account),
        CHAIN_TEST(test_refused_change_appends_nothing),
        CHAIN_TEST(test_verify_unknown_account),
        SIGNED_TEST(test_signed_head_verifies),
        SIGNED_TEST(test_rewrite_without_key_is_detected),
        SIGNED_TEST(test_unsigned_head_is_reported),
        SIGNED_TEST(test_erase_all_is_detected),
        cmocka_unit_test(test_key_file),
        SIGNED_TEST(test_append_cleans_user_agent),
        SIGNED_TEST(test_append_hash_plain_and_escaped),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
