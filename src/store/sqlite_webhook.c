/* store/sqlite_webhook.c -- the SQLite backend's webhook tables (issue 15, migration 0011):
 * endpoints, events and deliveries. store/store.h documents each call. Like sqlite_jobs.c,
 * the statements live in this file's own table and are prepared into the connection's
 * cache (sqlite_int.h's Q_WH_* slots). */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EP_COLS                                                                                    \
    "id, account_id, url, url2, events, secret, enabled, profile, created_ms, updated_ms, "        \
    "deleted_ms"
#define DL_COLS                                                                                    \
    "id, account_id, event_id, event_type, endpoint_id, status, attempts, last_code, "             \
    "last_error, last_url, next_ms, job_id, created_ms, updated_ms, delivered_ms"

static const char *const WH_SQL[Q_COUNT] = {
    [Q_WH_ENDPOINT_INSERT] = "INSERT INTO webhook_endpoints (" EP_COLS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)",
    [Q_WH_ENDPOINT_UPDATE] = "UPDATE webhook_endpoints SET url = ?3, url2 = ?4, events = ?5, "
                             "secret = ?6, enabled = ?7, profile = ?8, updated_ms = ?10 WHERE "
                             "id = ?1 AND account_id = ?2 AND deleted_ms = 0",
    [Q_WH_ENDPOINT_GET] = "SELECT " EP_COLS " FROM webhook_endpoints WHERE id = ?2 AND "
                          "account_id = ?1 AND deleted_ms = 0",
    [Q_WH_ENDPOINT_LIST] = "SELECT " EP_COLS " FROM webhook_endpoints WHERE account_id = ?1 AND "
                           "deleted_ms = 0 AND profile = '' ORDER BY created_ms, id",
    [Q_WH_ENDPOINT_DELETE] = "UPDATE webhook_endpoints SET deleted_ms = ?3, enabled = 0, "
                             "updated_ms = ?3 WHERE id = ?2 AND account_id = ?1 AND "
                             "deleted_ms = 0 AND profile = ''",
    [Q_WH_EVENT_INSERT] = "INSERT INTO webhook_events (id, account_id, type, body, created_ms) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_WH_DELIVERY_INSERT] = "INSERT INTO webhook_deliveries (account_id, event_id, event_type, "
                             "endpoint_id, status, attempts, last_code, last_error, last_url, "
                             "next_ms, job_id, created_ms, updated_ms, delivered_ms) VALUES (?2, "
                             "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [Q_WH_DELIVERY_UPDATE] = "UPDATE webhook_deliveries SET status = ?6, attempts = ?7, "
                             "last_code = ?8, last_error = ?9, last_url = ?10, next_ms = ?11, "
                             "job_id = ?12, updated_ms = ?14, delivered_ms = ?15 WHERE id = ?1 "
                             "AND account_id = ?2",
    [Q_WH_DELIVERY_GET] = "SELECT " DL_COLS " FROM webhook_deliveries WHERE account_id = ?1 AND "
                          "id = ?2",
    [Q_WH_DELIVERY_LIST] = "SELECT " DL_COLS " FROM webhook_deliveries WHERE account_id = ?1 AND "
                           "id > ?2 AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR "
                           "event_id = ?4) AND (?5 IS NULL OR event_type = ?5) AND (?6 IS NULL "
                           "OR endpoint_id = ?6) AND created_ms >= ?7 AND (?8 = 0 OR "
                           "created_ms < ?8) ORDER BY id LIMIT ?9",
    /* issue 14: a profile's callback row takes the profile's URLs and secret as they are
     * now; a deleted profile (no row) makes the endpoint deleted. */
    /* Is anyone listening? A subscription, or a profile with a callback URL. */
    [Q_WH_ANY] = "SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE account_id = ?1 AND "
                 "deleted_ms = 0 AND enabled AND profile = '') OR EXISTS (SELECT 1 FROM profiles "
                 "WHERE account_id = ?1 AND callback_url <> '')",
    [Q_WH_TARGET] =
        "SELECT d.id, d.account_id, d.event_id, d.event_type, d.endpoint_id, d.status, "
        "d.attempts, d.last_code, d.last_error, d.last_url, d.next_ms, d.job_id, d.created_ms, "
        "d.updated_ms, d.delivered_ms, CASE WHEN e.profile = '' THEN e.url ELSE "
        "coalesce(p.callback_url, '') END, CASE WHEN e.profile = '' THEN e.url2 ELSE "
        "coalesce(p.callback_url2, '') END, CASE WHEN e.profile = '' THEN e.secret ELSE "
        "coalesce(p.signing_secret, '') END, e.enabled AND (e.profile = '' OR "
        "coalesce(p.callback_url, '') <> ''), e.deleted_ms <> 0 OR (e.profile <> '' AND p.uuid "
        "IS NULL), v.body FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = "
        "d.endpoint_id AND e.account_id = d.account_id JOIN webhook_events v ON v.id = "
        "d.event_id LEFT JOIN profiles p ON e.profile <> '' AND p.uuid = e.profile AND "
        "p.account_id = e.account_id WHERE d.id = ?1",
};

static sqlite3_stmt *wstmt(sqlite_db *d, enum q q, cd_err *err)
{
    return cd_sqlite__prepared(d, q, WH_SQL[q], err);
}

/* ---- endpoints ---- */

static void read_endpoint(sqlite3_stmt *s, void *out)
{
    cd_webhook_endpoint *e = out;
    memset(e, 0, sizeof *e);
    col_copy(s, 0, e->id, sizeof e->id);
    e->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, e->url, sizeof e->url);
    col_copy(s, 3, e->url2, sizeof e->url2);
    e->events = col_json(s, 4);
    if (!json_is_array(e->events)) {
        json_decref(e->events);
        e->events = json_array();
    }
    col_copy(s, 5, e->secret, sizeof e->secret);
    e->enabled = sqlite3_column_int(s, 6) != 0;
    col_copy(s, 7, e->profile, sizeof e->profile);
    e->created_ms = sqlite3_column_int64(s, 8);
    e->updated_ms = sqlite3_column_int64(s, 9);
    e->deleted_ms = sqlite3_column_int64(s, 10);
}

static int step_one_row(sqlite_db *d, sqlite3_stmt *s, const char *what, const char *missing,
                        cd_err *err)
{
    if (cd_sqlite__step_done(d, s, err, what) != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0)
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "%s", missing);
    return 0;
}

int cd_sqlite__webhook_endpoint_put(cd_db *db, const cd_webhook_endpoint *e, cd_err *err)
{
    sqlite_db *d = SDB(db);
    /* An update when the endpoint exists: insert first would trip the primary key. */
    cd_webhook_endpoint cur;
    cd_err e2 = {0};
    bool exists = cd_sqlite__webhook_endpoint_get(db, e->account_id, e->id, &cur, &e2) == 0;
    if (exists)
        cd_webhook_endpoint_clear(&cur);
    else if (e2.code != CD_ENOTFOUND) {
        if (err)
            *err = e2;
        return -1;
    }
    sqlite3_stmt *s = wstmt(d, exists ? Q_WH_ENDPOINT_UPDATE : Q_WH_ENDPOINT_INSERT, err);
    if (s == NULL)
        return -1;
    bind_text(s, 1, e->id);
    sqlite3_bind_int64(s, 2, e->account_id);
    bind_text(s, 3, e->url);
    bind_text(s, 4, e->url2);
    if (e->events)
        bind_json(s, 5, e->events);
    else
        bind_text(s, 5, "[]");
    bind_text(s, 6, e->secret);
    sqlite3_bind_int(s, 7, e->enabled ? 1 : 0);
    bind_text(s, 8, e->profile);
    sqlite3_bind_int64(s, 9, e->created_ms);
    sqlite3_bind_int64(s, 10, e->updated_ms);
    return step_one_row(d, s, "webhook endpoint put", "no such webhook", err);
}

int cd_sqlite__webhook_endpoint_get(cd_db *db, int64_t account_id, const char *id,
                                    cd_webhook_endpoint *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_ENDPOINT_GET, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    static const cd_sqlite__row row = {read_endpoint, "webhook endpoint get", "",
                                       "no such webhook"};
    int rc = cd_sqlite__one(d, s, &row, out, err);
    if (rc != 0 && err && err->code == CD_ENOTFOUND)
        cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such webhook");
    return rc;
}

typedef struct ep_each {
    cd_webhook_endpoint_each_fn each;
    void *arg;
} ep_each;

static int endpoint_row(sqlite3_stmt *s, void *arg)
{
    ep_each *c = arg;
    cd_webhook_endpoint e;
    read_endpoint(s, &e);
    int rc = c->each(&e, c->arg);
    cd_webhook_endpoint_clear(&e);
    return rc;
}

int cd_sqlite__webhook_endpoint_list(cd_db *db, int64_t account_id,
                                     cd_webhook_endpoint_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_ENDPOINT_LIST, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    ep_each c = {each, arg};
    return cd_sqlite__each(d, s, endpoint_row, &c, "webhook endpoint list", err);
}

int cd_sqlite__webhook_any(cd_db *db, int64_t account_id, bool *any, cd_err *err)
{
    sqlite_db *d = SDB(db);
    int known = cd_sqlite__cache_listening(d, account_id);
    if (known >= 0) {
        *any = known;
        return 0;
    }
    sqlite3_stmt *s = wstmt(d, Q_WH_ANY, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    int rc = sqlite3_step(s);
    *any = rc == SQLITE_ROW && sqlite3_column_int(s, 0) != 0;
    done(s);
    if (rc != SQLITE_ROW)
        return cd_sqlite__fail(d, err, "webhook any");
    cd_sqlite__cache_listening_put(d, account_id, *any);
    return 0;
}

int cd_sqlite__webhook_endpoint_delete(cd_db *db, int64_t account_id, const char *id,
                                       int64_t now_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_ENDPOINT_DELETE, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    sqlite3_bind_int64(s, 3, now_ms);
    return step_one_row(d, s, "webhook endpoint delete", "no such webhook", err);
}

/* ---- events and deliveries ---- */

int cd_sqlite__webhook_event_insert(cd_db *db, const cd_webhook_event *ev, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_EVENT_INSERT, err);
    if (s == NULL)
        return -1;
    bind_text(s, 1, ev->id);
    sqlite3_bind_int64(s, 2, ev->account_id);
    bind_text(s, 3, ev->type);
    bind_text(s, 4, ev->body);
    sqlite3_bind_int64(s, 5, ev->created_ms);
    return cd_sqlite__step_done(d, s, err, "webhook event insert");
}

static void bind_delivery(sqlite3_stmt *s, const cd_webhook_delivery *dl)
{
    sqlite3_bind_int64(s, 1, dl->id);
    sqlite3_bind_int64(s, 2, dl->account_id);
    bind_text(s, 3, dl->event_id);
    bind_text(s, 4, dl->event_type);
    bind_text(s, 5, dl->endpoint_id);
    bind_text(s, 6, dl->status[0] ? dl->status : "pending");
    sqlite3_bind_int(s, 7, dl->attempts);
    sqlite3_bind_int(s, 8, dl->last_code);
    bind_text(s, 9, dl->last_error);
    bind_text(s, 10, dl->last_url);
    sqlite3_bind_int64(s, 11, dl->next_ms);
    sqlite3_bind_int64(s, 12, dl->job_id);
    sqlite3_bind_int64(s, 13, dl->created_ms);
    sqlite3_bind_int64(s, 14, dl->updated_ms);
    sqlite3_bind_int64(s, 15, dl->delivered_ms);
}

static void read_delivery(sqlite3_stmt *s, void *out)
{
    cd_webhook_delivery *dl = out;
    memset(dl, 0, sizeof *dl);
    dl->id = sqlite3_column_int64(s, 0);
    dl->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, dl->event_id, sizeof dl->event_id);
    col_copy(s, 3, dl->event_type, sizeof dl->event_type);
    col_copy(s, 4, dl->endpoint_id, sizeof dl->endpoint_id);
    col_copy(s, 5, dl->status, sizeof dl->status);
    dl->attempts = sqlite3_column_int(s, 6);
    dl->last_code = sqlite3_column_int(s, 7);
    col_copy(s, 8, dl->last_error, sizeof dl->last_error);
    col_copy(s, 9, dl->last_url, sizeof dl->last_url);
    dl->next_ms = sqlite3_column_int64(s, 10);
    dl->job_id = sqlite3_column_int64(s, 11);
    dl->created_ms = sqlite3_column_int64(s, 12);
    dl->updated_ms = sqlite3_column_int64(s, 13);
    dl->delivered_ms = sqlite3_column_int64(s, 14);
}

int cd_sqlite__webhook_delivery_insert(cd_db *db, cd_webhook_delivery *dl, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_DELIVERY_INSERT, err);
    if (s == NULL)
        return -1;
    bind_delivery(s, dl);
    if (cd_sqlite__step_done(d, s, err, "webhook delivery insert") != 0)
        return -1;
    dl->id = sqlite3_last_insert_rowid(d->h);
    return 0;
}

int cd_sqlite__webhook_delivery_update(cd_db *db, const cd_webhook_delivery *dl, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_DELIVERY_UPDATE, err);
    if (s == NULL)
        return -1;
    bind_delivery(s, dl);
    return step_one_row(d, s, "webhook delivery update", "no such delivery", err);
}

int cd_sqlite__webhook_delivery_get(cd_db *db, int64_t account_id, int64_t id,
                                    cd_webhook_delivery *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_DELIVERY_GET, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, id);
    static const cd_sqlite__row row = {read_delivery, "webhook delivery get", "",
                                       "no such delivery"};
    int rc = cd_sqlite__one(d, s, &row, out, err);
    if (rc != 0 && err && err->code == CD_ENOTFOUND)
        cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such delivery");
    return rc;
}

typedef struct dl_each {
    cd_webhook_delivery_each_fn each;
    void *arg;
} dl_each;

static int delivery_row(sqlite3_stmt *s, void *arg)
{
    dl_each *c = arg;
    cd_webhook_delivery dl;
    read_delivery(s, &dl);
    return c->each(&dl, c->arg);
}

int cd_sqlite__webhook_delivery_list(cd_db *db, int64_t account_id,
                                     const cd_webhook_delivery_filter *f,
                                     cd_webhook_delivery_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_DELIVERY_LIST, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, f->after_id);
    bind_text(s, 3, f->status);
    bind_text(s, 4, f->event_id);
    bind_text(s, 5, f->event_type);
    bind_text(s, 6, f->endpoint_id);
    sqlite3_bind_int64(s, 7, f->from_ms);
    sqlite3_bind_int64(s, 8, f->to_ms);
    sqlite3_bind_int(s, 9, f->limit > 0 ? f->limit : 50);
    dl_each c = {each, arg};
    return cd_sqlite__each(d, s, delivery_row, &c, "webhook delivery list", err);
}

static void read_target(sqlite3_stmt *s, void *out)
{
    cd_webhook_target *t = out;
    memset(t, 0, sizeof *t);
    read_delivery(s, &t->d);
    col_copy(s, 15, t->url, sizeof t->url);
    col_copy(s, 16, t->url2, sizeof t->url2);
    col_copy(s, 17, t->secret, sizeof t->secret);
    t->enabled = sqlite3_column_int(s, 18) != 0;
    t->deleted = sqlite3_column_int64(s, 19) != 0;
    t->body = col_dup(s, 20);
}

int cd_sqlite__webhook_target(cd_db *db, int64_t delivery_id, cd_webhook_target *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = wstmt(d, Q_WH_TARGET, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, delivery_id);
    static const cd_sqlite__row row = {read_target, "webhook target", "", "no such delivery"};
    return cd_sqlite__one(d, s, &row, out, err);
}
