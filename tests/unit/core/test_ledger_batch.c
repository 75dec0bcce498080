/* tests/unit/core/test_ledger_batch.c -- issue 16: the writer writes and signs each
 * account's ledger head once per batch (core/ledger.c, store/writer.c).
 *
 * A gate job holds the writer while the jobs under test queue up, so that they all run in
 * one batch. Whatever fails in it (a job whose savepoint is rolled back, the whole batch
 * lost to SQLITE_FULL, an injected fault anywhere), `ledger verify` must pass with the head
 * signed, and the head must be the newest committed event. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/account.h"
#include "core/consent.h"
#include "core/contact.h"
#include "core/ledger.h"
#include "core/phone.h"
#include "store/store_int.h" /* cd_store__fail_after, the writer connection's exec */
#include "util/crypto.h"

#include "../testutil.h"

static const unsigned char test_key[CD_LEDGER_KEY_LEN] = "0123456789abcdef0123456789abcdef";

typedef struct fixture {
    char dir[TU_PATH_MAX];
    cd_store *store;
    int64_t acme, other;
} fixture;

enum kind { K_CONSENT, K_CONSENT_THEN_FAIL, K_TWO_THEN_FAIL, K_FILL_DISK, K_GATE };

typedef struct tjob {
    enum kind kind;
    int64_t account_id;
    char phone[24];
    cd_state state;
    cd_event ev; /* the last event the job appended */
    int rc;      /* as answered */
    atomic_bool finished;
    /* K_GATE */
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    bool *entered, *open;
} tjob;

static int consent(cd_db *db, tjob *j, const char *phone, cd_state st, cd_err *err)
{
    cd_contact_patch p = {.phone = phone, .merge = true};
    cd_contact c;
    bool created;
    cd_provenance prov = {.surface = "native", .channel = "api", .request_id = "req"};
    cd_scope sc = {.kind = CD_SCOPE_ALL};
    if (cd_contact_apply(db, j->account_id, 0, &p, true, &c, &created, err) != 0)
        return -1;
    int rc = cd_consent_set(db, j->account_id, &c, sc, st, 0, &prov, NULL, &j->ev, err);
    cd_contact_clear(&c);
    return rc;
}

static int gate(tjob *j)
{
    pthread_mutex_lock(j->lock);
    *j->entered = true;
    pthread_cond_broadcast(j->cond);
    while (!*j->open)
        pthread_cond_wait(j->cond, j->lock);
    pthread_mutex_unlock(j->lock);
    return 0;
}

static int tjob_run(cd_db *db, void *arg, cd_err *err)
{
    tjob *j = arg;
    char second[24];
    switch (j->kind) {
    case K_CONSENT:
        return consent(db, j, j->phone, j->state, err);
    case K_CONSENT_THEN_FAIL:
        if (consent(db, j, j->phone, j->state, err) != 0)
            return -1;
        return cd_fail(err, CD_EINVAL, "", "this job fails after its event");
    case K_TWO_THEN_FAIL:
        snprintf(second, sizeof second, "%.20s9", j->phone);
        if (consent(db, j, j->phone, j->state, err) != 0 ||
            consent(db, j, second, j->state, err) != 0)
            return -1;
        return cd_fail(err, CD_EINVAL, "", "this job fails after two events");
    case K_FILL_DISK: {
        /* SQLITE_FULL on a big record: SQLite rolls the whole transaction back, and the
         * job goes on as if nothing happened (the writer must notice by itself). */
        if (consent(db, j, j->phone, j->state, err) != 0 ||
            db->ops->exec(db, "PRAGMA max_page_count = 1", err) != 0)
            return -1;
        cd_idem in = {.status = 200, .created_ms = 1};
        snprintf(in.request_hash, sizeof in.request_hash, "%064d", 0);
        in.body = calloc(1, 256 * 1024 + 1);
        memset(in.body, 'x', 256 * 1024);
        cd_store_idem_put(db, j->account_id, "big", &in, err);
        free(in.body);
        return 0;
    }
    case K_GATE:
        return gate(j);
    }
    return -1;
}

static void tjob_done(void *arg, int rc, const cd_err *err)
{
    tjob *j = arg;
    (void)err;
    j->rc = rc;
    atomic_store(&j->finished, true);
}

static void wait_done(tjob *j)
{
    struct timespec ms = {0, 1000000};
    while (!atomic_load(&j->finished))
        nanosleep(&ms, NULL);
}

static void tjob_set(tjob *j, enum kind k, int64_t account_id, const char *phone, cd_state st)
{
    memset(j, 0, sizeof *j);
    j->kind = k;
    j->account_id = account_id;
    snprintf(j->phone, sizeof j->phone, "%s", phone ? phone : "");
    j->state = st;
}

/* issue 10 (perf): how the jobs below are submitted. 0: cd_store_submit, a savepoint each;
 * 1: all rerunnable (one shared savepoint); 2: every other job rerunnable. */
static int rerun_mode;

/* Runs jobs[0..n) in one batch: a gate holds the writer until all are queued. */
static void run_in_one_batch(fixture *f, tjob *jobs, int n, int fault_after)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    bool entered = false, open = false;
    tjob g;
    cd_err err = {0};
    tjob_set(&g, K_GATE, f->acme, NULL, CD_STATE_NONE);
    g.lock = &lock;
    g.cond = &cond;
    g.entered = &entered;
    g.open = &open;
    assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &g, &err), 0);
    pthread_mutex_lock(&lock);
    while (!entered)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) {
        bool rerun = rerun_mode == 1 || (rerun_mode == 2 && i % 2 == 0);
        int rc = rerun ? cd_store_submit_rerunnable(f->store, tjob_run, tjob_done, &jobs[i], &err)
                       : cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], &err);
        assert_int_equal(rc, 0);
    }
    if (fault_after > 0)
        cd_store__fail_after(f->store, fault_after, false, 0);
    pthread_mutex_lock(&lock);
    open = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    wait_done(&g);
    for (int i = 0; i < n; i++)
        wait_done(&jobs[i]);
    if (fault_after > 0)
        cd_store__fail_after(f->store, 0, false, 0);
}

static int job_account(cd_db *db, void *arg, cd_err *err)
{
    cd_account *out = arg;
    cd_account_in in = {.name = out->name};
    char key[CD_KEY_LEN];
    if (cd_account_create(db, &in, out, key, err) != 0)
        return -1;
    return cd_ledger_sign_account(db, out, err);
}

static int64_t create_account(cd_store *s, const char *name)
{
    cd_account a = {0};
    cd_err err = {0};
    snprintf(a.name, sizeof a.name, "%s", name);
    if (cd_store_run(s, job_account, &a, &err) != 0)
        fail_msg("account job: %s", err.msg);
    return a.id;
}

static int job_disk_back(cd_db *db, void *arg, cd_err *err)
{
    (void)arg;
    return db->ops->exec(db, "PRAGMA max_page_count = 1073741823", err);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tu_mkdtemp(f->dir);
    f->store = tu_store_open(f->dir, "t.db");
    cd_store_set_ledger_key(f->store, test_key);
    f->acme = create_account(f->store, "acme");
    f->other = create_account(f->store, "other");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cd_store_close(f->store);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* `ledger verify` over every account, signatures included. */
static void assert_verifies(fixture *f)
{
    cd_ledger_report r;
    cd_err err = {0};
    cd_db *db = cd_store_reader(f->store);
    assert_non_null(db);
    if (cd_ledger_verify(db, 0, &r, &err) != 0)
        fail_msg("cd_ledger_verify: %s", err.msg);
    cd_store_release(f->store, db);
    if (!r.ok)
        fail_msg("ledger: %s at seq %lld of %s", r.problem, (long long)r.seq, r.account);
    assert_true(r.signature_checked);
}

static void assert_head(fixture *f, int64_t account_id, int64_t seq, const char *hash)
{
    cd_account a;
    cd_err err = {0};
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)account_id);
    cd_db *db = cd_store_reader(f->store);
    assert_int_equal(cd_store_account_get(db, "id", id, &a, &err), 0);
    cd_store_release(f->store, db);
    assert_int_equal(a.ledger_seq, seq);
    assert_string_equal(a.ledger_head, hash);
}

/* Two accounts in one batch; a job fails between two that succeed, for each account, one
 * of them after two events: the heads are those of the last committed events, the next
 * committed event takes the failed one's seq, and every head is signed. */
static void test_failed_job_between_two(void **state)
{
    fixture *f = *state;
    tjob j[6];
    tjob_set(&j[0], K_CONSENT, f->acme, "+16465550101", CD_STATE_OPTED_IN);
    tjob_set(&j[1], K_CONSENT_THEN_FAIL, f->acme, "+16465550102", CD_STATE_OPTED_IN);
    tjob_set(&j[2], K_CONSENT, f->other, "+16465550101", CD_STATE_OPTED_IN);
    tjob_set(&j[3], K_TWO_THEN_FAIL, f->other, "+16465550102", CD_STATE_OPTED_IN);
    tjob_set(&j[4], K_CONSENT, f->acme, "+16465550103", CD_STATE_OPTED_IN);
    tjob_set(&j[5], K_CONSENT, f->other, "+16465550103", CD_STATE_OPTED_IN);
    run_in_one_batch(f, j, 6, 0);
    int want[6] = {0, -1, 0, -1, 0, 0};
    for (int i = 0; i < 6; i++)
        assert_int_equal(j[i].rc, want[i]);
    assert_int_equal(j[0].ev.seq, 1);
    assert_int_equal(j[4].ev.seq, 2);
    assert_string_equal(j[4].ev.prev_hash, j[0].ev.hash);
    assert_int_equal(j[5].ev.seq, 2);
    assert_string_equal(j[5].ev.prev_hash, j[2].ev.hash);
    assert_verifies(f);
    assert_head(f, f->acme, 2, j[4].ev.hash);
    assert_head(f, f->other, 2, j[5].ev.hash);
}

/* The first job to touch an account in the batch fails: the next one chains to the head
 * the database has. Then a batch where only a failing job touches the account. */
static void test_first_job_fails(void **state)
{
    fixture *f = *state;
    tjob j[3];
    tjob_set(&j[0], K_CONSENT, f->acme, "+16465550101", CD_STATE_OPTED_IN);
    run_in_one_batch(f, j, 1, 0);
    tjob_set(&j[0], K_CONSENT_THEN_FAIL, f->acme, "+16465550102", CD_STATE_OPTED_IN);
    tjob_set(&j[1], K_CONSENT, f->acme, "+16465550103", CD_STATE_OPTED_IN);
    tjob_set(&j[2], K_CONSENT_THEN_FAIL, f->other, "+16465550103", CD_STATE_OPTED_IN);
    run_in_one_batch(f, j, 3, 0);
    assert_int_equal(j[0].rc, -1);
    assert_int_equal(j[1].rc, 0);
    assert_int_equal(j[2].rc, -1);
    assert_int_equal(j[1].ev.seq, 2);
    assert_verifies(f);
    assert_head(f, f->acme, 2, j[1].ev.hash);
    assert_head(f, f->other, 0, CD_LEDGER_GENESIS);
}

/* issue 8 item 8 with the ledger: SQLite rolls the whole batch back (SQLITE_FULL), so
 * every job fails, and the heads kept for the batch are forgotten. */
static void test_lost_batch(void **state)
{
    fixture *f = *state;
    tjob j[3];
    cd_err err = {0};
    tjob_set(&j[0], K_CONSENT, f->acme, "+16465550101", CD_STATE_OPTED_IN);
    run_in_one_batch(f, j, 1, 0);
    char head[65];
    memcpy(head, j[0].ev.hash, sizeof head);
    tjob_set(&j[0], K_CONSENT, f->acme, "+16465550102", CD_STATE_OPTED_IN);
    tjob_set(&j[1], K_FILL_DISK, f->acme, "+16465550103", CD_STATE_OPTED_IN);
    tjob_set(&j[2], K_CONSENT, f->acme, "+16465550104", CD_STATE_OPTED_IN);
    run_in_one_batch(f, j, 3, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(j[i].rc, -1);
    assert_int_equal(cd_store_run(f->store, job_disk_back, NULL, &err), 0);
    assert_verifies(f);
    assert_head(f, f->acme, 1, head);
    tjob_set(&j[0], K_CONSENT, f->acme, "+16465550105", CD_STATE_OPTED_IN);
    run_in_one_batch(f, j, 1, 0);
    assert_int_equal(j[0].rc, 0);
    assert_int_equal(j[0].ev.seq, 2);
    assert_string_equal(j[0].ev.prev_hash, head);
    assert_verifies(f);
}

/* A fault at every store call of a two-account batch in turn (the head's write and its
 * signature before COMMIT included): whatever is committed verifies, signed. */
static void test_fault_anywhere(void **state)
{
    fixture *f = *state;
    char phone[24];
    int fired = 1;
    for (int n = 1; fired > 0 && n < 200; n++) {
        tjob j[4];
        for (int i = 0; i < 4; i++) {
            snprintf(phone, sizeof phone, "+1646555%04d", n * 4 + i);
            tjob_set(&j[i], i == 2 ? K_CONSENT_THEN_FAIL : K_CONSENT, i % 2 ? f->other : f->acme,
                     phone, CD_STATE_OPTED_IN);
        }
        run_in_one_batch(f, j, 4, n);
        fired = cd_store__faults_fired(f->store);
        assert_verifies(f);
    }
    assert_int_equal(fired, 0); /* every call position was hit once */
}

/* The same with rerunnable jobs, all or every other one: a failing job rolls the shared
 * savepoint back, heads included, and the jobs before it run again. */
static void test_rerunnable(void **state)
{
    for (rerun_mode = 1; rerun_mode <= 2; rerun_mode++) {
        test_failed_job_between_two(state);
        teardown(state);
        setup(state);
        test_first_job_fails(state);
        teardown(state);
        setup(state);
        test_fault_anywhere(state);
        if (rerun_mode == 1) {
            teardown(state);
            setup(state);
        }
    }
    rerun_mode = 0;
}

static int group_setup(void **state)
{
    (void)state;
    cd_phone_init();
    return cd_crypto_init();
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_failed_job_between_two), T(test_first_job_fails), T(test_lost_batch),
        T(test_fault_anywhere),         T(test_rerunnable),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
