/* delivery/outbox.h -- the delivery worker: takes queued messages out of the store,
 * submits them through their transport, and writes back what the transports report
 * (sent with ids, retry with backoff, failed, delivery receipts) together with inbound
 * messages, which go through the keyword engine. Also expires stale double opt-ins.
 *
 * Guarantees: a message is marked 'sending' before it is submitted and 'sent' together
 * with the transport's ids, in one commit, once the transport has accepted it. After a
 * crash, 'sending' messages are queued again: each message is sent at least once, and one
 * recorded as sent is never submitted again. */
#ifndef CD_DELIVERY_OUTBOX_H
#define CD_DELIVERY_OUTBOX_H

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

typedef struct cd_outbox cd_outbox;

typedef struct cd_outbox_config {
    const char *default_transport; /* for messages whose account names none: "sink" */
    const char *smpp_url;          /* NULL: no SMPP transport */
    const char *http_url;          /* NULL: no HTTP transport */
    int max_attempts;              /* before a message fails; 0 = 8 */
} cd_outbox_config;

/* Starts the worker thread and the configured transports. The store is borrowed and
 * must outlive the outbox. */
cd_outbox *cd_outbox_start(cd_store *store, const cd_outbox_config *cfg, cd_err *err);
/* Appends the Prometheus text of the worker's counters (submitted, sent, retried, failed,
 * receipts, inbound, messages waiting for a transport). Any thread. */
void cd_outbox_metrics(cd_outbox *o, cd_buf *out);

/* Something may have been queued: look now rather than at the next poll. Any thread. */
void cd_outbox_kick(cd_outbox *o);
/* Stops the worker thread and closes the transports; kicks are still safe afterwards.
 * Idempotent; NULL is a no-op. */
void cd_outbox_halt(cd_outbox *o);
/* Halts if needed and frees everything. NULL is a no-op. */
void cd_outbox_stop(cd_outbox *o);

#endif
