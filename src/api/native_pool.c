/* api/native_pool.c -- issue 14, the native endpoints of the number pool (DESIGN section 7):
 *   POST /api/v1/senders/{number}/lease {"profile": uuid} -> 201 the lease;
 *   DELETE /api/v1/senders/{number}/lease -> 204;
 *   POST /api/v1/receipts {"message_id"|"provider_id","status","error_code"?} -> 200 the
 *   message (a delivery receipt from an HTTP provider).
 * The senders themselves (with type, health and profile) are in native_msg.c. */
#include <stdio.h>
#include <string.h>

#include "api/native_int.h"
#include "core/receipt.h"
#include "core/profile.h"

static int fail(cd_req *req, const char *field, const char *msg)
{
    cd_err err;
    cd_fail_reason(&err, CD_EINVAL, "invalid_field", field, "%s", msg);
    return cd_native__error(req, &err);
}

/* The {number} of the path in its stored form (E.164, or a short code as it is). */
static char *path_number(cd_req *req)
{
    const char *raw = cd_req_param(req, "number");
    char *number = cd_req_alloc(req, CD_PHONE_MAX);
    if (cd_api_normalize(req, raw, "number", number, NULL) != 0)
        snprintf(number, CD_PHONE_MAX, "%.23s", raw);
    return number;
}

/* ---- leases ---- */

typedef struct lease_in {
    const char *number, *profile;
} lease_in;

static int job_lease(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    lease_in *in = w->in;
    cd_sender s;
    if (cd_sender_lease(db, w->who.account.id, in->number, in->profile, &s, err) != 0)
        return -1;
    w->status = 201;
    w->body = cd_lease_view(&s);
    return 0;
}

static int h_lease(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    lease_in *in = cd_req_alloc(req, sizeof *in);
    in->number = path_number(req);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_req_string(o, "profile", 64, &in->profile, &err) != 0)
        return cd_native__error(req, &err);
    return cd_api_write(req, &cd_native__kit, job_lease, in);
}

static int job_release(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    if (cd_sender_release(db, w->who.account.id, w->in, err) != 0)
        return -1;
    w->status = 204;
    return 0;
}

static int h_release(cd_req *req)
{
    return cd_api_write(req, &cd_native__kit, job_release, path_number(req));
}

/* ---- receipts ---- */

typedef struct receipt_in {
    const char *message_id, *provider_id, *status, *error_code;
    cd_message out;
} receipt_in;

static void render_receipt(cd_api_write_op *w)
{
    w->body = cd_native__message_json(&((receipt_in *)w->in)->out);
}

static void done_receipt(cd_api_write_op *w)
{
    cd_message_clear(&((receipt_in *)w->in)->out);
}

static int job_receipt(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    receipt_in *in = w->in;
    w->done = done_receipt;
    if (cd_receipt_record(db, w->who.account.id, in->message_id, in->provider_id, in->status,
                          in->error_code, &in->out, err) != 0)
        return -1;
    w->status = 200;
    w->render = render_receipt;
    return 0;
}

static int h_receipt(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    receipt_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_opt_string(o, "message_id", 39, &in->message_id, &err) != 0 ||
        cd_api_opt_string(o, "provider_id", 63, &in->provider_id, &err) != 0 ||
        cd_api_req_string(o, "status", 15, &in->status, &err) != 0 ||
        cd_api_opt_string(o, "error_code", 40, &in->error_code, &err) != 0)
        return cd_native__error(req, &err);
    if ((in->message_id == NULL) == (in->provider_id == NULL))
        return fail(req, "message_id", "give message_id or provider_id (one of them)");
    return cd_api_write(req, &cd_native__kit, job_receipt, in);
}

void cd_api_native_pool_routes(cd_router *r, const cd_api_env *env)
{
    void *ctx = cd_api_ctx(env);
    const cd_surface *n = &cd_native__surface;
    cd_router_add(r, "POST", "/api/v1/senders/{number}/lease", n, h_lease, ctx);
    cd_router_add(r, "DELETE", "/api/v1/senders/{number}/lease", n, h_release, ctx);
    cd_router_add(r, "POST", "/api/v1/receipts", n, h_receipt, ctx);
}
