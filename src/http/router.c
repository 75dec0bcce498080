/* http/router.c -- route table, matching, authentication by surface, metrics. */
#include "http/router.h"
#include "http/http_int.h"

#include <assert.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/metrics.h"
#include "util/xalloc.h"

#define MAX_SEGS 12

/* The status codes we count separately; anything else lands in "other". */
static const int statuses[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409,
                               413, 415, 422, 429, 500, 503, 520, 521, 522, 525};
#define NSTATUS ((int)(sizeof statuses / sizeof statuses[0]) + 1)

typedef struct route {
    char method[8];
    char *pattern;
    int nsegs;
    char *segs[MAX_SEGS]; /* "{name}" segments are parameters */
    const cd_surface *surface;
    cd_handler handler;
    void *ctx;
    cd_route_opts opts;
    atomic_uint_fast64_t counts[NSTATUS];
} route;

typedef struct prefix_fallback {
    char *prefix;
    size_t len;
    const cd_surface *surface;
} prefix_fallback;

struct cd_router {
    route **routes; /* issue 9 part 3: grows, no limit on the number of routes */
    int n, cap;
    prefix_fallback *prefixes;
    int nprefixes;
    const cd_surface *fallback;
    atomic_uint_fast64_t unmatched[NSTATUS];
    cd_hist latency;
    cd_http_dispatcher disp; /* cd_router_dispatcher() */
};

cd_router *cd_router_new(void)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,   0.25,   0.5,   1,    2.5};
    cd_router *r = cd_xcalloc(1, sizeof *r);
    cd_hist_init(&r->latency, bounds, (int)(sizeof bounds / sizeof bounds[0]));
    for (int i = 0; i < NSTATUS; i++)
        atomic_init(&r->unmatched[i], 0);
    return r;
}

void cd_router_free(cd_router *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->n; i++) {
        for (int s = 0; s < r->routes[i]->nsegs; s++)
            free(r->routes[i]->segs[s]);
        free(r->routes[i]->pattern);
        free(r->routes[i]);
    }
    free(r->routes);
    for (int i = 0; i < r->nprefixes; i++)
        free(r->prefixes[i].prefix);
    free(r->prefixes);
    free(r);
}

void cd_router_set_fallback(cd_router *r, const cd_surface *surface)
{
    r->fallback = surface;
}

void cd_router_set_prefix_fallback(cd_router *r, const char *prefix, const cd_surface *surface)
{
    r->prefixes = cd_xrealloc(r->prefixes, (size_t)(r->nprefixes + 1) * sizeof *r->prefixes);
    prefix_fallback *p = &r->prefixes[r->nprefixes++];
    p->prefix = cd_xstrdup(prefix);
    p->len = strlen(prefix);
    p->surface = surface;
}

/* "/webservices/" covers "/webservices/x" and "/webservices" itself. */
static bool under_prefix(const prefix_fallback *p, const char *path)
{
    if (strncmp(path, p->prefix, p->len) == 0)
        return true;
    return p->len > 1 && p->prefix[p->len - 1] == '/' && strlen(path) == p->len - 1 &&
           strncmp(path, p->prefix, p->len - 1) == 0;
}

static int cd_router__prefix_index(cd_router *r, const char *path)
{
    int best = -1;
    for (int i = 0; path && i < r->nprefixes; i++)
        if (under_prefix(&r->prefixes[i], path) &&
            (best < 0 || r->prefixes[i].len > r->prefixes[best].len))
            best = i;
    return best;
}

static int cd_router__prefix_count(cd_router *r)
{
    return r->nprefixes;
}

static const char *cd_router__prefix(cd_router *r, int i)
{
    return r->prefixes[i].prefix;
}

static const cd_surface *cd_router__prefix_surface(cd_router *r, const char *path)
{
    int i = cd_router__prefix_index(r, path);
    return i >= 0 ? r->prefixes[i].surface : r->fallback;
}

/* Splits "/a/b/{c}" into segments; empty segments (doubled or trailing slashes) are
 * skipped, so "/a/b/" and "/a/b" are the same path. */
static int split(char *path, char **segs, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return -1;
        segs[n++] = s;
    }
    return n;
}

void cd_router_add(cd_router *r, const char *method, const char *pattern, const cd_surface *surface,
                   cd_handler handler, void *ctx)
{
    cd_router_add_opts(r, method, pattern, surface, handler, ctx, NULL);
}

void cd_router_add_opts(cd_router *r, const char *method, const char *pattern,
                        const cd_surface *surface, cd_handler handler, void *ctx,
                        const cd_route_opts *opts)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->routes = cd_xrealloc(r->routes, (size_t)r->cap * sizeof *r->routes);
    }
    route *rt = cd_xcalloc(1, sizeof *rt);
    snprintf(rt->method, sizeof rt->method, "%s", method);
    rt->pattern = cd_xstrdup(pattern);
    char *tmp = cd_xstrdup(pattern);
    char *segs[MAX_SEGS];
    rt->nsegs = split(tmp, segs, MAX_SEGS);
    if (rt->nsegs < 0) {
        fprintf(stderr, "route pattern too long: %s\n", pattern);
        abort();
    }
    for (int i = 0; i < rt->nsegs; i++)
        rt->segs[i] = cd_xstrdup(segs[i]);
    free(tmp);
    rt->surface = surface;
    rt->handler = handler;
    rt->ctx = ctx;
    if (opts)
        rt->opts = *opts;
    for (int i = 0; i < NSTATUS; i++)
        atomic_init(&rt->counts[i], 0);
    r->routes[r->n++] = rt;
}

static bool seg_match(const route *rt, char **segs, int n)
{
    if (rt->nsegs != n)
        return false;
    for (int i = 0; i < n; i++)
        if (rt->segs[i][0] != '{' && strcmp(rt->segs[i], segs[i]) != 0)
            return false;
    return true;
}

/* True when a is more specific than b (both match the same path): at the first position
 * where one has a literal segment and the other a parameter, the literal wins. */
static bool more_specific(const route *a, const route *b)
{
    for (int i = 0; i < a->nsegs; i++) {
        bool la = a->segs[i][0] != '{', lb = b->segs[i][0] != '{';
        if (la != lb)
            return la;
    }
    return false; /* as specific: the first added wins */
}

static void add_allow(char *allow, size_t allowlen, const char *method)
{
    size_t used = strlen(allow);
    if (strstr(allow, method) == NULL)
        snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", method);
}

/* Fills m from route i: its context, options, surface and parameters. */
static void take_route(cd_router *r, cd_req *req, cd_route_match *m, int i, char **segs)
{
    route *rt = r->routes[i];
    m->route = i;
    m->owner = i;
    m->ctx = rt->ctx;
    m->surface = rt->surface;
    m->max_body = rt->opts.max_body;
    m->forms = rt->opts.forms;
    m->nparams = 0;
    for (int s = 0; s < rt->nsegs && m->nparams < 8; s++) {
        if (rt->segs[s][0] != '{')
            continue;
        size_t len = strlen(rt->segs[s]);
        /* the name is "{id}": keep it without braces in request memory */
        char *name = cd_req_alloc(req, len);
        memcpy(name, rt->segs[s] + 1, len - 2);
        m->names[m->nparams] = name;
        m->values[m->nparams] = cd_http__unescape_late(req, segs[s]);
        m->nparams++;
    }
}

/* Finds the most specific route for (method, path) and returns its index, or -1. When the
 * path matches but the method does not, *path_route is the most specific route on that
 * path and `allow` lists the methods it has. HEAD is served by GET routes. */
static int match(cd_router *r, cd_req *req, cd_route_match *m, char *allow, size_t allowlen,
                 int *path_route)
{
    char *path = cd_req_strdup(req, cd_req_path(req));
    char *segs[MAX_SEGS];
    int n = split(path, segs, MAX_SEGS);
    const char *method = cd_req_method(req);
    bool head = strcmp(method, "HEAD") == 0;
    int path_hit = -1, hit = -1;
    allow[0] = '\0';
    m->tried = true;
    m->route = -1;
    m->owner = -1;
    *path_route = -1;
    if (n < 0)
        return -1;
    for (int i = 0; i < r->n; i++) {
        route *rt = r->routes[i];
        if (!seg_match(rt, segs, n))
            continue;
        if (path_hit < 0 || more_specific(rt, r->routes[path_hit]))
            path_hit = i;
        if (strcmp(rt->method, method) == 0 || (head && strcmp(rt->method, "GET") == 0)) {
            if (hit < 0 || more_specific(rt, r->routes[hit]))
                hit = i;
        }
        add_allow(allow, allowlen, rt->method);
    }
    if (hit >= 0) {
        take_route(r, req, m, hit, segs);
        return hit;
    }
    *path_route = path_hit;
    m->owner = path_hit;
    return -1;
}

static const cd_surface *cd_router__surface_of(cd_router *r, cd_req *req)
{
    cd_route_match *m = cd_http__match(req);
    if (m->surface)
        return m->surface;
    if (m->tried && m->owner >= 0)
        return r->routes[m->owner]->surface;
    /* A path of a surface with a wrong method still answers in that surface's format. */
    char allow[64];
    int on_path;
    if (!m->tried) {
        cd_route_match probe = {0};
        int i = match(r, req, &probe, allow, sizeof allow, &on_path);
        if (i >= 0 || on_path >= 0)
            return r->routes[i >= 0 ? i : on_path]->surface;
    }
    return cd_router__prefix_surface(r, cd_req_path(req));
}

int cd_router_reply_error(cd_router *r, cd_req *req, const cd_err *err)
{
    return cd_router__surface_of(r, req)->reply_error(req, err);
}

/* How many bytes of s to show in a message: at most max, cut at a character boundary so
 * that the message stays valid UTF-8 (the path itself was checked by http.c). */
static int shown(const char *s, int max)
{
    int n = (int)strnlen(s, (size_t)max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int cd_router_prepare(cd_router *r, cd_req *req, cd_err *err)
{
    cd_route_match *m = cd_http__match(req);
    char allow[64];
    int on_path;
    int rc = match(r, req, m, allow, sizeof allow, &on_path);
    if (rc < 0) /* who answers: the path's owner, else the prefix's surface or the fallback */
        m->surface = on_path >= 0 ? r->routes[on_path]->surface
                                  : cd_router__prefix_surface(r, cd_req_path(req));
    if (rc < 0 && on_path >= 0) {
        /* Answered in the format of the surface that owns the path (m->owner). */
        cd_reply_header(req, "Allow", allow);
        return cd_fail_reason(err, CD_EMETHOD, "method_not_allowed", "",
                              "%s is not allowed here; use %s", cd_req_method(req), allow);
    }
    if (rc < 0) {
        const char *path = cd_req_path(req);
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such route: %s %.*s%s",
                              cd_req_method(req), shown(path, 100), path,
                              (int)strlen(path) > shown(path, 100) ? "..." : "");
    }
    const cd_surface *s = r->routes[rc]->surface;
    if (s->authenticate && s->authenticate(req, err) != 0)
        return -1;
    return 0;
}

int cd_router_dispatch(cd_router *r, cd_req *req)
{
    cd_route_match *m = cd_http__match(req);
    /* http.c calls this only after cd_router_prepare() said yes. */
    assert(m->tried && m->route >= 0 && m->route < r->n);
    return r->routes[m->route]->handler(req);
}

static int status_index(int status)
{
    for (int i = 0; i < NSTATUS - 1; i++)
        if (statuses[i] == status)
            return i;
    return NSTATUS - 1;
}

void cd_router_observe(cd_router *r, int idx, int status, double seconds)
{
    int si = status_index(status);
    if (idx >= 0 && idx < r->n)
        atomic_fetch_add(&r->routes[idx]->counts[si], 1);
    else
        atomic_fetch_add(&r->unmatched[si], 1);
    cd_hist_observe(&r->latency, seconds);
}

static void write_counts(cd_buf *out, const char *label, const atomic_uint_fast64_t *counts)
{
    for (int s = 0; s < NSTATUS; s++) {
        uint64_t v = atomic_load(&counts[s]);
        if (v == 0)
            continue;
        if (s < NSTATUS - 1)
            cd_buf_printf(out, "consentd_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                          label, statuses[s], (unsigned long long)v);
        else
            cd_buf_printf(out, "consentd_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                          label, (unsigned long long)v);
    }
}

void cd_router_metrics(cd_router *r, cd_buf *out)
{
    cd_buf_puts(out, "# HELP consentd_http_requests_total HTTP requests by route and status.\n"
                     "# TYPE consentd_http_requests_total counter\n");
    for (int i = 0; i < r->n; i++) {
        char label[160];
        snprintf(label, sizeof label, "%s %s", r->routes[i]->method, r->routes[i]->pattern);
        write_counts(out, label, r->routes[i]->counts);
    }
    write_counts(out, "unmatched", r->unmatched);
    cd_hist_write(&r->latency, out, "consentd_http_request_duration_seconds",
                  "Time from the request's first byte to its answer.");
}

/* issue 9 part 7: http.c reaches the router only through these, so that the http module
 * does not include router.h (router -> http, never back). */
static int d_prepare(void *r, cd_req *req, cd_err *err)
{
    return cd_router_prepare(r, req, err);
}

static int d_dispatch(void *r, cd_req *req)
{
    return cd_router_dispatch(r, req);
}

static int d_reply_error(void *r, cd_req *req, const cd_err *err)
{
    return cd_router_reply_error(r, req, err);
}

static void d_observe(void *r, int idx, int status, double seconds)
{
    cd_router_observe(r, idx, status, seconds);
}

static const cd_surface *d_surface_of(void *r, cd_req *req)
{
    return cd_router__surface_of(r, req);
}

static int d_prefix_count(void *r)
{
    return cd_router__prefix_count(r);
}

static const char *d_prefix(void *r, int i)
{
    return cd_router__prefix(r, i);
}

static int d_prefix_index(void *r, const char *path)
{
    return cd_router__prefix_index(r, path);
}

const cd_http_dispatcher *cd_router_dispatcher(cd_router *r)
{
    r->disp = (cd_http_dispatcher){.prepare = d_prepare,
                                   .dispatch = d_dispatch,
                                   .reply_error = d_reply_error,
                                   .observe = d_observe,
                                   .surface_of = d_surface_of,
                                   .prefix_count = d_prefix_count,
                                   .prefix = d_prefix,
                                   .prefix_index = d_prefix_index,
                                   .arg = r};
    return &r->disp;
}
