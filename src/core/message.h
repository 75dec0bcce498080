/* core/message.h -- the outbox: queueing outbound SMS (consent-gated or exempt) and
 * recording what transports report back (inbound SMS and keywords: core/inbound.h). Every
 * function runs in the writer's transaction `db`, so a message is queued in the same
 * commit as the event that caused it. */
#ifndef CD_CORE_MESSAGE_H
#define CD_CORE_MESSAGE_H

#include <jansson.h>
#include <stdbool.h>

#include "store/store.h"
#include "util/err.h"

#define CD_MESSAGE_MAX_PARTS 10

/* The default caps on consent-exempt messages, per number and account: CTAs and HELP
 * replies in a sliding window, and the bounds the settings accept. */
#define CD_CAP_CTA_LIMIT     5
#define CD_CAP_CTA_WINDOW_S  86400
#define CD_CAP_HELP_LIMIT    3
#define CD_CAP_HELP_WINDOW_S 3600
#define CD_CAP_MAX_LIMIT     1000
#define CD_CAP_MAX_WINDOW_S  2592000 /* 30 days */

typedef struct cd_send_in {
    const char *to;       /* E.164 */
    const char *from;     /* NULL: the account's default sender */
    const char *text;     /* UTF-8, 1..CD_MESSAGE_MAX_PARTS parts */
    const char *scope;    /* the consent scope the message belongs to ("all", "group:1") */
    const char *kind;     /* "send", "cta", "confirmation", "keyword_reply" */
    const char *category; /* "marketing" (held in quiet hours) or "transactional" */
    const char *flow_id;  /* a CTA's flow, or NULL */
    const char *action;   /* a keyword reply's action (cd_keyword_action_name), or NULL */
    int64_t contact_id;   /* 0: looked up */
    const char *profile;  /* issue 14: the messaging profile whose pool picks a missing from;
                           * NULL: the account's default profile (core/pool.h) */
    bool new_contact;     /* a CTA to contact_id, created in this transaction: nothing was
                           * sent to it yet (CTAs go to contacts only, which are never
                           * deleted), so its cap counts none */
    int parts;            /* cd_gsm_parts(text) when the caller counted them already (> 0);
                           * 0: counted here */
} cd_send_in;

/* Queues a message without asking for consent: only for what the law allows without it
 * (the one confirmation of an opt-out, HELP replies, a double opt-in's CTA) and for sends
 * that cd_message_send() has checked. Validates the sender and the text, picks the
 * transport, holds marketing messages during the account's quiet hours.
 * CTAs and HELP replies are capped per number (issue 8 item 5, cd_message_exempt_caps):
 * over its cap a message is stored with status "refused" and reason "rate_limited", and
 * this still returns 0 (out->status says so). So is a message whose profile's pool has no
 * healthy number left (issue 14): stored "refused" with reason "no_healthy_sender". */
int cd_message_queue(cd_db *db, const cd_account *a, const json_t *settings, const cd_send_in *in,
                     cd_message *out, cd_err *err);

/* The effective caps, defaults filled in, as GET /settings shows them:
 * {"cta":{"limit","window_seconds"},"help":{...}}. Returns a new reference. */
json_t *cd_message_exempt_caps(const json_t *settings);
/* Validates a settings "exempt_caps" value (CD_EINVAL "invalid_field", field "exempt_caps"):
 * an object with "cta" and/or "help", each with "limit" 0..CD_CAP_MAX_LIMIT and/or
 * "window_seconds" 1..CD_CAP_MAX_WINDOW_S; what is left out keeps its default. */
int cd_message_exempt_caps_check(json_t *v, cd_err *err);

/* The consent-gated send. Allowed: queued as above, *refused = NULL. Not allowed: a
 * message with status "refused" and the reason is stored, and *refused is the reason code
 * (no_consent, opted_out, pending_confirmation; no_healthy_sender from the number pool,
 * issue 14). Both return 0; -1 is for bad input
 * (CD_EINVAL: unknown_sender, text_too_long, invalid_field) and storage errors. */
int cd_message_send(cd_db *db, const cd_account *a, const cd_send_in *in, cd_message *out,
                    const char **refused, cd_err *err);

/* issue 10: stores the message `in` describes as refused with `reason` (a CTA to a contact
 * who texted STOP: "opted_out"), validated as cd_message_queue() would, so that the refusal
 * is on record. out may be NULL. */
int cd_message_refuse(cd_db *db, const cd_account *a, const json_t *settings, const cd_send_in *in,
                      const char *reason, cd_message *out, cd_err *err);

/* Stores a refused send to a number that is not valid (to is kept as given, shortened). */
int cd_message_refuse_invalid(cd_db *db, const cd_account *a, const char *to_raw, const char *text,
                              const char *scope, cd_message *out, cd_err *err);

/* issue 8 item 1: a claimed message that waited for its transport while an opt-out of its
 * account became durable is checked again before it is submitted. cd_message_recheck runs
 * the claim's checks on any connection (reads only; m as for cd_message_claim): *reason
 * NULL when it may go. cd_message_refuse_claimed, in a write job, refuses it ('sending' ->
 * 'refused', history and event), and leaves alone a message that is no longer 'sending'. */
int cd_message_recheck(cd_db *db, const cd_message *m, const char **reason, cd_err *err);
int cd_message_refuse_claimed(cd_db *db, int64_t account_id, const char *id, const char *reason,
                              int64_t now_ms, cd_err *err);

/* Claims a queued message for the delivery worker, in a write job: checks consent (and
 * the sender rule) again first. m needs account_id, id, kind, scope, contact_id, from and
 * transport. Allowed: marked 'sending', *claimed true. Not allowed any more: marked
 * 'refused' with the reason and a history entry, *refused = the reason. Neither when the
 * message is no longer queued. */
int cd_message_claim(cd_db *db, const cd_message *m, int64_t now_ms, bool *claimed,
                     const char **refused, cd_err *err);
/* The server's default transport, for the rule that smpp and http sends need a registered
 * sender. Called once before requests are served; "sink" until then. */
void cd_message_set_default_transport(const char *name);

/* What a transport said about a submitted message (see delivery/transport.h). */
typedef struct cd_sent_report {
    int64_t account_id;
    const char *id;
    const char *transport;
    bool ok;
    const char *remote_id; /* parts' ids joined with ',' */
    bool permanent;
    const char *error;
} cd_sent_report;

/* Records a submit's outcome: sent (with the transport's ids, so a receipt can find it),
 * or back to queued with backoff, or failed after `max_attempts` or a permanent error. */
int cd_message_record_sent(cd_db *db, const cd_sent_report *r, int max_attempts, cd_err *err);
/* Applies a delivery receipt; CD_ENOTFOUND for ids we never sent. */
int cd_message_record_receipt(cd_db *db, const char *transport, const char *remote_id,
                              const char *status, const char *detail, cd_err *err);
/* Appends {"status","at","detail"} to m->history and sets m->status. */
void cd_message_history(cd_message *m, const char *status, const char *detail, int64_t now_ms);
/* Fresh id "msg_<32 hex>" into out[40]. */
void cd_message_new_id(char out[40]);

#endif
