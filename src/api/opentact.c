/* api/opentact.c -- issue 14: the Opentact surface (seed 004). Messaging profiles:
 *   POST, GET /rest/profile/messaging; GET, PATCH, DELETE /rest/profile/messaging/{uuid};
 *   GET /rest/profile/messaging/{uuid}/leases.
 * Authentication is X-Auth-Token: a JWT minted by `consentd token`. Every answer is
 * {"success":bool,"payload":...}; every error under /rest/profile/ (401, 404 and 405 too,
 * through the prefix fallback) is {"success":false,"payload":{"message":...}}. Another
 * account's profile is "not found", exactly like an unknown uuid.
 * The rules for the values live in core/profile.c; this file maps Opentact's field names
 * (both spellings of the toll-free weight, number_pool_enable as a boolean or a string). */
#include "api/opentact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/guard.h"
#include "api/kit.h"
#include "core/pool.h"
#include "core/profile.h"
#include "util/timeutil.h"

/* ---- errors ---- */

static int status_of(const cd_err *e)
{
    const char *reason = cd_err_reason(e);
    switch (e->code) {
    case CD_EINVAL:
        if (strcmp(reason, "unsupported_media_type") == 0)
            return 415;
        if (strcmp(reason, "request_timeout") == 0)
            return 408;
        /* A body that is not JSON (or not an object) is a bad request; a value out of its
         * limits is unprocessable. */
        if (strcmp(reason, "invalid_json") == 0 || strcmp(reason, "bad_request") == 0)
            return 400;
        return e->field[0] ? 422 : 400; /* no field: the body as a whole (not an object) */
    case CD_EAUTH:
        return 401;
    case CD_ENOTFOUND:
        return 404;
    case CD_ECONFLICT:
        return 409;
    case CD_EMISMATCH:
        return 422;
    case CD_ELIMIT:
        return 413;
    case CD_EMETHOD:
        return 405;
    case CD_EBUSY:
        return strcmp(reason, "rate_limited") == 0 ? 429 : 503;
    case CD_ESTORE:
        return 503;
    default:
        return 500;
    }
}

static int opentact_error(cd_req *req, const cd_err *err)
{
    int status = status_of(err);
    const char *msg = err->msg[0] ? err->msg : "error";
    if (status == 401)
        msg = "Unauthorized"; /* the same words whatever was wrong with the token */
    else if (status == 404 && err->code == CD_ENOTFOUND)
        msg = "Not found";
    const cd_ratelimit_info *rl = cd_req_ratelimit(req);
    if (status == 429 && rl != NULL) {
        char v[16];
        snprintf(v, sizeof v, "%d", rl->retry_after_s > 0 ? rl->retry_after_s : rl->reset_s);
        cd_reply_header(req, "Retry-After", v);
    } else if (err->code == CD_EBUSY) {
        cd_reply_header(req, "Retry-After", "1");
    }
    return cd_reply_json(req, status,
                         json_pack("{sb s{ss}}", "success", 0, "payload", "message", msg));
}

static int authenticate(cd_req *req, cd_err *err)
{
    return cd_api_authenticate(req, cd_api_env_of(req)->store, CD_AUTH_JWT, err);
}

static const cd_surface opentact_surface = {
    .name = "opentact", .authenticate = authenticate, .reply_error = opentact_error};
static const cd_api_surface opentact_kit = {
    .http = &opentact_surface, .idempotency = true, .forms = false};

/* ---- shapes ---- */

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *time_json(int64_t ms)
{
    char t[CD_TIME_LEN];
    if (ms == 0)
        return json_null();
    cd_time_format(ms, t);
    return json_string(t);
}

static json_t *ok(json_t *payload)
{
    return json_pack("{sb so}", "success", 1, "payload", payload);
}

/* The seed's account object, from what consentd knows of the account. */
static json_t *account_json(const cd_account *a)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)a->id);
    return json_pack("{so so ss ss ss ss si so so s{ss} s[] so so s[] s[]}", "created_on",
                     time_json(a->created_ms), "modified_on", time_json(a->created_ms), "uuid", id,
                     "name", a->name, "email", a->login, "level", "ServiceAccount", "balance", 0,
                     "class4_id", json_null(), "deleted_on", json_null(), "time_zone", "name",
                     a->timezone, "users", "admin", json_null(), "messaging_profile_default",
                     json_null(), "messaging_profiles", "addresses");
}

/* The seed's user object: consentd has no users, so the account's login stands for the
 * one who made the change. Secrets are present and null, always. */
static json_t *user_json(const cd_account *a)
{
    json_t *u = json_pack("{so so so ss}", "created_on", time_json(a->created_ms), "modified_on",
                          time_json(a->created_ms), "uuid", json_null(), "email", a->login);
    static const char *const nulls[] = {
        "password",       "phone_number", "first_name",    "last_name",        "avatar",
        "gender",         "dob",          "gmail_user_id", "facebook_user_id", "apple_user_id",
        "wechat_user_id", "deleted_on",   "token",         "account"};
    json_object_set_new(u, "role", json_string("Admin"));
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        json_object_set_new(u, nulls[i], json_null());
    return u;
}

static json_t *lease_json(const cd_sender *s)
{
    return cd_lease_view(s);
}

static int collect_lease(const cd_sender *s, void *arg)
{
    json_array_append_new(arg, lease_json(s));
    return 0;
}

/* The profile as the seed's payload; leases read on db. NULL with *err on a read error. */
static json_t *profile_json(cd_db *db, const cd_account *a, const cd_profile *p, cd_err *err)
{
    json_t *leases = json_array();
    if (cd_store_sender_leases(db, a->id, p->uuid, collect_lease, leases, err) != 0) {
        json_decref(leases);
        return NULL;
    }
    json_t *o =
        json_pack("{so so ss ss so so sb si si sb sb}", "created_on", time_json(p->created_ms),
                  "modified_on", time_json(p->modified_ms), "uuid", p->uuid, "name", p->name,
                  "callback_url", str_or_null(p->callback_url), "callback_url2",
                  str_or_null(p->callback_url2), "number_pool_enable", p->number_pool_enable,
                  "long_code_weight", p->long_code_weight, "tollfree_weight", p->toll_free_weight,
                  "skip_unhealthy_tns", p->skip_unhealthy_tns, "sticky_sender", p->sticky_sender);
    json_object_set_new(o, "account", account_json(a));
    json_object_set_new(o, "created_by", user_json(a));
    json_object_set_new(o, "modified_by", user_json(a));
    json_object_set_new(o, "leases", leases);
    return o;
}

/* ---- parsing ---- */

/* A boolean, or the strings "true" / "false": 0 or 1 into *out; absent leaves it. */
static int parse_bool(json_t *o, const char *key, int *out, cd_err *err)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);
    if (v == NULL)
        return 0;
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
        *out = strcmp(s, "true") == 0;
    else
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s must be true or false",
                              key);
    return 0;
}

/* An integer (or a string of digits) 0..9 into *out; absent leaves it. */
static int parse_weight(json_t *o, const char *key, int *out, cd_err *err)
{
    json_t *v = json_object_get(o, key);
    int64_t n;
    if (v == NULL)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= CD_PROFILE_WEIGHT_MAX)
        *out = (int)json_integer_value(v);
    else if (json_is_string(v) &&
             cd_api_parse_int(json_string_value(v), 0, CD_PROFILE_WEIGHT_MAX, &n) == 0)
        *out = (int)n;
    else
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s must be 0 to %d", key,
                              CD_PROFILE_WEIGHT_MAX);
    return 0;
}

/* A string or null (null clears it, *clear = true); absent leaves it. */
static int parse_text(json_t *o, const char *key, const char **out, bool *clear, cd_err *err)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return 0;
    if (json_is_null(v) && clear) {
        *clear = true;
        return 0;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s must be a string", key);
    if (json_string_length(v) >= CD_PROFILE_TEXT_MAX)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s is too long", key);
    *out = json_string_value(v);
    return 0;
}

static int parse_profile(json_t *o, bool create, cd_profile_in *in, cd_err *err)
{
    int tf = CD_PROFILE_UNSET, tf2 = CD_PROFILE_UNSET;
    cd_profile_in_init(in);
    if (parse_text(o, "name", &in->name, NULL, err) != 0 ||
        parse_text(o, "callback_url", &in->callback_url, &in->clear_url, err) != 0 ||
        parse_text(o, "callback_url2", &in->callback_url2, &in->clear_url2, err) != 0 ||
        parse_bool(o, "number_pool_enable", &in->number_pool_enable, err) != 0 ||
        parse_weight(o, "long_code_weight", &in->long_code_weight, err) != 0 ||
        parse_weight(o, "toll_free_weight", &tf, err) != 0 ||
        parse_weight(o, "tollfree_weight", &tf2, err) != 0 ||
        parse_bool(o, "skip_unhealthy_tns", &in->skip_unhealthy_tns, err) != 0 ||
        parse_bool(o, "sticky_sender", &in->sticky_sender, err) != 0)
        return -1;
    /* The request spells it toll_free_weight, the answer tollfree_weight: take either. */
    if (tf != CD_PROFILE_UNSET && tf2 != CD_PROFILE_UNSET && tf != tf2)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "toll_free_weight",
                              "toll_free_weight and tollfree_weight disagree");
    in->toll_free_weight = tf != CD_PROFILE_UNSET ? tf : tf2;
    return cd_profile_check(in, create, err);
}

/* The {uuid} of the path, in the seed's pattern; anything else is answered 404 (it cannot
 * name a profile, and saying more would tell nothing useful). */
static const char *path_uuid(cd_req *req)
{
    const char *u = cd_req_param(req, "uuid");
    if (u == NULL || strlen(u) != 36)
        return NULL;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : strchr("0123456789abcdef", u[i]) == NULL || u[i] == '\0')
            return NULL;
    }
    return u;
}

static int not_found(cd_req *req)
{
    cd_err err;
    cd_fail(&err, CD_ENOTFOUND, "uuid", "no such profile");
    return opentact_error(req, &err);
}

/* ---- writes ---- */

typedef struct profile_op {
    cd_profile_in in;
    const char *uuid;
    cd_profile p; /* the outcome */
} profile_op;

static int job_create(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    profile_op *op = w->in;
    if (cd_profile_create(db, w->who.account.id, &op->in, &op->p, err) != 0)
        return -1;
    json_t *payload = profile_json(db, &w->who.account, &op->p, err);
    if (payload == NULL)
        return -1;
    /* The secret that signs this profile's deliveries is shown here, once: the stored
     * Idempotency-Key answer leaves it out, so a replay does not show it again. */
    w->idem_body = ok(json_deep_copy(payload));
    json_object_set_new(payload, "signing_secret", json_string(op->p.signing_secret));
    w->body = ok(payload);
    w->status = 201;
    return 0;
}

static int job_update(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    profile_op *op = w->in;
    if (cd_profile_update(db, w->who.account.id, op->uuid, &op->in, &op->p, err) != 0)
        return -1;
    json_t *payload = profile_json(db, &w->who.account, &op->p, err);
    if (payload == NULL)
        return -1;
    w->body = ok(payload);
    w->status = 200;
    return 0;
}

static int job_delete(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    profile_op *op = w->in;
    if (cd_store_profile_get(db, w->who.account.id, op->uuid, &op->p, err) != 0 ||
        cd_profile_delete(db, w->who.account.id, op->uuid, err) != 0)
        return -1;
    json_t *payload = profile_json(db, &w->who.account, &op->p, err); /* leases: now none */
    if (payload == NULL)
        return -1;
    w->body = ok(payload);
    w->status = 200;
    return 0;
}

static int h_create(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    profile_op *op = cd_req_alloc(req, sizeof *op);
    if (cd_api_body(req, &opentact_kit, &o, &err) != 0 || parse_profile(o, true, &op->in, &err))
        return opentact_error(req, &err);
    return cd_api_write(req, &opentact_kit, job_create, op);
}

static int h_update(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    profile_op *op = cd_req_alloc(req, sizeof *op);
    if ((op->uuid = path_uuid(req)) == NULL)
        return not_found(req);
    if (cd_api_body(req, &opentact_kit, &o, &err) != 0 || parse_profile(o, false, &op->in, &err))
        return opentact_error(req, &err);
    return cd_api_write(req, &opentact_kit, job_update, op);
}

static int h_delete(cd_req *req)
{
    profile_op *op = cd_req_alloc(req, sizeof *op);
    if ((op->uuid = path_uuid(req)) == NULL)
        return not_found(req);
    return cd_api_write(req, &opentact_kit, job_delete, op);
}

/* ---- reads ---- */

typedef struct list_ctx {
    cd_db *db;
    const cd_account *a;
    json_t *data;
    cd_err *err;
} list_ctx;

static int collect_profile(const cd_profile *p, void *arg)
{
    list_ctx *l = arg;
    json_t *o = profile_json(l->db, l->a, p, l->err);
    if (o == NULL)
        return -1;
    json_array_append_new(l->data, o);
    return 0;
}

static int h_list(cd_req *req)
{
    cd_err err;
    const cd_account *a = &cd_api_who(req)->account;
    list_ctx l = {.a = a, .data = json_array(), .err = &err};
    l.db = cd_api_reader(req, &err);
    if (l.db == NULL || cd_store_profile_list(l.db, a->id, collect_profile, &l, &err) != 0) {
        json_decref(l.data);
        return opentact_error(req, &err);
    }
    return cd_reply_json(req, 200, ok(l.data));
}

static int h_get(cd_req *req)
{
    cd_err err;
    const cd_account *a = &cd_api_who(req)->account;
    const char *uuid = path_uuid(req);
    if (uuid == NULL)
        return not_found(req);
    cd_profile *p = cd_req_alloc(req, sizeof *p);
    cd_db *db = cd_api_reader(req, &err);
    json_t *o = NULL;
    if (db == NULL || cd_store_profile_get(db, a->id, uuid, p, &err) != 0 ||
        (o = profile_json(db, a, p, &err)) == NULL)
        return opentact_error(req, &err);
    return cd_reply_json(req, 200, ok(o));
}

static int h_leases(cd_req *req)
{
    cd_err err;
    const cd_account *a = &cd_api_who(req)->account;
    const char *uuid = path_uuid(req);
    if (uuid == NULL)
        return not_found(req);
    cd_profile *p = cd_req_alloc(req, sizeof *p);
    cd_db *db = cd_api_reader(req, &err);
    json_t *leases = json_array();
    if (db == NULL || cd_store_profile_get(db, a->id, uuid, p, &err) != 0 ||
        cd_store_sender_leases(db, a->id, uuid, collect_lease, leases, &err) != 0) {
        json_decref(leases);
        return opentact_error(req, &err);
    }
    return cd_reply_json(req, 200, ok(leases));
}

void cd_api_opentact_routes(cd_router *r, const cd_api_env *env)
{
    void *ctx = cd_api_ctx(env);
    const cd_surface *s = &opentact_surface;
    cd_router_add(r, "POST", "/rest/profile/messaging", s, h_create, ctx);
    cd_router_add(r, "GET", "/rest/profile/messaging", s, h_list, ctx);
    cd_router_add(r, "GET", "/rest/profile/messaging/{uuid}", s, h_get, ctx);
    cd_router_add(r, "PATCH", "/rest/profile/messaging/{uuid}", s, h_update, ctx);
    cd_router_add(r, "DELETE", "/rest/profile/messaging/{uuid}", s, h_delete, ctx);
    cd_router_add(r, "GET", "/rest/profile/messaging/{uuid}/leases", s, h_leases, ctx);
    cd_router_set_prefix_fallback(r, "/rest/profile/", s);
}
