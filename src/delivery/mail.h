/* delivery/mail.h -- the double opt-in confirmation mail (issue 13): what it says, how it
 * is sent (delivery/smtp.h, with the account's "smtp" setting read when it is sent), and
 * the job kind that sends it.
 *
 * A mail is a durable job of the generic queue (delivery/jobs.h, kind CD_MAIL_JOB_KIND),
 * queued in the transaction that made its flows; the queue's worker sends it after the
 * commit, never on the writer or an HTTP thread, and retries it with backoff. The request
 * that queued it waits for its first attempt with cd_jobs_watch. */
#ifndef CD_DELIVERY_MAIL_H
#define CD_DELIVERY_MAIL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "delivery/jobs.h"
#include "store/store.h"
#include "util/err.h"

#define CD_MAIL_JOB_KIND "mail"

/* The job's payload: {"to": address, "flows": [flow ids]} (a new reference). Only ids:
 * the mail is written when it is sent, from the flows still pending then, so a retry
 * after a PUT confirmed them sends nothing, and no link rests in the queue. */
json_t *cd_mail_payload(const char *to, const json_t *flow_ids);

/* Sends the mail a job's payload describes for account_id, reading what it needs on a
 * reader of `store`. 0 when sent, or when none of its flows is pending any more (nothing
 * to confirm). -1 with *err ("smtp_failed", "smtp_not_configured", ...); *permanent says
 * whether retrying is pointless. public_url is the base of the links. Blocks up to
 * CD_SMTP_TIMEOUT_MS: a worker's call. */
int cd_mail_send(cd_store *store, const char *public_url, int64_t account_id, const json_t *payload,
                 bool *permanent, cd_err *err);

/* What the "mail" kind's handler reads: borrowed, both must outlive the worker. The
 * worker starts before the HTTP server knows its port, so public_url is read only once
 * cd_mail_ready() has been called (a job due at start waits for it). */
typedef struct cd_mail_ctx {
    cd_store *store;
    const char *public_url;
    atomic_bool ready; /* public_url is written */
} cd_mail_ctx;

/* public_url is final: mails may be written. */
void cd_mail_ready(cd_mail_ctx *ctx);

/* Registers the "mail" kind with the job worker (before cd_jobs_start): its handler sends
 * with cd_mail_send, retrying on a schedule of about a day (5 s, 30 s, 2 min, 10 min, 1 h,
 * 6 h), even after a 5xx answer (settings can be fixed); only a mail that cannot be written
 * (a bad address) is dead at once. ctx is
 * borrowed and must outlive the worker. */
int cd_mail_register(cd_jobs *jobs, const cd_mail_ctx *ctx, cd_err *err);

#endif
