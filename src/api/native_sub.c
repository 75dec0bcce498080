/* api/native_sub.c -- GET /api/v1/submissions/{uuid} (issue 12): what one Omeda opt queue
 * submission did, for the account that made it. The Submission uuid of an Omeda answer is
 * also the ext_ref of the ledger events it wrote. */
#include "api/native_int.h"

#include <string.h>

static int h_submission_get(cd_req *req)
{
    cd_err err;
    cd_submission s;
    cd_db *db = cd_api_reader(req, &err);
    int rc =
        db ? cd_store_submission_get(db, WHO(req)->account.id, cd_req_param(req, "uuid"), &s, &err)
           : -1;
    if (rc != 0) {
        if (err.code == CD_ENOTFOUND) /* another account's is "not found" too */
            cd_fail_reason(&err, CD_ENOTFOUND, "not_found", "", "no such submission");
        return cd_native__error(req, &err);
    }
    json_t *d = s.detail;
    json_t *answer = json_object_get(d, "answer"), *opts = json_object_get(d, "opts");
    json_t *body =
        json_pack("{ss so so so si ss sO sO so}", "uuid", s.uuid, "site",
                  cd_native__str_or_null(s.site), "session", cd_native__str_or_null(s.session),
                  "phone", cd_native__str_or_null(s.phone), "status", s.status, "result",
                  s.status == 200 ? "success" : "rejected", "answer", answer ? answer : json_null(),
                  "opts", opts ? opts : json_null(), "created_at", cd_native__time(s.created_ms));
    cd_submission_clear(&s);
    return cd_reply_json(req, 200, body);
}

void cd_api_native_sub_routes(cd_router *r, const cd_api_env *env)
{
    cd_router_add(r, "GET", "/api/v1/submissions/{uuid}", &cd_native__surface, h_submission_get,
                  cd_api_ctx(env));
}
