/* delivery/mail.h -- the double opt-in confirmation mail (issue 13): what it says, how it
 * is sent (delivery/smtp.h, with the account's "smtp" setting read when it is sent), and
 * how a request waits for its first attempt.
 *
 * A mail is a durable job of the generic queue (kind CD_MAIL_JOB_KIND), queued in the
 * transaction that made its flows; the queue's worker sends it after the commit, never
 * on the writer or an HTTP thread, and retries it with backoff. The request that queued
 * it answers once the first attempt is done: it registers its interest on the writer
 * thread (cd_mail_expect, before the commit, so the worker cannot finish first unseen)
 * and attaches to it after the commit (cd_mail_wait). */
#ifndef CD_DELIVERY_MAIL_H
#define CD_DELIVERY_MAIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

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

/* ---- waiting for a first attempt ---- */

typedef void (*cd_mail_wake_fn)(void *arg, int rc, const cd_err *err);

/* Notes that someone will wait for job_id's first attempt (call it on the writer thread,
 * in the job that queued it). */
void cd_mail_expect(int64_t job_id);
/* Drops the note (the transaction that queued the job failed). */
void cd_mail_forget(int64_t job_id);
/* Calls fn(arg, rc, err) once job_id's first attempt is done: now (on this thread) when
 * it is done already, else later on the worker's thread. Only for an expected job. */
void cd_mail_wait(int64_t job_id, cd_mail_wake_fn fn, void *arg);
/* The worker's report of an attempt; the first one of an expected job wakes its waiter
 * (or is kept for it). Later attempts are ignored. */
void cd_mail_attempted(int64_t job_id, int rc, const cd_err *err);
/* Wakes every waiter with a failure (the worker is stopping). */
void cd_mail_wake_all(void);

#endif
