/* delivery/smpp_mo.c -- what the SMSC sends us in deliver_sm: delivery receipts, and mobile-
 * originated messages, reassembled when they come in parts (UDH or SAR). Every deliver_sm is
 * answered: at once when there is nothing to store, or through ack() once the outbox has
 * stored it, so a crash in between makes the SMSC deliver it again. */
#include "delivery/smpp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xalloc.h"

/* ------------------------------------------------------------------------------------ */
/* The payload and receipts                                                             */

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

/* ------------------------------------------------------------------------------------ */
/* Reassembly of long messages                                                          */

typedef struct concat {
    unsigned ref;
    int total, index; /* index is 1-based; total 0 = not concatenated */
} concat;

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
        cd_smpp__log(t, "warn", "smpp: inbound message is not text; refused", why);
        return -1;
    }
    if (t->ev.inbound != NULL)
        t->ev.inbound(t->ev.arg, from, to, text, pid, ack);
    free(text);
    return 0;
}

/* Answers every deliver_sm of a group that belongs to the current connection (older ones
 * are redelivered by the SMSC anyway) and forgets the group. */
void cd_smpp__group_answer(cd_transport *t, uint32_t id, uint32_t status)
{
    conn *c = &t->c;
    for (int g = 0; g < c->ngroups; g++) {
        if (c->groups[g].id != id)
            continue;
        for (int i = 0; i < c->groups[g].nacks; i++) {
            uint64_t a = c->groups[g].acks[i];
            if (c->st != ST_BOUND || (uint32_t)(a >> 32) != c->gen)
                continue;
            cd_smpp__queue_deliver_resp(t, status, (uint32_t)a);
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

void cd_smpp__frag_free(frag *f)
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
        cd_smpp__log(t, "warn", "smpp: incomplete concatenated message delivered as it is",
                     f->from);
    uint64_t group = group_new(t, f);
    int rc = deliver_text(t, f->from, f->to, (const unsigned char *)(b.data ? b.data : ""), b.len,
                          f->coding, f->pid, group);
    if (group != 0 && (rc != 0 || t->ev.inbound == NULL))
        cd_smpp__group_answer(t, (uint32_t)group, rc == 0 ? ESME_ROK : ESME_RX_P_APPN);
    cd_buf_free(&b);
    cd_smpp__frag_free(f);
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
    f->first_ms = cd_smpp__now_ms();
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

void cd_smpp__frags_expire(cd_transport *t, int64_t now)
{
    conn *c = &t->c;
    while (c->nfrags > 0 && now - c->frags[0]->first_ms >= FRAG_TIMEOUT_MS)
        (void)frag_emit(t, 0); /* oldest first: frags[] is in arrival order */
}

/* ------------------------------------------------------------------------------------ */
/* deliver_sm                                                                           */

static int on_mo(cd_transport *t, const deliver_sm_t *d, uint32_t seq)
{
    const unsigned char *data;
    size_t n;
    char from[ADDR_LEN + 1], to[ADDR_LEN + 1], pid[64];
    concat ci = {0};

    payload(d, &data, &n);
    cd_smpp__show_addr(d->source_addr_ton, d->source_addr, from);
    cd_smpp__show_addr(d->dest_addr_ton, d->destination_addr, to);
    snprintf(pid, sizeof pid, "smpp:%lld:%u", (long long)t->c.bound_wall_ms, seq);
    if (d->esm_class & SMPP34_UDHI_IND) {
        if (parse_udh(&data, &n, &ci) != 0) {
            cd_smpp__log(t, "warn", "smpp: deliver_sm with a broken UDH refused", from);
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

void cd_smpp__on_deliver(cd_transport *t, const unsigned char *p, size_t len, uint32_t seq)
{
    deliver_sm_t d;
    int rc = -1;

    memset(&d, 0, sizeof d);
    t->c.cur_ack = seq ? (uint64_t)t->c.gen << 32 | seq : 0;
    t->c.deferred = false;
    if (cd_smpp_unpack(DELIVER_SM, &d, p, len) != 0)
        cd_smpp__log(t, "warn", "smpp: undecodable deliver_sm refused", NULL);
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
    cd_smpp__queue_deliver_resp(t, rc == 0 ? ESME_ROK : ESME_RX_P_APPN, seq);
}
