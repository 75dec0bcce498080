/* store/sqlite_jobs.c -- the SQLite backend's generic job queue (issue 15): the `jobs` table
 * of migration 0009. store/store.h documents each call; delivery/jobs.c is the one user.
 *
 * The statements live in this file's own table and are prepared here into the connection's
 * statement cache (sqlite_int.h's Q_JOB_* slots), so the shared tables stay untouched. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

#define JOB_COLS                                                                                   \
    "id, kind, account_id, ref, payload, status, attempts, due_ms, lease_ms, watch, last_error, "  \
    "created_ms, updated_ms"

static const char *const JOB_SQL[Q_COUNT] = {
    [Q_JOB_INSERT] = "INSERT INTO jobs (kind, account_id, ref, payload, status, attempts, due_ms, "
                     "watch, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?6, "
                     "?7, ?7)",
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    /* One statement claims a whole batch: the subquery walks jobs_due in due order. */
    [Q_JOB_CLAIM] = "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_ms = ?3, "
                    "updated_ms = ?2 WHERE id IN (SELECT id FROM jobs WHERE kind = ?1 AND "
                    "status = 'queued' AND due_ms <= ?2 ORDER BY due_ms, id LIMIT ?4) "
                    "RETURNING " JOB_COLS,
    [Q_JOB_DELETE] = "DELETE FROM jobs WHERE id = ?1",
    [Q_JOB_RETRY] = "UPDATE jobs SET status = 'queued', due_ms = ?2, lease_ms = 0, "
                    "last_error = ?3, updated_ms = ?4 WHERE id = ?1",
    [Q_JOB_DEAD] = "UPDATE jobs SET status = 'dead', lease_ms = 0, last_error = ?2, "
                   "updated_ms = ?3 WHERE id = ?1",
    [Q_JOB_REVIVE] = "UPDATE jobs SET status = 'queued', attempts = 0, due_ms = ?2, lease_ms = 0, "
                     "watch = 0, updated_ms = ?2 WHERE id = ?1 AND status = 'dead'",
    /* jobs_lease (status, lease_ms) */
    [Q_JOB_EXPIRED_ANY] = "SELECT 1 FROM jobs WHERE status = 'running' AND lease_ms < ?1 LIMIT 1",
    [Q_JOB_REQUEUE] = "UPDATE jobs SET status = 'queued', due_ms = ?2, lease_ms = 0, "
                      "updated_ms = ?2 WHERE status = 'running' AND lease_ms < ?1",
    [Q_JOB_NEXT_DUE] = "SELECT min(due_ms) FROM jobs WHERE kind = ?1 AND status = 'queued'",
    [Q_JOB_NEXT_DUE_ANY] = "SELECT min(due_ms) FROM jobs WHERE status = 'queued'",
};

static sqlite3_stmt *jstmt(sqlite_db *d, enum q q, cd_err *err)
{
    return cd_sqlite__prepared(d, q, JOB_SQL[q], err);
}

static void read_job(sqlite3_stmt *s, void *out)
{
    cd_job *j = out;
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, j->kind, sizeof j->kind);
    j->account_id = sqlite3_column_int64(s, 2);
    col_copy(s, 3, j->ref, sizeof j->ref);
    j->payload = col_dup(s, 4);
    if (j->payload == NULL)
        j->payload = cd_xstrdup("");
    col_copy(s, 5, j->status, sizeof j->status);
    j->attempts = sqlite3_column_int(s, 6);
    j->due_ms = sqlite3_column_int64(s, 7);
    j->lease_ms = sqlite3_column_int64(s, 8);
    j->watch = (uint64_t)sqlite3_column_int64(s, 9);
    col_copy(s, 10, j->last_error, sizeof j->last_error);
    j->created_ms = sqlite3_column_int64(s, 11);
    j->updated_ms = sqlite3_column_int64(s, 12);
}

int cd_sqlite__job_enqueue(cd_db *db, cd_job *j, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_INSERT, err);
    if (s == NULL)
        return -1;
    int64_t now = cd_now_ms();
    if (j->due_ms <= 0)
        j->due_ms = now;
    bind_text(s, 1, j->kind);
    sqlite3_bind_int64(s, 2, j->account_id);
    bind_text(s, 3, j->ref);
    bind_text(s, 4, j->payload ? j->payload : "");
    sqlite3_bind_int64(s, 5, j->due_ms);
    sqlite3_bind_int64(s, 6, (int64_t)j->watch);
    sqlite3_bind_int64(s, 7, now);
    if (cd_sqlite__step_done(d, s, err, "job insert") != 0)
        return -1;
    j->id = sqlite3_last_insert_rowid(d->h);
    snprintf(j->status, sizeof j->status, "queued");
    j->attempts = 0;
    j->created_ms = j->updated_ms = now;
    return 0;
}

int cd_sqlite__job_get(cd_db *db, int64_t id, cd_job *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_GET, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    static const cd_sqlite__row row = {read_job, "job get", "id", "no such job"};
    return cd_sqlite__one(d, s, &row, out, err);
}

typedef struct claim_ctx {
    cd_job_each_fn each;
    void *arg;
} claim_ctx;

static int claim_row(sqlite3_stmt *s, void *arg)
{
    claim_ctx *c = arg;
    cd_job j;
    read_job(s, &j);
    int rc = c->each(&j, c->arg);
    cd_job_clear(&j);
    return rc;
}

/* RETURNING rows are all produced before the first is handed out, so the callback sees
 * every claimed job even when it stops early; it must not stop early (the job would stay
 * 'running' until its lease ends). */
int cd_sqlite__job_claim(cd_db *db, const char *kind, int64_t now_ms, int64_t lease_ms, int limit,
                         cd_job_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_CLAIM, err);
    if (s == NULL)
        return -1;
    bind_text(s, 1, kind);
    sqlite3_bind_int64(s, 2, now_ms);
    sqlite3_bind_int64(s, 3, now_ms + lease_ms);
    sqlite3_bind_int(s, 4, limit);
    claim_ctx c = {each, arg};
    return cd_sqlite__each(d, s, claim_row, &c, "job claim", err);
}

/* Runs s; CD_ENOTFOUND (field "id") when it changed no row. */
static int step_one_row(sqlite_db *d, sqlite3_stmt *s, const char *what, cd_err *err)
{
    if (cd_sqlite__step_done(d, s, err, what) != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0)
        return cd_fail(err, CD_ENOTFOUND, "id", "no such job");
    return 0;
}

int cd_sqlite__job_complete(cd_db *db, int64_t id, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_DELETE, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return cd_sqlite__step_done(d, s, err, "job complete"); /* already gone is fine */
}

int cd_sqlite__job_delete(cd_db *db, int64_t id, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_DELETE, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return step_one_row(d, s, "job delete", err);
}

int cd_sqlite__job_retry(cd_db *db, int64_t id, int64_t due_ms, const char *error, int64_t now_ms,
                         cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_RETRY, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, due_ms);
    bind_text(s, 3, error ? error : "");
    sqlite3_bind_int64(s, 4, now_ms);
    return step_one_row(d, s, "job retry", err);
}

int cd_sqlite__job_dead(cd_db *db, int64_t id, const char *error, int64_t now_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_DEAD, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    bind_text(s, 2, error ? error : "");
    sqlite3_bind_int64(s, 3, now_ms);
    return step_one_row(d, s, "job dead", err);
}

int cd_sqlite__job_revive(cd_db *db, int64_t id, int64_t due_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_REVIVE, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, due_ms);
    return step_one_row(d, s, "job revive", err);
}

int cd_sqlite__job_requeue(cd_db *db, int64_t lease_before_ms, int64_t now_ms, int *count,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_REQUEUE, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, lease_before_ms);
    sqlite3_bind_int64(s, 2, now_ms);
    if (cd_sqlite__step_done(d, s, err, "job requeue") != 0)
        return -1;
    if (count)
        *count = sqlite3_changes(d->h);
    return 0;
}

int cd_sqlite__job_expired_any(cd_db *db, int64_t lease_before_ms, bool *any, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, Q_JOB_EXPIRED_ANY, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, lease_before_ms);
    int rc = sqlite3_step(s);
    *any = rc == SQLITE_ROW;
    done(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cd_sqlite__fail(d, err, "job expired");
}

int cd_sqlite__job_next_due(cd_db *db, const char *kind, int64_t *out_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = jstmt(d, kind ? Q_JOB_NEXT_DUE : Q_JOB_NEXT_DUE_ANY, err);
    if (s == NULL)
        return -1;
    if (kind)
        bind_text(s, 1, kind);
    int rc = sqlite3_step(s);
    *out_ms = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    done(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cd_sqlite__fail(d, err, "job next due");
}
