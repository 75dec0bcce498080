/* store/sqlite_sync.c -- the writer's commits made durable off the writer thread.
 *
 * Why: the single writer is the server's bottleneck, and a fifth of its time went to the
 * disk rather than to the jobs: each COMMIT's fdatasync of the WAL, and the WAL checkpoint
 * SQLite runs inside a COMMIT every 1,000 frames (copying pages into the database file and
 * syncing it). The writer also waited for the fdatasync with nothing to do.
 *
 * How: the writer COMMITs with its WAL syncs deferred (sqlite_walbuf.c writes the frames
 * but does not sync them), goes on with the next batch, and hands the committed batch to
 * the store's syncer thread (writer.c). The syncer fdatasyncs the WAL through a descriptor
 * of its own and only then are the batch's jobs answered; one fdatasync covers every
 * commit written before it began. So nothing is acknowledged before it is on disk, as
 * before; what changes is that the next batch runs while the disk works.
 *
 * Checkpoints: the writer's connection has no automatic checkpoint. A checkpointer thread
 * runs a PASSIVE checkpoint from a connection of its own once the WAL has grown by
 * a step of frames (CKPT_STEP). A checkpoint from another connection cannot copy what the writer
 * commits while it runs, so under constant load the WAL would never be fully copied and
 * never start over. Once the WAL holds two steps the checkpointer therefore
 * chases the writer (it runs again after a sync while more than CKPT_CLOSE frames are
 * left), and as soon as it is within CKPT_CLOSE frames the writer checkpoints itself,
 * right after a COMMIT: a short copy of the rest, after which its next transaction
 * restarts the WAL. At four steps the writer does so whatever is left. That
 * checkpoint runs outside the deferred window: SQLite syncs the WAL before it copies a
 * page and the database file after, as always.
 *
 * Crash safety: after a power loss, a commit whose frames were not synced is lost, but it
 * was not acknowledged; readers may have seen it (it was committed), which is the one
 * difference from a COMMIT that syncs before it returns. */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/thread.h"

/* Frames, from the WAL's growth since the last checkpoint (the step) or its length:
 *   step      new frames before the checkpointer runs
 *   catchup   2 x step: the WAL is to start over; the checkpointer chases the writer
 *   close     frames left for the writer's own checkpoint
 *   hard      4 x step: the writer checkpoints whatever is left
 * Measured (Omeda, ProTexting): every 2,000 frames instead of SQLite's 1,000 copied each
 * hot page (the tables' last leaves, the account's row) half as often; every 8,000 once
 * more cut the checkpointer's CPU per Omeda request from 5.5 to 3.5 us and raised the
 * throughput by 2-15% in six runs side by side. The WAL stays near 16,000 frames (64 MiB)
 * under constant load and is at most 32,000 frames and a batch. */
#define CKPT_STEP  8000
#define CKPT_CLOSE 256
static _Atomic int step_override; /* tests: cd_sqlite__ckpt_step */

void cd_sqlite__ckpt_step(int frames)
{
    atomic_store(&step_override, frames);
}

struct cd_sqlite_sync {
    char *db_path;
    char *wal_path;
    int wal_fd;             /* -1 until the first sync */
    _Atomic int wal_frames; /* frames in the WAL after the writer's last commit */
    /* Commits that wrote WAL frames, and their count when the last good sync began: a
     * batch that wrote nothing (an idle server's periodic sweeps) needs no sync then. */
    _Atomic uint64_t commits;
    uint64_t synced_commits; /* syncer thread only; UINT64_MAX: none yet (the first syncs) */
    _Atomic int ckpt_frames; /* WAL frames when the checkpointer last ran */
    int step, catchup, hard; /* see CKPT_STEP */
    /* The checkpointer thread and its connection. */
    pthread_t thread;
    bool started, wanted, stopping;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sqlite3 *ckpt;
};

static _Atomic uint64_t syncs;      /* WAL syncs completed, for the tests */
static _Atomic bool fail_next_sync; /* test fault: the next sync fails */

uint64_t cd_sqlite__sync_count(void)
{
    return atomic_load(&syncs);
}

void cd_sqlite__sync_fail_next(void)
{
    atomic_store(&fail_next_sync, true);
}

/* The wal hook replaces SQLite's automatic checkpoint on the writer's connection: it only
 * remembers how long the WAL is. */
static int on_wal(void *arg, sqlite3 *h, const char *db, int frames)
{
    (void)h;
    (void)db;
    cd_sqlite_sync *s = arg;
    atomic_store(&s->wal_frames, frames);
    atomic_fetch_add(&s->commits, 1); /* SQLite calls this only for commits with frames */
    return SQLITE_OK;
}

cd_sqlite_sync *cd_sqlite__sync_start(sqlite_db *d)
{
    const char *path = sqlite3_db_filename(d->h, "main");
    if (path == NULL || path[0] == '\0')
        return NULL; /* :memory: and temporary databases: COMMIT syncs, as before */
    cd_sqlite_sync *s = cd_xcalloc(1, sizeof *s);
    s->db_path = cd_xstrdup(path);
    size_t n = strlen(path);
    s->wal_path = cd_xmalloc(n + 5);
    memcpy(s->wal_path, path, n);
    memcpy(s->wal_path + n, "-wal", 5);
    s->wal_fd = -1;
    s->synced_commits = UINT64_MAX;
    int step = atomic_load(&step_override);
    s->step = step > 0 ? step : CKPT_STEP;
    s->catchup = 2 * s->step;
    s->hard = 4 * s->step;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    sqlite3_wal_hook(d->h, on_wal, s);
    d->sync = s;
    return s;
}

void cd_sqlite__sync_stop(sqlite_db *d)
{
    cd_sqlite_sync *s = d->sync;
    if (s == NULL)
        return;
    sqlite3_wal_hook(d->h, NULL, NULL);
    sqlite3_wal_autocheckpoint(d->h, 1000);
    d->sync = NULL;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    sqlite3_close(s->ckpt);
    free(s->db_path);
    free(s->wal_path);
    free(s);
}

/* COMMIT without waiting for the disk; then, when the WAL is long, the writer's own
 * checkpoint (see the top of the file). */
int cd_sqlite__commit_nosync(sqlite_db *d, int (*exec)(cd_db *, const char *, cd_err *),
                             cd_err *err)
{
    cd_sqlite__walbuf_defer(true);
    int rc = exec(&d->base, "COMMIT", err);
    cd_sqlite__walbuf_defer(false);
    int frames = atomic_load(&d->sync->wal_frames);
    int left = frames - atomic_load(&d->sync->ckpt_frames);
    if (rc == 0 && (frames >= d->sync->hard ||
                    (frames >= d->sync->catchup && left >= 0 && left <= CKPT_CLOSE))) {
        int log = 0, copied = 0;
        if (sqlite3_wal_checkpoint_v2(d->h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied) ==
            SQLITE_OK)
            atomic_store(&d->sync->wal_frames, log > copied ? log : 0);
    }
    return rc;
}

/* On the syncer thread: everything the writer has committed so far reaches the disk. The
 * syncs are one after another, so when no commit wrote a frame since the last good one
 * began, everything is on disk already: no fdatasync (an idle server's sweeps, which find
 * nothing to change, would otherwise flush the disk every second). */
int cd_sqlite__sync_now(cd_sqlite_sync *s, cd_err *err)
{
    uint64_t commits = atomic_load(&s->commits);
    if (commits == s->synced_commits)
        return 0;
    if (s->wal_fd < 0 && (s->wal_fd = open(s->wal_path, O_RDONLY | O_CLOEXEC)) < 0) {
        cd_logf("error", "cannot open the WAL to sync it", "\"errno\":%d", errno);
        return cd_fail(err, CD_ESTORE, "", "storage error");
    }
    if (atomic_exchange(&fail_next_sync, false) || fdatasync(s->wal_fd) != 0) {
        cd_logf("error", "fdatasync of the WAL failed", "\"errno\":%d", errno);
        return cd_fail(err, CD_ESTORE, "", "storage error");
    }
    atomic_fetch_add(&syncs, 1);
    s->synced_commits = commits;
    return 0;
}

/* The checkpointer's PASSIVE checkpoint, from its own connection (opened on first use). */
static void checkpoint(cd_sqlite_sync *s)
{
    int frames = atomic_load(&s->wal_frames);
    /* A connection checkpoints a WAL only once it has read the database in WAL mode. */
    if (s->ckpt == NULL &&
        (sqlite3_open_v2(s->db_path, &s->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
             SQLITE_OK ||
         sqlite3_exec(s->ckpt, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK)) {
        cd_logf("error", "cannot open the checkpoint connection", "\"error\":\"%s\"",
                sqlite3_errmsg(s->ckpt));
        sqlite3_close(s->ckpt);
        s->ckpt = NULL;
        return;
    }
    if (sqlite3_wal_checkpoint_v2(s->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
        SQLITE_OK)
        atomic_store(&s->ckpt_frames, frames);
}

/* A thread of its own, so that a checkpoint (a few milliseconds of writes and an fsync of
 * the database file) never holds up the syncs that answer requests. */
static void *checkpointer_main(void *arg)
{
    cd_thread_name("cd-ckpt");
    cd_sqlite_sync *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->wanted && !s->stopping)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->stopping)
            break;
        s->wanted = false;
        pthread_mutex_unlock(&s->lock);
        checkpoint(s);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* On the syncer thread, between syncs: wake the checkpointer when the WAL has grown. */
void cd_sqlite__sync_idle(cd_sqlite_sync *s)
{
    int frames = atomic_load(&s->wal_frames), done = atomic_load(&s->ckpt_frames);
    if (frames < done) { /* the WAL started over */
        atomic_store(&s->ckpt_frames, 0);
        done = 0;
    }
    if (frames - done < (frames >= s->catchup ? CKPT_CLOSE + 1 : s->step))
        return;
    pthread_mutex_lock(&s->lock);
    if (!s->started) {
        s->started = pthread_create(&s->thread, NULL, checkpointer_main, s) == 0;
        if (!s->started) {
            pthread_mutex_unlock(&s->lock);
            checkpoint(s); /* no thread: checkpoint here rather than not at all */
            return;
        }
    }
    s->wanted = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}
