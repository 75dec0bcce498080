/* tests/unit/testutil.h -- helpers shared by the unit tests that need a real SQLite store:
 * a private directory under /tmp, and its removal. Header-only (static inline) because
 * meson builds each test from its one .c file. Include it after <cmocka.h>. */
#ifndef CD_TESTS_UNIT_TESTUTIL_H
#define CD_TESTS_UNIT_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define TU_PATH_MAX 256

/* Creates /tmp/consentd-unit-XXXXXX into dir[TU_PATH_MAX]; fails the test if it cannot. */
static inline void tu_mkdtemp(char dir[TU_PATH_MAX])
{
    (void)snprintf(dir, TU_PATH_MAX, "/tmp/consentd-unit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        fail_msg("mkdtemp failed");
}

static inline int tu_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything in it (files first: FTW_DEPTH). */
static inline void tu_rmtree(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        (void)nftw(dir, tu_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* "sqlite:<dir>/<file>" into url[TU_PATH_MAX + 16]. */
static inline void tu_sqlite_url(char *url, size_t n, const char *dir, const char *file)
{
    (void)snprintf(url, n, "sqlite:%s/%s", dir, file);
}

/* Opens a store on <dir>/<file>, failing the test when it cannot. */
static inline cd_store *tu_store_open(const char *dir, const char *file)
{
    char url[TU_PATH_MAX + 32];
    cd_err err = {0};
    tu_sqlite_url(url, sizeof url, dir, file);
    cd_store *s = cd_store_open(url, &err);
    if (s == NULL)
        fail_msg("cd_store_open(%s): %s", url, err.msg);
    return s;
}

#endif
