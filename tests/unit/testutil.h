/* tests/unit/testutil.h -- helpers shared by the unit tests that need a real SQLite store:
 * a private directory under /tmp, and its removal. Header-only (static inline) because
 * meson builds each test from its one .c file. Include it after <cmocka.h>. */
#ifndef CD_TESTS_UNIT_TESTUTIL_H
#define CD_TESTS_UNIT_TESTUTIL_H

#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define TU_PATH_MAX 256

/* Creates /tmp/consentd-unit-XXXXXX into dir[TU_PATH_MAX]; fails the test if it cannot. */
static inline void tu_mkdtemp(char dir[TU_PATH_MAX])
{
    (void)snprintf(dir, TU_PATH_MAX, "/tmp/consentd-unit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        fail_msg("mkdtemp failed");
}

static inline int tu_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything in it (files first: FTW_DEPTH). */
static inline void tu_rmtree(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        (void)nftw(dir, tu_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* "sqlite:<dir>/<file>" into url[TU_PATH_MAX + 16]. */
static inline void tu_sqlite_url(char *url, size_t n, const char *dir, const char *file)
{
    (void)snprintf(url, n, "sqlite:%s/%s", dir, file);
}

/* Opens a store on <dir>/<file>, failing the test when it cannot. */
static inline cd_store *tu_store_open(const char *dir, const char *file)
{
    char url[TU_PATH_MAX + 32];
    cd_err err = {0};
    tu_sqlite_url(url, sizeof url, dir, file);
    cd_store *s = cd_store_open(url, &err);
    if (s == NULL)
        fail_msg("cd_store_open(%s): %s", url, err.msg);
    return s;
}

/* The fixture of the store tests: a store on <fresh temporary directory>/<file>. */
typedef struct tu_store_fixture {
    char dir[TU_PATH_MAX];
    cd_store *store;
    int64_t acct; /* for the tests whose setup creates an account */
} tu_store_fixture;

static inline tu_store_fixture *tu_store_fixture_open(const char *file)
{
    tu_store_fixture *f = calloc(1, sizeof *f);
    tu_mkdtemp(f->dir);
    f->store = tu_store_open(f->dir, file);
    return f;
}

static inline int tu_job_account(cd_db *db, void *arg, cd_err *err)
{
    return cd_store_account_insert(db, arg, err);
}

/* A bare account row "acme" (no key, genesis head): its id. */
static inline int64_t tu_account_acme(cd_store *s)
{
    cd_account a = {.created_ms = 1};
    snprintf(a.name, sizeof a.name, "acme");
    snprintf(a.login, sizeof a.login, "ops@acme.test");
    snprintf(a.ledger_head, sizeof a.ledger_head, "%064d", 0);
    cd_err err = {0};
    if (cd_store_run(s, tu_job_account, &a, &err) != 0)
        fail_msg("account insert: %s", err.msg);
    return a.id;
}

/* A cmocka teardown for a tu_store_fixture. */
static inline int tu_store_teardown(void **state)
{
    tu_store_fixture *f = *state;
    cd_store_close(f->store);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* A gate: a writer job that calls tu_gate_hold() keeps the writer until the test calls
 * tu_gate_open(), so that what is submitted meanwhile queues up and runs as one batch. */
typedef struct tu_gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered, open;
} tu_gate;

#define TU_GATE_INIT                                                                               \
    {                                                                                              \
        .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER                        \
    }

static inline void tu_gate_hold(tu_gate *g) /* in the job */
{
    pthread_mutex_lock(&g->lock);
    g->entered = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static inline void tu_gate_wait_entered(tu_gate *g)
{
    pthread_mutex_lock(&g->lock);
    while (!g->entered)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static inline void tu_gate_open(tu_gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

#endif
