/* tests/unit/delivery/test_smpp.c -- delivery/smpp.h against a tiny SMSC that runs in this
 * process on a loopback socket and speaks through libsmpp34 (cd_smpp_pack/unpack): bind,
 * submit_sm answers, long messages, deliver_sm MO and receipts, garbage from the SMSC,
 * dropped connections and reconnects, the window, close() with work outstanding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <smpp34.h>
#include <smpp34_structs.h>

#include "delivery/smpp.h"

#define MAXREC  64
#define WAIT_MS 5000

/* cmocka's fail_msg() longjmps, which only works on the test's own thread: the SMSC's
 * thread stops the whole process instead. */
#define SMSC_FAIL(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "smsc: " __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* ------------------------------------------------------------------------------------ */
/* The SMSC                                                                              */

typedef struct sub_rec { /* one submit_sm as the SMSC saw it */
    uint8_t src_ton, src_npi, dst_ton, dst_npi, esm, dc, regdel;
    char src[ADDRESS_LENGTH], dst[ADDRESS_LENGTH];
    unsigned char sm[256];
    int smlen;
} sub_rec;

typedef struct smsc {
    int lfd, cfd, port;
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below, and writes to cfd */
    bool stop;
    uint32_t bind_status, submit_status, seq;
    bool hold; /* keep submit_sm unanswered until smsc_release() */
    uint32_t held[MAXREC];
    int nheld;
    int nconn, nbinds, nenq, nenq_resp, nunbind_resp, nnack, ndresp;
    uint32_t nack_status[MAXREC], dresp_status[MAXREC];
    char system_id[16], password[9];
    sub_rec sub[MAXREC];
    int nsub, next_id;
} smsc;

static int get_int(pthread_mutex_t *mu, const int *field)
{
    pthread_mutex_lock(mu);
    int v = *field;
    pthread_mutex_unlock(mu);
    return v;
}

/* Waits up to WAIT_MS for *field (read under mu) to reach want. */
static bool wait_ge(pthread_mutex_t *mu, const int *field, int want)
{
    for (int i = 0; i < WAIT_MS / 5; i++) {
        if (get_int(mu, field) >= want)
            return true;
        usleep(5000);
    }
    return false;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes raw bytes to the client; caller holds s->mu. */
static void smsc_write_locked(smsc *s, const void *buf, size_t n)
{
    if (s->cfd >= 0)
        (void)!send(s->cfd, buf, n, MSG_NOSIGNAL);
}

static void smsc_write(smsc *s, const void *buf, size_t n)
{
    pthread_mutex_lock(&s->mu);
    smsc_write_locked(s, buf, n);
    pthread_mutex_unlock(&s->mu);
}

/* Packs a PDU and sends it; caller holds s->mu. */
static void smsc_send_locked(smsc *s, uint32_t cmd, void *pdu)
{
    unsigned char buf[4096];
    size_t n;
    if (cd_smpp_pack(cmd, pdu, buf, sizeof buf, &n) != 0)
        SMSC_FAIL("cannot pack command 0x%08x", cmd);
    smsc_write_locked(s, buf, n);
}

static void smsc_header_locked(smsc *s, uint32_t cmd, uint32_t status, uint32_t seq)
{
    generic_nack_t h;
    memset(&h, 0, sizeof h);
    h.command_id = cmd;
    h.command_status = status;
    h.sequence_number = seq;
    smsc_send_locked(s, cmd, &h);
}

/* Answers submit_sm `seq` with the configured status and the next id; holds s->mu. */
static void smsc_submit_resp_locked(smsc *s, uint32_t seq)
{
    submit_sm_resp_t r;
    memset(&r, 0, sizeof r);
    r.command_id = SUBMIT_SM_RESP;
    r.command_status = s->submit_status;
    r.sequence_number = seq;
    snprintf((char *)r.message_id, sizeof r.message_id, "id-%d", ++s->next_id);
    smsc_send_locked(s, SUBMIT_SM_RESP, &r);
}

static void smsc_on_submit(smsc *s, const unsigned char *p, size_t len, uint32_t seq)
{
    submit_sm_t m;
    memset(&m, 0, sizeof m);
    if (cd_smpp_unpack(SUBMIT_SM, &m, p, len) != 0)
        SMSC_FAIL("the transport sent an undecodable submit_sm");
    cd_smpp_tlv_free(m.tlv);
    if (s->nsub < MAXREC) {
        sub_rec *r = &s->sub[s->nsub++];
        r->src_ton = m.source_addr_ton, r->src_npi = m.source_addr_npi;
        r->dst_ton = m.dest_addr_ton, r->dst_npi = m.dest_addr_npi;
        r->esm = m.esm_class, r->dc = m.data_coding, r->regdel = m.registered_delivery;
        memcpy(r->src, m.source_addr, sizeof r->src);
        memcpy(r->dst, m.destination_addr, sizeof r->dst);
        memcpy(r->sm, m.short_message, m.sm_length);
        r->smlen = m.sm_length;
    }
    if (s->hold && s->nheld < MAXREC)
        s->held[s->nheld++] = seq;
    else
        smsc_submit_resp_locked(s, seq);
}

static void smsc_on_bind(smsc *s, const unsigned char *p, size_t len, uint32_t seq)
{
    bind_transceiver_t b;
    bind_transceiver_resp_t r;
    memset(&b, 0, sizeof b);
    if (cd_smpp_unpack(BIND_TRANSCEIVER, &b, p, len) != 0)
        SMSC_FAIL("undecodable bind_transceiver");
    memcpy(s->system_id, b.system_id, sizeof s->system_id);
    memcpy(s->password, b.password, sizeof s->password);
    memset(&r, 0, sizeof r);
    r.command_id = BIND_TRANSCEIVER_RESP;
    r.command_status = s->bind_status;
    r.sequence_number = seq;
    snprintf((char *)r.system_id, sizeof r.system_id, "testsmsc");
    smsc_send_locked(s, BIND_TRANSCEIVER_RESP, &r);
    if (s->bind_status == ESME_ROK)
        s->nbinds++;
}

/* One PDU from the transport; runs on the SMSC thread with s->mu held. */
static void smsc_handle(smsc *s, const unsigned char *p, size_t len)
{
    uint32_t cmd = rd32(p + 4), status = rd32(p + 8), seq = rd32(p + 12);
    switch (cmd) {
    case BIND_TRANSCEIVER:
        smsc_on_bind(s, p, len, seq);
        break;
    case SUBMIT_SM:
        smsc_on_submit(s, p, len, seq);
        break;
    case ENQUIRE_LINK:
        s->nenq++;
        smsc_header_locked(s, ENQUIRE_LINK_RESP, ESME_ROK, seq);
        break;
    case ENQUIRE_LINK_RESP:
        s->nenq_resp++;
        break;
    case DELIVER_SM_RESP:
        if (s->ndresp < MAXREC)
            s->dresp_status[s->ndresp] = status;
        s->ndresp++;
        break;
    case GENERIC_NACK:
        if (s->nnack < MAXREC)
            s->nack_status[s->nnack++] = status;
        break;
    case UNBIND:
        smsc_header_locked(s, UNBIND_RESP, ESME_ROK, seq);
        break;
    case UNBIND_RESP:
        s->nunbind_resp++;
        break;
    default:
        SMSC_FAIL("unexpected command 0x%08x", cmd);
    }
}

static void smsc_read(smsc *s, unsigned char *buf, size_t *have)
{
    ssize_t r = recv(s->cfd, buf + *have, 70000 - *have, 0);
    pthread_mutex_lock(&s->mu);
    if (r <= 0) {
        close(s->cfd);
        s->cfd = -1;
        *have = 0;
    } else {
        *have += (size_t)r;
        size_t off = 0;
        while (*have - off >= 16 && *have - off >= rd32(buf + off)) {
            size_t len = rd32(buf + off);
            if (len < 16 || len > CD_SMPP_MAX_PDU)
                SMSC_FAIL("the transport sent command_length %zu", len);
            smsc_handle(s, buf + off, len);
            off += len;
        }
        memmove(buf, buf + off, *have - off);
        *have -= off;
    }
    pthread_mutex_unlock(&s->mu);
}

static void *smsc_main(void *arg)
{
    smsc *s = arg;
    unsigned char *buf = malloc(70000);
    size_t have = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        struct pollfd pf[2] = {{.fd = s->lfd, .events = POLLIN}, {.fd = s->cfd, .events = POLLIN}};
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        if (poll(pf, pf[1].fd >= 0 ? 2 : 1, 20) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            pthread_mutex_lock(&s->mu);
            if (s->cfd >= 0)
                close(s->cfd);
            s->cfd = fd;
            s->nconn++;
            have = 0;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (pf[1].fd >= 0 && pf[1].revents != 0)
            smsc_read(s, buf, &have);
    }
    free(buf);
    return NULL;
}

static smsc *smsc_start(void)
{
    smsc *s = calloc(1, sizeof *s);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int one = 1;
    s->cfd = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(pthread_create(&s->thread, NULL, smsc_main, s), 0);
    return s;
}

static void smsc_stop(smsc *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    if (s->cfd >= 0)
        close(s->cfd);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Closes the client's connection from the SMSC side. */
static void smsc_kick(smsc *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->cfd >= 0)
        shutdown(s->cfd, SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
}

static void smsc_release(smsc *s)
{
    pthread_mutex_lock(&s->mu);
    s->hold = false;
    for (int i = 0; i < s->nheld; i++)
        smsc_submit_resp_locked(s, s->held[i]);
    s->nheld = 0;
    pthread_mutex_unlock(&s->mu);
}

static void smsc_set(smsc *s, uint32_t *field, uint32_t v)
{
    pthread_mutex_lock(&s->mu);
    *field = v;
    pthread_mutex_unlock(&s->mu);
}

/* A deliver_sm from `from` (TON 1 when it starts with '+') with esm_class, data_coding,
 * the bytes sm[smlen] and an optional TLV list. */
static void smsc_deliver(smsc *s, const char *from, const char *to, uint8_t esm, uint8_t dc,
                         const void *sm, size_t smlen, tlv_t *tlv)
{
    deliver_sm_t d;
    memset(&d, 0, sizeof d);
    d.command_id = DELIVER_SM;
    pthread_mutex_lock(&s->mu);
    d.sequence_number = ++s->seq;
    if (from[0] == '+')
        d.source_addr_ton = TON_International, d.source_addr_npi = NPI_ISDN_E163_E164, from++;
    snprintf((char *)d.source_addr, sizeof d.source_addr, "%s", from);
    snprintf((char *)d.destination_addr, sizeof d.destination_addr, "%s", to);
    d.esm_class = esm;
    d.data_coding = dc;
    d.sm_length = (uint8_t)smlen;
    memcpy(d.short_message, sm, smlen);
    d.tlv = tlv;
    smsc_send_locked(s, DELIVER_SM, &d);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------------------------ */
/* What the transport reported                                                           */

typedef struct rec {
    pthread_mutex_t mu;
    int up, down, nsent, nin, nrc;
    struct {
        char id[64], remote[256], error[200];
        bool ok, permanent;
    } sent[MAXREC];
    struct {
        char from[32], to[32], text[2048], pid[64];
    } in[MAXREC];
    struct {
        char id[80], status[16], detail[64];
    } rc[MAXREC];
    cd_transport *t; /* set once open() returns; read under mu */
    bool hold;       /* keep acks in `held` instead of acking at once */
    uint64_t held[MAXREC];
    int nheld;
} rec;

static void on_sent(void *arg, const char *id, bool ok, const char *remote, bool permanent,
                    const char *error)
{
    rec *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->nsent < MAXREC) {
        snprintf(r->sent[r->nsent].id, sizeof r->sent[0].id, "%s", id);
        snprintf(r->sent[r->nsent].remote, sizeof r->sent[0].remote, "%s", remote ? remote : "");
        snprintf(r->sent[r->nsent].error, sizeof r->sent[0].error, "%s", error ? error : "");
        r->sent[r->nsent].ok = ok;
        r->sent[r->nsent].permanent = permanent;
        r->nsent++;
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_inbound(void *arg, const char *from, const char *to, const char *text,
                       const char *pid, uint64_t ack)
{
    rec *r = arg;
    pthread_mutex_lock(&r->mu);
    cd_transport *t = r->t;
    bool hold = r->hold && r->nheld < MAXREC;
    if (hold)
        r->held[r->nheld++] = ack;
    pthread_mutex_unlock(&r->mu);
    if (ack && t && !hold) /* "stored": lets the transport answer the deliver_sm */
        cd_transport_smpp.ack(t, ack, true, false);
    pthread_mutex_lock(&r->mu);
    if (r->nin < MAXREC) {
        snprintf(r->in[r->nin].from, sizeof r->in[0].from, "%s", from);
        snprintf(r->in[r->nin].to, sizeof r->in[0].to, "%s", to);
        snprintf(r->in[r->nin].text, sizeof r->in[0].text, "%s", text);
        snprintf(r->in[r->nin].pid, sizeof r->in[0].pid, "%s", pid);
        r->nin++;
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_receipt(void *arg, const char *id, const char *status, const char *detail,
                       uint64_t ack)
{
    rec *r = arg;
    pthread_mutex_lock(&r->mu);
    cd_transport *t = r->t;
    pthread_mutex_unlock(&r->mu);
    if (ack && t)
        cd_transport_smpp.ack(t, ack, true, false);
    pthread_mutex_lock(&r->mu);
    if (r->nrc < MAXREC) {
        snprintf(r->rc[r->nrc].id, sizeof r->rc[0].id, "%s", id);
        snprintf(r->rc[r->nrc].status, sizeof r->rc[0].status, "%s", status);
        snprintf(r->rc[r->nrc].detail, sizeof r->rc[0].detail, "%s", detail);
        r->nrc++;
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_link(void *arg, bool up, const char *detail)
{
    rec *r = arg;
    (void)detail;
    pthread_mutex_lock(&r->mu);
    if (up)
        r->up++;
    else
        r->down++;
    pthread_mutex_unlock(&r->mu);
}

typedef struct fixture {
    smsc *s;
    rec *r;
    cd_transport *t;
} fixture;

/* An SMSC and a transport bound to it; `query` is appended to the URL. */
static void fx_open(fixture *f, const char *query)
{
    char url[256];
    cd_err err = {0};
    f->s = smsc_start();
    f->r = calloc(1, sizeof *f->r);
    pthread_mutex_init(&f->r->mu, NULL);
    cd_transport_events ev = {.arg = f->r,
                              .sent = on_sent,
                              .inbound = on_inbound,
                              .receipt = on_receipt,
                              .link = on_link};
    snprintf(url, sizeof url, "smpp://esme%%31:pw@127.0.0.1:%d?%s", f->s->port, query);
    f->t = cd_transport_smpp.open(url, &ev, &err);
    if (f->t == NULL)
        fail_msg("open: %s", err.msg);
    pthread_mutex_lock(&f->r->mu);
    f->r->t = f->t;
    pthread_mutex_unlock(&f->r->mu);
    assert_true(wait_ge(&f->r->mu, &f->r->up, 1));
}

static void fx_close(fixture *f)
{
    cd_transport_smpp.close(f->t);
    smsc_stop(f->s);
    pthread_mutex_destroy(&f->r->mu);
    free(f->r);
}

static int submit(fixture *f, const char *id, const char *to, const char *from, const char *text)
{
    cd_sms m = {.id = id, .to = to, .from = from, .text = text};
    return cd_transport_smpp.submit(f->t, &m);
}

/* ------------------------------------------------------------------------------------ */
/* Tests                                                                                 */

static void test_bind_and_submit(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "window=4&system_type=cd");
    assert_string_equal(f.s->system_id, "esme1"); /* %31 was percent-decoded */
    assert_string_equal(f.s->password, "pw");
    assert_true(cd_transport_smpp.ready(f.t));

    assert_int_equal(submit(&f, "m1", "+16465550123", "Acme", "hello"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 1));
    assert_string_equal(f.r->sent[0].id, "m1");
    assert_true(f.r->sent[0].ok);
    assert_string_equal(f.r->sent[0].remote, "id-1");
    sub_rec *r = &f.s->sub[0];
    assert_string_equal(r->dst, "16465550123");
    assert_int_equal(r->dst_ton, 1);
    assert_int_equal(r->dst_npi, 1);
    assert_string_equal(r->src, "Acme");
    assert_int_equal(r->src_ton, 5);
    assert_int_equal(r->src_npi, 0);
    assert_int_equal(r->esm, 0);
    assert_int_equal(r->dc, 0);
    assert_int_equal(r->regdel, 1);
    assert_int_equal(r->smlen, 5);
    assert_memory_equal(r->sm, "hello", 5);

    assert_int_equal(submit(&f, "m2", "+16465550123", "12345", "\xD0\x96"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 2));
    r = &f.s->sub[1];
    assert_int_equal(r->src_ton, 3); /* a short code */
    assert_int_equal(r->src_npi, 0);
    assert_int_equal(r->dc, 8);
    assert_int_equal(r->smlen, 2);
    assert_memory_equal(r->sm, "\x04\x16", 2);
    fx_close(&f);
}

static void test_default_sender_from_url(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "from=%2B15550001");
    assert_int_equal(submit(&f, "m1", "+16465550123", "", "hi"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 1));
    assert_string_equal(f.s->sub[0].src, "15550001");
    assert_int_equal(f.s->sub[0].src_ton, 1);
    fx_close(&f);
}

static void test_long_message(void **state)
{
    (void)state;
    fixture f;
    char text[201];
    memset(text, 'x', 200);
    text[200] = '\0';
    fx_open(&f, "window=10");
    assert_int_equal(submit(&f, "long", "+16465550123", "", text), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 1));
    assert_true(f.r->sent[0].ok);
    assert_string_equal(f.r->sent[0].remote, "id-1,id-2");
    assert_int_equal(f.s->nsub, 2);
    for (int i = 0; i < 2; i++) {
        sub_rec *r = &f.s->sub[i];
        assert_int_equal(r->esm, 0x40);
        assert_int_equal(r->sm[0], 5);
        assert_int_equal(r->sm[1], 0x00);
        assert_int_equal(r->sm[2], 3);
        assert_int_equal(r->sm[3], f.s->sub[0].sm[3]); /* one reference for both */
        assert_int_equal(r->sm[4], 2);
        assert_int_equal(r->sm[5], i + 1);
    }
    assert_int_equal(f.s->sub[0].smlen, 6 + 153);
    assert_int_equal(f.s->sub[1].smlen, 6 + 47);
    fx_close(&f);
}

static void test_submit_errors(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    smsc_set(f.s, &f.s->submit_status, ESME_RINVDSTADR);
    assert_int_equal(submit(&f, "bad-dst", "+16465550123", "", "hi"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 1));
    assert_false(f.r->sent[0].ok);
    assert_true(f.r->sent[0].permanent);
    assert_non_null(strstr(f.r->sent[0].error, "0x0000000B"));

    smsc_set(f.s, &f.s->submit_status, ESME_RTHROTTLED);
    assert_int_equal(submit(&f, "throttled", "+16465550123", "", "hi"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 2));
    assert_false(f.r->sent[1].ok);
    assert_false(f.r->sent[1].permanent);

    /* Unsendable before the wire: reported permanently, nothing submitted. */
    int before = get_int(&f.s->mu, &f.s->nsub);
    assert_int_equal(submit(&f, "no-dst", "not a number", "", "hi"), 0);
    assert_int_equal(submit(&f, "long-from", "+16465550123", "ABCDEFGHIJKL", "hi"), 0);
    assert_int_equal(submit(&f, "empty", "+16465550123", "", ""), 0);
    assert_int_equal(submit(&f, "bad-utf8", "+16465550123", "", "\xC3("), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 6));
    for (int i = 2; i < 6; i++) {
        assert_false(f.r->sent[i].ok);
        assert_true(f.r->sent[i].permanent);
    }
    assert_int_equal(get_int(&f.s->mu, &f.s->nsub), before);
    /* A throttled SMSC pauses sending for a second; the next one still goes. */
    smsc_set(f.s, &f.s->submit_status, ESME_ROK);
    assert_int_equal(submit(&f, "after", "+16465550123", "", "hi"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 7));
    assert_true(f.r->sent[6].ok);
    fx_close(&f);
}

static void test_window(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "window=2");
    pthread_mutex_lock(&f.s->mu);
    f.s->hold = true;
    pthread_mutex_unlock(&f.s->mu);
    assert_int_equal(submit(&f, "a", "+16465550123", "", "one"), 0);
    assert_int_equal(submit(&f, "b", "+16465550123", "", "two"), 0);
    assert_false(cd_transport_smpp.ready(f.t));
    assert_int_equal(submit(&f, "c", "+16465550123", "", "three"), -1);
    assert_true(wait_ge(&f.s->mu, &f.s->nsub, 2));
    smsc_release(f.s);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 2));
    assert_true(cd_transport_smpp.ready(f.t));
    assert_int_equal(submit(&f, "c", "+16465550123", "", "three"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 3));
    fx_close(&f);
}

static void test_disconnect_and_reconnect(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    pthread_mutex_lock(&f.s->mu);
    f.s->hold = true;
    pthread_mutex_unlock(&f.s->mu);
    assert_int_equal(submit(&f, "lost", "+16465550123", "", "hi"), 0);
    assert_true(wait_ge(&f.s->mu, &f.s->nsub, 1));
    smsc_kick(f.s);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 1));
    assert_false(f.r->sent[0].ok);
    assert_false(f.r->sent[0].permanent);
    assert_string_equal(f.r->sent[0].error, "disconnected");
    assert_true(wait_ge(&f.r->mu, &f.r->down, 1));
    pthread_mutex_lock(&f.s->mu);
    f.s->hold = false;
    f.s->nheld = 0;
    pthread_mutex_unlock(&f.s->mu);
    assert_true(wait_ge(&f.r->mu, &f.r->up, 2)); /* back after the 0.2 s backoff */
    assert_int_equal(get_int(&f.s->mu, &f.s->nbinds), 2);
    assert_int_equal(submit(&f, "again", "+16465550123", "", "hi"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 2));
    assert_true(f.r->sent[1].ok);
    fx_close(&f);
}

/* An MO is answered only once the outbox says it is stored (ack), never before: a crash in
 * between must make the SMSC deliver it again. */
static void test_mo_answered_after_ack(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    pthread_mutex_lock(&f.r->mu);
    f.r->hold = true;
    pthread_mutex_unlock(&f.r->mu);
    smsc_deliver(f.s, "+4915112345678", "12345", 0, 0, "STOP", 4, NULL);
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 1));
    usleep(200 * 1000);
    assert_int_equal(get_int(&f.s->mu, &f.s->ndresp), 0);
    pthread_mutex_lock(&f.r->mu);
    uint64_t ack = f.r->held[0];
    pthread_mutex_unlock(&f.r->mu);
    assert_true(ack != 0);
    cd_transport_smpp.ack(f.t, ack, false, false); /* "not stored yet": a temporary error */
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 1));
    pthread_mutex_lock(&f.s->mu);
    assert_int_equal(f.s->dresp_status[0], ESME_RX_T_APPN);
    pthread_mutex_unlock(&f.s->mu);
    fx_close(&f);
}

/* issue 8 item 13: "every part of a long MO is acknowledged only after it is stored": no
 * part of a concatenated MO is answered on arrival; all are answered by the one ack() the
 * outbox gives once the reassembled message is stored, and a crash before that makes the
 * SMSC deliver every part again. */
static void test_long_mo_answered_after_store(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    pthread_mutex_lock(&f.r->mu);
    f.r->hold = true;
    pthread_mutex_unlock(&f.r->mu);
    smsc_deliver(f.s, "+4915112345678", "12345", 0x40, 0, "\x05\x00\x03\x09\x02\x01hello", 11,
                 NULL);
    usleep(200 * 1000);
    assert_int_equal(get_int(&f.s->mu, &f.s->ndresp), 0); /* part 1: not answered yet */
    smsc_deliver(f.s, "+4915112345678", "12345", 0x40, 0, "\x05\x00\x03\x09\x02\x02 world", 12,
                 NULL);
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 1));
    usleep(200 * 1000);
    assert_int_equal(get_int(&f.s->mu, &f.s->ndresp), 0); /* not before it is stored */
    pthread_mutex_lock(&f.r->mu);
    assert_string_equal(f.r->in[0].text, "hello world");
    uint64_t ack = f.r->held[0];
    pthread_mutex_unlock(&f.r->mu);
    assert_true(ack != 0);
    cd_transport_smpp.ack(f.t, ack, true, false); /* "stored" */
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 2));
    pthread_mutex_lock(&f.s->mu);
    assert_int_equal(f.s->ndresp, 2);
    assert_int_equal(f.s->dresp_status[0], ESME_ROK);
    assert_int_equal(f.s->dresp_status[1], ESME_ROK);
    pthread_mutex_unlock(&f.s->mu);
    fx_close(&f);
}

static void test_mo_messages(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    smsc_deliver(f.s, "+4915112345678", "12345", 0, 0, "STOP", 4, NULL);
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 1));
    assert_string_equal(f.r->in[0].from, "+4915112345678");
    assert_string_equal(f.r->in[0].to, "12345");
    assert_string_equal(f.r->in[0].text, "STOP");
    assert_non_null(strstr(f.r->in[0].pid, "smpp:"));

    smsc_deliver(f.s, "+4915112345678", "12345", 0, 8, "\x04\x14\x04\x30", 4, NULL);
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 2));
    assert_string_equal(f.r->in[1].text, "\xD0\x94\xD0\xB0");
    assert_string_not_equal(f.r->in[1].pid, f.r->in[0].pid);

    /* Two UDH parts, the second first: one inbound message, in order. */
    smsc_deliver(f.s, "+4915112345678", "12345", 0x40, 0, "\x05\x00\x03\x07\x02\x02 world", 12,
                 NULL);
    smsc_deliver(f.s, "+4915112345678", "12345", 0x40, 0, "\x05\x00\x03\x07\x02\x01hello", 11,
                 NULL);
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 3));
    assert_string_equal(f.r->in[2].text, "hello world");
    /* SAR TLVs instead of a UDH. */
    tlv_t ref = {.tag = TLVID_sar_msg_ref_num, .length = 2, .value.val16 = 300};
    tlv_t tot = {.tag = TLVID_sar_total_segments, .length = 1, .value.val08 = 2};
    tlv_t idx1 = {.tag = TLVID_sar_segment_seqnum, .length = 1, .value.val08 = 1};
    tlv_t idx2 = idx1;
    idx2.value.val08 = 2;
    ref.next = &tot;
    tot.next = &idx1;
    smsc_deliver(f.s, "+4915112345678", "12345", 0, 0, "ab", 2, &ref);
    tot.next = &idx2;
    smsc_deliver(f.s, "+4915112345678", "12345", 0, 0, "cd", 2, &ref);
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 4));
    assert_string_equal(f.r->in[3].text, "abcd");
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 6));
    for (int i = 0; i < 6; i++)
        assert_int_equal(f.s->dresp_status[i], ESME_ROK);
    fx_close(&f);
}

/* At most 64 messages wait for their missing parts; the 65th pushes the oldest out, which is
 * delivered with what it has rather than lost. */
static void test_reassembly_bounded(void **state)
{
    (void)state;
    fixture f;
    unsigned char sm[16] = {5, 0x00, 3, 0, 2, 1};
    fx_open(&f, "");
    for (int ref = 0; ref < 65; ref++) {
        sm[3] = (unsigned char)ref;
        int n = 6 + snprintf((char *)sm + 6, sizeof sm - 6, "p%d", ref);
        smsc_deliver(f.s, "+4915112345678", "12345", 0x40, 0, sm, (size_t)n, NULL);
    }
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 1));
    assert_string_equal(f.r->in[0].text, "p0");
    sm[3] = 1, sm[5] = 2;
    memcpy(sm + 6, "+q", 2);
    smsc_deliver(f.s, "+4915112345678", "12345", 0x40, 0, sm, 8, NULL);
    assert_true(wait_ge(&f.r->mu, &f.r->nin, 2));
    assert_string_equal(f.r->in[1].text, "p1+q");
    /* issue 8 item 13: only the parts of the two stored messages are answered (p0's one part,
     * p1's two); the 63 others wait for their missing parts or their expiry. */
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 3));
    usleep(200 * 1000);
    assert_int_equal(get_int(&f.s->mu, &f.s->ndresp), 3);
    fx_close(&f);
}

static void test_receipts(void **state)
{
    (void)state;
    fixture f;
    const char *text = "id:id-9 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
                       "stat:DELIVRD err:000 text:hello";
    fx_open(&f, "");
    smsc_deliver(f.s, "+16465550123", "Acme", 0x04, 0, text, strlen(text), NULL);
    assert_true(wait_ge(&f.r->mu, &f.r->nrc, 1));
    assert_string_equal(f.r->rc[0].id, "id-9");
    assert_string_equal(f.r->rc[0].status, "delivered");
    assert_string_equal(f.r->rc[0].detail, "stat:DELIVRD err:000");

    /* The TLVs win over the text. */
    tlv_t rid = {.tag = TLVID_receipted_message_id, .length = 6};
    tlv_t st = {.tag = TLVID_message_state, .length = 1, .value.val08 = 5};
    memcpy(rid.value.octet, "id-10", 6);
    rid.next = &st;
    const char *t2 = "id:other stat:UNDELIV err:001";
    smsc_deliver(f.s, "+16465550123", "Acme", 0x04, 0, t2, strlen(t2), &rid);
    assert_true(wait_ge(&f.r->mu, &f.r->nrc, 2));
    assert_string_equal(f.r->rc[1].id, "id-10");
    assert_string_equal(f.r->rc[1].status, "failed");

    const char *t3 = "id:x1 stat:EXPIRED err:000";
    smsc_deliver(f.s, "+16465550123", "Acme", 0x04, 0, t3, strlen(t3), NULL);
    const char *t4 = "id:x2 stat:REJECTD err:000";
    smsc_deliver(f.s, "+16465550123", "Acme", 0x04, 0, t4, strlen(t4), NULL);
    const char *t5 = "id:x3 stat:ENROUTE";
    smsc_deliver(f.s, "+16465550123", "Acme", 0x04, 0, t5, strlen(t5), NULL);
    /* No id anywhere: answered with an error, no callback. */
    smsc_deliver(f.s, "+16465550123", "Acme", 0x04, 0, "stat:DELIVRD", 12, NULL);
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 6));
    assert_int_equal(get_int(&f.r->mu, &f.r->nrc), 5);
    assert_string_equal(f.r->rc[2].status, "expired");
    assert_string_equal(f.r->rc[3].status, "rejected");
    assert_string_equal(f.r->rc[4].status, "unknown");
    /* Receipts are answered once acked (after they are stored), the refused one at once: the
     * answers may come in any order (SMPP matches them by sequence), but exactly one of the
     * six is the refusal. */
    int refused = 0;
    pthread_mutex_lock(&f.s->mu);
    for (int i = 0; i < 6; i++) {
        if (f.s->dresp_status[i] == ESME_RX_P_APPN)
            refused++;
        else
            assert_int_equal(f.s->dresp_status[i], ESME_ROK);
    }
    pthread_mutex_unlock(&f.s->mu);
    assert_int_equal(refused, 1);
    fx_close(&f);
}

/* A deliver_sm with the right framing but a body libsmpp34 rejects. */
static void send_broken_deliver(smsc *s, bool truncated_tlv)
{
    unsigned char buf[512];
    size_t n;
    deliver_sm_t d;
    memset(&d, 0, sizeof d);
    d.command_id = DELIVER_SM;
    pthread_mutex_lock(&s->mu);
    d.sequence_number = ++s->seq;
    snprintf((char *)d.source_addr, sizeof d.source_addr, "123");
    d.sm_length = 2;
    memcpy(d.short_message, "hi", 2);
    assert_int_equal(cd_smpp_pack(DELIVER_SM, &d, buf, sizeof buf, &n), 0);
    if (truncated_tlv) { /* a message_payload TLV claiming 50 bytes, carrying 2 */
        memcpy(buf + n,
               "\x04\x24\x00\x32"
               "ab",
               6);
        n += 6;
    } else { /* cut inside the fixed fields: the addresses run off the end */
        n = 16 + 5;
    }
    buf[0] = (unsigned char)(n >> 24), buf[1] = (unsigned char)(n >> 16);
    buf[2] = (unsigned char)(n >> 8), buf[3] = (unsigned char)n;
    smsc_write_locked(s, buf, n);
    pthread_mutex_unlock(&s->mu);
}

static void test_garbage_from_smsc(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    /* An unknown command: generic_nack with ESME_RINVCMDID. */
    const unsigned char unknown[16] = {0, 0, 0, 16, 0, 0, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 9};
    smsc_write(f.s, unknown, sizeof unknown);
    assert_true(wait_ge(&f.s->mu, &f.s->nnack, 1));
    assert_int_equal(f.s->nack_status[0], ESME_RINVCMDID);
    /* Undecodable deliver_sm: answered with an error, connection kept. */
    send_broken_deliver(f.s, false);
    send_broken_deliver(f.s, true);
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 2));
    assert_int_equal(f.s->dresp_status[0], ESME_RX_P_APPN);
    assert_int_equal(f.s->dresp_status[1], ESME_RX_P_APPN);
    /* A broken UDH (length past the message) likewise. */
    smsc_deliver(f.s, "+1555", "1", 0x40, 0, "\x09\x00\x03", 3, NULL);
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 3));
    assert_int_equal(f.s->dresp_status[2], ESME_RX_P_APPN);
    /* A binary MO (data_coding 4) is refused, not turned into text. */
    smsc_deliver(f.s, "+1555", "1", 0, 4, "\x01\x02", 2, NULL);
    assert_true(wait_ge(&f.s->mu, &f.s->ndresp, 4));
    assert_int_equal(f.s->dresp_status[3], ESME_RX_P_APPN);
    /* A stray response and an enquire_link from the SMSC. */
    const unsigned char stray[16] = {0, 0, 0, 16, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x30, 0x39};
    smsc_write(f.s, stray, sizeof stray);
    pthread_mutex_lock(&f.s->mu);
    smsc_header_locked(f.s, ENQUIRE_LINK, ESME_ROK, 77);
    pthread_mutex_unlock(&f.s->mu);
    assert_true(wait_ge(&f.s->mu, &f.s->nenq_resp, 1));
    assert_int_equal(get_int(&f.r->mu, &f.r->down), 0);
    assert_int_equal(get_int(&f.r->mu, &f.r->nin), 0);
    /* A command_length below 16: the stream is lost, so reconnect. */
    const unsigned char tiny[8] = {0, 0, 0, 8, 0, 0, 0, 5};
    smsc_write(f.s, tiny, sizeof tiny);
    assert_true(wait_ge(&f.r->mu, &f.r->down, 1));
    assert_true(wait_ge(&f.r->mu, &f.r->up, 2));
    /* And one past 64 KiB. */
    const unsigned char huge[16] = {0, 1, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1};
    smsc_write(f.s, huge, sizeof huge);
    assert_true(wait_ge(&f.r->mu, &f.r->down, 2));
    assert_true(wait_ge(&f.r->mu, &f.r->up, 3));
    assert_int_equal(submit(&f, "still", "+16465550123", "", "works"), 0);
    assert_true(wait_ge(&f.r->mu, &f.r->nsent, 1));
    assert_true(f.r->sent[0].ok);
    fx_close(&f);
}

static void test_unbind_from_smsc(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    pthread_mutex_lock(&f.s->mu);
    smsc_header_locked(f.s, UNBIND, ESME_ROK, 5);
    pthread_mutex_unlock(&f.s->mu);
    assert_true(wait_ge(&f.s->mu, &f.s->nunbind_resp, 1));
    assert_true(wait_ge(&f.r->mu, &f.r->down, 1));
    assert_true(wait_ge(&f.r->mu, &f.r->up, 2));
    fx_close(&f);
}

static void test_enquire_link(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "enquire_link=1");
    assert_true(wait_ge(&f.s->mu, &f.s->nenq, 2));
    assert_int_equal(get_int(&f.r->mu, &f.r->down), 0);
    fx_close(&f);
}

static void test_bind_refused_then_accepted(void **state)
{
    (void)state;
    char url[128];
    cd_err err = {0};
    smsc *s = smsc_start();
    rec *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    smsc_set(s, &s->bind_status, ESME_RINVPASWD);
    cd_transport_events ev = {.arg = r, .sent = on_sent, .link = on_link};
    snprintf(url, sizeof url, "smpp://a:b@127.0.0.1:%d", s->port);
    cd_transport *t = cd_transport_smpp.open(url, &ev, &err);
    assert_non_null(t);
    assert_true(wait_ge(&s->mu, &s->nconn, 2)); /* refused, and tried again */
    assert_false(cd_transport_smpp.ready(t));
    cd_sms m = {.id = "x", .to = "+16465550123", .from = "", .text = "hi"};
    assert_int_equal(cd_transport_smpp.submit(t, &m), -1);
    smsc_set(s, &s->bind_status, ESME_ROK);
    assert_true(wait_ge(&r->mu, &r->up, 1));
    assert_int_equal(get_int(&r->mu, &r->down), 0); /* never up before: no down either */
    cd_transport_smpp.close(t);
    smsc_stop(s);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void test_close_with_outstanding(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "");
    pthread_mutex_lock(&f.s->mu);
    f.s->hold = true;
    pthread_mutex_unlock(&f.s->mu);
    assert_int_equal(submit(&f, "a", "+16465550123", "", "hi"), 0);
    assert_true(wait_ge(&f.s->mu, &f.s->nsub, 1));
    char text[400];
    memset(text, 'y', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    assert_int_equal(submit(&f, "b", "+16465550123", "", text), 0);
    cd_transport_smpp.close(f.t);
    f.t = NULL;
    assert_int_equal(get_int(&f.r->mu, &f.r->nsent), 0); /* close() promises no sent() */
    fx_close(&f);
}

static void test_no_smsc(void **state)
{
    (void)state;
    cd_err err = {0};
    cd_transport_events ev = {0};
    /* Port 1 on loopback refuses: open() still succeeds and keeps trying quietly. */
    cd_transport *t = cd_transport_smpp.open("smpp://a:b@127.0.0.1:1", &ev, &err);
    assert_non_null(t);
    usleep(300 * 1000);
    assert_false(cd_transport_smpp.ready(t));
    cd_transport_smpp.close(t);
    cd_transport_smpp.close(NULL);
}

static void test_bad_urls(void **state)
{
    (void)state;
    static const char *bad[] = {
        "http://a:b@h:1",
        "smpp://h:2775",                /* no credentials */
        "smpp://:pw@h:2775",            /* empty system_id */
        "smpp://abcdefghijklmnop:pw@h", /* system_id of 16 */
        "smpp://a:123456789@h",         /* password of 9 */
        "smpp://a:b@h:0",
        "smpp://a:b@h:99999",
        "smpp://a:b@h:12x",
        "smpp://a:b@:2775",
        "smpp://a:b@[::1:2775",
        "smpp://a:b@h?window=0",
        "smpp://a:b@h?window=1001",
        "smpp://a:b@h?enquire_link=-1",
        "smpp://a:b@h?system_type=abcdefghijklm",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cd_err err = {0};
        cd_transport_events ev = {0};
        assert_null(cd_transport_smpp.open(bad[i], &ev, &err));
        assert_int_equal(err.code, CD_EINVAL);
    }
    cd_err err = {0};
    cd_transport_events ev = {0};
    cd_transport *t =
        cd_transport_smpp.open("smpp://a%3A:p%40ss@[::1]:1?window=3&unknown=1", &ev, &err);
    assert_non_null(t);
    cd_transport_smpp.close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_and_submit),
        cmocka_unit_test(test_default_sender_from_url),
        cmocka_unit_test(test_long_message),
        cmocka_unit_test(test_submit_errors),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_disconnect_and_reconnect),
        cmocka_unit_test(test_mo_messages),
        cmocka_unit_test(test_reassembly_bounded),
        cmocka_unit_test(test_receipts),
        cmocka_unit_test(test_mo_answered_after_ack),
        cmocka_unit_test(test_long_mo_answered_after_store),
        cmocka_unit_test(test_garbage_from_smsc),
        cmocka_unit_test(test_unbind_from_smsc),
        cmocka_unit_test(test_enquire_link),
        cmocka_unit_test(test_bind_refused_then_accepted),
        cmocka_unit_test(test_close_with_outstanding),
        cmocka_unit_test(test_no_smsc),
        cmocka_unit_test(test_bad_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
