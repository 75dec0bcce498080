/* http/router.h -- (method, path pattern) -> handler, with path parameters, 404, 405+Allow
 * and per-route metrics. Patterns are literal segments and "{name}" segments:
 * "/api/v1/contacts/{id}". Routes are added before the server starts; afterwards the
 * router is read-only, apart from its atomic counters. */
#ifndef CD_HTTP_ROUTER_H
#define CD_HTTP_ROUTER_H

#include "http/http.h"
#include "util/buf.h"

typedef int (*cd_handler)(cd_req *req);

/* A surface is a family of routes sharing an authentication rule and an error format.
 * authenticate: 0 when the request carries valid credentials (and sets cd_req_set_user),
 * -1 otherwise; then `reply_error` answers with the surface's own 401 body.
 * reply_error answers any cd_err in the surface's format (404, 405, 413, invalid JSON). */
typedef struct cd_surface {
    const char *name;
    int (*authenticate)(cd_req *req, cd_err *err); /* NULL: public routes */
    int (*reply_error)(cd_req *req, const cd_err *err);
} cd_surface;

cd_router *cd_router_new(void);
void cd_router_free(cd_router *r);
/* `ctx` is handed to the handler through cd_req_ctx(). */
void cd_router_add(cd_router *r, const char *method, const char *pattern, const cd_surface *surface,
                   cd_handler handler, void *ctx);
/* The surface used for paths that match no route (404s, 405s, early 413s). */
void cd_router_set_fallback(cd_router *r, const cd_surface *surface);

/* Called by http.c with the request head only, before any body is read: matches the
 * route and runs its surface's authenticate hook. 0: go on (read the body, then
 * cd_router_dispatch); -1: *err says why not (404, 405 with an Allow reply header, 401, or
 * what authenticate failed with), to be answered with cd_router_reply_error at once. */
int cd_router_prepare(cd_router *r, cd_req *req, cd_err *err);
/* Called by http.c once the body is complete: runs the handler that cd_router_prepare
 * matched and authenticated (it neither matches nor authenticates again). */
int cd_router_dispatch(cd_router *r, cd_req *req);
/* Answers an error for a request that never reached a handler (body too big...). */
int cd_router_reply_error(cd_router *r, cd_req *req, const cd_err *err);
/* Counts a finished request against its route. */
void cd_router_observe(cd_router *r, int route, int status, double seconds);
/* Appends the Prometheus text of the request counters and the latency histogram. */
void cd_router_metrics(cd_router *r, cd_buf *out);

/* Internal to http/: which route a request matched (-1 = none) and its parameters. */
typedef struct cd_route_match {
    int route; /* -1 = none */
    int owner; /* the route whose surface answers errors: `route`, or one on the same path */
    bool tried;
    void *ctx;
    int nparams;
    const char *names[8];
    const char *values[8]; /* request memory */
} cd_route_match;
cd_route_match *cd_http__match(cd_req *req); /* http.c: the request's match slot */
/* http.c: decodes the %2F and %25 that the first pass kept (request memory, or s itself). */
const char *cd_http__unescape_late(cd_req *req, const char *s);

#endif
