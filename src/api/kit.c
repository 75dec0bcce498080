/* api/kit.c -- what every API surface shares: request helpers and the durable,
 * idempotent write path (see kit.h). Moved out of native.c (issue 9 part 1) so that a
 * vendor surface writes through the same code, answered in its own format.
 *
 * Writes are jobs for the store's writer (group commit): the handler validates everything
 * it can first, then defers; the job re-reads what it needs inside the transaction, and
 * the answer goes out once the commit is durable. Idempotency-Key, where the surface
 * honours it, is checked and stored inside the same transaction as the write. */
#include "api/kit.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/idem.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

int cd_api_error(cd_req *req, const cd_api_surface *s, const cd_err *err)
{
    return s->http->reply_error(req, err);
}

cd_db *cd_api_reader(cd_req *req, cd_err *err)
{
    cd_db *db = cd_req_reader(req, cd_api_env_of(req)->store);
    if (db == NULL)
        cd_fail(err, CD_ESTORE, "", "storage unavailable");
    return db;
}

/* issue 8 item 13: a JSON body must say so, or say nothing. text/plain and the form types
 * are what a hostile web page can POST cross-site without a preflight. */
static bool json_labelled(const char *ctype)
{
    if (ctype == NULL)
        return true;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    size_t n = strlen("application/json");
    if (strncasecmp(ctype, "application/json", n) != 0)
        return false;
    ctype += n;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    return *ctype == '\0' || *ctype == ';'; /* parameters such as charset are fine */
}

int cd_api_body(cd_req *req, const cd_api_surface *s, json_t **out, cd_err *err)
{
    if (!s->forms && !json_labelled(cd_req_header(req, "Content-Type")))
        return cd_fail_reason(err, CD_EINVAL, "unsupported_media_type", "",
                              "the body must be JSON: send Content-Type: application/json "
                              "(curl --json)");
    json_t *j = cd_req_json(req, err);
    if (j == NULL)
        return -1;
    if (!json_is_object(j))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "",
                              "the body must be a JSON object");
    *out = j;
    return 0;
}

/* A string member: absent or null -> *out = NULL. */
int cd_api_opt_string(json_t *o, const char *key, size_t max, const char **out, cd_err *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s must be a string", key);
    if (json_string_length(v) > max)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key,
                              "%s is longer than %zu characters", key, max);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s contains NUL", key);
    *out = json_string_value(v);
    return 0;
}

int cd_api_req_string(json_t *o, const char *key, size_t max, const char **out, cd_err *err)
{
    if (cd_api_opt_string(o, key, max, out, err) != 0)
        return -1;
    if (*out == NULL || **out == '\0')
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s is required", key);
    return 0;
}

/* The number must be there; an empty or overlong one is an invalid number, not a missing one. */
int cd_api_phone_field(json_t *o, const char *key, const char **out, cd_err *err)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s is required", key);
    if (!json_is_string(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s must be a string", key);
    if (json_string_length(v) > 64 || strlen(json_string_value(v)) != json_string_length(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_phone", key, "not a phone number");
    *out = json_string_value(v);
    return 0;
}

int cd_api_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cd_api_paging(cd_req *req, int *limit, int64_t *cursor, cd_err *err)
{
    const char *l = cd_req_query(req, "limit"), *c = cd_req_query(req, "cursor");
    int64_t v = 50;
    if (l && cd_api_parse_int(l, 1, 1000, &v) != 0)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "limit",
                              "limit must be an integer from 1 to 1000");
    *limit = (int)v;
    *cursor = 0;
    if (c && *c && cd_api_parse_int(c, 0, INT64_MAX, cursor) != 0)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "cursor", "invalid cursor");
    return 0;
}

int cd_api_normalize(cd_req *req, const char *raw, const char *field, char out[CD_PHONE_MAX],
                     cd_err *err)
{
    return cd_phone_normalize(raw, cd_api_who(req)->account.region, field, out, err);
}

/* ---- writes: idempotency, the writer, the answer ---- */

/* A rerunnable write run again (cd_api_write_rerunnable): what its first run left goes, so
 * that the second starts as the first did. */
static void forget_outcome(cd_api_write_op *w)
{
    if (w->done)
        w->done(w);
    json_decref(w->body);
    json_decref(w->idem_body);
    free(w->raw);
    free(w->replay);
    w->status = 0;
    w->body = w->idem_body = NULL;
    w->raw = w->replay = NULL;
    w->raw_len = 0;
    w->render = NULL;
    w->done = NULL;
}

static int write_job(cd_db *db, void *arg, cd_err *err)
{
    cd_api_write_op *w = arg;
    int64_t acct = w->who.account.id;
    if (w->ran)
        forget_outcome(w);
    w->ran = true;
    if (w->idem_key) {
        cd_idem prior;
        cd_err e;
        if (cd_store_idem_get(db, acct, w->idem_key, &prior, &e) == 0) {
            bool same = strcmp(prior.request_hash, w->request_hash) == 0;
            if (same) {
                w->status = prior.status;
                w->replay = prior.body; /* handed over; freed after the answer */
                prior.body = NULL;
            }
            cd_idem_clear(&prior);
            if (!same)
                return cd_fail_reason(err, CD_EMISMATCH, "idempotency_mismatch", "",
                                      "this Idempotency-Key was used with another request");
            return 0;
        }
        if (e.code != CD_ENOTFOUND) {
            *err = e;
            return -1;
        }
    }
    if (w->fn(db, w, err) != 0)
        return -1;
    if (w->idem_key == NULL) {
        json_decref(w->idem_body);
        w->idem_body = NULL;
    } else {
        if (w->body == NULL && w->render)
            w->render(w);
        cd_idem rec = {.status = w->status, .created_ms = cd_now_ms()};
        memcpy(rec.request_hash, w->request_hash, sizeof rec.request_hash);
        if (w->idem_body == NULL && w->body == NULL && w->raw)
            rec.body = cd_xstrdup(w->raw);
        else
            rec.body =
                json_dumps(w->idem_body ? w->idem_body : w->body, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(w->idem_body);
        w->idem_body = NULL;
        int rc = cd_store_idem_put(db, acct, w->idem_key, &rec, err);
        free(rec.body);
        if (rc != 0) {
            json_decref(w->body);
            w->body = NULL;
            free(w->raw);
            w->raw = NULL;
            return -1;
        }
    }
    return 0;
}

static int write_finish(cd_req *req, void *arg, int rc, const cd_err *err)
{
    cd_api_write_op *w = arg;
    int out;
    if (rc != 0) {
        json_decref(w->body);
        free(w->raw);
        free(w->replay);
        out = cd_api_error(req, w->surface, err);
    } else if (w->replay) {
        cd_reply_header(req, "Idempotent-Replayed", "true");
        if (w->surface->reply) {
            json_t *body = json_loads(w->replay, JSON_DECODE_ANY, NULL);
            free(w->replay);
            out = w->surface->reply(req, w->status, body);
        } else {
            out = cd_reply_take(req, w->status, "application/json", w->replay, strlen(w->replay));
        }
    } else {
        if (w->body == NULL && w->raw == NULL && w->render)
            w->render(w);
        if (w->body == NULL && w->raw && w->surface->reply == NULL)
            out = cd_reply_take(req, w->status, "application/json", w->raw, w->raw_len);
        else
            out = w->surface->reply ? w->surface->reply(req, w->status, w->body)
                                    : cd_reply_json(req, w->status, w->body);
    }
    if (w->done)
        w->done(w);
    return out;
}

static int write(cd_req *req, const cd_api_surface *s, cd_api_write_fn fn, void *in,
                 bool rerunnable)
{
    cd_err err;
    cd_api_write_op *w = cd_req_alloc(req, sizeof *w);
    assert(s != NULL && s->http != NULL && s->http->reply_error != NULL);
    assert(cd_api_who(req) != NULL); /* writes are made by someone */
    w->fn = fn;
    w->in = in;
    w->surface = s;
    w->who = *cd_api_who(req);
    snprintf(w->request_id, sizeof w->request_id, "%s", cd_req_id(req));
    snprintf(w->ip, sizeof w->ip, "%s", cd_req_client_ip(req));
    w->user_agent = cd_req_header(req, "User-Agent");
    const char *key = s->idempotency ? cd_req_header(req, "Idempotency-Key") : NULL;
    if (key) {
        if (!cd_idem_key_valid(key)) {
            cd_fail_reason(&err, CD_EINVAL, "invalid_field", "Idempotency-Key",
                           "Idempotency-Key must be 1-255 printable characters");
            return cd_api_error(req, s, &err);
        }
        w->idem_key = cd_req_strdup(req, key);
        cd_idem_request_hash(cd_req_method(req), cd_req_path(req), cd_req_json(req, NULL),
                             w->request_hash);
    }
    cd_store *store = cd_api_env_of(req)->store;
    return rerunnable ? cd_req_defer_rerunnable(req, store, write_job, w, write_finish)
                      : cd_req_defer(req, store, write_job, w, write_finish);
}

int cd_api_write(cd_req *req, const cd_api_surface *s, cd_api_write_fn fn, void *in)
{
    return write(req, s, fn, in, false);
}

int cd_api_write_rerunnable(cd_req *req, const cd_api_surface *s, cd_api_write_fn fn, void *in)
{
    return write(req, s, fn, in, true);
}
