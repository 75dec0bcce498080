/* http/deadline.c -- the connections the server has open and the request deadline (408):
 * MHD has no hook for a request whose head or body stops arriving, so a watchdog thread
 * writes a pre-rendered 408 itself (in the format of the surface owning the path) and
 * shuts the socket down, which makes MHD close the connection. The request's `phase`
 * decides, by compare-and-swap, whether the handler or the watchdog answers. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "http/http_int.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

void cd_http__on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                            enum MHD_ConnectionNotificationCode code)
{
    cd_http *h = cls;
    conn_entry *ce = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        ce = cd_xcalloc(1, sizeof *ce);
        ce->fd = ci ? ci->connect_fd : -1;
        ce->since = cd_monotonic_us();
        ce->first = true;
        pthread_mutex_lock(&h->lock);
        ce->next = h->conns;
        if (h->conns)
            h->conns->prev = ce;
        h->conns = ce;
        pthread_mutex_unlock(&h->lock);
        *socket_context = ce;
        return;
    }
    if (ce == NULL)
        return;
    /* Unlinked before MHD closes the socket, so the watchdog never touches a reused fd. */
    pthread_mutex_lock(&h->lock);
    if (ce->prev)
        ce->prev->next = ce->next;
    else
        h->conns = ce->next;
    if (ce->next)
        ce->next->prev = ce->prev;
    if (ce->req)
        ce->req->ce = NULL;
    pthread_mutex_unlock(&h->lock);
    free(ce);
    *socket_context = NULL;
}

/* Called with h->lock held. A request past its deadline that is still being read gets the
 * 408; so does a connection whose first request head has not arrived within the deadline,
 * or a later one within idle + deadline (MHD's idle timeout closes merely idle ones). */
static void check_conn(cd_http *h, conn_entry *ce, int64_t now)
{
    int64_t timeout = (int64_t)h->cfg.request_timeout * 1000000;
    if (ce->timed_out || ce->fd < 0)
        return;
    if (ce->req) {
        int expect = P_READING;
        if (now < ce->req->deadline ||
            !atomic_compare_exchange_strong(&ce->req->phase, &expect, P_TIMEDOUT))
            return;
        ce->req->status = 408;
    } else {
        int64_t limit = ce->first ? timeout : timeout + (int64_t)h->cfg.idle_timeout * 1000000;
        if (now - ce->since < limit)
            return;
        atomic_fetch_add(&h->head_timeouts, 1);
    }
    ce->timed_out = true;
    /* MHD writes nothing on a connection whose request is still arriving, so this cannot
     * interleave with its output; SHUT_RD makes MHD's next read see the end and close. */
    int t = ce->req ? 1 + h->disp.prefix_index(h->disp.arg, ce->req->path) : 0;
    (void)!send(ce->fd, h->timeout_resp[t], h->timeout_len[t], MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(ce->fd, SHUT_RDWR);
}

void *cd_http__watchdog(void *arg)
{
    cd_http *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->wd_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&h->wd_wake, &h->lock, &ts);
        int64_t now = cd_monotonic_us();
        for (conn_entry *ce = h->conns; ce; ce = ce->next)
            check_conn(h, ce, now);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Renders a 408 for a request to `path` (the surface answering it decides the format) by
 * answering a request that has no connection (capture mode), and wraps it in a complete
 * HTTP answer. */
static void render_timeout(cd_http *h, const char *path, int t)
{
    cd_req *req = cd_xcalloc(1, sizeof *req);
    req->http = h;
    req->path = cd_req_strdup(req, path);
    req->match.tried = true;
    req->match.route = req->match.owner = -1;
    cd_err err;
    cd_fail_reason(&err, CD_EINVAL, "request_timeout", "",
                   "the request did not arrive within %u seconds", h->cfg.request_timeout);
    req->match.surface = h->disp.surface_of(h->disp.arg, req);
    h->disp.reply_error(h->disp.arg, req, &err);
    cd_http__headers_hook(req, 408);
    cd_buf b = {0};
    cd_buf_printf(&b, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: %s\r\n",
                  req->cap_ctype ? req->cap_ctype : "text/plain");
    for (header *x = req->headers; x; x = x->next)
        cd_buf_printf(&b, "%s: %s\r\n", x->name, x->value);
    cd_buf_printf(&b, "Content-Length: %zu\r\n\r\n", req->cap_len);
    if (req->cap_len)
        cd_buf_append(&b, req->cap_body, req->cap_len);
    h->timeout_len[t] = b.len;
    h->timeout_resp[t] = cd_buf_take(&b);
    cd_http__req_free(req);
}

void cd_http__render_timeouts(cd_http *h)
{
    int n = h->disp.prefix_count(h->disp.arg);
    h->ntimeout = n + 1;
    h->timeout_resp = cd_xcalloc((size_t)n + 1, sizeof *h->timeout_resp);
    h->timeout_len = cd_xcalloc((size_t)n + 1, sizeof *h->timeout_len);
    render_timeout(h, "/", 0);
    for (int i = 0; i < n; i++)
        render_timeout(h, h->disp.prefix(h->disp.arg, i), 1 + i);
}
