/* api/native_int.h -- what the files of the native surface (native.c, native_msg.c)
 * share: request helpers, JSON shapes, and the idempotent write path. */
#ifndef CD_API_NATIVE_INT_H
#define CD_API_NATIVE_INT_H

#include <jansson.h>

#include "api/guard.h"
#include "core/phone.h"
#include "http/router.h"
#include "server.h"

static inline cd_server *SRV(cd_req *req)
{
    return cd_req_ctx(req);
}

static inline const cd_principal *WHO(cd_req *req)
{
    return cd_req_user(req);
}

extern const cd_surface cd_native__surface; /* Bearer keys, native errors */
extern const cd_surface cd_native__public;  /* no credentials, native errors */

/* Answers err as {"error":{"code","message","field"}} with its HTTP status. */
int cd_native__error(cd_req *req, const cd_err *err);
/* The request's reader (cd_req_reader); NULL with CD_ESTORE in *err when none opens. */
cd_db *cd_native__reader(cd_req *req, cd_err *err);
/* The body as a JSON object (borrowed). */
int cd_native__body(cd_req *req, json_t **out, cd_err *err);
/* A string member: absent or null -> *out = NULL; wrong type or too long -> invalid_field. */
int cd_native__opt_string(json_t *o, const char *key, size_t max, const char **out, cd_err *err);
int cd_native__req_string(json_t *o, const char *key, size_t max, const char **out, cd_err *err);
/* The "phone" member, required. */
int cd_native__phone(json_t *o, const char **out, cd_err *err);
int cd_native__parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* ?limit= (1..1000, default 50) and ?cursor=. */
int cd_native__paging(cd_req *req, int *limit, int64_t *cursor, cd_err *err);
/* A number in any format -> E.164, with the account's region. */
int cd_native__normalize(cd_req *req, const char *raw, const char *field, char out[CD_PHONE_MAX],
                         cd_err *err);

json_t *cd_native__str_or_null(const char *s);
json_t *cd_native__time(int64_t ms);
/* {"data": data, "next_cursor": next or null}; takes data. */
json_t *cd_native__list(json_t *data, int64_t next, bool more);
json_t *cd_native__message_json(const cd_message *m);
json_t *cd_native__consent_json(const cd_consent *c);
json_t *cd_native__event_json(const cd_event *e);
json_t *cd_native__contact_json(const cd_contact *c);

typedef struct write_op write_op;
/* A write job: runs on the writer; sets w->status and w->body (or w->render). */
typedef int (*write_fn)(cd_db *db, write_op *w, cd_err *err);

struct write_op {
    write_fn fn;
    void *in;
    cd_principal who;
    char request_id[40];
    char ip[64];
    const char *user_agent;
    const char *idem_key; /* NULL: no Idempotency-Key */
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
    void (*render)(write_op *w);
    /* Releases what fn left in `in`; runs once the answer is built, on every path. */
    void (*done)(write_op *w);
    char *replay; /* a stored answer, when this is a retry */
};

/* Validates nothing more: defers fn to the writer with Idempotency-Key handling, and
 * answers once it is durable. */
int cd_native__write(cd_req *req, write_fn fn, void *in);

/* native_msg.c: messages, inbound, flows, settings, senders, the confirmation page. */
void cd_api_native_msg_routes(cd_router *r, struct cd_server *srv);

#endif
