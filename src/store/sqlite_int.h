/* store/sqlite_int.h -- what the two files of the SQLite backend share, and nobody else.
 *
 *   sqlite.c      connections and migrations; accounts, keys, contacts, groups and message
 *                 types, consents; the helpers below; the ops table;
 *   sqlite_ledger.c the ledger's events;
 *   sqlite_msg.c  the messaging tables: messages and their parts, unrouted inbound, flows,
 *                 senders, settings, idempotency;
 *   sqlite_rows.c an Octopush batch's new contacts, consents and events as multi-row INSERTs.
 *
 * Symbols shared between the two are named cd_sqlite__x; the small column and binding
 * helpers are static inline here so that a query reads the same in either file. */
#ifndef CD_STORE_SQLITE_INT_H
#define CD_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "util/xalloc.h"

/* Every statement, named so that finding its prepared form is an array index. */
enum q {
    Q_ACCOUNT_INSERT,
    Q_ACCOUNT_BY_ID,
    Q_ACCOUNT_BY_NAME,
    Q_ACCOUNT_BY_LOGIN,
    Q_ACCOUNT_BY_BRAND,
    Q_ACCOUNT_SET_HEAD,
    Q_ACCOUNT_SIGN_HEAD,
    Q_ACCOUNT_ALL,
    Q_KEY_INSERT,
    Q_KEY_GET,
    Q_KEY_AUTH,
    Q_KEY_REVOKE,
    Q_KEY_LIST,
    Q_CONTACT_GET,
    Q_CONTACT_BY_PHONE,
    Q_CONTACT_ID_BY_PHONE,
    Q_CONTACT_INSERT,
    Q_CONTACT_UPDATE,
    Q_CONTACT_LIST,
    Q_CONTACT_GROUPS,
    Q_CONTACT_GROUPS_CLEAR,
    Q_CONTACT_GROUPS_ADD,
    Q_GROUP_INSERT,
    Q_GROUP_GET,
    Q_GROUP_BY_NAME,
    Q_GROUP_LIST,
    Q_TYPE_INSERT,
    Q_TYPE_NEXT_ID,
    Q_TYPE_GET,
    Q_TYPE_BY_NAME,
    Q_TYPE_LIST,
    Q_CONSENT_GET,
    Q_CONSENT_PUT,
    Q_CONSENT_LIST,
    Q_CONSENT_DELETE,
    Q_EVENT_INSERT,
    Q_EVENT_LIST,
    Q_EVENT_SCAN,
    Q_MESSAGE_INSERT,
    Q_MESSAGE_GET,
    Q_MESSAGE_COUNT,
    Q_MESSAGE_LIST,
    Q_MESSAGE_LIST_TO,
    Q_MESSAGE_UPDATE,
    Q_MESSAGE_DUE,
    Q_MESSAGE_NEXT_DUE,
    Q_MESSAGE_CLAIM,
    Q_MESSAGE_REQUEUE,
    Q_MESSAGE_REFUSE_QUEUED,
    Q_MESSAGE_DUE_KW,
    Q_MESSAGE_DUE_NEXT_ACCOUNT,
    Q_MESSAGE_DUE_ACCOUNT,
    Q_MESSAGE_UNCLAIM,
    Q_MESSAGE_MARK_SENT,
    Q_UNROUTED_INSERT,
    Q_UNROUTED_LIST,
    Q_PART_INSERT,
    Q_PART_MESSAGE,
    Q_PART_STATUS,
    Q_PART_COUNTS,
    Q_FLOW_INSERT,
    Q_FLOW_UPDATE,
    Q_FLOW_GET,
    Q_FLOW_LIST,
    Q_FLOW_LIST_CONTACT,
    Q_FLOW_LIST_EXT_REF,
    Q_FLOW_EXPIRED,
    Q_SENDER_PUT,
    Q_SENDER_GET,
    Q_SENDER_DELETE,
    Q_SENDER_LIST,
    Q_SETTINGS_GET,
    Q_SETTINGS_PUT,
    Q_IDEM_GET,
    Q_IDEM_PUT,
    Q_IDEM_PURGE,
    /* ---- issue 15: the generic job queue (sqlite_jobs.c prepares these itself) ---- */
    Q_JOB_INSERT,
    Q_JOB_GET,
    Q_JOB_CLAIM,
    Q_JOB_DELETE,
    Q_JOB_RETRY,
    Q_JOB_DEAD,
    Q_JOB_REVIVE,
    Q_JOB_REQUEUE,
    Q_JOB_EXPIRED_ANY,
    Q_JOB_NEXT_DUE,
    Q_JOB_NEXT_DUE_ANY,
    /* ---- issue 15: webhooks (sqlite_webhook.c prepares these itself) ---- */
    Q_WH_ENDPOINT_INSERT,
    Q_WH_ENDPOINT_UPDATE,
    Q_WH_ENDPOINT_GET,
    Q_WH_ENDPOINT_LIST,
    Q_WH_ENDPOINT_DELETE,
    Q_WH_EVENT_INSERT,
    Q_WH_DELIVERY_INSERT,
    Q_WH_DELIVERY_UPDATE,
    Q_WH_DELIVERY_GET,
    Q_WH_DELIVERY_LIST,
    Q_WH_TARGET,
    Q_WH_ANY,
    /* ---- issue 14: profiles, leases, pool health (sqlite_pool.c prepares these) ---- */
    Q_POOL_PROFILE_PUT,
    Q_POOL_PROFILE_GET,
    Q_POOL_PROFILE_DELETE,
    Q_POOL_PROFILE_UNLEASE,
    Q_POOL_PROFILE_UNSTICK,
    Q_POOL_PROFILE_LIST,
    Q_POOL_SENDER_LEASE,
    Q_POOL_SENDER_UNSTICK,
    Q_POOL_SENDER_LEASES,
    Q_POOL_SENDER_USED,
    Q_POOL_RECEIPT_PRUNE,
    Q_POOL_RECEIPT_INSERT,
    Q_POOL_SENDER_HEALTH,
    Q_POOL_STICKY_GET,
    Q_POOL_STICKY_PUT,
    Q_POOL_JWT_PRUNE,
    Q_POOL_JWT_REVOKE,
    Q_POOL_JWT_REVOKED,
    Q_SUBMISSION_INSERT, /* issue 12 */
    Q_SUBMISSION_GET,
    Q_GROUP_DROP_OPTED_OUT,  /* issue 11 */
    Q_GROUP_ADD_MEMBERS,     /* issue 11 */
    Q_CONTACT_IDS_BY_PHONES, /* issue 11 */
    Q_EVENT_LAST,            /* issue 10 */
    Q_MESSAGE_QUEUED_ANY,    /* issue 12: before Q_MESSAGE_REFUSE_QUEUED */
    /* transaction control, run by the writer for every job and batch */
    Q_BEGIN,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_DATA_VERSION, /* the writer's cache: did another connection commit? */
    Q_COUNT
};

/* The SQL of each query lives in the file that runs it: sqlite.c's table, or this one from
 * sqlite_msg.c. Each leaves the other's entries NULL. */
extern const char *const cd_sqlite__msg_sql[Q_COUNT];

/* The writer connection's memory of rarely written per-account rows (sqlite_cache.c). A
 * slot holds one account; account ids are positive, so 0 marks an empty slot. */
#define CD_SQLITE__CACHE_SLOTS 16
typedef struct cd_sqlite__cache {
    bool on;              /* the writer's connection only */
    int64_t data_version; /* at the last BEGIN; -1 = unknown */
    bool committed;       /* the last transaction ended in a COMMIT */
    int64_t settings_account[CD_SQLITE__CACHE_SLOTS];
    json_t *settings[CD_SQLITE__CACHE_SLOTS];
    int64_t listening_account[CD_SQLITE__CACHE_SLOTS];
    bool listening[CD_SQLITE__CACHE_SLOTS];
    int64_t no_profiles_account[CD_SQLITE__CACHE_SLOTS]; /* an account without profiles */
} cd_sqlite__cache;

typedef struct cd_sqlite__rows cd_sqlite__rows; /* sqlite_rows.c */

typedef struct sqlite_db {
    struct cd_db base; /* first: a cd_db * is a sqlite_db * */
    sqlite3 *h;
    sqlite3_stmt *st[Q_COUNT]; /* prepared on first use, finalized by disconnect */
    cd_sqlite__cache cache;
    struct cd_sqlite_sync *sync; /* the writer's, when its commits are synced off-thread */
    cd_sqlite__rows *rows;       /* issue 11: rows kept for multi-row INSERTs; NULL until used */
    unsigned wrote;              /* CD_STORE_WROTE_* seen by the update hook (sqlite_cache.c) */
} sqlite_db;

static inline sqlite_db *SDB(cd_db *db)
{
    return (sqlite_db *)db;
}

/* Readies a statement for its next use. */
static inline void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* NULL binds SQL NULL. The text is borrowed until the statement is reset. */
static inline void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static inline void bind_json(sqlite3_stmt *s, int i, const json_t *v)
{
    if (v) {
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        sqlite3_bind_text(s, i, txt, -1, free);
    } else {
        sqlite3_bind_null(s, i);
    }
}

/* Column i as text into out[n]; NULL reads as "". */
static inline void col_copy(sqlite3_stmt *s, int i, char *out, size_t n)
{
    /* what snprintf(out, n, "%s", t) leaves, without its cost (rows are read on the writer) */
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t len = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    if (n == 0)
        return;
    if (len > n - 1)
        len = n - 1;
    if (len)
        memcpy(out, t, len);
    out[len] = '\0';
}

/* Column i as a string the caller owns (free()); NULL stays NULL. */
static inline char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? cd_xstrdup((const char *)t) : NULL;
}

/* Column i parsed as JSON: a new reference, or NULL for SQL NULL or text that does not
 * parse. */
static inline json_t *col_json(sqlite3_stmt *s, int i)
{
    const void *t = sqlite3_column_text(s, i);
    if (t == NULL)
        return NULL;
    return json_loadb(t, (size_t)sqlite3_column_bytes(s, i), JSON_DECODE_ANY, NULL);
}

/* Turns the connection's last error into a cd_err and returns -1: a constraint is
 * CD_ECONFLICT ("<what>: already exists"), anything else CD_ESTORE. The SQLite text goes to
 * the log under `what`, never to the client: it may name tables and values. */
int cd_sqlite__fail(sqlite_db *d, cd_err *err, const char *what);
/* The prepared statement for q (borrowed from d, reset and unbound); NULL with *err when it
 * does not prepare. */
sqlite3_stmt *cd_sqlite__stmt(sqlite_db *d, enum q q, cd_err *err);
/* The same for a file that keeps its own statements (sqlite_jobs.c, sqlite_pool.c,
 * sqlite_webhook.c): sql is that file's text for slot q, prepared into d's cache once. */
sqlite3_stmt *cd_sqlite__prepared(sqlite_db *d, enum q q, const char *sql, cd_err *err);
/* Runs a statement that returns no rows, and resets it. */
int cd_sqlite__step_done(sqlite_db *d, sqlite3_stmt *s, cd_err *err, const char *what);

/* One kind of row: how to read it, and what to say when it is not there. */
typedef struct cd_sqlite__row {
    void (*read)(sqlite3_stmt *s, void *out); /* fills *out from the current row */
    const char *what;                         /* names the query in the log on an error */
    const char *field, *missing;              /* CD_ENOTFOUND's field and message */
} cd_sqlite__row;

/* Steps s once and reads its row into out with row->read. No row is CD_ENOTFOUND with
 * row->field and row->missing; an SQLite error is cd_sqlite__fail(row->what). s is reset on
 * every path. */
int cd_sqlite__one(sqlite_db *d, sqlite3_stmt *s, const cd_sqlite__row *row, void *out,
                   cd_err *err);

/* Calls each(s, arg) for every row of s, on the current row. It returns 0 to go on, > 0 to
 * stop (a success), < 0 to stop with an error it has put in err (or not: a callback of the
 * store's caller may fail without one). Returns 0, -1 for that error or an SQLite one
 * (cd_sqlite__fail(what)). s is reset on every path. */
int cd_sqlite__each(sqlite_db *d, sqlite3_stmt *s, int (*each)(sqlite3_stmt *s, void *arg),
                    void *arg, const char *what, cd_err *err);

/* sqlite_lists.c (issue 11): store_int.h documents each. */
int cd_sqlite__group_drop_opted_out(cd_db *db, int64_t account_id, int64_t group_id, int *count,
                                    cd_err *err);
int cd_sqlite__group_add_members(cd_db *db, int64_t account_id, int64_t group_id,
                                 const int64_t *contact_ids, size_t n, cd_err *err);
int cd_sqlite__contact_ids_by_phones(cd_db *db, int64_t account_id, const char *const *phones,
                                     size_t n, int64_t *ids, cd_err *err);

/* sqlite_rows.c (issue 11): the ops rows_defer and rows_end, and what disconnect frees. */
int cd_sqlite__rows_defer(cd_db *db, cd_err *err);
int cd_sqlite__rows_end(cd_db *db, bool write, cd_err *err);
void cd_sqlite__rows_free(sqlite_db *d);

/* sqlite_msg.c: the messaging half of cd_store__sqlite_ops (store_int.h documents each). */
int cd_sqlite__event_insert(cd_db *db, cd_event *e, cd_err *err);
/* Binds every column of an event but its id, account_id first, from parameter p on (21). */
void cd_sqlite__bind_event(sqlite3_stmt *s, int p, const cd_event *e);
/* An array of plain strings (tags, scopes) as stored, without jansson (sqlite.c): the
 * length written into out, or -1 when json_dumps must write it. */
int cd_sqlite__string_array_text(const json_t *tags, char *out, size_t cap);
/* Binds v at i as bind_json would, through cd_sqlite__string_array_text when it can. */
void cd_sqlite__bind_strings(sqlite3_stmt *s, int i, const json_t *v);
int cd_sqlite__event_list(cd_db *db, int64_t account_id, const cd_event_filter *f,
                          cd_event_each_fn each, void *arg, cd_err *err);
int cd_sqlite__event_scan(cd_db *db, int64_t account_id, cd_event_each_fn each, void *arg,
                          cd_err *err);
int cd_sqlite__event_last(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                          cd_event *out, cd_err *err);
int cd_sqlite__message_insert(cd_db *db, const cd_message *m, cd_err *err);
int cd_sqlite__message_count(cd_db *db, int64_t account_id, const char *to, const char *kind,
                             const char *action, int64_t since_ms, int *out, cd_err *err);
int cd_sqlite__message_update(cd_db *db, const cd_message *m, cd_err *err);
int cd_sqlite__message_due(cd_db *db, int64_t now_ms, int limit, cd_message_each_fn each, void *arg,
                           cd_err *err);
int cd_sqlite__message_next_due(cd_db *db, int64_t *out_ms, cd_err *err);
int cd_sqlite__message_requeue_sending(cd_db *db, int64_t now_ms, int *count, cd_err *err);
int cd_sqlite__message_claim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                             bool *claimed, cd_err *err);
int cd_sqlite__message_refuse_queued(cd_db *db, int64_t account_id, int64_t contact_id,
                                     const char *scope, int64_t now_ms, const char *reason,
                                     int *count, cd_err *err);
int cd_sqlite__message_mark_sent(cd_db *db, int64_t account_id, const char *id,
                                 const char *transport, const char *transport_id, int64_t now_ms,
                                 cd_err *err);
int cd_sqlite__message_unclaim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                               cd_err *err);
int cd_sqlite__message_due_fair(cd_db *db, int64_t now_ms, int limit, const cd_due_filter *f,
                                cd_message_each_fn each, void *arg, cd_err *err);
int cd_sqlite__unrouted_insert(cd_db *db, cd_unrouted *u, cd_err *err);
int cd_sqlite__unrouted_list(cd_db *db, int limit, cd_unrouted_each_fn each, void *arg,
                             cd_err *err);
int cd_sqlite__part_insert(cd_db *db, const char *transport, const char *remote_id,
                           int64_t account_id, const char *message_id, cd_err *err);
int cd_sqlite__part_status(cd_db *db, const char *transport, const char *remote_id,
                           const char *status, int64_t account_id, const char *message_id,
                           int counts[3], cd_err *err);
int cd_sqlite__part_message(cd_db *db, const char *transport, const char *remote_id,
                            cd_message *out, cd_err *err);
int cd_sqlite__message_get(cd_db *db, int64_t account_id, const char *id, cd_message *out,
                           cd_err *err);
int cd_sqlite__message_list(cd_db *db, int64_t account_id, const cd_message_filter *f,
                            cd_message_each_fn each, void *arg, cd_err *err);
int cd_sqlite__flow_insert(cd_db *db, const cd_flow *f, cd_err *err);
int cd_sqlite__flow_update(cd_db *db, const cd_flow *f, cd_err *err);
int cd_sqlite__flow_get(cd_db *db, int64_t account_id, const char *id, cd_flow *out, cd_err *err);
int cd_sqlite__flow_list(cd_db *db, int64_t account_id, const cd_flow_filter *f,
                         cd_flow_each_fn each, void *arg, cd_err *err);
int cd_sqlite__flow_expired(cd_db *db, int64_t now_ms, int limit, cd_flow_each_fn each, void *arg,
                            cd_err *err);
int cd_sqlite__sender_put(cd_db *db, const cd_sender *o, cd_err *err);
int cd_sqlite__sender_get(cd_db *db, const char *number, cd_sender *out, cd_err *err);
int cd_sqlite__sender_delete(cd_db *db, int64_t account_id, const char *number, cd_err *err);
int cd_sqlite__sender_list(cd_db *db, int64_t account_id, cd_sender_each_fn each, void *arg,
                           cd_err *err);
int cd_sqlite__settings_get(cd_db *db, int64_t account_id, json_t **out, cd_err *err);
int cd_sqlite__settings_put(cd_db *db, int64_t account_id, const json_t *settings, cd_err *err);
int cd_sqlite__settings_read(cd_db *db, int64_t account_id, json_t **out, cd_err *err);
int cd_sqlite__idem_get(cd_db *db, int64_t account_id, const char *key, cd_idem *out, cd_err *err);
int cd_sqlite__idem_put(cd_db *db, int64_t account_id, const char *key, const cd_idem *in,
                        cd_err *err);
int cd_sqlite__idem_purge(cd_db *db, int64_t before_ms, int limit, int *count, cd_err *err);
/* issue 12: Omeda opt queue submissions */
int cd_sqlite__submission_insert(cd_db *db, const cd_submission *sub, cd_err *err);
int cd_sqlite__submission_get(cd_db *db, int64_t account_id, const char *uuid, cd_submission *out,
                              cd_err *err);

/* ---- issue 15: sqlite_jobs.c, the job queue's half of cd_store__sqlite_ops ---- */
int cd_sqlite__job_enqueue(cd_db *db, cd_job *j, cd_err *err);
int cd_sqlite__job_get(cd_db *db, int64_t id, cd_job *out, cd_err *err);
int cd_sqlite__job_claim(cd_db *db, const char *kind, int64_t now_ms, int64_t lease_ms, int limit,
                         cd_job_each_fn each, void *arg, cd_err *err);
int cd_sqlite__job_complete(cd_db *db, int64_t id, cd_err *err);
int cd_sqlite__job_retry(cd_db *db, int64_t id, int64_t due_ms, const char *error, int64_t now_ms,
                         cd_err *err);
int cd_sqlite__job_dead(cd_db *db, int64_t id, const char *error, int64_t now_ms, cd_err *err);
int cd_sqlite__job_revive(cd_db *db, int64_t id, int64_t due_ms, cd_err *err);
int cd_sqlite__job_expired_any(cd_db *db, int64_t lease_before_ms, bool *any, cd_err *err);
int cd_sqlite__job_requeue(cd_db *db, int64_t lease_before_ms, int64_t now_ms, int *count,
                           cd_err *err);
int cd_sqlite__job_next_due(cd_db *db, const char *kind, int64_t *out_ms, cd_err *err);
int cd_sqlite__job_delete(cd_db *db, int64_t id, cd_err *err);

/* ---- issue 15: sqlite_webhook.c, the webhook tables ---- */
int cd_sqlite__webhook_endpoint_put(cd_db *db, const cd_webhook_endpoint *e, cd_err *err);
int cd_sqlite__webhook_endpoint_get(cd_db *db, int64_t account_id, const char *id,
                                    cd_webhook_endpoint *out, cd_err *err);
int cd_sqlite__webhook_any(cd_db *db, int64_t account_id, bool *any, cd_err *err);
int cd_sqlite__webhook_endpoint_list(cd_db *db, int64_t account_id,
                                     cd_webhook_endpoint_each_fn each, void *arg, cd_err *err);
int cd_sqlite__webhook_endpoint_delete(cd_db *db, int64_t account_id, const char *id,
                                       int64_t now_ms, cd_err *err);
int cd_sqlite__webhook_event_insert(cd_db *db, const cd_webhook_event *ev, cd_err *err);
int cd_sqlite__webhook_delivery_insert(cd_db *db, cd_webhook_delivery *d, cd_err *err);
int cd_sqlite__webhook_delivery_update(cd_db *db, const cd_webhook_delivery *d, cd_err *err);
int cd_sqlite__webhook_delivery_get(cd_db *db, int64_t account_id, int64_t id,
                                    cd_webhook_delivery *out, cd_err *err);
int cd_sqlite__webhook_delivery_list(cd_db *db, int64_t account_id,
                                     const cd_webhook_delivery_filter *f,
                                     cd_webhook_delivery_each_fn each, void *arg, cd_err *err);
int cd_sqlite__webhook_target(cd_db *db, int64_t delivery_id, cd_webhook_target *out, cd_err *err);
/* ---- issue 14: sqlite_pool.c, Opentact profiles, leases, pool health, revoked JWTs ---- */
void cd_sqlite__read_sender(sqlite3_stmt *s, void *out); /* SENDER_COLS, in order */
#define CD_SQLITE_SENDER_COLS                                                                      \
    "number, account_id, transport, is_default, created_ms, type, profile, lease_uuid, "           \
    "leased_ms, last_used_ms"
int cd_sqlite__profile_put(cd_db *db, const cd_profile *p, cd_err *err);
int cd_sqlite__profile_get(cd_db *db, int64_t account_id, const char *uuid, cd_profile *out,
                           cd_err *err);
int cd_sqlite__profile_delete(cd_db *db, int64_t account_id, const char *uuid, cd_err *err);
int cd_sqlite__profile_list(cd_db *db, int64_t account_id, cd_profile_each_fn each, void *arg,
                            cd_err *err);
int cd_sqlite__sender_lease(cd_db *db, int64_t account_id, const char *number, const char *profile,
                            const char *lease_uuid, int64_t now_ms, cd_err *err);
int cd_sqlite__sender_leases(cd_db *db, int64_t account_id, const char *profile,
                             cd_sender_each_fn each, void *arg, cd_err *err);
int cd_sqlite__sender_used(cd_db *db, int64_t account_id, const char *number, int64_t now_ms,
                           cd_err *err);
int cd_sqlite__sender_receipt(cd_db *db, int64_t account_id, const char *number, const char *status,
                              int64_t at_ms, int64_t keep_since_ms, cd_err *err);
int cd_sqlite__sender_health(cd_db *db, int64_t account_id, const char *number, int64_t since_ms,
                             int counts[3], cd_err *err);
int cd_sqlite__sticky_get(cd_db *db, int64_t account_id, const char *profile, const char *to,
                          int64_t now_ms, char number[24], cd_err *err);
int cd_sqlite__sticky_put(cd_db *db, int64_t account_id, const char *profile, const char *to,
                          const char *number, int64_t until_ms, cd_err *err);
int cd_sqlite__jwt_revoke(cd_db *db, int64_t account_id, const char *jti, int64_t exp_ms,
                          int64_t now_ms, cd_err *err);
int cd_sqlite__jwt_revoked(cd_db *db, const char *jti, bool *revoked, cd_err *err);

/* ---- sqlite_files.c ---- */
void cd_sqlite__create_private(const char *path);        /* before the writer opens it */
int cd_sqlite__serve_lock(const char *url, cd_err *err); /* the ops' serve_lock */
void cd_sqlite__serve_notify(const char *url);           /* the ops' serve_notify */

/* ---- sqlite_cache.c: the writer's per-account cache ---- */
void cd_sqlite__cache_start(sqlite_db *d); /* on the writer's connection, once */
void cd_sqlite__cache_stop(sqlite_db *d);
void cd_sqlite__cache_clear(sqlite_db *d); /* after any rollback */
void cd_sqlite__cache_began(sqlite_db *d); /* after each BEGIN */
/* A copy of the account's settings (the caller owns it), or NULL when not remembered. */
json_t *cd_sqlite__cache_settings(sqlite_db *d, int64_t account_id);
void cd_sqlite__cache_settings_put(sqlite_db *d, int64_t account_id, const json_t *settings);
/* The remembered settings themselves (a new reference, never to be changed), or NULL. */
json_t *cd_sqlite__cache_settings_shared(sqlite_db *d, int64_t account_id);
/* 1 or 0 when remembered, -1 when not. */
int cd_sqlite__cache_listening(sqlite_db *d, int64_t account_id);
void cd_sqlite__cache_listening_put(sqlite_db *d, int64_t account_id, bool any);
/* Whether the account is known to have no messaging profile; what profile_list learnt. */
bool cd_sqlite__cache_no_profiles(sqlite_db *d, int64_t account_id);
void cd_sqlite__cache_no_profiles_put(sqlite_db *d, int64_t account_id);
/* The ops' wrote: what the update hook saw since the last call. */
unsigned cd_sqlite__wrote(cd_db *db);

/* ---- sqlite_walbuf.c ---- */
/* Registers (once; call under sq_connect's pthread_once) and names the VFS the writer's
 * connection opens with: the default one, with each commit's WAL writes gathered. */
const char *cd_sqlite__walbuf_vfs(void);
/* While on, this thread's syncs of a WAL file that was synced before only write it out:
 * the syncer (sqlite_sync.c) syncs it later. */
void cd_sqlite__walbuf_defer(bool on);

/* ---- sqlite_sync.c: the writer's commits made durable by the store's syncer thread ---- */
typedef struct cd_sqlite_sync cd_sqlite_sync;
cd_sqlite_sync *cd_sqlite__sync_start(sqlite_db *d); /* NULL: sync at COMMIT */
void cd_sqlite__sync_stop(sqlite_db *d);
int cd_sqlite__commit_nosync(sqlite_db *d, int (*exec)(cd_db *, const char *, cd_err *),
                             cd_err *err);
int cd_sqlite__sync_now(cd_sqlite_sync *s, cd_err *err); /* syncer thread */
void cd_sqlite__sync_idle(cd_sqlite_sync *s);            /* syncer thread */
uint64_t cd_sqlite__sync_count(void);  /* tests: WAL syncs completed in this process */
void cd_sqlite__sync_fail_next(void);  /* tests: the next sync fails */
void cd_sqlite__ckpt_step(int frames); /* tests: stores opened after use this step, 0 resets */

#endif
