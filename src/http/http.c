/* http/http.c -- libmicrohttpd glue: per-request state, the body cap, replies, deferral.
 *
 * MHD calls on_request() with the headers only, then once per body chunk, then once more
 * with *data_len == 0. We answer on that last call: with libmicrohttpd 0.9.75 a reply
 * queued on the first call closes the keep-alive connection, which is right only for
 * errors such as 413. Writes suspend the connection while the store's writer commits
 * them; the writer resumes it, and MHD calls on_request() again, where we answer. */
#include "http/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/router.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

struct cd_http {
    struct MHD_Daemon *d;
    cd_router *router;
    cd_http_config cfg;
    atomic_int deferred; /* requests waiting for the writer */
};

typedef struct chunk {
    struct chunk *next;
    max_align_t data[]; /* aligned for anything */
} chunk;

typedef struct header {
    struct header *next;
    const char *name, *value;
} header;

enum phase { P_READING, P_WAITING, P_READY, P_ANSWERED };

struct cd_req {
    cd_http *http;
    struct MHD_Connection *conn;
    char method[16];
    char *path;
    char id[40];
    char ip[64];
    int64_t t0;
    cd_buf body;
    bool too_big;
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
    cd_job_fn fn;
    cd_finish_fn finish;
    void *farg;
    int rc;
    cd_err err;
};

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

static void req_free(cd_req *req)
{
    release_reader(req);
    while (req->mem) {
        chunk *c = req->mem;
        req->mem = c->next;
        free(c);
    }
    cd_buf_free(&req->body);
    json_decref(req->json);
    free(req);
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
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *cd_req_query(cd_req *req, const char *name)
{
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
        if (req->body.len == 0) {
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

static int queue(cd_req *req, int status, struct MHD_Response *resp, const char *ctype)
{
    if (resp == NULL)
        return MHD_NO;
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

static int job_run(cd_db *db, void *arg, cd_err *err)
{
    cd_req *req = arg;
    return req->fn(db, req->farg, err);
}

/* Runs on the writer thread: record the outcome and wake the connection. */
static void job_done(void *arg, int rc, const cd_err *err)
{
    cd_req *req = arg;
    req->rc = rc;
    if (rc != 0 && err)
        req->err = *err;
    atomic_store(&req->phase, P_READY);
    MHD_resume_connection(req->conn);
}

int cd_req_defer(cd_req *req, cd_store *store, cd_job_fn fn, void *arg, cd_finish_fn finish)
{
    release_reader(req);
    req->fn = fn;
    req->farg = arg;
    req->finish = finish;
    atomic_fetch_add(&req->http->deferred, 1);
    atomic_store(&req->phase, P_WAITING);
    /* Suspend before submitting: the job may finish, and resume us, before submit returns. */
    MHD_suspend_connection(req->conn);
    cd_err err;
    if (cd_store_submit(store, job_run, job_done, req, &err) != 0) {
        job_done(req, -1, &err);
    }
    return MHD_YES;
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
        snprintf(req->id, sizeof req->id, "%s%016llx", prefix, (unsigned long long)++counter);
    }
}

static void set_client_ip(cd_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, req->ip,
                  sizeof req->ip);
    else if (sa->sa_family == AF_INET6)
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
    snprintf(req->method, sizeof req->method, "%s", method);
    req->path = cd_req_strdup(req, url);
    set_request_id(req);
    set_client_ip(req);
    atomic_init(&req->phase, P_READING);
    return req;
}

static bool declared_too_big(cd_req *req, size_t max)
{
    const char *cl = cd_req_header(req, "Content-Length");
    if (cl == NULL)
        return false;
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);
    return *end == '\0' && n > max;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_len, void **state)
{
    cd_http *h = cls;
    cd_req *req = *state;
    (void)version;

    if (req == NULL) {
        req = req_new(h, conn, method, url); /* freed in on_completed() */
        *state = req;
        /* A declared oversize body is still read (and dropped) so that the client, which is
         * busy sending it, gets the 413 instead of a reset connection. */
        req->too_big = declared_too_big(req, h->cfg.max_body);
        return MHD_YES;
    }
    switch (atomic_load(&req->phase)) {
    case P_READING:
        break;
    case P_READY:
        atomic_fetch_sub(&h->deferred, 1);
        return (enum MHD_Result)req->finish(req, req->farg, req->rc, &req->err);
    default: /* waiting for the writer, or answered: nothing to do */
        return MHD_YES;
    }
    if (*data_len > 0) {
        /* Past max_body this only sets too_big, and the final call answers 413. */
        if (!req->too_big && req->body.len + *data_len <= h->cfg.max_body)
            cd_buf_append(&req->body, data, *data_len);
        else
            req->too_big = true;
        *data_len = 0;
        return MHD_YES;
    }
    if (req->too_big) {
        cd_err err;
        cd_fail_reason(&err, CD_ELIMIT, "too_large", "", "the body is larger than %zu bytes",
                       h->cfg.max_body);
        return (enum MHD_Result)cd_router_reply_error(h->router, req, &err);
    }
    return (enum MHD_Result)cd_router_dispatch(h->router, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode toe)
{
    cd_http *h = cls;
    cd_req *req = *state;
    (void)conn;
    if (req == NULL)
        return;
    double secs = (double)(cd_monotonic_us() - req->t0) / 1e6;
    cd_router_observe(h->router, req->match.route, req->status, secs);
    if (h->cfg.log_requests) {
        cd_buf f = {0};
        cd_buf_printf(&f, "\"request_id\":\"%s\",\"method\":\"%s\",\"path\":", req->id,
                      req->method);
        cd_json_quote(&f, req->path);
        cd_buf_printf(&f, ",\"status\":%d,\"ms\":%.3f,\"ip\":\"%s\"%s", req->status, secs * 1000,
                      req->ip,
                      toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true");
        cd_log("info", "request", f.data);
        cd_buf_free(&f);
    }
    req_free(req);
    *state = NULL;
}

cd_route_match *cd_http__match(cd_req *req)
{
    return &req->match;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The byte a "%HH" at r stands for, or -1 when r is not one. */
static int pct(const char *r)
{
    int hi, lo;
    if (r[0] != '%' || (hi = hexval(r[1])) < 0 || (lo = hexval(r[2])) < 0)
        return -1;
    return hi * 16 + lo;
}

/* Decodes %HH like MHD's default, except three that must survive until later:
 * - %00: a decoded NUL would cut the path or value short ("/contacts/%00" would become
 *   "/contacts/"), so it stays as written, for good;
 * - %2F and %25: a "/" inside a path parameter ("/contacts/646%2F555%2F0123") must not
 *   split the path, so these wait for cd_http__unescape_late() on the parameter or query
 *   value, after routing; %25 waits too, or "%252F" would be decoded twice. */
/* Copies in to out (which may be in: decoding only shortens), decoding the "%HH" that
 * `late` selects: the first pass everything but %00, %2F and %25; the late pass only
 * %2F and %25. Returns the length written. */
static size_t decode(const char *in, char *out, bool late)
{
    char *w = out;
    for (const char *r = in; *r;) {
        int v = pct(r);
        bool kept_for_later = v == '/' || v == '%';
        if (v > 0 && kept_for_later == late) {
            *w++ = (char)v;
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - out);
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return decode(s, s, false);
}

const char *cd_http__unescape_late(cd_req *req, const char *s)
{
    if (s == NULL || strchr(s, '%') == NULL)
        return s;
    char *out = cd_req_alloc(req, strlen(s) + 1);
    decode(s, out, true);
    return out;
}

cd_http *cd_http_start(const cd_http_config *cfg, cd_router *router, cd_err *err)
{
    cd_http *h = cd_xcalloc(1, sizeof *h);
    h->router = router;
    h->cfg = *cfg;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        free(h);
        cd_fail(err, CD_EINVAL, "listen", "not an IPv4 address: %s", cfg->host);
        return NULL;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    h->d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (h->d == NULL) {
        free(h);
        cd_fail(err, CD_EINTERNAL, "listen", "cannot listen on %s:%d", cfg->host, cfg->port);
        return NULL;
    }
    return h;
}

int cd_http_port(const cd_http *h)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

void cd_http_stop(cd_http *h)
{
    if (h == NULL)
        return;
    /* Stop accepting, then give suspended requests time to be answered: a suspended
     * connection must not be closed under a job that will resume it. */
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    for (int i = 0; i < 1000 && atomic_load(&h->deferred) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    free(h);
}
