/* http/http_int.h -- internal to src/http/: what router.c and http.c share about a request.
 * Nothing outside this directory includes it (issue 9 part 7). */
#ifndef CD_HTTP_HTTP_INT_H
#define CD_HTTP_HTTP_INT_H

#include "http/http.h"

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
#endif
