/* tests/unit/store/test_walbuf.c -- the writer's WAL writes are gathered in memory until
 * SQLite syncs (store/sqlite_walbuf.c). What must hold:
 * - a commit of any size (many buffers' worth included) is whole, readable at once by
 *   another connection, and survives closing and reopening;
 * - a commit the writer has answered survives the process being killed (SIGKILL keeps the
 *   kernel's page cache, so only bytes still in the process's buffer could be lost: this
 *   fails if a commit were answered before its WAL bytes left the buffer);
 * - a rolled-back transaction, and a job's rolled-back savepoint, leave nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_int.h" /* the writer connection's exec */

#include "../testutil.h"

typedef struct put {
    int bytes; /* of one row's blob */
    int rows;
    bool fail; /* roll the job back after writing */
} put;

static int job_put(cd_db *db, void *arg, cd_err *err)
{
    put *p = arg;
    char sql[160];
    if (db->ops->exec(db, "CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, x BLOB)", err))
        return -1;
    for (int i = 0; i < p->rows; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO t (x) VALUES (randomblob(%d))", p->bytes);
        if (db->ops->exec(db, sql, err) != 0)
            return -1;
    }
    return p->fail ? cd_fail(err, CD_EINVAL, "", "rolled back on purpose") : 0;
}

static int put_rows(cd_store *s, int bytes, int rows, bool fail)
{
    put p = {.bytes = bytes, .rows = rows, .fail = fail};
    return cd_store_run(s, job_put, &p, NULL);
}

/* What another connection (the default VFS, as the readers and the CLI use) sees. */
static long long query(const char *dir, const char *sql)
{
    char path[TU_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/w.db", dir);
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_TEXT
                ? (strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0 ? 1 : 0)
                : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static long long rows(const char *dir)
{
    return query(dir, "SELECT count(*) FROM t");
}

static long long bytes(const char *dir)
{
    return query(dir, "SELECT coalesce(sum(length(x)), 0) FROM t");
}

// Small and large commits, each seen whole by another connection at once, and after a
// reopen; the database checks out.
static void commits_of_any_size(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    tu_mkdtemp(dir);
    cd_store *s = tu_store_open(dir, "w.db");
    long long want_rows = 0, want_bytes = 0;
    const int sizes[][2] = {{10, 1}, {3000, 7}, {100000, 3}, {200, 900}, {70000, 40}, {1, 1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(put_rows(s, sizes[i][0], sizes[i][1], false), 0);
        want_rows += sizes[i][1];
        want_bytes += (long long)sizes[i][0] * sizes[i][1];
        assert_int_equal(rows(dir), want_rows);
        assert_int_equal(bytes(dir), want_bytes);
    }
    cd_store_close(s);
    assert_int_equal(rows(dir), want_rows);
    assert_int_equal(bytes(dir), want_bytes);
    assert_int_equal(query(dir, "PRAGMA integrity_check"), 1);
    s = tu_store_open(dir, "w.db");
    assert_int_equal(put_rows(s, 5000, 30, false), 0);
    cd_store_close(s);
    assert_int_equal(rows(dir), want_rows + 30);
    tu_rmtree(dir);
}

// A failed job (its savepoint rolled back) leaves nothing, whatever it had written.
static void rolled_back_leaves_nothing(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    tu_mkdtemp(dir);
    cd_store *s = tu_store_open(dir, "w.db");
    assert_int_equal(put_rows(s, 100, 5, false), 0);
    assert_int_not_equal(put_rows(s, 90000, 20, true), 0);
    assert_int_equal(rows(dir), 5);
    assert_int_equal(put_rows(s, 100, 5, false), 0);
    cd_store_close(s);
    assert_int_equal(rows(dir), 10);
    assert_int_equal(query(dir, "PRAGMA integrity_check"), 1);
    tu_rmtree(dir);
}

// Every commit answered before the kill is there after it.
static void answered_commits_survive_sigkill(void **state)
{
    (void)state;
    char dir[TU_PATH_MAX];
    tu_mkdtemp(dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        cd_store *s = tu_store_open(dir, "w.db");
        for (int n = 1;; n++) {
            if (put_rows(s, 20000 + n % 7 * 1000, 1 + n % 5, false) != 0)
                _exit(3);
            if (write(fds[1], &n, sizeof n) != (ssize_t)sizeof n)
                _exit(4);
        }
    }
    close(fds[1]);
    int n = 0, last = 0;
    long long want = 0;
    while (last < 60 && read(fds[0], &n, sizeof n) == (ssize_t)sizeof n) {
        for (int k = last + 1; k <= n; k++)
            want += 1 + k % 5;
        last = n;
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    close(fds[0]);
    assert_true(last >= 60);
    assert_true(rows(dir) >= want);
    assert_int_equal(query(dir, "PRAGMA integrity_check"), 1);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commits_of_any_size),
        cmocka_unit_test(rolled_back_leaves_nothing),
        cmocka_unit_test(answered_commits_survive_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
