/* tests/unit/store/test_writer.c -- the writer under faults and load (issue 8):
 * - item 8: a batch whose transaction SQLite rolls back on its own (a full disk, made
 *   real with PRAGMA max_page_count) commits nothing and answers every job failed;
 * - item 7: the queue is bounded (CD_EBUSY, done not called), a job queued past its
 *   deadline is answered CD_EBUSY without running, cd_store_run is exempt from both,
 *   and closing answers every queued job exactly once;
 * - issue 9 part 10: the injected-fault countdown (cd_store__fail_after) fails every store
 *   call position of a batch in turn; only the job that hit it is rolled back. */
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

#include "store/store.h"
#include "store/sqlite_int.h" /* cd_sqlite__sync_count */
#include "store/store_int.h"  /* the writer connection's exec, for PRAGMA max_page_count */

#include "../testutil.h"

typedef tu_store_fixture fixture;

/* ---- jobs ---- */

enum kind {
    K_GROUP,
    K_GROUP_THEN_FAIL,
    K_FILL_DISK_THEN_GROUP,
    K_BIG_IDEM,
    K_BIG_IDEM_IGNORED,
    K_GATE,
    K_MULTI
};

typedef struct tjob {
    enum kind kind;
    char name[64];
    int64_t acct;
    atomic_int ran, calls; /* fn runs; done calls */
    int rc;
    cd_err err;
    /* K_GATE: holds the writer until opened */
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    bool *entered, *open;
} tjob;

static atomic_int finished;

static int insert_group(cd_db *db, tjob *j, cd_err *err)
{
    cd_named n = {.created_ms = 1};
    snprintf(n.name, sizeof n.name, "%s", j->name);
    return cd_store_named_insert(db, "group", j->acct, &n, err);
}

/* K_MULTI: three store calls (insert, read back, insert), so that a fault can hit the
 * first, the middle or the last call of a job. */
enum { MULTI_CALLS = 3 };
static int multi_run(cd_db *db, tjob *j, cd_err *err)
{
    cd_named a = {.created_ms = 1}, b = {.created_ms = 1}, back;
    snprintf(a.name, sizeof a.name, "%s-a", j->name);
    snprintf(b.name, sizeof b.name, "%s-b", j->name);
    if (cd_store_named_insert(db, "group", j->acct, &a, err) != 0)
        return -1;
    if (cd_store_named_by_name(db, "group", j->acct, a.name, &back, err) != 0)
        return -1;
    return cd_store_named_insert(db, "group", j->acct, &b, err);
}

static int tjob_run(cd_db *db, void *arg, cd_err *err)
{
    tjob *j = arg;
    atomic_fetch_add(&j->ran, 1);
    switch (j->kind) {
    case K_GROUP:
        return insert_group(db, j, err);
    case K_GROUP_THEN_FAIL:
        if (insert_group(db, j, err) != 0)
            return -1;
        return cd_fail(err, CD_EINVAL, "", "fails after its write");
    case K_FILL_DISK_THEN_GROUP:
        /* A value below the current size sets the limit to the current size: from here
         * on, any write that needs one more page fails with SQLITE_FULL. */
        if (db->ops->exec(db, "PRAGMA max_page_count = 1", err) != 0)
            return -1;
        return insert_group(db, j, err);
    case K_BIG_IDEM:
    case K_BIG_IDEM_IGNORED: {
        /* A 256 KiB record needs overflow pages the "disk" no longer has. */
        cd_idem in = {.status = 200, .created_ms = 1};
        snprintf(in.request_hash, sizeof in.request_hash, "%064d", 0);
        in.body = malloc(256 * 1024 + 1);
        memset(in.body, 'x', 256 * 1024);
        in.body[256 * 1024] = '\0';
        int rc = cd_store_idem_put(db, j->acct, j->name, &in, err);
        free(in.body);
        /* A job may treat a failed write as optional and go on: the writer must still
         * notice that the transaction is gone. */
        return j->kind == K_BIG_IDEM_IGNORED ? 0 : rc;
    }
    case K_MULTI:
        return multi_run(db, j, err);
    case K_GATE:
        pthread_mutex_lock(j->lock);
        *j->entered = true;
        pthread_cond_broadcast(j->cond);
        while (!*j->open)
            pthread_cond_wait(j->cond, j->lock);
        pthread_mutex_unlock(j->lock);
        return insert_group(db, j, err);
    }
    return -1;
}

static void tjob_done(void *arg, int rc, const cd_err *err)
{
    tjob *j = arg;
    j->rc = rc;
    if (err)
        j->err = *err;
    atomic_fetch_add(&j->calls, 1);
    atomic_fetch_add(&finished, 1);
}

static void tjob_init(tjob *j, enum kind kind, int64_t acct, const char *name)
{
    memset(j, 0, sizeof *j);
    j->kind = kind;
    j->acct = acct;
    snprintf(j->name, sizeof j->name, "%s", name);
    atomic_init(&j->ran, 0);
    atomic_init(&j->calls, 0);
}

static void wait_finished(int n)
{
    for (int i = 0; i < 20000 && atomic_load(&finished) < n; i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    assert_int_equal(atomic_load(&finished), n);
}

/* The writer held by a K_GATE job, so that what is submitted next queues up. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered, open;
    tjob job;
} gate;

static void gate_hold(fixture *f, gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->entered = g->open = false;
    tjob_init(&g->job, K_GATE, f->acct, "gate");
    g->job.lock = &g->lock;
    g->job.cond = &g->cond;
    g->job.entered = &g->entered;
    g->job.open = &g->open;
    assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &g->job, NULL), 0);
    pthread_mutex_lock(&g->lock);
    while (!g->entered)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void gate_destroy(gate *g)
{
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
}

/* ---- reading back ---- */

static bool group_exists(fixture *f, const char *name)
{
    cd_db *rd = cd_store_reader(f->store);
    assert_non_null(rd);
    cd_named n;
    bool yes = cd_store_named_by_name(rd, "group", f->acct, name, &n, NULL) == 0;
    cd_store_release(f->store, rd);
    return yes;
}

static bool idem_exists(fixture *f, const char *key)
{
    cd_db *rd = cd_store_reader(f->store);
    assert_non_null(rd);
    cd_idem i = {0};
    bool yes = cd_store_idem_get(rd, f->acct, key, &i, NULL) == 0;
    cd_idem_clear(&i);
    cd_store_release(f->store, rd);
    return yes;
}

static int setup(void **state)
{
    fixture *f = tu_store_fixture_open("w.db");
    f->acct = tu_account_acme(f->store);
    atomic_store(&finished, 0);
    *state = f;
    return 0;
}

/* ---- item 8: a batch SQLite rolls back on its own ---- */

static int job_unlimit(cd_db *db, void *arg, cd_err *err)
{
    (void)arg;
    return db->ops->exec(db, "PRAGMA max_page_count = 1073741823", err);
}

// issue 8 item 8: after a full disk rolls the batch transaction back, no job of the batch
// is committed while answered failed (before the fix, the jobs after the fault ran in
// autocommit: they were durable and answered 503, so a retry duplicated them).
static void full_disk_batch(fixture *f, enum kind faulty)
{
    gate g;
    tjob jobs[4];
    tjob_init(&jobs[0], K_FILL_DISK_THEN_GROUP, f->acct, "before");
    tjob_init(&jobs[1], faulty, f->acct, "big");
    tjob_init(&jobs[2], K_GROUP, f->acct, "after-1");
    tjob_init(&jobs[3], K_GROUP, f->acct, "after-2");

    gate_hold(f, &g); /* the four below queue up and run as one batch */
    for (int i = 0; i < 4; i++)
        assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], NULL), 0);
    gate_open(&g);
    wait_finished(5);
    assert_int_equal(g.job.rc, 0);

    /* The fault happened where it was meant to: the first job wrote, the big one failed. */
    assert_int_equal(atomic_load(&jobs[0].ran), 1);
    assert_int_equal(atomic_load(&jobs[1].ran), 1);
    assert_int_equal(jobs[1].rc, -1);
    assert_int_equal(jobs[1].err.code, CD_ESTORE);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        bool stored = i == 1 ? idem_exists(f, jobs[i].name) : group_exists(f, jobs[i].name);
        if (stored && jobs[i].rc != 0)
            fail_msg("job %s is committed but was answered failed", jobs[i].name);
        /* The transaction is gone, so nothing of the batch is durable... */
        assert_false(stored);
        /* ...and every job says so, with a retryable storage error. */
        assert_int_equal(jobs[i].rc, -1);
        assert_int_equal(jobs[i].err.code, CD_ESTORE);
    }
    /* The jobs after the fault were not even run: there was no transaction to run in. */
    assert_int_equal(atomic_load(&jobs[2].ran), 0);
    assert_int_equal(atomic_load(&jobs[3].ran), 0);

    /* The writer is healthy afterwards: the next batch commits. */
    assert_int_equal(cd_store_run(f->store, job_unlimit, NULL, NULL), 0);
    tjob later;
    tjob_init(&later, K_GROUP, f->acct, "after-2");
    assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &later, NULL), 0);
    wait_finished(6);
    assert_int_equal(later.rc, 0);
    assert_true(group_exists(f, "after-2"));
    gate_destroy(&g);
}

static void test_full_disk_fails_whole_batch(void **state)
{
    full_disk_batch(*state, K_BIG_IDEM);
}

/* The same when the job that hit the full disk swallowed the error and returned 0. */
static void test_full_disk_swallowed_error(void **state)
{
    full_disk_batch(*state, K_BIG_IDEM_IGNORED);
}

/* ---- item 7: bound, deadline, close ---- */

typedef struct runner {
    cd_store *store;
    tjob *job;
    int rc;
    cd_err err;
} runner;

static void *run_in_thread(void *arg)
{
    runner *r = arg;
    r->rc = cd_store_run(r->store, tjob_run, r->job, &r->err);
    return NULL;
}

// issue 8 item 7: the queue is bounded; over it, submit refuses with CD_EBUSY and does
// not call done; cd_store_run is not refused.
static void test_queue_bound(void **state)
{
    fixture *f = *state;
    gate g;
    tjob jobs[4], over, internal;
    cd_store_set_limits(f->store, 4, 0);
    gate_hold(f, &g); /* the gate job left the queue: the writer is running it */
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "q-%d", i);
        tjob_init(&jobs[i], K_GROUP, f->acct, name);
        assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], NULL), 0);
    }
    tjob_init(&over, K_GROUP, f->acct, "over");
    cd_err err = {0};
    assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &over, &err), -1);
    assert_int_equal(err.code, CD_EBUSY);
    assert_string_equal(cd_err_reason(&err), "overloaded");

    /* An internal job (a STOP from the delivery worker) still gets in. */
    tjob_init(&internal, K_GROUP, f->acct, "internal");
    runner r = {.store = f->store, .job = &internal, .rc = -2};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_in_thread, &r), 0);
    gate_open(&g);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r.rc, 0);
    wait_finished(5);

    assert_int_equal(atomic_load(&over.calls), 0);
    assert_int_equal(atomic_load(&over.ran), 0);
    assert_false(group_exists(f, "over"));
    assert_true(group_exists(f, "internal"));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(jobs[i].rc, 0);
        assert_true(group_exists(f, jobs[i].name));
    }
    /* With the queue drained, submit takes jobs again. */
    assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &over, NULL), 0);
    wait_finished(6);
    assert_int_equal(over.rc, 0);
    gate_destroy(&g);
}

// issue 8 item 7: a job still queued past its deadline is not run; done gets CD_EBUSY and
// nothing of it is written. cd_store_run's jobs have no deadline.
static void test_deadline(void **state)
{
    fixture *f = *state;
    gate g;
    tjob late, internal, fresh;
    cd_store_set_limits(f->store, 0, 50);
    gate_hold(f, &g);
    tjob_init(&late, K_GROUP, f->acct, "late");
    assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &late, NULL), 0);
    tjob_init(&internal, K_GROUP, f->acct, "internal");
    runner r = {.store = f->store, .job = &internal, .rc = -2};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_in_thread, &r), 0);
    nanosleep(&(struct timespec){.tv_nsec = 200 * 1000000L}, NULL);
    gate_open(&g);
    assert_int_equal(pthread_join(th, NULL), 0);
    wait_finished(2);

    assert_int_equal(atomic_load(&late.calls), 1);
    assert_int_equal(atomic_load(&late.ran), 0);
    assert_int_equal(late.rc, -1);
    assert_int_equal(late.err.code, CD_EBUSY);
    assert_string_equal(cd_err_reason(&late.err), "overloaded");
    assert_false(group_exists(f, "late"));
    assert_int_equal(r.rc, 0);
    assert_true(group_exists(f, "internal"));
    assert_int_equal(g.job.rc, 0); /* it was running, not queued */

    /* A job that does not wait long runs. */
    tjob_init(&fresh, K_GROUP, f->acct, "fresh");
    assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &fresh, NULL), 0);
    wait_finished(3);
    assert_int_equal(fresh.rc, 0);
    gate_destroy(&g);
}

// issue 10 (perf): a rerunnable job that waited past its deadline is skipped, and stays
// skipped when a later job of its shared savepoint fails and the ones before run again.
static void test_deadline_rerunnable(void **state)
{
    fixture *f = *state;
    gate g;
    tjob first, late, failing;
    cd_store_set_limits(f->store, 0, 50);
    gate_hold(f, &g);
    tjob_init(&first, K_GROUP, f->acct, "first");
    tjob_init(&late, K_GROUP, f->acct, "late");
    tjob_init(&failing, K_GROUP_THEN_FAIL, f->acct, "failing");
    /* internal (no deadline) and rerunnable, as no public call makes them: first and
     * failing outlive the deadline that late misses */
    cd_writer *w = f->store->writer;
    assert_int_equal(cd_store__writer_submit(w, tjob_run, tjob_done, &first, true, true, NULL), 0);
    assert_int_equal(cd_store_submit_rerunnable(f->store, tjob_run, tjob_done, &late, NULL), 0);
    nanosleep(&(struct timespec){.tv_nsec = 200 * 1000000L}, NULL);
    assert_int_equal(cd_store__writer_submit(w, tjob_run, tjob_done, &failing, true, true, NULL),
                     0);
    gate_open(&g);
    wait_finished(4);
    assert_int_equal(first.rc, 0);
    assert_int_equal(atomic_load(&first.ran), 2); /* in the group, then alone */
    assert_true(group_exists(f, "first"));
    assert_int_equal(late.rc, -1);
    assert_int_equal(late.err.code, CD_EBUSY);
    assert_int_equal(atomic_load(&late.ran), 0);
    assert_false(group_exists(f, "late"));
    assert_int_equal(failing.rc, -1);
    assert_int_equal(atomic_load(&failing.ran), 2);
    assert_false(group_exists(f, "failing"));
    gate_destroy(&g);
}

static void *close_in_thread(void *arg)
{
    cd_store_close(arg);
    return NULL;
}

// issue 8 item 7: closing answers every queued job exactly once -- those past their
// deadline with CD_EBUSY, the others by running them -- and submits racing the close are
// either queued (and answered) or refused with CD_ESTORE (and never answered).
static void test_close_answers_every_job(void **state)
{
    fixture *f = *state;
    enum { N = 40, M = 400 };
    gate g;
    tjob *jobs = calloc(N + M, sizeof *jobs);
    assert_non_null(jobs);
    cd_store_set_limits(f->store, 0, 100);
    gate_hold(f, &g);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "old-%d", i);
        tjob_init(&jobs[i], K_GROUP, f->acct, name);
        assert_int_equal(cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], NULL), 0);
    }
    nanosleep(&(struct timespec){.tv_nsec = 200 * 1000000L}, NULL); /* past the deadline */

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, close_in_thread, f->store), 0);
    int queued = N, refused = 0;
    for (int i = N; i < N + M; i++) {
        char name[16];
        snprintf(name, sizeof name, "new-%d", i);
        tjob_init(&jobs[i], K_GROUP, f->acct, name);
        cd_err err = {0};
        if (cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], &err) == 0) {
            queued++;
        } else {
            assert_int_equal(err.code, CD_ESTORE);
            refused++;
            break; /* the store is closing: it will not take more */
        }
        if (i == N + M / 2)
            gate_open(&g);
    }
    gate_open(&g);
    assert_int_equal(pthread_join(th, NULL), 0);
    f->store = NULL;
    assert_int_equal(atomic_load(&finished), queued + 1);
    for (int i = 0; i < queued; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        if (i < N) {
            assert_int_equal(jobs[i].rc, -1);
            assert_int_equal(jobs[i].err.code, CD_EBUSY);
            assert_int_equal(atomic_load(&jobs[i].ran), 0);
        }
    }
    for (int i = queued; i < N + M; i++)
        assert_int_equal(atomic_load(&jobs[i].calls), 0);
    (void)refused;
    f->store = tu_store_open(f->dir, "w.db"); /* for teardown */
    free(jobs);
    gate_destroy(&g);
}

/* ---- issue 9 part 10: injected faults at every call position ---- */

enum { FJOBS = 3 };

/* One batch of FJOBS K_MULTI jobs behind a gate, with a fault armed at call n (the gate's
 * own insert is call 1). Returns how many faults fired; checks the invariants. `rerun`: the
 * jobs are rerunnable (issue 10), so they share a savepoint, and a failure runs the ones up
 * to it again, each in its own. */
static int fault_batch(fixture *f, int n, bool persist, bool rerun, int *answered)
{
    gate g;
    tjob jobs[FJOBS];
    gate_hold(f, &g);
    for (int i = 0; i < FJOBS; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d%s%s-%d", n, persist ? "p" : "", rerun ? "r" : "", i);
        tjob_init(&jobs[i], K_MULTI, f->acct, name);
        int rc = rerun ? cd_store_submit_rerunnable(f->store, tjob_run, tjob_done, &jobs[i], NULL)
                       : cd_store_submit(f->store, tjob_run, tjob_done, &jobs[i], NULL);
        assert_int_equal(rc, 0);
    }
    /* The gate inserts its group once it is open: one name per round. */
    snprintf(g.job.name, sizeof g.job.name, "gate-%d%s%s", n, persist ? "p" : "", rerun ? "r" : "");
    cd_store__fail_after(f->store, n, persist, 0);
    gate_open(&g);
    *answered += 1 + FJOBS;
    wait_finished(*answered);
    int fired = cd_store__faults_fired(f->store);
    cd_store__fail_after(f->store, 0, false, 0); /* off, so that the checks can read */

    /* Call n falls into the gate's single call or into job (n - 2) / MULTI_CALLS. */
    int hit = n == 1 ? -1 : (n - 2) / MULTI_CALLS;
    assert_int_equal(g.job.rc == 0, n != 1);
    for (int i = 0; i < FJOBS; i++) {
        tjob *j = &jobs[i];
        char a[80], b[80];
        snprintf(a, sizeof a, "%s-a", j->name);
        snprintf(b, sizeof b, "%s-b", j->name);
        bool has_a = group_exists(f, a), has_b = group_exists(f, b);
        assert_int_equal(atomic_load(&j->calls), 1); /* done() exactly once */
        if ((has_a || has_b) && j->rc != 0)
            fail_msg("n=%d: job %s is committed but was answered failed", n, j->name);
        assert_int_equal(has_a, has_b); /* a job is all or nothing */
        /* Rerunnable: a passing fault is gone when the jobs run again, so all of them
         * commit; a lasting one fails the reruns as well as the jobs after them. */
        bool should_fail = fired && (rerun ? persist : i == hit || (persist && i > hit));
        if (rerun && !persist)
            assert_int_equal(atomic_load(&j->ran), fired && i <= hit ? 2 : 1);
        if (should_fail) {
            assert_int_equal(j->rc, -1);
            assert_int_equal(j->err.code, CD_ESTORE);
            assert_string_equal(j->err.msg, "injected fault");
            assert_false(has_a);
        } else {
            assert_int_equal(j->rc, 0);
            assert_true(has_a);
        }
    }
    gate_destroy(&g);
    return fired;
}

// issue 9 part 10: a fault at each store call of a batch in turn (sqlite's *fault.test
// style): the job that hit it is rolled back and answered CD_ESTORE, the other jobs of
// the batch commit and are answered OK, done() runs once per job.
static void test_fault_every_call(void **state)
{
    fixture *f = *state;
    int answered = 0, n = 1;
    while (fault_batch(f, n, false, false, &answered) == 1)
        n++;
    /* Every position was hit: the gate's call plus each call of each job; then none. */
    assert_int_equal(n, 1 + FJOBS * MULTI_CALLS + 1);
}

// issue 9 part 10: a persistent fault (every call from the n-th on fails, like a dead
// disk): the jobs before it commit, it and all after it fail, none half-written.
static void test_fault_persistent(void **state)
{
    fixture *f = *state;
    int answered = 0, n = 1;
    while (fault_batch(f, n, true, false, &answered) >= 1)
        n++;
    assert_int_equal(n, 1 + FJOBS * MULTI_CALLS + 1);
}

// issue 10 (perf): the same two with rerunnable jobs, which share one savepoint: a job that
// fails takes the shared savepoint back, and the jobs up to it run again, one savepoint
// each. Still all or nothing per job, answered as stored, done() once.
static void test_fault_rerunnable(void **state)
{
    fixture *f = *state;
    int answered = 0;
    for (int persist = 0; persist < 2; persist++) {
        int n = 1;
        while (fault_batch(f, n, persist, true, &answered) >= 1)
            n++;
        assert_int_equal(n, 1 + FJOBS * MULTI_CALLS + 1);
    }
}

/* ---- issue 10: what waits for a job's commit to be durable ---- */

typedef struct after_log {
    int calls[4]; /* by registration: how many times called */
    bool durable[4];
    int order[4], n; /* the order they ran in */
    uint64_t syncs_at_run, syncs_at_call;
} after_log;

typedef struct after_arg {
    after_log *log;
    int i;
} after_arg;

static void after_fn(void *arg, bool durable)
{
    after_arg *a = arg;
    a->log->calls[a->i]++;
    a->log->durable[a->i] = durable;
    a->log->order[a->log->n++] = a->i;
    a->log->syncs_at_call = cd_sqlite__sync_count();
}

typedef struct after_job {
    after_log log;
    after_arg args[2];
    bool fail, registered;
} after_job;

static int job_after(cd_db *db, void *arg, cd_err *err)
{
    after_job *j = arg;
    j->log.syncs_at_run = cd_sqlite__sync_count();
    for (int i = 0; i < 2; i++) {
        j->args[i] = (after_arg){&j->log, i};
        j->registered = cd_store_after_durable(db, after_fn, &j->args[i]);
    }
    cd_named n = {.created_ms = 1};
    snprintf(n.name, sizeof n.name, "after-%d", j->fail);
    if (cd_store_named_insert(db, "group", 1, &n, err) != 0)
        return -1;
    return j->fail ? cd_fail(err, CD_EINVAL, "", "failed on purpose") : 0;
}

// issue 10: each function registered runs once, in order: with true after the sync that
// made the job durable, with false when the job failed (its writes rolled back); off the
// writer's batch nothing is registered.
static void test_after_durable(void **state)
{
    fixture *f = *state;
    after_job ok = {.fail = false}, bad = {.fail = true};
    assert_int_equal(cd_store_run(f->store, job_after, &ok, NULL), 0);
    assert_true(ok.registered);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ok.log.calls[i], 1);
        assert_true(ok.log.durable[i]);
        assert_int_equal(ok.log.order[i], i);
    }
    assert_true(ok.log.syncs_at_call > ok.log.syncs_at_run); /* after a sync */
    assert_int_equal(cd_store_run(f->store, job_after, &bad, NULL), -1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(bad.log.calls[i], 1);
        assert_false(bad.log.durable[i]);
    }
    cd_db *r = cd_store_reader(f->store);
    after_log log = {0};
    after_arg a = {&log, 0};
    assert_false(cd_store_after_durable(r, after_fn, &a));
    assert_null(cd_store_claimer_of(r));
    cd_store_release(f->store, r);
    assert_int_equal(log.calls[0], 0);
}

#define WRITER_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, tu_store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        WRITER_TEST(test_full_disk_fails_whole_batch),
        WRITER_TEST(test_full_disk_swallowed_error),
        WRITER_TEST(test_queue_bound),
        WRITER_TEST(test_deadline),
        WRITER_TEST(test_deadline_rerunnable),
        WRITER_TEST(test_close_answers_every_job),
        WRITER_TEST(test_fault_every_call),
        WRITER_TEST(test_fault_persistent),
        WRITER_TEST(test_fault_rerunnable),
        WRITER_TEST(test_after_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
