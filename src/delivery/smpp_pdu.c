/* delivery/smpp_pdu.c -- the bytes of SMPP: libsmpp34 behind one lock (cd_smpp_pack and
 * cd_smpp_unpack, declared in delivery/smpp.h), and the PDUs the transport builds and queues
 * for the I/O thread to write. */
#include "delivery/smpp_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smpp34_heap.h>

#include "util/xalloc.h"

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
/* The PDUs we send                                                                      */

int cd_smpp__queue_pdu(cd_transport *t, uint32_t cmd, void *pdu)
{
    unsigned char buf[PDU_BUF];
    size_t n;
    if (cd_smpp_pack(cmd, pdu, buf, sizeof buf, &n) != 0) {
        char why[64];
        snprintf(why, sizeof why, "command 0x%08X", cmd);
        cd_smpp__log(t, "error", "smpp: libsmpp34 could not pack a PDU", why);
        return -1;
    }
    cd_buf_append(&t->c.out, buf, n);
    return 0;
}

void cd_smpp__queue_header(cd_transport *t, uint32_t cmd, uint32_t status, uint32_t seq)
{
    generic_nack_t h;
    if (seq == 0)
        return; /* libsmpp34 refuses sequence 0, and a nack for it would help nobody */
    memset(&h, 0, sizeof h);
    h.command_id = cmd;
    h.command_status = status;
    h.sequence_number = seq;
    (void)cd_smpp__queue_pdu(t, cmd, &h);
}

void cd_smpp__queue_deliver_resp(cd_transport *t, uint32_t status, uint32_t seq)
{
    deliver_sm_resp_t r;
    memset(&r, 0, sizeof r);
    r.command_id = DELIVER_SM_RESP;
    r.command_status = status;
    r.sequence_number = seq;
    (void)cd_smpp__queue_pdu(t, DELIVER_SM_RESP, &r);
}

void cd_smpp__bind_pdu(const cd_transport *t, uint32_t seq, bind_transceiver_t *b)
{
    memset(b, 0, sizeof *b);
    b->command_id = BIND_TRANSCEIVER;
    b->sequence_number = seq;
    snprintf((char *)b->system_id, sizeof b->system_id, "%s", t->system_id);
    snprintf((char *)b->password, sizeof b->password, "%s", t->password);
    snprintf((char *)b->system_type, sizeof b->system_type, "%s", t->system_type);
    b->interface_version = SMPP_VERSION;
}

/* Every part asks for a delivery receipt; the parts of a long text carry a UDH. */
void cd_smpp__submit_pdu(const msg *x, int i, uint32_t seq, submit_sm_t *s)
{
    const cd_gsm_part *p = &x->enc.parts[i];
    size_t n = 0;

    memset(s, 0, sizeof *s);
    s->command_id = SUBMIT_SM;
    s->sequence_number = seq;
    s->source_addr_ton = x->src.ton;
    s->source_addr_npi = x->src.npi;
    memcpy(s->source_addr, x->src.s, sizeof x->src.s);
    s->dest_addr_ton = x->dst.ton;
    s->dest_addr_npi = x->dst.npi;
    memcpy(s->destination_addr, x->dst.s, sizeof x->dst.s);
    s->registered_delivery = SMPP34_DELIVERY_RECEIPT_ON;
    s->data_coding = (uint8_t)x->enc.coding;
    if (x->enc.nparts > 1) {
        /* UDH: IE 0x00 (concatenation, 8-bit reference), length 3: ref, total, index. */
        const uint8_t udh[6] = {5, 0x00, 3, x->ref, (uint8_t)x->enc.nparts, (uint8_t)(i + 1)};
        s->esm_class = SMPP34_UDHI_IND;
        memcpy(s->short_message, udh, sizeof udh);
        n = sizeof udh;
    }
    /* gsm.c caps a part at 160 septets or 140 octets, far below libsmpp34's 253. */
    memcpy(s->short_message + n, p->data, p->len);
    s->sm_length = (uint8_t)(n + p->len);
}
