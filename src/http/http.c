/* http/http.c -- libmicrohttpd glue: per-request state, the body cap, replies, deferral.
 *
 * MHD calls on_request() with the headers only, then once per body chunk, then once more
 * with *data_len == 0. The first call matches the route and authenticates (router.c): a
 * request for no route, with a wrong method or wrong credentials is refused right there,
 * before a byte of its body is read or buffered. Good requests are answered on the last
 * call: with libmicrohttpd 0.9.75 a reply queued on the first call closes the keep-alive
 * connection, which is right only for refusals such as 401 or 413. Writes suspend the
 * connection while the store's writer commits them; the writer resumes it, and MHD calls
 * on_request() again, where we answer.
 *
 * A watchdog thread enforces the request deadline (408): deadline.c. */
#include "http/http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/form.h"
#include "http/http_int.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* ---- request memory ---- */

void *cd_req_alloc(cd_req *req, size_t n)
{
    chunk *c = cd_xcalloc(1, sizeof(chunk) + n);
    c->next = req->mem;
    req->mem = c;
    return c->data;
}

char *cd_req_strdup(cd_req *req, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *d = cd_req_alloc(req, n + 1);
    memcpy(d, s, n + 1);
    return d;
}

cd_db *cd_req_reader(cd_req *req, cd_store *store)
{
    if (req->rdb == NULL) {
        req->rdb = cd_store_reader(store);
        req->rstore = store;
    }
    return req->rdb;
}

static void release_reader(cd_req *req)
{
    if (req->rdb)
        cd_store_release(req->rstore, req->rdb);
    req->rdb = NULL;
}

void cd_http__req_free(cd_req *req)
{
    release_reader(req);
    while (req->mem) {
        chunk *c = req->mem;
        req->mem = c->next;
        free(c);
    }
    cd_buf_free(&req->body);
    json_decref(req->json);
    free(req->cap_body);
    free(req);
}

/* Drops one reference; the last one frees the request (on an MHD thread, or on the
 * writer's for a job that cd_http_stop abandoned). */
static void req_unref(cd_req *req)
{
    if (atomic_fetch_sub(&req->refs, 1) != 1)
        return;
    if (atomic_load(&req->job) == J_ORPHANED) {
        /* Nobody else uses the request any more: `finish` may release what the handler
         * gave the job (it is written to free it on failure); its answer is captured and
         * dropped, since the client was answered already. */
        req->conn = NULL;
        req->finish(req, req->farg, -1, &req->err);
    }
    cd_http__req_free(req);
}

/* ---- accessors ---- */

const char *cd_req_method(const cd_req *req)
{
    return req->method;
}

const char *cd_req_path(const cd_req *req)
{
    return req->path;
}

const char *cd_req_id(const cd_req *req)
{
    return req->id;
}

const char *cd_req_header(cd_req *req, const char *name)
{
    if (req->conn == NULL) /* capture mode (the pre-rendered 408): no request head */
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *cd_req_query(cd_req *req, const char *name)
{
    if (req->conn == NULL)
        return NULL;
    return cd_http__unescape_late(
        req, MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name));
}

const char *cd_req_param(const cd_req *req, const char *name)
{
    for (int i = 0; i < req->match.nparams; i++)
        if (strcmp(req->match.names[i], name) == 0)
            return req->match.values[i];
    return NULL;
}

const char *cd_req_body(const cd_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

const char *cd_req_client_ip(cd_req *req)
{
    return req->ip;
}

void *cd_req_ctx(const cd_req *req)
{
    return req->match.ctx;
}

const cd_surface *cd_req_surface(cd_req *req)
{
    if (req->match.surface == NULL)
        req->match.surface = req->http->disp.surface_of(req->http->disp.arg, req);
    return req->match.surface;
}

void *cd_req_surface_ctx(cd_req *req)
{
    const cd_surface *s = cd_req_surface(req);
    return s ? s->ctx : NULL;
}

/* "application/x-www-form-urlencoded", with parameters (charset) or not. */
static bool form_labelled(const char *ctype)
{
    static const char form[] = "application/x-www-form-urlencoded";
    if (ctype == NULL)
        return false;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    if (strncasecmp(ctype, form, sizeof form - 1) != 0)
        return false;
    ctype += sizeof form - 1;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    return *ctype == '\0' || *ctype == ';';
}

void cd_req_set_ratelimit(cd_req *req, const cd_ratelimit_info *info)
{
    if (req->rlinfo == NULL)
        req->rlinfo = cd_req_alloc(req, sizeof *req->rlinfo);
    *req->rlinfo = *info;
}

const cd_ratelimit_info *cd_req_ratelimit(cd_req *req)
{
    return req->rlinfo;
}

bool cd_req_is_form(cd_req *req)
{
    return req->match.forms && form_labelled(cd_req_header(req, "Content-Type"));
}

void cd_req_set_user(cd_req *req, void *user)
{
    req->user = user;
}

void *cd_req_user(const cd_req *req)
{
    return req->user;
}

json_t *cd_req_json(cd_req *req, cd_err *err)
{
    if (!req->json_done) {
        req->json_done = true;
        json_error_t je;
        if (cd_req_is_form(req)) { /* issue 9 part 4 */
            cd_form_parse(req->body.data ? req->body.data : "", req->body.len, CD_FORM_MAX_FIELDS,
                          &req->json, &req->json_err);
        } else if (req->body.len == 0) {
            cd_fail_reason(&req->json_err, CD_EINVAL, "invalid_json", "", "the body is empty");
        } else {
            /* jansson rejects invalid UTF-8, NUL bytes, numbers out of range and nesting
             * deeper than its limit, each with an error rather than a crash. */
            req->json = json_loadb(req->body.data, req->body.len,
                                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
            if (req->json == NULL)
                cd_fail_reason(&req->json_err, CD_EINVAL, "invalid_json", "",
                               "invalid JSON at line %d column %d: %s", je.line, je.column,
                               je.text);
        }
    }
    if (req->json == NULL && err)
        *err = req->json_err;
    return req->json;
}

/* ---- answers ---- */

void cd_reply_header(cd_req *req, const char *name, const char *value)
{
    header *h = cd_req_alloc(req, sizeof *h);
    h->name = cd_req_strdup(req, name);
    h->value = cd_req_strdup(req, value);
    h->next = req->headers;
    req->headers = h;
}

/* issue 9 part 3: the surface that answers (the route's, or for a 404/405 the path's or
 * prefix's) adds its headers to every answer, errors and the pre-rendered 408 too. */
void cd_http__headers_hook(cd_req *req, int status)
{
    const cd_surface *s = req->match.surface;
    if (s && s->headers && !req->hooked) {
        req->hooked = true;
        s->headers(req, status);
    }
}

static int queue(cd_req *req, int status, struct MHD_Response *resp, const char *ctype)
{
    if (resp == NULL)
        return MHD_NO;
    /* Every path that answers claimed the request first: the watchdog cannot have. */
    assert(atomic_load(&req->phase) != P_TIMEDOUT);
    cd_http__headers_hook(req, status);
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    for (header *h = req->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    req->status = status;
    atomic_store(&req->phase, P_ANSWERED);
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

int cd_reply_take(cd_req *req, int status, const char *content_type, char *body, size_t len)
{
    if (req->conn == NULL) { /* capture mode: see render_timeout() */
        free(req->cap_body);
        req->cap_body = body;
        req->cap_len = len;
        req->cap_ctype = content_type;
        req->status = status;
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL)
        free(body);
    return queue(req, status, resp, content_type);
}

int cd_reply_data(cd_req *req, int status, const char *content_type, const char *body, size_t len)
{
    return cd_reply_take(req, status, content_type, cd_xstrndup(body, len), len);
}

int cd_reply_json(cd_req *req, int status, json_t *body)
{
    if (body == NULL && status == 204)
        return cd_reply_data(req, status, "application/json", "", 0);
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (s == NULL) { /* a bug: never answer success with an empty body */
        static const char oops[] = "{\"error\":{\"code\":\"internal_error\",\"message\":"
                                   "\"the answer could not be built\",\"field\":null}}";
        return cd_reply_data(req, 500, "application/json", oops, sizeof oops - 1);
    }
    return cd_reply_take(req, status, "application/json", s, strlen(s));
}

/* ---- streamed answers ---- */

typedef struct stream {
    cd_stream_fn next;
    void (*release)(void *arg);
    void *arg;
    cd_buf buf; /* the part being sent */
    size_t off;
    int more; /* what next() said last: 1, 0 or -1 */
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    stream *s = cls;
    (void)pos;
    while (s->off == s->buf.len) {
        if (s->more <= 0)
            return s->more == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                                : MHD_CONTENT_READER_END_WITH_ERROR;
        s->buf.len = 0;
        s->off = 0;
        s->more = s->next(s->arg, &s->buf);
    }
    size_t n = s->buf.len - s->off < max ? s->buf.len - s->off : max;
    memcpy(out, s->buf.data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream *s = cls;
    s->release(s->arg);
    cd_buf_free(&s->buf);
    free(s);
}

int cd_reply_stream(cd_req *req, int status, const char *content_type, cd_stream_fn next, void *arg,
                    void (*release)(void *arg))
{
    stream *s = cd_xcalloc(1, sizeof *s);
    s->next = next;
    s->release = release;
    s->arg = arg;
    s->more = 1;
    /* A long download must not hold a read transaction (and pin the WAL) all along. */
    release_reader(req);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s, stream_free);
    if (resp == NULL)
        stream_free(s);
    return queue(req, status, resp, content_type);
}

/* ---- deferral ---- */

static void waiters_link(cd_http *h, cd_req *req)
{
    pthread_mutex_lock(&h->lock);
    req->wnext = h->waiters;
    req->wprev = NULL;
    if (h->waiters)
        h->waiters->wprev = req;
    h->waiters = req;
    pthread_mutex_unlock(&h->lock);
}

/* Takes the request out of the deferred count, exactly once: on the call that answers it
 * after resumption, or in on_completed() when the client left first (issue 8 item 7: the
 * count leaked when on_completed ran instead of the answering call). */
static void undefer(cd_req *req)
{
    if (!atomic_exchange(&req->counted, false))
        return;
    cd_http *h = req->http;
    pthread_mutex_lock(&h->lock);
    if (req->wprev)
        req->wprev->wnext = req->wnext;
    else
        h->waiters = req->wnext;
    if (req->wnext)
        req->wnext->wprev = req->wprev;
    pthread_mutex_unlock(&h->lock);
    atomic_fetch_sub(&h->deferred, 1);
}

/* Records the outcome and wakes the connection; on_request() answers it. Called once per
 * deferral, by whoever moved `job` out of J_QUEUED/J_RUNNING. */
static void complete(cd_req *req, int rc, const cd_err *err)
{
    req->rc = rc;
    if (rc != 0 && err)
        req->err = *err;
    atomic_store(&req->phase, P_READY);
    MHD_resume_connection(req->conn);
}

/* Runs on the writer thread. A job that cd_http_stop abandoned (and answered 503) is
 * skipped: its client was told that nothing was done. A rerunnable job run again (its first
 * run rolled back) is running already, or orphaned meanwhile: it runs, as it did. */
static int job_run(cd_db *db, void *arg, cd_err *err)
{
    cd_req *req = arg;
    int expect = J_QUEUED;
    if (!atomic_compare_exchange_strong(&req->job, &expect, J_RUNNING) &&
        !(req->ran && (expect == J_RUNNING || expect == J_ORPHANED)))
        return cd_fail_reason(err, CD_EBUSY, "stopping", "", "the server is stopping");
    req->ran = true;
    return req->fn(db, req->farg, err);
}

/* Runs on the writer thread (or in cd_req_defer when the writer refused the job). */
static void job_done(void *arg, int rc, const cd_err *err)
{
    cd_req *req = arg;
    int j = atomic_load(&req->job);
    while (j == J_QUEUED || j == J_RUNNING) {
        if (atomic_compare_exchange_weak(&req->job, &j, J_DONE)) {
            complete(req, rc, err);
            break;
        }
    }
    req_unref(req); /* the writer's reference */
}

static int defer(cd_req *req, cd_store *store, cd_job_fn fn, void *arg, cd_finish_fn finish,
                 bool rerunnable)
{
    cd_http *h = req->http;
    release_reader(req);
    req->fn = fn;
    req->farg = arg;
    req->finish = finish;
    atomic_store(&req->job, J_QUEUED);
    atomic_fetch_add(&req->refs, 1); /* the writer's, dropped in job_done() */
    atomic_store(&req->counted, true);
    atomic_fetch_add(&h->deferred, 1);
    waiters_link(h, req);
    atomic_store(&req->phase, P_WAITING);
    /* Suspend before submitting: the job may finish, and resume us, before submit returns. */
    MHD_suspend_connection(req->conn);
    cd_err err;
    int rc = rerunnable ? cd_store_submit_rerunnable(store, job_run, job_done, req, &err)
                        : cd_store_submit(store, job_run, job_done, req, &err);
    if (rc != 0)
        job_done(req, -1, &err);
    return MHD_YES;
}

int cd_req_defer(cd_req *req, cd_store *store, cd_job_fn fn, void *arg, cd_finish_fn finish)
{
    return defer(req, store, fn, arg, finish, false);
}

int cd_req_defer_rerunnable(cd_req *req, cd_store *store, cd_job_fn fn, void *arg,
                            cd_finish_fn finish)
{
    return defer(req, store, fn, arg, finish, true);
}

/* issue 13: the same states as cd_req_defer, with the job already "running" elsewhere:
 * cd_http_stop then orphans it (503) instead of skipping it. */
int cd_req_wait(cd_req *req, cd_finish_fn finish, void *arg)
{
    cd_http *h = req->http;
    release_reader(req);
    req->fn = NULL;
    req->farg = arg;
    req->finish = finish;
    atomic_store(&req->job, J_RUNNING);
    atomic_fetch_add(&req->refs, 1); /* the waker's, dropped in cd_req_wake() */
    atomic_store(&req->counted, true);
    atomic_fetch_add(&h->deferred, 1);
    waiters_link(h, req);
    atomic_store(&req->phase, P_WAITING);
    MHD_suspend_connection(req->conn);
    return MHD_YES;
}

void cd_req_wake(cd_req *req, int rc, const cd_err *err)
{
    job_done(req, rc, err);
}

int cd_http_deferred(const cd_http *h)
{
    return atomic_load(&h->deferred);
}

/* ---- MHD callbacks ---- */

static void set_request_id(cd_req *req)
{
    const char *given = cd_req_header(req, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    bool ok = n > 0 && n < sizeof req->id;
    for (size_t i = 0; ok && i < n; i++)
        ok = given[i] > 0x20 && given[i] < 0x7f && given[i] != '"' && given[i] != '\\';
    if (ok) {
        memcpy(req->id, given, n + 1);
    } else {
        /* Unique, not secret: a random per-thread prefix and a counter, which saves a
         * getrandom() system call per request. */
        static _Thread_local char prefix[17];
        static _Thread_local uint64_t counter;
        if (prefix[0] == '\0')
            cd_random_hex(prefix, 8);
        /* "%s%016llx" by hand (issue 16: printf showed in the profile) */
        uint64_t c = ++counter;
        memcpy(req->id, prefix, 16);
        for (int i = 31; i >= 16; i--, c >>= 4)
            req->id[i] = "0123456789abcdef"[c & 15];
        req->id[32] = '\0';
    }
}

static void set_client_ip(cd_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) { /* inet_ntop's "a.b.c.d" without its sprintf */
        const unsigned char *a =
            (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        char *p = req->ip;
        for (int i = 0; i < 4; i++) {
            if (a[i] >= 100)
                *p++ = (char)('0' + a[i] / 100);
            if (a[i] >= 10)
                *p++ = (char)('0' + a[i] / 10 % 10);
            *p++ = (char)('0' + a[i] % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
    } else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, req->ip,
                  sizeof req->ip);
}

static cd_req *req_new(cd_http *h, struct MHD_Connection *conn, const char *method, const char *url)
{
    cd_req *req = cd_xcalloc(1, sizeof *req);
    req->http = h;
    req->conn = conn;
    req->t0 = cd_monotonic_us();
    req->match.route = -1;
    req->match.owner = -1;
    size_t mlen = strnlen(method, sizeof req->method - 1); /* as snprintf("%s") cuts it */
    memcpy(req->method, method, mlen);
    req->method[mlen] = '\0';
    req->path = cd_req_strdup(req, url);
    set_request_id(req);
    set_client_ip(req);
    atomic_init(&req->phase, P_READING);
    atomic_init(&req->job, J_NONE);
    atomic_init(&req->refs, 1); /* MHD's, dropped in on_completed() */
    atomic_init(&req->counted, false);
    return req;
}

/* The declared body length, or -1 when none is declared (chunked) or it is not a number. */
static long long declared_length(cd_req *req)
{
    const char *cl = cd_req_header(req, "Content-Length");
    if (cl == NULL || *cl < '0' || *cl > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    if (*end != '\0' || errno == ERANGE || n > (unsigned long long)INT64_MAX)
        return -1;
    return (long long)n;
}

static enum MHD_Result query_ok(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    bool *ok = cls;
    (void)kind;
    *ok = cd_http__utf8_ok((const unsigned char *)key) &&
          (value == NULL || cd_http__utf8_ok((const unsigned char *)value));
    return *ok ? MHD_YES : MHD_NO;
}

/* 400 for a head we could not even echo back: a method that is not an HTTP token, or a
 * path or query that is not UTF-8 once decoded ("GET /%FF" was a 500: the 404 message
 * carrying the path could not be encoded as JSON). */
static int check_head(cd_req *req, const char *method, cd_err *err)
{
    size_t n = strlen(method);
    bool ok = n > 0 && n < sizeof req->method;
    for (size_t i = 0; ok && i < n; i++)
        ok = strchr("!#$%&'*+-.^_`|~", method[i]) != NULL ||
             (method[i] >= '0' && method[i] <= '9') ||
             ((method[i] | 0x20) >= 'a' && (method[i] | 0x20) <= 'z');
    if (!ok)
        return cd_fail_reason(err, CD_EINVAL, "bad_request", "", "not an HTTP method");
    if (!cd_http__utf8_ok((const unsigned char *)req->path))
        return cd_fail_reason(err, CD_EINVAL, "bad_request", "",
                              "the path is not valid UTF-8 once percent-decoded");
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_ok, &ok);
    if (!ok)
        return cd_fail_reason(err, CD_EINVAL, "bad_request", "",
                              "the query string is not valid UTF-8 once percent-decoded");
    return 0;
}

/* The request is ours to answer, not the watchdog's (which may have answered 408). */
static bool claim(cd_req *req)
{
    int expect = P_READING;
    return atomic_compare_exchange_strong(&req->phase, &expect, P_HANDLING);
}

static conn_entry *entry_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Links the request to its connection for the watchdog and sets its deadline: from the
 * connection's start for its first request (whose head the deadline covers too), from the
 * head's arrival for later ones. False when the watchdog has already given up on it. */
static bool watch(cd_http *h, cd_req *req)
{
    conn_entry *ce = entry_of(req->conn);
    if (ce == NULL)
        return true;
    bool ok;
    pthread_mutex_lock(&h->lock);
    ok = !ce->timed_out;
    if (ok) {
        ce->req = req;
        req->ce = ce;
        req->deadline =
            (ce->first ? ce->since : req->t0) + (int64_t)h->cfg.request_timeout * 1000000;
    }
    pthread_mutex_unlock(&h->lock);
    return ok;
}

/* Sizes the body buffer from Content-Length (already checked against max_body), so that a
 * body costs its own size, not the doubling of a growing buffer. */
static void presize(cd_buf *b, long long len)
{
    if (len <= 0)
        return;
    b->data = cd_xmalloc((size_t)len + 1);
    b->cap = (size_t)len + 1;
    b->data[0] = '\0';
}

/* Appends a chunk (len + n <= max, checked by the caller); a body of unknown length
 * (chunked) grows by doubling, but never past max + 1 bytes. */
static void append_body(cd_buf *b, const char *data, size_t n, size_t max)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        b->data = cd_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* The first call, with the head only (issue 8 item 6): refusals (stopping, bad head, no
 * route, wrong method, wrong credentials) are answered now, before any body is read;
 * answering on the first call also closes the connection, which is what a refusal wants. */
static enum MHD_Result on_head(cd_http *h, struct MHD_Connection *conn, const char *url,
                               const char *method, void **state)
{
    cd_req *req = req_new(h, conn, method, url); /* released in on_completed() */
    *state = req;
    if (!watch(h, req)) {
        atomic_store(&req->phase, P_TIMEDOUT);
        return MHD_NO; /* the watchdog answered 408 already */
    }
    cd_err err = {0};
    int rc = 0;
    if (atomic_load(&h->stopping))
        rc = cd_fail_reason(&err, CD_EBUSY, "stopping", "", "the server is stopping; retry");
    if (rc == 0)
        rc = check_head(req, method, &err);
    if (rc == 0)
        rc = h->disp.prepare(h->disp.arg, req, &err);
    if (rc != 0)
        return claim(req) ? (enum MHD_Result)h->disp.reply_error(h->disp.arg, req, &err) : MHD_YES;
    /* issue 9 part 6: the route is known now, and with it its body cap. */
    req->max_body = req->match.max_body ? req->match.max_body : h->cfg.max_body;
    long long len = declared_length(req);
    if (len > 0 || cd_req_header(req, "Transfer-Encoding") != NULL)
        /* A body may take long to arrive: do not hold a pooled reader (taken by
         * authenticate) meanwhile; the handler takes a fresh one. */
        release_reader(req);
    /* A declared oversize body is still read (and dropped) so that the client, which is
     * busy sending it, gets the 413 instead of a reset connection. */
    if (len > 0 && (unsigned long long)len > req->max_body)
        req->too_big = true;
    else
        presize(&req->body, len);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_len, void **state)
{
    cd_http *h = cls;
    cd_req *req = *state;
    (void)version;

    if (req == NULL)
        return on_head(h, conn, url, method, state);
    switch (atomic_load(&req->phase)) {
    case P_READING:
        break;
    case P_READY:
        undefer(req);
        if (req->orphan) /* the job may still be running: leave its argument alone */
            return (enum MHD_Result)h->disp.reply_error(h->disp.arg, req, &req->err);
        return (enum MHD_Result)req->finish(req, req->farg, req->rc, &req->err);
    default: /* waiting for the writer, answered, or timed out: nothing to do */
        *data_len = 0;
        return MHD_YES;
    }
    if (*data_len > 0) {
        /* Past max_body this only sets too_big, and the final call answers 413. */
        if (!req->too_big && req->body.len + *data_len <= req->max_body)
            append_body(&req->body, data, *data_len, req->max_body);
        else
            req->too_big = true;
        *data_len = 0;
        return MHD_YES;
    }
    if (!claim(req))
        return MHD_YES; /* the watchdog answered 408 and is closing the connection */
    if (req->too_big) {
        cd_err err;
        cd_fail_reason(&err, CD_ELIMIT, "too_large", "", "the body is larger than %zu bytes",
                       req->max_body);
        return (enum MHD_Result)h->disp.reply_error(h->disp.arg, req, &err);
    }
    return (enum MHD_Result)h->disp.dispatch(h->disp.arg, req);
}

/* The request's log line. issue 16: written without printf; "ms" is the duration in
 * microseconds with three decimals, as "%.3f" of the milliseconds wrote it. */
static void log_request(const cd_req *req, int64_t us, bool completed)
{
    cd_buf f = {.data = cd_xmalloc(256), .cap = 256}; /* most lines fit: no regrowth */
    f.data[0] = '\0';
    cd_buf_puts(&f, "\"request_id\":\"");
    cd_buf_puts(&f, req->id);
    cd_buf_puts(&f, "\",\"method\":");
    cd_json_quote(&f, req->method); /* a method is only checked after it is logged */
    cd_buf_puts(&f, ",\"path\":");
    cd_json_quote(&f, req->path);
    cd_buf_puts(&f, ",\"status\":");
    cd_buf_put_int(&f, req->status, 1);
    cd_buf_puts(&f, ",\"ms\":");
    if (us < 0) {
        cd_buf_append(&f, "-", 1);
        us = -us;
    }
    cd_buf_put_int(&f, us / 1000, 1);
    cd_buf_append(&f, ".", 1);
    cd_buf_put_int(&f, us % 1000, 3);
    cd_buf_puts(&f, ",\"ip\":\"");
    cd_buf_puts(&f, req->ip);
    cd_buf_puts(&f, completed ? "\"" : "\",\"aborted\":true");
    cd_log("info", "request", f.data);
    cd_buf_free(&f);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode toe)
{
    cd_http *h = cls;
    cd_req *req = *state;
    (void)conn;
    if (req == NULL)
        return;
    pthread_mutex_lock(&h->lock); /* also orders the watchdog's write of req->status */
    if (req->ce) {
        req->ce->req = NULL;
        req->ce->first = false;
        req->ce->since = cd_monotonic_us();
        req->ce = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    undefer(req); /* the client left after resumption, before the answering call */
    int64_t us = cd_monotonic_us() - req->t0;
    h->disp.observe(h->disp.arg, req->match.route, req->status, (double)us / 1e6);
    if (h->cfg.log_requests)
        log_request(req, us, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    req_unref(req);
    *state = NULL;
}

cd_route_match *cd_http__match(cd_req *req)
{
    return &req->match;
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return cd_http__decode(s, s, false);
}

/* libmicrohttpd's own messages ("Server reached connection limit...") as JSON log lines,
 * at most 10 a second: a flood of refused connections must not flood the log too. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    static _Atomic int64_t window; /* the second being counted */
    static atomic_int in_window;
    static atomic_uint_fast64_t dropped;
    (void)cls;
    int64_t sec = cd_monotonic_us() / 1000000, prev = atomic_load(&window);
    if (sec != prev && atomic_compare_exchange_strong(&window, &prev, sec))
        atomic_store(&in_window, 0);
    if (atomic_fetch_add(&in_window, 1) >= 10) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    char text[256];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    cd_buf f = {0};
    cd_buf_puts(&f, "\"detail\":");
    cd_json_quote(&f, text);
    cd_buf_printf(&f, ",\"suppressed\":%llu", (unsigned long long)atomic_exchange(&dropped, 0));
    cd_log("warn", "http", f.data);
    cd_buf_free(&f);
}

/* Our own listening socket, so that the port is known (and public_url set) before any
 * thread serves a request. */
static int listen_on(cd_http *h, cd_err *err)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->cfg.port)};
    if (inet_pton(AF_INET, h->cfg.host, &addr.sin_addr) != 1)
        return cd_fail(err, CD_EINVAL, "listen", "not an IPv4 address: %s", h->cfg.host);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    socklen_t len = sizeof addr;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return cd_fail(err, CD_EINTERNAL, "listen", "cannot listen on %s:%d: %s", h->cfg.host,
                       h->cfg.port, strerror(e));
    }
    h->listen_fd = fd;
    h->port = ntohs(addr.sin_port);
    return 0;
}

cd_http *cd_http_bind(const cd_http_config *cfg, const cd_http_dispatcher *disp, cd_err *err)
{
    cd_http *h = cd_xcalloc(1, sizeof *h);
    h->disp = *disp;
    h->cfg = *cfg;
    if (h->cfg.max_connections == 0)
        h->cfg.max_connections = 4000;
    if (h->cfg.idle_timeout == 0)
        h->cfg.idle_timeout = 60;
    if (h->cfg.stop_grace_ms == 0)
        h->cfg.stop_grace_ms = 5000;
    h->listen_fd = -1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wd_wake, &ca);
    pthread_condattr_destroy(&ca);
    if (listen_on(h, err) != 0) {
        cd_http_stop(h);
        return NULL;
    }
    cd_http__render_timeouts(h);
    return h;
}

/* Each connection's memory: the request line and headers, and the read buffer the body
 * passes through on its way to the handler (bodies are copied out, so any size streams
 * through). libmicrohttpd zeroes all of it before every request on a kept-alive
 * connection: at its default of 32 KiB that memset was 8% of the HTTP threads' time for an
 * Omeda submission. 16 KiB still takes request headers of 8 KiB and more. */
#define CONNECTION_MEMORY (16 * 1024)

int cd_http_serve(cd_http *h, cd_err *err)
{
    const cd_http_config *cfg = &h->cfg;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    h->d = MHD_start_daemon(
        flags, (uint16_t)h->port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, cd_http__on_connection, h, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, NULL, MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        cfg->max_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_END);
    if (h->d == NULL)
        return cd_fail(err, CD_EINTERNAL, "listen", "cannot serve on %s:%d", cfg->host, h->port);
    h->listen_fd = -1; /* MHD's now (see cd_http_stop) */
    if (cfg->request_timeout > 0) {
        if (pthread_create(&h->watchdog, NULL, cd_http__watchdog, h) != 0)
            return cd_fail(err, CD_EINTERNAL, "", "cannot start the request watchdog");
        h->wd_running = true;
    }
    return 0;
}

cd_http *cd_http_start(const cd_http_config *cfg, const cd_http_dispatcher *disp, cd_err *err)
{
    cd_http *h = cd_http_bind(cfg, disp, err);
    if (h && cd_http_serve(h, err) != 0) {
        cd_http_stop(h);
        h = NULL;
    }
    return h;
}

int cd_http_port(const cd_http *h)
{
    return h->port;
}

void cd_http_metrics(const cd_http *h, cd_buf *out)
{
    cd_buf_printf(out,
                  "# HELP consentd_http_deferred Requests waiting for the writer or for their "
                  "answer.\n# TYPE consentd_http_deferred gauge\nconsentd_http_deferred %d\n"
                  "# HELP consentd_http_head_timeouts_total Connections closed with a 408 before "
                  "a request head arrived.\n# TYPE consentd_http_head_timeouts_total counter\n"
                  "consentd_http_head_timeouts_total %llu\n",
                  atomic_load(&h->deferred), (unsigned long long)atomic_load(&h->head_timeouts));
}

/* Waits up to ms for every deferred request to be answered. */
static bool drain(cd_http *h, unsigned ms)
{
    for (unsigned i = 0; i < ms / 10 && atomic_load(&h->deferred) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&h->deferred) == 0;
}

/* Answers 503 to every request whose job the writer has not handed back, and resumes
 * them. The writer skips those it has not started (job_run); for one it is running, the
 * answer comes from the router, not from `finish`, which must not see the job's argument
 * while the job may still write it: req_unref() calls it once the writer is done. */
static void abandon_waiters(cd_http *h)
{
    size_t n = 0, cap = 16;
    cd_req **v = cd_xmalloc(cap * sizeof *v);
    pthread_mutex_lock(&h->lock); /* collect, so that MHD is never called under our lock */
    for (cd_req *r = h->waiters; r; r = r->wnext) {
        if (n == cap)
            v = cd_xrealloc(v, (cap *= 2) * sizeof *v);
        atomic_fetch_add(&r->refs, 1);
        v[n++] = r;
    }
    pthread_mutex_unlock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        cd_req *r = v[i];
        int j = atomic_load(&r->job);
        while (j == J_QUEUED || j == J_RUNNING) {
            if (!atomic_compare_exchange_weak(&r->job, &j,
                                              j == J_QUEUED ? J_ABANDONED : J_ORPHANED))
                continue;
            cd_err e;
            if (j == J_QUEUED) {
                cd_fail_reason(&e, CD_EBUSY, "stopping", "",
                               "the server is stopping; nothing was done: retry");
            } else {
                r->orphan = true;
                cd_fail_reason(&e, CD_ESTORE, "stopping", "",
                               "the server stopped before the write was confirmed; retry with "
                               "the same Idempotency-Key");
            }
            complete(r, -1, &e);
            break;
        }
        req_unref(r);
    }
    free(v);
}

void cd_http_stop(cd_http *h)
{
    if (h == NULL)
        return;
    if (h->d) {
        /* 1. No new connections, and 503 for new requests on open ones (on_head). */
        atomic_store(&h->stopping, true);
        MHD_socket fd = MHD_quiesce_daemon(h->d);
        /* 2-3. Waiters are answered normally, or else 503 (a stuck writer must not keep
         * a connection suspended: MHD_stop_daemon aborts on one). */
        if (!drain(h, h->cfg.stop_grace_ms)) {
            abandon_waiters(h);
            drain(h, 1000);
        }
        /* 4. Nothing is suspended any more; MHD closes what is left. */
        MHD_stop_daemon(h->d);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    if (h->listen_fd >= 0)
        close(h->listen_fd);
    if (h->wd_running) {
        pthread_mutex_lock(&h->lock);
        h->wd_stop = true;
        pthread_cond_signal(&h->wd_wake);
        pthread_mutex_unlock(&h->lock);
        pthread_join(h->watchdog, NULL);
    }
    pthread_cond_destroy(&h->wd_wake);
    pthread_mutex_destroy(&h->lock);
    for (int i = 0; i < h->ntimeout; i++)
        free(h->timeout_resp[i]);
    free(h->timeout_resp);
    free(h->timeout_len);
    free(h);
}
