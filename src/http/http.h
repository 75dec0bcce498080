/* http/http.h -- the HTTP server (libmicrohttpd) and the request object handlers see.
 * This directory is the only code that includes microhttpd.h.
 *
 * A handler runs on one of MHD's pool threads, once the whole body has arrived. It must
 * answer exactly once, either at once (cd_reply_*) or later: cd_req_defer() suspends the
 * connection, runs a job on the store's writer and calls `finish` on a pool thread once
 * the job is durable, and `finish` answers. Memory from cd_req_alloc() lives until the
 * answer has been sent. */
#ifndef CD_HTTP_HTTP_H
#define CD_HTTP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

typedef struct cd_req cd_req;
typedef struct cd_http cd_http;
typedef struct cd_router cd_router; /* router.h */

/* A surface is a family of routes sharing an authentication rule and an error format
 * (the router assigns one to each route; declared here so that this module, which answers
 * with it, need not know the router: issue 9 part 7).
 * authenticate: 0 when the request carries valid credentials (and sets cd_req_set_user),
 * -1 otherwise; then `reply_error` answers with the surface's own 401 body.
 * reply_error answers any cd_err in the surface's format (404, 405, 413, invalid JSON). */
typedef struct cd_surface {
    const char *name;
    int (*authenticate)(cd_req *req, cd_err *err); /* NULL: public routes */
    int (*reply_error)(cd_req *req, const cd_err *err);
    /* issue 9 part 3: optional. Called on every answer (errors included, once per request,
     * just before it is queued) of a request that matched a route of this surface; it may
     * add headers with cd_reply_header (ProTexting's X-Rate-Limit-*), and must not reply. */
    void (*headers)(cd_req *req, int status);
    /* The surface's own state (e.g. its rate limiter), borrowed: cd_req_surface_ctx(). */
    void *ctx;
} cd_surface;

typedef struct cd_http_config {
    const char *host; /* "127.0.0.1" */
    int port;         /* 0 = any free port */
    int threads;      /* MHD thread pool size */
    size_t max_body;  /* bytes; larger bodies get 413 */
    bool log_requests;
    unsigned max_connections; /* 0 = 4000; the caller keeps it below the open-file limit */
    unsigned max_per_ip;      /* connections from one IP address; 0 = no limit */
    unsigned request_timeout; /* seconds for a request's head and body to arrive (408); 0 = none */
    unsigned idle_timeout;    /* seconds a connection may sit idle before MHD closes it; 0 = 60 */
    unsigned stop_grace_ms;   /* how long cd_http_stop lets waiters finish; 0 = 5000 */
} cd_http_config;

/* What the server calls to route requests (issue 9 part 7: this module knows no router;
 * router.h's cd_router_dispatcher() provides one). Every function gets `arg` first.
 * prepare: with the request head only, before any body is read: match and authenticate;
 *   0 = go on (read the body, then dispatch), -1 = *err is to be answered with reply_error.
 * dispatch: once the body is complete, runs the handler that prepare matched.
 * reply_error: answers an error for a request that never reached a handler.
 * observe: counts a finished request (route = its cd_route_match.route, -1 = none).
 * surface_of: the surface that answers req (cd_req_surface), matching it if needed.
 * prefix_count / prefix / prefix_index: the path prefixes that have a surface of their
 *   own, and the one `path` is under (-1: none), for the 408s the watchdog pre-renders. */
typedef struct cd_http_dispatcher {
    int (*prepare)(void *arg, cd_req *req, cd_err *err);
    int (*dispatch)(void *arg, cd_req *req);
    int (*reply_error)(void *arg, cd_req *req, const cd_err *err);
    void (*observe)(void *arg, int route, int status, double seconds);
    const cd_surface *(*surface_of)(void *arg, cd_req *req);
    int (*prefix_count)(void *arg);
    const char *(*prefix)(void *arg, int i);
    int (*prefix_index)(void *arg, const char *path);
    void *arg;
} cd_http_dispatcher;

/* Binds and listens, but serves nothing yet: cd_http_port() is known, no thread runs.
 * `disp` is copied; its arg is borrowed and must outlive the server. */
cd_http *cd_http_bind(const cd_http_config *cfg, const cd_http_dispatcher *disp, cd_err *err);
/* Starts the threads that serve a bound cd_http. On failure the cd_http is still to be
 * released with cd_http_stop(). */
int cd_http_serve(cd_http *h, cd_err *err);
/* cd_http_bind + cd_http_serve; NULL (everything released) on failure. */
cd_http *cd_http_start(const cd_http_config *cfg, const cd_http_dispatcher *disp, cd_err *err);
int cd_http_port(const cd_http *h); /* the bound port (useful with port 0) */
/* Requests waiting for the writer (suspended), or resumed but not yet answered. */
int cd_http_deferred(const cd_http *h);
/* Appends the Prometheus text of the gauges above (consentd_http_deferred, ...). */
void cd_http_metrics(const cd_http *h, cd_buf *out);
/* Stops serving and releases h; NULL is a no-op. The order, so that no suspended
 * connection is left for MHD_stop_daemon (which aborts on one):
 * 1. refuse new requests (503, also on open keep-alive connections) and new connections;
 * 2. give the waiters up to stop_grace_ms to be answered normally;
 * 3. answer those still waiting 503 (a job not started yet is then skipped by the writer;
 *    one already running may still commit, and the message says to retry with the same
 *    Idempotency-Key: its `finish` runs later, when the writer hands it back, with its
 *    answer dropped), and give their answers a moment to go out;
 * 4. stop MHD. The writer may still hold abandoned jobs: their memory is freed when it
 *    hands them back, so the store must be closed after this, never before. */
void cd_http_stop(cd_http *h);

/* ---- request ---- */
const char *cd_req_method(const cd_req *req);
const char *cd_req_path(const cd_req *req);
const char *cd_req_id(const cd_req *req);
const char *cd_req_header(cd_req *req, const char *name);      /* NULL when absent */
const char *cd_req_query(cd_req *req, const char *name);       /* NULL when absent */
const char *cd_req_param(const cd_req *req, const char *name); /* path parameter */
const char *cd_req_body(const cd_req *req, size_t *len);
const char *cd_req_client_ip(cd_req *req);
/* The parsed JSON body (borrowed, lives with the request). NULL with *err filled when the
 * body is empty, too deep, not JSON or not UTF-8. When cd_req_is_form(), the form as a JSON
 * object instead (form.h; an empty form is {}), or NULL with reason "invalid_form". */
json_t *cd_req_json(cd_req *req, cd_err *err);
/* The route's context pointer (given to cd_router_add). */
void *cd_req_ctx(const cd_req *req);
/* issue 9 part 3: the surface that answers this request: its route's, or for a request
 * that matched none, the one owning its path or prefix, or the fallback. Never NULL once
 * the router has seen the request (handlers and finish functions always may call it). */
const cd_surface *cd_req_surface(cd_req *req);
/* That surface's ctx (cd_surface.ctx), NULL when it has none. */
void *cd_req_surface_ctx(cd_req *req);
/* issue 9 part 4: true when the route accepts forms (cd_route_opts.forms) and the body is
 * labelled application/x-www-form-urlencoded: cd_req_json() then parses it as a form. */
bool cd_req_is_form(cd_req *req);
/* The authenticated principal, set by the surface's authenticate hook. */
void cd_req_set_user(cd_req *req, void *user);
void *cd_req_user(const cd_req *req);

/* The request's read connection: taken from `store`'s reader pool on first use, so every
 * read of one request sees one snapshot and pays for one read transaction. It goes back to
 * the pool before the request is deferred (a suspended request must not hold a reader the
 * others may be waiting for) and when the request ends. NULL when none can be opened. */
cd_db *cd_req_reader(cd_req *req, cd_store *store);

void *cd_req_alloc(cd_req *req, size_t n); /* zeroed; freed with the request */
char *cd_req_strdup(cd_req *req, const char *s);

/* ---- answers ---- */
void cd_reply_header(cd_req *req, const char *name, const char *value); /* before a reply */
/* Takes `body` (a new reference) on every path. */
int cd_reply_json(cd_req *req, int status, json_t *body);
/* Copies `body`. */
int cd_reply_data(cd_req *req, int status, const char *content_type, const char *body, size_t len);
/* Takes `body` (malloc'd). */
int cd_reply_take(cd_req *req, int status, const char *content_type, char *body, size_t len);

/* A streamed answer (issue 8 item 11: an export must not be built in memory). `next`
 * appends the next part of the body to `out` and returns 1 while more follows, 0 after the
 * last part, -1 on an error, which closes the connection so the client sees a cut body.
 * It runs on a pool thread after the handler returned, so it must not touch the request. */
typedef int (*cd_stream_fn)(void *arg, cd_buf *out);
/* Answers `status` with a chunked body from `next`. Takes `arg` on every path:
 * release(arg) runs once when the stream ends, however it ends. The request's reader goes
 * back to the pool first: the stream reads with readers of its own, briefly. */
int cd_reply_stream(cd_req *req, int status, const char *content_type, cd_stream_fn next, void *arg,
                    void (*release)(void *arg));

/* Runs `fn(db, arg)` on the store's writer; once it is durable (or failed), calls
 * finish(req, arg, rc, err) on a pool thread, which must reply. Returns what the handler
 * should return. */
typedef int (*cd_finish_fn)(cd_req *req, void *arg, int rc, const cd_err *err);
int cd_req_defer(cd_req *req, cd_store *store, cd_job_fn fn, void *arg, cd_finish_fn finish);
/* The same for a job that may run twice (cd_store_submit_rerunnable): fn(db, arg) then
 * gives the same result on every run. */
int cd_req_defer_rerunnable(cd_req *req, cd_store *store, cd_job_fn fn, void *arg,
                            cd_finish_fn finish);

/* issue 13: suspends req until someone else's work is done (a mail's first attempt), like
 * cd_req_defer without the writer: once cd_req_wake(req, rc, err) has been called, from
 * any thread and exactly once, finish(req, arg, rc, err) runs on a pool thread and must
 * reply. The request stays alive until then (its memory too). When the server stops
 * first, the client is answered 503 and finish later runs with no connection (its answer
 * dropped). Returns what the handler (or the finish that calls it) should return. */
int cd_req_wait(cd_req *req, cd_finish_fn finish, void *arg);
void cd_req_wake(cd_req *req, int rc, const cd_err *err);

/* ---- rate-limit figures (issue 9 part 5; the counter is http/ratelimit.h) ---- */

/* The figures for headers (X-Rate-Limit-Limit/-Remaining/-Reset) and Retry-After. */
typedef struct cd_ratelimit_info {
    int limit;         /* 0 when no limit applied */
    int remaining;     /* hits left in the window after this one */
    int64_t reset_ms;  /* when the window ends, on the caller's clock (now_ms) */
    int reset_s;       /* seconds until then, rounded up; at least 1 */
    int retry_after_s; /* 0 when allowed; else reset_s */
} cd_ratelimit_info;

/* The request's figures, for a surface's headers hook: set by whoever called
 * cd_ratelimit_hit for it (usually authenticate); copied into request memory. */
void cd_req_set_ratelimit(cd_req *req, const cd_ratelimit_info *info);
const cd_ratelimit_info *cd_req_ratelimit(cd_req *req); /* NULL when none was set */
#endif
