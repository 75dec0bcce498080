/* store/sqlite.c -- the SQLite backend.
 *
 * One connection per cd_db. Every statement is prepared once per connection, on first
 * use, and kept (SQLITE_PREPARE_PERSISTENT); statements are named by the Q enum so a
 * lookup is an array index. The write connection is used by the writer thread only;
 * readers are pooled by store.c. WAL lets readers run while the writer commits, and
 * synchronous=FULL makes each COMMIT durable before the writer reports its jobs done. */
#include "store/store_int.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* generated from sql/sqlite/NNNN_*.sql */
extern const char cd_sqlite_0001[];
extern const char cd_sqlite_0002[];
extern const char cd_sqlite_0003[];
extern const char cd_sqlite_0004[];
extern const char cd_sqlite_0005[];
extern const char cd_sqlite_0006[];

static const char *const migrations[] = {cd_sqlite_0001, cd_sqlite_0002, cd_sqlite_0003,
                                         cd_sqlite_0004, cd_sqlite_0005, cd_sqlite_0006};

#define CONTACT_COLS                                                                               \
    "id, account_id, phone, first_name, last_name, email, birthday, zip, city, param1, "           \
    "param2, param3, param4, param5, custom, tags, created_ms, updated_ms"
#define EVENT_COLS                                                                                 \
    "id, account_id, seq, contact_id, phone, scope, old_state, new_state, surface, channel, "      \
    "keyword, disclosure_sha256, ip, user_agent, site, session, ext_ref, credential_id, "          \
    "request_id, created_ms, prev_hash, hash"
#define MESSAGE_COLS                                                                               \
    "seq, id, account_id, to_phone, from_phone, text, kind, scope, status, reason, parts, "        \
    "transport, transport_id, history, created_ms, updated_ms, direction, contact_id, "            \
    "attempts, next_attempt_ms, provider_id, flow_id, category, action"
#define FLOW_COLS                                                                                  \
    "rowid, id, account_id, contact_id, phone, ext_ref, scopes, channel, email, disclosure, "      \
    "status, confirmed_via, created_ms, updated_ms, expires_ms"
#define ACCOUNT_COLS                                                                               \
    "id, name, login, brand, region, timezone, jwt_secret, created_ms, ledger_seq, ledger_head, "  \
    "ledger_sig"

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
    Q_KEY_REVOKE,
    Q_KEY_LIST,
    Q_CONTACT_GET,
    Q_CONTACT_BY_PHONE,
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
    Q_MESSAGE_UPDATE,
    Q_MESSAGE_DUE,
    Q_MESSAGE_NEXT_DUE,
    Q_MESSAGE_CLAIM,
    Q_MESSAGE_REQUEUE,
    Q_MESSAGE_REFUSE_QUEUED,
    Q_MESSAGE_DUE_FAIR,
    Q_MESSAGE_UNCLAIM,
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
    /* transaction control, run by the writer for every job and batch */
    Q_BEGIN,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_COUNT
};

static const char *const SQL[Q_COUNT] = {
    [Q_ACCOUNT_INSERT] = "INSERT INTO accounts (name, login, brand, region, timezone, "
                         "jwt_secret, created_ms, ledger_seq, ledger_head) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
    [Q_ACCOUNT_BY_ID] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id = ?",
    [Q_ACCOUNT_BY_NAME] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE name = ?",
    [Q_ACCOUNT_BY_LOGIN] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE login = ?",
    [Q_ACCOUNT_BY_BRAND] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE brand = ? "
                           "ORDER BY id LIMIT 1",
    [Q_ACCOUNT_SET_HEAD] = "UPDATE accounts SET ledger_seq = ?, ledger_head = ? WHERE id = ?",
    [Q_ACCOUNT_SIGN_HEAD] = "UPDATE accounts SET ledger_sig = ? WHERE id = ?",
    [Q_ACCOUNT_ALL] = "SELECT " ACCOUNT_COLS " FROM accounts ORDER BY id",
    [Q_KEY_INSERT] = "INSERT INTO api_keys (id, account_id, name, hash, created_ms, revoked_ms) "
                     "VALUES (?, ?, ?, ?, ?, 0)",
    [Q_KEY_GET] = "SELECT id, account_id, name, hash, created_ms, revoked_ms FROM api_keys "
                  "WHERE id = ?",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked_ms = ? WHERE account_id = ? AND id = ? "
                     "AND revoked_ms = 0",
    [Q_KEY_LIST] = "SELECT id, account_id, name, hash, created_ms, revoked_ms FROM api_keys "
                   "WHERE account_id = ? ORDER BY created_ms, id",
    [Q_CONTACT_GET] = "SELECT " CONTACT_COLS " FROM contacts WHERE account_id = ? AND id = ?",
    [Q_CONTACT_BY_PHONE] = "SELECT " CONTACT_COLS " FROM contacts "
                           "WHERE account_id = ? AND phone = ?",
    [Q_CONTACT_INSERT] = "INSERT INTO contacts (account_id, phone, first_name, last_name, email, "
                         "birthday, zip, city, param1, param2, param3, param4, param5, custom, "
                         "tags, created_ms, updated_ms) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                         "?15, ?16, ?17)",
    [Q_CONTACT_UPDATE] = "UPDATE contacts SET phone = ?2, first_name = ?3, last_name = ?4, "
                         "email = ?5, birthday = ?6, zip = ?7, city = ?8, param1 = ?9, "
                         "param2 = ?10, param3 = ?11, param4 = ?12, param5 = ?13, custom = ?14, "
                         "tags = ?15, updated_ms = ?17 WHERE account_id = ?1 AND id = ?18",
    [Q_CONTACT_LIST] =
        "SELECT " CONTACT_COLS " FROM contacts c WHERE account_id = ?1 AND id > ?2 "
        "AND (?3 = 0 OR EXISTS (SELECT 1 FROM contact_groups g WHERE g.account_id = ?1 "
        "AND g.contact_id = c.id AND g.group_id = ?3)) "
        "AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value = ?4)) "
        "AND (?5 IS NULL OR instr(phone, ?5) > 0 OR instr(lower(coalesce(first_name, '') || ' ' "
        "|| coalesce(last_name, '') || ' ' || coalesce(email, '')), lower(?5)) > 0) "
        "ORDER BY id LIMIT ?6",
    [Q_CONTACT_GROUPS] = "SELECT group_id FROM contact_groups WHERE account_id = ? AND "
                         "contact_id = ? ORDER BY group_id",
    [Q_CONTACT_GROUPS_CLEAR] = "DELETE FROM contact_groups WHERE account_id = ? AND "
                               "contact_id = ?",
    [Q_CONTACT_GROUPS_ADD] = "INSERT OR IGNORE INTO contact_groups (account_id, contact_id, "
                             "group_id) VALUES (?, ?, ?)",
    [Q_GROUP_INSERT] = "INSERT INTO groups (account_id, name, created_ms) VALUES (?, ?, ?)",
    [Q_GROUP_GET] = "SELECT id, name, created_ms FROM groups WHERE account_id = ? AND id = ?",
    [Q_GROUP_BY_NAME] = "SELECT id, name, created_ms FROM groups WHERE account_id = ? AND "
                        "name = ?",
    [Q_GROUP_LIST] = "SELECT id, name, created_ms FROM groups WHERE account_id = ? AND id > ? "
                     "ORDER BY id LIMIT ?",
    [Q_TYPE_INSERT] = "INSERT INTO message_types (account_id, id, name, created_ms) "
                      "VALUES (?, ?, ?, ?)",
    [Q_TYPE_NEXT_ID] = "SELECT coalesce(max(id), 0) + 1 FROM message_types WHERE account_id = ?",
    [Q_TYPE_GET] = "SELECT id, name, created_ms FROM message_types WHERE account_id = ? AND "
                   "id = ?",
    [Q_TYPE_BY_NAME] = "SELECT id, name, created_ms FROM message_types WHERE account_id = ? AND "
                       "name = ?",
    [Q_TYPE_LIST] = "SELECT id, name, created_ms FROM message_types WHERE account_id = ? AND "
                    "id > ? ORDER BY id LIMIT ?",
    [Q_CONSENT_GET] = "SELECT scope, state, updated_ms FROM consents WHERE account_id = ? AND "
                      "contact_id = ? AND scope = ?",
    [Q_CONSENT_PUT] = "INSERT INTO consents (account_id, contact_id, scope, state, updated_ms) "
                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, contact_id, scope) DO "
                      "UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
    [Q_CONSENT_DELETE] = "DELETE FROM consents WHERE account_id = ? AND contact_id = ? AND "
                         "scope = ?",
    [Q_CONSENT_LIST] = "SELECT scope, state, updated_ms FROM consents WHERE account_id = ? AND "
                       "contact_id = ? ORDER BY scope",
    [Q_EVENT_INSERT] = "INSERT INTO events (account_id, seq, contact_id, phone, scope, "
                       "old_state, new_state, surface, channel, keyword, disclosure_sha256, ip, "
                       "user_agent, site, session, ext_ref, credential_id, request_id, "
                       "created_ms, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                       "?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [Q_EVENT_LIST] = "SELECT " EVENT_COLS " FROM events WHERE account_id = ?1 AND seq > ?2 "
                     "AND (?3 = 0 OR contact_id = ?3) AND (?4 IS NULL OR scope = ?4) "
                     "AND (?5 = 0 OR created_ms >= ?5) ORDER BY seq LIMIT ?6",
    [Q_EVENT_SCAN] = "SELECT " EVENT_COLS " FROM events WHERE account_id = ? ORDER BY seq, id",
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
    /* Rank within each account, then keyword replies first and rank by rank: one message of
     * every account before a second of any. */
    [Q_MESSAGE_DUE_FAIR] =
        "SELECT " MESSAGE_COLS " FROM (SELECT *, row_number() OVER (PARTITION BY account_id "
        "ORDER BY next_attempt_ms, seq) AS rk FROM messages WHERE status = 'queued' AND "
        "next_attempt_ms <= ?1 AND (CASE transport WHEN '' THEN ?3 ELSE transport END) "
        "NOT IN (?4, ?5, ?6)) ORDER BY kind <> 'keyword_reply', rk, next_attempt_ms, seq "
        "LIMIT ?2",
    [Q_MESSAGE_UNCLAIM] =
        "UPDATE messages SET status = 'queued', attempts = max(attempts - 1, 0), "
        "updated_ms = ?3 WHERE account_id = ?1 AND id = ?2 AND status = 'sending'",
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
    [Q_FLOW_INSERT] = "INSERT INTO flows (id, account_id, contact_id, phone, ext_ref, scopes, "
                      "channel, email, disclosure, status, confirmed_via, created_ms, "
                      "updated_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                      "?11, ?12, ?13, ?14)",
    [Q_FLOW_UPDATE] = "UPDATE flows SET status = ?10, confirmed_via = ?11, updated_ms = ?13 "
                      "WHERE account_id = ?2 AND id = ?1",
    [Q_FLOW_GET] = "SELECT " FLOW_COLS " FROM flows WHERE account_id = ? AND id = ?",
    [Q_FLOW_LIST] = "SELECT " FLOW_COLS " FROM flows WHERE account_id = ?1 AND rowid > ?2 "
                    "AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR ext_ref = ?4) "
                    "AND (?5 = 0 OR contact_id = ?5) ORDER BY rowid LIMIT ?6",
    [Q_FLOW_EXPIRED] = "SELECT " FLOW_COLS " FROM flows WHERE status = 'pending' AND "
                       "expires_ms <= ? ORDER BY expires_ms LIMIT ?",
    [Q_SENDER_PUT] = "INSERT INTO senders (number, account_id, transport, is_default, "
                     "created_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (number) DO UPDATE "
                     "SET transport = excluded.transport, is_default = excluded.is_default "
                     "WHERE senders.account_id = excluded.account_id",
    [Q_SENDER_GET] = "SELECT number, account_id, transport, is_default, created_ms FROM senders "
                     "WHERE number = ?",
    [Q_SENDER_DELETE] = "DELETE FROM senders WHERE account_id = ? AND number = ?",
    [Q_SENDER_LIST] = "SELECT number, account_id, transport, is_default, created_ms FROM "
                      "senders WHERE account_id = ? ORDER BY number",
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
    [Q_IDEM_GET] = "SELECT request_hash, status, body, created_ms FROM idempotency "
                   "WHERE account_id = ? AND key = ?",
    [Q_IDEM_PUT] = "INSERT INTO idempotency (account_id, key, request_hash, status, body, "
                   "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
    [Q_IDEM_PURGE] = "DELETE FROM idempotency WHERE (account_id, key) IN (SELECT account_id, "
                     "key FROM idempotency WHERE created_ms < ? ORDER BY created_ms LIMIT ?)",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT job",
    [Q_RELEASE] = "RELEASE job",
    [Q_ROLLBACK_TO] = "ROLLBACK TO job",
};

typedef struct sqlite_db {
    struct cd_db base; /* first: a cd_db * is a sqlite_db * */
    sqlite3 *h;
    sqlite3_stmt *st[Q_COUNT];
} sqlite_db;

static sqlite_db *SDB(cd_db *db)
{
    return (sqlite_db *)db;
}

/* Turns the connection's last error into a cd_err. The SQLite text goes to the log, never
 * to the client: it may name tables and values. */
static int fail_sql(sqlite_db *d, cd_err *err, const char *what)
{
    int code = sqlite3_extended_errcode(d->h);
    if ((code & 0xff) == SQLITE_CONSTRAINT)
        return cd_fail(err, CD_ECONFLICT, "", "%s: already exists", what);
    cd_buf f = {0};
    cd_buf_printf(&f, "\"op\":\"%s\",\"sqlite\":%d,\"detail\":", what, code);
    cd_json_quote(&f, sqlite3_errmsg(d->h));
    cd_log("error", "sqlite", f.data);
    cd_buf_free(&f);
    return cd_fail(err, CD_ESTORE, "", "storage error");
}

static sqlite3_stmt *stmt(sqlite_db *d, enum q q, cd_err *err)
{
    if (d->st[q] == NULL && sqlite3_prepare_v3(d->h, SQL[q], -1, SQLITE_PREPARE_PERSISTENT,
                                               &d->st[q], NULL) != SQLITE_OK) {
        fail_sql(d, err, "prepare");
        return NULL;
    }
    return d->st[q];
}

static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

static void bind_json(sqlite3_stmt *s, int i, const json_t *v)
{
    if (v) {
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        sqlite3_bind_text(s, i, txt, -1, free);
    } else {
        sqlite3_bind_null(s, i);
    }
}

static void col_copy(sqlite3_stmt *s, int i, char *out, size_t n)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, n, "%s", t ? (const char *)t : "");
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? cd_xstrdup((const char *)t) : NULL;
}

static json_t *col_json(sqlite3_stmt *s, int i)
{
    const void *t = sqlite3_column_text(s, i);
    if (t == NULL)
        return NULL;
    return json_loadb(t, (size_t)sqlite3_column_bytes(s, i), JSON_DECODE_ANY, NULL);
}

/* Runs a statement that returns no rows. */
static int step_done(sqlite_db *d, sqlite3_stmt *s, cd_err *err, const char *what)
{
    int rc = sqlite3_step(s);
    int out = rc == SQLITE_DONE ? 0 : fail_sql(d, err, what);
    done(s);
    return out;
}

/* ---- connection ---- */

static int exec_sql(cd_db *db, const char *sql, cd_err *err)
{
    sqlite_db *d = SDB(db);
    /* The writer's transaction statements run several times per request under load:
     * reuse their prepared form instead of parsing them each time. */
    for (int q = Q_BEGIN; q <= Q_ROLLBACK_TO; q++) {
        if (strcmp(sql, SQL[q]) == 0) {
            sqlite3_stmt *s = stmt(d, (enum q)q, err);
            return s ? step_done(d, s, err, "transaction") : -1;
        }
    }
    if (sqlite3_exec(d->h, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail_sql(d, err, "exec");
    return 0;
}

static bool sq_in_transaction(cd_db *db)
{
    return sqlite3_get_autocommit(SDB(db)->h) == 0;
}

/* issue 8 item 13: the database holds consent records and key hashes, for its owner only.
 * SQLite would create the file 0644 (less the umask); it gives the -wal and -shm files the
 * database file's mode, so creating the file 0600 first, empty, covers all three. An
 * existing file keeps the mode the operator chose; a group- or world-readable one is
 * logged. When the file cannot be opened here, sqlite3_open_v2 reports why. */
static void create_private(const char *path)
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

static cd_db *sq_connect(cd_store *s, const char *url, bool writer, cd_err *err)
{
    const char *path = url + strlen("sqlite:");
    sqlite_db *d = cd_xcalloc(1, sizeof *d);
    d->base.ops = &cd_store__sqlite_ops;
    d->base.store = s;
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    if (writer)
        create_private(path);
    if (sqlite3_open_v2(path, &d->h, flags, NULL) != SQLITE_OK) {
        cd_fail(err, CD_ESTORE, "db", "cannot open the database %s", path);
        sqlite3_close(d->h);
        free(d);
        return NULL;
    }
    /* The writer sets the journal mode once for the file; readers only need the timeout
     * for the rare moment a checkpoint holds the WAL index. The busy timeout on the writer
     * is only for an operator's CLI writing while the server runs: inside the server there
     * is no other writer to wait for. */
    const char *pragmas = writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                   "PRAGMA foreign_keys=OFF; PRAGMA busy_timeout=10000; "
                                   "PRAGMA cache_size=-16000;"
                                 : "PRAGMA busy_timeout=5000; PRAGMA cache_size=-8000;";
    if (sqlite3_exec(d->h, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        fail_sql(d, err, "pragma");
        sqlite3_close(d->h);
        free(d);
        return NULL;
    }
    return &d->base;
}

static void sq_disconnect(cd_db *db)
{
    sqlite_db *d = SDB(db);
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(d->st[i]);
    sqlite3_close(d->h);
    free(d);
}

static int sq_migrate(cd_db *db, int *version, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s;
    int have = 0;
    if (sqlite3_prepare_v2(d->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return fail_sql(d, err, "migrate");
    if (sqlite3_step(s) == SQLITE_ROW)
        have = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    int want = (int)(sizeof migrations / sizeof migrations[0]);
    if (have > want)
        return cd_fail(err, CD_ESTORE, "db", "database schema %d is newer than this consentd (%d)",
                       have, want);
    for (int v = have; v < want; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d;", v + 1);
        if (exec_sql(db, "BEGIN IMMEDIATE", err) != 0)
            return -1;
        if (exec_sql(db, migrations[v], err) != 0 || exec_sql(db, bump, err) != 0 ||
            exec_sql(db, "COMMIT", err) != 0) {
            exec_sql(db, "ROLLBACK", NULL);
            return -1;
        }
        cd_logf("info", "migrated", "\"schema\":%d", v + 1);
    }
    *version = want;
    return 0;
}

/* ---- accounts and keys ---- */

static void read_account(sqlite3_stmt *s, cd_account *a)
{
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, a->name, sizeof a->name);
    col_copy(s, 2, a->login, sizeof a->login);
    col_copy(s, 3, a->brand, sizeof a->brand);
    col_copy(s, 4, a->region, sizeof a->region);
    col_copy(s, 5, a->timezone, sizeof a->timezone);
    col_copy(s, 6, a->jwt_secret, sizeof a->jwt_secret);
    a->created_ms = sqlite3_column_int64(s, 7);
    a->ledger_seq = sqlite3_column_int64(s, 8);
    col_copy(s, 9, a->ledger_head, sizeof a->ledger_head);
    col_copy(s, 10, a->ledger_sig, sizeof a->ledger_sig);
}

static int sq_account_insert(cd_db *db, cd_account *a, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_ACCOUNT_INSERT, err);
    if (!s)
        return -1;
    bind_text(s, 1, a->name);
    bind_text(s, 2, a->login);
    bind_text(s, 3, a->brand);
    bind_text(s, 4, a->region);
    bind_text(s, 5, a->timezone);
    bind_text(s, 6, a->jwt_secret);
    sqlite3_bind_int64(s, 7, a->created_ms);
    bind_text(s, 8, a->ledger_head);
    if (step_done(d, s, err, "account") != 0)
        return -1;
    a->id = sqlite3_last_insert_rowid(d->h);
    return 0;
}

static int sq_account_get(cd_db *db, const char *by, const char *value, cd_account *out,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    enum q q = strcmp(by, "id") == 0      ? Q_ACCOUNT_BY_ID
               : strcmp(by, "name") == 0  ? Q_ACCOUNT_BY_NAME
               : strcmp(by, "login") == 0 ? Q_ACCOUNT_BY_LOGIN
                                          : Q_ACCOUNT_BY_BRAND;
    sqlite3_stmt *s = stmt(d, q, err);
    if (!s)
        return -1;
    if (q == Q_ACCOUNT_BY_ID)
        sqlite3_bind_int64(s, 1, strtoll(value, NULL, 10));
    else
        bind_text(s, 1, value);
    int rc = sqlite3_step(s);
    int out_rc = 0;
    if (rc == SQLITE_ROW)
        read_account(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, "account", "no such account");
    else
        out_rc = fail_sql(d, err, "account");
    done(s);
    return out_rc;
}

static int sq_account_set_head(cd_db *db, int64_t account_id, int64_t seq, const char *hash,
                               cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_ACCOUNT_SET_HEAD, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, seq);
    bind_text(s, 2, hash);
    sqlite3_bind_int64(s, 3, account_id);
    return step_done(d, s, err, "ledger head");
}

static int sq_account_sign_head(cd_db *db, int64_t account_id, const char *sig, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_ACCOUNT_SIGN_HEAD, err);
    if (!s)
        return -1;
    bind_text(s, 1, sig);
    sqlite3_bind_int64(s, 2, account_id);
    return step_done(d, s, err, "ledger head");
}

static int sq_account_each(cd_db *db, cd_account_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_ACCOUNT_ALL, err);
    int rc, out = 0;
    if (!s)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_account a;
        read_account(s, &a);
        if (each(&a, arg) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "accounts");
    done(s);
    return out;
}

static void read_key(sqlite3_stmt *s, cd_apikey *k)
{
    memset(k, 0, sizeof *k);
    col_copy(s, 0, k->id, sizeof k->id);
    k->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, k->name, sizeof k->name);
    col_copy(s, 3, k->hash, sizeof k->hash);
    k->created_ms = sqlite3_column_int64(s, 4);
    k->revoked_ms = sqlite3_column_int64(s, 5);
}

static int sq_key_insert(cd_db *db, const cd_apikey *k, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_KEY_INSERT, err);
    if (!s)
        return -1;
    bind_text(s, 1, k->id);
    sqlite3_bind_int64(s, 2, k->account_id);
    bind_text(s, 3, k->name);
    bind_text(s, 4, k->hash);
    sqlite3_bind_int64(s, 5, k->created_ms);
    return step_done(d, s, err, "key");
}

static int sq_key_get(cd_db *db, const char *key_id, cd_apikey *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_KEY_GET, err);
    if (!s)
        return -1;
    bind_text(s, 1, key_id);
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW)
        read_key(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, "", "no such key");
    else
        out_rc = fail_sql(d, err, "key");
    done(s);
    return out_rc;
}

static int sq_key_revoke(cd_db *db, int64_t account_id, const char *key_id, int64_t now_ms,
                         cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_KEY_REVOKE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, account_id);
    bind_text(s, 3, key_id);
    if (step_done(d, s, err, "key revoke") != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0)
        return cd_fail(err, CD_ENOTFOUND, "id", "no such key");
    return 0;
}

static int sq_key_each(cd_db *db, int64_t account_id, cd_key_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_KEY_LIST, err);
    int rc, out = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_apikey k;
        read_key(s, &k);
        if (each(&k, arg) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "keys");
    done(s);
    return out;
}

/* ---- contacts ---- */

static int load_groups(sqlite_db *d, cd_contact *c, cd_err *err)
{
    sqlite3_stmt *s = stmt(d, Q_CONTACT_GROUPS, err);
    int rc;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, c->account_id);
    sqlite3_bind_int64(s, 2, c->id);
    c->groups = json_array();
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(c->groups, json_integer(sqlite3_column_int64(s, 0)));
    done(s);
    return rc == SQLITE_DONE ? 0 : fail_sql(d, err, "contact groups");
}

static void read_contact(sqlite3_stmt *s, cd_contact *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(s, 0);
    c->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, c->phone, sizeof c->phone);
    c->first_name = col_dup(s, 3);
    c->last_name = col_dup(s, 4);
    c->email = col_dup(s, 5);
    c->birthday = col_dup(s, 6);
    c->zip = col_dup(s, 7);
    c->city = col_dup(s, 8);
    for (int i = 0; i < CD_CONTACT_PARAMS; i++)
        c->params[i] = col_dup(s, 9 + i);
    c->custom = col_json(s, 14);
    c->tags = col_json(s, 15);
    c->created_ms = sqlite3_column_int64(s, 16);
    c->updated_ms = sqlite3_column_int64(s, 17);
}

static int contact_one(sqlite_db *d, sqlite3_stmt *s, cd_contact *out, cd_err *err)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        read_contact(s, out);
        done(s);
        if (load_groups(d, out, err) != 0) {
            cd_contact_clear(out);
            return -1;
        }
        return 0;
    }
    done(s);
    if (rc == SQLITE_DONE)
        return cd_fail(err, CD_ENOTFOUND, "", "no such contact");
    return fail_sql(d, err, "contact");
}

static int sq_contact_get(cd_db *db, int64_t account_id, int64_t id, cd_contact *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_CONTACT_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, id);
    return contact_one(d, s, out, err);
}

static int sq_contact_by_phone(cd_db *db, int64_t account_id, const char *e164, cd_contact *out,
                               cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_CONTACT_BY_PHONE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, e164);
    return contact_one(d, s, out, err);
}

static int put_groups(sqlite_db *d, const cd_contact *c, cd_err *err)
{
    sqlite3_stmt *s = stmt(d, Q_CONTACT_GROUPS_CLEAR, err);
    size_t i;
    json_t *g;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, c->account_id);
    sqlite3_bind_int64(s, 2, c->id);
    if (step_done(d, s, err, "contact groups") != 0)
        return -1;
    json_array_foreach (c->groups, i, g) {
        s = stmt(d, Q_CONTACT_GROUPS_ADD, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, c->account_id);
        sqlite3_bind_int64(s, 2, c->id);
        sqlite3_bind_int64(s, 3, json_integer_value(g));
        if (step_done(d, s, err, "contact groups") != 0)
            return -1;
    }
    return 0;
}

static int sq_contact_put(cd_db *db, cd_contact *c, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, c->id ? Q_CONTACT_UPDATE : Q_CONTACT_INSERT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, c->account_id);
    bind_text(s, 2, c->phone);
    bind_text(s, 3, c->first_name);
    bind_text(s, 4, c->last_name);
    bind_text(s, 5, c->email);
    bind_text(s, 6, c->birthday);
    bind_text(s, 7, c->zip);
    bind_text(s, 8, c->city);
    for (int i = 0; i < CD_CONTACT_PARAMS; i++)
        bind_text(s, 9 + i, c->params[i]);
    bind_json(s, 14, c->custom);
    bind_json(s, 15, c->tags);
    if (c->id) {
        sqlite3_bind_int64(s, 17, c->updated_ms);
        sqlite3_bind_int64(s, 18, c->id);
    } else {
        sqlite3_bind_int64(s, 16, c->created_ms);
        sqlite3_bind_int64(s, 17, c->updated_ms);
    }
    if (step_done(d, s, err, "contact") != 0)
        return -1;
    if (c->id == 0)
        c->id = sqlite3_last_insert_rowid(d->h);
    return c->groups ? put_groups(d, c, err) : 0;
}

static int sq_contact_list(cd_db *db, int64_t account_id, const cd_contact_filter *f,
                           cd_contact_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_CONTACT_LIST, err);
    int rc, out = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, f->after_id);
    sqlite3_bind_int64(s, 3, f->group_id);
    bind_text(s, 4, f->tag);
    bind_text(s, 5, f->q);
    sqlite3_bind_int(s, 6, f->limit);
    /* Rows are collected first: loading each contact's groups needs another statement,
     * and stepping two statements at once on one connection is fine, but the callback
     * should see a complete record. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_contact c;
        read_contact(s, &c);
        int stop = load_groups(d, &c, err) != 0 ? -1 : each(&c, arg);
        cd_contact_clear(&c);
        if (stop < 0) {
            done(s);
            return -1;
        }
        if (stop)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "contacts");
    done(s);
    return out;
}

/* ---- groups and message types ---- */

static bool is_group(const char *kind)
{
    return strcmp(kind, "group") == 0;
}

static void read_named(sqlite3_stmt *s, cd_named *n)
{
    memset(n, 0, sizeof *n);
    n->id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, n->name, sizeof n->name);
    n->created_ms = sqlite3_column_int64(s, 2);
}

static int sq_named_insert(cd_db *db, const char *kind, int64_t account_id, cd_named *n,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s;
    if (is_group(kind)) {
        if (!(s = stmt(d, Q_GROUP_INSERT, err)))
            return -1;
        sqlite3_bind_int64(s, 1, account_id);
        bind_text(s, 2, n->name);
        sqlite3_bind_int64(s, 3, n->created_ms);
        if (step_done(d, s, err, "group") != 0)
            return -1;
        n->id = sqlite3_last_insert_rowid(d->h);
        return 0;
    }
    if (n->id == 0) {
        if (!(s = stmt(d, Q_TYPE_NEXT_ID, err)))
            return -1;
        sqlite3_bind_int64(s, 1, account_id);
        if (sqlite3_step(s) == SQLITE_ROW)
            n->id = sqlite3_column_int64(s, 0);
        done(s);
    }
    if (!(s = stmt(d, Q_TYPE_INSERT, err)))
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, n->id);
    bind_text(s, 3, n->name);
    sqlite3_bind_int64(s, 4, n->created_ms);
    return step_done(d, s, err, "message type");
}

static int named_one(sqlite_db *d, sqlite3_stmt *s, cd_named *out, cd_err *err)
{
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW)
        read_named(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, "", "not found");
    else
        out_rc = fail_sql(d, err, "named");
    done(s);
    return out_rc;
}

static int sq_named_get(cd_db *db, const char *kind, int64_t account_id, int64_t id, cd_named *out,
                        cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, is_group(kind) ? Q_GROUP_GET : Q_TYPE_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, id);
    return named_one(d, s, out, err);
}

static int sq_named_by_name(cd_db *db, const char *kind, int64_t account_id, const char *name,
                            cd_named *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, is_group(kind) ? Q_GROUP_BY_NAME : Q_TYPE_BY_NAME, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, name);
    return named_one(d, s, out, err);
}

static int sq_named_list(cd_db *db, const char *kind, int64_t account_id, int64_t after_id,
                         int limit, cd_named_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, is_group(kind) ? Q_GROUP_LIST : Q_TYPE_LIST, err);
    int rc, out = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, after_id);
    sqlite3_bind_int(s, 3, limit);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_named n;
        read_named(s, &n);
        if (each(&n, arg) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "list");
    done(s);
    return out;
}

/* ---- consents ---- */

static void read_consent(sqlite3_stmt *s, cd_consent *c)
{
    memset(c, 0, sizeof *c);
    col_copy(s, 0, c->scope, sizeof c->scope);
    col_copy(s, 1, c->state, sizeof c->state);
    c->updated_ms = sqlite3_column_int64(s, 2);
}

static int sq_consent_get(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                          cd_consent *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_CONSENT_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    bind_text(s, 3, scope);
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW)
        read_consent(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, "scope", "no consent state");
    else
        out_rc = fail_sql(d, err, "consent");
    done(s);
    return out_rc;
}

static int sq_consent_put(cd_db *db, int64_t account_id, int64_t contact_id, const cd_consent *c,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_CONSENT_PUT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    bind_text(s, 3, c->scope);
    bind_text(s, 4, c->state);
    sqlite3_bind_int64(s, 5, c->updated_ms);
    return step_done(d, s, err, "consent");
}

static int sq_consent_delete(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                             cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_CONSENT_DELETE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    bind_text(s, 3, scope);
    return step_done(d, s, err, "consent delete");
}

static int sq_consent_list(cd_db *db, int64_t account_id, int64_t contact_id,
                           cd_consent_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_CONSENT_LIST, err);
    int rc, out = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_consent c;
        read_consent(s, &c);
        if (each(&c, arg) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "consents");
    done(s);
    return out;
}

/* ---- the ledger ---- */

static void read_event(sqlite3_stmt *s, cd_event *e)
{
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

static int sq_event_insert(cd_db *db, cd_event *e, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_EVENT_INSERT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, e->account_id);
    sqlite3_bind_int64(s, 2, e->seq);
    sqlite3_bind_int64(s, 3, e->contact_id);
    const char *text[] = {e->phone,   e->scope,         e->old_state, e->new_state,
                          e->surface, e->channel,       e->keyword,   e->disclosure_sha256,
                          e->ip,      e->user_agent,    e->site,      e->session,
                          e->ext_ref, e->credential_id, e->request_id};
    for (int i = 0; i < (int)(sizeof text / sizeof text[0]); i++)
        bind_text(s, 4 + i, text[i]);
    sqlite3_bind_int64(s, 19, e->created_ms);
    bind_text(s, 20, e->prev_hash);
    bind_text(s, 21, e->hash);
    if (step_done(d, s, err, "event") != 0)
        return -1;
    e->id = sqlite3_last_insert_rowid(d->h);
    return 0;
}

static int each_event(sqlite_db *d, sqlite3_stmt *s, cd_event_each_fn each, void *arg, cd_err *err)
{
    int rc, out = 0;
    cd_event *e = cd_xmalloc(sizeof *e); /* ~1.5 KB: keep it off small thread stacks */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_event(s, e);
        if (each(e, arg) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "events");
    done(s);
    free(e);
    return out;
}

static int sq_event_list(cd_db *db, int64_t account_id, const cd_event_filter *f,
                         cd_event_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_EVENT_LIST, err);
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

static int sq_event_scan(cd_db *db, int64_t account_id, cd_event_each_fn each, void *arg,
                         cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_EVENT_SCAN, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    return each_event(d, s, each, arg, err);
}

/* ---- outbox ---- */

static void read_message(sqlite3_stmt *s, cd_message *m)
{
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
        bind_text(s, 13, "[]");
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

static int sq_message_insert(cd_db *db, const cd_message *m, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_INSERT, err);
    if (!s)
        return -1;
    bind_message(s, m);
    bind_text(s, 23, m->action); /* set once: Q_MESSAGE_UPDATE has no ?23 */
    return step_done(d, s, err, "message");
}

static int sq_message_count(cd_db *db, int64_t account_id, const char *to, const char *kind,
                            const char *action, int64_t since_ms, int *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_COUNT, err);
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
    return rc == SQLITE_ROW ? 0 : fail_sql(d, err, "message count");
}

static int sq_message_update(cd_db *db, const cd_message *m, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_UPDATE, err);
    if (!s)
        return -1;
    bind_message(s, m);
    return step_done(d, s, err, "message update");
}

static int each_message(sqlite_db *d, sqlite3_stmt *s, cd_message_each_fn each, void *arg,
                        cd_err *err)
{
    int rc, out = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_message m;
        read_message(s, &m);
        int stop = each(&m, sqlite3_column_int64(s, 0), arg);
        cd_message_clear(&m);
        if (stop)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "messages");
    done(s);
    return out;
}

static int sq_message_due(cd_db *db, int64_t now_ms, int limit, cd_message_each_fn each, void *arg,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_DUE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    return each_message(d, s, each, arg, err);
}

static int sq_message_next_due(cd_db *db, int64_t *out_ms, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_NEXT_DUE, err);
    if (!s)
        return -1;
    int rc = sqlite3_step(s);
    *out_ms = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    done(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail_sql(d, err, "next due");
}

static int sq_message_requeue_sending(cd_db *db, int64_t now_ms, int *count, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_REQUEUE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    if (step_done(d, s, err, "requeue") != 0)
        return -1;
    *count = sqlite3_changes(d->h);
    return 0;
}

static int sq_message_claim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                            bool *claimed, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_CLAIM, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, account_id);
    bind_text(s, 3, id);
    if (step_done(d, s, err, "claim") != 0)
        return -1;
    *claimed = sqlite3_changes(d->h) == 1;
    return 0;
}

static int sq_message_refuse_queued(cd_db *db, int64_t account_id, int64_t contact_id,
                                    const char *scope, int64_t now_ms, const char *reason,
                                    int *count, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_REFUSE_QUEUED, err);
    char at[CD_TIME_LEN];
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
    if (step_done(d, s, err, "refuse queued") != 0)
        return -1;
    if (count)
        *count = sqlite3_changes(d->h);
    return 0;
}

static int sq_message_unclaim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                              cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_UNCLAIM, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    sqlite3_bind_int64(s, 3, now_ms);
    return step_done(d, s, err, "unclaim");
}

static int sq_message_due_fair(cd_db *db, int64_t now_ms, int limit, const cd_due_filter *f,
                               cd_message_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_DUE_FAIR, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    bind_text(s, 3, f && f->default_transport ? f->default_transport : "");
    for (int i = 0; i < 3; i++) /* "" matches no resolved transport: a NULL would match none */
        bind_text(s, 4 + i, f && f->skip[i] ? f->skip[i] : "");
    return each_message(d, s, each, arg, err);
}

static int sq_unrouted_insert(cd_db *db, cd_unrouted *u, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_UNROUTED_INSERT, err);
    if (!s)
        return -1;
    bind_text(s, 1, u->from);
    bind_text(s, 2, u->to);
    bind_text(s, 3, u->text ? u->text : "");
    bind_text(s, 4, u->provider_id);
    bind_text(s, 5, u->transport);
    sqlite3_bind_int64(s, 6, u->received_ms);
    if (step_done(d, s, err, "unrouted inbound") != 0)
        return -1;
    u->id = sqlite3_last_insert_rowid(d->h);
    return 0;
}

static int sq_unrouted_list(cd_db *db, int limit, cd_unrouted_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_UNROUTED_LIST, err);
    int rc, out = 0;
    if (!s)
        return -1;
    sqlite3_bind_int(s, 1, limit);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_unrouted u = {.id = sqlite3_column_int64(s, 0)};
        col_copy(s, 1, u.from, sizeof u.from);
        col_copy(s, 2, u.to, sizeof u.to);
        u.text = col_dup(s, 3);
        col_copy(s, 4, u.provider_id, sizeof u.provider_id);
        col_copy(s, 5, u.transport, sizeof u.transport);
        u.received_ms = sqlite3_column_int64(s, 6);
        int stop = each(&u, arg);
        free(u.text);
        if (stop)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "unrouted inbound");
    done(s);
    return out;
}

static int sq_part_insert(cd_db *db, const char *transport, const char *remote_id,
                          int64_t account_id, const char *message_id, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_PART_INSERT, err);
    if (!s)
        return -1;
    bind_text(s, 1, transport);
    bind_text(s, 2, remote_id);
    sqlite3_bind_int64(s, 3, account_id);
    bind_text(s, 4, message_id);
    return step_done(d, s, err, "message part");
}

static int sq_part_status(cd_db *db, const char *transport, const char *remote_id,
                          const char *status, int64_t account_id, const char *message_id,
                          int counts[3], cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_PART_STATUS, err);
    if (!s)
        return -1;
    bind_text(s, 1, status);
    bind_text(s, 2, transport);
    bind_text(s, 3, remote_id);
    if (step_done(d, s, err, "part status") != 0)
        return -1;
    if (!(s = stmt(d, Q_PART_COUNTS, err)))
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, message_id);
    int rc = sqlite3_step(s);
    for (int i = 0; i < 3; i++)
        counts[i] = rc == SQLITE_ROW ? sqlite3_column_int(s, i) : 0;
    done(s);
    return rc == SQLITE_ROW ? 0 : fail_sql(d, err, "part counts");
}

static int message_one(sqlite_db *d, sqlite3_stmt *s, cd_message *out, cd_err *err)
{
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW)
        read_message(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, "", "no such message");
    else
        out_rc = fail_sql(d, err, "message");
    done(s);
    return out_rc;
}

static int sq_part_message(cd_db *db, const char *transport, const char *remote_id, cd_message *out,
                           cd_err *err)
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
        return fail_sql(d, err, "part");
    bind_text(p, 1, transport);
    bind_text(p, 2, remote_id);
    if (sqlite3_step(p) == SQLITE_ROW)
        account_id = sqlite3_column_int64(p, 0);
    sqlite3_finalize(p);
    if (account_id == 0)
        return cd_fail(err, CD_ENOTFOUND, "", "no such part");
    sqlite3_stmt *s = stmt(d, Q_PART_MESSAGE, err);
    if (!s)
        return -1;
    bind_text(s, 1, transport);
    bind_text(s, 2, remote_id);
    sqlite3_bind_int64(s, 3, account_id);
    return message_one(d, s, out, err);
}

static int sq_message_get(cd_db *db, int64_t account_id, const char *id, cd_message *out,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    return message_one(d, s, out, err);
}

static int sq_message_list(cd_db *db, int64_t account_id, const cd_message_filter *f,
                           cd_message_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_MESSAGE_LIST, err);
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

static void read_flow(sqlite3_stmt *s, cd_flow *f)
{
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
}

static void bind_flow(sqlite3_stmt *s, const cd_flow *f)
{
    bind_text(s, 1, f->id);
    sqlite3_bind_int64(s, 2, f->account_id);
    sqlite3_bind_int64(s, 3, f->contact_id);
    bind_text(s, 4, f->phone);
    bind_text(s, 5, f->ext_ref);
    if (f->scopes)
        bind_json(s, 6, f->scopes);
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
}

static int sq_flow_insert(cd_db *db, const cd_flow *f, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_FLOW_INSERT, err);
    if (!s)
        return -1;
    bind_flow(s, f);
    return step_done(d, s, err, "flow");
}

static int sq_flow_update(cd_db *db, const cd_flow *f, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_FLOW_UPDATE, err);
    if (!s)
        return -1;
    bind_flow(s, f);
    return step_done(d, s, err, "flow update");
}

static int sq_flow_get(cd_db *db, int64_t account_id, const char *id, cd_flow *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_FLOW_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, id);
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW)
        read_flow(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, "", "no such flow");
    else
        out_rc = fail_sql(d, err, "flow");
    done(s);
    return out_rc;
}

static int each_flow(sqlite_db *d, sqlite3_stmt *s, cd_flow_each_fn each, void *arg, cd_err *err)
{
    int rc, out = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_flow f;
        read_flow(s, &f);
        int stop = each(&f, sqlite3_column_int64(s, 0), arg);
        cd_flow_clear(&f);
        if (stop)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "flows");
    done(s);
    return out;
}

static int sq_flow_list(cd_db *db, int64_t account_id, const cd_flow_filter *f,
                        cd_flow_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_FLOW_LIST, err);
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

static int sq_flow_expired(cd_db *db, int64_t now_ms, int limit, cd_flow_each_fn each, void *arg,
                           cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_FLOW_EXPIRED, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    return each_flow(d, s, each, arg, err);
}

/* ---- senders and settings ---- */

static void read_sender(sqlite3_stmt *s, cd_sender *o)
{
    memset(o, 0, sizeof *o);
    col_copy(s, 0, o->number, sizeof o->number);
    o->account_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, o->transport, sizeof o->transport);
    o->is_default = sqlite3_column_int(s, 3) != 0;
    o->created_ms = sqlite3_column_int64(s, 4);
}

static int sq_sender_put(cd_db *db, const cd_sender *o, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_SENDER_PUT, err);
    if (!s)
        return -1;
    bind_text(s, 1, o->number);
    sqlite3_bind_int64(s, 2, o->account_id);
    bind_text(s, 3, o->transport);
    sqlite3_bind_int(s, 4, o->is_default);
    sqlite3_bind_int64(s, 5, o->created_ms);
    if (step_done(d, s, err, "sender") != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0) /* the number belongs to another account */
        return cd_fail(err, CD_ECONFLICT, "number", "that number is not available");
    return 0;
}

static int sq_sender_get(cd_db *db, const char *number, cd_sender *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_SENDER_GET, err);
    if (!s)
        return -1;
    bind_text(s, 1, number);
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW)
        read_sender(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, "", "no such sender");
    else
        out_rc = fail_sql(d, err, "sender");
    done(s);
    return out_rc;
}

static int sq_sender_delete(cd_db *db, int64_t account_id, const char *number, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_SENDER_DELETE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, number);
    if (step_done(d, s, err, "sender") != 0)
        return -1;
    return sqlite3_changes(d->h) ? 0 : cd_fail(err, CD_ENOTFOUND, "", "no such sender");
}

static int sq_sender_list(cd_db *db, int64_t account_id, cd_sender_each_fn each, void *arg,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_SENDER_LIST, err);
    int rc, out = 0;
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        cd_sender o;
        read_sender(s, &o);
        if (each(&o, arg) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = fail_sql(d, err, "senders");
    done(s);
    return out;
}

static int sq_settings_get(cd_db *db, int64_t account_id, json_t **out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_SETTINGS_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    int rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? col_json(s, 0) : NULL;
    done(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail_sql(d, err, "settings");
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = json_object();
    }
    return 0;
}

static int sq_settings_put(cd_db *db, int64_t account_id, const json_t *settings, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_SETTINGS_PUT, err);
    if (!s)
        return -1;
    bind_json(s, 1, settings);
    sqlite3_bind_int64(s, 2, account_id);
    return step_done(d, s, err, "settings");
}

/* ---- idempotency ---- */

static int sq_idem_get(cd_db *db, int64_t account_id, const char *key, cd_idem *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_IDEM_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, key);
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        col_copy(s, 0, out->request_hash, sizeof out->request_hash);
        out->status = sqlite3_column_int(s, 1);
        out->body = col_dup(s, 2);
        out->created_ms = sqlite3_column_int64(s, 3);
    } else if (rc == SQLITE_DONE) {
        out_rc = cd_fail(err, CD_ENOTFOUND, "", "unknown key");
    } else {
        out_rc = fail_sql(d, err, "idempotency");
    }
    done(s);
    return out_rc;
}

static int sq_idem_put(cd_db *db, int64_t account_id, const char *key, const cd_idem *in,
                       cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_IDEM_PUT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, key);
    bind_text(s, 3, in->request_hash);
    sqlite3_bind_int(s, 4, in->status);
    bind_text(s, 5, in->body ? in->body : "");
    sqlite3_bind_int64(s, 6, in->created_ms);
    return step_done(d, s, err, "idempotency");
}

static int sq_idem_purge(cd_db *db, int64_t before_ms, int limit, int *count, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = stmt(d, Q_IDEM_PURGE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int(s, 2, limit);
    if (step_done(d, s, err, "idempotency purge") != 0)
        return -1;
    *count = sqlite3_changes(d->h);
    return 0;
}

const struct cd_store_ops cd_store__sqlite_ops = {
    .scheme = "sqlite",
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .migrate = sq_migrate,
    .exec = exec_sql,
    .in_transaction = sq_in_transaction,
    .account_insert = sq_account_insert,
    .account_get = sq_account_get,
    .account_set_head = sq_account_set_head,
    .account_sign_head = sq_account_sign_head,
    .account_each = sq_account_each,
    .key_insert = sq_key_insert,
    .key_get = sq_key_get,
    .key_revoke = sq_key_revoke,
    .key_each = sq_key_each,
    .contact_get = sq_contact_get,
    .contact_by_phone = sq_contact_by_phone,
    .contact_put = sq_contact_put,
    .contact_list = sq_contact_list,
    .named_insert = sq_named_insert,
    .named_get = sq_named_get,
    .named_by_name = sq_named_by_name,
    .named_list = sq_named_list,
    .consent_get = sq_consent_get,
    .consent_put = sq_consent_put,
    .consent_delete = sq_consent_delete,
    .consent_list = sq_consent_list,
    .event_insert = sq_event_insert,
    .event_list = sq_event_list,
    .event_scan = sq_event_scan,
    .message_insert = sq_message_insert,
    .message_count = sq_message_count,
    .message_get = sq_message_get,
    .message_list = sq_message_list,
    .message_update = sq_message_update,
    .message_due = sq_message_due,
    .message_next_due = sq_message_next_due,
    .message_requeue_sending = sq_message_requeue_sending,
    .message_claim = sq_message_claim,
    .message_refuse_queued = sq_message_refuse_queued,
    .message_due_fair = sq_message_due_fair,
    .message_unclaim = sq_message_unclaim,
    .unrouted_insert = sq_unrouted_insert,
    .unrouted_list = sq_unrouted_list,
    .part_insert = sq_part_insert,
    .part_status = sq_part_status,
    .part_message = sq_part_message,
    .flow_insert = sq_flow_insert,
    .flow_update = sq_flow_update,
    .flow_get = sq_flow_get,
    .flow_list = sq_flow_list,
    .flow_expired = sq_flow_expired,
    .sender_put = sq_sender_put,
    .sender_get = sq_sender_get,
    .sender_delete = sq_sender_delete,
    .sender_list = sq_sender_list,
    .settings_get = sq_settings_get,
    .settings_put = sq_settings_put,
    .idem_get = sq_idem_get,
    .idem_put = sq_idem_put,
    .idem_purge = sq_idem_purge,
};
