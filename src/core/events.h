/* core/events.h -- webhook events (issue 15): what happened, queued for every endpoint of
 * the account that subscribes to its type, in the transaction of the change that caused
 * it (the caller's writer job). Each (event, endpoint) is a delivery carried by a job of
 * the generic queue (kind CD_EVENTS_JOB_KIND), which delivery/webhook.c runs.
 *
 * The event is {"id","type","account","created_at","payload"}: stored once, exactly as it
 * is delivered and signed, so every attempt and every replay sends the same bytes. */
#ifndef CD_CORE_EVENTS_H
#define CD_CORE_EVENTS_H

#include <jansson.h>
#include <stdbool.h>

#include "store/store.h"

#define CD_EVENTS_JOB_KIND "webhook"

/* The event types, NULL-terminated. */
extern const char *const cd_events_types[];
/* Is `type` one of them? */
bool cd_events_known(const char *type);
/* Does the endpoint want events of `type` (its list empty = every type)? */
bool cd_events_wanted(const cd_webhook_endpoint *e, const char *type);

/* 1 when someone may receive the account's events (an enabled subscription, or a messaging
 * profile with a callback URL), 0 when nobody listens, -1 with *err on a store error.
 * Sources ask first; the writer's connection remembers the answer (store/sqlite_cache.c), so
 * an account without webhooks pays a lookup in memory per event. */
int cd_events_listening(cd_db *db, int64_t account_id, cd_err *err);

/* Queues `type` with `payload` (taken, on every path) for the account's enabled
 * subscriptions that want it, the account's default messaging profile's callback URL, and
 * (issue 14) the callback URL of the profile leasing `number`, the account's own number a
 * message went out from or came in on (NULL: none). Nothing is stored when no endpoint
 * wants it. Writer only. */
int cd_events_emit(cd_db *db, int64_t account_id, const char *type, json_t *payload,
                   const char *number, cd_err *err);

/* The event sources. Each builds its payload and calls cd_events_emit. */
/* consent.changed: one per ledger event, with its seq and hash. */
int cd_events_consent_changed(cd_db *db, const cd_event *ev, cd_err *err);
/* flow.confirmed or flow.expired, by f->status (other statuses queue nothing). */
int cd_events_flow(cd_db *db, const cd_flow *f, cd_err *err);
/* message.status: the message's status now (queued, sent, delivered, failed, refused). */
int cd_events_message_status(cd_db *db, const cd_message *m, cd_err *err);
/* message.inbound: a received message and the keyword action it triggered. */
int cd_events_message_inbound(cd_db *db, const cd_message *m, const char *action, cd_err *err);

/* Queues delivery d again from scratch (a replay): pending, attempts 0, with a new job
 * (or its dead job revived). Writer only. */
int cd_events_replay(cd_db *db, cd_webhook_delivery *d, cd_err *err);

#endif
