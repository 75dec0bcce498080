/* store/sqlite_walbuf.c -- the writer's WAL writes gathered into one write per commit.
 *
 * Why: SQLite writes each WAL frame as two pwrites, its 24-byte header and then its page,
 * and as frames are 4,120 bytes each write straddles two pages of the kernel's page
 * cache. A ProTexting opt-in writes about four frames, an Octopush batch hundreds: those
 * pwrites were a seventh of the writer thread's time. This VFS passes every call through
 * to the default one, except that writes to a WAL file that continue the previous one are
 * kept in a buffer and written as one pwrite when SQLite syncs the file (every commit:
 * synchronous=FULL), reads it, asks its size, truncates or closes it, maps its shared
 * memory barrier, or when the buffer is full. So the file holds exactly what it would
 * have held by the time SQLite relies on it: before a sync, a read, and before a commit
 * becomes visible to readers (the WAL is synced before the wal-index header changes).
 * While the writer commits with its syncs deferred (cd_sqlite__walbuf_defer, for
 * sqlite_sync.c), a sync of the WAL only writes the buffer out; the syncer thread syncs. */
#include "store/sqlite_int.h"

#include <string.h>

/* The default VFS writes at most 128 KiB - 1 bytes per call (its seekAndWrite masks the
 * length to 17 bits): a buffer of 64 KiB stays under that and already turns a commit's
 * hundreds of small writes into a handful. */
#define WALBUF_CAP (64 * 1024)

typedef struct walbuf_file {
    sqlite3_file base;  /* first: SQLite sees this */
    sqlite3_file *real; /* the default VFS's file, allocated right after this struct */
    bool wal;
    bool synced;          /* WAL only: synced once (its directory entry too) */
    char *buf;            /* WAL only: pending bytes, NULL until the first write */
    size_t len;           /* pending bytes in buf */
    sqlite3_int64 offset; /* where buf[0] goes in the file */
} walbuf_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs walbuf_vfs;

static int flush(walbuf_file *f)
{
    if (f->len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->offset);
    f->len = 0;
    return rc;
}

static int wb_close(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    sqlite3_free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, p, n, off);
}

static int wb_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
    walbuf_file *f = (walbuf_file *)file;
    if (!f->wal || n <= 0 || (size_t)n > WALBUF_CAP)
        return flush(f) != SQLITE_OK ? SQLITE_IOERR_WRITE
                                     : f->real->pMethods->xWrite(f->real, p, n, off);
    if (f->len > 0 &&
        (off != f->offset + (sqlite3_int64)f->len || f->len + (size_t)n > WALBUF_CAP)) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (f->buf == NULL && (f->buf = sqlite3_malloc(WALBUF_CAP)) == NULL)
        return f->real->pMethods->xWrite(f->real, p, n, off);
    if (f->len == 0)
        f->offset = off;
    memcpy(f->buf + f->len, p, (size_t)n);
    f->len += (size_t)n;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static _Thread_local bool defer_sync;

void cd_sqlite__walbuf_defer(bool on)
{
    defer_sync = on;
}

/* A deferred sync (sqlite_sync.c) only writes the WAL out. The first sync of a WAL file is
 * always real: it also makes the file's directory entry durable. */
static int wb_sync(sqlite3_file *file, int flags)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    if (rc != SQLITE_OK || (f->wal && f->synced && defer_sync))
        return rc;
    rc = f->real->pMethods->xSync(f->real, flags);
    if (rc == SQLITE_OK)
        f->synced = true;
    return rc;
}

static int wb_size(sqlite3_file *file, sqlite3_int64 *size)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wb_lock(sqlite3_file *file, int l)
{
    return ((walbuf_file *)file)->real->pMethods->xLock(((walbuf_file *)file)->real, l);
}

static int wb_unlock(sqlite3_file *file, int l)
{
    return ((walbuf_file *)file)->real->pMethods->xUnlock(((walbuf_file *)file)->real, l);
}

static int wb_reserved(sqlite3_file *file, int *out)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wb_fcntl(sqlite3_file *file, int op, void *arg)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wb_sector(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int wb_devchar(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int wb_shm_map(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **pp)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, pp);
}

static int wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wb_shm_barrier(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int wb_shm_unmap(sqlite3_file *file, int del)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

static int wb_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **pp)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, n, pp);
}

static int wb_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods walbuf_methods = {
    .iVersion = 3,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_reserved,
    .xFileControl = wb_fcntl,
    .xSectorSize = wb_sector,
    .xDeviceCharacteristics = wb_devchar,
    .xShmMap = wb_shm_map,
    .xShmLock = wb_shm_lock,
    .xShmBarrier = wb_shm_barrier,
    .xShmUnmap = wb_shm_unmap,
    .xFetch = wb_fetch,
    .xUnfetch = wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out)
{
    (void)vfs;
    walbuf_file *f = (walbuf_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out);
    if (rc != SQLITE_OK) {
        /* SQLite calls xClose only when pMethods is set; the real file is closed by its
         * own xOpen on failure. */
        f->base.pMethods = NULL;
        return rc;
    }
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->base.pMethods = &walbuf_methods;
    return SQLITE_OK;
}

/* The rest of the VFS is the default one's. */
static int wb_delete(sqlite3_vfs *v, const char *n, int d)
{
    (void)v;
    return real_vfs->xDelete(real_vfs, n, d);
}
static int wb_access(sqlite3_vfs *v, const char *n, int fl, int *o)
{
    (void)v;
    return real_vfs->xAccess(real_vfs, n, fl, o);
}
static int wb_fullpath(sqlite3_vfs *v, const char *n, int no, char *o)
{
    (void)v;
    return real_vfs->xFullPathname(real_vfs, n, no, o);
}
static int wb_random(sqlite3_vfs *v, int n, char *o)
{
    (void)v;
    return real_vfs->xRandomness(real_vfs, n, o);
}
static int wb_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return real_vfs->xSleep(real_vfs, us);
}
static int wb_time(sqlite3_vfs *v, double *t)
{
    (void)v;
    return real_vfs->xCurrentTime(real_vfs, t);
}
static int wb_lasterr(sqlite3_vfs *v, int n, char *o)
{
    (void)v;
    return real_vfs->xGetLastError(real_vfs, n, o);
}
static void *wb_dlopen(sqlite3_vfs *v, const char *n)
{
    (void)v;
    return real_vfs->xDlOpen(real_vfs, n);
}
static void wb_dlerror(sqlite3_vfs *v, int n, char *o)
{
    (void)v;
    real_vfs->xDlError(real_vfs, n, o);
}
static void (*wb_dlsym(sqlite3_vfs *v, void *h, const char *s))(void)
{
    (void)v;
    return real_vfs->xDlSym(real_vfs, h, s);
}
static void wb_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    real_vfs->xDlClose(real_vfs, h);
}
static int wb_time64(sqlite3_vfs *v, sqlite3_int64 *t)
{
    (void)v;
    return real_vfs->xCurrentTimeInt64(real_vfs, t);
}

const char *cd_sqlite__walbuf_vfs(void)
{
    if (real_vfs == NULL) {
        real_vfs = sqlite3_vfs_find(NULL);
        walbuf_vfs = (sqlite3_vfs){
            .iVersion = 2,
            .szOsFile = (int)sizeof(walbuf_file) + real_vfs->szOsFile,
            .mxPathname = real_vfs->mxPathname,
            .zName = "consentd-walbuf",
            .xOpen = wb_open,
            .xDelete = wb_delete,
            .xAccess = wb_access,
            .xFullPathname = wb_fullpath,
            .xDlOpen = wb_dlopen,
            .xDlError = wb_dlerror,
            .xDlSym = wb_dlsym,
            .xDlClose = wb_dlclose,
            .xRandomness = wb_random,
            .xSleep = wb_sleep,
            .xCurrentTime = wb_time,
            .xGetLastError = wb_lasterr,
            .xCurrentTimeInt64 = wb_time64,
        };
        sqlite3_vfs_register(&walbuf_vfs, 0);
    }
    return walbuf_vfs.zName;
}
