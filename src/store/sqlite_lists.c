/* store/sqlite_lists.c -- issue 11: what an Octopush batch writes for a whole list at once,
 * in SQLite: which of its numbers are contacts already, its members added in one statement,
 * and its blacklisted members removed. The SQL is in sqlite.c's table. */
#include <string.h>

#include "store/sqlite_int.h"
#include "util/log.h"

int cd_sqlite__group_drop_opted_out(cd_db *db, int64_t account_id, int64_t group_id, int *count,
                                    cd_err *err)
{
    sqlite_db *d = SDB(db);
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_GROUP_DROP_OPTED_OUT, err);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, group_id);
    if (cd_sqlite__step_done(d, s, err, "group drop opted out") != 0)
        return -1;
    if (count)
        *count = sqlite3_changes(d->h);
    return 0;
}

typedef struct ids_by_phones {
    int64_t *ids;
    size_t n;
} ids_by_phones;

static int id_row(sqlite3_stmt *s, void *arg)
{
    const ids_by_phones *r = arg;
    sqlite3_int64 i = sqlite3_column_int64(s, 0);
    if (i >= 0 && (size_t)i < r->n)
        r->ids[i] = sqlite3_column_int64(s, 1);
    return 0;
}

int cd_sqlite__contact_ids_by_phones(cd_db *db, int64_t account_id, const char *const *phones,
                                     size_t n, int64_t *ids, cd_err *err)
{
    sqlite_db *d = SDB(db);
    memset(ids, 0, n * sizeof *ids);
    if (n == 0)
        return 0;
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_CONTACT_IDS_BY_PHONES, err);
    if (!s)
        return -1;
    cd_buf list = {0};
    cd_buf_append(&list, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            cd_buf_append(&list, ",", 1);
        cd_json_quote(&list, phones[i]); /* E.164: ASCII, which it writes as JSON does */
    }
    cd_buf_append(&list, "]", 1);
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_text(s, 2, list.data, (int)list.len, SQLITE_STATIC);
    ids_by_phones r = {ids, n};
    int rc = cd_sqlite__each(d, s, id_row, &r, "contact ids", err);
    cd_buf_free(&list);
    return rc;
}

/* One statement for the whole batch: a statement per member cost more than its two index
 * writes. */
int cd_sqlite__group_add_members(cd_db *db, int64_t account_id, int64_t group_id,
                                 const int64_t *contact_ids, size_t n, cd_err *err)
{
    sqlite_db *d = SDB(db);
    if (n == 0)
        return 0;
    sqlite3_stmt *s = cd_sqlite__stmt(d, Q_GROUP_ADD_MEMBERS, err);
    if (!s)
        return -1;
    cd_buf ids = {0};
    for (size_t i = 0; i < n; i++) {
        cd_buf_append(&ids, i ? "," : "[", 1);
        cd_buf_put_int(&ids, contact_ids[i], 1);
    }
    cd_buf_append(&ids, "]", 1);
    sqlite3_bind_int64(s, 1, account_id);
    sqlite3_bind_int64(s, 2, group_id);
    sqlite3_bind_text(s, 3, ids.data, (int)ids.len, SQLITE_TRANSIENT);
    int rc = cd_sqlite__step_done(d, s, err, "group add members");
    cd_buf_free(&ids);
    return rc;
}
