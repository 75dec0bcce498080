/* delivery/webhook.h -- webhook delivery (issue 15): the handler of the job queue's
 * "webhook" kind (core/events.h queues the jobs). Each attempt POSTs the stored event to its
 * endpoint from one libcurl multi loop on a thread of its own, signed with the endpoint's
 * secret:
 *   Consentd-Event-Id: <event id>
 *   Consentd-Timestamp: <unix seconds>
 *   Consentd-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 * A 2xx within the timeout is success; anything else is retried on the schedule (after 3
 * failed attempts on url, on url2 when the endpoint has one) and is a dead letter when the
 * schedule is spent. Redirects are not followed, answers are read up to a cap, and unless
 * private webhooks are allowed no connection is opened to a loopback, private, link-local
 * or metadata address, whatever the name resolved to (checked when the socket opens). */
#ifndef CD_DELIVERY_WEBHOOK_H
#define CD_DELIVERY_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "delivery/jobs.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define CD_WEBHOOK_FAILOVER_AFTER 3     /* failed attempts on url before url2 */
#define CD_WEBHOOK_TIMEOUT_MS     5000  /* an answer later than this is a failure */
#define CD_WEBHOOK_ANSWER_CAP     65536 /* bytes of an answer read; the rest is dropped */
#define CD_WEBHOOK_URL_MAX        500

typedef struct cd_webhook cd_webhook;

typedef struct cd_webhook_config {
    const long long *schedule_ms; /* delays between attempts (cd_config's); copied */
    int nschedule;
    bool allow_private; /* the operator's --allow-private-webhooks */
    int timeout_ms;     /* 0 = CD_WEBHOOK_TIMEOUT_MS */
    int max_inflight;   /* attempts at once; 0 = 512 */
} cd_webhook_config;

/* Starts the delivery thread and registers the "webhook" kind with `jobs` (before
 * cd_jobs_start). The store is borrowed and must outlive it. */
cd_webhook *cd_webhook_start(cd_store *store, cd_jobs *jobs, const cd_webhook_config *cfg,
                             cd_err *err);
/* Call after cd_jobs_halt and before cd_jobs_stop: ends the transfers still running (their
 * attempt is recorded as failed for now, "shutting down") and joins the thread. NULL is a
 * no-op. */
void cd_webhook_stop(cd_webhook *w);
/* Prometheus counters: attempts answered 2xx, failed, refused private addresses. */
void cd_webhook_metrics(cd_webhook *w, cd_buf *out);

/* An endpoint URL as it is set: http or https, a host, at most CD_WEBHOOK_URL_MAX bytes;
 * unless allow_private, a host that resolves to no private address (a literal, or a name
 * such as localhost). CD_EINVAL with reason "invalid_url" or "private_address", field
 * `field`. */
int cd_webhook_check_url(const char *url, bool allow_private, const char *field, cd_err *err);
/* Is the address loopback, private, link-local (metadata), shared, multicast or
 * unspecified, also as an IPv4-mapped or NAT64 IPv6 address? */
bool cd_webhook_address_private(const struct sockaddr *sa);
/* "v1=<hex>" for the Consentd-Signature header into out[3 + 65]. */
void cd_webhook_signature(const char *secret, const char *timestamp, const char *body,
                          char out[68]);

#endif
