#include "delivery/smpp.h"

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
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* libsmpp34's headers need the fixed-width types first; smpp34_structs.h defines and then
 * undefines its field macros, so it must come after smpp34.h. */
#include <smpp34.h>
#include <smpp34_structs.h>
#include <smpp34_heap.h>
#include <smpp34_params.h>

#include "util/gsm.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define BACKOFF_MIN_MS     200
#define BACKOFF_MAX_MS     10000
#define STABLE_MS          5000  /* bound this long: the next drop starts the backoff afresh */
#define CONNECT_TIMEOUT_MS 10000 /* TCP connect plus bind_transceiver_resp */
#define ENQUIRE_TIMEOUT_MS 10000
#define RESP_TIMEOUT_MS    30000 /* a submit_sm unanswered this long means a dead link */
#define THROTTLE_PAUSE_MS  1000
#define FRAG_TIMEOUT_MS    60000
#define MAX_FRAGS          64        /* inbound messages being reassembled at once */
#define MAX_OUTBUF         (1 << 20) /* an SMSC that stops reading gets disconnected */
#define PDU_BUF            2048      /* larger than any PDU we build */
#define ADDR_LEN           21        /* SMPP address fields, NUL included */

/* ------------------------------------------------------------------------------------ */
/* libsmpp34 behind one lock                                                             */

/* libsmpp34's PUTLOG writes through the global `ptrerror`, so concurrent calls can run it
 * past the end of smpp34_strerror. All calls hold this lock. While it is held, the
 * allocator below records what the library mallocs, so a failed unpack (which returns
 * before linking the TLV it was parsing) can be cleaned up completely. */
static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void **lib_track; /* guarded by lib_mu, like the two below */
static size_t lib_ntrack, lib_captrack;

static void *lib_malloc(size_t n)
{
    void *p = cd_xmalloc(n);
    if (lib_ntrack == lib_captrack) {
        lib_captrack = lib_captrack ? lib_captrack * 2 : 16;
        lib_track = cd_xrealloc(lib_track, lib_captrack * sizeof *lib_track);
    }
    lib_track[lib_ntrack++] = p;
    return p;
}

static void *lib_realloc(void *p, size_t n)
{
    return cd_xrealloc(p, n); /* libsmpp34 1.14 never reallocates; kept for completeness */
}

static void lib_init(void)
{
    static const struct smpp34_memory_functions mf = {
        .malloc_fun = lib_malloc, .realloc_fun = lib_realloc, .free_fun = free};
    smpp34_set_memory_functions(&mf);
}

int cd_smpp_pack(uint32_t command_id, void *pdu, unsigned char *buf, size_t size, size_t *len)
{
    int n = 0, rc;
    if (size > INT32_MAX)
        size = INT32_MAX;
    pthread_once(&lib_once, lib_init);
    pthread_mutex_lock(&lib_mu);
    rc = smpp34_pack(command_id, buf, (int)size, &n, pdu);
    lib_ntrack = 0;
    pthread_mutex_unlock(&lib_mu);
    *len = rc == 0 ? (size_t)n : 0;
    return rc == 0 ? 0 : -1;
}

/* The size of libsmpp34's struct for the commands consentd unpacks, so a failed unpack can
 * zero it; 0 for the others, which cd_smpp_unpack refuses. */
static size_t pdu_size(uint32_t command_id)
{
    switch (command_id) {
    case BIND_TRANSCEIVER:
        return sizeof(bind_transceiver_t);
    case BIND_TRANSCEIVER_RESP:
        return sizeof(bind_transceiver_resp_t);
    case SUBMIT_SM:
        return sizeof(submit_sm_t);
    case SUBMIT_SM_RESP:
        return sizeof(submit_sm_resp_t);
    case DELIVER_SM:
        return sizeof(deliver_sm_t);
    case DELIVER_SM_RESP:
        return sizeof(deliver_sm_resp_t);
    case GENERIC_NACK:
    case ENQUIRE_LINK:
    case ENQUIRE_LINK_RESP:
    case UNBIND:
    case UNBIND_RESP:
        return sizeof(generic_nack_t);
    default:
        return 0;
    }
}

int cd_smpp_unpack(uint32_t command_id, void *pdu, const unsigned char *buf, size_t len)
{
    /* C-octet fields are read with strlen(), so the copy ends with a NUL that the PDU's own
     * length check keeps from ever being taken as part of it. */
    if (len < 16 || len > CD_SMPP_MAX_PDU || pdu_size(command_id) == 0)
        return -1;
    uint8_t *copy = cd_xmalloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = 0;
    pthread_once(&lib_once, lib_init);
    pthread_mutex_lock(&lib_mu);
    lib_ntrack = 0;
    int rc = smpp34_unpack(command_id, pdu, copy, (int)len);
    if (rc != 0) {
        for (size_t i = 0; i < lib_ntrack; i++)
            free(lib_track[i]);
    }
    lib_ntrack = 0;
    pthread_mutex_unlock(&lib_mu);
    free(copy);
    if (rc != 0) {
        memset(pdu, 0, pdu_size(command_id)); /* it may point at the TLVs just freed */
        return -1;
    }
    return 0;
}

void cd_smpp_tlv_free(void *tlv)
{
    tlv_t *t = tlv;
    while (t != NULL) {
        tlv_t *next = t->next;
        smpp34_free(t);
        t = next;
    }
}

/* ------------------------------------------------------------------------------------ */
/* The transport's state                                                                 */

typedef struct addr {
    uint8_t ton, npi;
    char s[ADDR_LEN];
} addr;

/* One accepted submit(). Owned by the queue until the I/O thread takes it, then by the I/O
 * thread's active list until sent() has fired for it. */
typedef struct msg {
    struct msg *next;
    char *id;
    addr src, dst;
    cd_gsm_msg enc;
    char *reject; /* non-NULL: refuse without sending, permanently, with this reason */
    int nsent, nanswered;
    bool failed, permanent;
    char error[192];
    char **remote; /* enc.nparts message_ids, NULL until answered */
    uint8_t ref;   /* the UDH reference shared by the parts */
} msg;

typedef struct slot { /* one submit_sm on the wire */
    uint32_t seq;
    msg *m;
    int part;
    int64_t at_ms;
} slot;

typedef struct frag { /* an inbound concatenated message being reassembled */
    char from[ADDR_LEN + 1], to[ADDR_LEN + 1];
    unsigned ref;
    int total, have, coding;
    unsigned char **part; /* total entries, NULL until that part arrives */
    size_t *plen;
    int64_t first_ms;
    char pid[64];   /* the provider id of the latest part */
    uint64_t *acks; /* the deliver_sm of every part received, answered once all is stored */
    int nacks;
} frag;

/* The deliver_sm PDUs of one reassembled message, answered together by one ack(): the id
 * handed to the outbox is GROUP_BIT | id, which no (gen << 32 | seq) ack can be. */
#define GROUP_BIT (1ULL << 63)
typedef struct ack_group {
    uint32_t id;
    uint64_t *acks;
    int nacks;
} ack_group;

enum conn_state { ST_DOWN, ST_CONNECTING, ST_BINDING, ST_BOUND };

/* Everything below is touched by the I/O thread only. */
typedef struct conn {
    int fd;
    enum conn_state st;
    int64_t deadline; /* ST_DOWN: reconnect at; ST_CONNECTING/ST_BINDING: give up at */
    int64_t backoff_ms, bound_at, bound_wall_ms, next_enquire, enquire_sent, throttle_until;
    uint32_t seq, bind_seq;
    uint8_t ref;
    cd_buf out;
    size_t out_off;
    unsigned char *in;
    size_t in_len, in_cap;
    slot *inflight; /* window entries */
    int ninflight;
    msg *active; /* taken from the queue, sent() not fired yet */
    msg *cur;    /* the member of `active` whose parts are not all on the wire yet */
    frag *frags[MAX_FRAGS];
    int nfrags;
    ack_group *groups; /* handed to the outbox, not acknowledged yet */
    int ngroups, capgroups;
    uint32_t next_group;
    uint32_t gen;     /* counts connections: an ack from an older one is dropped */
    uint64_t cur_ack; /* the deliver_sm being handled: (gen << 32) | sequence */
    bool deferred;    /* its answer waits for ack() */
} conn;

typedef struct pending_ack {
    uint64_t ack;
    uint32_t status;
} pending_ack;

struct cd_transport {
    cd_transport_events ev;
    /* The configuration: written by open(), read-only afterwards. */
    char host[256], port[8], system_id[16], password[9], system_type[13], from[ADDR_LEN];
    int window, enquire_s;
    /* Shared between submit() and the I/O thread, under mu. */
    pthread_mutex_t mu;
    msg *q_head, *q_tail;
    int outstanding; /* PDUs accepted by submit() and not answered yet */
    bool bound;
    pending_ack *acks; /* from ack(), for the I/O thread to answer */
    int nacks, capacks;
    atomic_bool stop;
    int wake_fd;
    pthread_t thread;
    conn c;
};

static int64_t now_ms(void)
{
    return cd_monotonic_us() / 1000;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Logs `what` with the SMSC's address and a free-text detail (quoted, so a hostile SMSC
 * cannot break the JSON line). */
static void log_smpp(const cd_transport *t, const char *level, const char *what, const char *detail)
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
/* The URL                                                                               */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out[cap]; a value that does not fit is an error, because a
 * silently truncated password would only show up as a bind failure much later. */
static int url_part(const char *s, size_t n, char *out, size_t cap, const char *what, cd_err *err)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (c == 0 || k + 1 >= cap)
            return cd_fail(err, CD_EINVAL, "url", "smpp url: %s is too long (at most %zu)", what,
                           cap - 1);
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

static int query_int(const char *v, size_t n, int lo, int hi, int *out, const char *what,
                     cd_err *err)
{
    char tmp[16];
    char *end;
    if (n == 0 || n >= sizeof tmp)
        return cd_fail(err, CD_EINVAL, "url", "smpp url: bad %s", what);
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    long x = strtol(tmp, &end, 10);
    if (*end != '\0' || x < lo || x > hi)
        return cd_fail(err, CD_EINVAL, "url", "smpp url: %s must be %d..%d", what, lo, hi);
    *out = (int)x;
    return 0;
}

static int parse_query(cd_transport *t, const char *q, cd_err *err)
{
    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        const char *v = eq ? eq + 1 : q + len;
        size_t vlen = (size_t)(q + len - v);
        int rc = 0;
        if (klen == 6 && memcmp(q, "window", 6) == 0)
            rc = query_int(v, vlen, 1, 1000, &t->window, "window", err);
        else if (klen == 12 && memcmp(q, "enquire_link", 12) == 0)
            rc = query_int(v, vlen, 0, 86400, &t->enquire_s, "enquire_link", err);
        else if (klen == 11 && memcmp(q, "system_type", 11) == 0)
            rc = url_part(v, vlen, t->system_type, sizeof t->system_type, "system_type", err);
        else if (klen == 4 && memcmp(q, "from", 4) == 0)
            rc = url_part(v, vlen, t->from, sizeof t->from, "from", err);
        else if (klen > 0) {
            char *key = cd_xstrndup(q, klen);
            log_smpp(t, "warn", "smpp url: unknown parameter ignored", key);
            free(key);
        }
        if (rc != 0)
            return -1;
        q += len + (q[len] == '&');
    }
    return 0;
}

static int parse_hostport(cd_transport *t, const char *s, size_t n, cd_err *err)
{
    const char *colon;
    if (n > 0 && s[0] == '[') { /* [IPv6]:port */
        const char *rb = memchr(s, ']', n);
        if (rb == NULL)
            return cd_fail(err, CD_EINVAL, "url", "smpp url: unclosed [ in host");
        if (url_part(s + 1, (size_t)(rb - s - 1), t->host, sizeof t->host, "host", err) != 0)
            return -1;
        colon = (rb + 1 < s + n && rb[1] == ':') ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', n);
        size_t hl = colon ? (size_t)(colon - s) : n;
        if (url_part(s, hl, t->host, sizeof t->host, "host", err) != 0)
            return -1;
    }
    if (t->host[0] == '\0')
        return cd_fail(err, CD_EINVAL, "url", "smpp url: no host");
    if (colon != NULL) {
        int port;
        if (query_int(colon + 1, (size_t)(s + n - colon - 1), 1, 65535, &port, "port", err))
            return -1;
        snprintf(t->port, sizeof t->port, "%d", port);
    }
    return 0;
}

static int parse_url(cd_transport *t, const char *url, cd_err *err)
{
    if (url == NULL || strncasecmp(url, "smpp://", 7) != 0)
        return cd_fail(err, CD_EINVAL, "url", "not an smpp:// url");
    const char *s = url + 7;
    size_t auth_len = strcspn(s, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (s[i] == '@')
            at = s + i; /* the last '@': a password may hold a percent-encoded one */
    if (at == NULL)
        return cd_fail(err, CD_EINVAL, "url", "smpp url: needs SYSTEM_ID:PASSWORD@");
    const char *colon = memchr(s, ':', (size_t)(at - s));
    size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
    if (url_part(s, ulen, t->system_id, sizeof t->system_id, "system_id", err) != 0 ||
        (colon && url_part(colon + 1, (size_t)(at - colon - 1), t->password, sizeof t->password,
                           "password", err) != 0))
        return -1;
    if (t->system_id[0] == '\0')
        return cd_fail(err, CD_EINVAL, "url", "smpp url: empty system_id");
    snprintf(t->port, sizeof t->port, "2775");
    if (parse_hostport(t, at + 1, (size_t)(s + auth_len - at - 1), err) != 0)
        return -1;
    const char *q = strchr(s + auth_len, '?');
    if (q == NULL)
        return 0;
    char *query = cd_xstrndup(q + 1, strcspn(q + 1, "#"));
    int rc = parse_query(t, query, err);
    free(query);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Messages                                                                              */

/* TON/NPI for an address: "+E.164" -> 1/1 without the '+'; up to 8 digits (a short code)
 * -> 3/0; more digits -> 1/1; letters (a sender name, at most 11 as GSM allows) -> 5/0.
 * "" -> 0/0, which lets the SMSC choose a sender; a destination must be a number. */
static int parse_addr(const char *in, bool dest, addr *a)
{
    memset(a, 0, sizeof *a);
    if (in == NULL || in[0] == '\0')
        return dest ? -1 : 0;
    const char *d = in[0] == '+' ? in + 1 : in;
    size_t n = strlen(d);
    bool digits = n > 0 && strspn(d, "0123456789") == n;
    if (in[0] == '+') {
        if (!digits || n > 15)
            return -1;
        a->ton = TON_International, a->npi = NPI_ISDN_E163_E164;
    } else if (digits) {
        if (n >= ADDR_LEN)
            return -1;
        if (n <= 8)
            a->ton = TON_Network_Specific, a->npi = NPI_Unknown;
        else
            a->ton = TON_International, a->npi = NPI_ISDN_E163_E164;
    } else {
        if (dest || n > 11)
            return -1;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] > 0x7E)
                return -1;
        a->ton = TON_Alphanumeric, a->npi = NPI_Unknown;
    }
    memcpy(a->s, d, n + 1);
    return 0;
}

/* Builds the record for one submit() on the caller's thread, so the I/O thread only packs.
 * Anything that makes the message unsendable is kept as a rejection for sent() to report:
 * submit() returning -1 would make the outbox retry it forever. */
static msg *msg_new(const cd_transport *t, const cd_sms *m)
{
    msg *x = cd_xcalloc(1, sizeof *x);
    cd_err e = {0};
    const char *from = (m->from != NULL && m->from[0] != '\0') ? m->from : t->from;

    x->id = cd_xstrdup(m->id != NULL ? m->id : "");
    if (parse_addr(m->to, true, &x->dst) != 0)
        snprintf(x->error, sizeof x->error, "invalid destination address");
    else if (parse_addr(from, false, &x->src) != 0)
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

/* Packs pdu and appends it to the output buffer; flush() writes it. */
static int queue_pdu(cd_transport *t, uint32_t cmd, void *pdu)
{
    unsigned char buf[PDU_BUF];
    size_t n;
    if (cd_smpp_pack(cmd, pdu, buf, sizeof buf, &n) != 0) {
        char why[64];
        snprintf(why, sizeof why, "command 0x%08X", cmd);
        log_smpp(t, "error", "smpp: libsmpp34 could not pack a PDU", why);
        return -1;
    }
    cd_buf_append(&t->c.out, buf, n);
    return 0;
}

/* The PDUs that are a bare header: enquire_link(_resp), unbind(_resp), generic_nack. */
static void queue_header(cd_transport *t, uint32_t cmd, uint32_t status, uint32_t seq)
{
    generic_nack_t h;
    if (seq == 0)
        return; /* libsmpp34 refuses sequence 0, and a nack for it would help nobody */
    memset(&h, 0, sizeof h);
    h.command_id = cmd;
    h.command_status = status;
    h.sequence_number = seq;
    (void)queue_pdu(t, cmd, &h);
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
    int64_t now = now_ms();

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
    log_smpp(t, "warn", was_bound ? "smpp link down" : "smpp connect failed", why);
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
    c->deadline = now_ms() + CONNECT_TIMEOUT_MS;
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
    memset(&b, 0, sizeof b);
    b.command_id = BIND_TRANSCEIVER;
    b.sequence_number = c->bind_seq = next_seq(c);
    snprintf((char *)b.system_id, sizeof b.system_id, "%s", t->system_id);
    snprintf((char *)b.password, sizeof b.password, "%s", t->password);
    snprintf((char *)b.system_type, sizeof b.system_type, "%s", t->system_type);
    b.interface_version = SMPP_VERSION;
    if (queue_pdu(t, BIND_TRANSCEIVER, &b) != 0) {
        drop(t, "cannot encode bind_transceiver");
        return;
    }
    c->st = ST_BINDING;
    c->deadline = now_ms() + CONNECT_TIMEOUT_MS;
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
    c->bound_at = now_ms();
    c->bound_wall_ms = cd_now_ms();
    c->next_enquire = c->bound_at + (int64_t)t->enquire_s * 1000;
    c->throttle_until = 0;
    pthread_mutex_lock(&t->mu);
    t->bound = true;
    pthread_mutex_unlock(&t->mu);
    log_smpp(t, "info", "smpp link up", t->system_id);
    if (t->ev.link != NULL)
        t->ev.link(t->ev.arg, true, "bound");
}

/* ------------------------------------------------------------------------------------ */
/* Sending                                                                               */

static void send_part(cd_transport *t, msg *x, int i)
{
    conn *c = &t->c;
    const cd_gsm_part *p = &x->enc.parts[i];
    submit_sm_t s;
    size_t n = 0;

    memset(&s, 0, sizeof s);
    s.command_id = SUBMIT_SM;
    s.sequence_number = next_seq(c);
    s.source_addr_ton = x->src.ton;
    s.source_addr_npi = x->src.npi;
    memcpy(s.source_addr, x->src.s, sizeof x->src.s);
    s.dest_addr_ton = x->dst.ton;
    s.dest_addr_npi = x->dst.npi;
    memcpy(s.destination_addr, x->dst.s, sizeof x->dst.s);
    s.registered_delivery = SMPP34_DELIVERY_RECEIPT_ON;
    s.data_coding = (uint8_t)x->enc.coding;
    if (x->enc.nparts > 1) {
        /* UDH: IE 0x00 (concatenation, 8-bit reference), length 3: ref, total, index. */
        const uint8_t udh[6] = {5, 0x00, 3, x->ref, (uint8_t)x->enc.nparts, (uint8_t)(i + 1)};
        s.esm_class = SMPP34_UDHI_IND;
        memcpy(s.short_message, udh, sizeof udh);
        n = sizeof udh;
    }
    /* gsm.c caps a part at 160 septets or 140 octets, far below libsmpp34's 253. */
    memcpy(s.short_message + n, p->data, p->len);
    s.sm_length = (uint8_t)(n + p->len);
    if (queue_pdu(t, SUBMIT_SM, &s) != 0) {
        part_done(t, x, i, ESME_RSUBMITFAIL, NULL);
        return;
    }
    c->inflight[c->ninflight++] = (slot){s.sequence_number, x, i, now_ms()};
}

/* Moves queued parts onto the wire while the window has room. */
static void pump(cd_transport *t)
{
    conn *c = &t->c;
    if (c->st != ST_BOUND || now_ms() < c->throttle_until)
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
        log_smpp(t, "warn", "smpp: submit_sm_resp for no outstanding submit_sm", NULL);
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
            log_smpp(t, "warn", "smpp: undecodable submit_sm_resp, message_id lost", NULL);
    } else if (status == ESME_RTHROTTLED) {
        c->throttle_until = now_ms() + THROTTLE_PAUSE_MS;
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
    log_smpp(t, "warn", "smpp: generic_nack from the SMSC", why);
}

/* ------------------------------------------------------------------------------------ */
/* Inbound: deliver_sm                                                                   */

typedef struct concat {
    unsigned ref;
    int total, index; /* index is 1-based; total 0 = not concatenated */
} concat;

static const tlv_t *tlv_find(const tlv_t *list, uint16_t tag)
{
    for (; list != NULL; list = list->next)
        if (list->tag == tag)
            return list;
    return NULL;
}

/* The message bytes: short_message, or the message_payload TLV when that is empty. */
static void payload(const deliver_sm_t *d, const unsigned char **data, size_t *n)
{
    const tlv_t *mp = tlv_find(d->tlv, TLVID_message_payload);
    if (d->sm_length == 0 && mp != NULL) {
        *data = mp->value.octet;
        *n = mp->length <= MAX_TLV_SIZE ? mp->length : MAX_TLV_SIZE;
    } else {
        *data = d->short_message;
        *n = d->sm_length;
    }
}

/* An SMPP address as we show it: E.164 numbers (TON 1) get their '+' back. */
static void show_addr(uint8_t ton, const uint8_t *raw, char out[ADDR_LEN + 1])
{
    const char *s = (const char *)raw;
    snprintf(out, ADDR_LEN + 1, "%s%.*s", (ton == TON_International && s[0] != '+') ? "+" : "",
             ADDR_LEN - 1, s);
}

/* Finds `key` ("stat:") at the start of the receipt text or after a space, and copies its
 * value up to the next space into out[n]. */
static bool receipt_field(const char *text, const char *key, char *out, size_t n)
{
    size_t kl = strlen(key);
    for (const char *p = text; (p = strcasestr(p, key)) != NULL; p += kl) {
        if (p != text && p[-1] != ' ')
            continue;
        size_t vl = strcspn(p + kl, " ");
        snprintf(out, n, "%.*s", (int)(vl < n ? vl : n - 1), p + kl);
        return true;
    }
    return false;
}

static const char *state_status(unsigned state) /* the message_state TLV (SMPP 5.2.28) */
{
    switch (state) {
    case 2:
        return "delivered";
    case 3:
        return "expired";
    case 4: /* DELETED */
    case 5: /* UNDELIVERABLE */
        return "failed";
    case 8:
        return "rejected";
    default: /* ENROUTE, ACCEPTED, UNKNOWN: not final, or not known */
        return "unknown";
    }
}

static const char *stat_status(const char *stat) /* the receipt text's stat: (Appendix B) */
{
    static const struct {
        const char *stat, *status;
    } map[] = {{"DELIVRD", "delivered"}, {"EXPIRED", "expired"},  {"DELETED", "failed"},
               {"UNDELIV", "failed"},    {"REJECTD", "rejected"}, {"REJECTED", "rejected"},
               {"FAILED", "failed"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(stat, map[i].stat) == 0)
            return map[i].status;
    return "unknown";
}

static int on_receipt(cd_transport *t, const deliver_sm_t *d)
{
    const unsigned char *data;
    size_t n;
    char text[MAX_TLV_SIZE + 1], id[72] = "", stat[16] = "", err[16] = "", detail[64] = "";

    payload(d, &data, &n);
    for (size_t i = 0; i < n; i++) /* receipt text is ASCII whatever data_coding says */
        text[i] = (char)(data[i] != 0 ? data[i] : ' ');
    text[n] = '\0';
    const tlv_t *rid = tlv_find(d->tlv, TLVID_receipted_message_id);
    if (rid != NULL)
        snprintf(id, sizeof id, "%.*s", rid->length < 65 ? (int)rid->length : 65,
                 (const char *)rid->value.octet);
    if (id[0] == '\0' && !receipt_field(text, "id:", id, sizeof id))
        return -1;
    bool has_stat = receipt_field(text, "stat:", stat, sizeof stat);
    bool has_err = receipt_field(text, "err:", err, sizeof err);
    const tlv_t *ms = tlv_find(d->tlv, TLVID_message_state);
    const char *status = ms         ? state_status(ms->value.val08)
                         : has_stat ? stat_status(stat)
                                    : "unknown";
    if (has_stat || has_err)
        snprintf(detail, sizeof detail, "stat:%s err:%s", stat, err);
    else if (ms != NULL)
        snprintf(detail, sizeof detail, "message_state:%u", ms->value.val08);
    if (t->ev.receipt != NULL) {
        t->c.deferred = t->c.cur_ack != 0;
        t->ev.receipt(t->ev.arg, id, status, detail, t->c.cur_ack);
    }
    return 0;
}

/* Reads the UDH at the front of *data and steps past it; the concatenation IE (0x00 or
 * 0x08, 8- or 16-bit reference) fills *ci. -1 when the UDH runs past the message. */
static int parse_udh(const unsigned char **data, size_t *n, concat *ci)
{
    if (*n < 1 || (size_t)(*data)[0] + 1 > *n)
        return -1;
    const unsigned char *u = *data + 1;
    size_t udhl = (*data)[0];
    for (size_t i = 0; i + 2 <= udhl;) {
        size_t iei = u[i], l = u[i + 1];
        if (i + 2 + l > udhl)
            return -1;
        if (iei == 0x00 && l == 3)
            ci->ref = u[i + 2], ci->total = u[i + 3], ci->index = u[i + 4];
        else if (iei == 0x08 && l == 4)
            ci->ref = (unsigned)u[i + 2] << 8 | u[i + 3], ci->total = u[i + 4],
            ci->index = u[i + 5];
        i += 2 + l;
    }
    *data += udhl + 1;
    *n -= udhl + 1;
    return 0;
}

/* The SAR TLVs, the other way to mark the parts of a long message. */
static void parse_sar(const tlv_t *tlv, concat *ci)
{
    const tlv_t *ref = tlv_find(tlv, TLVID_sar_msg_ref_num);
    const tlv_t *tot = tlv_find(tlv, TLVID_sar_total_segments);
    const tlv_t *idx = tlv_find(tlv, TLVID_sar_segment_seqnum);
    if (ref != NULL && tot != NULL && idx != NULL) {
        ci->ref = ref->value.val16;
        ci->total = tot->value.val08;
        ci->index = idx->value.val08;
    }
}

static int deliver_text(cd_transport *t, const char *from, const char *to,
                        const unsigned char *data, size_t n, int coding, const char *pid,
                        uint64_t ack)
{
    char *text = cd_gsm_decode(data, n, coding);
    if (text == NULL) {
        char why[32];
        snprintf(why, sizeof why, "data_coding 0x%02X", (unsigned)coding);
        log_smpp(t, "warn", "smpp: inbound message is not text; refused", why);
        return -1;
    }
    if (t->ev.inbound != NULL)
        t->ev.inbound(t->ev.arg, from, to, text, pid, ack);
    free(text);
    return 0;
}

/* Answers every deliver_sm of a group that belongs to the current connection (older ones
 * are redelivered by the SMSC anyway) and forgets the group. */
static void group_answer(cd_transport *t, uint32_t id, uint32_t status)
{
    conn *c = &t->c;
    for (int g = 0; g < c->ngroups; g++) {
        if (c->groups[g].id != id)
            continue;
        for (int i = 0; i < c->groups[g].nacks; i++) {
            uint64_t a = c->groups[g].acks[i];
            if (c->st != ST_BOUND || (uint32_t)(a >> 32) != c->gen)
                continue;
            deliver_sm_resp_t r;
            memset(&r, 0, sizeof r);
            r.command_id = DELIVER_SM_RESP;
            r.command_status = status;
            r.sequence_number = (uint32_t)a;
            (void)queue_pdu(t, DELIVER_SM_RESP, &r);
        }
        free(c->groups[g].acks);
        c->groups[g] = c->groups[--c->ngroups];
        return;
    }
}

/* Moves the parts' acks of f into a new group; 0 when it has none to answer. */
static uint64_t group_new(cd_transport *t, frag *f)
{
    conn *c = &t->c;
    if (f->nacks == 0)
        return 0;
    if (c->ngroups == c->capgroups) {
        c->capgroups = c->capgroups ? c->capgroups * 2 : 8;
        c->groups = cd_xrealloc(c->groups, (size_t)c->capgroups * sizeof *c->groups);
    }
    uint32_t id = ++c->next_group;
    c->groups[c->ngroups++] = (ack_group){.id = id, .acks = f->acks, .nacks = f->nacks};
    f->acks = NULL;
    f->nacks = 0;
    return GROUP_BIT | id;
}

static void frag_free(frag *f)
{
    for (int i = 0; i < f->total; i++)
        free(f->part[i]);
    free(f->part);
    free(f->plen);
    free(f->acks);
    free(f);
}

/* Delivers frags[k] with the parts it has, in order, and forgets it. Joining the bytes
 * before decoding keeps an escape or a surrogate pair that a sender split across parts.
 * issue 8 item 13: every part's deliver_sm is answered only once the whole message is
 * stored (the outbox acks the group), so a crash in between makes the SMSC send it all
 * again; a message we cannot use is refused at once, every part of it. */
static int frag_emit(cd_transport *t, int k)
{
    conn *c = &t->c;
    frag *f = c->frags[k];
    cd_buf b = {0};
    for (int i = 0; i < f->total; i++)
        if (f->part[i] != NULL)
            cd_buf_append(&b, f->part[i], f->plen[i]);
    if (f->have < f->total)
        log_smpp(t, "warn", "smpp: incomplete concatenated message delivered as it is", f->from);
    uint64_t group = group_new(t, f);
    int rc = deliver_text(t, f->from, f->to, (const unsigned char *)(b.data ? b.data : ""), b.len,
                          f->coding, f->pid, group);
    if (group != 0 && (rc != 0 || t->ev.inbound == NULL))
        group_answer(t, (uint32_t)group, rc == 0 ? ESME_ROK : ESME_RX_P_APPN);
    cd_buf_free(&b);
    frag_free(f);
    memmove(&c->frags[k], &c->frags[k + 1], (size_t)(c->nfrags - k - 1) * sizeof(frag *));
    c->nfrags--;
    return rc;
}

static frag *frag_get(cd_transport *t, const char *from, const char *to, const concat *ci,
                      int coding)
{
    conn *c = &t->c;
    for (int k = 0; k < c->nfrags; k++) {
        frag *f = c->frags[k];
        if (f->ref == ci->ref && f->total == ci->total && strcmp(f->from, from) == 0 &&
            strcmp(f->to, to) == 0)
            return f;
    }
    if (c->nfrags == MAX_FRAGS) /* a flood of never-finished messages must not grow us */
        (void)frag_emit(t, 0);
    frag *f = cd_xcalloc(1, sizeof *f);
    snprintf(f->from, sizeof f->from, "%s", from);
    snprintf(f->to, sizeof f->to, "%s", to);
    f->ref = ci->ref;
    f->total = ci->total;
    f->coding = coding;
    f->part = cd_xcalloc((size_t)ci->total, sizeof *f->part);
    f->plen = cd_xcalloc((size_t)ci->total, sizeof *f->plen);
    f->first_ms = now_ms();
    c->frags[c->nfrags++] = f;
    return f;
}

static int frag_add(cd_transport *t, const char *from, const char *to, const concat *ci,
                    const unsigned char *data, size_t n, int coding, const char *pid)
{
    conn *c = &t->c;
    frag *f = frag_get(t, from, to, ci, coding);
    if (f->part[ci->index - 1] == NULL) { /* a repeated part changes nothing */
        f->part[ci->index - 1] = cd_xmalloc(n + 1);
        memcpy(f->part[ci->index - 1], data, n);
        f->plen[ci->index - 1] = n;
        f->have++;
    }
    snprintf(f->pid, sizeof f->pid, "%s", pid);
    if (c->cur_ack != 0) { /* answered with the whole message, repeated parts too */
        f->acks = cd_xrealloc(f->acks, (size_t)(f->nacks + 1) * sizeof *f->acks);
        f->acks[f->nacks++] = c->cur_ack;
        c->deferred = true;
    }
    if (f->have < f->total)
        return 0;
    for (int k = 0; k < c->nfrags; k++)
        if (c->frags[k] == f)
            return frag_emit(t, k);
    return 0;
}

static void frags_expire(cd_transport *t, int64_t now)
{
    conn *c = &t->c;
    while (c->nfrags > 0 && now - c->frags[0]->first_ms >= FRAG_TIMEOUT_MS)
        (void)frag_emit(t, 0); /* oldest first: frags[] is in arrival order */
}

static int on_mo(cd_transport *t, const deliver_sm_t *d, uint32_t seq)
{
    const unsigned char *data;
    size_t n;
    char from[ADDR_LEN + 1], to[ADDR_LEN + 1], pid[64];
    concat ci = {0};

    payload(d, &data, &n);
    show_addr(d->source_addr_ton, d->source_addr, from);
    show_addr(d->dest_addr_ton, d->destination_addr, to);
    snprintf(pid, sizeof pid, "smpp:%lld:%u", (long long)t->c.bound_wall_ms, seq);
    if (d->esm_class & SMPP34_UDHI_IND) {
        if (parse_udh(&data, &n, &ci) != 0) {
            log_smpp(t, "warn", "smpp: deliver_sm with a broken UDH refused", from);
            return -1;
        }
    } else {
        parse_sar(d->tlv, &ci);
    }
    if (ci.total > 1 && ci.index >= 1 && ci.index <= ci.total)
        return frag_add(t, from, to, &ci, data, n, d->data_coding, pid);
    int rc = deliver_text(t, from, to, data, n, d->data_coding, pid, t->c.cur_ack);
    t->c.deferred = rc == 0 && t->ev.inbound != NULL && t->c.cur_ack != 0;
    return rc;
}

static void on_deliver(cd_transport *t, const unsigned char *p, size_t len, uint32_t seq)
{
    deliver_sm_t d;
    deliver_sm_resp_t r;
    int rc = -1;

    memset(&d, 0, sizeof d);
    t->c.cur_ack = seq ? (uint64_t)t->c.gen << 32 | seq : 0;
    t->c.deferred = false;
    if (cd_smpp_unpack(DELIVER_SM, &d, p, len) != 0)
        log_smpp(t, "warn", "smpp: undecodable deliver_sm refused", NULL);
    else if (d.esm_class & SMPP34_DELIVERY_RECEIPT)
        rc = on_receipt(t, &d);
    else
        rc = on_mo(t, &d, seq);
    cd_smpp_tlv_free(d.tlv);
    if (seq == 0)
        return; /* libsmpp34 cannot answer it, and the SMSC could not match the answer */
    if (rc == 0 && t->c.deferred)
        return; /* answered by ack() once the outbox has stored it */
    /* Always answered, so the SMSC does not redeliver forever; a permanent application
     * error for what we cannot use tells it not to retry. */
    memset(&r, 0, sizeof r);
    r.command_id = DELIVER_SM_RESP;
    r.command_status = rc == 0 ? ESME_ROK : ESME_RX_P_APPN;
    r.sequence_number = seq;
    (void)queue_pdu(t, DELIVER_SM_RESP, &r);
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
        on_deliver(t, p, len, seq);
        break;
    case ENQUIRE_LINK:
        queue_header(t, ENQUIRE_LINK_RESP, ESME_ROK, seq);
        break;
    case ENQUIRE_LINK_RESP:
        c->enquire_sent = 0;
        break;
    case UNBIND:
        queue_header(t, UNBIND_RESP, ESME_ROK, seq);
        if (flush(t) == 0)
            drop(t, "unbind from the SMSC");
        break;
    case UNBIND_RESP:
    case ALERT_NOTIFICATION:
        break;
    default:
        snprintf(why, sizeof why, "command 0x%08X", cmd);
        if (cmd & GENERIC_NACK) { /* a response we never asked for */
            log_smpp(t, "warn", "smpp: unexpected response ignored", why);
        } else {
            log_smpp(t, "warn", "smpp: unsupported command answered with generic_nack", why);
            queue_header(t, GENERIC_NACK, ESME_RINVCMDID, seq);
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
                queue_header(t, GENERIC_NACK, ESME_RINVCMDLEN, get32(p + 12));
                if (flush(t) != 0)
                    return -1;
            }
            log_smpp(t, "error", "smpp: unrecoverable stream from the SMSC", why);
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
        queue_header(t, ENQUIRE_LINK, ESME_ROK, next_seq(c));
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
    frags_expire(t, now);
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
        queue_header(t, UNBIND, ESME_ROK, next_seq(c));
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
        frag_free(c->frags[k]);
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
            group_answer(t, seq, list[i].status);
        else if (c->st == ST_BOUND && gen == c->gen) {
            deliver_sm_resp_t r;
            memset(&r, 0, sizeof r);
            r.command_id = DELIVER_SM_RESP;
            r.command_status = list[i].status;
            r.sequence_number = seq;
            (void)queue_pdu(t, DELIVER_SM_RESP, &r);
        }
    }
    free(list);
}

static void *io_main(void *arg)
{
    cd_transport *t = arg;
    conn *c = &t->c;
    while (!atomic_load(&t->stop)) {
        timers(t, now_ms());
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
        if (poll(pf, n, poll_timeout(t, now_ms())) < 0)
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
    if (parse_url(t, url, err) != 0) {
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
    c->deadline = now_ms(); /* the first attempt is immediate */
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
    .close = smpp_close,
};
