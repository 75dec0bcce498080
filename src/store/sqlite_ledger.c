/* store/sqlite_ledger.c -- the ledger's rows in SQLite: append an event, read them back in
 * order (a page, the whole chain for `ledger verify`), and the last event of a contact and
 * scope. The chain itself (hashes, heads, signatures) is core/ledger.c's. */
#include <string.h>

#include "store/sqlite_int.h"

/* ---- the ledger ---- */

static void read_event(sqlite3_stmt *s, void *out)
{
    cd_event *e = out;
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(s, 0);
    e->account_id = sqlite3_column_int64(s, 1);
    e->seq = sqlite3_column_int64(s, 2);
    e->contact_id = sqlite3_column_int64(s, 3);
    col_copy(s, 4, e->phone, sizeof e->phone);
    col_copy(s, 5, e->scope, sizeof e->scope);
    col_copy(s, 6, e->old_state, sizeof e->old_state);
    col_copy(s, 7, e->new_state, sizeof e->new_state);
    col_copy(s, 8, e->surface, sizeof e->surface);
    col_copy(s, 9, e->channel, sizeof e->channel);
    col_copy(s, 10, e->keyword, sizeof e->keyword);
    col_copy(s, 11, e->disclosure_sha256, sizeof e->disclosure_sha256);
    col_copy(s, 12, e->ip, sizeof e->ip);
    col_copy(s, 13, e->user_agent, sizeof e->user_agent);
    col_copy(s, 14, e->site, sizeof e->site);
    col_copy(s, 15, e->session, sizeof e->session);
    col_copy(s, 16, e->ext_ref, sizeof e->ext_ref);
    col_copy(s, 17, e->credential_id, sizeof e->credential_id);
    col_copy(s, 18, e->request_id, sizeof e->request_id);
    e->created_ms = sqlite3_column_int64(s, 19);
    col_copy(s, 20, e->prev_hash, sizeof e->prev_hash);
    col_copy(s, 21, e->hash, sizeof e->hash);
}

void cd_sqlite__bind_event(sqlite3_stmt *s, int p, const cd_event *e)
{
    sqlite3_bind_int64(s, p, e->account_id);
    sqlite3_bind_int64(s, p + 1, e->seq);
    sqlite3_bind_int64(s, p + 2, e->contact_id);
    const char *text[] = {e->phone,   e->scope,         e->old_state, e->new_state,
                          e->surface, e->channel,       e->keyword,   e->disclosure_sha256,
                          e->ip,      e->user_agent,    e->site,      e->session,
                          e->ext_ref, e->credential_id, e->request_id};
    for (int i = 0; i < (int)(sizeof text / sizeof text[0]); i++)
        bind_text(s, p + 3 + i, text[i]);
    sqlite3_bind_int64(s, p + 18, e->created_ms);
    bind_text(s, p + 19, e->prev_hash);
    bind_text(s, p + 20, e->hash);
}

int cd_sqlite__event_insert(cd_db *db, cd_event *e, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_EVENT_INSERT, err);
    if (!s)
        return -1;
    cd_sqlite__bind_event(s, 1, e);
    if (cd_sqlite__step_done(d, s, err, "event") != 0)
        return -1;
    e->id = sqlite3_last_insert_rowid(d->h);
    return 0;
}

typedef struct event_each {
    cd_event_each_fn fn;
    void *arg;
    cd_event *e; /* ~1.5 KB: kept off small thread stacks */
} event_each;

static int event_row(sqlite3_stmt *s, void *arg)
{
    const event_each *e = arg;
    read_event(s, e->e);
    return e->fn(e->e, e->arg) != 0;
}

static int each_event(sqlite_db *d, sqlite3_stmt *s, cd_event_each_fn each, void *arg, cd_err *err)
{
    event_each e = {each, arg, cd_xmalloc(sizeof *e.e)};
    int rc = cd_sqlite__each(d, s, event_row, &e, "events", err);
    free(e.e);
    return rc;
}

int cd_sqlite__event_list(cd_db *db, int64_t account_id, const cd_event_filter *f,
                          cd_event_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_EVENT_LIST, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, f->after_seq);
    sqlite3_bind_int64(s, 3, f->contact_id);
    bind_text(s, 4, f->scope);
    sqlite3_bind_int64(s, 5, f->since_ms);
    sqlite3_bind_int(s, 6, f->limit);
    return each_event(d, s, each, arg, err);
}

int cd_sqlite__event_scan(cd_db *db, int64_t account_id, cd_event_each_fn each, void *arg,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_EVENT_SCAN, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    return each_event(d, s, each, arg, err);
}

/* ---- issue 10: the last event ---- */

static const cd_sqlite__row EVENT_ROW = {read_event, "event", "", "no such event"};

int cd_sqlite__event_last(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                          cd_event *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_EVENT_LAST, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    bind_text(s, 3, scope);
    return cd_sqlite__one(d, s, &EVENT_ROW, out, err);
}
