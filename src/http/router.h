/* http/router.h -- (method, path pattern) -> handler, with path parameters, 404, 405+Allow
 * and per-route metrics. Patterns are literal segments and "{name}" segments:
 * "/api/v1/contacts/{id}". At each position a literal segment wins over a parameter,
 * whatever the order the routes were added in ("/optins/flows/{x}" before
 * "/optins/{id}/{y}"). Routes are added before the server starts; afterwards the router is
 * read-only, apart from its atomic counters. The table grows as needed. */
#ifndef CD_HTTP_ROUTER_H
#define CD_HTTP_ROUTER_H

#include "http/http.h"
#include "util/buf.h"

typedef int (*cd_handler)(cd_req *req);

/* cd_surface (a family of routes: authentication, error format) is in http.h. */

/* issue 9 parts 4 and 6: per-route options. Zero values keep the defaults. */
typedef struct cd_route_opts {
    size_t max_body; /* bytes; 0 = the server's cd_http_config.max_body */
    /* cd_req_json() also accepts application/x-www-form-urlencoded bodies (form.h);
     * without it a form body is read as JSON (and so refused) like before. */
    bool forms;
} cd_route_opts;

cd_router *cd_router_new(void);
void cd_router_free(cd_router *r);
/* `ctx` is handed to the handler through cd_req_ctx(). */
void cd_router_add(cd_router *r, const char *method, const char *pattern, const cd_surface *surface,
                   cd_handler handler, void *ctx);
/* cd_router_add with options (opts may be NULL: the defaults). */
void cd_router_add_opts(cd_router *r, const char *method, const char *pattern,
                        const cd_surface *surface, cd_handler handler, void *ctx,
                        const cd_route_opts *opts);
/* The surface used for paths that match no route (404s, 405s, early 413s). */
void cd_router_set_fallback(cd_router *r, const cd_surface *surface);
/* issue 9 part 3: the surface that answers paths under `prefix` ("/webservices/") that
 * match no route, instead of the fallback; the longest matching prefix wins. A prefix
 * ending in "/" also covers the path without it ("/webservices"). `prefix` is copied. */
void cd_router_set_prefix_fallback(cd_router *r, const char *prefix, const cd_surface *surface);

/* issue 9 part 7: the functions below, for cd_http_bind/cd_http_start (http.c calls the
 * router only through this). Points into r: lives as long as r. */
const cd_http_dispatcher *cd_router_dispatcher(cd_router *r);

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

#endif
