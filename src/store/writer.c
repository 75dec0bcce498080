/* store/writer.c -- the single writer and its group commit.
 *
 * Why: SQLite allows one writer at a time and each durable commit costs an fsync. Letting
 * request threads write directly would make them queue on the database lock (or spin in
 * busy_timeout) and pay one fsync each. Instead every write is a job handed to this one
 * thread, which takes everything queued, runs it in one transaction with a savepoint per
 * job, commits once, and only then reports each job done. Under load the batch grows by
 * itself: while one fsync is running, the next batch queues up.
 *
 * Throughput (issues 10-12): with a backend that can sync off this thread (SQLite:
 * sqlite_sync.c), the COMMIT does not wait for the disk. The committed batch goes to the
 * syncer thread, which syncs once for every batch committed so far and only then answers
 * their jobs, while this thread already runs the next batch. */
#include "store/store_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/thread.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define MAX_BATCH 1024

typedef struct job {
    cd_job_fn fn;
    cd_job_done_fn done;
    void *arg;
    int64_t deadline_us; /* monotonic; 0 = none (cd_store_run's jobs) */
    int rc;
    cd_err err;
    cd_after *afters; /* cd_store_after_durable, in the order registered */
    bool rerunnable;  /* cd_store_submit_rerunnable: may share a savepoint */
    bool grouped;     /* ran in the open group (not a job the deadline skipped) */
    struct job *next;
} job;

struct cd_writer {
    cd_store *store;
    cd_db *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *head, *tail;
    bool rerun_all;      /* CONSENTD_TEST_RERUN=1: see run_job() */
    int queued;          /* jobs in head..tail */
    int queue_max;       /* submit refuses past this many; 0 = no bound */
    int64_t deadline_us; /* how long a submitted job may wait; 0 = forever */
    bool stopping;
    /* The syncer (when the backend has sync_start): committed batches wait here for the
     * disk, and are answered by the syncer thread. */
    void *sync;
    /* The backend's ops as the writer started: the syncer calls sync_now and sync_idle
     * through them, never through db->ops, which a job may swap (sqlite_rows.c). */
    const struct cd_store_ops *sync_ops;
    pthread_t syncer;
    job *synced_head, *synced_tail; /* committed, not yet known durable */
    pthread_cond_t sync_cond;
    bool sync_stopping;
};

/* Runs what the job registered with cd_store_after_durable, in order, once. */
static void settle(job *j, bool durable)
{
    cd_after *list = j->afters;
    j->afters = NULL;
    for (cd_after *a = list, *next; a; a = next) {
        next = a->next;
        a->fn(a->arg, durable);
        free(a);
    }
}

/* Runs the job's function, with what it registers going to its own list. */
static void call(cd_writer *w, job *j)
{
    w->db->afters = &j->afters;
    j->rc = j->fn(w->db, j->arg, &j->err);
    w->db->afters = NULL;
}

/* Runs one job inside its own savepoint so that its failure undoes only its own writes
 * (and, issue 16, what it deferred to the end of the batch). */
static void run_one(cd_writer *w, job *j)
{
    cd_err err = {0};
    const cd_batch_hook *h = w->db->batch_hook;
    if (w->db->ops->exec(w->db, "SAVEPOINT job", &j->err) != 0) {
        j->rc = -1;
        return;
    }
    if (h)
        h->job_begin();
    call(w, j);
    if (j->rc != 0) {
        w->db->ops->exec(w->db, "ROLLBACK TO job", &err);
        if (w->db->batch_hook) /* may have joined during this job */
            w->db->batch_hook->job_rollback();
        settle(j, false); /* what it registered was rolled back with it */
    }
    w->db->ops->exec(w->db, "RELEASE job", &err);
}

/* issue 10 (perf): a savepoint costs a copy of every page a job first writes in it (SQLite's
 * statement journal: 4 KiB each, a tenth of the writer's time for a ProTexting opt-in). Jobs
 * that may run twice (cd_store_submit_rerunnable) share one savepoint, a group: the pages
 * they all write (an index's right edge, the table's last page) are copied once. When one
 * of them fails, the group is rolled back and its jobs run again, each in its own savepoint,
 * so that only the failing one loses its writes. */
typedef struct group {
    job *first; /* NULL: none open */
} group;

static int group_join(cd_writer *w, group *g, job *j)
{
    if (g->first)
        return 0;
    if (w->db->ops->exec(w->db, "SAVEPOINT job", &j->err) != 0)
        return -1;
    if (w->db->batch_hook)
        w->db->batch_hook->job_begin(); /* what the group's rollback goes back to */
    g->first = j;
    return 0;
}

static void group_close(cd_writer *w, group *g)
{
    cd_err err = {0};
    if (g->first)
        w->db->ops->exec(w->db, "RELEASE job", &err);
    g->first = NULL;
}

/* `upto` failed: the group goes back to where it began, and its jobs, `upto` included, run
 * again one savepoint each. */
static void group_undo(cd_writer *w, group *g, job *upto)
{
    cd_err err = {0};
    w->db->ops->exec(w->db, "ROLLBACK TO job", &err);
    w->db->ops->exec(w->db, "RELEASE job", &err);
    if (w->db->batch_hook)
        w->db->batch_hook->job_rollback();
    job *first = g->first;
    g->first = NULL;
    for (job *j = first; j != upto->next; j = j->next)
        if (j->grouped)
            settle(j, false);
    for (job *j = first; j != upto->next; j = j->next) {
        if (!j->grouped)
            continue;
        j->grouped = false;
        j->err = (cd_err){0};
        run_one(w, j);
    }
}

/* issue 8 item 8: SQLite rolls the whole transaction back on its own after some errors
 * (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM). The savepoints are gone with it, and the
 * next "SAVEPOINT job" would open a transaction of its own that "RELEASE job" commits:
 * the rest of the batch would be durable yet answered as failed, and retried. So once
 * the transaction is gone, nothing of the batch is durable: the jobs that ran are
 * answered failed, and the caller fails the ones that have not run without running them. */
static void lose_batch(job *batch, job *upto, cd_err *err)
{
    cd_logf("error", "the batch transaction was rolled back by the database", "\"op\":\"batch\"");
    cd_fail(err, CD_ESTORE, "", "storage error");
    for (job *j = batch; j != upto->next; j = j->next) {
        if (j->rc == 0) {
            j->rc = -1;
            j->err = *err;
        }
    }
}

/* The batch's deferred work (issue 16), then COMMIT (without waiting for the disk when
 * the syncer makes it durable). On failure nothing of the batch is durable: every job
 * fails, whatever it did. */
static int commit_batch(cd_writer *w, job *batch, int n)
{
    cd_err err = {0};
    const cd_batch_hook *h = w->db->batch_hook;
    int rc = h ? h->finish(w->db, &err) : 0;
    if (rc == 0 && !w->db->ops->in_transaction(w->db))
        rc = cd_fail(&err, CD_ESTORE, "", "storage error");
    if (rc == 0)
        rc = w->sync ? w->db->ops->commit_nosync(w->db, &err)
                     : w->db->ops->exec(w->db, "COMMIT", &err);
    if (rc == 0)
        return 0;
    cd_err ignored;
    w->db->ops->exec(w->db, "ROLLBACK", &ignored);
    cd_logf("error", "commit failed", "\"batch\":%d", n);
    for (job *j = batch; j; j = j->next) {
        j->rc = -1;
        j->err = err;
    }
    return -1;
}

static void answer(cd_writer *w, job *batch)
{
    bool settled = false;
    for (job *j = batch; j;) {
        job *next = j->next;
        settled |= j->afters != NULL;
        settle(j, j->rc == 0);
        j->done(j->arg, j->rc, j->rc ? &j->err : NULL);
        free(j);
        j = next;
    }
    const cd_store_claimer *c = settled ? atomic_load(&w->store->claimer) : NULL;
    if (c && c->settled)
        c->settled(c->arg);
}

/* A committed batch goes to the syncer, which answers it once the disk has it. */
static void hand_to_syncer(cd_writer *w, job *batch)
{
    job *last = batch;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&w->lock);
    if (w->synced_tail)
        w->synced_tail->next = batch;
    else
        w->synced_head = batch;
    w->synced_tail = last;
    pthread_cond_signal(&w->sync_cond);
    pthread_mutex_unlock(&w->lock);
}

/* The syncer thread: one sync for every batch committed before it began, then the answers;
 * between syncs, the backend's background work (the WAL checkpoint). */
static void *syncer_main(void *arg)
{
    cd_thread_name("cd-syncer");
    cd_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->synced_head == NULL && !w->sync_stopping)
            pthread_cond_wait(&w->sync_cond, &w->lock);
        job *batch = w->synced_head;
        if (batch == NULL)
            break; /* stopping, and everything answered */
        w->synced_head = w->synced_tail = NULL;
        pthread_mutex_unlock(&w->lock);
        cd_err err = {0};
        if (w->sync_ops->sync_now(w->sync, &err) != 0) {
            for (job *j = batch; j; j = j->next) {
                if (j->rc == 0) {
                    j->rc = -1;
                    j->err = err;
                }
            }
        }
        answer(w, batch);
        w->sync_ops->sync_idle(w->sync);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* A rerunnable job joins the open group; any other closes it and takes a savepoint of its own.
 * A testing aid, CONSENTD_TEST_RERUN=1, treats every rerunnable job as failed once it ran
 * in its group: each runs twice, the first run rolled back, which is how the end-to-end
 * tests prove that the jobs submitted as rerunnable are. */
static void run_job(cd_writer *w, group *g, job *j)
{
    if (!j->rerunnable) {
        group_close(w, g);
        run_one(w, j);
        return;
    }
    if (group_join(w, g, j) != 0) {
        j->rc = -1;
        return;
    }
    j->grouped = true;
    call(w, j);
    if ((j->rc != 0 || w->rerun_all) && w->db->ops->in_transaction(w->db))
        group_undo(w, g, j);
}

static void run_batch(cd_writer *w, job *batch, int n)
{
    cd_err err = {0};
    group g = {0};
    int64_t t0 = cd_monotonic_us();
    int rc = w->db->ops->exec(w->db, "BEGIN IMMEDIATE", &err);
    w->db->in_batch = rc == 0;
    for (job *j = batch; j; j = j->next) {
        if (rc != 0) {
            j->rc = -1;
            j->err = err;
        } else if (j->deadline_us && cd_monotonic_us() > j->deadline_us) {
            /* issue 8 item 7: waited too long. The client may have given up; nothing is
             * written, so it can retry safely. */
            j->rc = cd_fail_reason(&j->err, CD_EBUSY, "overloaded", "", "the server is overloaded");
        } else {
            run_job(w, &g, j);
            if (!w->db->ops->in_transaction(w->db)) {
                lose_batch(batch, j, &err);
                rc = -1;
            }
        }
    }
    if (rc == 0)
        group_close(w, &g);
    if (rc == 0)
        rc = commit_batch(w, batch, n);
    unsigned wrote = w->db->ops->wrote ? w->db->ops->wrote(w->db) : CD_STORE_WROTE_ALL;
    if (w->db->batch_hook)
        w->db->batch_hook->reset();
    w->db->batch_hook = NULL;
    w->db->in_batch = false;
    double secs = (double)(cd_monotonic_us() - t0) / 1e6;
    if (w->store->commit_hook)
        w->store->commit_hook(w->store->commit_hook_arg, n, secs, rc == 0 ? wrote : 0);
    if (rc == 0 && w->sync)
        hand_to_syncer(w, batch);
    else
        answer(w, batch);
}

static void *writer_main(void *arg)
{
    cd_thread_name("cd-writer");
    cd_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->head == NULL && w->stopping)
            break;
        /* Take up to MAX_BATCH jobs; the rest wait for the next round. */
        job *batch = w->head, *last = w->head;
        int n = 1;
        while (last->next && n < MAX_BATCH) {
            last = last->next;
            n++;
        }
        w->head = last->next;
        if (w->head == NULL)
            w->tail = NULL;
        last->next = NULL;
        w->queued -= n;
        pthread_mutex_unlock(&w->lock);
        run_batch(w, batch, n);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* After the writer: the syncer answers what is left, then the backend syncs at COMMIT. */
static void stop_syncer(cd_writer *w)
{
    if (w->sync == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->sync_stopping = true;
    pthread_cond_signal(&w->sync_cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->syncer, NULL);
    w->db->ops->sync_stop(w->db);
    w->sync = NULL;
}

cd_writer *cd_store__writer_start(cd_store *s, cd_db *db, cd_err *err)
{
    cd_writer *w = cd_xcalloc(1, sizeof *w);
    w->store = s;
    w->db = db;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->sync_cond, NULL);
    w->sync_ops = db->ops;
    const char *rerun = getenv("CONSENTD_TEST_RERUN");
    w->rerun_all = rerun && strcmp(rerun, "1") == 0;
    w->sync = db->ops->sync_start ? db->ops->sync_start(db) : NULL;
    if (w->sync && pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
        db->ops->sync_stop(db); /* COMMIT syncs again */
        w->sync = NULL;
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        stop_syncer(w);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        pthread_cond_destroy(&w->sync_cond);
        free(w);
        cd_fail(err, CD_EINTERNAL, "", "cannot start the writer thread");
        return NULL;
    }
    return w;
}

void cd_store__writer_limits(cd_writer *w, int queue_max, int deadline_ms)
{
    pthread_mutex_lock(&w->lock);
    w->queue_max = queue_max > 0 ? queue_max : 0;
    w->deadline_us = deadline_ms > 0 ? (int64_t)deadline_ms * 1000 : 0;
    pthread_mutex_unlock(&w->lock);
}

/* The writer leaves its loop only once the queue is empty and submit refuses new jobs
 * (both under the lock), so every job queued before close has been answered when the
 * join returns: none is dropped, none answered twice. */
void cd_store__writer_stop(cd_writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    stop_syncer(w);
    assert(w->head == NULL && w->queued == 0 && w->synced_head == NULL);
    w->db->ops->disconnect(w->db);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->sync_cond);
    free(w);
}

int cd_store__writer_submit(cd_writer *w, cd_job_fn fn, cd_job_done_fn done, void *arg,
                            bool internal, bool rerunnable, cd_err *err)
{
    job *j = cd_xcalloc(1, sizeof *j);
    j->rerunnable = rerunnable;
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return cd_fail(err, CD_ESTORE, "", "the store is closing");
    }
    if (!internal && w->queue_max > 0 && w->queued >= w->queue_max) {
        /* issue 8 item 7: backpressure. A slow disk must not turn into unbounded memory
         * and unbounded waits: the client is told to come back (503, Retry-After). */
        pthread_mutex_unlock(&w->lock);
        free(j);
        return cd_fail_reason(err, CD_EBUSY, "overloaded", "", "the server is overloaded");
    }
    if (!internal && w->deadline_us > 0)
        j->deadline_us = cd_monotonic_us() + w->deadline_us;
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->queued++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}
