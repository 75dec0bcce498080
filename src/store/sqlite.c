/* store/sqlite.c -- the SQLite backend.
 *
 * One connection per cd_db. Every statement is prepared once per connection, on first
 * use, and kept (SQLITE_PREPARE_PERSISTENT); statements are named by the Q enum so a
 * lookup is an array index. The write connection is used by the writer thread only;
 * readers are pooled by store.c. WAL lets readers run while the writer commits, and
 * synchronous=FULL makes each COMMIT durable before the writer reports its jobs done. */
#include "store/sqlite_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
extern const char cd_sqlite_0007[]; /* issue 10 */
extern const char cd_sqlite_0008[]; /* issue 12 */
extern const char cd_sqlite_0009[]; /* issue 15: jobs */
extern const char cd_sqlite_0010[]; /* issue 14 */
extern const char cd_sqlite_0011[]; /* issue 15: webhooks */
extern const char cd_sqlite_0013[]; /* issue 11 */
extern const char cd_sqlite_0015[]; /* issue 16 */
extern const char cd_sqlite_0017[]; /* issue 10: flows indexes */
extern const char cd_sqlite_0018[]; /* issues 11, 12: consents' CHECK, submissions */

/* In file-number order: a database's version is the count applied. */
static const char *const migrations[] = {
    cd_sqlite_0001, cd_sqlite_0002, cd_sqlite_0003, cd_sqlite_0004, cd_sqlite_0005,
    cd_sqlite_0006, cd_sqlite_0007, cd_sqlite_0008, cd_sqlite_0009, cd_sqlite_0010,
    cd_sqlite_0011, cd_sqlite_0013, cd_sqlite_0015, cd_sqlite_0017, cd_sqlite_0018};

#define CONTACT_COLS                                                                               \
    "id, account_id, phone, first_name, last_name, email, birthday, zip, city, param1, "           \
    "param2, param3, param4, param5, custom, tags, created_ms, updated_ms"
/* issue 16: a contact's group ids ("3,7") in the row that reads it, one statement a contact */
#define CONTACT_GROUP_IDS                                                                          \
    "(SELECT group_concat(group_id) FROM (SELECT group_id FROM contact_groups g "                  \
    "WHERE g.account_id = c.account_id AND g.contact_id = c.id ORDER BY group_id))"
#define EVENT_COLS                                                                                 \
    "id, account_id, seq, contact_id, phone, scope, old_state, new_state, surface, channel, "      \
    "keyword, disclosure_sha256, ip, user_agent, site, session, ext_ref, credential_id, "          \
    "request_id, created_ms, prev_hash, hash"
#define ACCOUNT_COLS                                                                               \
    "id, name, login, brand, region, timezone, jwt_secret, created_ms, ledger_seq, ledger_head, "  \
    "ledger_sig"

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
    [Q_KEY_AUTH] = "SELECT k.id, k.account_id, k.name, k.hash, k.created_ms, k.revoked_ms, "
                   "a.id, a.name, a.login, a.brand, a.region, a.timezone, a.jwt_secret, "
                   "a.created_ms, a.ledger_seq, a.ledger_head, a.ledger_sig "
                   "FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = ?",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked_ms = ? WHERE account_id = ? AND id = ? "
                     "AND revoked_ms = 0",
    [Q_KEY_LIST] = "SELECT id, account_id, name, hash, created_ms, revoked_ms FROM api_keys "
                   "WHERE account_id = ? ORDER BY created_ms, id",
    [Q_CONTACT_GET] = "SELECT " CONTACT_COLS ", " CONTACT_GROUP_IDS
                      " FROM contacts c WHERE account_id = ? AND id = ?",
    [Q_CONTACT_BY_PHONE] = "SELECT " CONTACT_COLS ", " CONTACT_GROUP_IDS " FROM contacts c "
                           "WHERE account_id = ? AND phone = ?",
    [Q_CONTACT_ID_BY_PHONE] = "SELECT id FROM contacts WHERE account_id = ? AND phone = ?",
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
    /* issue 12 (perf): every column is given, and no trigger, foreign key or other unique
     * key involves consents, so REPLACE leaves what the UPSERT did (the row with these
     * values) with less work: ~20% fewer instructions for an existing row. */
    [Q_CONSENT_PUT] = "INSERT OR REPLACE INTO consents (account_id, contact_id, scope, state, "
                      "updated_ms) VALUES (?, ?, ?, ?, ?)",
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
    /* issue 11: driven by the blacklist (the partial index of 0013), not by the list */
    [Q_GROUP_DROP_OPTED_OUT] = "DELETE FROM contact_groups WHERE account_id = ?1 AND "
                               "group_id = ?2 AND contact_id IN (SELECT contact_id FROM "
                               "consents WHERE account_id = ?1 AND scope = 'all' AND "
                               "state = 'opted_out')",
    /* issue 11: a batch's new members in one statement (?3: a JSON array of contact ids) */
    [Q_GROUP_ADD_MEMBERS] = "INSERT OR IGNORE INTO contact_groups (account_id, contact_id, "
                            "group_id) SELECT ?1, value, ?2 FROM json_each(?3)",
    /* issue 11: json_each first (CROSS JOIN keeps that order), each number probed through
     * UNIQUE (account_id, phone); ?2 is a JSON array of numbers, key their index in it */
    [Q_CONTACT_IDS_BY_PHONES] = "SELECT j.key, c.id FROM json_each(?2) j CROSS JOIN contacts c "
                                "ON c.account_id = ?1 AND c.phone = j.value",
    /* issue 10: served by events_contact (account_id, contact_id, seq) */
    [Q_EVENT_LAST] = "SELECT " EVENT_COLS " FROM events WHERE account_id = ? AND contact_id = ? "
                     "AND scope = ? ORDER BY seq DESC LIMIT 1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT job",
    [Q_RELEASE] = "RELEASE job",
    [Q_ROLLBACK_TO] = "ROLLBACK TO job",
    [Q_DATA_VERSION] = "PRAGMA data_version",
};

/* ---- the helpers sqlite_int.h declares ---- */

int cd_sqlite__fail(sqlite_db *d, cd_err *err, const char *what)
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

sqlite3_stmt *cd_sqlite__stmt(sqlite_db *d, enum q q, cd_err *err)
{
    return cd_sqlite__prepared(d, q, SQL[q] != NULL ? SQL[q] : cd_sqlite__msg_sql[q], err);
}

sqlite3_stmt *cd_sqlite__prepared(sqlite_db *d, enum q q, const char *sql, cd_err *err)
{
    if (d->st[q] == NULL && sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &d->st[q],
                                               NULL) != SQLITE_OK) {
        cd_sqlite__fail(d, err, "prepare");
        return NULL;
    }
    return d->st[q];
}

int cd_sqlite__step_done(sqlite_db *d, sqlite3_stmt *s, cd_err *err, const char *what)
{
    int rc = sqlite3_step(s);
    int out = rc == SQLITE_DONE ? 0 : cd_sqlite__fail(d, err, what);
    done(s);
    return out;
}

int cd_sqlite__one(sqlite_db *d, sqlite3_stmt *s, const cd_sqlite__row *row, void *out, cd_err *err)
{
    int rc = sqlite3_step(s), out_rc = 0;
    if (rc == SQLITE_ROW)
        row->read(s, out);
    else if (rc == SQLITE_DONE)
        out_rc = cd_fail(err, CD_ENOTFOUND, row->field, "%s", row->missing);
    else
        out_rc = cd_sqlite__fail(d, err, row->what);
    done(s);
    return out_rc;
}

int cd_sqlite__each(sqlite_db *d, sqlite3_stmt *s, int (*each)(sqlite3_stmt *s, void *arg),
                    void *arg, const char *what, cd_err *err)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int stop = each(s, arg);
        if (stop != 0) {
            done(s);
            return stop < 0 ? -1 : 0;
        }
    }
    int out = rc == SQLITE_DONE ? 0 : cd_sqlite__fail(d, err, what);
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
            sqlite3_stmt *s = cd_sqlite__stmt(d, (enum q)q, err);
            int rc = s ? cd_sqlite__step_done(d, s, err, "transaction") : -1;
            if (q == Q_BEGIN && rc == 0)
                cd_sqlite__cache_began(d);
            else if (q == Q_COMMIT && rc == 0)
                d->cache.committed = true;
            else if (q == Q_ROLLBACK || q == Q_ROLLBACK_TO)
                cd_sqlite__cache_clear(d);
            return rc;
        }
    }
    if (sqlite3_exec(d->h, sql, NULL, NULL, NULL) != SQLITE_OK)
        return cd_sqlite__fail(d, err, "exec");
    return 0;
}

static bool sq_in_transaction(cd_db *db)
{
    return sqlite3_get_autocommit(SDB(db)->h) == 0;
}

static void *sq_sync_start(cd_db *db)
{
    return cd_sqlite__sync_start(SDB(db));
}

static int sq_commit_nosync(cd_db *db, cd_err *err)
{
    return cd_sqlite__commit_nosync(SDB(db), exec_sql, err);
}

static int sq_sync_now(void *sync, cd_err *err)
{
    return cd_sqlite__sync_now(sync, err);
}

static void sq_sync_idle(void *sync)
{
    cd_sqlite__sync_idle(sync);
}

static void sq_sync_stop(cd_db *db)
{
    cd_sqlite__sync_stop(SDB(db));
}

/* issue 16: SQLite counts every allocation for sqlite3_status() under one global mutex,
 * which every connection's thread takes twice per malloc/free pair (a tenth of the
 * writer's time for an Omeda submission). consentd never reads those counters. This
 * must run before SQLite initializes; when something initialized it first, the call
 * fails harmlessly and the counters stay on. */
static void sqlite_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    cd_sqlite__walbuf_vfs();
}

static cd_db *sq_connect(cd_store *s, const char *url, bool writer, cd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_config);
    const char *path = url + strlen("sqlite:");
    sqlite_db *d = cd_xcalloc(1, sizeof *d);
    d->base.ops = &cd_store__sqlite_ops;
    d->base.store = s;
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    if (writer)
        cd_sqlite__create_private(path);
    if (sqlite3_open_v2(path, &d->h, flags, writer ? cd_sqlite__walbuf_vfs() : NULL) != SQLITE_OK) {
        cd_fail(err, CD_ESTORE, "db", "cannot open the database %s", path);
        sqlite3_close(d->h);
        free(d);
        return NULL;
    }
    /* The writer sets the journal mode once for the file; readers only need the timeout
     * for the rare moment a checkpoint holds the WAL index. The busy timeout on the writer
     * is only for an operator's CLI writing while the server runs: inside the server there
     * is no other writer to wait for. issue 16: temp_store=MEMORY keeps the writer's
     * statement journal (what each job's SAVEPOINT needs to roll back) in memory. On a
     * file it outgrew SQLite's 64 KiB spill limit in every batch and went to a temporary
     * file, page by page (a pwrite for every page a job first touches: a third of the
     * writer's time for a ProTexting opt-in); in memory it is emptied at each RELEASE.
     * Nothing durable lives there: the WAL and its fsync are unchanged. */
    const char *pragmas = writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                   "PRAGMA foreign_keys=OFF; PRAGMA busy_timeout=10000; "
                                   "PRAGMA cache_size=-16000; PRAGMA temp_store=MEMORY;"
                                 : "PRAGMA busy_timeout=5000; PRAGMA cache_size=-8000;";
    if (sqlite3_exec(d->h, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        cd_sqlite__fail(d, err, "pragma");
        sqlite3_close(d->h);
        free(d);
        return NULL;
    }
    /* The writer runs a few dozen statements per request: a larger lookaside (SQLite's
     * per-connection pool for its small allocations; 1 MiB instead of 120 KiB) keeps most
     * of them out of malloc. Measured: about 3% of the writer's time on Octopush batches. */
    if (writer) {
        sqlite3_db_config(d->h, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 2048);
        cd_sqlite__cache_start(d);
    }
    return &d->base;
}

static void sq_disconnect(cd_db *db)
{
    sqlite_db *d = SDB(db);
    cd_sqlite__cache_stop(d);
    cd_sqlite__rows_free(d);
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
        return cd_sqlite__fail(d, err, "migrate");
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

/* Reads ACCOUNT_COLS from column `c` on. */
static void read_account_at(sqlite3_stmt *s, int c, cd_account *a)
{
    memset(a, 0, sizeof *a);
    a->id = sqlite3_column_int64(s, c);
    col_copy(s, c + 1, a->name, sizeof a->name);
    col_copy(s, c + 2, a->login, sizeof a->login);
    col_copy(s, c + 3, a->brand, sizeof a->brand);
    col_copy(s, c + 4, a->region, sizeof a->region);
    col_copy(s, c + 5, a->timezone, sizeof a->timezone);
    col_copy(s, c + 6, a->jwt_secret, sizeof a->jwt_secret);
    a->created_ms = sqlite3_column_int64(s, c + 7);
    a->ledger_seq = sqlite3_column_int64(s, c + 8);
    col_copy(s, c + 9, a->ledger_head, sizeof a->ledger_head);
    col_copy(s, c + 10, a->ledger_sig, sizeof a->ledger_sig);
}

static void read_account(sqlite3_stmt *s, void *out)
{
    read_account_at(s, 0, out);
}

static int sq_account_insert(cd_db *db, cd_account *a, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_ACCOUNT_INSERT, err);
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
    if (cd_sqlite__step_done(d, s, err, "account") != 0)
        return -1;
    a->id = sqlite3_last_insert_rowid(d->h);
    return 0;
}

static const cd_sqlite__row ACCOUNT_ROW = {read_account, "account", "account", "no such account"};

static int sq_account_get(cd_db *db, const char *by, const char *value, cd_account *out,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    enum q q = strcmp(by, "id") == 0      ? Q_ACCOUNT_BY_ID
               : strcmp(by, "name") == 0  ? Q_ACCOUNT_BY_NAME
               : strcmp(by, "login") == 0 ? Q_ACCOUNT_BY_LOGIN
                                          : Q_ACCOUNT_BY_BRAND;
    sqlite3_stmt *s = cd_sqlite__stmt(d, q, err);
    if (!s)
        return -1;
    if (q == Q_ACCOUNT_BY_ID)
        sqlite3_bind_int64(s, 1, strtoll(value, NULL, 10));
    else
        bind_text(s, 1, value);
    return cd_sqlite__one(d, s, &ACCOUNT_ROW, out, err);
}

static int sq_account_set_head(cd_db *db, int64_t account_id, int64_t seq, const char *hash,
                               cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_ACCOUNT_SET_HEAD, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, seq);
    bind_text(s, 2, hash);
    sqlite3_bind_int64(s, 3, account_id);
    return cd_sqlite__step_done(d, s, err, "ledger head");
}

static int sq_account_sign_head(cd_db *db, int64_t account_id, const char *sig, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_ACCOUNT_SIGN_HEAD, err);
    if (!s)
        return -1;
    bind_text(s, 1, sig);
    sqlite3_bind_int64(s, 2, account_id);
    return cd_sqlite__step_done(d, s, err, "ledger head");
}

typedef struct account_each {
    cd_account_each_fn fn;
    void *arg;
} account_each;

static int account_row(sqlite3_stmt *s, void *arg)
{
    const account_each *e = arg;
    cd_account a;
    read_account(s, &a);
    return e->fn(&a, e->arg) != 0;
}

static int sq_account_each(cd_db *db, cd_account_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_ACCOUNT_ALL, err);
    account_each e = {each, arg};
    return s ? cd_sqlite__each(d, s, account_row, &e, "accounts", err) : -1;
}

static void read_key(sqlite3_stmt *s, void *out)
{
    cd_apikey *k = out;
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
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_KEY_INSERT, err);
    if (!s)
        return -1;
    bind_text(s, 1, k->id);
    sqlite3_bind_int64(s, 2, k->account_id);
    bind_text(s, 3, k->name);
    bind_text(s, 4, k->hash);
    sqlite3_bind_int64(s, 5, k->created_ms);
    return cd_sqlite__step_done(d, s, err, "key");
}

static const cd_sqlite__row KEY_ROW = {read_key, "key", "", "no such key"};

static int sq_key_get(cd_db *db, const char *key_id, cd_apikey *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_KEY_GET, err);
    if (!s)
        return -1;
    bind_text(s, 1, key_id);
    return cd_sqlite__one(d, s, &KEY_ROW, out, err);
}

static int sq_key_revoke(cd_db *db, int64_t account_id, const char *key_id, int64_t now_ms,
                         cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_KEY_REVOKE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, account_id);
    bind_text(s, 3, key_id);
    if (cd_sqlite__step_done(d, s, err, "key revoke") != 0)
        return -1;
    if (sqlite3_changes(d->h) == 0)
        return cd_fail(err, CD_ENOTFOUND, "id", "no such key");
    return 0;
}

typedef struct key_each {
    cd_key_each_fn fn;
    void *arg;
} key_each;

static int key_row(sqlite3_stmt *s, void *arg)
{
    const key_each *e = arg;
    cd_apikey k;
    read_key(s, &k);
    return e->fn(&k, e->arg) != 0;
}

typedef struct key_account {
    cd_apikey *k;
    cd_account *a;
} key_account;

static void read_key_account(sqlite3_stmt *s, void *out)
{
    key_account *ka = out;
    read_key(s, ka->k);
    read_account_at(s, 6, ka->a);
}

static const cd_sqlite__row KEY_ACCOUNT_ROW = {read_key_account, "key", "", "no such key"};

static int sq_key_auth(cd_db *db, const char *key_id, cd_apikey *k, cd_account *a, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_KEY_AUTH, err);
    key_account ka = {k, a};
    if (!s)
        return -1;
    bind_text(s, 1, key_id);
    return cd_sqlite__one(d, s, &KEY_ACCOUNT_ROW, &ka, err);
}

static int sq_key_each(cd_db *db, int64_t account_id, cd_key_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_KEY_LIST, err);
    key_each e = {each, arg};
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    return cd_sqlite__each(d, s, key_row, &e, "keys", err);
}

/* ---- contacts ---- */

static int group_id_row(sqlite3_stmt *s, void *groups)
{
    json_array_append_new(groups, json_integer(sqlite3_column_int64(s, 0)));
    return 0;
}

static int load_groups(sqlite_db *d, cd_contact *c, cd_err *err)
{
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_GROUPS, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, c->account_id);
    sqlite3_bind_int64(s, 2, c->id);
    c->groups = json_array();
    return cd_sqlite__each(d, s, group_id_row, c->groups, "contact groups", err);
}

static void read_contact(sqlite3_stmt *s, void *out)
{
    cd_contact *c = out;
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

/* A contact row followed by CONTACT_GROUP_IDS: "3,7", or NULL for no group. */
static void read_contact_groups(sqlite3_stmt *s, void *out)
{
    cd_contact *c = out;
    read_contact(s, c);
    c->groups = json_array();
    const char *p = (const char *)sqlite3_column_text(s, 18);
    while (p != NULL && *p != '\0') {
        char *end;
        json_array_append_new(c->groups, json_integer(strtoll(p, &end, 10)));
        p = *end == ',' ? end + 1 : NULL;
    }
}

static const cd_sqlite__row CONTACT_GROUPS_ROW = {read_contact_groups, "contact", "",
                                                  "no such contact"};

/* The one contact s selects (CONTACT_COLS, CONTACT_GROUP_IDS), with its groups. */
static int contact_one(sqlite_db *d, sqlite3_stmt *s, cd_contact *out, cd_err *err)
{
    return cd_sqlite__one(d, s, &CONTACT_GROUPS_ROW, out, err);
}

static int sq_contact_get(cd_db *db, int64_t account_id, int64_t id, cd_contact *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_GET, err);
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
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_BY_PHONE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, e164);
    return contact_one(d, s, out, err);
}

static void read_id(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
}

static const cd_sqlite__row CONTACT_ID_ROW = {read_id, "contact", "", "no such contact"};

static int sq_contact_id_by_phone(cd_db *db, int64_t account_id, const char *e164, int64_t *id,
                                  cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_ID_BY_PHONE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, e164);
    return cd_sqlite__one(d, s, &CONTACT_ID_ROW, id, err);
}

/* The contact's memberships become c->groups. A contact inserted just now has none to
 * clear: contacts are never deleted, so no id is ever given twice (issue 10, perf: the
 * DELETE was one statement in fourteen of a ProTexting opt-in). */
static int put_groups(sqlite_db *d, const cd_contact *c, bool inserted, cd_err *err)
{
    size_t i;
    json_t *g;
    if (!inserted) {
        sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_GROUPS_CLEAR, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, c->account_id);
        sqlite3_bind_int64(s, 2, c->id);
        if (cd_sqlite__step_done(d, s, err, "contact groups") != 0)
            return -1;
    }
    json_array_foreach (c->groups, i, g) {
        sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_GROUPS_ADD, err);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, c->account_id);
        sqlite3_bind_int64(s, 2, c->id);
        sqlite3_bind_int64(s, 3, json_integer_value(g));
        if (cd_sqlite__step_done(d, s, err, "contact groups") != 0)
            return -1;
    }
    return 0;
}

/* A contact's tags as json_dumps(JSON_COMPACT) writes them, without jansson's dump when
 * every tag is printable ASCII without a quote or a backslash (an Octopush batch writes
 * one per contact); other tags go through bind_json. */
/* An array of strings as json_dumps(JSON_COMPACT) writes it, without jansson when every
 * string is printable ASCII without a quote or a backslash (a contact's tags, a flow's
 * scopes): the length written into out, or -1 when it is not such an array or does not fit
 * in cap bytes (the caller then uses jansson). */
int cd_sqlite__string_array_text(const json_t *tags, char *out, size_t cap)
{
    size_t len = 0, k;
    json_t *t;
    if (!json_is_array(tags) || cap < 2)
        return -1;
    out[len++] = '[';
    json_array_foreach (tags, k, t) {
        const char *v = json_string_value(t);
        size_t n = v ? json_string_length(t) : 0;
        if (v == NULL || len + n + 4 > cap)
            return -1;
        for (size_t j = 0; j < n; j++) {
            unsigned char ch = (unsigned char)v[j];
            if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
                return -1;
        }
        if (k)
            out[len++] = ',';
        out[len++] = '"';
        memcpy(out + len, v, n);
        len += n;
        out[len++] = '"';
    }
    out[len++] = ']';
    return (int)len;
}

void cd_sqlite__bind_strings(sqlite3_stmt *s, int i, const json_t *v)
{
    char out[512];
    int len = cd_sqlite__string_array_text(v, out, sizeof out);
    if (len < 0)
        bind_json(s, i, v);
    else
        sqlite3_bind_text(s, i, out, len, SQLITE_TRANSIENT);
}

static int sq_contact_put(cd_db *db, cd_contact *c, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, c->id ? Q_CONTACT_UPDATE : Q_CONTACT_INSERT, err);
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
    cd_sqlite__bind_strings(s, 15, c->tags);
    if (c->id) {
        sqlite3_bind_int64(s, 17, c->updated_ms);
        sqlite3_bind_int64(s, 18, c->id);
    } else {
        sqlite3_bind_int64(s, 16, c->created_ms);
        sqlite3_bind_int64(s, 17, c->updated_ms);
    }
    if (cd_sqlite__step_done(d, s, err, "contact") != 0)
        return -1;
    bool inserted = c->id == 0;
    if (inserted)
        c->id = sqlite3_last_insert_rowid(d->h);
    return c->groups ? put_groups(d, c, inserted, err) : 0;
}

typedef struct contact_each {
    sqlite_db *d;
    cd_contact_each_fn fn;
    void *arg;
    cd_err *err;
} contact_each;

/* The callback sees a complete record, groups loaded: stepping a second statement while
 * the list's is on a row is fine on one connection. A callback's negative answer is an
 * error, as a failed load is. */
static int contact_row(sqlite3_stmt *s, void *arg)
{
    const contact_each *e = arg;
    cd_contact c;
    read_contact(s, &c);
    int stop = load_groups(e->d, &c, e->err) != 0 ? -1 : e->fn(&c, e->arg);
    cd_contact_clear(&c);
    return stop;
}

static int sq_contact_list(cd_db *db, int64_t account_id, const cd_contact_filter *f,
                           cd_contact_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_LIST, err);
    contact_each e = {d, each, arg, err};
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, f->after_id);
    sqlite3_bind_int64(s, 3, f->group_id);
    bind_text(s, 4, f->tag);
    bind_text(s, 5, f->q);
    sqlite3_bind_int(s, 6, f->limit);
    return cd_sqlite__each(d, s, contact_row, &e, "contacts", err);
}

/* ---- groups and message types ---- */

static bool is_group(const char *kind)
{
    return strcmp(kind, "group") == 0;
}

static void read_named(sqlite3_stmt *s, void *out)
{
    cd_named *n = out;
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
        if (!(s = cd_sqlite__stmt(d, Q_GROUP_INSERT, err)))
            return -1;
        sqlite3_bind_int64(s, 1, account_id);
        bind_text(s, 2, n->name);
        sqlite3_bind_int64(s, 3, n->created_ms);
        if (cd_sqlite__step_done(d, s, err, "group") != 0)
            return -1;
        n->id = sqlite3_last_insert_rowid(d->h);
        return 0;
    }
    if (n->id == 0) {
        if (!(s = cd_sqlite__stmt(d, Q_TYPE_NEXT_ID, err)))
            return -1;
        sqlite3_bind_int64(s, 1, account_id);
        if (sqlite3_step(s) == SQLITE_ROW)
            n->id = sqlite3_column_int64(s, 0);
        done(s);
    }
    if (!(s = cd_sqlite__stmt(d, Q_TYPE_INSERT, err)))
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, n->id);
    bind_text(s, 3, n->name);
    sqlite3_bind_int64(s, 4, n->created_ms);
    return cd_sqlite__step_done(d, s, err, "message type");
}

static const cd_sqlite__row NAMED_ROW = {read_named, "named", "", "not found"};

static int sq_named_get(cd_db *db, const char *kind, int64_t account_id, int64_t id, cd_named *out,
                        cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, is_group(kind) ? Q_GROUP_GET : Q_TYPE_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, id);
    return cd_sqlite__one(d, s, &NAMED_ROW, out, err);
}

static int sq_named_by_name(cd_db *db, const char *kind, int64_t account_id, const char *name,
                            cd_named *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, is_group(kind) ? Q_GROUP_BY_NAME : Q_TYPE_BY_NAME, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    bind_text(s, 2, name);
    return cd_sqlite__one(d, s, &NAMED_ROW, out, err);
}

typedef struct named_each {
    cd_named_each_fn fn;
    void *arg;
} named_each;

static int named_row(sqlite3_stmt *s, void *arg)
{
    const named_each *e = arg;
    cd_named n;
    read_named(s, &n);
    return e->fn(&n, e->arg) != 0;
}

static int sq_named_list(cd_db *db, const char *kind, int64_t account_id, int64_t after_id,
                         int limit, cd_named_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, is_group(kind) ? Q_GROUP_LIST : Q_TYPE_LIST, err);
    named_each e = {each, arg};
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, after_id);
    sqlite3_bind_int(s, 3, limit);
    return cd_sqlite__each(d, s, named_row, &e, "list", err);
}

/* ---- consents ---- */

static void read_consent(sqlite3_stmt *s, void *out)
{
    cd_consent *c = out;
    memset(c, 0, sizeof *c);
    col_copy(s, 0, c->scope, sizeof c->scope);
    col_copy(s, 1, c->state, sizeof c->state);
    c->updated_ms = sqlite3_column_int64(s, 2);
}

static const cd_sqlite__row CONSENT_ROW = {read_consent, "consent", "scope", "no consent state"};

static int sq_consent_get(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                          cd_consent *out, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONSENT_GET, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    bind_text(s, 3, scope);
    return cd_sqlite__one(d, s, &CONSENT_ROW, out, err);
}

static int sq_consent_put(cd_db *db, int64_t account_id, int64_t contact_id, const cd_consent *c,
                          cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONSENT_PUT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    bind_text(s, 3, c->scope);
    bind_text(s, 4, c->state);
    sqlite3_bind_int64(s, 5, c->updated_ms);
    return cd_sqlite__step_done(d, s, err, "consent");
}

static int sq_consent_delete(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                             cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONSENT_DELETE, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    bind_text(s, 3, scope);
    return cd_sqlite__step_done(d, s, err, "consent delete");
}

typedef struct consent_each {
    cd_consent_each_fn fn;
    void *arg;
} consent_each;

static int consent_row(sqlite3_stmt *s, void *arg)
{
    const consent_each *e = arg;
    cd_consent c;
    read_consent(s, &c);
    return e->fn(&c, e->arg) != 0;
}

static int sq_consent_list(cd_db *db, int64_t account_id, int64_t contact_id,
                           cd_consent_each_fn each, void *arg, cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONSENT_LIST, err);
    consent_each e = {each, arg};
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, contact_id);
    return cd_sqlite__each(d, s, consent_row, &e, "consents", err);
}

/* ---- issue 11: lists ---- */

const struct cd_store_ops cd_store__sqlite_ops = {
    .scheme = "sqlite",
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .migrate = sq_migrate,
    .exec = exec_sql,
    .in_transaction = sq_in_transaction,
    .sync_start = sq_sync_start,
    .commit_nosync = sq_commit_nosync,
    .sync_now = sq_sync_now,
    .sync_idle = sq_sync_idle,
    .sync_stop = sq_sync_stop,
    .account_insert = sq_account_insert,
    .account_get = sq_account_get,
    .account_set_head = sq_account_set_head,
    .account_sign_head = sq_account_sign_head,
    .account_each = sq_account_each,
    .key_insert = sq_key_insert,
    .key_get = sq_key_get,
    .key_auth = sq_key_auth,
    .key_revoke = sq_key_revoke,
    .key_each = sq_key_each,
    .contact_get = sq_contact_get,
    .contact_by_phone = sq_contact_by_phone,
    .contact_id_by_phone = sq_contact_id_by_phone,
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
    .event_insert = cd_sqlite__event_insert,
    .event_list = cd_sqlite__event_list,
    .event_scan = cd_sqlite__event_scan,
    .event_last = cd_sqlite__event_last,
    .message_insert = cd_sqlite__message_insert,
    .message_count = cd_sqlite__message_count,
    .message_get = cd_sqlite__message_get,
    .message_list = cd_sqlite__message_list,
    .message_update = cd_sqlite__message_update,
    .message_due = cd_sqlite__message_due,
    .message_next_due = cd_sqlite__message_next_due,
    .message_requeue_sending = cd_sqlite__message_requeue_sending,
    .message_claim = cd_sqlite__message_claim,
    .message_refuse_queued = cd_sqlite__message_refuse_queued,
    .message_due_fair = cd_sqlite__message_due_fair,
    .message_unclaim = cd_sqlite__message_unclaim,
    .message_mark_sent = cd_sqlite__message_mark_sent,
    .unrouted_insert = cd_sqlite__unrouted_insert,
    .unrouted_list = cd_sqlite__unrouted_list,
    .part_insert = cd_sqlite__part_insert,
    .part_status = cd_sqlite__part_status,
    .part_message = cd_sqlite__part_message,
    .flow_insert = cd_sqlite__flow_insert,
    .flow_update = cd_sqlite__flow_update,
    .flow_get = cd_sqlite__flow_get,
    .flow_list = cd_sqlite__flow_list,
    .flow_expired = cd_sqlite__flow_expired,
    .sender_put = cd_sqlite__sender_put,
    .sender_get = cd_sqlite__sender_get,
    .sender_delete = cd_sqlite__sender_delete,
    .sender_list = cd_sqlite__sender_list,
    .settings_get = cd_sqlite__settings_get,
    .settings_put = cd_sqlite__settings_put,
    .settings_read = cd_sqlite__settings_read, /* issue 10 */
    .idem_get = cd_sqlite__idem_get,
    .idem_put = cd_sqlite__idem_put,
    .idem_purge = cd_sqlite__idem_purge,
    /* ---- issue 15: the generic job queue ---- */
    .job_enqueue = cd_sqlite__job_enqueue,
    .job_get = cd_sqlite__job_get,
    .job_claim = cd_sqlite__job_claim,
    .job_complete = cd_sqlite__job_complete,
    .job_retry = cd_sqlite__job_retry,
    .job_dead = cd_sqlite__job_dead,
    .job_revive = cd_sqlite__job_revive,
    .job_requeue = cd_sqlite__job_requeue,
    .job_expired_any = cd_sqlite__job_expired_any,
    .job_next_due = cd_sqlite__job_next_due,
    .job_delete = cd_sqlite__job_delete,
    /* ---- issue 15: webhooks ---- */
    .webhook_endpoint_put = cd_sqlite__webhook_endpoint_put,
    .webhook_endpoint_get = cd_sqlite__webhook_endpoint_get,
    .webhook_any = cd_sqlite__webhook_any,
    .webhook_endpoint_list = cd_sqlite__webhook_endpoint_list,
    .webhook_endpoint_delete = cd_sqlite__webhook_endpoint_delete,
    .webhook_event_insert = cd_sqlite__webhook_event_insert,
    .webhook_delivery_insert = cd_sqlite__webhook_delivery_insert,
    .webhook_delivery_update = cd_sqlite__webhook_delivery_update,
    .webhook_delivery_get = cd_sqlite__webhook_delivery_get,
    .webhook_delivery_list = cd_sqlite__webhook_delivery_list,
    .webhook_target = cd_sqlite__webhook_target,
    .submission_insert = cd_sqlite__submission_insert, /* issue 12 */
    .submission_get = cd_sqlite__submission_get,
    /* issue 14: sqlite_pool.c */
    .profile_put = cd_sqlite__profile_put,
    .profile_get = cd_sqlite__profile_get,
    .profile_delete = cd_sqlite__profile_delete,
    .profile_list = cd_sqlite__profile_list,
    .sender_lease = cd_sqlite__sender_lease,
    .sender_leases = cd_sqlite__sender_leases,
    .sender_used = cd_sqlite__sender_used,
    .sender_receipt = cd_sqlite__sender_receipt,
    .sender_health = cd_sqlite__sender_health,
    .sticky_get = cd_sqlite__sticky_get,
    .sticky_put = cd_sqlite__sticky_put,
    .jwt_revoke = cd_sqlite__jwt_revoke,
    .jwt_revoked = cd_sqlite__jwt_revoked,
    /* issue 11 */
    .group_drop_opted_out = cd_sqlite__group_drop_opted_out,
    .group_add_members = cd_sqlite__group_add_members,
    .contact_ids_by_phones = cd_sqlite__contact_ids_by_phones,
    .rows_defer = cd_sqlite__rows_defer,
    .wrote = cd_sqlite__wrote,
    .serve_lock = cd_sqlite__serve_lock,
    .serve_notify = cd_sqlite__serve_notify,
    .rows_end = cd_sqlite__rows_end,
};
