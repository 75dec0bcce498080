/* core/receipt.c -- issue 14: receipts from HTTP providers (core/receipt.h). */
#include "core/receipt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/message.h"
#include "util/xalloc.h"

/* ---- receipts from HTTP providers ---- */

static bool receipt_status_ok(const char *st)
{
    static const char *const ok[] = {"delivered", "failed", "blocked", "expired", "rejected"};
    for (size_t i = 0; st && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(st, ok[i]) == 0)
            return true;
    return false;
}

/* Applies the receipt to every part of m (its transport ids, joined with ','). A part id
 * cut short by the column's width is not found; the others still carry the receipt. */
static int receipt_parts(cd_db *db, const cd_message *m, const char *status, const char *detail,
                         cd_err *err)
{
    char ids[sizeof m->transport_id];
    char *save = NULL;
    int applied = 0;
    snprintf(ids, sizeof ids, "%s", m->transport_id);
    for (char *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        cd_err e;
        if (cd_message_record_receipt(db, m->transport, id, status, detail, &e) == 0)
            applied++;
        else if (e.code != CD_ENOTFOUND)
            return err ? (*err = e, -1) : -1;
    }
    if (applied == 0)
        return cd_fail_reason(err, CD_ECONFLICT, "not_sent", "message_id",
                              "the message has not been sent yet");
    return 0;
}

int cd_receipt_record(cd_db *db, int64_t account_id, const char *message_id,
                      const char *provider_id, const char *status, const char *error_code,
                      cd_message *out, cd_err *err)
{
    char detail[64];
    memset(out, 0, sizeof *out);
    if (!receipt_status_ok(status))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "status",
                              "status is delivered, failed, blocked, expired or rejected");
    snprintf(detail, sizeof detail, "%s%.40s", error_code ? "error_code:" : "",
             error_code ? error_code : "");
    int rc;
    if (provider_id) {
        if (cd_store_part_message(db, "http", provider_id, out, NULL) != 0 ||
            out->account_id != account_id) {
            cd_message_clear(out);
            return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "provider_id",
                                  "no message has that provider_id");
        }
        rc = cd_message_record_receipt(db, "http", provider_id, status, detail, err);
    } else {
        if (cd_store_message_get(db, account_id, message_id, out, NULL) != 0)
            return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "message_id", "no such message");
        rc = strcmp(out->direction, "out") == 0 && out->transport_id[0]
                 ? receipt_parts(db, out, status, detail, err)
                 : cd_fail_reason(err, CD_ECONFLICT, "not_sent", "message_id",
                                  "the message has not been sent yet");
    }
    char *id = rc == 0 ? cd_xstrdup(out->id) : NULL;
    cd_message_clear(out);
    if (rc == 0)
        rc = cd_store_message_get(db, account_id, id, out, err);
    free(id);
    return rc;
}
