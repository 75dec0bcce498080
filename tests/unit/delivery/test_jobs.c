/* tests/unit/delivery/test_jobs.c -- issue 15: the generic durable job queue. The store's
 * job calls against a real SQLite file (claim by kind with a lease, retry, dead, revive,
 * requeue of expired claims), the backoff with jitter, and the worker (delivery/jobs.h):
 * handlers on its threads, outcomes through the writer, the record hook in the same
 * commit, watchers of a first attempt, and a restart that requeues a crashed claim. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery/jobs.h"
#include "store/store.h"
#include "util/timeutil.h"

#include "../testutil.h"

typedef tu_store_fixture fixture;

static int setup(void **state)
{
    fixture *f = tu_store_fixture_open("jobs.db");
    *state = f;
    return 0;
}

/* ---- writer jobs for the tests ---- */

typedef struct enq {
    const char *kind, *ref, *payload;
    int64_t due_ms;
    uint64_t watch;
    int64_t id; /* out */
} enq;

static int job_enqueue(cd_db *db, void *arg, cd_err *err)
{
    enq *e = arg;
    cd_job j = {.account_id = 7, .due_ms = e->due_ms, .watch = e->watch};
    snprintf(j.kind, sizeof j.kind, "%s", e->kind);
    snprintf(j.ref, sizeof j.ref, "%s", e->ref ? e->ref : "");
    j.payload = strdup(e->payload ? e->payload : "{}");
    int rc = cd_store_job_enqueue(db, &j, err);
    e->id = j.id;
    cd_job_clear(&j);
    return rc;
}

static int64_t enqueue(cd_store *s, const char *kind, int64_t due_ms, uint64_t watch)
{
    enq e = {.kind = kind, .ref = "r1", .payload = "{\"n\":1}", .due_ms = due_ms, .watch = watch};
    cd_err err = {0};
    assert_int_equal(cd_store_run(s, job_enqueue, &e, &err), 0);
    assert_true(e.id > 0);
    return e.id;
}

typedef struct claimed {
    const char *kind;
    int64_t now, lease;
    int limit;
    int n;
    int64_t ids[16];
    int attempts[16];
} claimed;

static int collect(const cd_job *j, void *arg)
{
    claimed *c = arg;
    assert_string_equal(j->status, "running");
    assert_string_equal(j->payload, "{\"n\":1}");
    c->ids[c->n] = j->id;
    c->attempts[c->n++] = j->attempts;
    return 0;
}

static int job_claim(cd_db *db, void *arg, cd_err *err)
{
    claimed *c = arg;
    return cd_store_job_claim(db, c->kind, c->now, c->lease, c->limit, collect, c, err);
}

static claimed claim(cd_store *s, const char *kind, int64_t now, int64_t lease, int limit)
{
    claimed c = {.kind = kind, .now = now, .lease = lease, .limit = limit};
    cd_err err = {0};
    assert_int_equal(cd_store_run(s, job_claim, &c, &err), 0);
    return c;
}

typedef struct op {
    char what; /* r retry, d dead, v revive, c complete, q requeue */
    int64_t id, t, now;
    int count;
} op;

static int job_op(cd_db *db, void *arg, cd_err *err)
{
    op *o = arg;
    switch (o->what) {
    case 'r':
        return cd_store_job_retry(db, o->id, o->t, "HTTP 500", o->now, err);
    case 'd':
        return cd_store_job_dead(db, o->id, "spent", o->now, err);
    case 'v':
        return cd_store_job_revive(db, o->id, o->t, err);
    case 'c':
        return cd_store_job_complete(db, o->id, err);
    default:
        return cd_store_job_requeue(db, o->t, o->now, &o->count, err);
    }
}

static int run_op(cd_store *s, op *o)
{
    cd_err err = {0};
    return cd_store_run(s, job_op, o, &err);
}

static bool get_job(cd_store *s, int64_t id, cd_job *out)
{
    cd_err err = {0};
    cd_db *db = cd_store_reader(s);
    int rc = cd_store_job_get(db, id, out, &err);
    cd_store_release(s, db);
    return rc == 0;
}

/* ---- the store ---- */

/* issue 15: a claim takes only due jobs of its kind, oldest due first, up to the limit,
 * counts the attempt and sets the lease; a claimed job is not claimed twice. */
static void test_claim_by_kind_due_and_limit(void **state)
{
    fixture *f = *state;
    int64_t now = cd_now_ms();
    int64_t a = enqueue(f->store, "webhook", now - 2000, 0);
    int64_t b = enqueue(f->store, "webhook", now - 3000, 0);
    int64_t later = enqueue(f->store, "webhook", now + 60000, 0);
    int64_t mail = enqueue(f->store, "mail", now - 5000, 0);
    enqueue(f->store, "webhook", now - 1000, 0);

    claimed c = claim(f->store, "webhook", now, 30000, 2);
    assert_int_equal(c.n, 2);
    bool has_a = c.ids[0] == a || c.ids[1] == a, has_b = c.ids[0] == b || c.ids[1] == b;
    assert_true(has_a && has_b); /* the two oldest due */
    assert_int_equal(c.attempts[0], 1);
    cd_job j;
    assert_true(get_job(f->store, a, &j));
    assert_string_equal(j.status, "running");
    assert_int_equal(j.lease_ms, now + 30000);
    assert_string_equal(j.ref, "r1");
    assert_int_equal(j.account_id, 7);
    cd_job_clear(&j);

    c = claim(f->store, "webhook", now, 30000, 10);
    assert_int_equal(c.n, 1); /* the third due one: not a, b (running) nor `later` */
    assert_true(c.ids[0] != later && c.ids[0] != mail);
    c = claim(f->store, "mail", now, 30000, 10);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], mail);
    c = claim(f->store, "webhook", now + 60000, 30000, 10);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], later);
}

/* issue 15: retry puts a job back for later with its error; dead keeps it; revive queues a
 * dead job from scratch; complete deletes it. */
static void test_retry_dead_revive_complete(void **state)
{
    fixture *f = *state;
    int64_t now = cd_now_ms();
    int64_t id = enqueue(f->store, "webhook", now, 0);
    assert_int_equal(claim(f->store, "webhook", now, 1000, 10).n, 1);
    op o = {.what = 'r', .id = id, .t = now + 5000, .now = now};
    assert_int_equal(run_op(f->store, &o), 0);
    cd_job j;
    assert_true(get_job(f->store, id, &j));
    assert_string_equal(j.status, "queued");
    assert_string_equal(j.last_error, "HTTP 500");
    assert_int_equal(j.due_ms, now + 5000);
    assert_int_equal(j.attempts, 1);
    cd_job_clear(&j);
    assert_int_equal(claim(f->store, "webhook", now + 4999, 1000, 10).n, 0); /* not yet due */
    claimed c = claim(f->store, "webhook", now + 5000, 1000, 10);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.attempts[0], 2);

    o = (op){.what = 'd', .id = id, .now = now};
    assert_int_equal(run_op(f->store, &o), 0);
    assert_true(get_job(f->store, id, &j));
    assert_string_equal(j.status, "dead");
    cd_job_clear(&j);
    assert_int_equal(claim(f->store, "webhook", now + 999999, 1000, 10).n, 0);

    o = (op){.what = 'v', .id = id, .t = now};
    assert_int_equal(run_op(f->store, &o), 0);
    assert_true(get_job(f->store, id, &j));
    assert_string_equal(j.status, "queued");
    assert_int_equal(j.attempts, 0);
    cd_job_clear(&j);
    o = (op){.what = 'v', .id = id, .t = now}; /* only a dead job revives */
    assert_int_not_equal(run_op(f->store, &o), 0);

    o = (op){.what = 'c', .id = id};
    assert_int_equal(run_op(f->store, &o), 0);
    assert_false(get_job(f->store, id, &j));
}

/* issue 15: a claim whose lease ended goes back to the queue (a crashed worker); one whose
 * lease runs does not; at start (INT64_MAX) every claim goes back. */
static void test_requeue_expired_leases(void **state)
{
    fixture *f = *state;
    int64_t now = cd_now_ms();
    int64_t a = enqueue(f->store, "mail", now, 0);
    assert_int_equal(claim(f->store, "mail", now, 1000, 10).n, 1);
    int64_t b = enqueue(f->store, "mail", now, 0);
    assert_int_equal(claim(f->store, "mail", now, 60000, 10).n, 1);

    op o = {.what = 'q', .t = now + 2000, .now = now + 2000};
    assert_int_equal(run_op(f->store, &o), 0);
    assert_int_equal(o.count, 1);
    cd_job j;
    assert_true(get_job(f->store, a, &j));
    assert_string_equal(j.status, "queued");
    assert_int_equal(j.attempts, 1); /* at least once: the attempt stays counted */
    cd_job_clear(&j);
    assert_true(get_job(f->store, b, &j));
    assert_string_equal(j.status, "running");
    cd_job_clear(&j);

    o = (op){.what = 'q', .t = INT64_MAX, .now = now};
    assert_int_equal(run_op(f->store, &o), 0);
    assert_int_equal(o.count, 1);
    claimed c = claim(f->store, "mail", now + 2000, 1000, 10);
    assert_int_equal(c.n, 2);
}

/* ---- backoff ---- */

static void test_backoff_schedule_and_jitter(void **state)
{
    (void)state;
    const int64_t sched[3] = {5000, 30000, 120000};
    assert_int_equal(cd_jobs_backoff_ms(sched, 3, 1, 0, 123), 5000);
    assert_int_equal(cd_jobs_backoff_ms(sched, 3, 3, 0, 123), 120000);
    assert_int_equal(cd_jobs_backoff_ms(sched, 3, 4, 0, 123), -1); /* spent: dead */
    assert_int_equal(cd_jobs_backoff_ms(sched, 3, 0, 0, 123), -1);
    /* +/- 10%: the extremes of the random word hit the bounds, and the middle the delay */
    assert_int_equal(cd_jobs_backoff_ms(sched, 3, 2, 10, 0), 27000);
    assert_int_equal(cd_jobs_backoff_ms(sched, 3, 2, 10, UINT32_MAX), 33000);
    int64_t mid = cd_jobs_backoff_ms(sched, 3, 2, 10, UINT32_MAX / 2);
    assert_true(mid >= 29999 && mid <= 30001);
    bool differ = false;
    for (uint32_t r = 1; r < 100; r++) {
        int64_t d = cd_jobs_backoff_ms(sched, 3, 1, 20, r * 40000000u);
        assert_true(d >= 4000 && d <= 6000);
        differ |= d != cd_jobs_backoff_ms(sched, 3, 1, 20, 40000000u);
    }
    assert_true(differ);
}

/* ---- the worker ---- */

typedef struct probe {
    atomic_int calls;
    int fail_first; /* attempts that fail before one succeeds */
    bool async;     /* finish from another thread */
    pthread_t handler_thread;
    atomic_int records;
    char statuses[16][8];
    atomic_int watched;
    char watch_status[8];
    int watch_attempts;
} probe;

typedef struct later {
    cd_job_call *call;
    cd_job_outcome out;
} later;

static void *finish_later(void *arg)
{
    later *l = arg;
    usleep(20 * 1000);
    cd_jobs_finish(l->call, &l->out);
    free(l);
    return NULL;
}

static void handler(void *arg, const cd_job *job, cd_job_call *call)
{
    probe *p = arg;
    int n = atomic_fetch_add(&p->calls, 1) + 1;
    p->handler_thread = pthread_self();
    assert_string_equal(job->payload, "{\"n\":1}");
    cd_job_outcome out = {.result = n <= p->fail_first ? CD_JOB_RETRY : CD_JOB_DONE};
    if (out.result == CD_JOB_RETRY)
        snprintf(out.error, sizeof out.error, "attempt %d failed", n);
    if (!p->async) {
        cd_jobs_finish(call, &out);
        return;
    }
    later *l = malloc(sizeof *l);
    l->call = call;
    l->out = out;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, finish_later, l), 0);
    pthread_detach(t);
}

static int record(cd_db *db, void *arg, const cd_job *job, const cd_job_outcome *out,
                  const cd_job_verdict *v, cd_err *err)
{
    probe *p = arg;
    (void)db;
    (void)job;
    (void)out;
    (void)err;
    int n = atomic_fetch_add(&p->records, 1);
    if (n < 16)
        snprintf(p->statuses[n], sizeof p->statuses[n], "%s", v->status);
    return 0;
}

static void on_watch(void *arg, const cd_job *job, const cd_job_outcome *out,
                     const cd_job_verdict *v)
{
    probe *p = arg;
    (void)out;
    if (job && v) {
        snprintf(p->watch_status, sizeof p->watch_status, "%s", v->status);
        p->watch_attempts = job->attempts;
    }
    atomic_fetch_add(&p->watched, 1);
}

static bool wait_until(atomic_int *v, int want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++)
        usleep(10 * 1000);
    return atomic_load(v) >= want;
}

static cd_jobs *start_worker(cd_store *s, probe *p, int nsched)
{
    static const int64_t sched[4] = {10, 10, 10, 10};
    cd_jobs_config cfg = {.threads = 2};
    cd_jobs *q = cd_jobs_new(s, &cfg);
    cd_jobs_kind k = {.name = "test",
                      .handler = handler,
                      .record = record,
                      .arg = p,
                      .schedule_ms = sched,
                      .nschedule = nsched,
                      .jitter_pct = 10};
    cd_err err = {0};
    assert_int_equal(cd_jobs_register(q, &k, &err), 0);
    assert_int_not_equal(cd_jobs_register(q, &k, &err), 0); /* a kind once */
    assert_int_equal(cd_jobs_start(q, &err), 0);
    return q;
}

/* issue 15: two failures, then success: retried on the schedule, recorded through the
 * hook in the same commit, deleted when done; the watcher hears of the first attempt only,
 * and the handler never runs on the caller's thread. */
static void test_worker_retries_then_done(void **state)
{
    fixture *f = *state;
    probe p = {.fail_first = 2};
    cd_jobs *q = start_worker(f->store, &p, 4);
    uint64_t token = cd_jobs_watch(q, on_watch, &p);
    int64_t id = enqueue(f->store, "test", 0, token);
    cd_jobs_kick(q);
    assert_true(wait_until(&p.records, 3));
    assert_true(wait_until(&p.watched, 1));
    usleep(50 * 1000);
    cd_jobs_stop(q);
    assert_int_equal(atomic_load(&p.calls), 3);
    assert_string_equal(p.statuses[0], "queued");
    assert_string_equal(p.statuses[1], "queued");
    assert_string_equal(p.statuses[2], "done");
    assert_int_equal(atomic_load(&p.watched), 1);
    assert_string_equal(p.watch_status, "queued");
    assert_int_equal(p.watch_attempts, 1);
    assert_false(pthread_equal(p.handler_thread, pthread_self()));
    cd_job j;
    assert_false(get_job(f->store, id, &j)); /* done: gone */
}

/* issue 15: a job failing every attempt is dead when the schedule is spent (1 + n
 * attempts), and stays dead (not claimed again). Finished from another thread. */
static void test_worker_dead_when_spent(void **state)
{
    fixture *f = *state;
    probe p = {.fail_first = 1000, .async = true};
    cd_jobs *q = start_worker(f->store, &p, 2);
    int64_t id = enqueue(f->store, "test", 0, 0);
    cd_jobs_kick(q);
    assert_true(wait_until(&p.records, 3));
    usleep(300 * 1000);
    cd_jobs_stop(q);
    assert_int_equal(atomic_load(&p.calls), 3);
    assert_string_equal(p.statuses[2], "dead");
    cd_job j;
    assert_true(get_job(f->store, id, &j));
    assert_string_equal(j.status, "dead");
    assert_string_equal(j.last_error, "attempt 3 failed");
    assert_int_equal(j.attempts, 3);
    cd_job_clear(&j);
}

/* issue 15: a job claimed by a process that died (left 'running', lease far away) runs
 * after the next start; an unwatched token never fires. */
static void test_worker_requeues_after_crash(void **state)
{
    fixture *f = *state;
    int64_t now = cd_now_ms();
    int64_t id = enqueue(f->store, "test", now, 0);
    assert_int_equal(claim(f->store, "test", now, 3600 * 1000, 10).n, 1); /* the "crash" */
    probe p = {0};
    cd_jobs *q = start_worker(f->store, &p, 4);
    uint64_t token = cd_jobs_watch(q, on_watch, &p);
    assert_true(cd_jobs_unwatch(q, token));
    assert_false(cd_jobs_unwatch(q, token));
    assert_true(wait_until(&p.records, 1));
    cd_jobs_stop(q);
    assert_int_equal(atomic_load(&p.calls), 1);
    assert_string_equal(p.statuses[0], "done");
    assert_int_equal(atomic_load(&p.watched), 0);
    cd_job j;
    assert_false(get_job(f->store, id, &j));
}

static void count_commit(void *arg, int batch, double seconds, unsigned wrote)
{
    (void)batch;
    (void)seconds;
    (void)wrote;
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* issue 15: a claim whose lease ends while the worker runs (its handler hung, or its process
 * died) goes back to the queue at the worker's next sweep, once a second; an idle worker's
 * sweeps read and commit nothing. */
static void test_worker_sweeps_expired_leases(void **state)
{
    fixture *f = *state;
    probe p = {0};
    atomic_int commits = 0;
    cd_store_on_commit(f->store, count_commit, &commits); /* before any job (store.h) */
    cd_jobs *q = start_worker(f->store, &p, 1);
    usleep(300 * 1000); /* the start's own requeue is done */
    int before = atomic_load(&commits);
    usleep(1300 * 1000); /* at least one sweep */
    assert_int_equal(atomic_load(&commits), before);
    int64_t now = cd_now_ms();
    int64_t id = enqueue(f->store, "other", now, 0); /* a kind this worker does not run */
    assert_int_equal(claim(f->store, "other", now, 200, 10).n, 1);
    cd_job j = {0};
    bool queued = false;
    for (int i = 0; i < 60 && !queued; i++) {
        usleep(50 * 1000);
        assert_true(get_job(f->store, id, &j));
        queued = strcmp(j.status, "queued") == 0;
        cd_job_clear(&j);
    }
    cd_jobs_stop(q);
    cd_store_on_commit(f->store, NULL, NULL);
    assert_true(queued);
}

/* issue 15: a watcher still waiting when the worker stops is told (job NULL), so that a
 * suspended request is answered rather than left hanging. */
static void test_watch_told_on_stop(void **state)
{
    fixture *f = *state;
    probe p = {0};
    cd_jobs *q = start_worker(f->store, &p, 1);
    uint64_t token = cd_jobs_watch(q, on_watch, &p);
    (void)token; /* never queued */
    cd_jobs_stop(q);
    assert_int_equal(atomic_load(&p.watched), 1);
    assert_string_equal(p.watch_status, "");
    (void)f;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_claim_by_kind_due_and_limit, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(test_retry_dead_revive_complete, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(test_requeue_expired_leases, setup, tu_store_teardown),
        cmocka_unit_test(test_backoff_schedule_and_jitter),
        cmocka_unit_test_setup_teardown(test_worker_retries_then_done, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(test_worker_dead_when_spent, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(test_worker_requeues_after_crash, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(test_worker_sweeps_expired_leases, setup,
                                        tu_store_teardown),
        cmocka_unit_test_setup_teardown(test_watch_told_on_stop, setup, tu_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
