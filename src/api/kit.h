/* api/kit.h -- what every API surface shares (issue 9 part 1): the request helpers (body,
 * string and integer fields, phone, paging, normalisation) and the one durable write
 * path, with Idempotency-Key handling. Surface-neutral: nothing here knows a vendor's
 * field names or error format.
 *
 * A surface describes itself to the kit with a cd_api_surface and passes it to the calls
 * that may answer or refuse. Failures are answered with that descriptor's http surface
 * (cd_surface.reply_error), so a vendor path never answers in native JSON.
 * The descriptor is passed explicitly rather than found with cd_req_surface(req): that
 * gives the http surface only, while the kit also needs the surface's kit options
 * (idempotency, forms), and a route's handler always knows which surface it serves. */
#ifndef CD_API_KIT_H
#define CD_API_KIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/env.h"
#include "core/account.h"
#include "core/phone.h"
#include "http/router.h"

/* A surface's options for the kit. Static storage, like the cd_surface it points at. */
typedef struct cd_api_surface {
    const cd_surface *http; /* required: its reply_error answers every failure */
    bool idempotency;       /* honour the Idempotency-Key header on writes */
    /* Accept bodies not labelled JSON (form bodies, parsed by http/ into the same JSON
     * object). false: a body labelled anything but application/json is refused with 415
     * "unsupported_media_type" (issue 8 item 13: what a hostile page can POST cross-site). */
    bool forms;
    /* issue 10: answers a write's outcome (status, body: a new reference it takes) in the
     * surface's own form, e.g. XML on request; NULL: cd_reply_json. A stored Idempotency-Key
     * answer is handed to it parsed back. */
    int (*reply)(cd_req *req, int status, json_t *body);
} cd_api_surface;

/* The environment every route of the kit's surfaces gets as its context (borrowed). */
static inline const cd_api_env *cd_api_env_of(cd_req *req)
{
    return cd_req_ctx(req);
}

/* The authenticated caller (borrowed, lives with the request). */
static inline const cd_principal *cd_api_who(cd_req *req)
{
    return cd_req_user(req);
}

/* Answers err in the surface's own format (s->http->reply_error). */
int cd_api_error(cd_req *req, const cd_api_surface *s, const cd_err *err);

/* ---- request helpers: each fails with CD_EINVAL and a reason the surface renders ---- */

/* The request's reader (cd_req_reader); NULL with CD_ESTORE in *err when none opens. */
cd_db *cd_api_reader(cd_req *req, cd_err *err);
/* The body as a JSON object (borrowed, lives with the request). See cd_api_surface.forms. */
int cd_api_body(cd_req *req, const cd_api_surface *s, json_t **out, cd_err *err);
/* A string member: absent or null -> *out = NULL; wrong type, NUL inside or longer than max
 * -> "invalid_field". *out is borrowed from o. */
int cd_api_opt_string(json_t *o, const char *key, size_t max, const char **out, cd_err *err);
/* The same, and absent, null or "" -> "invalid_field" "KEY is required". */
int cd_api_req_string(json_t *o, const char *key, size_t max, const char **out, cd_err *err);
/* The member `key` as a phone number, required: an empty or overlong one is an invalid
 * number ("invalid_phone"), not a missing one. */
int cd_api_phone_field(json_t *o, const char *key, const char **out, cd_err *err);
/* Only digits, lo <= value <= hi: 0, else -1. */
int cd_api_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* ?limit= (1..1000, default 50) and ?cursor= (default 0). */
int cd_api_paging(cd_req *req, int *limit, int64_t *cursor, cd_err *err);
/* A number in any format -> E.164, with the caller's account's region. */
int cd_api_normalize(cd_req *req, const char *raw, const char *field, char out[CD_PHONE_MAX],
                     cd_err *err);

/* ---- the write path ---- */

typedef struct cd_api_write_op cd_api_write_op;
/* A write job: runs on the writer, in its transaction; sets w->status and w->body (or
 * w->render). On failure it returns -1 with *err, and nothing it did is committed. */
typedef int (*cd_api_write_fn)(cd_db *db, cd_api_write_op *w, cd_err *err);

struct cd_api_write_op {
    cd_api_write_fn fn;
    void *in;
    const cd_api_surface *surface;
    cd_principal who;
    char request_id[40];
    char ip[64];
    const char *user_agent;
    const char *idem_key; /* NULL: no Idempotency-Key (or the surface ignores it) */
    char request_hash[65];
    /* the outcome, set on the writer thread and read after resumption */
    int status;
    json_t *body;
    /* What the Idempotency-Key record keeps instead of body, when the answer holds a secret
     * that must not rest in the database (a new API key). NULL: body itself. */
    json_t *idem_body;
    /* Builds body from what fn left in `in`. Set by jobs whose answer takes some work, so
     * that it runs on a request thread after the commit, not on the single writer (unless
     * the answer must be stored for Idempotency-Key). */
    void (*render)(cd_api_write_op *w);
    /* issue 16: what render may write instead of body, on a surface without its own reply
     * (surface->reply NULL): the answer's JSON bytes, exactly as json_dumps(JSON_COMPACT)
     * would write body, malloc'd; freed with the request's answer. */
    char *raw;
    size_t raw_len;
    /* Releases what fn left in `in`; runs once the answer is built, on every path. */
    void (*done)(cd_api_write_op *w);
    char *replay; /* a stored answer, when this is a retry */
    bool ran;     /* the writer ran the job once */
};

/* Validates nothing more: defers fn(in) to the writer (with Idempotency-Key handling when
 * s->idempotency), and answers once the commit is durable: w->body as JSON with
 * w->status, a stored answer with "Idempotent-Replayed: true", or a failure through
 * s->http->reply_error. `in` must live as long as the request (cd_req_alloc). Requires an
 * authenticated request (cd_api_who). */
int cd_api_write(cd_req *req, const cd_api_surface *s, cd_api_write_fn fn, void *in);
/* The same for a job the writer may run twice in one batch (cd_store_submit_rerunnable),
 * the first run rolled back: before the second, done (if set) runs and the outcome is
 * cleared. So fn must leave in `in` only what done releases, and must not change what it
 * reads from `in`. */
int cd_api_write_rerunnable(cd_req *req, const cd_api_surface *s, cd_api_write_fn fn, void *in);

#endif
