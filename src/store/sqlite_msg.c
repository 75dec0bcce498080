/* store/sqlite_msg.c -- the SQLite backend's messaging tables: messages and their parts (the
 * outbox), unrouted inbound messages, flows, senders, per-account settings and idempotency
 * keys. store/sqlite_int.h has the helpers and the statement cache this shares with sqlite.c. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

#define MESSAGE_COLS                                                                               \
    "seq, id, account_id, to_phone, from_phone, text, kind, scope, status, reason, parts, "        \
    "transport, transport_id, history, created_ms, updated_ms, direction, contact_id, "            \
    "attempts, next_attempt_ms, provider_id, flow_id, category, action"
/* The fair due scan's columns: the same, without the history, which the delivery worker
 * never looks at and which cost it a JSON parse per message claimed (issue 16). */
#define MESSAGE_DUE_COLS                                                                           \
    "seq, id, account_id, to_phone, from_phone, text, kind, scope, status, reason, parts, "        \
    "transport, transport_id, NULL, created_ms, updated_ms, direction, contact_id, "               \
    "attempts, next_attempt_ms, provider_id, flow_id, category, action"
#define FLOW_COLS                                                                                  \
    "rowid, id, account_id, contact_id, phone, ext_ref, scopes, channel, email, disclosure, "      \
    "status, confirmed_via, created_ms, updated_ms, expires_ms, confirm_text"

const char *const cd_sqlite__msg_sql[Q_COUNT] = {
    [Q_MESSAGE_INSERT] = "INSERT INTO messages (id, account_id, to_phone, from_phone, text, "
                         "kind, scope, status, reason, parts, transport, transport_id, history, "
                         "created_ms, updated_ms, direction, contact_id, attempts, "
                         "next_attempt_ms, provider_id, flow_id, category, action) VALUES (?1, "
                         "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                         "?18, ?19, ?20, ?21, ?22, ?23)",
    [Q_MESSAGE_UPDATE] = "UPDATE messages SET status = ?8, reason = ?9, transport = ?11, "
                         "transport_id = ?12, history = ?13, updated_ms = ?15, attempts = ?18, "
                         "next_attempt_ms = ?19, from_phone = ?4 WHERE account_id = ?2 AND id = ?1",
    [Q_MESSAGE_DUE] = "SELECT " MESSAGE_COLS " FROM messages WHERE status = 'queued' AND "
                      "next_attempt_ms <= ? ORDER BY next_attempt_ms, seq LIMIT ?",
    [Q_MESSAGE_NEXT_DUE] = "SELECT min(next_attempt_ms) FROM messages WHERE status = 'queued'",
    [Q_MESSAGE_CLAIM] = "UPDATE messages SET status = 'sending', attempts = attempts + 1, "
                        "updated_ms = ? WHERE account_id = ? AND id = ? AND status = 'queued'",
    [Q_MESSAGE_REQUEUE] = "UPDATE messages SET status = 'queued', next_attempt_ms = ? "
                          "WHERE status = 'sending'",
    /* json_insert appends the history entry in place; a keyword reply is never refused. */
    [Q_MESSAGE_REFUSE_QUEUED] =
        "UPDATE messages SET status = 'refused', reason = ?5, updated_ms = ?4, history = "
        "json_insert(CASE WHEN json_valid(history) THEN history ELSE '[]' END, '$[#]', "
        "json_object('status', 'refused', 'at', ?6, 'detail', ?5)) WHERE account_id = ?1 AND "
        "contact_id = ?2 AND status = 'queued' AND direction = 'out' AND kind <> "
        "'keyword_reply' AND (?3 IS NULL OR scope = ?3)",
    /* issue 12: the UPDATE above changes the column its index filters on, so SQLite runs it
     * in two passes through an ephemeral table even when it matches nothing (most opt-outs);
     * this probe of the same index decides whether it runs at all. */
    [Q_MESSAGE_QUEUED_ANY] = "SELECT 1 FROM messages INDEXED BY messages_queued_contact WHERE "
                             "account_id = ?1 AND contact_id = ?2 AND status = 'queued' LIMIT 1",
/* Rank within each account, then keyword replies first and rank by rank: one message of
 * every account before a second of any. */
/* Fair claiming is three index range scans, so that a round costs what it claims and
 * not the size of the queue (a window function over every queued row made a 20k
 * backlog drain 2-3x slower): keyword replies of every account, the next account with
 * a due message (a skip-scan over messages_due_account), and an account's oldest. */
#define DUE_TRANSPORT_OK "(CASE transport WHEN '' THEN ?3 ELSE transport END) NOT IN (?4, ?5, ?6)"
    [Q_MESSAGE_DUE_KW] = "SELECT " MESSAGE_DUE_COLS " FROM messages WHERE status = 'queued' AND "
                         "kind = 'keyword_reply' AND next_attempt_ms <= ?1 AND " DUE_TRANSPORT_OK
                         " ORDER BY next_attempt_ms, seq LIMIT ?2",
    /* INDEXED BY: messages_queued_contact also starts with account_id, and the planner,
     * without statistics, would pick it and read every row it passes (0015). */
    [Q_MESSAGE_DUE_NEXT_ACCOUNT] = "SELECT account_id FROM messages INDEXED BY "
                                   "messages_queued_account WHERE status = 'queued' AND "
                                   "account_id > ?1 AND next_attempt_ms <= ?2 ORDER BY account_id "
                                   "LIMIT 1",
    [Q_MESSAGE_DUE_ACCOUNT] =
        "SELECT " MESSAGE_DUE_COLS " FROM messages WHERE status = 'queued' AND "
        "account_id = ?7 AND next_attempt_ms <= ?1 AND kind <> "
        "'keyword_reply' AND " DUE_TRANSPORT_OK " ORDER BY next_attempt_ms, seq LIMIT ?2",
    [Q_MESSAGE_UNCLAIM] =
        "UPDATE messages SET status = 'queued', attempts = max(attempts - 1, 0), "
        "updated_ms = ?3 WHERE account_id = ?1 AND id = ?2 AND status = 'sending'",
    /* The entry is appended to the history as text when it is, as always, a compact array of
     * objects: what json_insert() writes, without parsing it twice (json_valid, then
     * json_insert); anything else still goes through them (issue 10 benchmark). */
    [Q_MESSAGE_MARK_SENT] =
        "UPDATE messages SET status = 'sent', transport = ?3, transport_id = ?4, updated_ms = ?5, "
        "history = CASE WHEN history LIKE '[{%}]' THEN substr(history, 1, length(history) - 1) "
        "|| ',' || json_object('status', 'sent', 'at', ?6, 'detail', ?7) || ']' ELSE "
        "json_insert(CASE WHEN json_valid(history) THEN history ELSE '[]' END, '$[#]', "
        "json_object('status', 'sent', 'at', ?6, 'detail', ?7)) END "
        "WHERE account_id = ?1 AND id = ?2",
    [Q_UNROUTED_INSERT] = "INSERT INTO unrouted_inbound (from_phone, to_phone, text, "
                          "provider_id, transport, received_ms) VALUES (?, ?, ?, ?, ?, ?)",
    [Q_UNROUTED_LIST] = "SELECT id, from_phone, to_phone, text, provider_id, transport, "
                        "received_ms FROM unrouted_inbound ORDER BY id DESC LIMIT ?",
    [Q_PART_INSERT] = "INSERT OR REPLACE INTO message_parts (transport, remote_id, account_id, "
                      "message_id) VALUES (?, ?, ?, ?)",
    [Q_PART_MESSAGE] = "SELECT " MESSAGE_COLS " FROM messages WHERE account_id = ?3 AND id = "
                       "(SELECT message_id FROM message_parts WHERE transport = ?1 AND "
                       "remote_id = ?2)",
    [Q_PART_STATUS] = "UPDATE message_parts SET status = ? WHERE transport = ? AND remote_id = ?",
    [Q_PART_COUNTS] = "SELECT count(*), coalesce(sum(status = 'delivered'), 0), "
                      "coalesce(sum(status <> '' AND status <> 'delivered'), 0) "
                      "FROM message_parts WHERE account_id = ? AND message_id = ?",
    [Q_FLOW_INSERT] =
        "INSERT INTO flows (id, account_id, contact_id, phone, ext_ref, scopes, "
        "channel, email, disclosure, status, confirmed_via, created_ms, "
        "updated_ms, expires_ms, confirm_text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
        "?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [Q_FLOW_UPDATE] = "UPDATE flows SET status = ?10, confirmed_via = ?11, updated_ms = ?13 "
                      "WHERE account_id = ?2 AND id = ?1",
    [Q_FLOW_GET] = "SELECT " FLOW_COLS " FROM flows WHERE account_id = ? AND id = ?",
    [Q_FLOW_LIST] = "SELECT " FLOW_COLS " FROM flows WHERE account_id = ?1 AND rowid > ?2 "
                    "AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR ext_ref = ?4) "
                    "AND (?5 = 0 OR contact_id = ?5) ORDER BY rowid LIMIT ?6",
    /* The same filter when the contact or the ext_ref is known: the OR above keeps SQLite
     * from using their indexes, and these two run on every opt-out and CURSOR call. */
    [Q_FLOW_LIST_CONTACT] = "SELECT " FLOW_COLS " FROM flows WHERE account_id = ?1 AND "
                            "contact_id = ?5 AND rowid > ?2 AND (?3 IS NULL OR status = ?3) "
                            "AND (?4 IS NULL OR ext_ref = ?4) ORDER BY rowid LIMIT ?6",
    /* ext_ref <> '': the index is partial (0017); an empty ext_ref takes Q_FLOW_LIST. */
    [Q_FLOW_LIST_EXT_REF] = "SELECT " FLOW_COLS " FROM flows WHERE account_id = ?1 AND "
                            "ext_ref = ?4 AND ext_ref <> '' AND rowid > ?2 "
                            "AND (?3 IS NULL OR status = ?3) "
                            "AND (?5 = 0 OR contact_id = ?5) ORDER BY rowid LIMIT ?6",
    [Q_FLOW_EXPIRED] = "SELECT " FLOW_COLS " FROM flows WHERE status = 'pending' AND "
                       "expires_ms <= ? ORDER BY expires_ms LIMIT ?",
    [Q_SENDER_PUT] = "INSERT INTO senders (number, account_id, transport, is_default, "
                     "created_ms, type) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (number) DO "
                     "UPDATE SET transport = excluded.transport, is_default = "
                     "excluded.is_default, type = excluded.type "
                     "WHERE senders.account_id = excluded.account_id",
    [Q_SENDER_GET] = "SELECT " CD_SQLITE_SENDER_COLS " FROM senders WHERE number = ?",
    [Q_SENDER_DELETE] = "DELETE FROM senders WHERE account_id = ? AND number = ?",
    [Q_SENDER_LIST] = "SELECT " CD_SQLITE_SENDER_COLS " FROM senders WHERE account_id = ? "
                      "ORDER BY number",
    [Q_SETTINGS_GET] = "SELECT settings FROM accounts WHERE id = ?",
    [Q_SETTINGS_PUT] = "UPDATE accounts SET settings = ? WHERE id = ?",
    [Q_MESSAGE_GET] = "SELECT " MESSAGE_COLS " FROM messages WHERE account_id = ? AND id = ?",
    [Q_MESSAGE_COUNT] = "SELECT count(*) FROM messages WHERE account_id = ?1 AND to_phone = ?2 "
                        "AND kind = ?3 AND action = ?4 AND created_ms >= ?5 "
                        "AND status != 'refused'",
    [Q_MESSAGE_LIST] = "SELECT " MESSAGE_COLS " FROM messages WHERE account_id = ?1 "
                       "AND (?2 = 0 OR seq < ?2) AND (?3 IS NULL OR to_phone = ?3) "
                       "AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR kind = ?5) "
                       "ORDER BY seq DESC LIMIT ?6",
    /* The same filter for one number (an opt-out lists the contact's queued messages):
     * served by messages_exempt (account_id, to_phone, ...), not a scan of the account; the
     * planner, left alone, walked messages_account to spare the sort. */
    [Q_MESSAGE_LIST_TO] = "SELECT " MESSAGE_COLS " FROM messages INDEXED BY messages_exempt "
                          "WHERE account_id = ?1 "
                          "AND to_phone = ?3 AND (?2 = 0 OR seq < ?2) "
                          "AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR kind = ?5) "
                          "ORDER BY seq DESC LIMIT ?6",
    [Q_IDEM_GET] = "SELECT request_hash, status, body, created_ms FROM idempotency "
                   "WHERE account_id = ? AND key = ?",
    [Q_IDEM_PUT] = "INSERT INTO idempotency (account_id, key, request_hash, status, body, "
                   "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
    [Q_IDEM_PURGE] = "DELETE FROM idempotency WHERE (account_id, key) IN (SELECT account_id, "
                     "key FROM idempotency WHERE created_ms < ? ORDER BY created_ms LIMIT ?)",
    /* issue 12 */
    [Q_SUBMISSION_INSERT] = "INSERT INTO submissions (account_id, uuid, site, session, phone, "
                            "status, detail, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    [Q_SUBMISSION_GET] = "SELECT uuid, account_id, site, session, phone, status, detail, "
                         "created_ms FROM submissions WHERE account_id = ? AND uuid = ?",
};

/* ---- outbox ---- */

static void read_message(sqlite3_stmt *s, void *out)
{
    cd_message *m = out;
    memset(m, 0, sizeof *m);
    col_copy(s, 1, m->id, sizeof m->id);
    m->account_id = sqlite3_column_int64(s, 2);
    col_copy(s, 3, m->to, sizeof m->to);
    col_copy(s, 4, m->from, sizeof m->from);
    m->text = col_dup(s, 5);
    col_copy(s, 6, m->kind, sizeof m->kind);
    col_copy(s, 7, m->scope, sizeof m->scope);
    col_copy(s, 8, m->status, sizeof m->status);
    col_copy(s, 9, m->reason, sizeof m->reason);
    m->parts = sqlite3_column_int(s, 10);
    col_copy(s, 11, m->transport, sizeof m->transport);
    col_copy(s, 12, m->transport_id, sizeof m->transport_id);
    m->history = col_json(s, 13);
    m->created_ms = sqlite3_column_int64(s, 14);
    m->updated_ms = sqlite3_column_int64(s, 15);
    col_copy(s, 16, m->direction, sizeof m->direction);
    m->contact_id = sqlite3_column_int64(s, 17);
    m->attempts = sqlite3_column_int(s, 18);
    m->next_attempt_ms = sqlite3_column_int64(s, 19);
    col_copy(s, 20, m->provider_id, sizeof m->provider_id);
    col_copy(s, 21, m->flow_id, sizeof m->flow_id);
    col_copy(s, 22, m->category, sizeof m->category);
    col_copy(s, 23, m->action, sizeof m->action);
}

/* Binds every column of a message at the positions Q_MESSAGE_INSERT and Q_MESSAGE_UPDATE
 * share (?1 .. ?22). */
static void bind_message(sqlite3_stmt *s, const cd_message *m)
{
    bind_text(s, 1, m->id);
    sqlite3_bind_int64(s, 2, m->account_id);
    bind_text(s, 3, m->to);
    bind_text(s, 4, m->from);
    bind_text(s, 5, m->text ? m->text : "");
    bind_text(s, 6, m->kind);
    bind_text(s, 7, m->scope);
    bind_text(s, 8, m->status);
    bind_text(s, 9, m->reason);
    sqlite3_bind_int(s, 10, m->parts);
    bind_text(s, 11, m->transport);
    bind_text(s, 12, m->transport_id);
    if (m->history)
        bind_json(s, 13, m->history);
    else
        bind_text(s, 13, m->history_json ? m->history_json : "[]");
    sqlite3_bind_int64(s, 14, m->created_ms);
    sqlite3_bind_int64(s, 15, m->updated_ms);
    bind_text(s, 16, m->direction[0] ? m->direction : "out");
    sqlite3_bind_int64(s, 17, m->contact_id);
    sqlite3_bind_int(s, 18, m->attempts);
    sqlite3_bind_int64(s, 19, m->next_attempt_ms);
    bind_text(s, 20, m->provider_id);
    bind_text(s, 21, m->flow_id);
    bind_text(s, 22, m->category[0] ? m->category : "marketing");
}

int cd_sqlite__message_insert(cd_db *db, const cd_message *m, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_INSERT, err);
    if (!s)
        return -1;
    bind_message(s, m);
    bind_text(s, 23, m->action); /* set once: Q_MESSAGE_UPDATE has no ?23 */
    return cd_sqlite__step_done(d, s, err, "message");
}

int cd_sqlite__message_count(cd_db *db, int64_t account_id, const char *to, const char *kind,
                             const char *action, int64_t since_ms, int *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_COUNT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, to);
    bind_text(s, 3, kind);
    bind_text(s, 4, action ? action : "");
    sqlite3_bind_int64(s, 5, since_ms);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    done(s);
    return rc == SQLITE_ROW ? 0 : cd_sqlite__fail(d, err, "message count");
}

int cd_sqlite__message_update(cd_db *db, const cd_message *m, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_UPDATE, err);
    if (!s)
        return -1;
    bind_message(s, m);
    return cd_sqlite__step_done(d, s, err, "message update");
}

typedef struct message_each {
    cd_message_each_fn fn;
    void *arg;
} message_each;

/* One message row for the store's caller, with its rowid (column 0) for paging. */
static int message_row(sqlite3_stmt *s, void *arg)
{
    const message_each *e = arg;
    cd_message m;
    read_message(s, &m);
    int stop = e->fn(&m, sqlite3_column_int64(s, 0), e->arg);
    cd_message_clear(&m);
    return stop != 0;
}

static int each_message(sqlite_db *d, sqlite3_stmt *s, cd_message_each_fn each, void *arg,
                        cd_err *err)
{
    message_each e = {each, arg};
    return cd_sqlite__each(d, s, message_row, &e, "messages", err);
}

int cd_sqlite__message_due(cd_db *db, int64_t now_ms, int limit, cd_message_each_fn each, void *arg,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_DUE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    return each_message(d, s, each, arg, err);
}

int cd_sqlite__message_next_due(cd_db *db, int64_t *out_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_NEXT_DUE, err);
    if (!s)
        return -1;
    int rc = sqlite3_step(s);
    *out_ms = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    done(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : cd_sqlite__fail(d, err, "next due");
}

int cd_sqlite__message_requeue_sending(cd_db *db, int64_t now_ms, int *count, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_REQUEUE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    if (cd_sqlite__step_done(d, s, err, "requeue") != 0)
        return -1;
    *count = sqlite3_changes(d->h);
    return 0;
}

int cd_sqlite__message_claim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                             bool *claimed, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_CLAIM, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, account_id);
    bind_text(s, 3, id);
    if (cd_sqlite__step_done(d, s, err, "claim") != 0)
        return -1;
    *claimed = sqlite3_changes(d->h) == 1;
    return 0;
}

int cd_sqlite__message_mark_sent(cd_db *db, int64_t account_id, const char *id,
                                 const char *transport, const char *transport_id, int64_t now_ms,
                                 cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_MARK_SENT, err);
    char at[CD_TIME_LEN];
    if (!s)
        return -1;
    cd_time_format(now_ms, at);
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    bind_text(s, 3, transport);
    bind_text(s, 4, transport_id);
    sqlite3_bind_int64(s, 5, now_ms);
    bind_text(s, 6, at);
    if (transport_id[0] != '\0') /* as cd_message_history: an empty detail is null */
        bind_text(s, 7, transport_id);
    else
        sqlite3_bind_null(s, 7);
    if (cd_sqlite__step_done(d, s, err, "mark sent") != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0)
        return cd_fail(err, CD_ENOTFOUND, "message", "no such message");
    return 0;
}

int cd_sqlite__message_refuse_queued(cd_db *db, int64_t account_id, int64_t contact_id,
                                     const char *scope, int64_t now_ms, const char *reason,
                                     int *count, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_QUEUED_ANY, err);
    char at[CD_TIME_LEN];
    if (count)
        *count = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    int rc = sqlite3_step(s);
    int bad = rc != SQLITE_ROW && rc != SQLITE_DONE ? cd_sqlite__fail(d, err, "refuse queued") : 0;
    done(s);
    if (bad != 0 || rc == SQLITE_DONE) /* nothing queued: nothing to refuse */
        return bad;
    s = cd_sqlite__stmt(d, Q_MESSAGE_REFUSE_QUEUED, err);
    if (!s)
        return -1;
    cd_time_format(now_ms, at);
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    if (scope)
        bind_text(s, 3, scope);
    else
        sqlite3_bind_null(s, 3);
    sqlite3_bind_int64(s, 4, now_ms);
    bind_text(s, 5, reason);
    bind_text(s, 6, at);
    if (cd_sqlite__step_done(d, s, err, "refuse queued") != 0)
        return -1;
    if (count)
        *count = sqlite3_changes(d->h);
    return 0;
}

int cd_sqlite__message_unclaim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                               cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_UNCLAIM, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    sqlite3_bind_int64(s, 3, now_ms);
    return cd_sqlite__step_done(d, s, err, "unclaim");
}

typedef struct due_count {
    cd_message_each_fn each;
    void *arg;
    int n;
    bool full; /* the consumer said stop */
} due_count;

static int count_due(const cd_message *m, int64_t rowid, void *arg)
{
    due_count *c = arg;
    c->n++;
    if (c->each(m, rowid, c->arg) != 0)
        c->full = true;
    return c->full;
}

/* Binds the parameters the due queries share and runs one of them. */
static int due_scan(sqlite_db *d, int q, int64_t now_ms, int limit, int64_t account_id,
                    const cd_due_filter *f, due_count *c, cd_err *err)
{
    sqlite3_stmt *s = cd_sqlite__stmt(d, q, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    bind_text(s, 3, f && f->default_transport ? f->default_transport : "");
    for (int i = 0; i < 3; i++) /* "" matches no resolved transport: a NULL would match none */
        bind_text(s, 4 + i, f && f->skip[i] ? f->skip[i] : "");
    if (q == Q_MESSAGE_DUE_ACCOUNT)
        sqlite3_bind_int64(s, 7, account_id);
    return each_message(d, s, count_due, c, err);
}

#define DUE_MAX_ACCOUNTS 1024

int cd_sqlite__message_due_fair(cd_db *db, int64_t now_ms, int limit, const cd_due_filter *f,
                                cd_message_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    due_count c = {.each = each, .arg = arg};
    int64_t accounts[DUE_MAX_ACCOUNTS], last = 0;
    int n = 0;
    if (due_scan(d, Q_MESSAGE_DUE_KW, now_ms, limit, 0, f, &c, err) != 0)
        return -1;
    while (!c.full && c.n < limit && n < DUE_MAX_ACCOUNTS) {
        sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_DUE_NEXT_ACCOUNT, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, last);
        sqlite3_bind_int64(s, 2, now_ms);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            accounts[n++] = last = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW)
            return cd_sqlite__fail(d, err, "due accounts");
    }
    /* Every account gets an equal share of what is left of this round. */
    for (int i = 0; i < n && !c.full && c.n < limit; i++) {
        int left = limit - c.n, share = left / (n - i) > 0 ? left / (n - i) : 1;
        if (due_scan(d, Q_MESSAGE_DUE_ACCOUNT, now_ms, share, accounts[i], f, &c, err) != 0)
            return -1;
    }
    return 0;
}

int cd_sqlite__unrouted_insert(cd_db *db, cd_unrouted *u, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_UNROUTED_INSERT, err);
    if (!s)
        return -1;
    bind_text(s, 1, u->from);
    bind_text(s, 2, u->to);
    bind_text(s, 3, u->text ? u->text : "");
    bind_text(s, 4, u->provider_id);
    bind_text(s, 5, u->transport);
    sqlite3_bind_int64(s, 6, u->received_ms);
    if (cd_sqlite__step_done(d, s, err, "unrouted inbound") != 0)
        return -1;
    u->id = sqlite3_last_insert_rowid(d->h);
    return 0;
}

static void read_unrouted(sqlite3_stmt *s, cd_unrouted *u)
{
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, u->from, sizeof u->from);
    col_copy(s, 2, u->to, sizeof u->to);
    u->text = col_dup(s, 3);
    col_copy(s, 4, u->provider_id, sizeof u->provider_id);
    col_copy(s, 5, u->transport, sizeof u->transport);
    u->received_ms = sqlite3_column_int64(s, 6);
}

typedef struct unrouted_each {
    cd_unrouted_each_fn fn;
    void *arg;
} unrouted_each;

static int unrouted_row(sqlite3_stmt *s, void *arg)
{
    const unrouted_each *e = arg;
    cd_unrouted u;
    read_unrouted(s, &u);
    int stop = e->fn(&u, e->arg);
    free(u.text);
    return stop != 0;
}

int cd_sqlite__unrouted_list(cd_db *db, int limit, cd_unrouted_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_UNROUTED_LIST, err);
    unrouted_each e = {each, arg};
    if (!s)
        return -1;
    sqlite3_bind_int(s, 1, limit);
    return cd_sqlite__each(d, s, unrouted_row, &e, "unrouted inbound", err);
}

int cd_sqlite__part_insert(cd_db *db, const char *transport, const char *remote_id,
                           int64_t account_id, const char *message_id, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_PART_INSERT, err);
    if (!s)
        return -1;
    bind_text(s, 1, transport);
    bind_text(s, 2, remote_id);
    sqlite3_bind_int64(s, 3, account_id);
    bind_text(s, 4, message_id);
    return cd_sqlite__step_done(d, s, err, "message part");
}

int cd_sqlite__part_status(cd_db *db, const char *transport, const char *remote_id,
                           const char *status, int64_t account_id, const char *message_id,
                           int counts[3], cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_PART_STATUS, err);
    if (!s)
        return -1;
    bind_text(s, 1, status);
    bind_text(s, 2, transport);
    bind_text(s, 3, remote_id);
    if (cd_sqlite__step_done(d, s, err, "part status") != 0)
        return -1;
    if (!(s = cd_sqlite__stmt(d, Q_PART_COUNTS, err)))
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, message_id);
    int rc = sqlite3_step(s);
    for (int i = 0; i < 3; i++)
        counts[i] = rc == SQLITE_ROW ? sqlite3_column_int(s, i) : 0;
    done(s);
    return rc == SQLITE_ROW ? 0 : cd_sqlite__fail(d, err, "part counts");
}

static const cd_sqlite__row MESSAGE_ROW = {read_message, "message", "", "no such message"};

int cd_sqlite__part_message(cd_db *db, const char *transport, const char *remote_id,
                            cd_message *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    /* The part row names the account; look it up first so the message query keeps its
     * account condition like every other. */
    sqlite3_stmt *p = NULL;
    int64_t account_id = 0;
    if (sqlite3_prepare_v2(d->h,
                           "SELECT account_id FROM message_parts WHERE transport = ? AND "
                           "remote_id = ?",
                           -1, &p, NULL) != SQLITE_OK)
        return cd_sqlite__fail(d, err, "part");
    bind_text(p, 1, transport);
    bind_text(p, 2, remote_id);
    if (sqlite3_step(p) == SQLITE_ROW)
        account_id = sqlite3_column_int64(p, 0);
    sqlite3_finalize(p);
    if (account_id == 0)
        return cd_fail(err, CD_ENOTFOUND, "", "no such part");
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_PART_MESSAGE, err);
    if (!s)
        return -1;
    bind_text(s, 1, transport);
    bind_text(s, 2, remote_id);
    sqlite3_bind_int64(s, 3, account_id);
    return cd_sqlite__one(d, s, &MESSAGE_ROW, out, err);
}

int cd_sqlite__message_get(cd_db *db, int64_t account_id, const char *id, cd_message *out,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_MESSAGE_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    return cd_sqlite__one(d, s, &MESSAGE_ROW, out, err);
}

int cd_sqlite__message_list(cd_db *db, int64_t account_id, const cd_message_filter *f,
                            cd_message_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, f->to ? Q_MESSAGE_LIST_TO : Q_MESSAGE_LIST, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, f->before_rowid);
    bind_text(s, 3, f->to);
    bind_text(s, 4, f->status);
    bind_text(s, 5, f->kind);
    sqlite3_bind_int(s, 6, f->limit);
    return each_message(d, s, each, arg, err);
}

/* ---- flows ---- */

static void read_flow(sqlite3_stmt *s, void *out)
{
    cd_flow *f = out;
    memset(f, 0, sizeof *f);
    col_copy(s, 1, f->id, sizeof f->id);
    f->account_id = sqlite3_column_int64(s, 2);
    f->contact_id = sqlite3_column_int64(s, 3);
    col_copy(s, 4, f->phone, sizeof f->phone);
    col_copy(s, 5, f->ext_ref, sizeof f->ext_ref);
    f->scopes = col_json(s, 6);
    col_copy(s, 7, f->channel, sizeof f->channel);
    col_copy(s, 8, f->email, sizeof f->email);
    f->disclosure = col_dup(s, 9);
    col_copy(s, 10, f->status, sizeof f->status);
    col_copy(s, 11, f->confirmed_via, sizeof f->confirmed_via);
    f->created_ms = sqlite3_column_int64(s, 12);
    f->updated_ms = sqlite3_column_int64(s, 13);
    f->expires_ms = sqlite3_column_int64(s, 14);
    f->confirm_text = col_dup(s, 15); /* issue 10 */
}

static void bind_flow(sqlite3_stmt *s, const cd_flow *f)
{
    bind_text(s, 1, f->id);
    sqlite3_bind_int64(s, 2, f->account_id);
    sqlite3_bind_int64(s, 3, f->contact_id);
    bind_text(s, 4, f->phone);
    bind_text(s, 5, f->ext_ref);
    if (f->scopes)
        cd_sqlite__bind_strings(s, 6, f->scopes);
    else
        bind_text(s, 6, "[]");
    bind_text(s, 7, f->channel);
    bind_text(s, 8, f->email);
    bind_text(s, 9, f->disclosure ? f->disclosure : "");
    bind_text(s, 10, f->status);
    bind_text(s, 11, f->confirmed_via);
    sqlite3_bind_int64(s, 12, f->created_ms);
    sqlite3_bind_int64(s, 13, f->updated_ms);
    sqlite3_bind_int64(s, 14, f->expires_ms);
    bind_text(s, 15, f->confirm_text ? f->confirm_text : "");
}

int cd_sqlite__flow_insert(cd_db *db, const cd_flow *f, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_FLOW_INSERT, err);
    if (!s)
        return -1;
    bind_flow(s, f);
    return cd_sqlite__step_done(d, s, err, "flow");
}

int cd_sqlite__flow_update(cd_db *db, const cd_flow *f, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_FLOW_UPDATE, err);
    if (!s)
        return -1;
    bind_flow(s, f);
    return cd_sqlite__step_done(d, s, err, "flow update");
}

static const cd_sqlite__row FLOW_ROW = {read_flow, "flow", "", "no such flow"};

int cd_sqlite__flow_get(cd_db *db, int64_t account_id, const char *id, cd_flow *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_FLOW_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    return cd_sqlite__one(d, s, &FLOW_ROW, out, err);
}

typedef struct flow_each {
    cd_flow_each_fn fn;
    void *arg;
} flow_each;

/* One flow row for the store's caller, with its rowid (column 0) for paging. */
static int flow_row(sqlite3_stmt *s, void *arg)
{
    const flow_each *e = arg;
    cd_flow f;
    read_flow(s, &f);
    int stop = e->fn(&f, sqlite3_column_int64(s, 0), e->arg);
    cd_flow_clear(&f);
    return stop != 0;
}

static int each_flow(sqlite_db *d, sqlite3_stmt *s, cd_flow_each_fn each, void *arg, cd_err *err)
{
    flow_each e = {each, arg};
    return cd_sqlite__each(d, s, flow_row, &e, "flows", err);
}

int cd_sqlite__flow_list(cd_db *db, int64_t account_id, const cd_flow_filter *f,
                         cd_flow_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    enum q q = f->contact_id               ? Q_FLOW_LIST_CONTACT
               : f->ext_ref && *f->ext_ref ? Q_FLOW_LIST_EXT_REF
                                           : Q_FLOW_LIST;
    sqlite3_stmt *s = cd_sqlite__stmt(d, q, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, f->after_rowid);
    bind_text(s, 3, f->status);
    bind_text(s, 4, f->ext_ref);
    sqlite3_bind_int64(s, 5, f->contact_id);
    sqlite3_bind_int(s, 6, f->limit);
    return each_flow(d, s, each, arg, err);
}

int cd_sqlite__flow_expired(cd_db *db, int64_t now_ms, int limit, cd_flow_each_fn each, void *arg,
                            cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_FLOW_EXPIRED, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    return each_flow(d, s, each, arg, err);
}

/* ---- senders and settings ---- */

void cd_sqlite__read_sender(sqlite3_stmt *s, void *out)
{
    cd_sender *o = out;
    memset(o, 0, sizeof *o);
    col_copy(s, 0, o->number, sizeof o->number);
    o->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, o->transport, sizeof o->transport);
    o->is_default = sqlite3_column_int(s, 3) != 0;
    o->created_ms = sqlite3_column_int64(s, 4);
    col_copy(s, 5, o->type, sizeof o->type);
    col_copy(s, 6, o->profile, sizeof o->profile);
    col_copy(s, 7, o->lease_uuid, sizeof o->lease_uuid);
    o->leased_ms = sqlite3_column_int64(s, 8);
    o->last_used_ms = sqlite3_column_int64(s, 9);
}
#define read_sender cd_sqlite__read_sender

int cd_sqlite__sender_put(cd_db *db, const cd_sender *o, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SENDER_PUT, err);
    if (!s)
        return -1;
    bind_text(s, 1, o->number);
    sqlite3_bind_int64(s, 2, o->account_id);
    bind_text(s, 3, o->transport);
    sqlite3_bind_int(s, 4, o->is_default);
    sqlite3_bind_int64(s, 5, o->created_ms);
    bind_text(s, 6, o->type);
    if (cd_sqlite__step_done(d, s, err, "sender") != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0) /* the number belongs to another account */
        return cd_fail(err, CD_ECONFLICT, "number", "that number is not available");
    return 0;
}

static const cd_sqlite__row SENDER_ROW = {read_sender, "sender", "", "no such sender"};

int cd_sqlite__sender_get(cd_db *db, const char *number, cd_sender *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SENDER_GET, err);
    if (!s)
        return -1;
    bind_text(s, 1, number);
    return cd_sqlite__one(d, s, &SENDER_ROW, out, err);
}

int cd_sqlite__sender_delete(cd_db *db, int64_t account_id, const char *number, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SENDER_DELETE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, number);
    if (cd_sqlite__step_done(d, s, err, "sender") != 0)
        return -1;
    return sqlite3_changes(d->h) ? 0 : cd_fail(err, CD_ENOTFOUND, "", "no such sender");
}

typedef struct sender_each {
    cd_sender_each_fn fn;
    void *arg;
} sender_each;

static int sender_row(sqlite3_stmt *s, void *arg)
{
    const sender_each *e = arg;
    cd_sender o;
    read_sender(s, &o);
    return e->fn(&o, e->arg) != 0;
}

int cd_sqlite__sender_list(cd_db *db, int64_t account_id, cd_sender_each_fn each, void *arg,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SENDER_LIST, err);
    sender_each e = {each, arg};
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    return cd_sqlite__each(d, s, sender_row, &e, "senders", err);
}

int cd_sqlite__settings_get(cd_db *db, int64_t account_id, json_t **out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    if ((*out = cd_sqlite__cache_settings(d, account_id)) != NULL)
        return 0;
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SETTINGS_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? col_json(s, 0) : NULL;
    done(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cd_sqlite__fail(d, err, "settings");
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = json_object();
    }
    if (rc == SQLITE_ROW)
        cd_sqlite__cache_settings_put(d, account_id, *out);
    return 0;
}

int cd_sqlite__settings_read(cd_db *db, int64_t account_id, json_t **out, cd_err *err)
{
    /* The remembered object is only ever replaced, never changed: cd_sqlite__settings_get
     * hands out copies of it. */
    if ((*out = cd_sqlite__cache_settings_shared(SDB(db), account_id)) != NULL)
        return 0;
    return cd_sqlite__settings_get(db, account_id, out, err);
}

int cd_sqlite__settings_put(cd_db *db, int64_t account_id, const json_t *settings, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SETTINGS_PUT, err);
    if (!s)
        return -1;
    bind_json(s, 1, settings);
    sqlite3_bind_int64(s, 2, account_id);
    return cd_sqlite__step_done(d, s, err, "settings");
}

/* ---- idempotency ---- */

static void read_idem(sqlite3_stmt *s, void *out)
{
    cd_idem *i = out;
    memset(i, 0, sizeof *i);
    col_copy(s, 0, i->request_hash, sizeof i->request_hash);
    i->status = sqlite3_column_int(s, 1);
    i->body = col_dup(s, 2);
    i->created_ms = sqlite3_column_int64(s, 3);
}

static const cd_sqlite__row IDEM_ROW = {read_idem, "idempotency", "", "unknown key"};

int cd_sqlite__idem_get(cd_db *db, int64_t account_id, const char *key, cd_idem *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_IDEM_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, key);
    return cd_sqlite__one(d, s, &IDEM_ROW, out, err);
}

int cd_sqlite__idem_put(cd_db *db, int64_t account_id, const char *key, const cd_idem *in,
                        cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_IDEM_PUT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, key);
    bind_text(s, 3, in->request_hash);
    sqlite3_bind_int(s, 4, in->status);
    bind_text(s, 5, in->body ? in->body : "");
    sqlite3_bind_int64(s, 6, in->created_ms);
    return cd_sqlite__step_done(d, s, err, "idempotency");
}

int cd_sqlite__idem_purge(cd_db *db, int64_t before_ms, int limit, int *count, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_IDEM_PURGE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int(s, 2, limit);
    if (cd_sqlite__step_done(d, s, err, "idempotency purge") != 0)
        return -1;
    *count = sqlite3_changes(d->h);
    return 0;
}

/* ---- issue 12: Omeda opt queue submissions ---- */

int cd_sqlite__submission_insert(cd_db *db, const cd_submission *sub, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SUBMISSION_INSERT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, sub->account_id);
    bind_text(s, 2, sub->uuid);
    bind_text(s, 3, sub->site);
    bind_text(s, 4, sub->session);
    bind_text(s, 5, sub->phone);
    sqlite3_bind_int(s, 6, sub->status);
    if (sub->detail_text)
        sqlite3_bind_text(s, 7, sub->detail_text, (int)sub->detail_len, SQLITE_STATIC);
    else if (sub->detail)
        bind_json(s, 7, sub->detail);
    else
        sqlite3_bind_text(s, 7, "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, sub->created_ms);
    return cd_sqlite__step_done(d, s, err, "submission");
}

static void read_submission(sqlite3_stmt *s, void *out)
{
    cd_submission *sub = out;
    memset(sub, 0, sizeof *sub);
    col_copy(s, 0, sub->uuid, sizeof sub->uuid);
    sub->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, sub->site, sizeof sub->site);
    col_copy(s, 3, sub->session, sizeof sub->session);
    col_copy(s, 4, sub->phone, sizeof sub->phone);
    sub->status = sqlite3_column_int(s, 5);
    sub->detail = col_json(s, 6);
    sub->created_ms = sqlite3_column_int64(s, 7);
}

static const cd_sqlite__row SUBMISSION_ROW = {read_submission, "submission", "uuid",
                                              "no such submission"};

int cd_sqlite__submission_get(cd_db *db, int64_t account_id, const char *uuid, cd_submission *out,
                              cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_SUBMISSION_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, uuid);
    return cd_sqlite__one(d, s, &SUBMISSION_ROW, out, err);
}
