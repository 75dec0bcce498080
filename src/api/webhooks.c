/* api/webhooks.c -- the native webhook routes (issue 15): account-level subscriptions
 * under /api/v1/webhooks, their deliveries, and replays. Native Bearer keys and native
 * errors; writes through the kit's write path (Idempotency-Key honoured).
 *
 * An endpoint's secret is shown once, in the answer that created it: the stored
 * Idempotency-Key answer has it null, and no other answer or log line carries it. */
#include "api/webhooks.h"
#include "api/native_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "delivery/webhook.h"
#include "util/crypto.h"
#include "util/timeutil.h"

#define BULK_REPLAY_MAX 1000
/* Subscriptions per account: every event is queued for each of them in the transaction of
 * its cause, so their number bounds the work of every consent change. */
#define MAX_ENDPOINTS 32

/* ---- shapes ---- */

/* The types an endpoint gets: its list, or every type when the list is empty. */
static json_t *events_json(const cd_webhook_endpoint *e)
{
    if (e->events && json_array_size(e->events) > 0)
        return json_deep_copy(e->events);
    json_t *all = json_array();
    for (int i = 0; cd_events_types[i]; i++)
        json_array_append_new(all, json_string(cd_events_types[i]));
    return all;
}

static json_t *endpoint_json(const cd_webhook_endpoint *e)
{
    return json_pack("{ss ss so sb so so}", "id", e->id, "url", e->url, "events", events_json(e),
                     "enabled", e->enabled, "created_at", cd_native__time(e->created_ms),
                     "updated_at", cd_native__time(e->updated_ms));
}

static json_t *delivery_json(const cd_webhook_delivery *d)
{
    return json_pack(
        "{sI ss ss ss ss si so so so so so so so}", "id", (json_int_t)d->id, "event_id",
        d->event_id, "event_type", d->event_type, "endpoint", d->endpoint_id, "status", d->status,
        "attempts", d->attempts, "last_status",
        d->last_code ? json_integer(d->last_code) : json_null(), "last_error",
        cd_native__str_or_null(d->last_error), "last_url", cd_native__str_or_null(d->last_url),
        "next_attempt_at", cd_native__time(strcmp(d->status, "pending") == 0 ? d->next_ms : 0),
        "created_at", cd_native__time(d->created_ms), "updated_at", cd_native__time(d->updated_ms),
        "delivered_at", cd_native__time(d->delivered_ms));
}

static int not_found(cd_req *req, const char *what)
{
    cd_err err;
    cd_fail_reason(&err, CD_ENOTFOUND, "not_found", "", "no such %s", what);
    return cd_native__error(req, &err);
}

/* ---- reading a subscription's fields ---- */

typedef struct endpoint_in {
    const char *id; /* PATCH, DELETE */
    const char *url;
    json_t *events; /* owned by the request's body; NULL = unchanged (PATCH) or all */
    int enabled;    /* -1 = unchanged (PATCH) or true */
} endpoint_in;

/* "events": an array of known types, each once; [] or absent = every type. */
static int parse_events(json_t *o, json_t **out, cd_err *err)
{
    json_t *ev = json_object_get(o, "events");
    *out = NULL;
    if (ev == NULL || json_is_null(ev))
        return 0;
    if (!json_is_array(ev) || json_array_size(ev) > 16)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "events",
                              "events must be an array of event types");
    size_t i;
    json_t *v;
    json_array_foreach (ev, i, v) {
        if (!json_is_string(v) || !cd_events_known(json_string_value(v)))
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "events",
                                  "unknown event type (consent.changed, flow.confirmed, "
                                  "flow.expired, message.status, message.inbound)");
    }
    *out = ev;
    return 0;
}

static int parse_endpoint(cd_req *req, json_t *o, bool create, endpoint_in *in, cd_err *err)
{
    const cd_api_env *env = cd_api_env_of(req);
    json_t *en = json_object_get(o, "enabled");
    in->enabled = -1;
    if (en && !json_is_boolean(en) && !json_is_null(en))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "enabled",
                              "enabled must be true or false");
    if (json_is_boolean(en))
        in->enabled = json_is_true(en);
    int rc = create ? cd_api_req_string(o, "url", CD_WEBHOOK_URL_MAX, &in->url, err)
                    : cd_api_opt_string(o, "url", CD_WEBHOOK_URL_MAX, &in->url, err);
    if (rc == 0 && in->url)
        rc = cd_webhook_check_url(in->url, env->allow_private_webhooks, "url", err);
    return rc == 0 ? parse_events(o, &in->events, err) : -1;
}

/* ---- subscriptions ---- */

static int count_endpoint(const cd_webhook_endpoint *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

static int job_create(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    endpoint_in *in = w->in;
    int n = 0;
    if (cd_store_webhook_endpoint_list(db, w->who.account.id, count_endpoint, &n, err) != 0)
        return -1;
    if (n >= MAX_ENDPOINTS)
        return cd_fail_reason(err, CD_ECONFLICT, "too_many_webhooks", "",
                              "an account has at most %d webhooks", MAX_ENDPOINTS);
    cd_webhook_endpoint e = {.account_id = w->who.account.id, .enabled = in->enabled != 0};
    char hex[25], token[64];
    cd_random_hex(hex, 12);
    snprintf(e.id, sizeof e.id, "wh_%s", hex);
    cd_random_token(token, sizeof token, 32);
    snprintf(e.secret, sizeof e.secret, "whsec_%s", token);
    snprintf(e.url, sizeof e.url, "%s", in->url);
    e.events = in->events ? json_incref(in->events) : json_array();
    e.created_ms = e.updated_ms = cd_now_ms();
    int rc = cd_store_webhook_endpoint_put(db, &e, err);
    if (rc == 0) {
        w->status = 201;
        w->body = endpoint_json(&e);
        /* A retry learns the id, never the secret again (as for POST /api/v1/keys). */
        w->idem_body = json_deep_copy(w->body);
        json_object_set_new(w->idem_body, "secret", json_null());
        json_object_set_new(w->body, "secret", json_string(e.secret));
    }
    memset(e.secret, 0, sizeof e.secret);
    cd_webhook_endpoint_clear(&e);
    return rc;
}

static int h_create(cd_req *req)
{
    cd_err err;
    json_t *o;
    endpoint_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        parse_endpoint(req, o, true, in, &err) != 0)
        return cd_native__error(req, &err);
    return cd_api_write(req, &cd_native__kit, job_create, in);
}

static int collect_endpoint(const cd_webhook_endpoint *e, void *arg)
{
    json_array_append_new(arg, endpoint_json(e));
    return 0;
}

static int h_list(cd_req *req)
{
    cd_err err;
    json_t *data = json_array();
    cd_db *db = cd_api_reader(req, &err);
    int rc =
        db ? cd_store_webhook_endpoint_list(db, WHO(req)->account.id, collect_endpoint, data, &err)
           : -1;
    if (rc != 0) {
        json_decref(data);
        return cd_native__error(req, &err);
    }
    return cd_reply_json(req, 200, cd_native__list(data, 0, false));
}

static int h_get(cd_req *req)
{
    cd_err err;
    cd_webhook_endpoint e;
    cd_db *db = cd_api_reader(req, &err);
    if (db == NULL || cd_store_webhook_endpoint_get(db, WHO(req)->account.id,
                                                    cd_req_param(req, "id"), &e, &err) != 0)
        return cd_native__error(req, &err);
    if (e.profile[0]) { /* a profile's callbacks: managed through the profile */
        cd_webhook_endpoint_clear(&e);
        return not_found(req, "webhook");
    }
    json_t *body = endpoint_json(&e);
    cd_webhook_endpoint_clear(&e);
    return cd_reply_json(req, 200, body);
}

static int job_patch(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    endpoint_in *in = w->in;
    cd_webhook_endpoint e;
    if (cd_store_webhook_endpoint_get(db, w->who.account.id, in->id, &e, err) != 0)
        return -1;
    if (e.profile[0]) {
        cd_webhook_endpoint_clear(&e);
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such webhook");
    }
    if (in->url)
        snprintf(e.url, sizeof e.url, "%s", in->url);
    if (in->events) {
        json_decref(e.events);
        e.events = json_incref(in->events);
    }
    if (in->enabled >= 0)
        e.enabled = in->enabled != 0;
    e.updated_ms = cd_now_ms();
    int rc = cd_store_webhook_endpoint_put(db, &e, err);
    if (rc == 0) {
        w->status = 200;
        w->body = endpoint_json(&e);
    }
    cd_webhook_endpoint_clear(&e);
    return rc;
}

static int h_patch(cd_req *req)
{
    cd_err err;
    json_t *o;
    endpoint_in *in = cd_req_alloc(req, sizeof *in);
    in->id = cd_req_param(req, "id");
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        parse_endpoint(req, o, false, in, &err) != 0)
        return cd_native__error(req, &err);
    return cd_api_write(req, &cd_native__kit, job_patch, in);
}

static int job_delete(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    endpoint_in *in = w->in;
    if (cd_store_webhook_endpoint_delete(db, w->who.account.id, in->id, cd_now_ms(), err) != 0)
        return -1;
    w->status = 204;
    w->body = NULL;
    return 0;
}

static int h_delete(cd_req *req)
{
    endpoint_in *in = cd_req_alloc(req, sizeof *in);
    in->id = cd_req_param(req, "id");
    return cd_api_write(req, &cd_native__kit, job_delete, in);
}

/* ---- deliveries ---- */

typedef struct collect {
    json_t *data;
    int n;
    int64_t last;
} collect;

static int collect_delivery(const cd_webhook_delivery *d, void *arg)
{
    collect *k = arg;
    json_array_append_new(k->data, delivery_json(d));
    k->n++;
    k->last = d->id;
    return 0;
}

/* ?status=pending|delivered|dead&event=<evt_ id or type>&endpoint=<wh_ id> */
static int delivery_filter(cd_req *req, cd_webhook_delivery_filter *f, cd_err *err)
{
    const char *st = cd_req_query(req, "status"), *ev = cd_req_query(req, "event");
    const char *ep = cd_req_query(req, "endpoint");
    if (st && *st) {
        if (strcmp(st, "pending") && strcmp(st, "delivered") && strcmp(st, "dead"))
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "status",
                                  "status is pending, delivered or dead");
        f->status = st;
    }
    if (ev && *ev) {
        if (strncmp(ev, "evt_", 4) == 0)
            f->event_id = ev;
        else if (cd_events_known(ev))
            f->event_type = ev;
        else
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "event",
                                  "event is an event id (evt_...) or an event type");
    }
    if (ep && *ep)
        f->endpoint_id = ep;
    return 0;
}

static int h_deliveries(cd_req *req)
{
    cd_err err;
    cd_webhook_delivery_filter f = {0};
    int limit;
    if (cd_api_paging(req, &limit, &f.after_id, &err) != 0 || delivery_filter(req, &f, &err) != 0)
        return cd_native__error(req, &err);
    f.limit = limit + 1;
    collect k = {.data = json_array()};
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? cd_store_webhook_delivery_list(db, WHO(req)->account.id, &f, collect_delivery, &k,
                                                 &err)
                : -1;
    if (rc != 0) {
        json_decref(k.data);
        return cd_native__error(req, &err);
    }
    bool more = k.n > limit;
    if (more) {
        json_array_remove(k.data, (size_t)limit);
        k.last = json_integer_value(json_object_get(json_array_get(k.data, limit - 1), "id"));
    }
    return cd_reply_json(req, 200, cd_native__list(k.data, k.last, more));
}

static int delivery_id(cd_req *req, int64_t *id)
{
    return cd_api_parse_int(cd_req_param(req, "id"), 1, INT64_MAX, id);
}

static int h_delivery_get(cd_req *req)
{
    cd_err err;
    cd_webhook_delivery d;
    int64_t id;
    if (delivery_id(req, &id) != 0)
        return not_found(req, "delivery");
    cd_db *db = cd_api_reader(req, &err);
    if (db == NULL || cd_store_webhook_delivery_get(db, WHO(req)->account.id, id, &d, &err) != 0)
        return cd_native__error(req, &err);
    return cd_reply_json(req, 200, delivery_json(&d));
}

typedef struct replay_in {
    int64_t id;
    int64_t from_ms, to_ms;
    const char *status;
} replay_in;

static int job_replay(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    replay_in *in = w->in;
    cd_webhook_delivery d;
    if (cd_store_webhook_delivery_get(db, w->who.account.id, in->id, &d, err) != 0 ||
        cd_events_replay(db, &d, err) != 0)
        return -1;
    w->status = 202;
    w->body = delivery_json(&d);
    return 0;
}

static int h_replay(cd_req *req)
{
    replay_in *in = cd_req_alloc(req, sizeof *in);
    if (delivery_id(req, &in->id) != 0)
        return not_found(req, "delivery");
    return cd_api_write(req, &cd_native__kit, job_replay, in);
}

typedef struct bulk {
    int n;
    int64_t ids[BULK_REPLAY_MAX + 1];
} bulk;

static int collect_id(const cd_webhook_delivery *d, void *arg)
{
    bulk *b = arg;
    b->ids[b->n++] = d->id;
    return 0;
}

/* Replays up to BULK_REPLAY_MAX deliveries of the range at once; "more" says whether a
 * second call has more to do (the replayed ones are pending, so it finds the next). */
static int job_bulk_replay(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    replay_in *in = w->in;
    bulk *b = calloc(1, sizeof *b);
    if (b == NULL)
        return cd_fail(err, CD_EINTERNAL, "", "out of memory");
    cd_webhook_delivery_filter f = {.status = in->status,
                                    .from_ms = in->from_ms,
                                    .to_ms = in->to_ms,
                                    .limit = BULK_REPLAY_MAX + 1};
    int rc = cd_store_webhook_delivery_list(db, w->who.account.id, &f, collect_id, b, err);
    int n = b->n > BULK_REPLAY_MAX ? BULK_REPLAY_MAX : b->n;
    for (int i = 0; rc == 0 && i < n; i++) {
        cd_webhook_delivery d;
        rc = cd_store_webhook_delivery_get(db, w->who.account.id, b->ids[i], &d, err);
        if (rc == 0)
            rc = cd_events_replay(db, &d, err);
    }
    if (rc == 0) {
        w->status = 200;
        w->body = json_pack("{si sb}", "replayed", n, "more", b->n > BULK_REPLAY_MAX);
    }
    free(b);
    return rc;
}

static int time_field(json_t *o, const char *key, bool required, int64_t *out, cd_err *err)
{
    const char *s;
    if (cd_api_opt_string(o, key, 64, &s, err) != 0)
        return -1;
    if (s == NULL && !required)
        return 0;
    if (s == NULL || cd_time_parse(s, out) != 0)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", key, "%s must be RFC 3339", key);
    return 0;
}

static int h_bulk_replay(cd_req *req)
{
    cd_err err;
    json_t *o;
    replay_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        time_field(o, "from", true, &in->from_ms, &err) != 0 ||
        time_field(o, "to", true, &in->to_ms, &err) != 0 ||
        cd_api_opt_string(o, "status", 16, &in->status, &err) != 0)
        return cd_native__error(req, &err);
    if (in->status == NULL)
        in->status = "dead";
    if (strcmp(in->status, "dead") != 0 && strcmp(in->status, "delivered") != 0) {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "status", "status is dead or delivered");
        return cd_native__error(req, &err);
    }
    if (in->to_ms <= in->from_ms) {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "to", "to must be after from");
        return cd_native__error(req, &err);
    }
    return cd_api_write(req, &cd_native__kit, job_bulk_replay, in);
}

void cd_api_webhooks_routes(cd_router *r, const cd_api_env *env)
{
    const cd_surface *n = &cd_native__surface;
    void *ctx = cd_api_ctx(env);
    cd_router_add(r, "POST", "/api/v1/webhooks", n, h_create, ctx);
    cd_router_add(r, "GET", "/api/v1/webhooks", n, h_list, ctx);
    cd_router_add(r, "GET", "/api/v1/webhooks/{id}", n, h_get, ctx);
    cd_router_add(r, "PATCH", "/api/v1/webhooks/{id}", n, h_patch, ctx);
    cd_router_add(r, "DELETE", "/api/v1/webhooks/{id}", n, h_delete, ctx);
    cd_router_add(r, "GET", "/api/v1/webhooks/deliveries", n, h_deliveries, ctx);
    cd_router_add(r, "GET", "/api/v1/webhooks/deliveries/{id}", n, h_delivery_get, ctx);
    cd_router_add(r, "POST", "/api/v1/webhooks/deliveries/{id}/replay", n, h_replay, ctx);
    cd_router_add(r, "POST", "/api/v1/webhooks/replay", n, h_bulk_replay, ctx);
}
