/* tests/unit/store/test_store.c -- the SQLite backend through store/store.h: migrations,
 * every record kind, account isolation, the reader pool, and the writer's group commit
 * (DESIGN.md section 5: one writer thread commits requests in groups, and a request is
 * acknowledged only after its commit is durable; store.h: a failing job leaves no trace and
 * does not disturb its neighbours). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "store/store_int.h"  /* max_readers, for the pool test */
#include "store/sqlite_int.h" /* the statements, for the history append test */

#include "../testutil.h"

#define MAX_IDS 256

typedef struct fixture {
    char dir[TU_PATH_MAX];
    cd_store *store;
    cd_db *rd;           /* the current reader: see rd() */
    int64_t acme, other; /* account ids */
} fixture;

/* ---- writes as jobs ---- */

enum op_kind {
    OP_ACCOUNT,
    OP_HEAD,
    OP_KEY,
    OP_REVOKE,
    OP_CONTACT,
    OP_NAMED,
    OP_CONSENT,
    OP_EVENT,
    OP_MESSAGE,
    OP_IDEM
};

typedef struct op {
    enum op_kind kind;
    int64_t account_id;
    int64_t contact_id; /* OP_CONSENT; the seq for OP_HEAD */
    const char *str;    /* named kind, idempotency key, key id, head hash */
    void *rec;
} op;

static int job_op(cd_db *db, void *arg, cd_err *err)
{
    op *o = arg;
    switch (o->kind) {
    case OP_ACCOUNT:
        return cd_store_account_insert(db, o->rec, err);
    case OP_HEAD:
        return cd_store_account_set_head(db, o->account_id, o->contact_id, o->str, err);
    case OP_KEY:
        return cd_store_key_insert(db, o->rec, err);
    case OP_REVOKE:
        return cd_store_key_revoke(db, o->account_id, o->str, 1234, err);
    case OP_CONTACT:
        return cd_store_contact_put(db, o->rec, err);
    case OP_NAMED:
        return cd_store_named_insert(db, o->str, o->account_id, o->rec, err);
    case OP_CONSENT:
        return cd_store_consent_put(db, o->account_id, o->contact_id, o->rec, err);
    case OP_EVENT:
        return cd_store_event_insert(db, o->rec, err);
    case OP_MESSAGE:
        return cd_store_message_insert(db, o->rec, err);
    case OP_IDEM:
        return cd_store_idem_put(db, o->account_id, o->str, o->rec, err);
    }
    return cd_fail(err, CD_EINTERNAL, "", "unknown op");
}

/* Runs one op as a job: 0, or -1 with *err. */
static int run_op(cd_store *s, op o, cd_err *err)
{
    cd_err ignored;
    return cd_store_run(s, job_op, &o, err ? err : &ignored);
}

/* Runs one op that must succeed. */
static void must(cd_store *s, op o)
{
    cd_err err = {0};
    if (run_op(s, o, &err) != 0)
        fail_msg("op %d failed: %s", (int)o.kind, err.msg);
}

static int64_t add_account(cd_store *s, const char *name, const char *login, const char *brand)
{
    cd_account a = {.created_ms = 1000};
    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.login, sizeof a.login, "%s", login);
    snprintf(a.brand, sizeof a.brand, "%s", brand);
    snprintf(a.region, sizeof a.region, "US");
    snprintf(a.timezone, sizeof a.timezone, "UTC");
    snprintf(a.jwt_secret, sizeof a.jwt_secret, "secret-%s", name);
    snprintf(a.ledger_head, sizeof a.ledger_head, "%064d", 0);
    must(s, (op){.kind = OP_ACCOUNT, .rec = &a});
    assert_true(a.id > 0);
    return a.id;
}

static int64_t add_named(cd_store *s, const char *kind, int64_t account_id, int64_t id,
                         const char *name)
{
    cd_named n = {.id = id, .created_ms = 5000};
    snprintf(n.name, sizeof n.name, "%s", name);
    must(s, (op){.kind = OP_NAMED, .account_id = account_id, .str = kind, .rec = &n});
    return n.id;
}

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir);
    f->store = tu_store_open(f->dir, "store.db");
    f->acme = add_account(f->store, "acme", "ops@acme.test", "ACME");
    f->other = add_account(f->store, "other", "ops@other.test", "OTH");
    f->rd = cd_store_reader(f->store);
    assert_non_null(f->rd);
    *state = f;
    return 0;
}

/* A reader holds one snapshot from checkout to release, so each read here checks out a
 * fresh one: it sees every job that has completed so far. */
static cd_db *rd(fixture *f)
{
    cd_store_release(f->store, f->rd);
    f->rd = cd_store_reader(f->store);
    assert_non_null(f->rd);
    return f->rd;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    cd_store_release(f->store, f->rd);
    cd_store_close(f->store);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* ---- opening and migrations ---- */

static int raw_int(const char *path, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static void test_open_migrate_twice(void **state)
{
    char dir[TU_PATH_MAX], path[TU_PATH_MAX + 16];
    cd_account a;
    (void)state;

    tu_mkdtemp(dir);
    snprintf(path, sizeof path, "%s/m.db", dir);
    cd_store *s = tu_store_open(dir, "m.db");
    int version = cd_store_schema_version(s);
    assert_true(version >= 1);
    add_account(s, "acme", "acme", "ACME");
    cd_store_close(s);

    /* A second open finds the schema in place and applies nothing. */
    s = tu_store_open(dir, "m.db");
    assert_int_equal(cd_store_schema_version(s), version);
    cd_db *db = cd_store_reader(s);
    assert_int_equal(cd_store_account_get(db, "name", "acme", &a, NULL), 0);
    cd_store_release(s, db);
    cd_store_close(s);

    assert_int_equal(raw_int(path, "PRAGMA user_version"), version);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM accounts"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                   "AND name IN ('accounts', 'api_keys', 'contacts', 'groups', "
                                   "'contact_groups', 'message_types', 'consents', 'events', "
                                   "'messages', 'idempotency')"),
                     10);
    assert_int_equal(raw_int(path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    tu_rmtree(dir);
}

/* ---- issue 12: migration 0018 on tables as 0001 and 0008 made them ---- */

extern const char cd_sqlite_0018[];

static int mem_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* How many OpenEphemeral opcodes the statement runs. */
static int ephemeral_ops(sqlite3 *h, const char *sql)
{
    char explain[1024];
    sqlite3_stmt *st = NULL;
    int n = 0;
    snprintf(explain, sizeof explain, "EXPLAIN %s", sql);
    assert_int_equal(sqlite3_prepare_v2(h, explain, -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        n += strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
    sqlite3_finalize(st);
    return n;
}

static void test_migrate_0018(void **state)
{
    static const char old[] =
        "CREATE TABLE consents (account_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, "
        "scope TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'opted_in', "
        "'opted_out')), updated_ms INTEGER NOT NULL, PRIMARY KEY (account_id, contact_id, "
        "scope)) WITHOUT ROWID;"
        "CREATE INDEX consents_blacklist ON consents(account_id, contact_id) "
        "WHERE scope = 'all' AND state = 'opted_out';"
        "CREATE TABLE submissions (account_id INTEGER NOT NULL REFERENCES accounts(id), "
        "uuid TEXT NOT NULL, site TEXT NOT NULL DEFAULT '', session TEXT NOT NULL DEFAULT '', "
        "phone TEXT NOT NULL DEFAULT '', status INTEGER NOT NULL, detail TEXT NOT NULL, "
        "created_ms INTEGER NOT NULL, PRIMARY KEY (account_id, uuid)) WITHOUT ROWID;"
        "INSERT INTO consents VALUES (1, 7, 'all', 'opted_out', 10), (1, 7, 'type:2', "
        "'opted_in', 11), (2, 7, 'group:1', 'pending', 12);"
        "INSERT INTO submissions VALUES (1, 'b-uuid', '498', 's', '+16303303039', 200, '{}', 2),"
        "(1, 'a-uuid', '', '', '', 400, '{\"x\":1}', 1);";
    static const char put[] =
        "INSERT INTO consents (account_id, contact_id, scope, state, updated_ms) VALUES (?, ?, "
        "?, ?, ?) ON CONFLICT (account_id, contact_id, scope) DO UPDATE SET state = "
        "excluded.state, updated_ms = excluded.updated_ms";
    sqlite3 *h = NULL;
    (void)state;
    assert_int_equal(sqlite3_open(":memory:", &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, old, NULL, NULL, NULL), SQLITE_OK);
    assert_true(ephemeral_ops(h, put) > 0); /* what 0018 is for */
    assert_int_equal(sqlite3_exec(h, cd_sqlite_0018, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(ephemeral_ops(h, put), 0);

    /* Every row kept, as it was, and the blacklist index with them. */
    assert_int_equal(mem_int(h, "SELECT count(*) FROM consents"), 3);
    assert_int_equal(mem_int(h, "SELECT updated_ms FROM consents WHERE account_id = 1 AND "
                                "contact_id = 7 AND scope = 'type:2' AND state = 'opted_in'"),
                     11);
    assert_int_equal(mem_int(h, "SELECT count(*) FROM consents INDEXED BY consents_blacklist "
                                "WHERE account_id = 1 AND contact_id = 7 AND scope = 'all' AND "
                                "state = 'opted_out'"),
                     1);
    assert_int_equal(mem_int(h, "SELECT count(*) FROM submissions"), 2);
    assert_int_equal(mem_int(h, "SELECT status FROM submissions WHERE account_id = 1 AND "
                                "uuid = 'b-uuid' AND site = '498' AND session = 's' AND "
                                "phone = '+16303303039' AND detail = '{}' AND created_ms = 2"),
                     200);
    assert_int_equal(mem_int(h, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_0018'"), 0);

    /* The same rules: the three states only, one uuid per account. */
    assert_int_not_equal(
        sqlite3_exec(h, "INSERT INTO consents VALUES (1, 8, 'all', 'maybe', 1)", NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "INSERT INTO consents VALUES (1, 8, 'all', 'pending', 1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_not_equal(sqlite3_exec(h,
                                      "INSERT INTO submissions (account_id, uuid, status, "
                                      "detail, created_ms) VALUES (1, 'a-uuid', 200, '{}', 3)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_equal(sqlite3_exec(h,
                                  "INSERT INTO submissions (account_id, uuid, status, "
                                  "detail, created_ms) VALUES (2, 'a-uuid', 200, '{}', 3)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
}

static void test_open_errors(void **state)
{
    char dir[TU_PATH_MAX], url[TU_PATH_MAX + 32];
    cd_err err = {0};
    (void)state;

    assert_null(cd_store_open(NULL, &err));
    assert_int_equal(err.code, CD_EINVAL);
    assert_null(cd_store_open("mysql://localhost/x", &err));
    assert_int_equal(err.code, CD_EINVAL);
    assert_null(cd_store_open("sqlite", NULL));
    memset(&err, 0, sizeof err);
    assert_null(cd_store_open("sqlite:/nonexistent-consentd-dir/x.db", &err));
    assert_int_equal(err.code, CD_ESTORE);
    assert_null(strstr(err.msg, "no such table")); /* never SQL text */
    cd_store_close(NULL);

    /* A database from a newer consentd is refused, not downgraded. */
    tu_mkdtemp(dir);
    snprintf(url, sizeof url, "%s/new.db", dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(url, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    tu_sqlite_url(url, sizeof url, dir, "new.db");
    memset(&err, 0, sizeof err);
    assert_null(cd_store_open(url, &err));
    assert_int_equal(err.code, CD_ESTORE);
    tu_rmtree(dir);
}

/* ---- accounts and keys ---- */

static void test_accounts(void **state)
{
    fixture *f = *state;
    cd_account a;
    cd_err err = {0};
    char id[32];

    snprintf(id, sizeof id, "%lld", (long long)f->acme);
    assert_int_equal(cd_store_account_get(rd(f), "id", id, &a, &err), 0);
    assert_int_equal(a.id, f->acme);
    assert_string_equal(a.name, "acme");
    assert_string_equal(a.login, "ops@acme.test");
    assert_string_equal(a.brand, "ACME");
    assert_string_equal(a.region, "US");
    assert_string_equal(a.timezone, "UTC");
    assert_string_equal(a.jwt_secret, "secret-acme");
    assert_int_equal(a.created_ms, 1000);
    assert_int_equal(a.ledger_seq, 0);
    assert_int_equal(strlen(a.ledger_head), 64);

    assert_int_equal(cd_store_account_get(rd(f), "name", "other", &a, &err), 0);
    assert_int_equal(a.id, f->other);
    assert_int_equal(cd_store_account_get(rd(f), "login", "ops@acme.test", &a, &err), 0);
    assert_int_equal(a.id, f->acme);
    assert_int_equal(cd_store_account_get(rd(f), "brand", "OTH", &a, &err), 0);
    assert_int_equal(a.id, f->other);

    static const char *const missing[][2] = {
        {"id", "999"}, {"name", "nobody"}, {"name", "ACME"}, {"login", "acme"}, {"brand", "acme"}};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(cd_store_account_get(rd(f), missing[i][0], missing[i][1], &a, &err), -1);
        assert_int_equal(err.code, CD_ENOTFOUND);
    }

    /* Names and logins are unique; brands are not, and the oldest account wins. */
    cd_account dup = {.created_ms = 1};
    snprintf(dup.name, sizeof dup.name, "acme");
    snprintf(dup.login, sizeof dup.login, "new@acme.test");
    snprintf(dup.jwt_secret, sizeof dup.jwt_secret, "x");
    snprintf(dup.ledger_head, sizeof dup.ledger_head, "x");
    assert_int_equal(run_op(f->store, (op){.kind = OP_ACCOUNT, .rec = &dup}, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    snprintf(dup.name, sizeof dup.name, "acme2");
    snprintf(dup.login, sizeof dup.login, "ops@other.test");
    assert_int_equal(run_op(f->store, (op){.kind = OP_ACCOUNT, .rec = &dup}, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    int64_t third = add_account(f->store, "acme2", "ops@acme2.test", "ACME");
    assert_int_equal(cd_store_account_get(rd(f), "brand", "ACME", &a, &err), 0);
    assert_int_equal(a.id, f->acme);
    assert_true(third > f->other);
}

static void test_account_head(void **state)
{
    fixture *f = *state;
    cd_account a;
    char id[32];
    const char *h = "abababababababababababababababababababababababababababababababab";

    must(f->store, (op){.kind = OP_HEAD, .account_id = f->acme, .contact_id = 7, .str = h});
    snprintf(id, sizeof id, "%lld", (long long)f->acme);
    assert_int_equal(cd_store_account_get(rd(f), "id", id, &a, NULL), 0);
    assert_int_equal(a.ledger_seq, 7);
    assert_string_equal(a.ledger_head, h);
    /* The other account is untouched. */
    assert_int_equal(cd_store_account_get(rd(f), "name", "other", &a, NULL), 0);
    assert_int_equal(a.ledger_seq, 0);
}

typedef struct id_list {
    int n;
    int64_t ids[MAX_IDS];
    char names[MAX_IDS][40];
    int64_t rowids[MAX_IDS];
    int stop_after; /* 0 = never */
} id_list;

static int collect_account(const cd_account *a, void *arg)
{
    id_list *l = arg;
    l->ids[l->n++] = a->id;
    return l->stop_after && l->n >= l->stop_after;
}

static void test_account_each(void **state)
{
    fixture *f = *state;
    id_list l = {0};

    assert_int_equal(cd_store_account_each(rd(f), collect_account, &l, NULL), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], f->acme); /* in id order */
    assert_int_equal(l.ids[1], f->other);
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    assert_int_equal(cd_store_account_each(rd(f), collect_account, &l, NULL), 0);
    assert_int_equal(l.n, 1);
}

static int collect_key(const cd_apikey *k, void *arg)
{
    id_list *l = arg;
    snprintf(l->names[l->n++], sizeof l->names[0], "%s", k->id);
    return 0;
}

static void test_keys(void **state)
{
    fixture *f = *state;
    cd_apikey k = {.account_id = 0}, got;
    cd_err err = {0};
    id_list l = {0};

    k.account_id = f->acme;
    k.created_ms = 10;
    snprintf(k.id, sizeof k.id, "key_0000000000000001");
    snprintf(k.name, sizeof k.name, "first");
    snprintf(k.hash, sizeof k.hash, "%064d", 1);
    must(f->store, (op){.kind = OP_KEY, .rec = &k});
    snprintf(k.id, sizeof k.id, "key_0000000000000002");
    k.created_ms = 20;
    must(f->store, (op){.kind = OP_KEY, .rec = &k});
    assert_int_equal(run_op(f->store, (op){.kind = OP_KEY, .rec = &k}, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);

    assert_int_equal(cd_store_key_get(rd(f), "key_0000000000000001", &got, &err), 0);
    assert_int_equal(got.account_id, f->acme);
    assert_string_equal(got.name, "first");
    assert_string_equal(got.hash, k.hash);
    assert_int_equal(got.created_ms, 10);
    assert_int_equal(got.revoked_ms, 0);
    assert_int_equal(cd_store_key_get(rd(f), "key_ffff", &got, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    /* issue 16: the key with its account, in one read */
    cd_account acct;
    assert_int_equal(cd_store_key_auth(rd(f), "key_0000000000000002", &got, &acct, &err), 0);
    assert_string_equal(got.id, "key_0000000000000002");
    assert_int_equal(got.account_id, f->acme);
    assert_string_equal(got.hash, k.hash);
    assert_int_equal(got.created_ms, 20);
    assert_int_equal(acct.id, f->acme);
    assert_string_equal(acct.name, "acme");
    assert_int_equal(cd_store_key_auth(rd(f), "key_ffff", &got, &acct, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);

    assert_int_equal(cd_store_key_each(rd(f), f->acme, collect_key, &l, NULL), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.names[0], "key_0000000000000001");
    assert_string_equal(l.names[1], "key_0000000000000002");
    l.n = 0;
    assert_int_equal(cd_store_key_each(rd(f), f->other, collect_key, &l, NULL), 0);
    assert_int_equal(l.n, 0);

    /* Revoke: only within the owning account, only once. */
    assert_int_equal(
        run_op(f->store,
               (op){.kind = OP_REVOKE, .account_id = f->other, .str = "key_0000000000000001"},
               &err),
        -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    must(f->store, (op){.kind = OP_REVOKE, .account_id = f->acme, .str = "key_0000000000000001"});
    assert_int_equal(cd_store_key_get(rd(f), "key_0000000000000001", &got, &err), 0);
    assert_int_equal(got.revoked_ms, 1234);
    assert_int_equal(
        run_op(f->store,
               (op){.kind = OP_REVOKE, .account_id = f->acme, .str = "key_0000000000000001"}, &err),
        -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
}

/* ---- contacts ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A contact to insert; groups is a JSON array literal or NULL. The caller clears it. */
static void make_contact(cd_contact *c, int64_t account_id, const char *phone, const char *first,
                         const char *last, const char *email, const char *tags, const char *groups)
{
    memset(c, 0, sizeof *c);
    c->account_id = account_id;
    snprintf(c->phone, sizeof c->phone, "%s", phone);
    c->first_name = dup_or_null(first);
    c->last_name = dup_or_null(last);
    c->email = dup_or_null(email);
    c->tags = tags ? json_loads(tags, 0, NULL) : NULL;
    c->groups = groups ? json_loads(groups, 0, NULL) : NULL;
    c->created_ms = 100;
    c->updated_ms = 200;
}

static int64_t put_contact(fixture *f, cd_contact *c)
{
    must(f->store, (op){.kind = OP_CONTACT, .rec = c});
    assert_true(c->id > 0);
    return c->id;
}

static void assert_json_eq(const json_t *got, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    assert_non_null(w);
    if (!json_equal(got, w)) {
        char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
        print_error("JSON: got %s, want %s\n", g ? g : "(null)", want);
        free(g);
        json_decref(w);
        fail();
    }
    json_decref(w);
}

static void test_contact_put_get(void **state)
{
    fixture *f = *state;
    cd_contact c, got;
    cd_err err = {0};
    int64_t g1 = add_named(f->store, "group", f->acme, 0, "one");
    int64_t g2 = add_named(f->store, "group", f->acme, 0, "two");
    char groups[64];

    snprintf(groups, sizeof groups, "[%lld,%lld]", (long long)g2, (long long)g1);
    make_contact(&c, f->acme, "+16465550101", "Alice", "Smith", "alice@example.com",
                 "[\"vip\",\"ny\"]", groups);
    c.zip = strdup("10001");
    c.city = strdup("New York");
    c.birthday = strdup("1990-01-02");
    c.params[0] = strdup("p1");
    c.params[4] = strdup("p5");
    c.custom = json_pack("{s:s,s:i}", "plan", "gold", "n", 3);
    int64_t id = put_contact(f, &c);
    cd_contact_clear(&c);

    assert_int_equal(cd_store_contact_get(rd(f), f->acme, id, &got, &err), 0);
    assert_int_equal(got.id, id);
    assert_int_equal(got.account_id, f->acme);
    assert_string_equal(got.phone, "+16465550101");
    assert_string_equal(got.first_name, "Alice");
    assert_string_equal(got.last_name, "Smith");
    assert_string_equal(got.email, "alice@example.com");
    assert_string_equal(got.zip, "10001");
    assert_string_equal(got.city, "New York");
    assert_string_equal(got.birthday, "1990-01-02");
    assert_string_equal(got.params[0], "p1");
    assert_null(got.params[1]); /* unset stays NULL */
    assert_string_equal(got.params[4], "p5");
    assert_json_eq(got.custom, "{\"plan\":\"gold\",\"n\":3}");
    assert_json_eq(got.tags, "[\"vip\",\"ny\"]");
    snprintf(groups, sizeof groups, "[%lld,%lld]", (long long)g1, (long long)g2);
    assert_json_eq(got.groups, groups); /* sorted by id */
    assert_int_equal(got.created_ms, 100);
    assert_int_equal(got.updated_ms, 200);
    cd_contact_clear(&got);

    assert_int_equal(cd_store_contact_by_phone(rd(f), f->acme, "+16465550101", &got, &err), 0);
    assert_int_equal(got.id, id);
    assert_json_eq(got.groups, groups); /* issue 16: read in the contact's own query */
    cd_contact_clear(&got);
    int64_t only_id = 0;
    assert_int_equal(cd_store_contact_id_by_phone(rd(f), f->acme, "+16465550101", &only_id, &err),
                     0);
    assert_int_equal(only_id, id);
    assert_int_equal(cd_store_contact_id_by_phone(rd(f), f->other, "+16465550101", &only_id, &err),
                     -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_contact_id_by_phone(rd(f), f->acme, "+16465550102", &only_id, &err),
                     -1);
    assert_int_equal(err.code, CD_ENOTFOUND);

    /* Another account sees nothing of it. */
    assert_int_equal(cd_store_contact_get(rd(f), f->other, id, &got, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_contact_by_phone(rd(f), f->other, "+16465550101", &got, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_contact_get(rd(f), f->acme, id + 100, &got, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);

    /* One contact per (account, number)... */
    make_contact(&c, f->acme, "+16465550101", "Dup", NULL, NULL, NULL, NULL);
    assert_int_equal(run_op(f->store, (op){.kind = OP_CONTACT, .rec = &c}, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    cd_contact_clear(&c);
    /* ...but the same number in another account is another contact. */
    make_contact(&c, f->other, "+16465550101", "Alice", NULL, NULL, NULL, NULL);
    assert_true(put_contact(f, &c) != id);
    cd_contact_clear(&c);
}

static void test_contact_update_and_groups(void **state)
{
    fixture *f = *state;
    cd_contact c, got;
    int64_t g1 = add_named(f->store, "group", f->acme, 0, "one");
    int64_t g2 = add_named(f->store, "group", f->acme, 0, "two");
    char groups[64];

    snprintf(groups, sizeof groups, "[%lld,%lld]", (long long)g1, (long long)g2);
    make_contact(&c, f->acme, "+16465550101", "Alice", "Smith", NULL, "[\"a\"]", groups);
    int64_t id = put_contact(f, &c);
    cd_contact_clear(&c);

    /* An update replaces the fields and, given a groups array, the whole membership. */
    assert_int_equal(cd_store_contact_get(rd(f), f->acme, id, &c, NULL), 0);
    free(c.first_name);
    c.first_name = strdup("Alicia");
    free(c.last_name);
    c.last_name = NULL;
    json_decref(c.groups);
    snprintf(groups, sizeof groups, "[%lld]", (long long)g2);
    c.groups = json_loads(groups, 0, NULL);
    c.updated_ms = 300;
    put_contact(f, &c);
    assert_int_equal(c.id, id);
    cd_contact_clear(&c);

    assert_int_equal(cd_store_contact_get(rd(f), f->acme, id, &got, NULL), 0);
    assert_string_equal(got.first_name, "Alicia");
    assert_null(got.last_name);
    assert_json_eq(got.groups, groups);
    assert_json_eq(got.tags, "[\"a\"]");
    assert_int_equal(got.created_ms, 100); /* an update keeps created_ms */
    assert_int_equal(got.updated_ms, 300);

    /* groups == NULL leaves the membership alone. */
    json_decref(got.groups);
    got.groups = NULL;
    free(got.city);
    got.city = strdup("Paris");
    put_contact(f, &got);
    cd_contact_clear(&got);
    assert_int_equal(cd_store_contact_get(rd(f), f->acme, id, &got, NULL), 0);
    assert_string_equal(got.city, "Paris");
    assert_json_eq(got.groups, groups);

    /* An empty array empties it. */
    json_decref(got.groups);
    got.groups = json_array();
    put_contact(f, &got);
    cd_contact_clear(&got);
    assert_int_equal(cd_store_contact_get(rd(f), f->acme, id, &got, NULL), 0);
    assert_json_eq(got.groups, "[]");
    cd_contact_clear(&got);
}

static int collect_contact(const cd_contact *c, void *arg)
{
    id_list *l = arg;
    l->ids[l->n++] = c->id;
    assert_non_null(c->groups); /* lists load memberships too */
    return l->stop_after && l->n >= l->stop_after;
}

/* The ids the filter lists, as a string "1,2,3" for readable failures. */
static void list_contacts(fixture *f, int64_t account_id, cd_contact_filter flt, char *out,
                          size_t n)
{
    id_list l = {0};
    if (flt.limit == 0)
        flt.limit = 50;
    assert_int_equal(cd_store_contact_list(rd(f), account_id, &flt, collect_contact, &l, NULL), 0);
    out[0] = '\0';
    for (int i = 0; i < l.n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%lld", i ? "," : "", (long long)l.ids[i]);
    }
}

/* "id[a],id[b],..." for the indexes in `which` (0-terminated) into out. */
static const char *ids_str(char *out, size_t n, const int64_t *id, const int *which)
{
    out[0] = '\0';
    for (int i = 0; which[i] != 0; i++) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%lld", i ? "," : "", (long long)id[which[i]]);
    }
    return out;
}

#define EXPECT_LIST(acct, want, ...)                                                               \
    do {                                                                                           \
        char got_[256];                                                                            \
        list_contacts(f, (acct), (cd_contact_filter){__VA_ARGS__}, got_, sizeof got_);             \
        if (strcmp(got_, (want)) != 0) {                                                           \
            print_error("filter {%s}: want [%s], got [%s]\n", #__VA_ARGS__, (want), got_);         \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static void test_contact_list_filters(void **state)
{
    fixture *f = *state;
    cd_contact c;
    int64_t id[6];
    char w[128], gs[64];
    int64_t g1 = add_named(f->store, "group", f->acme, 0, "one");
    int64_t g2 = add_named(f->store, "group", f->acme, 0, "two");
    int64_t og = add_named(f->store, "group", f->other, 0, "one");

    snprintf(gs, sizeof gs, "[%lld]", (long long)g1);
    make_contact(&c, f->acme, "+16465550101", "Alice", "Smith", "alice@example.com",
                 "[\"vip\",\"ny\"]", gs);
    id[1] = put_contact(f, &c);
    cd_contact_clear(&c);
    snprintf(gs, sizeof gs, "[%lld,%lld]", (long long)g1, (long long)g2);
    make_contact(&c, f->acme, "+16465550102", "Bob", NULL, NULL, "[\"ny\"]", gs);
    id[2] = put_contact(f, &c);
    cd_contact_clear(&c);
    make_contact(&c, f->acme, "+16465550103", "Carol", "Malice", NULL, NULL, "[]");
    id[3] = put_contact(f, &c);
    cd_contact_clear(&c);
    snprintf(gs, sizeof gs, "[%lld]", (long long)g2);
    make_contact(&c, f->acme, "+16465550104", NULL, NULL, "dan@example.org", "[\"vip\"]", gs);
    id[4] = put_contact(f, &c);
    cd_contact_clear(&c);
    make_contact(&c, f->acme, "+16465550105", NULL, NULL, NULL, NULL, NULL);
    id[5] = put_contact(f, &c);
    cd_contact_clear(&c);
    /* The other account's twin of contact 1, in its own group "one". */
    snprintf(gs, sizeof gs, "[%lld]", (long long)og);
    make_contact(&c, f->other, "+16465550101", "Alice", "Smith", "alice@example.com",
                 "[\"vip\",\"ny\"]", gs);
    int64_t twin = put_contact(f, &c);
    cd_contact_clear(&c);

#define IDS(...) (ids_str(w, sizeof w, id, (int[]){__VA_ARGS__, 0}))
    EXPECT_LIST(f->acme, IDS(1, 2, 3, 4, 5), .limit = 0);
    EXPECT_LIST(f->acme, IDS(1, 2), .group_id = g1);
    EXPECT_LIST(f->acme, IDS(2, 4), .group_id = g2);
    EXPECT_LIST(f->acme, "", .group_id = og); /* another account's group */
    EXPECT_LIST(f->acme, IDS(1, 4), .tag = "vip");
    EXPECT_LIST(f->acme, IDS(1, 2), .tag = "ny");
    EXPECT_LIST(f->acme, "", .tag = "VIP"); /* tags are exact */
    EXPECT_LIST(f->acme, "", .tag = "v");
    EXPECT_LIST(f->acme, IDS(1, 3), .q = "alice"); /* first or last name, any case */
    EXPECT_LIST(f->acme, IDS(1, 3), .q = "ALICE");
    EXPECT_LIST(f->acme, IDS(4), .q = "0104"); /* part of the number */
    EXPECT_LIST(f->acme, IDS(1, 2, 3, 4, 5), .q = "+1646555");
    EXPECT_LIST(f->acme, IDS(4), .q = "example.org");
    EXPECT_LIST(f->acme, IDS(1, 4), .q = "EXAMPLE");
    EXPECT_LIST(f->acme, IDS(1), .q = "alice smith"); /* "first last" */
    EXPECT_LIST(f->acme, "", .q = "zzz");
    EXPECT_LIST(f->acme, "", .q = "%"); /* a substring, not a LIKE pattern */
    EXPECT_LIST(f->acme, "", .q = "_");
    EXPECT_LIST(f->acme, IDS(3, 4, 5), .after_id = id[2]);
    EXPECT_LIST(f->acme, IDS(1, 2), .limit = 2);
    EXPECT_LIST(f->acme, IDS(3, 4), .after_id = id[2], .limit = 2);
    EXPECT_LIST(f->acme, "", .after_id = id[5]);
    EXPECT_LIST(f->acme, IDS(1), .group_id = g1, .tag = "vip");
    EXPECT_LIST(f->acme, IDS(4), .group_id = g2, .tag = "vip", .q = "dan");
    EXPECT_LIST(f->acme, IDS(2), .group_id = g1, .after_id = id[1]);
#undef IDS

    /* The other account lists only its own. */
    snprintf(w, sizeof w, "%lld", (long long)twin);
    EXPECT_LIST(f->other, w, .limit = 0);
    EXPECT_LIST(f->other, w, .group_id = og);
    EXPECT_LIST(f->other, "", .group_id = g1);

    /* A callback returning non-zero stops the listing. */
    id_list l = {.stop_after = 2};
    assert_int_equal(cd_store_contact_list(rd(f), f->acme, &(cd_contact_filter){.limit = 50},
                                           collect_contact, &l, NULL),
                     0);
    assert_int_equal(l.n, 2);
}

/* ---- groups and message types ---- */

static int collect_named(const cd_named *n, void *arg)
{
    id_list *l = arg;
    l->ids[l->n] = n->id;
    snprintf(l->names[l->n], sizeof l->names[0], "%.39s", n->name);
    l->n++;
    return 0;
}

static void test_groups(void **state)
{
    fixture *f = *state;
    cd_named n;
    cd_err err = {0};
    id_list l = {0};

    int64_t a = add_named(f->store, "group", f->acme, 0, "customers");
    int64_t b = add_named(f->store, "group", f->acme, 0, "staff");
    int64_t c = add_named(f->store, "group", f->other, 0, "customers"); /* names per account */
    assert_true(a > 0 && b > a && c > b);

    assert_int_equal(cd_store_named_get(rd(f), "group", f->acme, a, &n, &err), 0);
    assert_string_equal(n.name, "customers");
    assert_int_equal(n.id, a);
    assert_int_equal(n.created_ms, 5000);
    assert_int_equal(cd_store_named_by_name(rd(f), "group", f->acme, "staff", &n, &err), 0);
    assert_int_equal(n.id, b);
    assert_int_equal(cd_store_named_by_name(rd(f), "group", f->other, "customers", &n, &err), 0);
    assert_int_equal(n.id, c);
    /* Not across accounts, not by another case. */
    assert_int_equal(cd_store_named_get(rd(f), "group", f->other, a, &n, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_named_by_name(rd(f), "group", f->other, "staff", &n, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_named_by_name(rd(f), "group", f->acme, "Staff", &n, &err), -1);
    /* A group is not a message type. */
    assert_int_equal(cd_store_named_get(rd(f), "type", f->acme, a, &n, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);

    /* Duplicate names in one account conflict. */
    cd_named dup = {.created_ms = 1};
    snprintf(dup.name, sizeof dup.name, "staff");
    assert_int_equal(
        run_op(f->store, (op){.kind = OP_NAMED, .account_id = f->acme, .str = "group", .rec = &dup},
               &err),
        -1);
    assert_int_equal(err.code, CD_ECONFLICT);

    assert_int_equal(cd_store_named_list(rd(f), "group", f->acme, 0, 50, collect_named, &l, NULL),
                     0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], a);
    assert_string_equal(l.names[1], "staff");
    l.n = 0;
    assert_int_equal(cd_store_named_list(rd(f), "group", f->acme, a, 50, collect_named, &l, NULL),
                     0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], b);
    l.n = 0;
    assert_int_equal(cd_store_named_list(rd(f), "group", f->acme, 0, 1, collect_named, &l, NULL),
                     0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], a);
}

static void test_message_types(void **state)
{
    fixture *f = *state;
    cd_named n;
    cd_err err = {0};
    id_list l = {0};

    /* Omeda names its own ids; without one the next free id is taken. */
    assert_int_equal(add_named(f->store, "type", f->acme, 42, "news"), 42);
    assert_int_equal(add_named(f->store, "type", f->acme, 0, "alerts"), 43);
    assert_int_equal(add_named(f->store, "type", f->acme, 7, "promo"), 7);
    assert_int_equal(add_named(f->store, "type", f->acme, 0, "more"), 44);
    /* Ids are per account. */
    assert_int_equal(add_named(f->store, "type", f->other, 0, "first"), 1);
    assert_int_equal(add_named(f->store, "type", f->other, 42, "news"), 42);

    assert_int_equal(cd_store_named_get(rd(f), "type", f->acme, 42, &n, &err), 0);
    assert_string_equal(n.name, "news");
    assert_int_equal(cd_store_named_get(rd(f), "type", f->other, 42, &n, &err), 0);
    assert_string_equal(n.name, "news");
    assert_int_equal(cd_store_named_by_name(rd(f), "type", f->acme, "alerts", &n, &err), 0);
    assert_int_equal(n.id, 43);
    assert_int_equal(cd_store_named_get(rd(f), "type", f->acme, 1, &n, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_named_get(rd(f), "group", f->acme, 42, &n, &err), -1);

    /* A taken id conflicts. */
    cd_named dup = {.id = 42, .created_ms = 1};
    snprintf(dup.name, sizeof dup.name, "again");
    assert_int_equal(
        run_op(f->store, (op){.kind = OP_NAMED, .account_id = f->acme, .str = "type", .rec = &dup},
               &err),
        -1);
    assert_int_equal(err.code, CD_ECONFLICT);

    assert_int_equal(cd_store_named_list(rd(f), "type", f->acme, 0, 50, collect_named, &l, NULL),
                     0);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.ids[0], 7);
    assert_int_equal(l.ids[1], 42);
    assert_int_equal(l.ids[2], 43);
    assert_int_equal(l.ids[3], 44);
    l.n = 0;
    assert_int_equal(cd_store_named_list(rd(f), "type", f->acme, 42, 2, collect_named, &l, NULL),
                     0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.ids[0], 43);
    assert_int_equal(l.ids[1], 44);
}

/* ---- consents ---- */

static void put_consent(fixture *f, int64_t account_id, int64_t contact_id, const char *scope,
                        const char *st, int64_t ms)
{
    cd_consent c = {.updated_ms = ms};
    snprintf(c.scope, sizeof c.scope, "%s", scope);
    snprintf(c.state, sizeof c.state, "%s", st);
    must(f->store,
         (op){.kind = OP_CONSENT, .account_id = account_id, .contact_id = contact_id, .rec = &c});
}

static int collect_consent(const cd_consent *c, void *arg)
{
    id_list *l = arg;
    snprintf(l->names[l->n], sizeof l->names[0], "%.20s=%.15s", c->scope, c->state);
    l->ids[l->n++] = c->updated_ms;
    return 0;
}

/* The account's rows in the blacklist index (scope "all" opted out), and its consents
 * with scope "all" (one per contact), read from the file as they are committed. */
static int blacklisted(fixture *f, int64_t account_id)
{
    char path[TU_PATH_MAX + 16], sql[200];
    sqlite3 *h = NULL;
    snprintf(path, sizeof path, "%s/store.db", f->dir);
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM consents INDEXED BY consents_blacklist WHERE account_id = "
             "%lld AND scope = 'all' AND state = 'opted_out'",
             (long long)account_id);
    int n = mem_int(h, sql);
    snprintf(sql, sizeof sql,
             "SELECT count(*) - count(DISTINCT contact_id) FROM consents WHERE account_id = %lld "
             "AND scope = 'all'",
             (long long)account_id);
    assert_int_equal(mem_int(h, sql), 0);
    sqlite3_close(h);
    return n;
}

static void test_consents(void **state)
{
    fixture *f = *state;
    cd_consent c;
    cd_err err = {0};
    id_list l = {0};

    put_consent(f, f->acme, 1, "type:2", "pending", 10);
    put_consent(f, f->acme, 1, "all", "opted_in", 11);
    put_consent(f, f->acme, 1, "group:1", "opted_out", 12);
    put_consent(f, f->acme, 2, "all", "opted_out", 13);
    put_consent(f, f->other, 1, "all", "pending", 14);

    assert_int_equal(cd_store_consent_get(rd(f), f->acme, 1, "all", &c, &err), 0);
    assert_string_equal(c.scope, "all");
    assert_string_equal(c.state, "opted_in");
    assert_int_equal(c.updated_ms, 11);
    assert_int_equal(cd_store_consent_get(rd(f), f->other, 1, "all", &c, &err), 0);
    assert_string_equal(c.state, "pending");
    assert_int_equal(cd_store_consent_get(rd(f), f->acme, 1, "group:9", &c, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_consent_get(rd(f), f->acme, 3, "all", &c, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);

    /* A put replaces the state of that scope. */
    put_consent(f, f->acme, 1, "all", "opted_out", 20);
    assert_int_equal(cd_store_consent_get(rd(f), f->acme, 1, "all", &c, &err), 0);
    assert_string_equal(c.state, "opted_out");
    assert_int_equal(c.updated_ms, 20);

    /* issue 12 (perf): a put is an INSERT OR REPLACE; the partial blacklist index follows
     * the row both ways, and the row is the only one of its key. */
    assert_int_equal(blacklisted(f, f->acme), 2);
    put_consent(f, f->acme, 2, "all", "opted_in", 21);
    assert_int_equal(blacklisted(f, f->acme), 1);
    put_consent(f, f->acme, 2, "all", "opted_out", 22);
    assert_int_equal(blacklisted(f, f->acme), 2);
    assert_int_equal(cd_store_consent_get(rd(f), f->acme, 2, "all", &c, &err), 0);
    assert_int_equal(c.updated_ms, 22);

    /* Sorted by scope. */
    assert_int_equal(cd_store_consent_list(rd(f), f->acme, 1, collect_consent, &l, NULL), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.names[0], "all=opted_out");
    assert_string_equal(l.names[1], "group:1=opted_out");
    assert_string_equal(l.names[2], "type:2=pending");
    l.n = 0;
    assert_int_equal(cd_store_consent_list(rd(f), f->other, 2, collect_consent, &l, NULL), 0);
    assert_int_equal(l.n, 0);

    /* Only the three states exist. */
    cd_consent bad = {.updated_ms = 1};
    snprintf(bad.scope, sizeof bad.scope, "all");
    snprintf(bad.state, sizeof bad.state, "maybe");
    assert_int_equal(
        run_op(f->store,
               (op){.kind = OP_CONSENT, .account_id = f->acme, .contact_id = 5, .rec = &bad}, &err),
        -1);
    assert_int_equal(cd_store_consent_get(rd(f), f->acme, 5, "all", &c, NULL), -1);
}

/* ---- events ---- */

static void make_event(cd_event *e, int64_t account_id, int64_t seq, int64_t contact_id,
                       const char *scope, int64_t ms)
{
    memset(e, 0, sizeof *e);
    e->account_id = account_id;
    e->seq = seq;
    e->contact_id = contact_id;
    snprintf(e->phone, sizeof e->phone, "+1646555010%lld", (long long)contact_id);
    snprintf(e->scope, sizeof e->scope, "%s", scope);
    snprintf(e->new_state, sizeof e->new_state, "opted_in");
    snprintf(e->surface, sizeof e->surface, "native");
    snprintf(e->channel, sizeof e->channel, "api");
    e->created_ms = ms;
    snprintf(e->prev_hash, sizeof e->prev_hash, "%064lld", (long long)seq - 1);
    snprintf(e->hash, sizeof e->hash, "%064lld", (long long)seq);
}

static int collect_event(const cd_event *e, void *arg)
{
    id_list *l = arg;
    l->ids[l->n++] = e->seq;
    return l->stop_after && l->n >= l->stop_after;
}

static void expect_seqs(fixture *f, cd_event_filter flt, const char *want)
{
    id_list l = {0};
    char got[128] = "";
    if (flt.limit == 0)
        flt.limit = 50;
    assert_int_equal(cd_store_event_list(rd(f), f->acme, &flt, collect_event, &l, NULL), 0);
    for (int i = 0; i < l.n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                 (long long)l.ids[i]);
    assert_string_equal(got, want);
}

static void test_events(void **state)
{
    fixture *f = *state;
    cd_event e;
    cd_err err = {0};
    id_list l = {0};

    make_event(&e, f->acme, 1, 1, "all", 1000);
    must(f->store, (op){.kind = OP_EVENT, .rec = &e});
    assert_true(e.id > 0);
    make_event(&e, f->acme, 2, 1, "group:1", 2000);
    must(f->store, (op){.kind = OP_EVENT, .rec = &e});
    make_event(&e, f->acme, 3, 2, "all", 3000);
    must(f->store, (op){.kind = OP_EVENT, .rec = &e});
    make_event(&e, f->other, 1, 1, "all", 1500);
    must(f->store, (op){.kind = OP_EVENT, .rec = &e});

    /* One seq per account. */
    make_event(&e, f->acme, 2, 2, "all", 4000);
    assert_int_equal(run_op(f->store, (op){.kind = OP_EVENT, .rec = &e}, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);

    expect_seqs(f, (cd_event_filter){0}, "1,2,3");
    expect_seqs(f, (cd_event_filter){.contact_id = 1}, "1,2");
    expect_seqs(f, (cd_event_filter){.scope = "all"}, "1,3");
    expect_seqs(f, (cd_event_filter){.since_ms = 2000}, "2,3");
    expect_seqs(f, (cd_event_filter){.after_seq = 1, .limit = 1}, "2");
    expect_seqs(f, (cd_event_filter){.contact_id = 2, .scope = "group:1"}, "");

    assert_int_equal(cd_store_event_scan(rd(f), f->other, collect_event, &l, NULL), 0);
    assert_int_equal(l.n, 1);
    l.n = 0;
    l.stop_after = 2;
    assert_int_equal(cd_store_event_scan(rd(f), f->acme, collect_event, &l, NULL), 0);
    assert_int_equal(l.n, 2);
}

/* ---- messages ---- */

static void add_message(fixture *f, int64_t account_id, const char *id, const char *to,
                        const char *status, const char *kind, int64_t ms)
{
    cd_message m = {.account_id = account_id, .parts = 1, .created_ms = ms, .updated_ms = ms};
    snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.to, sizeof m.to, "%s", to);
    snprintf(m.from, sizeof m.from, "+18005550199");
    m.text = strdup("Hello \xe2\x82\xac");
    snprintf(m.kind, sizeof m.kind, "%s", kind);
    snprintf(m.scope, sizeof m.scope, "all");
    snprintf(m.status, sizeof m.status, "%s", status);
    snprintf(m.transport, sizeof m.transport, "sink");
    must(f->store, (op){.kind = OP_MESSAGE, .rec = &m});
    cd_message_clear(&m);
}

static int collect_message(const cd_message *m, int64_t rowid, void *arg)
{
    id_list *l = arg;
    snprintf(l->names[l->n], sizeof l->names[0], "%s", m->id);
    l->rowids[l->n] = rowid;
    l->n++;
    return 0;
}

static void list_messages(fixture *f, cd_message_filter flt, id_list *l, char *out, size_t n)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(cd_store_message_list(rd(f), f->acme, &flt, collect_message, l, NULL), 0);
    out[0] = '\0';
    for (int i = 0; i < l->n; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? "," : "", l->names[i]);
}

static void test_messages(void **state)
{
    fixture *f = *state;
    cd_message m;
    cd_err err = {0};
    id_list l;
    char got[256];

    add_message(f, f->acme, "m1", "+16465550101", "queued", "send", 1);
    add_message(f, f->acme, "m2", "+16465550102", "sent", "cta", 2);
    add_message(f, f->other, "o1", "+16465550101", "queued", "send", 3);
    add_message(f, f->acme, "m3", "+16465550101", "sent", "send", 4);
    add_message(f, f->acme, "m4", "+16465550102", "refused", "send", 5);
    add_message(f, f->acme, "m5", "+16465550101", "queued", "confirmation", 6);

    assert_int_equal(cd_store_message_get(rd(f), f->acme, "m3", &m, &err), 0);
    assert_string_equal(m.id, "m3");
    assert_int_equal(m.account_id, f->acme);
    assert_string_equal(m.to, "+16465550101");
    assert_string_equal(m.from, "+18005550199");
    assert_string_equal(m.text, "Hello \xe2\x82\xac");
    assert_string_equal(m.kind, "send");
    assert_string_equal(m.status, "sent");
    assert_string_equal(m.transport, "sink");
    assert_int_equal(m.parts, 1);
    assert_int_equal(m.created_ms, 4);
    assert_json_eq(m.history, "[]"); /* no history yet */
    cd_message_clear(&m);
    assert_int_equal(cd_store_message_get(rd(f), f->acme, "o1", &m, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_message_get(rd(f), f->acme, "nope", &m, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);

    /* Message ids are unique. */
    cd_message dup = {.account_id = f->other};
    snprintf(dup.id, sizeof dup.id, "m1");
    assert_int_equal(run_op(f->store, (op){.kind = OP_MESSAGE, .rec = &dup}, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);

    /* Newest first, and the rowid cursor pages backwards. */
    list_messages(f, (cd_message_filter){.limit = 50}, &l, got, sizeof got);
    assert_string_equal(got, "m5,m4,m3,m2,m1");
    for (int i = 1; i < l.n; i++)
        assert_true(l.rowids[i] < l.rowids[i - 1]);
    list_messages(f, (cd_message_filter){.limit = 2}, &l, got, sizeof got);
    assert_string_equal(got, "m5,m4");
    int64_t cursor = l.rowids[1];
    list_messages(f, (cd_message_filter){.limit = 2, .before_rowid = cursor}, &l, got, sizeof got);
    assert_string_equal(got, "m3,m2");
    cursor = l.rowids[1];
    list_messages(f, (cd_message_filter){.limit = 2, .before_rowid = cursor}, &l, got, sizeof got);
    assert_string_equal(got, "m1");
    cursor = l.rowids[0];
    list_messages(f, (cd_message_filter){.limit = 2, .before_rowid = cursor}, &l, got, sizeof got);
    assert_string_equal(got, "");

    /* Filters. */
    list_messages(f, (cd_message_filter){.limit = 50, .to = "+16465550101"}, &l, got, sizeof got);
    assert_string_equal(got, "m5,m3,m1");
    list_messages(f, (cd_message_filter){.limit = 50, .status = "queued"}, &l, got, sizeof got);
    assert_string_equal(got, "m5,m1");
    list_messages(f, (cd_message_filter){.limit = 50, .kind = "send"}, &l, got, sizeof got);
    assert_string_equal(got, "m4,m3,m1");
    list_messages(
        f, (cd_message_filter){.limit = 50, .to = "+16465550101", .status = "sent", .kind = "send"},
        &l, got, sizeof got);
    assert_string_equal(got, "m3");
}

/* ---- idempotency ---- */

static void test_idempotency(void **state)
{
    fixture *f = *state;
    cd_idem in = {.status = 201, .created_ms = 77}, out;
    cd_err err = {0};

    snprintf(in.request_hash, sizeof in.request_hash, "%064d", 5);
    in.body = "{\"id\":1}";
    must(f->store, (op){.kind = OP_IDEM, .account_id = f->acme, .str = "key-1", .rec = &in});
    assert_int_equal(cd_store_idem_get(rd(f), f->acme, "key-1", &out, &err), 0);
    assert_string_equal(out.request_hash, in.request_hash);
    assert_int_equal(out.status, 201);
    assert_string_equal(out.body, "{\"id\":1}");
    assert_int_equal(out.created_ms, 77);
    cd_idem_clear(&out);
    assert_null(out.body);

    /* Keys are per account; a key is written once. */
    assert_int_equal(cd_store_idem_get(rd(f), f->other, "key-1", &out, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_idem_get(rd(f), f->acme, "key-2", &out, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    in.body = NULL; /* stored as "" */
    in.status = 204;
    must(f->store, (op){.kind = OP_IDEM, .account_id = f->other, .str = "key-1", .rec = &in});
    assert_int_equal(
        run_op(f->store, (op){.kind = OP_IDEM, .account_id = f->acme, .str = "key-1", .rec = &in},
               &err),
        -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_int_equal(cd_store_idem_get(rd(f), f->other, "key-1", &out, &err), 0);
    assert_int_equal(out.status, 204);
    assert_string_equal(out.body, "");
    cd_idem_clear(&out);
    /* The first answer is untouched. */
    assert_int_equal(cd_store_idem_get(rd(f), f->acme, "key-1", &out, &err), 0);
    assert_int_equal(out.status, 201);
    cd_idem_clear(&out);
}

static int job_purge(cd_db *db, void *arg, cd_err *err)
{
    return cd_store_idem_purge(db, 1000, 10, arg, err);
}

/* Records older than the cut-off go, across accounts; newer ones stay. */
static void test_idempotency_purge(void **state)
{
    fixture *f = *state;
    cd_idem old = {.status = 201, .created_ms = 500}, fresh = {.status = 201, .created_ms = 5000},
            out;
    cd_err err = {0};
    int purged = -1;
    snprintf(old.request_hash, sizeof old.request_hash, "%064d", 1);
    snprintf(fresh.request_hash, sizeof fresh.request_hash, "%064d", 2);
    must(f->store, (op){.kind = OP_IDEM, .account_id = f->acme, .str = "old", .rec = &old});
    must(f->store, (op){.kind = OP_IDEM, .account_id = f->other, .str = "old", .rec = &old});
    must(f->store, (op){.kind = OP_IDEM, .account_id = f->acme, .str = "new", .rec = &fresh});
    assert_int_equal(cd_store_run(f->store, job_purge, &purged, &err), 0);
    assert_int_equal(purged, 2);
    assert_int_equal(cd_store_idem_get(rd(f), f->acme, "old", &out, &err), -1);
    assert_int_equal(err.code, CD_ENOTFOUND);
    assert_int_equal(cd_store_idem_get(rd(f), f->other, "old", &out, &err), -1);
    assert_int_equal(cd_store_idem_get(rd(f), f->acme, "new", &out, &err), 0);
    cd_idem_clear(&out);
}

/* ---- the writer: group commit ---- */

typedef struct tracker {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int finished;
} tracker;

enum tmode { T_OK, T_FAIL_AFTER_WRITE, T_SQL_FAIL };

typedef struct tjob {
    tracker *t;
    int64_t account_id;
    char name[48];
    enum tmode mode;
    atomic_int calls;
    int rc;
    bool err_null;
    cd_err err;
} tjob;

static void tracker_init(tracker *t)
{
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->finished = 0;
}

static void tracker_destroy(tracker *t)
{
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
}

/* Waits (at most 60 s) until n jobs have finished; returns how many have. */
static int tracker_wait(tracker *t, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&t->lock);
    while (t->finished < n)
        if (pthread_cond_timedwait(&t->cond, &t->lock, &until) == ETIMEDOUT)
            break;
    int got = t->finished;
    pthread_mutex_unlock(&t->lock);
    return got;
}

/* Inserts the group `name`, and for T_FAIL_AFTER_WRITE a second one, then fails. */
static int tjob_run(cd_db *db, void *arg, cd_err *err)
{
    tjob *j = arg;
    cd_named n = {.created_ms = 1};
    snprintf(n.name, sizeof n.name, "%s", j->name);
    if (cd_store_named_insert(db, "group", j->account_id, &n, err) != 0)
        return -1;
    if (j->mode == T_FAIL_AFTER_WRITE) {
        snprintf(n.name, sizeof n.name, "%s-2", j->name);
        n.id = 0;
        if (cd_store_named_insert(db, "group", j->account_id, &n, err) != 0)
            return -1;
        return cd_fail(err, CD_EINVAL, "name", "refused after writing %s", j->name);
    }
    return 0;
}

static void tjob_done(void *arg, int rc, const cd_err *err)
{
    tjob *j = arg;
    atomic_fetch_add(&j->calls, 1);
    j->rc = rc;
    j->err_null = err == NULL;
    if (err)
        j->err = *err;
    pthread_mutex_lock(&j->t->lock);
    j->t->finished++;
    pthread_cond_broadcast(&j->t->cond);
    pthread_mutex_unlock(&j->t->lock);
}

typedef struct hook_stats {
    pthread_mutex_t lock;
    int batches;
    int total;
    int sizes[512];
} hook_stats;

static void on_commit(void *arg, int batch_size, double seconds, unsigned wrote)
{
    hook_stats *h = arg;
    (void)wrote;
    pthread_mutex_lock(&h->lock);
    if (h->batches < (int)(sizeof h->sizes / sizeof h->sizes[0]))
        h->sizes[h->batches] = batch_size;
    h->batches++;
    h->total += batch_size;
    pthread_mutex_unlock(&h->lock);
    (void)seconds;
}

static bool group_exists(fixture *f, int64_t account_id, const char *name)
{
    cd_named n;
    return cd_store_named_by_name(rd(f), "group", account_id, name, &n, NULL) == 0;
}

enum { THREADS = 4, PER_THREAD = 50 };

typedef struct submitter {
    cd_store *store;
    tjob *jobs; /* PER_THREAD of them */
    int failures;
} submitter;

static void *submit_many(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (cd_store_submit(s->store, tjob_run, tjob_done, &s->jobs[i], NULL) != 0)
            s->failures++;
    return NULL;
}

static void test_group_commit_concurrent(void **state)
{
    fixture *f = *state;
    tracker t;
    hook_stats h = {.batches = 0};
    tjob *jobs = calloc(THREADS * PER_THREAD, sizeof *jobs);
    pthread_t th[THREADS];
    submitter sub[THREADS];
    id_list *l = calloc(1, sizeof *l);

    assert_non_null(jobs);
    assert_non_null(l);
    tracker_init(&t);
    pthread_mutex_init(&h.lock, NULL);
    cd_store_on_commit(f->store, on_commit, &h);
    for (int i = 0; i < THREADS * PER_THREAD; i++) {
        jobs[i].t = &t;
        jobs[i].account_id = f->acme;
        snprintf(jobs[i].name, sizeof jobs[i].name, "g-%03d", i);
        atomic_init(&jobs[i].calls, 0);
    }
    for (int i = 0; i < THREADS; i++) {
        sub[i] = (submitter){.store = f->store, .jobs = jobs + i * PER_THREAD};
        assert_int_equal(pthread_create(&th[i], NULL, submit_many, &sub[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(sub[i].failures, 0);
    }
    assert_int_equal(tracker_wait(&t, THREADS * PER_THREAD), THREADS * PER_THREAD);

    for (int i = 0; i < THREADS * PER_THREAD; i++) {
        if (atomic_load(&jobs[i].calls) != 1 || jobs[i].rc != 0 || !jobs[i].err_null) {
            print_error("job %d: %d calls, rc %d\n", i, atomic_load(&jobs[i].calls), jobs[i].rc);
            fail();
        }
    }
    /* Every row is there, once. */
    assert_int_equal(cd_store_named_list(rd(f), "group", f->acme, 0, 1000, collect_named, l, NULL),
                     0);
    assert_int_equal(l->n, THREADS * PER_THREAD);
    for (int i = 0; i < THREADS * PER_THREAD; i++)
        assert_true(group_exists(f, f->acme, jobs[i].name));

    /* The hook saw every job exactly once, in batches of at most 1024. */
    pthread_mutex_lock(&h.lock);
    int total = h.total, batches = h.batches;
    pthread_mutex_unlock(&h.lock);
    assert_int_equal(total, THREADS * PER_THREAD);
    assert_true(batches >= 1 && batches <= THREADS * PER_THREAD);

    cd_store_on_commit(f->store, NULL, NULL);
    pthread_mutex_destroy(&h.lock);
    tracker_destroy(&t);
    free(jobs);
    free(l);
}

/* A job that holds the writer until the test opens the gate. */
typedef struct gate {
    tu_gate g;
    int64_t account_id;
    tracker *t;
    int rc;
} gate;

static int gate_run(cd_db *db, void *arg, cd_err *err)
{
    gate *g = arg;
    cd_named n = {.created_ms = 1};
    snprintf(n.name, sizeof n.name, "held");
    int rc = cd_store_named_insert(db, "group", g->account_id, &n, err);
    tu_gate_hold(&g->g);
    return rc;
}

static void gate_done(void *arg, int rc, const cd_err *err)
{
    gate *g = arg;
    (void)err;
    g->rc = rc;
    pthread_mutex_lock(&g->t->lock);
    g->t->finished++;
    pthread_cond_broadcast(&g->t->cond);
    pthread_mutex_unlock(&g->t->lock);
}

static void test_failing_job_in_batch(void **state)
{
    fixture *f = *state;
    tracker t;
    hook_stats h = {.batches = 0};
    gate g = {.account_id = f->acme, .t = &t, .rc = -1};
    tjob jobs[4];
    static const char *const names[] = {"a", "b", "pre", "d"};
    static const enum tmode modes[] = {T_OK, T_FAIL_AFTER_WRITE, T_SQL_FAIL, T_OK};

    add_named(f->store, "group", f->acme, 0, "pre");
    tracker_init(&t);
    pthread_mutex_init(&h.lock, NULL);
    pthread_mutex_init(&g.g.lock, NULL);
    pthread_cond_init(&g.g.cond, NULL);
    cd_store_on_commit(f->store, on_commit, &h);

    /* Hold the writer inside a batch of its own... */
    assert_int_equal(cd_store_submit(f->store, gate_run, gate_done, &g, NULL), 0);
    tu_gate_wait_entered(&g.g);
    /* (what the held job wrote is not visible to readers before its commit) */
    assert_false(group_exists(f, f->acme, "held"));

    /* ...so that these four queue up and run as one batch. */
    for (int i = 0; i < 4; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].t = &t;
        jobs[i].account_id = f->acme;
        jobs[i].mode = modes[i];
        snprintf(jobs[i].name, sizeof jobs[i].name, "%s", names[i]);
        atomic_init(&jobs[i].calls, 0);
        assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], NULL), 0);
    }
    tu_gate_open(&g.g);
    assert_int_equal(tracker_wait(&t, 5), 5);

    assert_int_equal(g.rc, 0);
    assert_true(group_exists(f, f->acme, "held"));
    /* The neighbours committed... */
    assert_int_equal(jobs[0].rc, 0);
    assert_true(jobs[0].err_null);
    assert_true(group_exists(f, f->acme, "a"));
    assert_int_equal(jobs[3].rc, 0);
    assert_true(group_exists(f, f->acme, "d"));
    /* ...the failing job left no trace and got its own error back... */
    assert_int_equal(jobs[1].rc, -1);
    assert_false(jobs[1].err_null);
    assert_int_equal(jobs[1].err.code, CD_EINVAL);
    assert_string_equal(jobs[1].err.msg, "refused after writing b");
    assert_false(group_exists(f, f->acme, "b"));
    assert_false(group_exists(f, f->acme, "b-2"));
    /* ...and so did the one whose SQL failed. */
    assert_int_equal(jobs[2].rc, -1);
    assert_int_equal(jobs[2].err.code, CD_ECONFLICT);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&jobs[i].calls), 1);

    /* Two batches: the held job alone, then the four. */
    pthread_mutex_lock(&h.lock);
    assert_int_equal(h.batches, 2);
    assert_int_equal(h.sizes[0], 1);
    assert_int_equal(h.sizes[1], 4);
    assert_int_equal(h.total, 5);
    pthread_mutex_unlock(&h.lock);

    cd_store_on_commit(f->store, NULL, NULL);
    pthread_mutex_destroy(&g.g.lock);
    pthread_cond_destroy(&g.g.cond);
    pthread_mutex_destroy(&h.lock);
    tracker_destroy(&t);
}

static int job_fail(cd_db *db, void *arg, cd_err *err)
{
    (void)db;
    (void)arg;
    return cd_fail_reason(err, CD_ECONFLICT, "already_opted_in", "state", "no");
}

static void test_run_reports_job_error(void **state)
{
    fixture *f = *state;
    cd_err err = {0};
    assert_int_equal(cd_store_run(f->store, job_fail, NULL, &err), -1);
    assert_int_equal(err.code, CD_ECONFLICT);
    assert_string_equal(err.reason, "already_opted_in");
    assert_string_equal(err.field, "state");
    assert_int_equal(cd_store_run(f->store, job_fail, NULL, NULL), -1);
}

/* Closing drains what is queued: every job is done, and durable, before close returns. */
static void test_close_drains_queue(void **state)
{
    fixture *f = *state;
    tracker t;
    tjob jobs[50];
    id_list *l = calloc(1, sizeof *l);

    assert_non_null(l);
    tracker_init(&t);
    cd_store_release(f->store, f->rd);
    f->rd = NULL;
    for (int i = 0; i < 50; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].t = &t;
        jobs[i].account_id = f->other;
        snprintf(jobs[i].name, sizeof jobs[i].name, "late-%02d", i);
        atomic_init(&jobs[i].calls, 0);
        assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], NULL), 0);
    }
    cd_store_close(f->store);
    f->store = NULL;
    assert_int_equal(t.finished, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        assert_int_equal(jobs[i].rc, 0);
    }

    f->store = tu_store_open(f->dir, "store.db");
    f->rd = cd_store_reader(f->store);
    assert_int_equal(cd_store_named_list(rd(f), "group", f->other, 0, 1000, collect_named, l, NULL),
                     0);
    assert_int_equal(l->n, 50);
    tracker_destroy(&t);
    free(l);
}

/* ---- the reader pool ---- */

/* store.c: a checked-out reader holds one read transaction until it is released, so all
 * the reads of one request see the same snapshot. */
static void test_reader_keeps_snapshot(void **state)
{
    fixture *f = *state;
    cd_named n;
    cd_db *held = cd_store_reader(f->store);

    assert_non_null(held);
    assert_int_equal(cd_store_named_by_name(held, "group", f->acme, "late", &n, NULL), -1);
    add_named(f->store, "group", f->acme, 0, "late");
    /* Committed, and visible to a new checkout, but not to the held one. */
    assert_true(group_exists(f, f->acme, "late"));
    assert_int_equal(cd_store_named_by_name(held, "group", f->acme, "late", &n, NULL), -1);
    cd_store_release(f->store, held);

    held = cd_store_reader(f->store);
    assert_int_equal(cd_store_named_by_name(held, "group", f->acme, "late", &n, NULL), 0);
    cd_store_release(f->store, held);
}

typedef struct waiter {
    cd_store *store;
    atomic_bool got;
    cd_db *db;
} waiter;

static void *take_reader(void *arg)
{
    waiter *w = arg;
    w->db = cd_store_reader(w->store);
    atomic_store(&w->got, true);
    return NULL;
}

static void test_reader_pool_blocks_when_full(void **state)
{
    fixture *f = *state;
    int max = f->store->max_readers;
    cd_db **dbs = calloc((size_t)max, sizeof *dbs);
    pthread_t th;
    waiter w = {.store = f->store};
    struct timespec pause = {0, 100 * 1000 * 1000};

    assert_non_null(dbs);
    atomic_init(&w.got, false);
    cd_store_release(f->store, f->rd);
    f->rd = NULL;
    for (int i = 0; i < max; i++) {
        dbs[i] = cd_store_reader(f->store);
        assert_non_null(dbs[i]);
        for (int k = 0; k < i; k++)
            assert_ptr_not_equal(dbs[k], dbs[i]);
    }
    assert_int_equal(pthread_create(&th, NULL, take_reader, &w), 0);
    nanosleep(&pause, NULL);
    assert_false(atomic_load(&w.got)); /* all busy: it waits */
    cd_store_release(f->store, dbs[3]);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(atomic_load(&w.got));
    assert_ptr_equal(w.db, dbs[3]); /* the one given back */
    dbs[3] = w.db;
    for (int i = 0; i < max; i++)
        cd_store_release(f->store, dbs[i]);
    cd_store_release(f->store, NULL); /* a no-op */
    f->rd = cd_store_reader(f->store);
    free(dbs);
}

/* ---- the shared row helpers ---- */

/* issue 9 part 8: every get and every list of the SQLite backend now runs through one
 * fetch-one helper and one row loop (store/sqlite_int.h). These pin what the copies they
 * replaced did: a callback's non-zero answer stops the list after that row and the list
 * succeeds, except that contact_list takes a negative answer as an error; a missing row is
 * CD_ENOTFOUND with each getter's own field and message. */
typedef struct stopper {
    int calls, ret;
} stopper;

static int stop_account(const cd_account *a, void *arg)
{
    (void)a;
    ((stopper *)arg)->calls++;
    return ((stopper *)arg)->ret;
}

static int stop_key(const cd_apikey *k, void *arg)
{
    (void)k;
    ((stopper *)arg)->calls++;
    return ((stopper *)arg)->ret;
}

static int stop_contact(const cd_contact *c, void *arg)
{
    (void)c;
    ((stopper *)arg)->calls++;
    return ((stopper *)arg)->ret;
}

static int stop_named(const cd_named *n, void *arg)
{
    (void)n;
    ((stopper *)arg)->calls++;
    return ((stopper *)arg)->ret;
}

static int stop_consent(const cd_consent *c, void *arg)
{
    (void)c;
    ((stopper *)arg)->calls++;
    return ((stopper *)arg)->ret;
}

static int stop_event(const cd_event *e, void *arg)
{
    (void)e;
    ((stopper *)arg)->calls++;
    return ((stopper *)arg)->ret;
}

static int stop_message(const cd_message *m, int64_t rowid, void *arg)
{
    (void)m, (void)rowid;
    ((stopper *)arg)->calls++;
    return ((stopper *)arg)->ret;
}

/* Two rows of everything the lists below read, in account acme. */
static void two_of_each(fixture *f)
{
    for (int i = 1; i <= 2; i++) {
        char phone[16], name[8], id[8];
        cd_contact c;
        cd_event e;
        cd_apikey k = {.account_id = f->acme, .created_ms = i};
        snprintf(k.id, sizeof k.id, "key_000000000000000%d", i);
        snprintf(k.hash, sizeof k.hash, "%064d", i);
        must(f->store, (op){.kind = OP_KEY, .rec = &k});
        snprintf(phone, sizeof phone, "+1646555010%d", i);
        make_contact(&c, f->acme, phone, NULL, NULL, NULL, NULL, NULL);
        put_contact(f, &c);
        cd_contact_clear(&c);
        snprintf(name, sizeof name, "n%d", i);
        add_named(f->store, "group", f->acme, 0, name);
        put_consent(f, f->acme, 1, i == 1 ? "all" : "group:1", "opted_in", i);
        make_event(&e, f->acme, i, 1, "all", i);
        must(f->store, (op){.kind = OP_EVENT, .rec = &e});
        snprintf(id, sizeof id, "m%d", i);
        add_message(f, f->acme, id, "+16465550101", "queued", "marketing", i);
    }
}

static void test_row_helpers_stop(void **state)
{
    fixture *f = *state;
    two_of_each(f);
    for (int ret = -1; ret <= 1; ret += 2) {
        cd_contact_filter cf = {.limit = 10};
        cd_event_filter ef = {.limit = 10};
        cd_message_filter mf = {.limit = 10};
        stopper st[9] = {{0, ret}, {0, ret}, {0, ret}, {0, ret}, {0, ret},
                         {0, ret}, {0, ret}, {0, ret}, {0, ret}};
        cd_err err = {0};
        assert_int_equal(cd_store_account_each(rd(f), stop_account, &st[0], &err), 0);
        assert_int_equal(cd_store_key_each(rd(f), f->acme, stop_key, &st[1], &err), 0);
        assert_int_equal(cd_store_contact_list(rd(f), f->acme, &cf, stop_contact, &st[2], &err),
                         ret < 0 ? -1 : 0);
        assert_int_equal(
            cd_store_named_list(rd(f), "group", f->acme, 0, 10, stop_named, &st[3], &err), 0);
        assert_int_equal(cd_store_consent_list(rd(f), f->acme, 1, stop_consent, &st[4], &err), 0);
        assert_int_equal(cd_store_event_list(rd(f), f->acme, &ef, stop_event, &st[5], &err), 0);
        assert_int_equal(cd_store_event_scan(rd(f), f->acme, stop_event, &st[6], &err), 0);
        assert_int_equal(cd_store_message_list(rd(f), f->acme, &mf, stop_message, &st[7], &err), 0);
        assert_int_equal(cd_store_message_due(rd(f), INT64_MAX, 10, stop_message, &st[8], &err), 0);
        for (int i = 0; i < 9; i++)
            assert_int_equal(st[i].calls, 1);
    }
}

static void expect_missing(int rc, const cd_err *err, const char *field, const char *msg)
{
    assert_int_equal(rc, -1);
    assert_int_equal(err->code, CD_ENOTFOUND);
    assert_string_equal(err->field, field);
    assert_string_equal(err->msg, msg);
}

static void test_row_helpers_missing(void **state)
{
    fixture *f = *state;
    cd_err err = {0};
    cd_account a;
    cd_apikey k;
    cd_contact c;
    cd_named n;
    cd_consent cs;
    cd_message m;
    cd_idem i;

    expect_missing(cd_store_account_get(rd(f), "name", "nobody", &a, &err), &err, "account",
                   "no such account");
    expect_missing(cd_store_key_get(rd(f), "key_none", &k, &err), &err, "", "no such key");
    expect_missing(cd_store_contact_get(rd(f), f->acme, 99, &c, &err), &err, "", "no such contact");
    expect_missing(cd_store_named_get(rd(f), "type", f->acme, 99, &n, &err), &err, "", "not found");
    expect_missing(cd_store_consent_get(rd(f), f->acme, 1, "all", &cs, &err), &err, "scope",
                   "no consent state");
    expect_missing(cd_store_message_get(rd(f), f->acme, "nope", &m, &err), &err, "",
                   "no such message");
    expect_missing(cd_store_idem_get(rd(f), f->acme, "nope", &i, &err), &err, "", "unknown key");
}

/* issue 10: marking a message sent appends its history entry as text when the history is a
 * compact array of objects; that text is what json_insert() made of it before, byte for
 * byte, and any other history still goes through json_insert(). */
static void test_mark_sent_history_text(void **state)
{
    static const char *const hist[] = {
        "[{\"status\":\"queued\",\"at\":\"2026-12-04T03:00:00.000Z\",\"detail\":null}]",
        "[{\"status\":\"queued\",\"at\":\"t\",\"detail\":\"caf\u00e9 \\\"q\\\" \\u00e9 \\n ]}\"},"
        "{\"status\":\"queued\",\"at\":\"u\",\"detail\":\"held for quiet hours until x\"}]",
        "[]",
        "",
        "not json",
    };
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    (void)state;
    assert_int_equal(sqlite3_open(":memory:", &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h,
                                  "CREATE TABLE messages (account_id, id, status, transport, "
                                  "transport_id, updated_ms, history, was)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < (int)(sizeof hist / sizeof hist[0]); i++) {
        assert_int_equal(sqlite3_prepare_v2(h,
                                            "INSERT INTO messages VALUES (1, ?1, 'sending', '', "
                                            "'', 0, ?2, ?2)",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_text(st, 2, hist[i], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        assert_int_equal(
            sqlite3_prepare_v2(h, cd_sqlite__msg_sql[Q_MESSAGE_MARK_SENT], -1, &st, NULL),
            SQLITE_OK);
        sqlite3_bind_int(st, 1, 1);
        sqlite3_bind_int(st, 2, i);
        sqlite3_bind_text(st, 3, "sink", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, i == 1 ? "" : "r\"1", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, 5);
        sqlite3_bind_text(st, 6, "2026-12-04T03:00:01.000Z", -1, SQLITE_STATIC);
        if (i == 1)
            sqlite3_bind_null(st, 7);
        else
            sqlite3_bind_text(st, 7, "r\"1", -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
    }
    /* What the statement wrote, against what json_insert() writes. */
    assert_int_equal(mem_int(h, "SELECT count(*) FROM messages WHERE status = 'sent' AND "
                                "history = json_insert(CASE WHEN json_valid(was) THEN was ELSE "
                                "'[]' END, '$[#]', json_object('status', 'sent', 'at', "
                                "'2026-12-04T03:00:01.000Z', 'detail', "
                                "CASE id WHEN 1 THEN NULL ELSE 'r\"1' END))"),
                     (int)(sizeof hist / sizeof hist[0]));
    assert_int_equal(mem_int(h, "SELECT count(*) FROM messages WHERE json_valid(history) AND "
                                "json_array_length(history) = CASE id WHEN 0 THEN 2 WHEN 1 THEN "
                                "3 ELSE 1 END"),
                     (int)(sizeof hist / sizeof hist[0]));
    sqlite3_close(h);
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

/* ---- what a batch wrote, for the commit hook (the workers it wakes) ---- */

typedef struct wrote_seen {
    unsigned last;
    int calls;
} wrote_seen;

static void on_commit_wrote(void *arg, int batch_size, double seconds, unsigned wrote)
{
    (void)batch_size;
    (void)seconds;
    wrote_seen *w = arg;
    w->last = wrote; /* cd_store_run returns after the hook: no lock needed */
    w->calls++;
}

static int exec_job(cd_db *db, void *arg, cd_err *err)
{
    return db->ops->exec(db, arg, err);
}

static unsigned wrote_by(fixture *f, wrote_seen *w, const char *sql)
{
    int calls = w->calls;
    char buf[600];
    snprintf(buf, sizeof buf, "%s", sql);
    assert_int_equal(cd_store_run(f->store, exec_job, buf, NULL), 0);
    assert_int_equal(w->calls, calls + 1);
    return w->last;
}

// The outbox is woken by a commit that wrote messages, the job worker by one that wrote
// jobs; a commit that wrote neither (an Omeda submission) wakes neither.
static void test_commit_hook_wrote(void **state)
{
    fixture *f = *state;
    wrote_seen w = {0};
    char sql[600];
    cd_store_on_commit(f->store, on_commit_wrote, &w);
    snprintf(sql, sizeof sql,
             "INSERT INTO consents (account_id, contact_id, scope, state, updated_ms) "
             "VALUES (%lld, 1, 'all', 'opted_in', 1)",
             (long long)f->acme);
    assert_int_equal(wrote_by(f, &w, sql), 0);
    snprintf(sql, sizeof sql,
             "INSERT INTO messages (id, account_id, to_phone, from_phone, text, kind, scope, "
             "status, reason, parts, transport, transport_id, history, created_ms, updated_ms) "
             "VALUES ('msg_w', %lld, '+16465550123', '', 'hi', 'send', 'all', 'queued', '', 1, "
             "'', '', '[]', 1, 1)",
             (long long)f->acme);
    assert_int_equal(wrote_by(f, &w, sql), CD_STORE_WROTE_MESSAGES);
    assert_int_equal(wrote_by(f, &w,
                              "INSERT INTO jobs (kind, due_ms, created_ms, updated_ms) "
                              "VALUES ('k', 1, 1, 1)"),
                     CD_STORE_WROTE_JOBS);
    assert_int_equal(wrote_by(f, &w, "UPDATE jobs SET attempts = 1 WHERE id < 0"), 0); /* no row */
    assert_int_equal(
        wrote_by(f, &w, "UPDATE messages SET attempts = 1; UPDATE jobs SET attempts = 2"),
        CD_STORE_WROTE_MESSAGES | CD_STORE_WROTE_JOBS);
    cd_store_on_commit(f->store, NULL, NULL);
}

/* issue 10: a group once seen is known to the store, for its own account only, and not
 * taken for a message type of the same id (nor a type for a group). */
static void test_group_memo(void **state)
{
    fixture *f = *state;
    cd_db *db = cd_store_reader(f->store);
    assert_non_null(db);
    assert_false(cd_store_group_known(db, f->acme, 6));
    cd_store_group_seen(db, f->acme, 6);
    assert_true(cd_store_group_known(db, f->acme, 6));
    assert_false(cd_store_group_known(db, f->other, 6));
    assert_false(cd_store_type_known(db, f->acme, 6));
    cd_store_type_seen(db, f->acme, 7);
    assert_false(cd_store_group_known(db, f->acme, 7));
    assert_true(cd_store_type_known(db, f->acme, 7));
    cd_store_release(f->store, db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_migrate_twice),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_migrate_0018),
        cmocka_unit_test(test_mark_sent_history_text),
        STORE_TEST(test_accounts),
        STORE_TEST(test_account_head),
        STORE_TEST(test_group_memo),
        STORE_TEST(test_account_each),
        STORE_TEST(test_keys),
        STORE_TEST(test_contact_put_get),
        STORE_TEST(test_contact_update_and_groups),
        STORE_TEST(test_contact_list_filters),
        STORE_TEST(test_groups),
        STORE_TEST(test_message_types),
        STORE_TEST(test_consents),
        STORE_TEST(test_events),
        STORE_TEST(test_messages),
        STORE_TEST(test_idempotency),
        STORE_TEST(test_idempotency_purge),
        STORE_TEST(test_group_commit_concurrent),
        STORE_TEST(test_commit_hook_wrote),
        STORE_TEST(test_failing_job_in_batch),
        STORE_TEST(test_run_reports_job_error),
        STORE_TEST(test_close_drains_queue),
        STORE_TEST(test_reader_keeps_snapshot),
        STORE_TEST(test_reader_pool_blocks_when_full),
        STORE_TEST(test_row_helpers_stop),
        STORE_TEST(test_row_helpers_missing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
