/* store/sqlite_rows.c -- issue 11: a batch's new rows written many to a statement.
 *
 * While a connection defers (cd_store_rows_defer), the rows an Octopush batch writes one at a
 * time -- new contacts, consents, ledger events -- are kept here and written as multi-row
 * INSERTs of up to ROWS_CHUNK rows: one statement start, cursor opening, statement journal and
 * halt per chunk instead of per row. The connection's ops table is swapped for a copy whose
 * contact_put, consent_put and event_insert keep the row, and whose reads of those three
 * tables write what is kept first, so what a job reads is what it wrote.
 *
 * What is stored is the same: the rows go in in the order they were given, and a new contact
 * or event gets the id SQLite would have given it (max(id) + 1 of the table, INTEGER PRIMARY
 * KEY without AUTOINCREMENT), set here at once because the caller needs it. */
#include <pthread.h>
#include <string.h>

#include "store/sqlite_int.h"
#include "util/buf.h"

enum { ROWS_CHUNK = 256, ROWS_SIZES = 9 }; /* statements of 1, 2, 4 ... 256 rows */
enum { T_CONTACT, T_CONSENT, T_EVENT, T_COUNT };
enum { CONTACT_TEXTS = 14 }; /* phone, six fields, five params, custom, tags */

static const int COLS[T_COUNT] = {18, 5, 22};
static const char *const HEAD[T_COUNT] = {
    "INSERT INTO contacts (id, account_id, phone, first_name, last_name, email, birthday, zip, "
    "city, param1, param2, param3, param4, param5, custom, tags, created_ms, updated_ms) VALUES ",
    "INSERT INTO consents (account_id, contact_id, scope, state, updated_ms) VALUES ",
    "INSERT INTO events (id, account_id, seq, contact_id, phone, scope, old_state, new_state, "
    "surface, channel, keyword, disclosure_sha256, ip, user_agent, site, session, ext_ref, "
    "credential_id, request_id, created_ms, prev_hash, hash) VALUES ",
};
static const char *const TAIL[T_COUNT] = {
    "",
    /* Q_CONSENT_PUT's upsert: a later row of one statement updates an earlier one */
    " ON CONFLICT (account_id, contact_id, scope) DO UPDATE SET state = excluded.state, "
    "updated_ms = excluded.updated_ms",
    "",
};

typedef struct kept_contact {
    int64_t id, account_id, created_ms, updated_ms;
    int off[CONTACT_TEXTS]; /* into the arena; -1: NULL */
    int len[CONTACT_TEXTS];
} kept_contact;

typedef struct kept_consent {
    int64_t account_id, contact_id;
    cd_consent c;
} kept_consent;

struct cd_sqlite__rows {
    const struct cd_store_ops *orig; /* NULL: not deferring */
    int64_t next_contact_id, next_event_id;
    size_t n[T_COUNT];
    kept_contact contact[ROWS_CHUNK];
    cd_buf arena; /* the contacts' texts */
    kept_consent consent[ROWS_CHUNK];
    cd_event event[ROWS_CHUNK];
    sqlite3_stmt *st[T_COUNT][ROWS_SIZES];
    sqlite3_stmt *max_id[2]; /* contacts, events */
};

void cd_sqlite__rows_free(sqlite_db *d)
{
    cd_sqlite__rows *r = d->rows;
    if (r == NULL)
        return;
    for (int t = 0; t < T_COUNT; t++)
        for (int k = 0; k < ROWS_SIZES; k++)
            sqlite3_finalize(r->st[t][k]);
    sqlite3_finalize(r->max_id[0]);
    sqlite3_finalize(r->max_id[1]);
    cd_buf_free(&r->arena);
    free(r);
    d->rows = NULL;
}

/* The statement for 2^k rows of table t, prepared once per connection. */
static sqlite3_stmt *chunk_stmt(sqlite_db *d, int t, int k, cd_err *err)
{
    cd_sqlite__rows *r = d->rows;
    if (r->st[t][k])
        return r->st[t][k];
    cd_buf sql = {0};
    cd_buf_puts(&sql, HEAD[t]);
    for (int i = 0; i < 1 << k; i++) {
        cd_buf_append(&sql, i ? ",(" : "(", i ? 2 : 1);
        for (int c = 0; c < COLS[t]; c++)
            cd_buf_append(&sql, c ? ",?" : "?", c ? 2 : 1);
        cd_buf_append(&sql, ")", 1);
    }
    cd_buf_puts(&sql, TAIL[t]);
    int rc = sqlite3_prepare_v3(d->h, sql.data, (int)sql.len, SQLITE_PREPARE_PERSISTENT,
                                &r->st[t][k], NULL);
    cd_buf_free(&sql);
    if (rc != SQLITE_OK) {
        cd_sqlite__fail(d, err, "prepare rows");
        return NULL;
    }
    return r->st[t][k];
}

static void bind_contact(sqlite3_stmt *s, int p, const cd_sqlite__rows *r, const kept_contact *c)
{
    sqlite3_bind_int64(s, p, c->id);
    sqlite3_bind_int64(s, p + 1, c->account_id);
    for (int i = 0; i < CONTACT_TEXTS; i++) {
        if (c->off[i] < 0)
            sqlite3_bind_null(s, p + 2 + i);
        else
            sqlite3_bind_text(s, p + 2 + i, r->arena.data + c->off[i], c->len[i], SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, p + 16, c->created_ms);
    sqlite3_bind_int64(s, p + 17, c->updated_ms);
}

static void bind_consent(sqlite3_stmt *s, int p, const kept_consent *c)
{
    sqlite3_bind_int64(s, p, c->account_id);
    sqlite3_bind_int64(s, p + 1, c->contact_id);
    bind_text(s, p + 2, c->c.scope);
    bind_text(s, p + 3, c->c.state);
    sqlite3_bind_int64(s, p + 4, c->c.updated_ms);
}

/* The id, then every other column as cd_sqlite__event_insert binds them. */
static void bind_event(sqlite3_stmt *s, int p, const cd_event *e)
{
    sqlite3_bind_int64(s, p, e->id);
    cd_sqlite__bind_event(s, p + 1, e);
}

static const char *const WHAT[T_COUNT] = {"contact", "consent", "event"};

/* Writes the rows of table t kept so far, in their order, in statements of 2^k rows. */
static int flush_table(sqlite_db *d, int t, cd_err *err)
{
    cd_sqlite__rows *r = d->rows;
    size_t at = 0, n = r->n[t];
    int rc = 0;
    while (rc == 0 && at < n) {
        int k = ROWS_SIZES - 1;
        while ((size_t)1 << k > n - at)
            k--;
        sqlite3_stmt *s = chunk_stmt(d, t, k, err);
        if (s == NULL) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < (size_t)1 << k; i++) {
            int p = 1 + (int)i * COLS[t];
            if (t == T_CONTACT)
                bind_contact(s, p, r, &r->contact[at + i]);
            else if (t == T_CONSENT)
                bind_consent(s, p, &r->consent[at + i]);
            else
                bind_event(s, p, &r->event[at + i]);
        }
        /* Every parameter is bound again on the next use: no sqlite3_clear_bindings. */
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = cd_sqlite__fail(d, err, WHAT[t]);
        sqlite3_reset(s);
        at += (size_t)1 << k;
    }
    r->n[t] = 0;
    if (t == T_CONTACT)
        r->arena.len = 0;
    return rc;
}

static int flush_all(sqlite_db *d, cd_err *err)
{
    for (int t = 0; t < T_COUNT; t++)
        if (d->rows->n[t] && flush_table(d, t, err) != 0)
            return -1;
    return 0;
}

/* ---- the rows kept ---- */

static void keep_text(cd_sqlite__rows *r, kept_contact *k, int i, const char *v, size_t n)
{
    if (v == NULL) {
        k->off[i] = -1;
        k->len[i] = 0;
        return;
    }
    k->off[i] = (int)r->arena.len;
    k->len[i] = (int)n;
    cd_buf_append(&r->arena, v, n);
}

/* A JSON value as bind_json writes it (json_dumps, JSON_COMPACT). */
static void keep_json(cd_sqlite__rows *r, kept_contact *k, int i, const json_t *v)
{
    if (v == NULL) {
        keep_text(r, k, i, NULL, 0);
        return;
    }
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    keep_text(r, k, i, txt, txt ? strlen(txt) : 0);
    free(txt);
}

/* Tags as cd_sqlite__bind_strings writes them. */
static void keep_tags(cd_sqlite__rows *r, kept_contact *k, int i, const json_t *tags)
{
    char out[512];
    int len = cd_sqlite__string_array_text(tags, out, sizeof out);
    if (len < 0)
        keep_json(r, k, i, tags);
    else
        keep_text(r, k, i, out, (size_t)len);
}

static bool contact_kept(const cd_sqlite__rows *r, int64_t id)
{
    for (size_t i = 0; i < r->n[T_CONTACT]; i++)
        if (r->contact[i].id == id)
            return true;
    return false;
}

static int rows_contact_put(cd_db *db, cd_contact *c, cd_err *err)
{
    sqlite_db *d = SDB(db);
    cd_sqlite__rows *r = d->rows;
    if (c->id != 0 || c->groups != NULL) { /* an update, or memberships: as it always was */
        if ((c->id == 0 || contact_kept(r, c->id)) && flush_table(d, T_CONTACT, err) != 0)
            return -1;
        bool insert = c->id == 0;
        if (r->orig->contact_put(db, c, err) != 0)
            return -1;
        if (insert && c->id >= r->next_contact_id)
            r->next_contact_id = c->id + 1;
        return 0;
    }
    if (r->n[T_CONTACT] == ROWS_CHUNK && flush_table(d, T_CONTACT, err) != 0)
        return -1;
    kept_contact *k = &r->contact[r->n[T_CONTACT]++];
    c->id = r->next_contact_id++;
    *k = (kept_contact){.id = c->id,
                        .account_id = c->account_id,
                        .created_ms = c->created_ms,
                        .updated_ms = c->updated_ms};
    const char *f[] = {c->first_name, c->last_name, c->email, c->birthday, c->zip, c->city};
    keep_text(r, k, 0, c->phone, strlen(c->phone));
    for (int i = 0; i < 6; i++)
        keep_text(r, k, 1 + i, f[i], f[i] ? strlen(f[i]) : 0);
    for (int i = 0; i < CD_CONTACT_PARAMS; i++)
        keep_text(r, k, 7 + i, c->params[i], c->params[i] ? strlen(c->params[i]) : 0);
    keep_json(r, k, 12, c->custom);
    keep_tags(r, k, 13, c->tags);
    return 0;
}

static int rows_consent_put(cd_db *db, int64_t account_id, int64_t contact_id, const cd_consent *c,
                            cd_err *err)
{
    sqlite_db *d = SDB(db);
    cd_sqlite__rows *r = d->rows;
    if (r->n[T_CONSENT] == ROWS_CHUNK && flush_table(d, T_CONSENT, err) != 0)
        return -1;
    r->consent[r->n[T_CONSENT]++] = (kept_consent){account_id, contact_id, *c};
    return 0;
}

static int rows_event_insert(cd_db *db, cd_event *e, cd_err *err)
{
    sqlite_db *d = SDB(db);
    cd_sqlite__rows *r = d->rows;
    if (r->n[T_EVENT] == ROWS_CHUNK && flush_table(d, T_EVENT, err) != 0)
        return -1;
    e->id = r->next_event_id++;
    r->event[r->n[T_EVENT]++] = *e;
    return 0;
}

/* ---- reads of the three tables: what is kept is written first ---- */

static int rows_contact_get(cd_db *db, int64_t a, int64_t id, cd_contact *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    if (contact_kept(d->rows, id) && flush_table(d, T_CONTACT, err) != 0)
        return -1;
    return d->rows->orig->contact_get(db, a, id, out, err);
}

static int rows_contact_by_phone(cd_db *db, int64_t a, const char *phone, cd_contact *out,
                                 cd_err *err)
{
    sqlite_db *d = SDB(db);
    if (flush_table(d, T_CONTACT, err) != 0)
        return -1;
    return d->rows->orig->contact_by_phone(db, a, phone, out, err);
}

static int rows_contact_id_by_phone(cd_db *db, int64_t a, const char *phone, int64_t *id,
                                    cd_err *err)
{
    sqlite_db *d = SDB(db);
    if (flush_table(d, T_CONTACT, err) != 0)
        return -1;
    return d->rows->orig->contact_id_by_phone(db, a, phone, id, err);
}

static int rows_contact_ids_by_phones(cd_db *db, int64_t a, const char *const *phones, size_t n,
                                      int64_t *ids, cd_err *err)
{
    sqlite_db *d = SDB(db);
    if (flush_table(d, T_CONTACT, err) != 0)
        return -1;
    return d->rows->orig->contact_ids_by_phones(db, a, phones, n, ids, err);
}

static int rows_consent_get(cd_db *db, int64_t a, int64_t contact_id, const char *scope,
                            cd_consent *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    cd_sqlite__rows *r = d->rows;
    for (size_t i = 0; i < r->n[T_CONSENT]; i++) {
        if (r->consent[i].contact_id == contact_id) {
            if (flush_table(d, T_CONSENT, err) != 0)
                return -1;
            break;
        }
    }
    return r->orig->consent_get(db, a, contact_id, scope, out, err);
}

/* The rest that read or change what may be kept: everything is written first. */
#define FLUSH_THEN(call)                                                                           \
    do {                                                                                           \
        if (flush_all(SDB(db), err) != 0)                                                          \
            return -1;                                                                             \
        return SDB(db)->rows->orig->call;                                                          \
    } while (0)

static int rows_consent_delete(cd_db *db, int64_t a, int64_t c, const char *scope, cd_err *err)
{
    FLUSH_THEN(consent_delete(db, a, c, scope, err));
}

static int rows_consent_list(cd_db *db, int64_t a, int64_t c, cd_consent_each_fn each, void *arg,
                             cd_err *err)
{
    FLUSH_THEN(consent_list(db, a, c, each, arg, err));
}

static int rows_event_last(cd_db *db, int64_t a, int64_t c, const char *scope, cd_event *out,
                           cd_err *err)
{
    FLUSH_THEN(event_last(db, a, c, scope, out, err));
}

static int rows_event_list(cd_db *db, int64_t a, const cd_event_filter *f, cd_event_each_fn each,
                           void *arg, cd_err *err)
{
    FLUSH_THEN(event_list(db, a, f, each, arg, err));
}

static int rows_event_scan(cd_db *db, int64_t a, cd_event_each_fn each, void *arg, cd_err *err)
{
    FLUSH_THEN(event_scan(db, a, each, arg, err));
}

static int rows_group_drop_opted_out(cd_db *db, int64_t a, int64_t g, int *count, cd_err *err)
{
    FLUSH_THEN(group_drop_opted_out(db, a, g, count, err));
}

static int rows_contact_list(cd_db *db, int64_t a, const cd_contact_filter *f,
                             cd_contact_each_fn each, void *arg, cd_err *err)
{
    FLUSH_THEN(contact_list(db, a, f, each, arg, err));
}

static struct cd_store_ops deferring;
static pthread_once_t deferring_once = PTHREAD_ONCE_INIT;

static void deferring_init(void)
{
    deferring = cd_store__sqlite_ops;
    deferring.contact_put = rows_contact_put;
    deferring.consent_put = rows_consent_put;
    deferring.event_insert = rows_event_insert;
    deferring.contact_get = rows_contact_get;
    deferring.contact_by_phone = rows_contact_by_phone;
    deferring.contact_id_by_phone = rows_contact_id_by_phone;
    deferring.contact_ids_by_phones = rows_contact_ids_by_phones;
    deferring.contact_list = rows_contact_list;
    deferring.consent_get = rows_consent_get;
    deferring.consent_delete = rows_consent_delete;
    deferring.consent_list = rows_consent_list;
    deferring.event_last = rows_event_last;
    deferring.event_list = rows_event_list;
    deferring.event_scan = rows_event_scan;
    deferring.group_drop_opted_out = rows_group_drop_opted_out;
}

/* The id SQLite would give the next row of a table: max(id) + 1. */
static int next_id(sqlite_db *d, int which, int64_t *out, cd_err *err)
{
    static const char *const sql[2] = {"SELECT coalesce(max(id), 0) FROM contacts",
                                       "SELECT coalesce(max(id), 0) FROM events"};
    sqlite3_stmt **s = &d->rows->max_id[which];
    if (*s == NULL &&
        sqlite3_prepare_v3(d->h, sql[which], -1, SQLITE_PREPARE_PERSISTENT, s, NULL) != SQLITE_OK)
        return cd_sqlite__fail(d, err, "rows next id");
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(*s, 0) + 1;
    else
        cd_sqlite__fail(d, err, "rows next id");
    sqlite3_reset(*s);
    return rc == SQLITE_ROW ? 0 : -1;
}

int cd_sqlite__rows_defer(cd_db *db, cd_err *err)
{
    sqlite_db *d = SDB(db);
    if (d->rows == NULL)
        d->rows = cd_xcalloc(1, sizeof *d->rows);
    cd_sqlite__rows *r = d->rows;
    if (r->orig != NULL)
        return cd_fail(err, CD_EINTERNAL, "", "rows deferred already");
    if (next_id(d, 0, &r->next_contact_id, err) != 0 || next_id(d, 1, &r->next_event_id, err) != 0)
        return -1;
    pthread_once(&deferring_once, deferring_init);
    r->orig = db->ops;
    db->ops = &deferring;
    return 0;
}

int cd_sqlite__rows_end(cd_db *db, bool write, cd_err *err)
{
    sqlite_db *d = SDB(db);
    cd_sqlite__rows *r = d->rows;
    if (r == NULL || r->orig == NULL)
        return 0;
    int rc = write ? flush_all(d, err) : 0;
    for (int t = 0; t < T_COUNT; t++)
        r->n[t] = 0;
    r->arena.len = 0;
    db->ops = r->orig;
    r->orig = NULL;
    return rc;
}
