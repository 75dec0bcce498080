/* tests/unit/store/test_sync.c -- the writer's commits are made durable by the syncer
 * thread (store/sqlite_sync.c, store/writer.c). What must hold:
 * - a job is answered only after a WAL sync that completed after its commit (this fails
 *   if a batch were answered when it committed);
 * - a failed sync answers the jobs it covered failed, and the store goes on;
 * - a batch that wrote nothing is answered without a sync of its own, unless the last
 *   sync failed (an idle server's periodic sweeps must not flush the disk);
 * - the checkpointer copies the WAL into the database file as it grows (the writer no longer
 *   checkpoints until the WAL is long);
 * - under a steady stream of commits the WAL still starts over (the writer catches up
 *   with the syncer's checkpoints), so its file stays bounded. */
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
#include <sys/stat.h>
#include <time.h>

#include "store/sqlite_int.h" /* cd_sqlite__sync_count and the test fault */
#include "store/store.h"

#include "../testutil.h"

typedef struct put {
    int bytes;
    uint64_t syncs_at_run;  /* syncs completed when the job ran (before its commit) */
    uint64_t syncs_at_done; /* syncs completed when it was answered */
    int rc;
    atomic_int *left;
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
} put;

static int job_put(cd_db *db, void *arg, cd_err *err)
{
    put *p = arg;
    char sql[128];
    p->syncs_at_run = cd_sqlite__sync_count();
    if (db->ops->exec(db, "CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, x BLOB)", err))
        return -1;
    snprintf(sql, sizeof sql, "INSERT INTO t (x) VALUES (randomblob(%d))", p->bytes);
    return db->ops->exec(db, sql, err);
}

static void put_done(void *arg, int rc, const cd_err *err)
{
    (void)err;
    put *p = arg;
    p->syncs_at_done = cd_sqlite__sync_count();
    p->rc = rc;
    pthread_mutex_lock(p->lock);
    atomic_fetch_sub(p->left, 1);
    pthread_cond_broadcast(p->cond);
    pthread_mutex_unlock(p->lock);
}

/* Submits n jobs with at most `inflight` waiting at once, and waits for every answer. */
static void stream(cd_store *s, put *jobs, int n, int bytes, int inflight)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    atomic_int left = 0;
    for (int i = 0; i < n; i++) {
        jobs[i] = (put){.bytes = bytes, .rc = -2, .left = &left, .lock = &lock, .cond = &cond};
        pthread_mutex_lock(&lock);
        while (atomic_load(&left) >= inflight)
            pthread_cond_wait(&cond, &lock);
        atomic_fetch_add(&left, 1);
        pthread_mutex_unlock(&lock);
        cd_err err;
        assert_int_equal(cd_store_submit(s, job_put, put_done, &jobs[i], &err), 0);
    }
    pthread_mutex_lock(&lock);
    while (atomic_load(&left) > 0)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

typedef tu_store_fixture fixture;

// The checkpoint step the tests' numbers are made for: 2,000 frames (the checkpointer),
// 4,000 (the WAL starts over), 8,000 (the writer's hard limit). The server's is 8,000.
static int setup(void **state)
{
    cd_sqlite__ckpt_step(2000);
    fixture *f = tu_store_fixture_open("s.db");
    *state = f;
    return 0;
}

// Every answer comes after a sync that completed after the job's commit.
static void answered_after_a_sync(void **state)
{
    fixture *f = *state;
    cd_store *s = f->store;
    enum { N = 600 };
    put *jobs = calloc(N, sizeof *jobs);
    stream(s, jobs, N, 300, 32);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].rc, 0);
        assert_true(jobs[i].syncs_at_done > jobs[i].syncs_at_run);
    }
    free(jobs);
}

// A sync that fails answers its jobs failed; the next ones succeed.
static void failed_sync_fails_its_jobs(void **state)
{
    fixture *f = *state;
    cd_store *s = f->store;
    put jobs[3];
    stream(s, jobs, 1, 100, 1);
    assert_int_equal(jobs[0].rc, 0);
    cd_sqlite__sync_fail_next();
    stream(s, jobs + 1, 1, 100, 1);
    assert_int_not_equal(jobs[1].rc, 0);
    stream(s, jobs + 2, 1, 100, 1);
    assert_int_equal(jobs[2].rc, 0);
}

typedef struct noop {
    uint64_t syncs_at_done;
    int rc;
} noop;

static int job_noop(cd_db *db, void *arg, cd_err *err)
{
    (void)arg;
    return db->ops->exec(db, "UPDATE t SET x = x WHERE i < 0", err); /* no row */
}

/* Runs job_noop through the writer and the syncer; returns the syncs completed meanwhile. */
static uint64_t syncs_for_noop(cd_store *s)
{
    uint64_t before = cd_sqlite__sync_count();
    noop n = {.rc = -2};
    assert_int_equal(cd_store_run(s, job_noop, &n, NULL), 0);
    return cd_sqlite__sync_count() - before;
}

// A batch that wrote no WAL frame needs no sync when the last one succeeded; after a
// failed sync, the next batch syncs whatever it wrote.
static void nothing_written_needs_no_sync(void **state)
{
    fixture *f = *state;
    cd_store *s = f->store;
    put jobs[2];
    stream(s, jobs, 1, 100, 1); /* creates t */
    assert_int_equal(jobs[0].rc, 0);
    assert_int_equal(syncs_for_noop(s), 0);
    assert_int_equal(syncs_for_noop(s), 0);
    cd_sqlite__sync_fail_next();
    stream(s, jobs + 1, 1, 100, 1);
    assert_int_not_equal(jobs[1].rc, 0);
    assert_int_equal(syncs_for_noop(s), 1); /* the failed one's frames are synced now */
    assert_int_equal(syncs_for_noop(s), 0);
}

static long long file_size(const char *dir, const char *name)
{
    char path[TU_PATH_MAX + 16];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

// About 3,000 frames: past the checkpointer's step (2,000), short of the writer's own
// checkpoint (4,000): only the checkpointer can have put them into the database file.
static void syncer_checkpoints(void **state)
{
    fixture *f = *state;
    cd_store *s = f->store;
    long long before = file_size(f->dir, "s.db");
    enum { N = 480 };
    put *jobs = calloc(N, sizeof *jobs);
    stream(s, jobs, N, 16000, 1);
    /* The checkpointer runs on its own thread: give it time to finish. */
    for (int i = 0; i < 500 && file_size(f->dir, "s.db") <= before + 4 * 1024 * 1024; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    assert_true(file_size(f->dir, "s.db") > before + 4 * 1024 * 1024);
    free(jobs);
}

// 4,000 commits of about five pages each: about 80 MB of WAL if it never started over,
// at most about 17 MB (4,000 frames and a batch) when it does.
static void wal_starts_over_under_load(void **state)
{
    fixture *f = *state;
    cd_store *s = f->store;
    enum { N = 4000 };
    put *jobs = calloc(N, sizeof *jobs);
    stream(s, jobs, N, 16000, 8);
    for (int i = 0; i < N; i++)
        assert_int_equal(jobs[i].rc, 0);
    assert_true(file_size(f->dir, "s.db-wal") < 24 * 1024 * 1024);
    free(jobs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(answered_after_a_sync, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(failed_sync_fails_its_jobs, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(nothing_written_needs_no_sync, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(syncer_checkpoints, setup, tu_store_teardown),
        cmocka_unit_test_setup_teardown(wal_starts_over_under_load, setup, tu_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
