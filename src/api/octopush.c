/* api/octopush.c -- the Octopush surface (issue 11, seed 001): POST
 * /v1/public/contact/create. Octopush's JSON goes in, one core use case (core/batch.h)
 * runs the whole batch as one writer job, and Octopush's JSON comes out.
 *
 * The batch is validated completely on the request thread before it is deferred, so an
 * invalid item fails the call without anything reaching the writer; what only the
 * transaction can find out (a contact over its tag cap) fails the job, and the savepoint
 * takes back every item of it. Errors on every path under /v1/public/ are Octopush's
 * {"code":<int>,"message":"..."}, with the HTTP status as the code. */
#include "api/octopush.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/guard.h"
#include "api/kit.h"
#include "core/batch.h"
#include "http/auth.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* ---- errors ---- */

static int status_of(const cd_err *e)
{
    const char *r = cd_err_reason(e);
    switch (e->code) {
    case CD_EINVAL:
        if (strcmp(r, "unsupported_media_type") == 0)
            return 415;
        if (strcmp(r, "request_timeout") == 0)
            return 408;
        /* a request that is not what the API takes (400) vs. values it refuses (422) */
        if (strcmp(r, "bad_request") == 0 || strcmp(r, "invalid_json") == 0 ||
            strcmp(r, "invalid_form") == 0)
            return 400;
        return 422;
    case CD_EAUTH: /* no credentials, or credentials that are not valid: never which part */
        return strcmp(r, "forbidden") == 0 ? 403 : 401;
    case CD_ENOTFOUND:
        return 404;
    case CD_EMETHOD:
        return 405;
    case CD_ECONFLICT:
        return 409;
    case CD_ELIMIT:
        return 413;
    case CD_EMISMATCH:
        return 422;
    case CD_EBUSY:
        return strcmp(r, "rate_limited") == 0 ? 429 : 503;
    case CD_ESTORE:
        return 503;
    default:
        return 500;
    }
}

static int reply_error(cd_req *req, const cd_err *err)
{
    int status = status_of(err);
    const cd_ratelimit_info *rl = cd_req_ratelimit(req);
    if (status == 429 && rl != NULL) {
        char v[16];
        snprintf(v, sizeof v, "%d", rl->retry_after_s > 0 ? rl->retry_after_s : rl->reset_s);
        cd_reply_header(req, "Retry-After", v);
    } else if (status == 503) {
        cd_reply_header(req, "Retry-After", "1");
    }
    const char *msg = err->msg[0] ? err->msg : cd_err_reason(err);
    return cd_reply_json(req, status, json_pack("{si ss}", "code", status, "message", msg));
}

/* ---- authentication: api-login + api-key ---- */

/* Missing headers are 401, credentials that do not authenticate (unknown or revoked key, a
 * login that is not the key's account's) 403, with one message whatever was wrong. */
static int authenticate(cd_req *req, cd_err *err)
{
    cd_credentials cred;
    if (cd_auth_read(req, CD_AUTH_HEADER_PAIR, &cred) != 0)
        return cd_fail_reason(err, CD_EAUTH, "unauthorized", "",
                              "authentication required: send the api-login and api-key headers");
    if (cd_api_authenticate(req, cd_api_env_of(req)->store, CD_AUTH_HEADER_PAIR, err) == 0)
        return 0;
    if (err && err->code == CD_EAUTH)
        cd_fail_reason(err, CD_EAUTH, "forbidden", "", "invalid api-login or api-key");
    return -1;
}

static const cd_surface octopush_http = {
    .name = "octopush", .authenticate = authenticate, .reply_error = reply_error};
static const cd_api_surface octopush = {
    .http = &octopush_http, .idempotency = true, .forms = false};

/* ---- parsing ---- */

/* Octopush's contact members and the model's fields they fill. */
static const struct {
    const char *key;
    int field;
} FIELDS[] = {
    {"first_name", CD_CF_FIRST_NAME}, {"last_name", CD_CF_LAST_NAME}, {"email", CD_CF_EMAIL},
    {"param1", CD_CF_PARAM1},         {"param2", CD_CF_PARAM1 + 1},   {"param3", CD_CF_PARAM1 + 2},
    {"param4", CD_CF_PARAM1 + 3},     {"param5", CD_CF_PARAM1 + 4},
};

/* Names the item and member at fault, in the field and at the head of the message. */
static int item_error(cd_err *err, bool invalid, size_t i, const char *key, const char *what)
{
    char field[48];
    if (key)
        snprintf(field, sizeof field, "contacts[%zu].%s", i, key);
    else
        snprintf(field, sizeof field, "contacts[%zu]", i);
    return cd_fail_reason(err, CD_EINVAL, invalid ? "invalid_value" : "bad_request", field,
                          "%s: %s", field, what);
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80; /* jansson gave us valid UTF-8 */
    return n;
}

/* A string with no NUL inside (C would read it cut short). */
static bool string_ok(json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int parse_phone(cd_req *req, json_t *o, size_t i, cd_batch_item *it, cd_err *err)
{
    json_t *v = json_object_get(o, "phone_number");
    if (v == NULL || json_is_null(v))
        return item_error(err, false, i, "phone_number", "phone_number is required");
    if (!json_is_string(v))
        return item_error(err, false, i, "phone_number", "must be a string");
    if (!string_ok(v) || json_string_length(v) > 64)
        return item_error(err, true, i, "phone_number", "not a phone number");
    cd_err e;
    if (cd_api_normalize(req, json_string_value(v), "phone_number", it->phone, &e) != 0)
        return item_error(err, true, i, "phone_number", e.msg); /* "phone number is ..." */
    return 0;
}

static int parse_item(cd_req *req, json_t *o, size_t i, cd_batch_item *it, cd_err *err)
{
    if (!json_is_object(o))
        return item_error(err, false, i, NULL, "each contact must be an object");
    if (parse_phone(req, o, i, it, err) != 0)
        return -1;
    for (size_t k = 0; k < sizeof FIELDS / sizeof FIELDS[0]; k++) {
        json_t *v = json_object_get(o, FIELDS[k].key);
        int f = FIELDS[k].field;
        if (v == NULL)
            continue; /* absent: left as it is */
        if (!json_is_null(v) && !json_is_string(v))
            return item_error(err, false, i, FIELDS[k].key, "must be a string or null");
        if (json_is_string(v) && !string_ok(v))
            return item_error(err, true, i, FIELDS[k].key, "must not contain NUL");
        it->has[f] = true;
        it->value[f] = json_string_value(v); /* NULL for null: clears the field */
        cd_err e;
        if (cd_contact_field_check(f, it->value[f], &e) != 0)
            return item_error(err, true, i, FIELDS[k].key, e.msg);
    }
    return 0;
}

/* list_name and tag_name: absent, null or "" mean none. */
static int opt_name(json_t *o, const char *key, size_t max, const char **out, cd_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return cd_fail_reason(err, CD_EINVAL, "bad_request", key, "%s must be a string", key);
    if (!string_ok(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_value", key, "%s must not contain NUL", key);
    if (utf8_chars(json_string_value(v), json_string_length(v)) > max)
        return cd_fail_reason(err, CD_EINVAL, "invalid_value", key,
                              "%s is at most %zu characters long", key, max);
    *out = json_string_length(v) ? json_string_value(v) : NULL;
    return 0;
}

/* true/false, and the strings "true"/"false" a form-minded client sends. */
static int opt_bool(json_t *o, const char *key, bool *out, cd_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = false;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0)) {
        *out = strcasecmp(s, "true") == 0;
        return 0;
    }
    return cd_fail_reason(err, CD_EINVAL, "bad_request", key, "%s must be true or false", key);
}

static int parse_request(cd_req *req, json_t *o, cd_batch *b, cd_err *err)
{
    json_t *list = json_object_get(o, "contacts");
    if (!json_is_array(list) || json_array_size(list) == 0)
        return cd_fail_reason(err, CD_EINVAL, "bad_request", "contacts",
                              "contacts is required: a non-empty array of contacts");
    size_t n = json_array_size(list);
    if (n > CD_OCTOPUSH_MAX_CONTACTS)
        return cd_fail_reason(err, CD_ELIMIT, "too_many_contacts", "contacts",
                              "a call takes at most %d contacts; this one has %zu",
                              CD_OCTOPUSH_MAX_CONTACTS, n);
    if (opt_name(o, "list_name", CD_OCTOPUSH_LIST_MAX, &b->list, err) != 0 ||
        opt_name(o, "tag_name", CD_OCTOPUSH_TAG_MAX, &b->tag, err) != 0 ||
        opt_bool(o, "auto_remove_blacklisted_numbers", &b->drop_blacklisted, err) != 0 ||
        opt_bool(o, "do_not_overwrite", &b->keep_existing, err) != 0)
        return -1;
    b->items = cd_req_alloc(req, n * sizeof *b->items); /* n is capped above */
    b->n = n;
    for (size_t i = 0; i < n; i++)
        if (parse_item(req, json_array_get(list, i), i, &b->items[i], err) != 0)
            return -1;
    return 0;
}

/* ---- POST /v1/public/contact/create ---- */

/* A string jansson writes as it is: printable ASCII without a quote or a backslash. */
static bool plain(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            return false;
    return true;
}

/* The answer's bytes as json_dumps(JSON_COMPACT) writes render_items's body, without a
 * json_t per item (a batch is 1,000 to 10,000 of them); false when an email would need
 * escaping (then the body is built as JSON). */
static bool render_raw(cd_api_write_op *w)
{
    const cd_batch *b = w->in;
    if (w->surface->reply != NULL)
        return false;
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].value[CD_CF_EMAIL] && !plain(b->items[i].value[CD_CF_EMAIL]))
            return false;
    size_t cap = 16 + b->n * 96; /* an item without an email takes about 70 bytes */
    cd_buf o = {.data = cd_xmalloc(cap), .cap = cap};
    o.data[0] = '\0';
    cd_buf_puts(&o, "{\"items\":[");
    for (size_t i = 0; i < b->n; i++) {
        const cd_batch_item *it = &b->items[i];
        const char *email = it->value[CD_CF_EMAIL];
        cd_buf_puts(&o, i ? ",{\"phone_number\":\"" : "{\"phone_number\":\"");
        cd_buf_puts(&o, it->phone); /* E.164: a plus and digits */
        cd_buf_puts(&o, email ? "\",\"email\":\"" : "\",\"email\":null");
        if (email) {
            cd_buf_puts(&o, email);
            cd_buf_puts(&o, "\"");
        }
        cd_buf_puts(&o, ",\"status\":\"");
        cd_buf_puts(&o, cd_batch_status_name(it->status));
        cd_buf_puts(&o, "\"}");
    }
    cd_buf_puts(&o, "]}");
    w->raw_len = o.len;
    w->raw = cd_buf_take(&o);
    return true;
}

static void render_items(cd_api_write_op *w)
{
    const cd_batch *b = w->in;
    if (render_raw(w))
        return;
    json_t *items = json_array();
    for (size_t i = 0; i < b->n; i++) {
        const cd_batch_item *it = &b->items[i];
        const char *email = it->value[CD_CF_EMAIL]; /* as this occurrence gave it */
        json_array_append_new(items, json_pack("{ss so ss}", "phone_number", it->phone, "email",
                                               email ? json_string(email) : json_null(), "status",
                                               cd_batch_status_name(it->status)));
    }
    w->body = json_pack("{so}", "items", items);
}

/* What the core found wrong, in Octopush's words. */
static void name_failure(const cd_batch *b, cd_err *err)
{
    if (err == NULL || err->code != CD_EINVAL)
        return;
    if (b->failed < b->n) {
        cd_err e = *err;
        char field[48];
        snprintf(field, sizeof field, "contacts[%zu]", b->failed);
        cd_fail_reason(err, CD_EINVAL, cd_err_reason(&e), field, "%s: %s", field, e.msg);
    } else if (strcmp(err->field, "name") == 0) {
        snprintf(err->field, sizeof err->field, "list_name");
    }
}

static int job_create(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    cd_batch *b = w->in;
    b->prov = (cd_provenance){.surface = "octopush",
                              .channel = "api",
                              .ip = w->ip,
                              .user_agent = w->user_agent,
                              .credential_id = w->who.credential_id,
                              .request_id = w->request_id};
    if (cd_contact_batch(db, w->who.account.id, b, err) != 0) {
        name_failure(b, err);
        return -1;
    }
    w->status = 201;
    w->render = render_items; /* after the commit, on a request thread */
    return 0;
}

static int h_contact_create(cd_req *req)
{
    cd_err err;
    json_t *o;
    cd_batch *b = cd_req_alloc(req, sizeof *b);
    if (cd_api_body(req, &octopush, &o, &err) != 0) {
        if (strcmp(cd_err_reason(&err), "invalid_field") == 0) /* not an object */
            cd_fail_reason(&err, CD_EINVAL, "bad_request", "", "the body must be a JSON object");
        return cd_api_error(req, &octopush, &err);
    }
    if (parse_request(req, o, b, &err) != 0)
        return cd_api_error(req, &octopush, &err);
    return cd_api_write(req, &octopush, job_create, b);
}

void cd_api_octopush_routes(cd_router *r, const cd_api_env *env)
{
    /* /v1/public/ only: /v1/contacts/ and /v1/contacts-opt-in/ are ProTexting's. */
    cd_router_set_prefix_fallback(r, "/v1/public/", &octopush_http);
    cd_router_add_opts(r, "POST", "/v1/public/contact/create", &octopush_http, h_contact_create,
                       cd_api_ctx(env), &(cd_route_opts){.max_body = CD_OCTOPUSH_MAX_BODY});
}
