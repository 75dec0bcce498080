/* api/native_int.h -- what the files of the native surface (native.c, native_msg.c)
 * share: the surface, its error answer and its JSON shapes. The request helpers and the
 * write path they use are the kit's (api/kit.h). */
#ifndef CD_API_NATIVE_INT_H
#define CD_API_NATIVE_INT_H

#include <jansson.h>

#include "api/guard.h"
#include "core/phone.h"
#include "http/router.h"
#include "util/buf.h"
#include "api/kit.h"

static inline const cd_principal *WHO(cd_req *req)
{
    return cd_api_who(req);
}

extern const cd_surface cd_native__surface; /* Bearer keys, native errors */
extern const cd_surface cd_native__public;  /* no credentials, native errors */
/* The native surface for the kit: native errors, Idempotency-Key honoured, JSON bodies
 * only (a body labelled otherwise is answered 415, issue 8 item 13). */
extern const cd_api_surface cd_native__kit;

/* Answers err as {"error":{"code","message","field"}} with its HTTP status. */
int cd_native__error(cd_req *req, const cd_err *err);
json_t *cd_native__str_or_null(const char *s);
json_t *cd_native__time(int64_t ms);
/* {"data": data, "next_cursor": next or null}; takes data. */
json_t *cd_native__list(json_t *data, int64_t next, bool more);
json_t *cd_native__message_json(const cd_message *m);
json_t *cd_native__consent_json(const cd_consent *c);
json_t *cd_native__event_json(const cd_event *e);
json_t *cd_native__contact_json(const cd_contact *c);
/* issue 16: appends to b exactly what json_dumps(cd_native__contact_json(c), JSON_COMPACT |
 * JSON_ENCODE_ANY) gives, without building the tree. Returns -1 when a text field is not
 * valid UTF-8 (the tree would drop it): the caller then uses cd_native__contact_json(). */
int cd_native__contact_dump(const cd_contact *c, cd_buf *b);
int cd_native__consent_dump(const cd_consent *c, const cd_event *e, cd_buf *b);

/* native_msg.c: messages, inbound, flows, settings, senders, the confirmation page. */
void cd_api_native_msg_routes(cd_router *r, const cd_api_env *env);
/* native_sub.c (issue 12): GET /api/v1/submissions/{uuid}. */
void cd_api_native_sub_routes(cd_router *r, const cd_api_env *env);

/* native_pool.c (issue 14): sender leases and delivery receipts from HTTP providers. */
void cd_api_native_pool_routes(cd_router *r, const cd_api_env *env);

#endif
