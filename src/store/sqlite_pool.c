/* store/sqlite_pool.c -- issue 14, the SQLite side of the Opentact surface and the number
 * pool: messaging profiles, sender leases, the receipts that make a sender's health, sticky
 * senders, and revoked JWT ids (migration 0010).
 *
 * Why its own file with statements prepared per call: these queries run once per profile
 * request or once per pooled send, so the statement cache of sqlite.c (an enum shared by
 * every query) would buy little, and keeping them here leaves that enum alone. */
#include "store/sqlite_int.h"

#include <string.h>

#define PROFILE_COLS                                                                               \
    "uuid, account_id, name, callback_url, callback_url2, number_pool_enable, "                    \
    "long_code_weight, toll_free_weight, skip_unhealthy_tns, sticky_sender, signing_secret, "      \
    "created_ms, modified_ms"

/* This file's statements, prepared on first use into the connection's statement cache
 * (sqlite_int.h's Q_POOL_* slots): events and sends ask for profiles and leases on every
 * write, and parsing them each time showed in the writer's profile. */
static const char *const POOL_SQL[Q_COUNT] = {
    [Q_POOL_PROFILE_PUT] =
        "INSERT INTO profiles (" PROFILE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "?11, ?12, ?13) ON CONFLICT (uuid) DO UPDATE SET name = ?3, callback_url = ?4, "
        "callback_url2 = ?5, number_pool_enable = ?6, long_code_weight = ?7, "
        "toll_free_weight = ?8, skip_unhealthy_tns = ?9, sticky_sender = ?10, modified_ms = ?13 "
        "WHERE profiles.account_id = ?2",
    [Q_POOL_PROFILE_GET] =
        "SELECT " PROFILE_COLS " FROM profiles WHERE account_id = ? AND uuid = ?",
    [Q_POOL_PROFILE_DELETE] = "DELETE FROM profiles WHERE account_id = ? AND uuid = ?",
    [Q_POOL_PROFILE_UNLEASE] = "UPDATE senders SET profile = '', lease_uuid = '', leased_ms = 0 "
                               "WHERE account_id = ? AND profile = ?",
    [Q_POOL_PROFILE_UNSTICK] = "DELETE FROM sticky_senders WHERE account_id = ? AND profile = ?",
    [Q_POOL_PROFILE_LIST] =
        "SELECT " PROFILE_COLS " FROM profiles WHERE account_id = ? ORDER BY seq",
    [Q_POOL_SENDER_LEASE] = "UPDATE senders SET profile = ?3, lease_uuid = ?4, leased_ms = ?5 "
                            "WHERE account_id = ?1 AND number = ?2",
    [Q_POOL_SENDER_UNSTICK] = "DELETE FROM sticky_senders WHERE account_id = ? AND number = ?",
    [Q_POOL_SENDER_LEASES] = "SELECT " CD_SQLITE_SENDER_COLS " FROM senders WHERE account_id = ? "
                             "AND profile = ? ORDER BY number",
    [Q_POOL_SENDER_USED] =
        "UPDATE senders SET last_used_ms = ? WHERE account_id = ? AND number = ?",
    [Q_POOL_RECEIPT_PRUNE] = "DELETE FROM sender_receipts WHERE account_id = ? AND number = ? "
                             "AND at_ms < ?",
    [Q_POOL_RECEIPT_INSERT] = "INSERT INTO sender_receipts (account_id, number, status, at_ms) "
                              "VALUES (?, ?, ?, ?)",
    [Q_POOL_SENDER_HEALTH] =
        "SELECT count(*), coalesce(sum(status = 'delivered'), 0), "
        "coalesce(sum(status IN ('blocked', 'rejected')), 0) FROM sender_receipts "
        "WHERE account_id = ? AND number = ? AND at_ms >= ?",
    [Q_POOL_STICKY_GET] = "SELECT number FROM sticky_senders WHERE account_id = ? AND "
                          "profile = ? AND to_phone = ? AND until_ms > ?",
    [Q_POOL_STICKY_PUT] = "INSERT OR REPLACE INTO sticky_senders (account_id, profile, "
                          "to_phone, number, until_ms) VALUES (?, ?, ?, ?, ?)",
    [Q_POOL_JWT_PRUNE] = "DELETE FROM revoked_jwts WHERE exp_ms < ?",
    [Q_POOL_JWT_REVOKE] =
        "INSERT OR IGNORE INTO revoked_jwts (jti, account_id, exp_ms, revoked_ms) "
        "VALUES (?, ?, ?, ?)",
    [Q_POOL_JWT_REVOKED] = "SELECT 1 FROM revoked_jwts WHERE jti = ?",
};

static sqlite3_stmt *pstmt(sqlite_db *d, enum q q, cd_err *err)
{
    return cd_sqlite__prepared(d, q, POOL_SQL[q], err);
}

/* ---- profiles ---- */

static void read_profile(sqlite3_stmt *s, void *out)
{
    cd_profile *p = out;
    memset(p, 0, sizeof *p);
    col_copy(s, 0, p->uuid, sizeof p->uuid);
    p->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, p->name, sizeof p->name);
    col_copy(s, 3, p->callback_url, sizeof p->callback_url);
    col_copy(s, 4, p->callback_url2, sizeof p->callback_url2);
    p->number_pool_enable = sqlite3_column_int(s, 5) != 0;
    p->long_code_weight = sqlite3_column_int(s, 6);
    p->toll_free_weight = sqlite3_column_int(s, 7);
    p->skip_unhealthy_tns = sqlite3_column_int(s, 8) != 0;
    p->sticky_sender = sqlite3_column_int(s, 9) != 0;
    col_copy(s, 10, p->signing_secret, sizeof p->signing_secret);
    p->created_ms = sqlite3_column_int64(s, 11);
    p->modified_ms = sqlite3_column_int64(s, 12);
}

int cd_sqlite__profile_put(cd_db *db, const cd_profile *p, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_PROFILE_PUT, err);
    if (!s)
        return -1;
    bind_text(s, 1, p->uuid);
    sqlite3_bind_int64(s, 2, p->account_id);
    bind_text(s, 3, p->name);
    bind_text(s, 4, p->callback_url);
    bind_text(s, 5, p->callback_url2);
    sqlite3_bind_int(s, 6, p->number_pool_enable);
    sqlite3_bind_int(s, 7, p->long_code_weight);
    sqlite3_bind_int(s, 8, p->toll_free_weight);
    sqlite3_bind_int(s, 9, p->skip_unhealthy_tns);
    sqlite3_bind_int(s, 10, p->sticky_sender);
    bind_text(s, 11, p->signing_secret);
    sqlite3_bind_int64(s, 12, p->created_ms);
    sqlite3_bind_int64(s, 13, p->modified_ms);
    if (cd_sqlite__step_done(d, s, err, "profile") != 0)
        return -1;
    /* A uuid of another account is not updated: the same answer as an unknown one. */
    return sqlite3_changes(d->h) ? 0 : cd_fail(err, CD_ENOTFOUND, "uuid", "no such profile");
}

static const cd_sqlite__row PROFILE_ROW = {read_profile, "profile", "uuid", "no such profile"};

int cd_sqlite__profile_get(cd_db *db, int64_t account_id, const char *uuid, cd_profile *out,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_PROFILE_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, uuid);
    return cd_sqlite__one(d, s, &PROFILE_ROW, out, err);
}

int cd_sqlite__profile_delete(cd_db *db, int64_t account_id, const char *uuid, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_PROFILE_DELETE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, uuid);
    if (cd_sqlite__step_done(d, s, err, "profile") != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0)
        return cd_fail(err, CD_ENOTFOUND, "uuid", "no such profile");
    /* Its leases end with it, and so does what its pool remembered. */
    s = pstmt(d, Q_POOL_PROFILE_UNLEASE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, uuid);
    if (cd_sqlite__step_done(d, s, err, "profile") != 0)
        return -1;
    s = pstmt(d, Q_POOL_PROFILE_UNSTICK, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, uuid);
    return cd_sqlite__step_done(d, s, err, "profile");
}

typedef struct profile_each {
    cd_profile_each_fn fn;
    void *arg;
    bool any; /* a row was read */
} profile_each;

static int profile_row(sqlite3_stmt *s, void *arg)
{
    profile_each *e = arg;
    e->any = true;
    cd_profile *p = cd_xmalloc(sizeof *p); /* 3 KiB: not on the caller's stack */
    read_profile(s, p);
    int rc = e->fn(p, e->arg) != 0;
    free(p);
    return rc;
}

/* Every message picks its sender through the account's default profile (core/pool.c):
 * the writer remembers an account that has none (sqlite_cache.c), so that the accounts
 * without number pools do not read the table once per message (issue 10, perf). */
int cd_sqlite__profile_list(cd_db *db, int64_t account_id, cd_profile_each_fn each, void *arg,
                            cd_err *err)
{
    sqlite_db *d = SDB(db);
    if (cd_sqlite__cache_no_profiles(d, account_id))
        return 0;
    sqlite3_stmt *s = pstmt(d, Q_POOL_PROFILE_LIST, err);
    profile_each e = {each, arg, false};
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    int rc = cd_sqlite__each(d, s, profile_row, &e, "profiles", err);
    if (rc == 0 && !e.any)
        cd_sqlite__cache_no_profiles_put(d, account_id);
    return rc;
}

/* ---- senders: leases, use, health ---- */

int cd_sqlite__sender_lease(cd_db *db, int64_t account_id, const char *number, const char *profile,
                            const char *lease_uuid, int64_t now_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_SENDER_LEASE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, number);
    bind_text(s, 3, profile ? profile : "");
    bind_text(s, 4, profile && *profile ? lease_uuid : "");
    sqlite3_bind_int64(s, 5, profile && *profile ? now_ms : 0);
    if (cd_sqlite__step_done(d, s, err, "lease") != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0)
        return cd_fail(err, CD_ENOTFOUND, "number", "no such sender");
    s = pstmt(d, Q_POOL_SENDER_UNSTICK, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, number);
    return cd_sqlite__step_done(d, s, err, "lease");
}

typedef struct sender_each {
    cd_sender_each_fn fn;
    void *arg;
} sender_each;

static int sender_row(sqlite3_stmt *s, void *arg)
{
    const sender_each *e = arg;
    cd_sender o;
    cd_sqlite__read_sender(s, &o);
    return e->fn(&o, e->arg) != 0;
}

int cd_sqlite__sender_leases(cd_db *db, int64_t account_id, const char *profile,
                             cd_sender_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_SENDER_LEASES, err);
    sender_each e = {each, arg};
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, profile);
    return cd_sqlite__each(d, s, sender_row, &e, "leases", err);
}

int cd_sqlite__sender_used(cd_db *db, int64_t account_id, const char *number, int64_t now_ms,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_SENDER_USED, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, account_id);
    bind_text(s, 3, number);
    return cd_sqlite__step_done(d, s, err, "sender");
}

int cd_sqlite__sender_receipt(cd_db *db, int64_t account_id, const char *number, const char *status,
                              int64_t at_ms, int64_t keep_since_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_RECEIPT_PRUNE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, number);
    sqlite3_bind_int64(s, 3, keep_since_ms);
    if (cd_sqlite__step_done(d, s, err, "receipt") != 0)
        return -1;
    s = pstmt(d, Q_POOL_RECEIPT_INSERT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, number);
    bind_text(s, 3, status);
    sqlite3_bind_int64(s, 4, at_ms);
    return cd_sqlite__step_done(d, s, err, "receipt");
}

int cd_sqlite__sender_health(cd_db *db, int64_t account_id, const char *number, int64_t since_ms,
                             int counts[3], cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_SENDER_HEALTH, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, number);
    sqlite3_bind_int64(s, 3, since_ms);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        for (int i = 0; i < 3; i++)
            counts[i] = sqlite3_column_int(s, i);
    int out = rc == SQLITE_ROW ? 0 : cd_sqlite__fail(d, err, "health");
    done(s);
    return out;
}

/* ---- sticky senders ---- */

int cd_sqlite__sticky_get(cd_db *db, int64_t account_id, const char *profile, const char *to,
                          int64_t now_ms, char number[24], cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_STICKY_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, profile);
    bind_text(s, 3, to);
    sqlite3_bind_int64(s, 4, now_ms);
    int rc = sqlite3_step(s), out = 0;
    if (rc == SQLITE_ROW)
        col_copy(s, 0, number, 24);
    else if (rc == SQLITE_DONE)
        out = cd_fail(err, CD_ENOTFOUND, "", "no sticky sender");
    else
        out = cd_sqlite__fail(d, err, "sticky");
    done(s);
    return out;
}

int cd_sqlite__sticky_put(cd_db *db, int64_t account_id, const char *profile, const char *to,
                          const char *number, int64_t until_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_STICKY_PUT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, profile);
    bind_text(s, 3, to);
    bind_text(s, 4, number);
    sqlite3_bind_int64(s, 5, until_ms);
    return cd_sqlite__step_done(d, s, err, "sticky");
}

/* ---- revoked JWT ids ---- */

int cd_sqlite__jwt_revoke(cd_db *db, int64_t account_id, const char *jti, int64_t exp_ms,
                          int64_t now_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    /* Ids past their expiry need no entry any more: the expiry refuses them. */
    sqlite3_stmt *s = pstmt(d, Q_POOL_JWT_PRUNE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    if (cd_sqlite__step_done(d, s, err, "jwt") != 0)
        return -1;
    s = pstmt(d, Q_POOL_JWT_REVOKE, err);
    if (!s)
        return -1;
    bind_text(s, 1, jti);
    sqlite3_bind_int64(s, 2, account_id);
    sqlite3_bind_int64(s, 3, exp_ms);
    sqlite3_bind_int64(s, 4, now_ms);
    return cd_sqlite__step_done(d, s, err, "jwt");
}

int cd_sqlite__jwt_revoked(cd_db *db, const char *jti, bool *revoked, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = pstmt(d, Q_POOL_JWT_REVOKED, err);
    if (!s)
        return -1;
    bind_text(s, 1, jti);
    int rc = sqlite3_step(s);
    *revoked = rc == SQLITE_ROW;
    int out = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cd_sqlite__fail(d, err, "jwt");
    done(s);
    return out;
}
