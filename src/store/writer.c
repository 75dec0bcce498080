/* store/writer.c -- the single writer and its group commit.
 *
 * Why: SQLite allows one writer at a time and each durable commit costs an fsync. Letting
 * request threads write directly would make them queue on the database lock (or spin in
 * busy_timeout) and pay one fsync each. Instead every write is a job handed to this one
 * thread, which takes everything queued, runs it in one transaction with a savepoint per
 * job, commits once, and only then reports each job done. Under load the batch grows by
 * itself: while one fsync is running, the next batch queues up. */
#include "store/store_int.h"

#include <stdlib.h>

#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define MAX_BATCH 1024

typedef struct job {
    cd_job_fn fn;
    cd_job_done_fn done;
    void *arg;
    int rc;
    cd_err err;
    struct job *next;
} job;

struct cd_writer {
    cd_store *store;
    cd_db *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *head, *tail;
    bool stopping;
};

/* Runs one job inside its own savepoint so that its failure undoes only its own writes. */
static void run_one(cd_writer *w, job *j)
{
    cd_err err = {0};
    if (w->db->ops->exec(w->db, "SAVEPOINT job", &j->err) != 0) {
        j->rc = -1;
        return;
    }
    j->rc = j->fn(w->db, j->arg, &j->err);
    if (j->rc != 0)
        w->db->ops->exec(w->db, "ROLLBACK TO job", &err);
    w->db->ops->exec(w->db, "RELEASE job", &err);
}

static void run_batch(cd_writer *w, job *batch, int n)
{
    cd_err err = {0};
    int64_t t0 = cd_monotonic_us();
    int rc = w->db->ops->exec(w->db, "BEGIN IMMEDIATE", &err);
    for (job *j = batch; j; j = j->next) {
        if (rc == 0) {
            run_one(w, j);
        } else {
            j->rc = -1;
            j->err = err;
        }
    }
    if (rc == 0 && w->db->ops->exec(w->db, "COMMIT", &err) != 0) {
        /* Nothing of this batch is durable: every job fails, whatever it did. */
        cd_err ignored;
        w->db->ops->exec(w->db, "ROLLBACK", &ignored);
        cd_logf("error", "commit failed", "\"batch\":%d", n);
        for (job *j = batch; j; j = j->next) {
            j->rc = -1;
            j->err = err;
        }
    }
    double secs = (double)(cd_monotonic_us() - t0) / 1e6;
    if (w->store->commit_hook)
        w->store->commit_hook(w->store->commit_hook_arg, n, secs);
    for (job *j = batch; j;) {
        job *next = j->next;
        j->done(j->arg, j->rc, j->rc ? &j->err : NULL);
        free(j);
        j = next;
    }
}

static void *writer_main(void *arg)
{
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
        pthread_mutex_unlock(&w->lock);
        run_batch(w, batch, n);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

cd_writer *cd_store__writer_start(cd_store *s, cd_db *db, cd_err *err)
{
    cd_writer *w = cd_xcalloc(1, sizeof *w);
    w->store = s;
    w->db = db;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
        cd_fail(err, CD_EINTERNAL, "", "cannot start the writer thread");
        return NULL;
    }
    return w;
}

void cd_store__writer_stop(cd_writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->db->ops->disconnect(w->db);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}

int cd_store__writer_submit(cd_writer *w, cd_job_fn fn, cd_job_done_fn done, void *arg, cd_err *err)
{
    job *j = cd_xcalloc(1, sizeof *j);
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return cd_fail(err, CD_ESTORE, "", "the store is closing");
    }
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}
