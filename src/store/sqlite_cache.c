/* store/sqlite_cache.c -- what the writer's connection may remember between jobs.
 *
 * Why: every job of a vendor surface reads the same few per-account rows again: the
 * account's settings (twice per ProTexting opt-in) and whether anyone listens for its
 * webhooks (once per ledger event: three per Omeda submission, one per Octopush contact).
 * Those rows change rarely, and only through a write that this connection makes itself or
 * that another process (the CLI) commits. So the writer keeps them, and forgets them:
 *   - when it writes the table they come from (SQLite's update hook sees every row write,
 *     whichever code path made it: nothing needs to remember to invalidate);
 *   - when a job or a batch rolls back, or a transaction ends without our COMMIT (a value
 *     read after an uncommitted write would otherwise outlive it);
 *   - when a batch begins after another connection committed (PRAGMA data_version moves
 *     only for commits made by other connections).
 * A value is used or kept only inside the writer's transaction, where no other connection
 * can commit. Readers' connections never cache. */
#include "store/sqlite_int.h"

#include <string.h>

static cd_sqlite__cache *C(sqlite_db *d)
{
    return d->cache.on && sqlite3_get_autocommit(d->h) == 0 ? &d->cache : NULL;
}

static int slot(int64_t account_id)
{
    return (int)((uint64_t)account_id % CD_SQLITE__CACHE_SLOTS);
}

static void forget_settings(cd_sqlite__cache *c)
{
    for (int i = 0; i < CD_SQLITE__CACHE_SLOTS; i++) {
        json_decref(c->settings[i]);
        c->settings[i] = NULL;
        c->settings_account[i] = 0;
    }
}

static void forget_listening(cd_sqlite__cache *c)
{
    memset(c->listening_account, 0, sizeof c->listening_account);
}

static void forget_profiles(cd_sqlite__cache *c)
{
    memset(c->no_profiles_account, 0, sizeof c->no_profiles_account);
}

void cd_sqlite__cache_clear(sqlite_db *d)
{
    forget_settings(&d->cache);
    forget_listening(&d->cache);
    forget_profiles(&d->cache);
}

static void on_update(void *arg, int op, const char *dbname, const char *table, sqlite3_int64 rowid)
{
    (void)op;
    (void)dbname;
    (void)rowid;
    sqlite_db *d = arg;
    if (strcmp(table, "messages") == 0)
        d->wrote |= CD_STORE_WROTE_MESSAGES;
    else if (strcmp(table, "jobs") == 0)
        d->wrote |= CD_STORE_WROTE_JOBS;
    else if (strcmp(table, "accounts") == 0)
        forget_settings(&d->cache);
    else if (strcmp(table, "webhook_endpoints") == 0)
        forget_listening(&d->cache);
    else if (strcmp(table, "profiles") == 0) {
        forget_listening(&d->cache);
        forget_profiles(&d->cache);
    }
}

void cd_sqlite__cache_start(sqlite_db *d)
{
    d->cache.on = true;
    d->cache.data_version = -1;
    sqlite3_update_hook(d->h, on_update, d);
}

void cd_sqlite__cache_stop(sqlite_db *d)
{
    cd_sqlite__cache_clear(d);
    d->cache.on = false;
}

void cd_sqlite__cache_began(sqlite_db *d)
{
    if (!d->cache.on)
        return;
    int64_t v = -1;
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_DATA_VERSION, NULL);
    if (s && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    if (s)
        sqlite3_reset(s);
    /* A transaction that did not commit (SQLite may roll one back by itself, after an I/O
     * error, without a ROLLBACK of ours) may have left values it read after its writes. */
    if (v < 0 || v != d->cache.data_version || !d->cache.committed)
        cd_sqlite__cache_clear(d);
    d->cache.data_version = v;
    d->cache.committed = false;
}

json_t *cd_sqlite__cache_settings(sqlite_db *d, int64_t account_id)
{
    cd_sqlite__cache *c = C(d);
    int i = slot(account_id);
    if (c == NULL || c->settings_account[i] != account_id || c->settings[i] == NULL)
        return NULL;
    return json_deep_copy(c->settings[i]);
}

json_t *cd_sqlite__cache_settings_shared(sqlite_db *d, int64_t account_id)
{
    cd_sqlite__cache *c = C(d);
    int i = slot(account_id);
    if (c == NULL || c->settings_account[i] != account_id || c->settings[i] == NULL)
        return NULL;
    return json_incref(c->settings[i]);
}

void cd_sqlite__cache_settings_put(sqlite_db *d, int64_t account_id, const json_t *settings)
{
    cd_sqlite__cache *c = C(d);
    if (c == NULL || account_id <= 0)
        return;
    int i = slot(account_id);
    json_decref(c->settings[i]);
    c->settings[i] = json_deep_copy(settings);
    c->settings_account[i] = c->settings[i] ? account_id : 0;
}

int cd_sqlite__cache_listening(sqlite_db *d, int64_t account_id)
{
    cd_sqlite__cache *c = C(d);
    int i = slot(account_id);
    if (c == NULL || c->listening_account[i] != account_id)
        return -1;
    return c->listening[i];
}

void cd_sqlite__cache_listening_put(sqlite_db *d, int64_t account_id, bool any)
{
    cd_sqlite__cache *c = C(d);
    if (c == NULL || account_id <= 0)
        return;
    int i = slot(account_id);
    c->listening_account[i] = account_id;
    c->listening[i] = any;
}

bool cd_sqlite__cache_no_profiles(sqlite_db *d, int64_t account_id)
{
    cd_sqlite__cache *c = C(d);
    return c != NULL && account_id > 0 && c->no_profiles_account[slot(account_id)] == account_id;
}

void cd_sqlite__cache_no_profiles_put(sqlite_db *d, int64_t account_id)
{
    cd_sqlite__cache *c = C(d);
    if (c != NULL && account_id > 0)
        c->no_profiles_account[slot(account_id)] = account_id;
}

unsigned cd_sqlite__wrote(cd_db *db)
{
    sqlite_db *d = SDB(db);
    unsigned w = d->cache.on ? d->wrote : CD_STORE_WROTE_ALL; /* no hook: cannot tell */
    d->wrote = 0;
    return w;
}
