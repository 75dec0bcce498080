/* tests/unit/store/test_keys.c -- the API keys a store remembers (store/keys.c): a key read
 * on a reader is answered from memory the next time, and never once its revocation is
 * durable: made through this store, made by another process on the same database (which
 * tells the server through its lock file), or made while a reader was still on a snapshot
 * from before it. Each test reads the key first, so that a cache that forgot nothing would
 * answer it as valid. */
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

#define KEY_ID "key_0123456789abcdef"

typedef struct revoke {
    int64_t acct;
    const char *id;
} revoke;

static int job_key(cd_db *db, void *arg, cd_err *err)
{
    const fixture *f = arg;
    cd_apikey k = {.account_id = f->acct, .created_ms = 1};
    snprintf(k.id, sizeof k.id, "%s", KEY_ID);
    snprintf(k.hash, sizeof k.hash, "%064d", 7);
    return cd_store_key_insert(db, &k, err);
}

static int job_revoke(cd_db *db, void *arg, cd_err *err)
{
    const revoke *r = arg;
    return cd_store_key_revoke(db, r->acct, r->id, 2, err);
}

static int setup(void **state)
{
    fixture *f = tu_store_fixture_open("keys.db");
    f->acct = tu_account_acme(f->store);
    assert_int_equal(cd_store_run(f->store, job_key, f, NULL), 0);
    *state = f;
    return 0;
}

/* 0 and the row, as a request's reader finds it; -1 when not found. */
static int auth_on(cd_db *db, cd_apikey *k)
{
    cd_account a;
    return cd_store_key_auth(db, KEY_ID, k, &a, NULL);
}

static int auth(fixture *f, cd_apikey *k)
{
    cd_db *db = cd_store_reader(f->store);
    assert_non_null(db);
    int rc = auth_on(db, k);
    cd_store_release(f->store, db);
    return rc;
}

static void revoke_here(fixture *f)
{
    revoke r = {f->acct, KEY_ID};
    assert_int_equal(cd_store_run(f->store, job_revoke, &r, NULL), 0);
}

/* A write to the key by a connection of its own, as the CLI's process makes it. */
static void revoke_elsewhere(fixture *f)
{
    char path[TU_PATH_MAX + 16], sql[160];
    sqlite3 *h;
    snprintf(path, sizeof path, "%s/keys.db", f->dir);
    snprintf(sql, sizeof sql, "UPDATE api_keys SET revoked_ms = 3 WHERE id = '%s'", KEY_ID);
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

// A key read once is answered from memory: the database no longer has it, the store does.
static void remembered(void **state)
{
    fixture *f = *state;
    cd_apikey k;
    assert_int_equal(auth(f, &k), 0);
    assert_int_equal(k.revoked_ms, 0);
    revoke_elsewhere(f); /* nobody tells the store */
    assert_int_equal(auth(f, &k), 0);
    assert_int_equal(k.revoked_ms, 0);
}

// A revocation through the store is seen by the next request, not the row remembered.
static void revoked_here_is_seen(void **state)
{
    fixture *f = *state;
    cd_apikey k;
    assert_int_equal(auth(f, &k), 0);
    revoke_here(f);
    assert_int_equal(auth(f, &k), 0); /* found, and revoked: the caller refuses it */
    assert_int_not_equal(k.revoked_ms, 0);
}

// Another process revokes and tells the server through the lock file's counter.
static void revoked_elsewhere_is_seen_by_a_server(void **state)
{
    fixture *f = *state;
    cd_apikey k;
    cd_err err = {0};
    assert_int_equal(cd_store_serve_lock(f->store, &err), 0); /* it serves: it maps the file */
    assert_int_equal(auth(f, &k), 0);
    /* The CLI's process: a store of its own on the same file. */
    cd_store *cli = tu_store_open(f->dir, "keys.db");
    revoke r = {f->acct, KEY_ID};
    assert_int_equal(cd_store_run(cli, job_revoke, &r, NULL), 0);
    cd_store_close(cli);
    assert_int_equal(auth(f, &k), 0);
    assert_int_not_equal(k.revoked_ms, 0);
}

// A reader whose snapshot predates a revocation reads the key as valid (a snapshot is a
// snapshot); what it read is not remembered as newer than the revocation.
static void old_snapshot_is_not_remembered(void **state)
{
    fixture *f = *state;
    cd_apikey k;
    cd_db *old = cd_store_reader(f->store);
    assert_non_null(old);
    cd_named g;
    cd_store_named_get(old, "group", f->acct, 1, &g, NULL); /* its snapshot begins */
    revoke_here(f);
    assert_int_equal(auth_on(old, &k), 0);
    assert_int_equal(k.revoked_ms, 0); /* the old snapshot's answer */
    cd_store_release(f->store, old);
    assert_int_equal(auth(f, &k), 0);
    assert_int_not_equal(k.revoked_ms, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(remembered, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(revoked_here_is_seen, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(revoked_elsewhere_is_seen_by_a_server, setup,
                                        tu_store_teardown),
        cmocka_unit_test_setup_teardown(old_snapshot_is_not_remembered, setup, tu_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
