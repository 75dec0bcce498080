/* http/http_int.h -- internal to src/http/: what router.c, http.c and deadline.c share
 * about the server and a request. Nothing outside this directory includes it (issue 9
 * part 7). */
#ifndef CD_HTTP_HTTP_INT_H
#define CD_HTTP_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* One per open connection (MHD's socket context), in cd_http.conns, under cd_http.lock:
 * what the watchdog looks at. */
typedef struct conn_entry {
    struct conn_entry *prev, *next;
    int fd;
    int64_t since;      /* connection start, or the end of its last request (us) */
    bool first;         /* no request finished on it yet */
    bool timed_out;     /* the watchdog answered 408 and shut it down */
    struct cd_req *req; /* the request in progress, NULL between requests */
} conn_entry;

struct cd_http {
    struct MHD_Daemon *d;
    cd_http_dispatcher disp; /* the router, known only through this (issue 9 part 7) */
    cd_http_config cfg;
    int listen_fd; /* ours until MHD runs it, then -1 */
    int port;
    atomic_int deferred; /* requests waiting for the writer, or resumed and not answered */
    atomic_bool stopping;
    atomic_uint_fast64_t head_timeouts;
    pthread_mutex_t lock; /* conns, waiters, wd_stop */
    pthread_cond_t wd_wake;
    pthread_t watchdog;
    bool wd_running, wd_stop;
    conn_entry *conns;
    struct cd_req *waiters; /* deferred requests, for cd_http_stop */
    /* The whole raw 408 answers the watchdog writes: [0] in the fallback's format, [1 + i]
     * in the format of the surface of the router's prefix i (issue 9 part 3). */
    char **timeout_resp;
    size_t *timeout_len;
    int ntimeout;
};

typedef struct chunk {
    struct chunk *next;
    max_align_t data[]; /* aligned for anything */
} chunk;

typedef struct header {
    struct header *next;
    const char *name, *value;
} header;

/* P_READING -> P_HANDLING (claimed by on_request) -> P_ANSWERED, or -> P_WAITING (deferred)
 * -> P_READY (job done or abandoned) -> P_ANSWERED; or P_READING -> P_TIMEDOUT (watchdog). */
enum phase { P_READING, P_HANDLING, P_WAITING, P_READY, P_ANSWERED, P_TIMEDOUT };
/* A deferred job: the writer moves J_QUEUED -> J_RUNNING -> J_DONE. cd_http_stop may take
 * a queued job to J_ABANDONED (the writer then skips it) or a running one to J_ORPHANED
 * (the writer finishes it, but its client has been answered already); whoever moves the
 * job out of J_QUEUED/J_RUNNING first answers. */
enum job { J_NONE, J_QUEUED, J_RUNNING, J_DONE, J_ABANDONED, J_ORPHANED };

struct cd_req {
    cd_http *http;
    struct MHD_Connection *conn;
    char method[16];
    char *path;
    char id[40];
    char ip[64];
    int64_t t0;
    cd_buf body;
    size_t max_body; /* the route's cap, or the server's (set once the route is known) */
    bool too_big;
    bool hooked;               /* the surface's headers hook ran */
    cd_ratelimit_info *rlinfo; /* request memory; NULL until cd_req_set_ratelimit */
    json_t *json;
    bool json_done;
    cd_err json_err;
    cd_route_match match;
    void *user;
    cd_store *rstore; /* the reader of cd_req_reader() */
    cd_db *rdb;
    chunk *mem;
    header *headers;
    int status;
    /* deferral */
    _Atomic int phase;
    _Atomic int job;
    atomic_int refs;     /* MHD's (until on_completed), plus the writer's while it has the job */
    atomic_bool counted; /* counted in http->deferred */
    struct cd_req *wprev, *wnext; /* in http->waiters while counted */
    conn_entry *ce;               /* under http->lock */
    int64_t deadline;             /* us; the head and body must have arrived by then */
    cd_job_fn fn;
    cd_finish_fn finish;
    void *farg;
    bool ran; /* the writer ran fn once (writer thread only): a rerun may follow */
    int rc;
    cd_err err;
    bool orphan; /* answered by cd_http_stop through the router, not by `finish` */
    /* capture mode (no connection): the reply is kept here instead of sent */
    char *cap_body;
    size_t cap_len;
    const char *cap_ctype;
};

/* http.c */
void cd_http__req_free(cd_req *req);
/* Runs the answering surface's headers hook once (issue 9 part 3). */
void cd_http__headers_hook(cd_req *req, int status);

/* deadline.c */
/* MHD_OPTION_NOTIFY_CONNECTION: tracks each connection for the watchdog (cls: cd_http). */
void cd_http__on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode code);
/* The watchdog thread (arg: cd_http): every 200 ms, answers 408 where a deadline passed. */
void *cd_http__watchdog(void *arg);
/* Pre-renders the 408 of the fallback and of every prefix's surface (h->timeout_resp). */
void cd_http__render_timeouts(cd_http *h);

#endif
