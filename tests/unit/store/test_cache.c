/* tests/unit/store/test_cache.c -- the writer connection's per-account cache
 * (store/sqlite_cache.c): the account's settings and whether anyone listens for its
 * webhooks are remembered between jobs, and forgotten when this connection writes them,
 * when a job that read them after its own write is rolled back, and when another
 * connection (the CLI, another process) commits a change. Each test reads through the
 * cache first, so that a cache that forgot nothing would answer the old value. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#include "../testutil.h"

typedef tu_store_fixture fixture;

typedef struct call {
    int64_t acct;
    const char *put;  /* settings to write first, as JSON; NULL: none */
    bool fail;        /* roll the job back after reading */
    json_t *settings; /* OUT: as read (after the write) */
    bool any;         /* OUT: cd_store_webhook_any */
} call;

static int run_call(cd_db *db, void *arg, cd_err *err)
{
    call *c = arg;
    if (c->put) {
        json_t *v = json_loads(c->put, 0, NULL);
        int rc = cd_store_settings_put(db, c->acct, v, err);
        json_decref(v);
        if (rc != 0)
            return -1;
    }
    if (cd_store_settings_get(db, c->acct, &c->settings, err) != 0 ||
        cd_store_webhook_any(db, c->acct, &c->any, err) != 0)
        return -1;
    return c->fail ? cd_fail(err, CD_EINVAL, "", "rolled back on purpose") : 0;
}

/* Runs one job and returns the "k" member of the settings it read (-1 when absent). */
static int read_k(fixture *f, const char *put, bool fail, bool *any)
{
    call c = {.acct = f->acct, .put = put, .fail = fail};
    int rc = cd_store_run(f->store, run_call, &c, NULL);
    assert_int_equal(rc, fail ? -1 : 0);
    json_t *k = json_object_get(c.settings, "k");
    int v = k ? (int)json_integer_value(k) : -1;
    if (any)
        *any = c.any;
    json_decref(c.settings);
    return v;
}

/* Another connection to the same file, as the CLI would make. */
static void external(fixture *f, const char *sql)
{
    char path[TU_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/c.db", f->dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(h);
}

static int setup(void **state)
{
    fixture *f = tu_store_fixture_open("c.db");
    f->acct = tu_account_acme(f->store);
    *state = f;
    return 0;
}

// A write through this connection is seen by the next read, in the same job and after.
static void own_write_is_seen(void **state)
{
    fixture *f = *state;
    assert_int_equal(read_k(f, NULL, false, NULL), -1);
    assert_int_equal(read_k(f, "{\"k\":1}", false, NULL), 1);
    assert_int_equal(read_k(f, NULL, false, NULL), 1);
    assert_int_equal(read_k(f, "{\"k\":2}", false, NULL), 2);
    assert_int_equal(read_k(f, NULL, false, NULL), 2);
}

// The caller owns what it is given: changing it changes nothing remembered.
static void caller_owns_its_copy(void **state)
{
    fixture *f = *state;
    assert_int_equal(read_k(f, "{\"k\":1}", false, NULL), 1);
    call c = {.acct = f->acct};
    assert_int_equal(cd_store_run(f->store, run_call, &c, NULL), 0);
    json_object_set_new(c.settings, "k", json_integer(9));
    json_decref(c.settings);
    assert_int_equal(read_k(f, NULL, false, NULL), 1);
}

// A job that wrote, read its own write (so it may be remembered), then failed: its
// savepoint is rolled back, and the next job must read the committed value.
static void rolled_back_write_is_forgotten(void **state)
{
    fixture *f = *state;
    assert_int_equal(read_k(f, "{\"k\":1}", false, NULL), 1);
    assert_int_equal(read_k(f, "{\"k\":7}", true, NULL), 7);
    assert_int_equal(read_k(f, NULL, false, NULL), 1);
}

// Another connection commits: the writer's next batch reads the new settings.
static void other_connection_commit_is_seen(void **state)
{
    fixture *f = *state;
    assert_int_equal(read_k(f, "{\"k\":1}", false, NULL), 1);
    assert_int_equal(read_k(f, NULL, false, NULL), 1); /* remembered now */
    external(f, "UPDATE accounts SET settings = '{\"k\":5}'");
    assert_int_equal(read_k(f, NULL, false, NULL), 5);
}

// Webhook listeners: a subscription or a profile callback added by another connection, or
// removed, changes the answer at once.
static void listening_follows_changes(void **state)
{
    fixture *f = *state;
    bool any = true;
    read_k(f, NULL, false, &any);
    assert_false(any);
    read_k(f, NULL, false, &any); /* remembered now */
    assert_false(any);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO webhook_endpoints (id, account_id, url, url2, secret, events, enabled, "
             "profile, created_ms, updated_ms, deleted_ms) VALUES ('wh_1', %lld, "
             "'http://127.0.0.1:9/', '', 's', '[]', 1, '', 1, 1, 0)",
             (long long)f->acct);
    external(f, sql);
    read_k(f, NULL, false, &any);
    assert_true(any);
    external(f, "UPDATE webhook_endpoints SET deleted_ms = 2");
    read_k(f, NULL, false, &any);
    assert_false(any);
}

typedef struct shared_call {
    int64_t acct;
    json_t *a, *b, *copy, *after; /* OUT */
} shared_call;

/* Reads the settings to share twice and for change once, writes k = 3, reads again. */
static int run_shared(cd_db *db, void *arg, cd_err *err)
{
    shared_call *c = arg;
    json_t *v = json_pack("{si}", "k", 3);
    int rc = cd_store_settings_read(db, c->acct, &c->a, err) != 0 ||
                     cd_store_settings_read(db, c->acct, &c->b, err) != 0 ||
                     cd_store_settings_get(db, c->acct, &c->copy, err) != 0 ||
                     cd_store_settings_put(db, c->acct, v, err) != 0 ||
                     cd_store_settings_read(db, c->acct, &c->after, err) != 0
                 ? -1
                 : 0;
    json_decref(v);
    return rc;
}

// issue 10: a reader that only reads shares the remembered settings (no copy), which a
// write then replaces, not changes: what was shared keeps the value it was read with.
static void shared_read_is_not_copied(void **state)
{
    fixture *f = *state;
    assert_int_equal(read_k(f, "{\"k\":1}", false, NULL), 1); /* remembered now */
    shared_call c = {.acct = f->acct};
    assert_int_equal(cd_store_run(f->store, run_shared, &c, NULL), 0);
    assert_ptr_equal(c.a, c.b);
    assert_ptr_not_equal(c.a, c.copy);
    assert_true(json_equal(c.a, c.copy));
    assert_int_equal(json_integer_value(json_object_get(c.a, "k")), 1);
    assert_int_equal(json_integer_value(json_object_get(c.after, "k")), 3);
    json_decref(c.a);
    json_decref(c.b);
    json_decref(c.copy);
    json_decref(c.after);
    assert_int_equal(read_k(f, NULL, false, NULL), 3);
}

typedef struct profiles_call {
    int64_t acct;
    int put, del; /* 1: write the profile "p1" first / delete it first */
    int n;        /* OUT: profiles listed */
} profiles_call;

static int count_profile(const cd_profile *p, void *arg)
{
    (void)p;
    (*(int *)arg)++;
    return 0;
}

static int run_profiles(cd_db *db, void *arg, cd_err *err)
{
    profiles_call *c = arg;
    cd_profile p = {.account_id = c->acct, .created_ms = 1, .modified_ms = 1};
    snprintf(p.uuid, sizeof p.uuid, "p1");
    snprintf(p.name, sizeof p.name, "one");
    if ((c->put && cd_store_profile_put(db, &p, err) != 0) ||
        (c->del && cd_store_profile_delete(db, c->acct, "p1", err) != 0))
        return -1;
    c->n = 0;
    return cd_store_profile_list(db, c->acct, count_profile, &c->n, err);
}

static int list_profiles(fixture *f, int put, int del)
{
    profiles_call c = {.acct = f->acct, .put = put, .del = del};
    assert_int_equal(cd_store_run(f->store, run_profiles, &c, NULL), 0);
    return c.n;
}

// issue 10 (perf): an account without profiles is remembered as such (every message asks),
// and forgotten as soon as one is written, by this connection or by another.
static void no_profiles_follows_changes(void **state)
{
    fixture *f = *state;
    assert_int_equal(list_profiles(f, 0, 0), 0);
    assert_int_equal(list_profiles(f, 0, 0), 0); /* remembered now */
    assert_int_equal(list_profiles(f, 1, 0), 1);
    assert_int_equal(list_profiles(f, 0, 0), 1);
    assert_int_equal(list_profiles(f, 0, 1), 0);
    assert_int_equal(list_profiles(f, 0, 0), 0); /* remembered again */
    char sql[512];
    snprintf(
        sql, sizeof sql,
        "INSERT INTO profiles (uuid, account_id, name, callback_url, callback_url2, "
        "signing_secret, created_ms, modified_ms) VALUES ('p2', %lld, 'two', '', '', 's', 1, 1)",
        (long long)f->acct);
    external(f, sql);
    assert_int_equal(list_profiles(f, 0, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(own_write_is_seen, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(caller_owns_its_copy, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(shared_read_is_not_copied, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(rolled_back_write_is_forgotten, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(other_connection_commit_is_seen, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(listening_follows_changes, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(no_profiles_follows_changes, setup, tu_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
