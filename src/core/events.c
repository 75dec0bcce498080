/* core/events.c -- webhook events queued with their cause (see events.h). */
#include "core/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/profile.h"
#include "util/crypto.h"
#include "util/timeutil.h"

const char *const cd_events_types[] = {"consent.changed", "flow.confirmed",  "flow.expired",
                                       "message.status",  "message.inbound", NULL};

bool cd_events_known(const char *type)
{
    for (int i = 0; cd_events_types[i]; i++)
        if (type && strcmp(type, cd_events_types[i]) == 0)
            return true;
    return false;
}

bool cd_events_wanted(const cd_webhook_endpoint *e, const char *type)
{
    if (e->events == NULL || json_array_size(e->events) == 0)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach (e->events, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), type) == 0)
            return true;
    return false;
}

#define MAX_TARGETS 64

typedef struct targets {
    const char *type;
    int n;
    char ids[MAX_TARGETS][48];
} targets;

static void add_target(targets *t, const char *id)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->ids[i], id) == 0)
            return;
    if (t->n < MAX_TARGETS)
        snprintf(t->ids[t->n++], sizeof t->ids[0], "%s", id);
}

static int collect_target(const cd_webhook_endpoint *e, void *arg)
{
    targets *t = arg;
    if (e->enabled && cd_events_wanted(e, t->type))
        add_target(t, e->id);
    return 0;
}

/* ---- issue 14: a messaging profile's callback_url (and callback_url2) ---- */

/* The endpoint row that stands for the profile's callbacks (deliveries name it); written
 * only when missing or changed. delivery/webhook.c reads the profile's URLs and secret
 * as they are at each attempt. */
static int profile_endpoint(cd_db *db, const cd_profile *p, targets *t, cd_err *err)
{
    if (p->callback_url[0] == '\0')
        return 0;
    cd_webhook_endpoint e;
    char id[48];
    snprintf(id, sizeof id, "profile_%s", p->uuid);
    bool have = cd_store_webhook_endpoint_get(db, p->account_id, id, &e, NULL) == 0;
    if (have)
        cd_webhook_endpoint_clear(&e);
    if (!have) {
        e = (cd_webhook_endpoint){.account_id = p->account_id, .enabled = true};
        snprintf(e.id, sizeof e.id, "%s", id);
        snprintf(e.url, sizeof e.url, "%.511s", p->callback_url);
        snprintf(e.url2, sizeof e.url2, "%.511s", p->callback_url2);
        snprintf(e.secret, sizeof e.secret, "%s", p->signing_secret);
        snprintf(e.profile, sizeof e.profile, "%s", p->uuid);
        e.created_ms = e.updated_ms = cd_now_ms();
        int rc = cd_store_webhook_endpoint_put(db, &e, err);
        memset(e.secret, 0, sizeof e.secret);
        if (rc != 0)
            return -1;
    }
    add_target(t, id);
    return 0;
}

/* The account's default profile gets every event; the profile leasing `number` (the
 * account's number a message was sent from or received on) gets that message's events. */
static int profile_targets(cd_db *db, int64_t account_id, const char *number, targets *t,
                           cd_err *err)
{
    cd_profile *p = calloc(1, sizeof *p);
    json_t *settings = NULL;
    cd_err e = {0};
    int rc = p ? cd_store_settings_get(db, account_id, &settings, err) : -1;
    if (rc == 0 && cd_profile_default(db, account_id, settings, p, &e) == 0)
        rc = profile_endpoint(db, p, t, err);
    else if (rc == 0 && e.code != CD_ENOTFOUND)
        rc = cd_fail(err, e.code, e.field, "%s", e.msg);
    cd_sender s;
    if (rc == 0 && number && *number && cd_store_sender_get(db, number, &s, NULL) == 0 &&
        s.account_id == account_id && s.profile[0] &&
        cd_store_profile_get(db, account_id, s.profile, p, NULL) == 0)
        rc = profile_endpoint(db, p, t, err);
    json_decref(settings);
    free(p);
    return rc;
}

/* One delivery and the job that carries it. */
static int queue_delivery(cd_db *db, cd_webhook_delivery *d, cd_err *err)
{
    cd_job j = {.account_id = d->account_id};
    snprintf(j.kind, sizeof j.kind, CD_EVENTS_JOB_KIND);
    snprintf(j.ref, sizeof j.ref, "%lld", (long long)d->id);
    j.due_ms = cd_now_ms();
    if (cd_store_job_enqueue(db, &j, err) != 0)
        return -1;
    d->job_id = j.id;
    d->next_ms = j.due_ms;
    return cd_store_webhook_delivery_update(db, d, err);
}

/* {"id","type","account","created_at","payload"} as stored and delivered. Takes payload. */
static char *event_body(const cd_webhook_event *ev, const char *account, json_t *payload)
{
    char at[CD_TIME_LEN];
    cd_time_format(ev->created_ms, at);
    json_t *o = json_pack("{ss ss ss ss so}", "id", ev->id, "type", ev->type, "account", account,
                          "created_at", at, "payload", payload);
    char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return body;
}

static int store_event(cd_db *db, cd_webhook_event *ev, const targets *t, cd_err *err)
{
    if (cd_store_webhook_event_insert(db, ev, err) != 0)
        return -1;
    for (int i = 0; i < t->n; i++) {
        cd_webhook_delivery d = {.account_id = ev->account_id,
                                 .created_ms = ev->created_ms,
                                 .updated_ms = ev->created_ms};
        snprintf(d.event_id, sizeof d.event_id, "%s", ev->id);
        snprintf(d.event_type, sizeof d.event_type, "%s", ev->type);
        snprintf(d.endpoint_id, sizeof d.endpoint_id, "%s", t->ids[i]);
        snprintf(d.status, sizeof d.status, "pending");
        if (cd_store_webhook_delivery_insert(db, &d, err) != 0 || queue_delivery(db, &d, err) != 0)
            return -1;
    }
    return 0;
}

int cd_events_emit(cd_db *db, int64_t account_id, const char *type, json_t *payload,
                   const char *number, cd_err *err)
{
    targets *t = calloc(1, sizeof *t);
    if (t == NULL) {
        json_decref(payload);
        return cd_fail(err, CD_EINTERNAL, "", "out of memory");
    }
    t->type = type;
    int rc = cd_store_webhook_endpoint_list(db, account_id, collect_target, t, err);
    if (rc == 0)
        rc = profile_targets(db, account_id, number, t, err);
    if (rc != 0 || t->n == 0) {
        json_decref(payload);
        free(t);
        return rc;
    }
    cd_account a;
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)account_id);
    if (cd_store_account_get(db, "id", idbuf, &a, err) != 0) {
        json_decref(payload);
        free(t);
        return -1;
    }
    cd_webhook_event ev = {.account_id = account_id, .created_ms = cd_now_ms()};
    char hex[25];
    cd_random_hex(hex, 12);
    snprintf(ev.id, sizeof ev.id, "evt_%s", hex);
    snprintf(ev.type, sizeof ev.type, "%s", type);
    char *body = event_body(&ev, a.name, payload);
    ev.body = body;
    rc = body ? store_event(db, &ev, t, err) : cd_fail(err, CD_EINTERNAL, "", "event not built");
    free(body);
    free(t);
    return rc;
}

/* ---- the sources ---- */

/* The writer's connection remembers the answer between jobs and forgets it when an
 * endpoint or a profile changes (store/sqlite_cache.c): asking per event costs little. */
int cd_events_listening(cd_db *db, int64_t account_id, cd_err *err)
{
    bool any = false;
    return cd_store_webhook_any(db, account_id, &any, err) != 0 ? -1 : any;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char t[CD_TIME_LEN];
    cd_time_format(ms, t);
    return json_string(t);
}

int cd_events_consent_changed(cd_db *db, const cd_event *ev, cd_err *err)
{
    int on = cd_events_listening(db, ev->account_id, err);
    if (on <= 0)
        return on;
    json_t *p = json_pack(
        "{sI sI ss ss so ss ss ss so so so so sI so ss ss}", "seq", (json_int_t)ev->seq,
        "contact_id", (json_int_t)ev->contact_id, "phone", ev->phone, "scope", ev->scope,
        "old_state", str_or_null(ev->old_state), "new_state", ev->new_state, "surface", ev->surface,
        "channel", ev->channel, "keyword", str_or_null(ev->keyword), "ext_ref",
        str_or_null(ev->ext_ref), "request_id", str_or_null(ev->request_id), "credential_id",
        str_or_null(ev->credential_id), "event_id", (json_int_t)ev->id, "created_at",
        time_or_null(ev->created_ms), "hash", ev->hash, "prev_hash", ev->prev_hash);
    return cd_events_emit(db, ev->account_id, "consent.changed", p, NULL, err);
}

int cd_events_flow(cd_db *db, const cd_flow *f, cd_err *err)
{
    const char *type = strcmp(f->status, "confirmed") == 0 ? "flow.confirmed"
                       : strcmp(f->status, "expired") == 0 ? "flow.expired"
                                                           : NULL;
    int on = type ? cd_events_listening(db, f->account_id, err) : 0;
    if (on <= 0)
        return on;
    json_t *p =
        json_pack("{ss so ss so ss ss so so}", "id", f->id, "ext_ref", str_or_null(f->ext_ref),
                  "phone", f->phone, "scopes", f->scopes ? json_deep_copy(f->scopes) : json_array(),
                  "channel", f->channel, "status", f->status, "confirmed_via",
                  str_or_null(f->confirmed_via), "expires_at", time_or_null(f->expires_ms));
    return cd_events_emit(db, f->account_id, type, p, NULL, err);
}

static json_t *message_payload(const cd_message *m)
{
    return json_pack("{ss ss ss ss ss ss so si ss so}", "id", m->id, "direction",
                     m->direction[0] ? m->direction : "out", "to", m->to, "from", m->from, "kind",
                     m->kind, "status", m->status, "reason", str_or_null(m->reason), "parts",
                     m->parts, "scope", m->scope, "updated_at",
                     time_or_null(m->updated_ms ? m->updated_ms : m->created_ms));
}

int cd_events_message_status(cd_db *db, const cd_message *m, cd_err *err)
{
    int on = cd_events_listening(db, m->account_id, err);
    if (on <= 0)
        return on;
    return cd_events_emit(db, m->account_id, "message.status", message_payload(m), m->from, err);
}

int cd_events_message_inbound(cd_db *db, const cd_message *m, const char *action, cd_err *err)
{
    int on = cd_events_listening(db, m->account_id, err);
    if (on <= 0)
        return on;
    json_t *p =
        json_pack("{ss ss ss ss so ss so}", "id", m->id, "from", m->from, "to", m->to, "text",
                  m->text ? m->text : "", "provider_id", str_or_null(m->provider_id), "action",
                  action ? action : "none", "received_at", time_or_null(m->created_ms));
    return cd_events_emit(db, m->account_id, "message.inbound", p, m->to, err);
}

int cd_events_replay(cd_db *db, cd_webhook_delivery *d, cd_err *err)
{
    if (strcmp(d->status, "pending") == 0)
        return cd_fail_reason(err, CD_ECONFLICT, "delivery_pending", "",
                              "the delivery is still pending");
    cd_err e = {0};
    if (d->job_id && cd_store_job_delete(db, d->job_id, &e) != 0 && e.code != CD_ENOTFOUND) {
        *err = e;
        return -1;
    }
    snprintf(d->status, sizeof d->status, "pending");
    d->attempts = 0;
    d->delivered_ms = 0;
    d->updated_ms = cd_now_ms();
    return queue_delivery(db, d, err);
}
