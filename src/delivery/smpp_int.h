/* delivery/smpp_int.h -- what the files of the SMPP transport share, and nobody else.
 *
 *   smpp.c      the connection, the submit_sm window, the I/O thread and the ops table;
 *   smpp_pdu.c  libsmpp34 behind one lock, and the PDUs we build and queue;
 *   smpp_url.c  the smpp:// URL and SMPP addresses (TON/NPI both ways);
 *   smpp_mo.c   inbound deliver_sm: delivery receipts, and MO messages reassembled from parts.
 *
 * Symbols shared between these files are named cd_smpp__x. Unless a comment says otherwise,
 * everything here is for the I/O thread only. */
#ifndef CD_DELIVERY_SMPP_INT_H
#define CD_DELIVERY_SMPP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libsmpp34's headers need the fixed-width types first; smpp34_structs.h defines and then
 * undefines its field macros, so it must come after smpp34.h. */
#include <smpp34.h>
#include <smpp34_structs.h>

#include "util/gsm.h"
#include "delivery/smpp.h"
#include "util/buf.h"
#include "util/err.h"

#define FRAG_TIMEOUT_MS 60000
#define MAX_FRAGS       64   /* inbound messages being reassembled at once */
#define PDU_BUF         2048 /* larger than any PDU we build */
#define ADDR_LEN        21   /* SMPP address fields, NUL included */

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

/* smpp.c */
int64_t cd_smpp__now_ms(void); /* the monotonic clock, in ms */
/* Logs `what` with the SMSC's address and a free-text detail (may be NULL). */
void cd_smpp__log(const cd_transport *t, const char *level, const char *what, const char *detail);

/* smpp_pdu.c: building PDUs and queueing them on t->c.out for flush() to write. */
/* Packs pdu (a libsmpp34 struct of type cmd) onto the output buffer; -1, logged, when
 * libsmpp34 refuses it. */
int cd_smpp__queue_pdu(cd_transport *t, uint32_t cmd, void *pdu);
/* The PDUs that are a bare header: enquire_link(_resp), unbind(_resp), generic_nack.
 * Sequence 0 queues nothing. */
void cd_smpp__queue_header(cd_transport *t, uint32_t cmd, uint32_t status, uint32_t seq);
/* A deliver_sm_resp with `status` for the deliver_sm numbered seq. */
void cd_smpp__queue_deliver_resp(cd_transport *t, uint32_t status, uint32_t seq);
/* Fills *b with our bind_transceiver, numbered seq. */
void cd_smpp__bind_pdu(const cd_transport *t, uint32_t seq, bind_transceiver_t *b);
/* Fills *s with the submit_sm for part i of x, numbered seq. */
void cd_smpp__submit_pdu(const msg *x, int i, uint32_t seq, submit_sm_t *s);

/* smpp_url.c */
/* Parses `url` (see delivery/smpp.h) into t's configuration fields; -1 with *err. */
int cd_smpp__parse_url(cd_transport *t, const char *url, cd_err *err);
/* TON/NPI and digits for an address of ours ("+E.164", a short code, a sender name);
 * -1 when it cannot be sent. `dest`: a destination, which must be a number. */
int cd_smpp__parse_addr(const char *in, bool dest, addr *a);
/* An SMPP address as we show it: E.164 numbers (TON 1) get their '+' back. */
void cd_smpp__show_addr(uint8_t ton, const uint8_t *raw, char out[ADDR_LEN + 1]);

/* smpp_mo.c */
/* Handles one deliver_sm (the whole PDU p[len], numbered seq) and answers it, now or,
 * once the outbox has stored what it carried, through ack(). */
void cd_smpp__on_deliver(cd_transport *t, const unsigned char *p, size_t len, uint32_t seq);
/* Delivers, as they are, the messages whose parts have waited FRAG_TIMEOUT_MS. */
void cd_smpp__frags_expire(cd_transport *t, int64_t now);
void cd_smpp__frag_free(frag *f);
/* Answers every deliver_sm of group `id` with status, and forgets the group. */
void cd_smpp__group_answer(cd_transport *t, uint32_t id, uint32_t status);

#endif
