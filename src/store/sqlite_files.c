/* store/sqlite_files.c -- the database's files as the operating system sees them: the
 * database created readable by its owner only, and the lock that keeps a second server
 * off it (cd_store_serve_lock), whose first 8 bytes count other processes' key
 * revocations for that server (store/keys.c). */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

/* issue 8 item 13: the database holds consent records and key hashes, for its owner only.
 * SQLite would create the file 0644 (less the umask); it gives the -wal and -shm files the
 * database file's mode, so creating the file 0600 first, empty, covers all three. An
 * existing file keeps the mode the operator chose; a group- or world-readable one is
 * logged. When the file cannot be opened here, sqlite3_open_v2 reports why. */
void cd_sqlite__create_private(const char *path)
{
    if (path[0] == '\0' || strcmp(path, ":memory:") == 0)
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
        cd_logf("warn", "the database file is readable by others", "\"mode\":\"%03o\"",
                (unsigned)(st.st_mode & 0777));
    close(fd);
}

/* "<database>.lock", or NULL for a database without a file. */
static char *lock_path(const char *url)
{
    const char *path = url + strlen("sqlite:");
    if (*path == '\0' || strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return NULL;
    size_t n = strlen(path) + sizeof ".lock";
    char *lock = cd_xmalloc(n);
    snprintf(lock, n, "%s.lock", path);
    return lock;
}

/* "<database>.lock", flock()ed: a lock file of its own, because SQLite's own locks on the
 * database are fcntl() locks, which flock() emulates on some file systems (NFS). */
int cd_sqlite__serve_lock(const char *url, cd_err *err)
{
    const char *path = url + strlen("sqlite:");
    char *lock = lock_path(url);
    if (lock == NULL)
        return -2;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int e = errno;
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0 && (e == EWOULDBLOCK || e == EAGAIN))
        cd_fail(err, CD_ECONFLICT, "db",
                "another consentd serves %s (it holds %s): one server per database", path, lock);
    else if (fd < 0)
        cd_fail(err, CD_ESTORE, "db", "cannot lock %s: %s", lock, strerror(e));
    free(lock);
    return fd;
}

/* issue 10 (perf): a key revocation is durable; the server that holds the lock file (when
 * one runs: the file then has its 8-byte counter) forgets the keys it remembers. Failing to
 * tell it leaves the revoked key usable there until its memory of it expires (10 s). */
void cd_sqlite__serve_notify(const char *url)
{
    char *lock = lock_path(url);
    if (lock == NULL)
        return;
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    struct stat st;
    void *p = MAP_FAILED;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= 8)
        p = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
        __atomic_add_fetch((uint64_t *)p, 1, __ATOMIC_SEQ_CST);
        munmap(p, 8);
    } else if (fd >= 0 || errno != ENOENT) {
        cd_logf("warn", "cannot tell a running server that a key was revoked", "\"errno\":%d",
                errno);
    }
    if (fd >= 0)
        close(fd);
    free(lock);
}
