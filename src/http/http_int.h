/* http/http_int.h -- internal to src/http/: what router.c and http.c share about a request.
 * Nothing outside this directory includes it (issue 9 part 7). */
#ifndef CD_HTTP_HTTP_INT_H
#define CD_HTTP_HTTP_INT_H

#include "http/router.h"

/* Which route a request matched (-1 = none) and its parameters. */
typedef struct cd_route_match {
    int route; /* -1 = none */
    int owner; /* the route whose surface answers errors: `route`, or one on the same path */
    bool tried;
    void *ctx;
    const cd_surface *surface; /* who answers (set by cd_router_prepare); NULL before */
    size_t max_body;           /* the route's body cap; 0 = the server's */
    bool forms;                /* the route accepts form bodies */
    int nparams;
    const char *names[8];
    const char *values[8]; /* request memory */
} cd_route_match;

cd_route_match *cd_http__match(cd_req *req); /* http.c: the request's match slot */
/* http.c: decodes the %2F and %25 that the first pass kept (request memory, or s itself). */
const char *cd_http__unescape_late(cd_req *req, const char *s);
/* escape.c: copies in to out (which may be in: decoding only shortens), decoding the
 * "%HH" that `late` selects: the first pass everything but %00, %2F and %25; the late
 * pass only %2F and %25. Returns the length written. */
size_t cd_http__decode(const char *in, char *out, bool late);
/* escape.c: valid UTF-8 as jansson reads it (no overlong forms, no surrogates). */
bool cd_http__utf8_ok(const unsigned char *s);
/* router.c: the surface that answers req (see cd_req_surface), matching it if needed. */
const cd_surface *cd_router__surface_of(cd_router *r, cd_req *req);
/* router.c: the surface owning `path` by prefix, or the fallback (never NULL once set). */
const cd_surface *cd_router__prefix_surface(cd_router *r, const char *path);

/* router.c: the prefixes of cd_router_set_prefix_fallback, in the order they were set,
 * and the index of the longest one `path` is under (-1: none, the fallback answers). */
int cd_router__prefix_count(cd_router *r);
const char *cd_router__prefix(cd_router *r, int i);
int cd_router__prefix_index(cd_router *r, const char *path);

#endif
