/* delivery/transport.h -- how an SMS leaves (and arrives): one interface, several
 * transports (sink, smpp, http), each a const struct cd_transport_ops filled with
 * designated initializers.
 *
 * Threads: submit() is called by the outbox worker thread. Every callback in
 * cd_transport_events may run on the transport's own thread; callbacks must be quick and
 * must not call back into the transport. Strings passed to callbacks are borrowed for the
 * duration of the call. */
#ifndef CD_DELIVERY_TRANSPORT_H
#define CD_DELIVERY_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

typedef struct cd_transport cd_transport; /* each transport's own struct */

/* One outbound message, borrowed for the duration of submit(). */
typedef struct cd_sms {
    const char *id;   /* our message id: comes back in sent() */
    const char *to;   /* E.164, "+16465550123" */
    const char *from; /* E.164 or short code; "" = the transport's default */
    const char *text; /* UTF-8, already checked to fit in the part limit */
} cd_sms;

typedef struct cd_transport_events {
    void *arg;
    /* The remote end answered a submit: ok with its id for the message (for several parts,
     * the parts' ids joined with ','), or !ok with an error; `permanent` when a retry
     * cannot help (invalid destination, message rejected). Exactly once per accepted
     * submit(), unless the transport is closed first. */
    void (*sent)(void *arg, const char *msg_id, bool ok, const char *remote_id, bool permanent,
                 const char *error);
    /* A mobile-originated message (SMPP deliver_sm that is not a receipt). `ack`, when not
     * 0, must be handed back to ack() once the message is durably stored: the transport
     * tells the remote end only then, so a crash in between makes it deliver again. */
    void (*inbound)(void *arg, const char *from, const char *to, const char *text,
                    const char *provider_id, uint64_t ack);
    /* A delivery receipt for a part whose id sent() reported: status is "delivered",
     * "failed", "expired", "rejected" or "unknown"; detail is the raw stat/err text.
     * `ack` as for inbound(). */
    void (*receipt)(void *arg, const char *remote_id, const char *status, const char *detail,
                    uint64_t ack);
    /* The connection went up or down (for logs and metrics). */
    void (*link)(void *arg, bool up, const char *detail);
} cd_transport_events;

struct cd_transport_ops {
    const char *name; /* "sink", "smpp", "http" */
    /* url: "sink:", "smpp://SYSTEM_ID:PASSWORD@HOST:PORT?window=10&enquire_link=30",
     * "http://host/path". Returns NULL with *err filled. The transport starts its own
     * thread(s) if it needs them and connects in the background (reconnecting with
     * backoff), so open() never waits for the network. `events` is copied. */
    cd_transport *(*open)(const char *url, const cd_transport_events *events, cd_err *err);
    /* Accepts m for sending: 0 = taken (sent() will follow), -1 = not now (disconnected or
     * the window of outstanding requests is full); the caller keeps it and retries later. */
    int (*submit)(cd_transport *t, const cd_sms *m);
    /* Answers an inbound() or receipt() once its fate is known: ok (stored, or nothing to
     * store), or not ok, `permanent` when a redelivery cannot help. An ack whose connection
     * has gone is dropped: the remote end delivers again. Any thread, callbacks included.
     * NULL for transports that never ask for acks. */
    void (*ack)(cd_transport *t, uint64_t ack, bool ok, bool permanent);
    /* True while submit() may succeed. */
    bool (*ready)(cd_transport *t);
    /* True while the link is up, even with a full window: the outbox keeps a bounded number
     * of claimed messages waiting for such a link, so that the window never waits for a
     * claim's commit. NULL: the same as ready(). */
    bool (*linked)(cd_transport *t);
    /* Stops threads and frees everything; outstanding submits get no sent() callback.
     * NULL is a no-op. */
    void (*close)(cd_transport *t);
};

extern const struct cd_transport_ops cd_transport_sink;
extern const struct cd_transport_ops cd_transport_smpp;
extern const struct cd_transport_ops cd_transport_http;

#endif
