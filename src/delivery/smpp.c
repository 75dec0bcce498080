/* delivery/smpp.c -- the SMPP transport's connection: connect, bind, the submit_sm window,
 * reconnects with backoff, keep-alives, and the I/O thread that runs them; submit() and the
 * other ops at the end. delivery/smpp_int.h lists the other files of the transport. */
#include "delivery/smpp_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <smpp34_params.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define BACKOFF_MIN_MS     200
#define BACKOFF_MAX_MS     10000
#define STABLE_MS          5000  /* bound this long: the next drop starts the backoff afresh */
#define CONNECT_TIMEOUT_MS 10000 /* TCP connect plus bind_transceiver_resp */
#define ENQUIRE_TIMEOUT_MS 10000
#define RESP_TIMEOUT_MS    30000 /* a submit_sm unanswered this long means a dead link */
#define THROTTLE_PAUSE_MS  1000
#define MAX_OUTBUF         (1 << 20) /* an SMSC that stops reading gets disconnected */

int64_t cd_smpp__now_ms(void)
{
    return cd_monotonic_us() / 1000;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The detail is quoted, so a hostile SMSC cannot break the JSON line. */
void cd_smpp__log(const cd_transport *t, const char *level, const char *what, const char *detail)
{
    cd_buf f = {0};
    cd_buf_puts(&f, "\"transport\":\"smpp\",\"host\":");
    cd_json_quote(&f, t->host);
    cd_buf_printf(&f, ",\"port\":\"%s\"", t->port);
    if (detail != NULL) {
        cd_buf_puts(&f, ",\"detail\":");
        cd_json_quote(&f, detail);
    }
    cd_log(level, what, f.data);
    cd_buf_free(&f);
}

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                              */

/* Builds the record for one submit() on the caller's thread, so the I/O thread only packs.
 * Anything that makes the message unsendable is kept as a rejection for sent() to report:
 * submit() returning -1 would make the outbox retry it forever. */
static msg *msg_new(const cd_transport *t, const cd_sms *m)
{
    msg *x = cd_xcalloc(1, sizeof *x);
    cd_err e = {0};
    const char *from = (m->from != NULL && m->from[0] != '\0') ? m->from : t->from;

    x->id = cd_xstrdup(m->id != NULL ? m->id : "");
    if (cd_smpp__parse_addr(m->to, true, &x->dst) != 0)
        snprintf(x->error, sizeof x->error, "invalid destination address");
    else if (cd_smpp__parse_addr(from, false, &x->src) != 0)
        snprintf(x->error, sizeof x->error, "invalid source address");
    else if (cd_gsm_encode(m->text, &x->enc, &e) != 0)
        snprintf(x->error, sizeof x->error, "%s", e.msg);
    else
        x->remote = cd_xcalloc((size_t)x->enc.nparts, sizeof *x->remote);
    if (x->error[0] != '\0') {
        x->failed = x->permanent = true;
        x->enc.nparts = 0; /* nothing to send; cd_gsm_encode left it empty anyway */
    }
    return x;
}

static void msg_free(msg *x)
{
    if (x->remote != NULL)
        for (int i = 0; i < x->enc.nparts; i++)
            free(x->remote[i]);
    free(x->remote);
    cd_gsm_msg_free(&x->enc);
    free(x->id);
    free(x);
}

/* Fires sent() for x and frees it. */
static void msg_finish(cd_transport *t, msg *x)
{
    if (t->ev.sent != NULL) {
        if (x->failed) {
            t->ev.sent(t->ev.arg, x->id, false, NULL, x->permanent, x->error);
        } else {
            cd_buf ids = {0};
            for (int i = 0; i < x->enc.nparts; i++) {
                if (i > 0)
                    cd_buf_append(&ids, ",", 1);
                cd_buf_puts(&ids, x->remote[i]);
            }
            t->ev.sent(t->ev.arg, x->id, true, ids.data ? ids.data : "", false, NULL);
            cd_buf_free(&ids);
        }
    }
    msg_free(x);
}

/* Errors that a later retry can get past; everything else is the message's own fault. */
static bool status_permanent(uint32_t status)
{
    switch (status) {
    case ESME_RTHROTTLED:
    case ESME_RMSGQFUL:
    case ESME_RSYSERR:
    case ESME_RX_T_APPN:
    case ESME_RINVBNDSTS:
    case ESME_RUNKNOWNERR:
        return false;
    default:
        return true;
    }
}

static void unlink_active(conn *c, msg *x)
{
    for (msg **pp = &c->active; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    }
    if (c->cur == x)
        c->cur = NULL;
}

/* Records the answer to part `part` of x; once every part is answered, fires sent() and
 * frees x. A permanent error outranks a temporary one: a retry cannot fix the message. */
static void part_done(cd_transport *t, msg *x, int part, uint32_t status, const char *id)
{
    x->remote[part] = cd_xstrdup(id != NULL ? id : "");
    if (status != ESME_ROK) {
        bool perm = status_permanent(status);
        if (!x->failed || (perm && !x->permanent)) {
            char name[SMALL_BUFF] = "";
            str_command_status(status, name);
            snprintf(x->error, sizeof x->error, "submit_sm failed: 0x%08X %s", status,
                     name[0] ? name : "(vendor-specific)");
            x->failed = true;
            x->permanent = perm;
        }
    }
    pthread_mutex_lock(&t->mu);
    t->outstanding--;
    pthread_mutex_unlock(&t->mu);
    if (++x->nanswered < x->enc.nparts)
        return;
    unlink_active(&t->c, x);
    msg_finish(t, x);
}

/* After a disconnect: every accepted message that has no final answer gets a temporary
 * failure, so the outbox sends it again on the next connection. */
static void fail_all(cd_transport *t, const char *why)
{
    conn *c = &t->c;
    pthread_mutex_lock(&t->mu);
    t->bound = false;
    msg *queued = t->q_head;
    t->q_head = t->q_tail = NULL;
    t->outstanding = 0;
    pthread_mutex_unlock(&t->mu);

    msg *lists[2] = {c->active, queued};
    c->active = c->cur = NULL;
    c->ninflight = 0;
    for (int l = 0; l < 2; l++) {
        for (msg *x = lists[l], *next; x != NULL; x = next) {
            next = x->next;
            if (!x->failed) {
                x->failed = true;
                x->permanent = false;
                snprintf(x->error, sizeof x->error, "%s", why);
            }
            msg_finish(t, x);
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* The connection (I/O thread only)                                                      */

static uint32_t next_seq(conn *c)
{
    c->seq = (c->seq == 0 || c->seq >= 0x7FFFFFFF) ? 1 : c->seq + 1;
    return c->seq;
}

static void drop(cd_transport *t, const char *why);

/* Writes what the socket takes now; -1 when the connection had to be dropped. */
static int flush(cd_transport *t)
{
    conn *c = &t->c;
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            char why[128], eb[96];
            snprintf(why, sizeof why, "write: %s", strerror_r(errno, eb, sizeof eb));
            drop(t, why);
            return -1;
        }
    }
    if (c->out_off == c->out.len) {
        c->out.len = c->out_off = 0;
    } else if (c->out.len - c->out_off > MAX_OUTBUF) {
        drop(t, "the SMSC stopped reading");
        return -1;
    }
    return 0;
}

/* Closes the socket, fails what was outstanding and schedules the next attempt. */
static void drop(cd_transport *t, const char *why)
{
    conn *c = &t->c;
    bool was_bound = c->st == ST_BOUND;
    int64_t now = cd_smpp__now_ms();

    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->out.len = c->out_off = c->in_len = 0;
    c->enquire_sent = 0;
    /* A link that stayed up a while earns a quick reconnect; one that keeps failing right
     * after the bind backs off like a failed connect, so a broken SMSC is not hammered. */
    if (was_bound && now - c->bound_at >= STABLE_MS)
        c->backoff_ms = BACKOFF_MIN_MS;
    c->deadline = now + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    c->st = ST_DOWN;
    cd_smpp__log(t, "warn", was_bound ? "smpp link down" : "smpp connect failed", why);
    fail_all(t, "disconnected");
    if (was_bound && t->ev.link != NULL)
        t->ev.link(t->ev.arg, false, why);
}

static void start_connect(cd_transport *t)
{
    conn *c = &t->c;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char why[160], eb[96];
    int fd = -1, e = 0;

    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(why, sizeof why, "resolve: %s", gai_strerror(rc));
        drop(t, why);
        return;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS))
            break;
        e = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(why, sizeof why, "connect: %s", strerror_r(e, eb, sizeof eb));
        drop(t, why);
        return;
    }
    c->fd = fd;
    c->st = ST_CONNECTING;
    c->gen++;
    c->deadline = cd_smpp__now_ms() + CONNECT_TIMEOUT_MS;
}

/* The TCP connect finished (POLLOUT): check how, then bind. */
static void on_connected(cd_transport *t)
{
    conn *c = &t->c;
    int soerr = 0, one = 1;
    socklen_t sl = sizeof soerr;
    char why[128], eb[96];
    bind_transceiver_t b;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        snprintf(why, sizeof why, "connect: %s", strerror_r(soerr ? soerr : errno, eb, sizeof eb));
        drop(t, why);
        return;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->bind_seq = next_seq(c);
    cd_smpp__bind_pdu(t, c->bind_seq, &b);
    if (cd_smpp__queue_pdu(t, BIND_TRANSCEIVER, &b) != 0) {
        drop(t, "cannot encode bind_transceiver");
        return;
    }
    c->st = ST_BINDING;
    c->deadline = cd_smpp__now_ms() + CONNECT_TIMEOUT_MS;
}

static void on_bind_resp(cd_transport *t, uint32_t status)
{
    conn *c = &t->c;
    char why[96], name[SMALL_BUFF] = "";
    if (status != ESME_ROK) {
        str_command_status(status, name);
        snprintf(why, sizeof why, "bind_transceiver refused: 0x%08X %s", status, name);
        drop(t, why);
        return;
    }
    c->st = ST_BOUND;
    c->bound_at = cd_smpp__now_ms();
    c->bound_wall_ms = cd_now_ms();
    c->next_enquire = c->bound_at + (int64_t)t->enquire_s * 1000;
    c->throttle_until = 0;
    pthread_mutex_lock(&t->mu);
    t->bound = true;
    pthread_mutex_unlock(&t->mu);
    cd_smpp__log(t, "info", "smpp link up", t->system_id);
    if (t->ev.link != NULL)
        t->ev.link(t->ev.arg, true, "bound");
}

/* ------------------------------------------------------------------------------------ */
/* Sending                                                                               */

static void send_part(cd_transport *t, msg *x, int i)
{
    conn *c = &t->c;
    submit_sm_t s;

    cd_smpp__submit_pdu(x, i, next_seq(c), &s);
    if (cd_smpp__queue_pdu(t, SUBMIT_SM, &s) != 0) {
        part_done(t, x, i, ESME_RSUBMITFAIL, NULL);
        return;
    }
    c->inflight[c->ninflight++] = (slot){s.sequence_number, x, i, cd_smpp__now_ms()};
}

/* Moves queued parts onto the wire while the window has room. */
static void pump(cd_transport *t)
{
    conn *c = &t->c;
    if (c->st != ST_BOUND || cd_smpp__now_ms() < c->throttle_until)
        return;
    while (c->ninflight < t->window) {
        if (c->cur == NULL) {
            pthread_mutex_lock(&t->mu);
            msg *x = t->q_head;
            if (x != NULL && (t->q_head = x->next) == NULL)
                t->q_tail = NULL;
            pthread_mutex_unlock(&t->mu);
            if (x == NULL)
                break;
            if (x->failed) { /* refused by msg_new(): nothing goes on the wire */
                msg_finish(t, x);
                continue;
            }
            x->ref = c->ref++;
            x->next = c->active;
            c->active = c->cur = x;
        }
        msg *x = c->cur;
        int part = x->nsent++;
        if (x->nsent == x->enc.nparts)
            c->cur = NULL;
        send_part(t, x, part); /* may finish and free x: not touched after this */
    }
}

static int find_slot(const conn *c, uint32_t seq)
{
    for (int i = 0; i < c->ninflight; i++)
        if (c->inflight[i].seq == seq)
            return i;
    return -1;
}

/* Takes the in-flight entry for seq out of the window; false when there is none. */
static bool take_slot(conn *c, uint32_t seq, slot *out)
{
    int k = find_slot(c, seq);
    if (k < 0)
        return false;
    *out = c->inflight[k];
    c->inflight[k] = c->inflight[--c->ninflight];
    return true;
}

static void on_submit_resp(cd_transport *t, const unsigned char *p, size_t len, uint32_t status,
                           uint32_t seq)
{
    conn *c = &t->c;
    char id[72] = "";
    slot s;
    if (!take_slot(c, seq, &s)) {
        cd_smpp__log(t, "warn", "smpp: submit_sm_resp for no outstanding submit_sm", NULL);
        return;
    }
    if (status == ESME_ROK) {
        submit_sm_resp_t r;
        memset(&r, 0, sizeof r);
        /* The SMSC took the message even if its answer does not parse: report success
         * without an id rather than have the outbox send it twice. */
        if (cd_smpp_unpack(SUBMIT_SM_RESP, &r, p, len) == 0)
            snprintf(id, sizeof id, "%s", (const char *)r.message_id);
        else
            cd_smpp__log(t, "warn", "smpp: undecodable submit_sm_resp, message_id lost", NULL);
    } else if (status == ESME_RTHROTTLED) {
        c->throttle_until = cd_smpp__now_ms() + THROTTLE_PAUSE_MS;
    }
    part_done(t, s.m, s.part, status, id);
}

static void on_nack(cd_transport *t, uint32_t status, uint32_t seq)
{
    conn *c = &t->c;
    char why[96];
    slot s;
    snprintf(why, sizeof why, "generic_nack status 0x%08X sequence %u", status, seq);
    if (c->st == ST_BINDING && seq == c->bind_seq) {
        drop(t, why);
        return;
    }
    if (take_slot(c, seq, &s)) {
        part_done(t, s.m, s.part, status != ESME_ROK ? status : ESME_RUNKNOWNERR, NULL);
        return;
    }
    cd_smpp__log(t, "warn", "smpp: generic_nack from the SMSC", why);
}

/* ------------------------------------------------------------------------------------ */
/* Reading and dispatch                                                                  */

static void handle_pdu(cd_transport *t, const unsigned char *p, size_t len)
{
    conn *c = &t->c;
    uint32_t cmd = get32(p + 4), status = get32(p + 8), seq = get32(p + 12);
    char why[64];

    switch (cmd) {
    case BIND_TRANSCEIVER_RESP:
        if (c->st == ST_BINDING && seq == c->bind_seq)
            on_bind_resp(t, status);
        break;
    case SUBMIT_SM_RESP:
        on_submit_resp(t, p, len, status, seq);
        break;
    case GENERIC_NACK:
        on_nack(t, status, seq);
        break;
    case DELIVER_SM:
        cd_smpp__on_deliver(t, p, len, seq);
        break;
    case ENQUIRE_LINK:
        cd_smpp__queue_header(t, ENQUIRE_LINK_RESP, ESME_ROK, seq);
        break;
    case ENQUIRE_LINK_RESP:
        c->enquire_sent = 0;
        break;
    case UNBIND:
        cd_smpp__queue_header(t, UNBIND_RESP, ESME_ROK, seq);
        if (flush(t) == 0)
            drop(t, "unbind from the SMSC");
        break;
    case UNBIND_RESP:
    case ALERT_NOTIFICATION:
        break;
    default:
        snprintf(why, sizeof why, "command 0x%08X", cmd);
        if (cmd & GENERIC_NACK) { /* a response we never asked for */
            cd_smpp__log(t, "warn", "smpp: unexpected response ignored", why);
        } else {
            cd_smpp__log(t, "warn", "smpp: unsupported command answered with generic_nack", why);
            cd_smpp__queue_header(t, GENERIC_NACK, ESME_RINVCMDID, seq);
        }
    }
}

/* Splits the input into PDUs. A command_length outside 16..64 KiB means the stream has
 * lost its framing, which no later byte can restore: nack it and reconnect. Returns -1
 * when the connection was dropped. */
static int parse_frames(cd_transport *t)
{
    conn *c = &t->c;
    size_t off = 0;
    while (c->in_len - off >= 4) {
        const unsigned char *p = c->in + off;
        uint32_t len = get32(p);
        if (len < 16 || len > CD_SMPP_MAX_PDU) {
            char why[64];
            snprintf(why, sizeof why, "bad command_length %u", len);
            if (c->in_len - off >= 16) {
                cd_smpp__queue_header(t, GENERIC_NACK, ESME_RINVCMDLEN, get32(p + 12));
                if (flush(t) != 0)
                    return -1;
            }
            cd_smpp__log(t, "error", "smpp: unrecoverable stream from the SMSC", why);
            drop(t, why);
            return -1;
        }
        if (c->in_len - off < len)
            break;
        handle_pdu(t, p, len);
        if (c->st == ST_DOWN)
            return -1; /* the handler dropped the connection, and the buffer with it */
        off += len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

static void on_readable(cd_transport *t)
{
    conn *c = &t->c;
    char why[128], eb[96];
    /* in_cap leaves room for a whole PDU of the largest size plus more, so a partial PDU
     * never fills the buffer. */
    ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
    if (r == 0) {
        drop(t, "connection closed by the SMSC");
    } else if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        snprintf(why, sizeof why, "read: %s", strerror_r(errno, eb, sizeof eb));
        drop(t, why);
    } else {
        c->in_len += (size_t)r;
        (void)parse_frames(t);
    }
}

static void on_socket(cd_transport *t, short revents)
{
    conn *c = &t->c;
    if (c->st == ST_CONNECTING) {
        on_connected(t);
        return;
    }
    if (revents & (POLLIN | POLLERR | POLLHUP))
        on_readable(t);
    if (c->st != ST_DOWN && (revents & POLLOUT))
        (void)flush(t);
}

/* ------------------------------------------------------------------------------------ */
/* Timers and the loop                                                                   */

static void bound_timers(cd_transport *t, int64_t now)
{
    conn *c = &t->c;
    if (c->enquire_sent != 0 && now - c->enquire_sent > ENQUIRE_TIMEOUT_MS) {
        drop(t, "no enquire_link_resp");
        return;
    }
    for (int i = 0; i < c->ninflight; i++) {
        if (now - c->inflight[i].at_ms > RESP_TIMEOUT_MS) {
            drop(t, "no submit_sm_resp");
            return;
        }
    }
    if (t->enquire_s > 0 && now >= c->next_enquire) {
        cd_smpp__queue_header(t, ENQUIRE_LINK, ESME_ROK, next_seq(c));
        if (c->enquire_sent == 0)
            c->enquire_sent = now;
        c->next_enquire = now + (int64_t)t->enquire_s * 1000;
    }
}

static void timers(cd_transport *t, int64_t now)
{
    conn *c = &t->c;
    switch (c->st) {
    case ST_DOWN:
        if (now >= c->deadline)
            start_connect(t);
        break;
    case ST_CONNECTING:
    case ST_BINDING:
        if (now >= c->deadline)
            drop(t, c->st == ST_CONNECTING ? "connect timeout" : "no bind_transceiver_resp");
        break;
    case ST_BOUND:
        bound_timers(t, now);
        break;
    }
    cd_smpp__frags_expire(t, now);
}

/* How long poll() may sleep: until the next deadline, and never more than a second, which
 * is all the precision the response and reassembly timeouts need. */
static int poll_timeout(const cd_transport *t, int64_t now)
{
    const conn *c = &t->c;
    int64_t next = now + 1000;
    if (c->st != ST_BOUND && c->deadline < next)
        next = c->deadline;
    if (c->st == ST_BOUND && t->enquire_s > 0 && c->next_enquire < next)
        next = c->next_enquire;
    if (c->st == ST_BOUND && c->throttle_until > now && c->throttle_until < next)
        next = c->throttle_until;
    return next <= now ? 0 : (int)(next - now);
}

static void wake(cd_transport *t)
{
    uint64_t one = 1;
    (void)!write(t->wake_fd, &one, sizeof one); /* EAGAIN: a wake-up is pending anyway */
}

/* Ends the connection for close(): an unbind if we are bound (one try, no waiting), and
 * everything freed without callbacks, as close() promises. */
static void conn_close(cd_transport *t)
{
    conn *c = &t->c;
    if (c->st == ST_BOUND) {
        c->out.len = c->out_off = 0;
        cd_smpp__queue_header(t, UNBIND, ESME_ROK, next_seq(c));
        (void)!send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    if (c->fd >= 0)
        close(c->fd);
    for (msg *x = c->active, *next; x != NULL; x = next) {
        next = x->next;
        msg_free(x);
    }
    for (msg *x = t->q_head, *next; x != NULL; x = next) {
        next = x->next;
        msg_free(x);
    }
    for (int k = 0; k < c->nfrags; k++)
        cd_smpp__frag_free(c->frags[k]);
    for (int g = 0; g < c->ngroups; g++)
        free(c->groups[g].acks);
    free(c->groups);
    free(t->acks);
    t->acks = NULL;
    cd_buf_free(&c->out);
    free(c->in);
    free(c->inflight);
}

/* Sends the deliver_sm_resp that ack() released, for the current connection only. */
static void answer_acks(cd_transport *t)
{
    conn *c = &t->c;
    pthread_mutex_lock(&t->mu);
    pending_ack *list = t->acks;
    int n = t->nacks;
    t->acks = NULL;
    t->nacks = t->capacks = 0;
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < n; i++) {
        uint32_t gen = (uint32_t)(list[i].ack >> 32), seq = (uint32_t)list[i].ack;
        if (list[i].ack & GROUP_BIT)
            cd_smpp__group_answer(t, seq, list[i].status);
        else if (c->st == ST_BOUND && gen == c->gen)
            cd_smpp__queue_deliver_resp(t, list[i].status, seq);
    }
    free(list);
}

static void *io_main(void *arg)
{
    cd_thread_name("cd-smpp");
    cd_transport *t = arg;
    conn *c = &t->c;
    while (!atomic_load(&t->stop)) {
        timers(t, cd_smpp__now_ms());
        answer_acks(t);
        pump(t);
        if (c->st == ST_BINDING || c->st == ST_BOUND)
            (void)flush(t);
        struct pollfd pf[2] = {{.fd = t->wake_fd, .events = POLLIN}, {.fd = c->fd}};
        nfds_t n = c->fd >= 0 ? 2 : 1;
        if (c->st == ST_CONNECTING)
            pf[1].events = POLLOUT;
        else
            pf[1].events = (short)(POLLIN | (c->out_off < c->out.len ? POLLOUT : 0));
        if (poll(pf, n, poll_timeout(t, cd_smpp__now_ms())) < 0)
            continue; /* EINTR; nothing else can fail with two valid descriptors */
        if (pf[0].revents & POLLIN) {
            uint64_t v;
            (void)!read(t->wake_fd, &v, sizeof v);
        }
        if (n == 2 && pf[1].revents != 0)
            on_socket(t, pf[1].revents);
    }
    conn_close(t);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* The ops                                                                               */

static void smpp_ack(cd_transport *t, uint64_t ack, bool ok, bool permanent)
{
    if (ack == 0)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->nacks == t->capacks) {
        t->capacks = t->capacks ? t->capacks * 2 : 64;
        t->acks = cd_xrealloc(t->acks, (size_t)t->capacks * sizeof *t->acks);
    }
    t->acks[t->nacks++] = (pending_ack){.ack = ack,
                                        .status = ok          ? ESME_ROK
                                                  : permanent ? ESME_RX_P_APPN
                                                              : ESME_RX_T_APPN};
    pthread_mutex_unlock(&t->mu);
    wake(t);
}

static bool smpp_ready(cd_transport *t)
{
    pthread_mutex_lock(&t->mu);
    bool r = t->bound && t->outstanding < t->window;
    pthread_mutex_unlock(&t->mu);
    return r;
}

static bool smpp_linked(cd_transport *t)
{
    pthread_mutex_lock(&t->mu);
    bool r = t->bound;
    pthread_mutex_unlock(&t->mu);
    return r;
}

static int smpp_submit(cd_transport *t, const cd_sms *m)
{
    if (!smpp_ready(t))
        return -1; /* checked before encoding: the outbox asks again and again when full */
    msg *x = msg_new(t, m);
    pthread_mutex_lock(&t->mu);
    bool ok = t->bound; /* the link may have gone down while we encoded */
    if (ok) {
        t->outstanding += x->enc.nparts;
        if (t->q_tail != NULL)
            t->q_tail->next = x;
        else
            t->q_head = x;
        t->q_tail = x;
    }
    pthread_mutex_unlock(&t->mu);
    if (!ok) {
        msg_free(x);
        return -1;
    }
    wake(t);
    return 0;
}

static void smpp_close(cd_transport *t)
{
    if (t == NULL)
        return;
    atomic_store(&t->stop, true);
    wake(t);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->mu);
    close(t->wake_fd);
    free(t);
}

static cd_transport *smpp_open(const char *url, const cd_transport_events *events, cd_err *err)
{
    cd_transport *t = cd_xcalloc(1, sizeof *t);
    conn *c = &t->c;
    t->window = 10;
    t->enquire_s = 30;
    if (events != NULL)
        t->ev = *events;
    if (cd_smpp__parse_url(t, url, err) != 0) {
        free(t);
        return NULL;
    }
    t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->wake_fd < 0) {
        free(t);
        cd_fail(err, CD_EINTERNAL, "", "smpp: eventfd failed");
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    atomic_init(&t->stop, false);
    c->fd = -1;
    c->st = ST_DOWN;
    c->deadline = cd_smpp__now_ms(); /* the first attempt is immediate */
    c->backoff_ms = BACKOFF_MIN_MS;
    c->inflight = cd_xcalloc((size_t)t->window, sizeof *c->inflight);
    c->in_cap = CD_SMPP_MAX_PDU + 4096;
    c->in = cd_xmalloc(c->in_cap);
    if (pthread_create(&t->thread, NULL, io_main, t) != 0) {
        free(c->inflight);
        free(c->in);
        pthread_mutex_destroy(&t->mu);
        close(t->wake_fd);
        free(t);
        cd_fail(err, CD_EINTERNAL, "", "smpp: cannot start the I/O thread");
        return NULL;
    }
    return t;
}

const struct cd_transport_ops cd_transport_smpp = {
    .name = "smpp",
    .open = smpp_open,
    .submit = smpp_submit,
    .ack = smpp_ack,
    .ready = smpp_ready,
    .linked = smpp_linked,
    .close = smpp_close,
};
