/* api/cursor.c -- the CURSOR CRM opt-in module (issue 13; seed 003): see cursor.h.
 *
 * One opt-in record is one native flow (core/flow.h) with one scope: pk = the flow id,
 * extRefNo = its ext_ref, and its status follows the flow's (pending PENDING, confirmed
 * APPROVED, cancelled DECLINED, expired EXPIRED, revoked REVOKED). An approved EMAIL
 * record stays PENDING while a mail (delivery/mail.h) carries its confirmation link; the
 * request that queued the mail answers once its first attempt is done. Writes are jobs on
 * the store's writer, durable before they are answered; reads use the request's reader. */
#include "api/cursor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/guard.h"
#include "api/kit.h"
#include "core/contact.h"
#include "core/flow.h"
#include "delivery/mail.h"
#include "util/crypto.h"
#include "util/timeutil.h"

#define CTYPE       "application/json; charset=UTF-8"
#define MAX_RECORDS 20  /* records in one call */
#define MAX_FLOWS   200 /* records of one extRefNo or one contact that a call reads */
#define MAX_BODY    (64 * 1024)

/* ---- errors: {status, message}, with CURSOR's own codes ---- */

static int status_of(const cd_err *e)
{
    const char *r = cd_err_reason(e);
    if (!strcmp(r, "no_contact"))
        return 520;
    if (!strcmp(r, "no_optins") || !strcmp(r, "flow_not_pending"))
        return 521;
    switch (e->code) {
    case CD_EINVAL:
        if (!strcmp(r, "request_timeout"))
            return 408;
        return strcmp(r, "bad_request") == 0 ? 400 : 522;
    case CD_ECONFLICT: /* an opt-out of everything: nobody to ask (issue 13 decisions) */
        return 522;
    case CD_EAUTH:
        return 401;
    case CD_ENOTFOUND:
        return 404;
    case CD_EMETHOD:
        return 405;
    case CD_ELIMIT:
        return 413;
    case CD_EMISMATCH:
        return 422;
    case CD_EBUSY:
        return strcmp(r, "rate_limited") == 0 ? 429 : 503;
    case CD_ESTORE:
        return 503;
    default:
        return 500;
    }
}

static int reply(cd_req *req, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s == NULL)
        return cd_reply_data(req, 500, CTYPE, "{\"status\":500,\"message\":\"internal error\"}",
                             42);
    return cd_reply_take(req, status, CTYPE, s, strlen(s));
}

static int reply_error(cd_req *req, const cd_err *err)
{
    int status = status_of(err);
    if (status == 429 || status == 503)
        cd_reply_header(req, "Retry-After", "1");
    return reply(req, status,
                 json_pack("{si ss}", "status", status, "message",
                           err->msg[0] ? err->msg : cd_err_reason(err)));
}

static int fail(cd_req *req, const char *msg)
{
    cd_err e;
    cd_fail_reason(&e, CD_EINVAL, "invalid_field", "optIns", "%s", msg);
    return reply_error(req, &e);
}

/* ---- authentication: Basic base64(login:key), or Bearer key ---- */

static int authenticate(cd_req *req, cd_err *err)
{
    return cd_api_authenticate(req, cd_api_env_of(req)->store, CD_AUTH_BASIC | CD_AUTH_BEARER, err);
}

static const cd_surface surface = {
    .name = "cursor", .authenticate = authenticate, .reply_error = reply_error};

#define WHO(req) (cd_api_who(req))

/* ---- records ---- */

/* "ALL", "GROUP:<id>", "MESSAGE_TYPE:<id>" -> the scope's name ("all", "group:1"). */
static int parse_type(const char *type, char out[CD_SCOPE_LEN], cd_err *err)
{
    char buf[CD_SCOPE_LEN + 16];
    cd_scope sc;
    if (type == NULL)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "type", "type is required");
    if (!strcmp(type, "ALL"))
        snprintf(buf, sizeof buf, "all");
    else if (!strncmp(type, "GROUP:", 6) && strlen(type) < 30)
        snprintf(buf, sizeof buf, "group:%s", type + 6);
    else if (!strncmp(type, "MESSAGE_TYPE:", 13) && strlen(type) < 37)
        snprintf(buf, sizeof buf, "type:%s", type + 13);
    else
        buf[0] = '\0';
    if (!buf[0] || cd_scope_parse(buf, "type", &sc, NULL) != 0)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "type",
                              "type is ALL, GROUP:<id> or MESSAGE_TYPE:<id>");
    cd_scope_format(sc, out);
    return 0;
}

static json_t *type_json(const json_t *scopes)
{
    const char *s = json_string_value(json_array_get(scopes, 0));
    char buf[64];
    if (s == NULL || !strcmp(s, "all"))
        return json_string("ALL");
    snprintf(buf, sizeof buf, "%s:%s", !strncmp(s, "group:", 6) ? "GROUP" : "MESSAGE_TYPE",
             strchr(s, ':') + 1);
    return json_string(buf);
}

static const char *status_name(const char *flow_status)
{
    static const char *const map[][2] = {{"pending", "PENDING"},
                                         {"confirmed", "APPROVED"},
                                         {"cancelled", "DECLINED"},
                                         {"expired", "EXPIRED"},
                                         {"revoked", "REVOKED"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(flow_status, map[i][0]))
            return map[i][1];
    return "PENDING";
}

/* How the answer was given: a YES (SMS), the mail's link (EMAIL) or another link (WEB),
 * else the API. */
static const char *origin_of(const cd_flow *f)
{
    if (!strcmp(f->confirmed_via, "sms"))
        return "SMS";
    if (!strcmp(f->confirmed_via, "link"))
        return strcmp(f->channel, "email") == 0 ? "EMAIL" : "WEB";
    return "API";
}

static json_t *time_json(int64_t ms)
{
    char t[CD_TIME_LEN];
    cd_time_format(ms, t);
    return json_string(t);
}

/* OptInInfoDTO */
static json_t *record_json(const cd_flow *f)
{
    return json_pack("{ss so ss sb ss ss so so so}", "pk", f->id, "type", type_json(f->scopes),
                     "status", status_name(f->status), "approval",
                     strcmp(f->status, "cancelled") != 0, "origin", origin_of(f), "channel",
                     strcmp(f->channel, "email") == 0 ? "EMAIL" : "SMS", "extRefNo",
                     f->ext_ref[0] ? json_string(f->ext_ref) : json_null(), "createdOn",
                     time_json(f->created_ms), "updatedOn", time_json(f->updated_ms));
}

/* ---- request parsing ---- */

typedef struct record {
    char scope[CD_SCOPE_LEN]; /* "" when no type was given (PUT by pk) */
    int email;                /* 1 EMAIL, 0 SMS, -1 not given (PUT) */
    const char *ext_ref;      /* NULL: the call's */
    int approval;             /* 1, 0, or -1 when not given */
    const char *pk;           /* PUT: the record's id */
} record;

/* The query's approval: default true. */
static int query_approval(cd_req *req, bool *out, bool *given, cd_err *err)
{
    const char *q = cd_req_query(req, "approval");
    *out = true;
    *given = q != NULL;
    if (q == NULL)
        return 0;
    if (!strcasecmp(q, "true") || !strcasecmp(q, "false")) {
        *out = strcasecmp(q, "true") == 0;
        return 0;
    }
    return cd_fail_reason(err, CD_EINVAL, "invalid_field", "approval", "approval is true or false");
}

/* The list `optIns`: {"optIns":[...]}, a bare array, or a form field holding that JSON.
 * *out = NULL when the body has none (borrowed, lives with the request). */
static int read_list(cd_req *req, json_t **out, cd_err *err)
{
    size_t len = 0;
    *out = NULL;
    if (cd_req_body(req, &len) == NULL || len == 0)
        return 0;
    json_t *body = cd_req_json(req, err), *v;
    if (body == NULL)
        return cd_fail_reason(err, CD_EINVAL, "invalid_json", "", "the body is not valid JSON");
    if (json_is_array(body)) {
        *out = body;
        return 0;
    }
    v = json_is_object(body) ? json_object_get(body, "optIns") : NULL;
    if (json_is_string(v)) { /* a form field: its value is the JSON list */
        json_t *parsed = json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, NULL);
        json_t *inner = json_is_object(parsed) ? json_object_get(parsed, "optIns") : parsed;
        json_object_set_new(body, "optIns", json_incref(inner)); /* request-owned now */
        json_decref(parsed);
        v = inner;
    }
    if (v != NULL && !json_is_array(v))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "optIns",
                              "optIns is a list of opt-in records");
    *out = v;
    return 0;
}

static int opt_text(json_t *o, const char *k, size_t max, const char **out, cd_err *err)
{
    if (cd_api_opt_string(o, k, max, out, err) != 0)
        return -1;
    if (*out && (**out == '\0' || strpbrk(*out, "\r\n\t")))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", k, "%s is not valid", k);
    return 0;
}

static int read_record(json_t *o, bool put, record *r, cd_err *err)
{
    const char *type = NULL, *channel = NULL;
    memset(r, 0, sizeof *r);
    if (!json_is_object(o))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "optIns",
                              "each opt-in record is an object");
    if (opt_text(o, "type", 64, &type, err) != 0 || opt_text(o, "channel", 8, &channel, err) != 0 ||
        opt_text(o, "extRefNo", 127, &r->ext_ref, err) != 0 ||
        (put && opt_text(o, "pk", 39, &r->pk, err) != 0))
        return -1;
    json_t *ap = json_object_get(o, "approval");
    r->approval = json_is_boolean(ap) ? json_is_true(ap) : -1;
    if (ap && !json_is_null(ap) && !json_is_boolean(ap))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "approval",
                              "approval is true or false");
    r->email = channel == NULL             ? -1
               : !strcmp(channel, "EMAIL") ? 1
               : !strcmp(channel, "SMS")   ? 0
                                           : -2;
    if (r->email == -2 || (!put && r->email < 0))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "channel",
                              "channel is SMS or EMAIL");
    if (type || !put)
        return parse_type(type, r->scope, err);
    if (r->pk == NULL) /* a PUT record names its record: by pk, or by type and channel */
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "pk",
                              "each record needs its pk, or its type and channel");
    return 0;
}

/* ---- the operation: parsed on the HTTP thread, run on the writer ---- */

typedef struct optin_op {
    cd_req *req;
    cd_principal who;
    char ip[64];
    const char *user_agent;
    char request_id[40];
    const char *ref; /* the path's contactId or extRefNo */
    record recs[MAX_RECORDS];
    int n;
    bool approval, approval_given;
    char ext_ref[128]; /* the call's extRefNo */
    /* the outcome */
    cd_flow *flows; /* the records made or changed (malloc'd: MAX_FLOWS) */
    int nflows;
    cd_jobs *jobs;      /* borrowed from the env; NULL: no worker (mail queued, not awaited) */
    int64_t mail_job;   /* the queued mail's job, 0 when none */
    uint64_t watch;     /* its watch token */
    atomic_int handoff; /* 1: the request waits; 2: the attempt is done (whoever is second
                         * wakes the request) */
    int mail_rc;
    cd_err mail_err;
} optin_op;

static void op_clear(optin_op *op)
{
    for (int i = 0; op->flows && i < op->nflows; i++)
        cd_flow_clear(&op->flows[i]);
    free(op->flows);
    op->flows = NULL;
    op->nflows = 0;
}

static cd_provenance prov_of(const optin_op *op, const char *ext_ref)
{
    return (cd_provenance){.surface = "cursor",
                           .channel = "api",
                           .ext_ref = ext_ref,
                           .ip = op->ip,
                           .user_agent = op->user_agent,
                           .credential_id = op->who.credential_id,
                           .request_id = op->request_id};
}

static optin_op *op_new(cd_req *req, bool put, cd_err *err)
{
    optin_op *op = cd_req_alloc(req, sizeof *op);
    json_t *list, *o;
    size_t i;
    op->req = req;
    op->jobs = cd_api_env_of(req)->jobs;
    op->who = *WHO(req);
    snprintf(op->ip, sizeof op->ip, "%s", cd_req_client_ip(req));
    op->user_agent = cd_req_header(req, "User-Agent");
    snprintf(op->request_id, sizeof op->request_id, "%s", cd_req_id(req));
    if (query_approval(req, &op->approval, &op->approval_given, err) != 0 ||
        read_list(req, &list, err) != 0)
        return NULL;
    if (json_array_size(list) > MAX_RECORDS) {
        cd_fail_reason(err, CD_EINVAL, "invalid_field", "optIns", "at most %d records a call",
                       MAX_RECORDS);
        return NULL;
    }
    json_array_foreach (list, i, o)
        if (read_record(o, put, &op->recs[op->n++], err) != 0)
            return NULL;
    return op;
}

/* ---- POST v1/optins/{contactId} ---- */

static int find_contact(cd_db *db, const optin_op *op, cd_contact *c, cd_err *err)
{
    cd_err e;
    if (cd_contact_find(db, op->who.account.id, op->who.account.region, op->ref, c, &e) == 0)
        return 0;
    if (e.code != CD_ENOTFOUND) {
        if (err)
            *err = e;
        return -1;
    }
    return cd_fail_reason(err, CD_ENOTFOUND, "no_contact", "", "No contact found for id %s.",
                          op->ref);
}

/* Makes record r for contact c: started (pending, its CTA queued when SMS), or declined. */
static int make_record(cd_db *db, optin_op *op, const record *r, const cd_contact *c, cd_flow *out,
                       cd_err *err)
{
    json_t *scopes = json_pack("[s]", r->scope);
    const char *ext_ref = r->ext_ref ? r->ext_ref : op->ext_ref;
    char text[400];
    /* What the mail shows (and the ledger hashes): the default CTA asks for an SMS reply. */
    snprintf(text, sizeof text,
             "%s: please confirm that you want to receive our text messages at %s. Msg&data "
             "rates may apply. Reply STOP to any of them to cancel.",
             cd_account_brand(&op->who.account), c->phone);
    cd_flow_in in = {.phone = c->phone,
                     .scopes = scopes,
                     .channel = r->email ? "email" : "sms",
                     .ext_ref = ext_ref,
                     .email = r->email ? c->email : NULL,
                     .disclosure = r->email ? text : NULL};
    cd_provenance p = prov_of(op, ext_ref);
    bool approve = r->approval >= 0 ? r->approval : op->approval;
    int rc = approve ? cd_flow_start(db, &op->who.account, &in, &p, out, NULL, err)
                     : cd_flow_start_declined(db, &op->who.account, &in, &p, out, err);
    json_decref(scopes);
    return rc;
}

static void mail_attempted(void *arg, const cd_job *job, const cd_job_outcome *out,
                           const cd_job_verdict *v);

/* Queues the confirmation mail of the EMAIL records still pending (none: nothing), as a
 * durable job watched by this request. */
static int queue_mail(cd_db *db, optin_op *op, const cd_contact *c, cd_err *err)
{
    json_t *ids = json_array();
    for (int i = 0; i < op->nflows; i++)
        if (!strcmp(op->flows[i].channel, "email") && !strcmp(op->flows[i].status, "pending"))
            json_array_append_new(ids, json_string(op->flows[i].id));
    int rc = 0;
    if (json_array_size(ids) > 0) {
        json_t *payload = cd_mail_payload(c->email, ids);
        cd_job j = {.account_id = op->who.account.id, .payload = json_dumps(payload, JSON_COMPACT)};
        snprintf(j.kind, sizeof j.kind, "%s", CD_MAIL_JOB_KIND);
        snprintf(j.ref, sizeof j.ref, "%s", json_string_value(json_array_get(ids, 0)));
        /* Watched before it is queued: the worker may try it as soon as it is committed. */
        j.watch = op->jobs ? cd_jobs_watch(op->jobs, mail_attempted, op) : 0;
        rc = cd_store_job_enqueue(db, &j, err);
        if (rc == 0) {
            op->mail_job = j.id;
            op->watch = j.watch;
        } else if (j.watch) {
            cd_jobs_unwatch(op->jobs, j.watch);
        }
        free(j.payload);
        json_decref(payload);
    }
    json_decref(ids);
    return rc;
}

static int job_post(cd_db *db, void *arg, cd_err *err)
{
    optin_op *op = arg;
    cd_contact c;
    if (find_contact(db, op, &c, err) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < op->n; i++) {
        bool approve = op->recs[i].approval >= 0 ? op->recs[i].approval : op->approval;
        if (op->recs[i].email && approve && (c.email == NULL || !strchr(c.email, '@')))
            rc = cd_fail_reason(err, CD_EINVAL, "no_email", "",
                                "The contact has no e-mail address for an EMAIL opt-in.");
    }
    op->flows = calloc(MAX_RECORDS, sizeof *op->flows);
    for (int i = 0; rc == 0 && i < op->n; i++) {
        rc = make_record(db, op, &op->recs[i], &c, &op->flows[i], err);
        if (rc == 0)
            op->nflows++;
    }
    if (rc == 0)
        rc = queue_mail(db, op, &c, err);
    cd_contact_clear(&c);
    return rc;
}

/* ---- answers ---- */

/* OptInDTO: the outcome of a POST or PUT. */
static json_t *outcome_json(const optin_op *op, bool mail_sent)
{
    json_t *recs = json_array(), *msgs = json_array();
    bool sms = false;
    for (int i = 0; i < op->nflows; i++) {
        json_array_append_new(recs, record_json(&op->flows[i]));
        sms = sms ||
              (!strcmp(op->flows[i].channel, "sms") && !strcmp(op->flows[i].status, "pending"));
    }
    if (sms)
        json_array_append_new(msgs, json_string("A confirmation SMS was queued."));
    if (op->mail_job && mail_sent)
        json_array_append_new(msgs, json_string("The confirmation e-mail was sent."));
    else if (op->mail_job && !op->watch)
        json_array_append_new(msgs, json_string("The confirmation e-mail was queued."));
    else if (op->mail_job)
        json_array_append_new(msgs, json_pack("s++", "The confirmation e-mail could not be sent (",
                                              op->mail_err.msg, "); it will be retried."));
    return json_pack("{ss so sb so}", "extRefNo", op->ext_ref, "optIns", recs, "mailSent",
                     mail_sent, "messages", msgs);
}

/* Answers the outcome once the mail's first attempt is done: 525 (with the outcome) when
 * it failed: the records stay PENDING and the mail is retried. */
static int mail_finish(cd_req *req, void *arg, int rc, const cd_err *err)
{
    optin_op *op = arg;
    int out;
    if (rc != 0 && op->mail_rc == 0) { /* stopping before the attempt was reported */
        op->mail_rc = rc;
        op->mail_err = *err;
    }
    json_t *body = outcome_json(op, op->mail_rc == 0);
    if (op->mail_rc == 0) {
        out = reply(req, 200, body);
    } else {
        json_object_set_new(body, "status", json_integer(525));
        json_object_set_new(body, "message",
                            json_string("Error during mail sending: the opt-ins are kept "
                                        "pending and the mail will be retried."));
        out = reply(req, 525, body);
    }
    op_clear(op);
    return out;
}

/* The mail's first attempt is durable (on the job worker's loop thread; job is NULL when
 * the worker stopped first). Wakes the request if it waits already, else leaves the
 * outcome for write_finish. */
static void mail_attempted(void *arg, const cd_job *job, const cd_job_outcome *out,
                           const cd_job_verdict *v)
{
    optin_op *op = arg;
    (void)v;
    op->mail_rc = job && out->result == CD_JOB_DONE ? 0 : -1;
    if (op->mail_rc != 0)
        cd_fail_reason(&op->mail_err, CD_EINTERNAL, "mail_failed", "", "%s", out->error);
    if (atomic_exchange(&op->handoff, 2) == 1)
        cd_req_wake(op->req, 0, NULL);
}

static int write_finish(cd_req *req, void *arg, int rc, const cd_err *err)
{
    optin_op *op = arg;
    if (rc != 0) {
        if (op->watch)
            cd_jobs_unwatch(op->jobs, op->watch);
        op_clear(op);
        return reply_error(req, err);
    }
    if (op->mail_job && op->watch) { /* suspended again, until the first attempt is done */
        int out = cd_req_wait(req, mail_finish, op);
        if (atomic_exchange(&op->handoff, 1) == 2)
            cd_req_wake(req, 0, NULL);
        return out;
    }
    int out = reply(req, 200, outcome_json(op, false));
    op_clear(op);
    return out;
}

static int h_post(cd_req *req)
{
    cd_err err;
    optin_op *op = op_new(req, false, &err);
    if (op == NULL)
        return reply_error(req, &err);
    if (op->n == 0)
        return fail(req, "optIns must hold at least one record");
    op->ref = cd_req_param(req, "contactId");
    /* One extRefNo for the records of the call that carry none: the first one given, else
     * a new one. */
    for (int i = 0; i < op->n && !op->ext_ref[0]; i++)
        if (op->recs[i].ext_ref)
            snprintf(op->ext_ref, sizeof op->ext_ref, "%s", op->recs[i].ext_ref);
    if (!op->ext_ref[0]) {
        char hex[33];
        cd_random_hex(hex, 16);
        snprintf(op->ext_ref, sizeof op->ext_ref, "optin-%s", hex);
    }
    return cd_req_defer(req, cd_api_env_of(req)->store, job_post, op, write_finish);
}

/* ---- PUT v1/optins/flows/{extRefNo} ---- */

typedef struct flow_set {
    cd_flow *v;
    int n;
} flow_set;

static int collect(const cd_flow *f, int64_t rowid, void *arg)
{
    flow_set *s = arg;
    (void)rowid;
    if (s->n == MAX_FLOWS)
        return 1;
    cd_flow_copy(&s->v[s->n++], f);
    return 0;
}

/* Every record of the account with this extRefNo (or of this contact), oldest first. */
static int list_records(cd_db *db, int64_t account_id, const char *ext_ref, int64_t contact_id,
                        flow_set *s, cd_err *err)
{
    cd_flow_filter f = {.ext_ref = ext_ref, .contact_id = contact_id, .limit = MAX_FLOWS};
    s->v = calloc(MAX_FLOWS, sizeof *s->v);
    s->n = 0;
    return cd_store_flow_list(db, account_id, &f, collect, s, err);
}

static void set_clear(flow_set *s)
{
    for (int i = 0; s->v && i < s->n; i++)
        cd_flow_clear(&s->v[i]);
    free(s->v);
    s->v = NULL;
}

static bool eligible(const cd_flow *f)
{
    return !strcmp(f->status, "pending") && f->expires_ms > cd_now_ms();
}

static bool matches(const cd_flow *f, const record *r)
{
    if (r->pk)
        return !strcmp(f->id, r->pk);
    return !strcmp(json_string_value(json_array_get(f->scopes, 0)), r->scope) &&
           (r->email < 0 || r->email == !strcmp(f->channel, "email"));
}

/* The approval each eligible record gets: 1 or 0, -1 = left alone. A listed record that
 * matches no eligible record is 521. */
static int decide(const optin_op *op, const flow_set *s, int *verdict, cd_err *err)
{
    for (int i = 0; i < s->n; i++)
        verdict[i] = op->n == 0 && eligible(&s->v[i]) ? op->approval : -1;
    for (int k = 0; k < op->n; k++) {
        const record *r = &op->recs[k];
        bool found = false;
        for (int i = 0; i < s->n && !found; i++)
            if (eligible(&s->v[i]) && verdict[i] < 0 && matches(&s->v[i], r)) {
                verdict[i] = r->approval >= 0 ? r->approval : op->approval;
                found = true;
            }
        if (!found)
            return cd_fail_reason(err, CD_ENOTFOUND, "no_optins", "",
                                  "No eligible Opt-Ins found for extRefNo %s.", op->ref);
    }
    return 0;
}

static int job_put(cd_db *db, void *arg, cd_err *err)
{
    optin_op *op = arg;
    flow_set s;
    int verdict[MAX_FLOWS];
    int rc = list_records(db, op->who.account.id, op->ref, 0, &s, err);
    bool any = false;
    for (int i = 0; rc == 0 && i < s.n; i++)
        any = any || eligible(&s.v[i]);
    if (rc == 0 && !any)
        rc = cd_fail_reason(err, CD_ENOTFOUND, "no_optins", "",
                            "No eligible Opt-Ins found for extRefNo %s.", op->ref);
    if (rc == 0)
        rc = decide(op, &s, verdict, err);
    op->flows = calloc(MAX_FLOWS, sizeof *op->flows);
    cd_provenance p = prov_of(op, op->ref);
    for (int i = 0; rc == 0 && i < s.n; i++) {
        if (verdict[i] < 0)
            continue;
        rc = verdict[i] ? cd_flow_confirm(db, &op->who.account, &s.v[i], "api", &p, err)
                        : cd_flow_close(db, op->who.account.id, &s.v[i], "cancelled", &p, err);
        if (rc == 0) { /* handed over to the outcome */
            op->flows[op->nflows++] = s.v[i];
            memset(&s.v[i], 0, sizeof s.v[i]);
        }
    }
    set_clear(&s);
    return rc;
}

static int h_put(cd_req *req)
{
    cd_err err;
    optin_op *op = op_new(req, true, &err);
    if (op == NULL)
        return reply_error(req, &err);
    op->ref = cd_req_param(req, "extRefNo");
    snprintf(op->ext_ref, sizeof op->ext_ref, "%s", op->ref);
    if (op->n == 0 && !op->approval_given)
        return fail(req, "optIns may be empty only with the query parameter approval");
    return cd_req_defer(req, cd_api_env_of(req)->store, job_put, op, write_finish);
}

/* ---- GET: the overviews ---- */

/* OptInOverviewDTO */
static json_t *overview_json(int64_t contact_id, const char *ext_ref, const flow_set *s)
{
    char id[32];
    json_t *recs = json_array();
    snprintf(id, sizeof id, "%lld", (long long)contact_id);
    for (int i = 0; i < s->n; i++)
        json_array_append_new(recs, record_json(&s->v[i]));
    json_t *o = json_pack("{ss}", "contactId", id);
    if (ext_ref)
        json_object_set_new(o, "extRefNo", json_string(ext_ref));
    json_object_set_new(o, "optIns", recs);
    return o;
}

static int h_get_contact(cd_req *req)
{
    cd_err err;
    cd_contact c;
    flow_set s = {0};
    optin_op op = {.who = *WHO(req), .ref = cd_req_param(req, "contactId")};
    cd_db *db = cd_api_reader(req, &err);
    if (db == NULL || find_contact(db, &op, &c, &err) != 0)
        return reply_error(req, &err);
    int64_t id = c.id;
    cd_contact_clear(&c);
    if (list_records(db, op.who.account.id, NULL, id, &s, &err) != 0) {
        set_clear(&s);
        return reply_error(req, &err);
    }
    json_t *body = overview_json(id, NULL, &s);
    set_clear(&s);
    return reply(req, 200, body);
}

static int h_get_flow(cd_req *req)
{
    cd_err err;
    flow_set s = {0};
    const char *ext_ref = cd_req_param(req, "extRefNo");
    cd_db *db = cd_api_reader(req, &err);
    if (db == NULL)
        return reply_error(req, &err);
    int rc = list_records(db, WHO(req)->account.id, ext_ref, 0, &s, &err);
    if (rc != 0 || s.n == 0) {
        if (rc == 0)
            cd_fail_reason(&err, CD_ENOTFOUND, "no_optins", "", "No Opt-Ins found for extRefNo %s.",
                           ext_ref);
        set_clear(&s);
        return reply_error(req, &err);
    }
    json_t *body = overview_json(s.v[0].contact_id, ext_ref, &s);
    set_clear(&s);
    return reply(req, 200, body);
}

/* ---- routes ---- */

void cd_api_cursor_routes(cd_router *r, const cd_api_env *env)
{
    void *ctx = cd_api_ctx(env);
    const cd_route_opts opts = {.max_body = MAX_BODY, .forms = true};
    const char *flows = "/rest/api/optin/v1/optins/flows/{extRefNo}";
    const char *contact = "/rest/api/optin/v1/optins/{contactId}";
    cd_router_add_opts(r, "GET", flows, &surface, h_get_flow, ctx, &opts);
    cd_router_add_opts(r, "PUT", flows, &surface, h_put, ctx, &opts);
    cd_router_add_opts(r, "GET", contact, &surface, h_get_contact, ctx, &opts);
    cd_router_add_opts(r, "POST", contact, &surface, h_post, ctx, &opts);
    cd_router_set_prefix_fallback(r, "/rest/api/optin/", &surface);
}
