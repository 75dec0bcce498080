#include "core/message.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events.h"
#include "core/consent.h"
#include "core/contact.h"
#include "core/phone.h"
#include "core/pool.h"
#include "util/gsm.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

/* "msg_" and 32 hex digits, as ever: the first 12 are the creation time in ms, the other 20
 * are random (80 bits). Time first keeps the inserts into the id index at its right edge
 * (issue 16): random ids put each message on a different page of it, which every commit
 * then writes to the WAL whole. */
void cd_message_new_id(char out[40])
{
    cd_time_id(out, 40, "msg_", cd_now_ms());
}

void cd_message_history(cd_message *m, const char *status, const char *detail, int64_t now_ms)
{
    char t[CD_TIME_LEN];
    cd_time_format(now_ms, t);
    if (m->history == NULL && m->history_json != NULL) /* see queued_history() */
        m->history = json_loads(m->history_json, 0, NULL);
    free(m->history_json);
    m->history_json = NULL;
    if (m->history == NULL)
        m->history = json_array();
    json_array_append_new(m->history,
                          json_pack("{ss ss so}", "status", status, "at", t, "detail",
                                    detail && *detail ? json_string(detail) : json_null()));
    snprintf(m->status, sizeof m->status, "%s", status);
    m->updated_ms = now_ms;
}

/* The history of a message just queued, as the store keeps it: the text json_dumps() makes
 * of what cd_message_history(m, "queued", detail, m->created_ms) builds, written directly
 * for a message that nobody reads back as JSON (issue 10 benchmark: the object, its dump
 * and its release were 4% of the writer's time per ProTexting opt-in). `detail` is "" or
 * schedule()'s note, ASCII with nothing to escape, as is a formatted time. */
static void queued_history(cd_message *m, const char *detail)
{
    char t[CD_TIME_LEN];
    cd_time_format(m->created_ms, t);
    assert(strpbrk(detail, "\"\\") == NULL);
    size_t n = strlen(detail) + sizeof t + 64;
    m->history_json = cd_xmalloc(n);
    snprintf(m->history_json, n, "[{\"status\":\"queued\",\"at\":\"%s\",\"detail\":%s%s%s}]", t,
             *detail ? "\"" : "", *detail ? detail : "null", *detail ? "\"" : "");
    snprintf(m->status, sizeof m->status, "queued");
    m->updated_ms = m->created_ms;
}

/* "HH:MM" -> minutes, or -1. */
static int hhmm(const char *s)
{
    int h, m;
    char tail;
    if (s == NULL || sscanf(s, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 ||
        m > 59)
        return -1;
    return h * 60 + m;
}

/* The server's default transport (what a message's "" transport means). Set once by the
 * delivery worker before the server answers requests; "sink" when nothing set it. */
static char default_transport[16] = "sink";

void cd_message_set_default_transport(const char *name)
{
    snprintf(default_transport, sizeof default_transport, "%s", name && *name ? name : "sink");
}

/* issue 8 item 4: over smpp and http a message must come from a registered number of the
 * account, never from whatever source the transport defaults to. The sink may go without
 * one, so a fresh install still works. */
static bool needs_sender(const char *transport)
{
    const char *t = transport && *transport ? transport : default_transport;
    return strcmp(t, "smpp") == 0 || strcmp(t, "http") == 0;
}

static int no_sender(const char *transport, cd_err *err)
{
    return cd_fail_reason(err, CD_EINVAL, "no_sender", "from",
                          "the account has no sender number for the %s transport; register one "
                          "with POST /api/v1/senders",
                          transport && *transport ? transport : default_transport);
}

/* The sender and its transport: an explicit `from` must be one of the account's numbers;
 * otherwise the account's default sender, if it has one. Without one, only the sink (and a
 * keyword reply, which the law requires whatever the setup) may use the transport's own. */
static int pick_sender(cd_db *db, const cd_account *a, const json_t *settings, const cd_send_in *in,
                       cd_message *m, cd_err *err)
{
    cd_sender s;
    const char *from = in->from;
    const char *transport = json_string_value(json_object_get(settings, "transport"));
    snprintf(m->transport, sizeof m->transport, "%s", transport ? transport : "");
    if (from) {
        char e164[CD_PHONE_MAX];
        const char *key =
            cd_phone_normalize(from, a->region, "from", e164, NULL) == 0 ? e164 : from;
        if (cd_store_sender_get(db, key, &s, NULL) != 0 || s.account_id != a->id)
            return cd_fail_reason(err, CD_EINVAL, "unknown_sender", "from",
                                  "%s is not one of this account's sender numbers", from);
    } else {
        const char *def = json_string_value(json_object_get(settings, "default_sender"));
        bool exempt = in->kind && strcmp(in->kind, "keyword_reply") == 0;
        /* issue 14: a profile's number pool picks the sender; a reply is never re-routed. */
        int pooled = exempt ? 0 : cd_pool_pick(db, a->id, settings, in->profile, in->to, &s, err);
        if (pooled < 0)
            return -1;
        if (pooled == 0 &&
            (def == NULL || cd_store_sender_get(db, def, &s, NULL) != 0 || s.account_id != a->id))
            return needs_sender(m->transport) && !exempt ? no_sender(m->transport, err) : 0;
    }
    snprintf(m->from, sizeof m->from, "%s", s.number);
    if (s.transport[0])
        snprintf(m->transport, sizeof m->transport, "%s", s.transport);
    return 0;
}

/* `known`: the caller's count of the text's parts, or 0. */
static int check_text(const char *text, int known, int *parts, cd_err *err)
{
    if (text == NULL || *text == '\0')
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "text", "text is required");
    int n = known > 0 ? known : cd_gsm_parts(text);
    if (n < 0)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "text", "text is not UTF-8");
    if (n > CD_MESSAGE_MAX_PARTS)
        return cd_fail_reason(err, CD_EINVAL, "text_too_long", "text",
                              "text needs %d parts; at most %d are sent", n, CD_MESSAGE_MAX_PARTS);
    *parts = n;
    return 0;
}

/* Fills the common fields of an outbound message; the caller sets status and history. */
static int prepare(cd_db *db, const cd_account *a, const json_t *settings, const cd_send_in *in,
                   cd_message *m, cd_err *err)
{
    cd_err e;
    memset(m, 0, sizeof *m);
    if (check_text(in->text, in->parts, &m->parts, err) != 0)
        return -1;
    if (pick_sender(db, a, settings, in, m, &e) != 0) {
        if (err)
            *err = e;
        /* issue 14: a pool with no healthy number left refuses the message, on record. */
        if (strcmp(cd_err_reason(&e), "no_healthy_sender") != 0)
            return -1;
        snprintf(m->reason, sizeof m->reason, "no_healthy_sender");
    }
    cd_message_new_id(m->id);
    m->account_id = a->id;
    snprintf(m->to, sizeof m->to, "%s", in->to);
    m->text = strdup(in->text);
    snprintf(m->kind, sizeof m->kind, "%s", in->kind ? in->kind : "send");
    snprintf(m->scope, sizeof m->scope, "%s", in->scope ? in->scope : "all");
    snprintf(m->direction, sizeof m->direction, "out");
    snprintf(m->category, sizeof m->category, "%s", in->category ? in->category : "marketing");
    snprintf(m->flow_id, sizeof m->flow_id, "%s", in->flow_id ? in->flow_id : "");
    m->contact_id = in->contact_id;
    m->created_ms = m->updated_ms = cd_now_ms();
    return 0;
}

/* issue 15: every stored status change of a message queues its message.status event in
 * the same transaction. */
static int insert(cd_db *db, const cd_message *m, cd_err *err)
{
    if (cd_store_message_insert(db, m, err) != 0)
        return -1;
    return cd_events_message_status(db, m, err);
}

static int update(cd_db *db, const cd_message *m, bool changed, cd_err *err)
{
    if (cd_store_message_update(db, m, err) != 0)
        return -1;
    return changed ? cd_events_message_status(db, m, err) : 0;
}

static int store_refused(cd_db *db, cd_message *m, const char *reason, cd_err *err)
{
    snprintf(m->reason, sizeof m->reason, "%s", reason);
    cd_message_history(m, "refused", reason, m->created_ms);
    return insert(db, m, err);
}

/* ---- issue 10: a refusal stored before anything is queued ---- */

int cd_message_refuse(cd_db *db, const cd_account *a, const json_t *settings, const cd_send_in *in,
                      const char *reason, cd_message *out, cd_err *err)
{
    cd_message m;
    assert(a != NULL && in != NULL && in->to != NULL && reason != NULL);
    int rc = prepare(db, a, settings, in, &m, err);
    if (rc == 0)
        rc = store_refused(db, &m, reason, err);
    if (rc == 0 && out)
        *out = m;
    else
        cd_message_clear(&m);
    return rc;
}

/* ---- caps on consent-exempt messages (issue 8 item 5) ---- */

static const struct {
    const char *key;  /* in settings.exempt_caps */
    const char *kind; /* the messages it counts */
    const char *action;
    int limit;
    int64_t window_s;
} caps[] = {
    /* The vendor APIs may ask a pending contact again, so a few CTAs a day are legitimate. */
    {"cta", "cta", "", CD_CAP_CTA_LIMIT, CD_CAP_CTA_WINDOW_S},
    {"help", "keyword_reply", "help", CD_CAP_HELP_LIMIT, CD_CAP_HELP_WINDOW_S},
};

/* Which cap, if any, applies to a message: CTAs and HELP replies only. The one confirmation
 * of an opt-out is owed to the person whatever happened before, so it is never capped. */
static int cap_of(const cd_message *m)
{
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
        if (strcmp(m->kind, caps[i].kind) == 0 && strcmp(m->action, caps[i].action) == 0)
            return (int)i;
    return -1;
}

/* The account's cap `i`: its setting, else the default. */
static void cap_get(const json_t *settings, int i, int *limit, int64_t *window_s)
{
    const json_t *c = json_object_get(json_object_get(settings, "exempt_caps"), caps[i].key);
    const json_t *l = json_object_get(c, "limit"), *w = json_object_get(c, "window_seconds");
    *limit = json_is_integer(l) ? (int)json_integer_value(l) : caps[i].limit;
    *window_s = json_is_integer(w) ? (int64_t)json_integer_value(w) : caps[i].window_s;
}

/* *over is true when queueing m would pass its cap. The messages of the window are counted
 * in the writer's transaction, so concurrent requests cannot both slip under the cap. */
static int over_cap(cd_db *db, const json_t *settings, const cd_send_in *in, const cd_message *m,
                    bool *over, cd_err *err)
{
    int i = cap_of(m), limit, n = 0;
    int64_t window_s;
    *over = false;
    if (i < 0)
        return 0;
    cap_get(settings, i, &limit, &window_s);
    bool first_cta = in->new_contact && in->contact_id != 0 && strcmp(m->kind, "cta") == 0;
    if (!first_cta && cd_store_message_count(db, m->account_id, m->to, m->kind, m->action,
                                             m->created_ms - window_s * 1000, &n, err) != 0)
        return -1;
    *over = n >= limit;
    return 0;
}

json_t *cd_message_exempt_caps(const json_t *settings)
{
    json_t *o = json_object();
    for (int i = 0; i < (int)(sizeof caps / sizeof caps[0]); i++) {
        int limit;
        int64_t window_s;
        cap_get(settings, i, &limit, &window_s);
        json_object_set_new(
            o, caps[i].key,
            json_pack("{si sI}", "limit", limit, "window_seconds", (json_int_t)window_s));
    }
    return o;
}

int cd_message_exempt_caps_check(json_t *v, cd_err *err)
{
    const char *k, *f;
    json_t *c, *x;
    if (!json_is_object(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "exempt_caps",
                              "exempt_caps is an object with cta and help");
    json_object_foreach (v, k, c) {
        if (strcmp(k, "cta") && strcmp(k, "help"))
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "exempt_caps",
                                  "exempt_caps has cta and help");
        if (!json_is_object(c))
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "exempt_caps",
                                  "exempt_caps.%s is {\"limit\",\"window_seconds\"}", k);
        json_object_foreach (c, f, x) {
            bool lim = strcmp(f, "limit") == 0, win = strcmp(f, "window_seconds") == 0;
            json_int_t n = json_is_integer(x) ? json_integer_value(x) : -1;
            if ((lim && n >= 0 && n <= CD_CAP_MAX_LIMIT) ||
                (win && n >= 1 && n <= CD_CAP_MAX_WINDOW_S))
                continue;
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "exempt_caps",
                                  "exempt_caps.%s has limit 0..%d and window_seconds 1..%d", k,
                                  CD_CAP_MAX_LIMIT, CD_CAP_MAX_WINDOW_S);
        }
    }
    return 0;
}

/* Sets when a new message is due: now, or the end of the account's quiet hours for
 * marketing. `detail` (80 bytes) gets the history note. */
static void schedule(const cd_account *a, const json_t *settings, cd_message *m, char *detail)
{
    m->next_attempt_ms = m->created_ms;
    detail[0] = '\0';
    const json_t *q = json_object_get(settings, "quiet_hours");
    int qs = hhmm(json_string_value(json_object_get(q, "start")));
    int qe = hhmm(json_string_value(json_object_get(q, "end")));
    int64_t until = 0;
    /* Quiet hours hold marketing only: replies the law requires are never held. */
    if (qs >= 0 && qe >= 0 && strcmp(m->category, "marketing") == 0)
        until = cd_time_quiet_until(m->created_ms, a->timezone, qs, qe);
    if (until < 0) {
        /* Zones are checked when an account is created, so only an account made before
         * that check can get here: say so rather than skip quiet hours unnoticed. */
        cd_buf f = {0};
        cd_buf_printf(&f, "\"account_id\":%lld,\"timezone\":", (long long)a->id);
        cd_json_quote(&f, a->timezone);
        cd_log("error", "quiet_hours_unknown_zone", f.data);
        cd_buf_free(&f);
    }
    if (until > 0) {
        char t[CD_TIME_LEN];
        cd_time_format(until, t);
        snprintf(detail, 80, "held for quiet hours until %s", t);
        m->next_attempt_ms = until;
    }
}

static int claim_refusal(cd_db *db, const cd_message *m, const char **reason, cd_err *err);

/* ---- issue 10 (perf): claimed in the transaction that queues it ----
 *
 * A message that no caller reads back, due now, is offered to the delivery worker as it is
 * queued (cd_store_claimer): when the worker has room, the message is stored 'sending'
 * instead of 'queued', after the very checks the claim job would make (claim_refusal, in
 * this same transaction: consent is checked when the message is created and when it is
 * claimed, which is now the same moment), and handed to the worker once its commit is
 * durable, as a claimed message always is. What the checks would refuse is queued as
 * before, and refused by the claim job, on record. Nothing else changes: its webhook says
 * queued, its history too; an opt-out committed later finds it claimed, as it would have
 * found it a commit later. */
typedef struct claim_taken {
    const cd_store_claimer *c;
    cd_message m;   /* the fields the worker needs; text owned */
    uint64_t epoch; /* opt-outs of the account when the checks ran (cd_store_optout_epoch) */
} claim_taken;

static void claimed_settle(void *arg, bool durable)
{
    claim_taken *k = arg;
    k->c->settle(k->c->arg, &k->m, k->epoch, durable);
    free(k->m.text);
    free(k);
}

/* Sets m 'sending' (first attempt) when the worker takes it; *taken says so. */
static int claim_as_queued(cd_db *db, cd_message *m, bool *taken, cd_err *err)
{
    const cd_store_claimer *c = cd_store_claimer_of(db);
    const char *reason;
    *taken = false;
    if (c == NULL || m->next_attempt_ms > m->created_ms)
        return 0;
    uint64_t epoch = cd_store_optout_epoch(cd_store_of(db), m->account_id); /* before checks */
    if (claim_refusal(db, m, &reason, err) != 0)
        return -1;
    if (reason != NULL || !c->reserve(c->arg, m->transport, m->kind))
        return 0;
    claim_taken *k = cd_xmalloc(sizeof *k);
    k->c = c;
    k->epoch = epoch;
    k->m = *m;
    k->m.text = cd_xstrdup(m->text ? m->text : "");
    k->m.history = NULL;
    k->m.history_json = NULL;
    /* Settled once whatever happens: rolled back with the job, or after the commit. */
    if (!cd_store_after_durable(db, claimed_settle, k)) {
        claimed_settle(k, false);
        return 0;
    }
    snprintf(m->status, sizeof m->status, "sending");
    m->attempts = 1;
    *taken = true;
    return 0;
}

/* Stores a message claimed as it was queued: its message.status event says queued, as the
 * claim itself has none. */
static int insert_claimed(cd_db *db, const cd_message *m, cd_err *err)
{
    if (cd_store_message_insert(db, m, err) != 0)
        return -1;
    cd_message q = *m; /* shares m's pointers: read only */
    snprintf(q.status, sizeof q.status, "queued");
    return cd_events_message_status(db, &q, err);
}

int cd_message_queue(cd_db *db, const cd_account *a, const json_t *settings, const cd_send_in *in,
                     cd_message *out, cd_err *err)
{
    cd_message m;
    bool over = false;
    char detail[80];
    assert(a != NULL && in != NULL && in->to != NULL);
    int rc = prepare(db, a, settings, in, &m, err);
    if (rc == 0) {
        snprintf(m.action, sizeof m.action, "%s", in->action ? in->action : "");
        rc = over_cap(db, settings, in, &m, &over, err);
    }
    if (rc == 0 && (over || m.reason[0])) {
        /* Over the cap the message is kept, refused, so the abuse is on record. */
        rc = store_refused(db, &m, m.reason[0] ? "no_healthy_sender" : "rate_limited", err);
    } else if (rc == 0) {
        bool taken = false;
        schedule(a, settings, &m, detail);
        if (out != NULL)
            cd_message_history(&m, "queued", detail, m.created_ms);
        else
            queued_history(&m, detail);
        if (out == NULL)
            rc = claim_as_queued(db, &m, &taken, err);
        if (rc == 0)
            rc = taken ? insert_claimed(db, &m, err) : insert(db, &m, err);
    }
    if (rc == 0 && out)
        *out = m;
    else
        cd_message_clear(&m);
    return rc;
}

int cd_message_send(cd_db *db, const cd_account *a, const cd_send_in *in, cd_message *out,
                    const char **refused, cd_err *err)
{
    json_t *settings = NULL;
    cd_contact c;
    cd_scope scope;
    const char *reason = "no_consent";
    int rc = -1;
    assert(a != NULL && in != NULL && in->to != NULL && out != NULL && refused != NULL);
    memset(out, 0, sizeof *out);
    *refused = NULL;
    if (cd_scope_parse(in->scope ? in->scope : "all", "scope", &scope, err) != 0 ||
        cd_scope_exists(db, a->id, scope, "scope", err) != 0 ||
        cd_store_settings_get(db, a->id, &settings, err) != 0)
        goto done;
    cd_send_in s = *in;
    cd_err e;
    if (cd_store_contact_by_phone(db, a->id, in->to, &c, &e) == 0) {
        s.contact_id = c.id;
        rc = cd_consent_check(db, a->id, c.id, scope, &reason, err);
        cd_contact_clear(&c);
        if (rc != 0)
            goto done;
    } else if (e.code != CD_ENOTFOUND) {
        if (err)
            *err = e;
        goto done;
    }
    if (cd_consent_reason_allows(reason)) {
        rc = cd_message_queue(db, a, settings, &s, out, err);
        if (rc == 0 && strcmp(out->status, "refused") == 0) /* issue 14: no_healthy_sender */
            *refused = "no_healthy_sender";
        goto done;
    }
    /* Refused: still validated (a bad sender or text is the caller's error, not a refusal)
     * and stored, so that the refusal itself is on record. */
    if ((rc = prepare(db, a, settings, &s, out, err)) == 0)
        rc = store_refused(db, out, reason, err);
    if (rc == 0)
        *refused = reason;
    else
        cd_message_clear(out);
done:
    json_decref(settings);
    return rc;
}

int cd_message_refuse_invalid(cd_db *db, const cd_account *a, const char *to_raw, const char *text,
                              const char *scope, cd_message *out, cd_err *err)
{
    memset(out, 0, sizeof *out);
    cd_message_new_id(out->id);
    out->account_id = a->id;
    snprintf(out->to, sizeof out->to, "%.23s", to_raw ? to_raw : "");
    out->text = strdup(text ? text : "");
    snprintf(out->kind, sizeof out->kind, "send");
    snprintf(out->scope, sizeof out->scope, "%s", scope ? scope : "all");
    snprintf(out->direction, sizeof out->direction, "out");
    snprintf(out->category, sizeof out->category, "marketing");
    out->created_ms = out->updated_ms = cd_now_ms();
    return store_refused(db, out, "invalid_number", err);
}

/* ---- claiming ---- */

/* issue 10: a CTA to someone opted out of everything is refused, unless that opt-out was
 * made through the API: ProTexting asks such a contact again (cd_flow_in.admit_api_optout).
 * A CTA queued before the opt-out was refused by it (cd_consent_set), so only one queued
 * since can get here. After a STOP by SMS no CTA ever goes out. */
static int cta_after_stop(cd_db *db, const cd_message *m, const char **reason, cd_err *err)
{
    bool via_api;
    if (cd_consent_optout_via_api(db, m->account_id, m->contact_id, &via_api, NULL, err) != 0)
        return -1;
    if (!via_api)
        *reason = "opted_out";
    return 0;
}

/* issue 8 item 1: consent may have changed since the message was queued (a STOP, or a write
 * that went around cd_consent_set). A send needs consent for its scope now; a CTA asks for
 * consent but must not follow a STOP; keyword replies are what the law allows anyway. */
static int claim_refusal(cd_db *db, const cd_message *m, const char **reason, cd_err *err)
{
    cd_scope scope;
    *reason = NULL;
    bool reply = strcmp(m->kind, "keyword_reply") == 0;
    if (!reply && m->from[0] == '\0' && needs_sender(m->transport)) {
        *reason = "no_sender"; /* queued before senders were required */
        return 0;
    }
    if (strcmp(m->kind, "send") == 0) {
        if (m->contact_id == 0 || cd_scope_parse(m->scope, "scope", &scope, NULL) != 0) {
            *reason = "no_consent";
            return 0;
        }
        const char *r;
        if (cd_consent_check(db, m->account_id, m->contact_id, scope, &r, err) != 0)
            return -1;
        if (!cd_consent_reason_allows(r))
            *reason = r;
    } else if (strcmp(m->kind, "cta") == 0 && m->contact_id != 0) {
        cd_state all;
        if (cd_consent_state(db, m->account_id, m->contact_id, (cd_scope){.kind = CD_SCOPE_ALL},
                             &all, err) != 0)
            return -1;
        if (all == CD_STATE_OPTED_OUT && cta_after_stop(db, m, reason, err) != 0)
            return -1;
    }
    return 0;
}

/* Refuses the message when it is still `status`: *done says whether it was. */
static int refuse_if(cd_db *db, int64_t account_id, const char *id, const char *status,
                     const char *reason, int64_t now_ms, bool *done, cd_err *err)
{
    cd_message cur;
    *done = false;
    if (cd_store_message_get(db, account_id, id, &cur, err) != 0)
        return -1;
    int rc = 0;
    if (strcmp(cur.status, status) == 0) { /* a cancel or another worker may have won */
        snprintf(cur.reason, sizeof cur.reason, "%s", reason);
        cd_message_history(&cur, "refused", reason, now_ms);
        rc = update(db, &cur, true, err);
        *done = rc == 0;
    }
    cd_message_clear(&cur);
    return rc;
}

int cd_message_claim(cd_db *db, const cd_message *m, int64_t now_ms, bool *claimed,
                     const char **refused, cd_err *err)
{
    const char *reason;
    bool done;
    assert(m != NULL && m->id[0] != '\0' && claimed != NULL && refused != NULL);
    *claimed = false;
    *refused = NULL;
    if (claim_refusal(db, m, &reason, err) != 0)
        return -1;
    if (reason == NULL)
        return cd_store_message_claim(db, m->account_id, m->id, now_ms, claimed, err);
    if (refuse_if(db, m->account_id, m->id, "queued", reason, now_ms, &done, err) != 0)
        return -1;
    if (done)
        *refused = reason;
    return 0;
}

int cd_message_recheck(cd_db *db, const cd_message *m, const char **reason, cd_err *err)
{
    return claim_refusal(db, m, reason, err);
}

int cd_message_refuse_claimed(cd_db *db, int64_t account_id, const char *id, const char *reason,
                              int64_t now_ms, cd_err *err)
{
    bool done;
    return refuse_if(db, account_id, id, "sending", reason, now_ms, &done, err);
}

/* ---- what the transports report ---- */

/* Waits 2 s after the first failure, doubling up to 10 minutes. */
static int64_t backoff_ms(int attempts)
{
    int64_t ms = 2000;
    for (int i = 1; i < attempts && ms < 600000; i++)
        ms *= 2;
    return ms < 600000 ? ms : 600000;
}

/* issue 16: the common case, a message the transport took, when no webhook wants its status:
 * one UPDATE that appends to the history in place, and the parts, without reading the row. */
static int record_accepted(cd_db *db, const cd_sent_report *r, cd_err *err)
{
    char tid[64];
    snprintf(tid, sizeof tid, "%.63s", r->remote_id ? r->remote_id : "");
    if (cd_store_message_mark_sent(db, r->account_id, r->id, r->transport, tid, cd_now_ms(), err) !=
        0)
        return -1;
    char *ids = strdup(r->remote_id ? r->remote_id : "");
    char *save = NULL;
    int rc = 0;
    for (char *id = strtok_r(ids, ",", &save); id && rc == 0; id = strtok_r(NULL, ",", &save))
        rc = cd_store_part_insert(db, r->transport, id, r->account_id, r->id, err);
    free(ids);
    return rc;
}

int cd_message_record_sent(cd_db *db, const cd_sent_report *r, int max_attempts, cd_err *err)
{
    cd_message m;
    assert(r != NULL && r->id != NULL && r->transport != NULL);
    if (r->ok) {
        int listening = cd_events_listening(db, r->account_id, err);
        if (listening < 0)
            return -1;
        if (listening == 0)
            return record_accepted(db, r, err);
    }
    if (cd_store_message_get(db, r->account_id, r->id, &m, err) != 0)
        return -1;
    int64_t now = cd_now_ms();
    int rc = 0;
    snprintf(m.transport, sizeof m.transport, "%s", r->transport);
    if (r->ok) {
        /* The transport's ids are stored in the same commit that marks the message sent,
         * so once "sent" is durable, a restart will never submit it again. */
        snprintf(m.transport_id, sizeof m.transport_id, "%.63s", r->remote_id ? r->remote_id : "");
        cd_message_history(&m, "sent", m.transport_id, now);
        char *ids = strdup(r->remote_id ? r->remote_id : "");
        char *save = NULL;
        for (char *id = strtok_r(ids, ",", &save); id && rc == 0; id = strtok_r(NULL, ",", &save))
            rc = cd_store_part_insert(db, r->transport, id, m.account_id, m.id, err);
        free(ids);
    } else if (r->permanent || m.attempts >= max_attempts) {
        snprintf(m.reason, sizeof m.reason, "%.63s", r->error ? r->error : "failed");
        cd_message_history(&m, "failed", r->error, now);
    } else {
        m.next_attempt_ms = now + backoff_ms(m.attempts);
        cd_message_history(&m, "queued", r->error, now);
    }
    if (rc == 0) /* a retry goes back to queued quietly: it was never anything else */
        rc = update(db, &m, strcmp(m.status, "queued") != 0, err);
    cd_message_clear(&m);
    return rc;
}

int cd_message_record_receipt(cd_db *db, const char *transport, const char *remote_id,
                              const char *status, const char *detail, cd_err *err)
{
    cd_message m;
    int counts[3]; /* parts, delivered, failed */
    if (cd_store_part_message(db, transport, remote_id, &m, err) != 0)
        return -1;
    bool unknown = strcmp(status, "unknown") == 0;
    int rc = unknown ? 0
                     : cd_store_part_status(db, transport, remote_id, status, m.account_id, m.id,
                                            counts, err);
    if (rc != 0) {
        cd_message_clear(&m);
        return -1;
    }
    /* A message is delivered when every part is; one part that failed fails it for good,
     * whatever order the receipts come in. An "unknown" receipt is noted, not believed. */
    const char *st = m.status;
    if (!unknown && counts[2] > 0) {
        st = "failed";
        if (strcmp(m.status, "failed") != 0)
            snprintf(m.reason, sizeof m.reason, "%.63s", status);
    } else if (!unknown && counts[1] == counts[0] && strcmp(m.status, "failed") != 0) {
        st = "delivered";
    }
    char note[96], state[16];
    snprintf(note, sizeof note, "receipt %.20s for %.30s: %.30s", status, remote_id,
             detail ? detail : "");
    snprintf(state, sizeof state, "%s", st);
    bool changed = strcmp(state, m.status) != 0;
    cd_message_history(&m, state, note, cd_now_ms());
    rc = update(db, &m, changed, err);
    if (rc == 0) /* issue 14: the sender's health for the number pool */
        rc = cd_pool_note_receipt(db, m.account_id, m.from, status, err);
    cd_message_clear(&m);
    return rc;
}
