/* api/protexting.c -- the ProTexting surface (issue 10, seed 000): parses ProTexting's
 * requests into core calls (cd_flow_start, cd_consent_set, cd_consent_undo_api_optout) and
 * renders the answers as ProTexting's Yii2 application does: the contact object of the
 * seed, 422 [{"field","message"}] listing every failing field, {"name","message","code",
 * "status"} for the other errors, and all of it as XML when asked with
 * "Accept: application/xml". Writes go through the kit (durable before answered). */
#include "api/protexting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/guard.h"
#include "api/kit.h"
#include "api/shape.h"
#include "core/consent.h"
#include "core/contact.h"
#include "core/flow.h"
#include "core/keyword.h"
#include "core/message.h"
#include "http/ratelimit.h"
#include "util/buf.h"
#include "util/gsm.h"
#include "util/timeutil.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#define PT_MAX_BODY   65536 /* bytes: a request is a number, a few ids and two short texts */
#define PT_MAX_GROUPS 100

/* The seed's defaults (issue 10). */
static const char default_cta[] =
    "Reply with YES to confirm your phone number. Msg&Data rates may apply.";
static const char default_confirm[] = "Your phone number is successfully confirmed";

/* ---- answers ---- */

/* XML when the client asks for it before (or instead of) JSON, as Yii's ContentNegotiator. */
static bool wants_xml(cd_req *req)
{
    const char *accept = cd_req_header(req, "Accept");
    const char *xml = accept ? strstr(accept, "application/xml") : NULL;
    const char *json = accept ? strstr(accept, "application/json") : NULL;
    return xml != NULL && (json == NULL || xml < json);
}

/* Answers `body` (taken) in the negotiated format, with the seed's headers. */
static int emit(cd_req *req, int status, json_t *body)
{
    cd_reply_header(req, "Cache-Control",
                    "no-store, no-cache, must-revalidate, post-check=0, pre-check=0");
    cd_reply_header(req, "Pragma", "no-cache");
    if (body == NULL)
        body = json_object();
    if (wants_xml(req)) {
        if (json_is_string(body)) { /* render_contact's text (it is told, but to be sure) */
            json_t *tree = json_loads(json_string_value(body), 0, NULL);
            json_decref(body);
            body = tree ? tree : json_object();
        }
        /* A contact is a one-element list in ProTexting's XML (seed 000). */
        bool contact = json_is_object(body) && json_object_get(body, "Id") != NULL;
        json_t *v = contact ? json_pack("[O]", body) : json_incref(body);
        char *xml = cd_shape_json_to_xml(v, NULL);
        json_decref(v);
        json_decref(body);
        if (xml == NULL)
            return cd_reply_data(req, 500, "application/xml; charset=UTF-8", "", 0);
        return cd_reply_take(req, status, "application/xml; charset=UTF-8", xml, strlen(xml));
    }
    /* A string is an answer render_contact wrote already. */
    char *s = json_is_string(body) ? strdup(json_string_value(body))
                                   : json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (s == NULL)
        return cd_reply_data(req, 500, "application/json; charset=UTF-8", "", 0);
    return cd_reply_take(req, status, "application/json; charset=UTF-8", s, strlen(s));
}

/* Yii2's HttpException body. */
static int http_error(cd_req *req, int status, const char *name, const char *message)
{
    return emit(
        req, status,
        json_pack("{ss ss si si}", "name", name, "message", message, "code", 0, "status", status));
}

/* ProTexting's field names for the model's. */
static const char *field_name(const char *field)
{
    static const struct {
        const char *ours, *theirs;
    } map[] = {{"phone", "PhoneNumber"},
               {"groups", "GroupIds"},
               {"scopes", "GroupIds"},
               {"disclosure", "CTAMessage"},
               {"text", "ConfirmMessage"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(field, map[i].ours) == 0)
            return map[i].theirs;
    return field[0] ? field : "PhoneNumber";
}

static int validation_error(cd_req *req, const char *field, const char *message)
{
    return emit(req, 422, json_pack("[{ss ss}]", "field", field, "message", message));
}

static int reply_error(cd_req *req, const cd_err *err)
{
    const char *reason = cd_err_reason(err);
    switch (err->code) {
    case CD_EINVAL:
        if (strcmp(reason, "request_timeout") == 0)
            return http_error(req, 408, "Request Timeout", "The request took too long.");
        return validation_error(req, field_name(err->field), err->msg);
    case CD_ECONFLICT: /* a rule the core enforces is a validation failure here */
    case CD_EMISMATCH:
        return validation_error(req, field_name(err->field), err->msg);
    case CD_EAUTH:
        return http_error(req, 401, "Unauthorized",
                          "Your request was made with invalid credentials.");
    case CD_ENOTFOUND:
        return http_error(req, 404, "Not Found", "Page not found.");
    case CD_EMETHOD:
        return http_error(req, 405, "Method Not Allowed",
                          "Method Not Allowed. This URL can only handle the following request "
                          "methods: POST.");
    case CD_ELIMIT:
        return http_error(req, 413, "Request Entity Too Large",
                          "The request body is larger than the server accepts.");
    case CD_EBUSY:
        if (strcmp(reason, "rate_limited") == 0)
            return http_error(req, 429, "Too Many Requests", "Rate limit exceeded.");
        cd_reply_header(req, "Retry-After", "1");
        return http_error(req, 503, "Service Unavailable", err->msg);
    case CD_ESTORE:
        return http_error(req, 503, "Service Unavailable", "Storage is unavailable; retry.");
    default:
        return http_error(req, 500, "Internal Server Error", "An internal error occurred.");
    }
}

static void headers(cd_req *req, int status)
{
    cd_ratelimit_add_headers(req, status, "X-Rate-Limit-");
}

static int authenticate(cd_req *req, cd_err *err)
{
    return cd_api_authenticate_or(req, cd_api_env_of(req)->store, CD_AUTH_QUERY_TOKEN,
                                  CD_PT_RATE_LIMIT, CD_PT_RATE_WINDOW_S, err);
}

static const cd_surface surface = {.name = "protexting",
                                   .authenticate = authenticate,
                                   .reply_error = reply_error,
                                   .headers = headers};
static const cd_api_surface kit = {
    .http = &surface, .idempotency = true, .forms = true, .reply = emit};

/* ---- the contact, as the seed shows it ---- */

static json_t *str_or_empty(const char *s)
{
    return json_string(s ? s : "");
}

static json_t *local_time(int64_t ms, const char *tz)
{
    char t[CD_TIME_LOCAL_LEN];
    cd_time_format_local(ms, tz, t);
    return json_string(t);
}

static json_t *contact_json(const cd_contact *c, bool opted_out, const char *tz)
{
    json_t *o =
        json_pack("{sI ss si}", "Id", (json_int_t)c->id, "Number",
                  c->phone[0] == '+' ? c->phone + 1 : c->phone, "OptedOut", opted_out ? 1 : 0);
    json_object_set_new(o, "FirstName", str_or_empty(c->first_name));
    json_object_set_new(o, "LastName", str_or_empty(c->last_name));
    json_object_set_new(o, "BirthDay",
                        json_string(c->birthday && *c->birthday ? c->birthday : "0000-00-00"));
    json_object_set_new(o, "Email", str_or_empty(c->email));
    json_object_set_new(o, "Zip", str_or_empty(c->zip));
    json_object_set_new(o, "City", str_or_empty(c->city));
    json_object_set_new(o, "DateCreated", local_time(c->created_ms, tz));
    json_object_set_new(o, "DateUpdated", local_time(c->updated_ms, tz));
    json_object_set_new(o, "GroupIds", c->groups ? json_deep_copy(c->groups) : json_array());
    json_object_set_new(o, "CustomFieldIds", json_array());
    return o;
}

/* ---- the same contact written straight as JSON (perf: no tree, no json_dumps) ---- */

static bool put_field(cd_buf *b, const char *key, const char *v)
{
    cd_buf_puts(b, key);
    return cd_utf8_json_string(b, v ? v : "") == 0;
}

/* contact_json's object as json_dumps(JSON_COMPACT) writes it, malloc'd; NULL when a field
 * is not UTF-8 or a group id not an integer (then the tree does what jansson does). */
static char *contact_text(const cd_contact *c, bool opted_out, const char *tz)
{
    char created[CD_TIME_LOCAL_LEN], updated[CD_TIME_LOCAL_LEN];
    cd_buf b = {.data = cd_xmalloc(512), .cap = 512}; /* a contact fits: no regrowth */
    b.data[0] = '\0';
    size_t i;
    json_t *g;
    cd_time_format_local(c->created_ms, tz, created);
    cd_time_format_local(c->updated_ms, tz, updated);
    cd_buf_puts(&b, "{\"Id\":");
    cd_buf_put_int(&b, c->id, 1);
    bool ok = put_field(&b, ",\"Number\":", c->phone[0] == '+' ? c->phone + 1 : c->phone);
    cd_buf_puts(&b, opted_out ? ",\"OptedOut\":1" : ",\"OptedOut\":0");
    ok =
        ok && put_field(&b, ",\"FirstName\":", c->first_name) &&
        put_field(&b, ",\"LastName\":", c->last_name) &&
        put_field(&b, ",\"BirthDay\":", c->birthday && *c->birthday ? c->birthday : "0000-00-00") &&
        put_field(&b, ",\"Email\":", c->email) && put_field(&b, ",\"Zip\":", c->zip) &&
        put_field(&b, ",\"City\":", c->city) && put_field(&b, ",\"DateCreated\":", created) &&
        put_field(&b, ",\"DateUpdated\":", updated);
    cd_buf_puts(&b, ",\"GroupIds\":[");
    json_array_foreach (c->groups, i, g) {
        ok = ok && json_is_integer(g);
        if (i > 0)
            cd_buf_append(&b, ",", 1);
        cd_buf_put_int(&b, json_integer_value(g), 1);
    }
    cd_buf_puts(&b, "],\"CustomFieldIds\":[]}");
    if (!ok)
        cd_buf_free(&b);
    return ok ? cd_buf_take(&b) : NULL;
}

/* What a write job leaves for the answer: the contact as stored, rendered after the commit. */
typedef struct pt_out {
    cd_contact contact;
    bool opted_out;
    bool xml; /* the answer is XML: it needs the tree */
    char tz[CD_TIME_ZONE_MAX + 1];
} pt_out;

static int load_contact(cd_db *db, int64_t account_id, int64_t id, pt_out *out, cd_err *err)
{
    cd_state all;
    cd_contact_clear(&out->contact);
    if (cd_store_contact_get(db, account_id, id, &out->contact, err) != 0 ||
        cd_consent_state(db, account_id, id, (cd_scope){.kind = CD_SCOPE_ALL}, &all, err) != 0)
        return -1;
    out->opted_out = all == CD_STATE_OPTED_OUT;
    return 0;
}

/* A JSON answer that no Idempotency-Key record keeps is written as text, carried to emit()
 * as a JSON string (which ProTexting never answers otherwise); the others as the tree. */
static void render_contact(cd_api_write_op *w)
{
    pt_out *out = w->in;
    char *text =
        out->xml || w->idem_key ? NULL : contact_text(&out->contact, out->opted_out, out->tz);
    w->body =
        text ? json_string_nocheck(text) : contact_json(&out->contact, out->opted_out, out->tz);
    free(text);
}

static void done_contact(cd_api_write_op *w)
{
    pt_out *out = w->in;
    cd_contact_clear(&out->contact);
}

/* ---- request parsing: every failing field is collected, as Yii's validation does ---- */

/* The body as an object (a new reference); one that is neither JSON nor a form reads as
 * empty (Decisions), so that the 422 lists the required fields. */
static json_t *body_of(cd_req *req)
{
    json_t *o = NULL;
    cd_err err;
    if (cd_api_body(req, &kit, &o, &err) != 0)
        o = NULL;
    return o ? json_incref(o) : json_object();
}

static void add_error(json_t *errs, const char *field, const char *message)
{
    json_array_append_new(errs, json_pack("{ss ss}", "field", field, "message", message));
}

/* PhoneNumber: international digits ("16465550123"); any format the account's region
 * reads as the same number is the same contact. An integer is taken as its digits. */
static void parse_phone(cd_req *req, json_t *o, char e164[CD_PHONE_MAX], json_t *errs)
{
    json_t *v = json_object_get(o, "PhoneNumber");
    char raw[72];
    if (json_is_integer(v) && json_integer_value(v) > 0)
        snprintf(raw, sizeof raw, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) < 64 &&
             strlen(json_string_value(v)) == json_string_length(v))
        snprintf(raw, sizeof raw, "%s", json_string_value(v));
    else if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        raw[0] = '\0';
    else
        snprintf(raw, sizeof raw, "?");
    if (raw[0] == '\0') {
        add_error(errs, "PhoneNumber", "Phone Number cannot be blank.");
        return;
    }
    char plus[80];
    snprintf(plus, sizeof plus, "+%s", raw);
    bool digits = strspn(raw, "0123456789") == strlen(raw);
    if ((digits && cd_api_normalize(req, plus, "PhoneNumber", e164, NULL) == 0) ||
        cd_api_normalize(req, raw, "PhoneNumber", e164, NULL) == 0)
        return;
    add_error(errs, "PhoneNumber", "Phone Number is not a valid phone number.");
}

/* One group id: an integer, or its digits in a string (forms send strings). */
static int64_t group_id(json_t *v)
{
    int64_t id = 0;
    if (json_is_integer(v))
        id = json_integer_value(v);
    else if (json_is_string(v) &&
             cd_api_parse_int(json_string_value(v), 1, 9007199254740991LL, &id) != 0)
        id = 0;
    return id > 0 ? id : 0;
}

/* GroupIds: a non-empty list of this account's group ids, into ids[] (*n of them). */
static void parse_groups(cd_req *req, json_t *o, int64_t ids[PT_MAX_GROUPS], int *n, json_t *errs)
{
    json_t *v = json_object_get(o, "GroupIds"), *x;
    size_t i;
    *n = 0;
    if (v != NULL && !json_is_array(v) && !json_is_null(v)) /* "GroupIds=1": one id */
        v = json_pack("[O]", v);
    else
        v = json_incref(v);
    if (json_array_size(v) == 0)
        add_error(errs, "GroupIds", "Group Ids cannot be blank.");
    else if (json_array_size(v) > PT_MAX_GROUPS)
        add_error(errs, "GroupIds", "Group Ids should contain at most 100 items.");
    cd_db *db = json_array_size(v) <= PT_MAX_GROUPS ? cd_api_reader(req, NULL) : NULL;
    int64_t acct = cd_api_who(req)->account.id;
    json_array_foreach (v, i, x) {
        int64_t id = group_id(x);
        cd_named g;
        char msg[96];
        if (db == NULL)
            break;
        if (id == 0) {
            add_error(errs, "GroupIds", "Group Ids must be a list of group ids.");
            break;
        }
        if (!cd_store_group_known(db, acct, id)) { /* groups are never deleted: once is enough */
            if (cd_store_named_get(db, "group", acct, id, &g, NULL) != 0) {
                snprintf(msg, sizeof msg, "Group Ids contains an unknown group: %lld.",
                         (long long)id);
                add_error(errs, "GroupIds", msg);
                break;
            }
            cd_store_group_seen(db, acct, id);
        }
        ids[(*n)++] = id;
    }
    json_decref(v);
}

/* CTAMessage and ConfirmMessage: optional texts of at most CD_FLOW_CTA_MAX_PARTS SMS parts
 * (they go out without consent); "" is as absent. *out is borrowed from o. */
static void parse_text(json_t *o, const char *key, const char *label, const char **out,
                       json_t *errs)
{
    json_t *v = json_object_get(o, key);
    char msg[128];
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        cd_gsm_parts(json_string_value(v)) < 0) {
        snprintf(msg, sizeof msg, "%s must be a string.", label);
        add_error(errs, key, msg);
        return;
    }
    int parts = cd_gsm_parts(json_string_value(v));
    if (parts > CD_FLOW_CTA_MAX_PARTS) {
        snprintf(msg, sizeof msg, "%s is too long: %d SMS parts, at most %d are allowed.", label,
                 parts, CD_FLOW_CTA_MAX_PARTS);
        add_error(errs, key, msg);
        return;
    }
    if (json_string_length(v) > 0)
        *out = json_string_value(v);
}

/* SendCTAMessage: 0 or 1 (integer, string or boolean); absent -> -1. */
static int parse_send_cta(json_t *o, json_t *errs)
{
    json_t *v = json_object_get(o, "SendCTAMessage");
    const char *s = json_string_value(v);
    if (v == NULL || json_is_null(v) || (s && *s == '\0'))
        return -1;
    if (json_is_boolean(v))
        return json_is_true(v) ? 1 : 0;
    if ((json_is_integer(v) && json_integer_value(v) == 1) || (s && strcmp(s, "1") == 0))
        return 1;
    if ((json_is_integer(v) && json_integer_value(v) == 0) || (s && strcmp(s, "0") == 0))
        return 0;
    add_error(errs, "SendCTAMessage", "Send CTA Message must be either \"1\" or \"0\".");
    return -1;
}

/* ---- POST /v1/contacts-opt-in/create ---- */

typedef struct pt_create {
    pt_out out; /* first: the render and done hooks read w->in as a pt_out */
    char phone[CD_PHONE_MAX];
    int64_t ids[PT_MAX_GROUPS];
    int n_ids;
    const char *cta, *confirm; /* request memory; NULL: absent */
    int send_cta;              /* -1 absent, 0, 1 */
} pt_create;

/* The CTA text: the caller's, else the account's cta_text, else the seed's. */
static char *cta_text(const pt_create *in, const json_t *settings, const cd_account *a)
{
    if (in->cta)
        return strdup(in->cta);
    const char *own = json_string_value(json_object_get(settings, "cta_text"));
    return own && *own ? cd_keyword_cta(settings, cd_account_brand(a)) : strdup(default_cta);
}

/* Adds the contact to the groups, then asks (cd_flow_start decides whether, by the seed's
 * SendCTAMessage rule and the Decisions on opt-outs). */
static int create_flow(cd_db *db, cd_api_write_op *w, json_t *ids, const json_t *scopes,
                       bool *fresh, cd_err *err)
{
    pt_create *in = w->in;
    const cd_account *a = &w->who.account;
    json_t *settings = NULL;
    cd_flow flow = {0};
    char *text = NULL;
    int rc = -1;
    cd_contact_patch patch = {.phone = in->phone, .groups = ids, .merge = true};
    if (cd_contact_apply(db, a->id, 0, &patch, true, &in->out.contact, fresh, err) != 0 ||
        cd_store_settings_read(db, a->id, &settings, err) != 0) /* read only */
        goto done;
    text = cta_text(in, settings, a);
    cd_flow_in fi = {.phone = in->phone,
                     .scopes = scopes,
                     .channel = "sms",
                     .disclosure = text,
                     .cta = in->send_cta == 1 ? CD_FLOW_CTA_ALWAYS : CD_FLOW_CTA_UNLESS_OPTED_IN,
                     .admit_api_optout = true,
                     .record_refused_cta = true,
                     .confirm_text = in->confirm ? in->confirm : default_confirm,
                     .contact = &in->out.contact,
                     .settings = settings,
                     .new_contact = *fresh,
                     .scopes_exist = true}; /* the groups cd_contact_apply checked */
    cd_provenance p = {.surface = "protexting",
                       .channel = "sms",
                       .disclosure = text,
                       .ip = w->ip,
                       .user_agent = w->user_agent,
                       .credential_id = w->who.credential_id,
                       .request_id = w->request_id};
    rc = cd_flow_start(db, a, &fi, &p, &flow, NULL, err); /* the answer shows no message */
done:
    cd_flow_clear(&flow);
    free(text);
    json_decref(settings);
    return rc;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int job_create(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    pt_create *in = w->in;
    json_t *ids = json_array(), *scopes = json_array();
    int64_t sorted[PT_MAX_GROUPS] = {0};
    bool fresh = false;
    w->done = done_contact;
    for (int i = 0; i < in->n_ids; i++) {
        char scope[CD_SCOPE_LEN];
        cd_scope_format((cd_scope){.kind = CD_SCOPE_GROUP, .id = in->ids[i]}, scope);
        json_array_append_new(scopes, json_string(scope));
        sorted[i] = in->ids[i];
    }
    /* The membership in the order a read gives it (ascending, once each), so that a new
     * contact as applied is the contact as stored. */
    qsort(sorted, (size_t)in->n_ids, sizeof sorted[0], cmp_id);
    for (int i = 0; i < in->n_ids; i++)
        if (i == 0 || sorted[i] != sorted[i - 1])
            json_array_append_new(ids, json_integer(sorted[i]));
    int rc = create_flow(db, w, ids, scopes, &fresh, err);
    /* A contact created here is answered as applied: nothing else wrote it since, and its
     * only consents are the pending groups, so it is not opted out of all. */
    if (rc == 0 && !fresh)
        rc = load_contact(db, w->who.account.id, in->out.contact.id, &in->out, err);
    json_decref(ids);
    json_decref(scopes);
    if (rc != 0)
        return -1;
    w->status = 201;
    w->render = render_contact;
    return 0;
}

static int h_create(cd_req *req)
{
    pt_create *in = cd_req_alloc(req, sizeof *in);
    json_t *o = body_of(req), *errs = json_array();
    parse_phone(req, o, in->phone, errs);
    parse_groups(req, o, in->ids, &in->n_ids, errs);
    parse_text(o, "CTAMessage", "CTA Message", &in->cta, errs);
    parse_text(o, "ConfirmMessage", "Confirm Message", &in->confirm, errs);
    in->send_cta = parse_send_cta(o, errs);
    in->cta = in->cta ? cd_req_strdup(req, in->cta) : NULL;
    in->confirm = in->confirm ? cd_req_strdup(req, in->confirm) : NULL;
    json_decref(o);
    if (json_array_size(errs) > 0)
        return emit(req, 422, errs);
    json_decref(errs);
    snprintf(in->out.tz, sizeof in->out.tz, "%s", cd_api_who(req)->account.timezone);
    in->out.xml = wants_xml(req);
    /* job_create leaves in `in` only the contact, which done_contact releases: it may run
     * twice, so it shares its batch's savepoint (issue 10, throughput). */
    return cd_api_write_rerunnable(req, &kit, job_create, in);
}

/* ---- POST /v1/contacts/opt-out and /v1/contacts-opt-in/create-custom ---- */

typedef struct pt_phone {
    pt_out out; /* first, as in pt_create */
    char phone[CD_PHONE_MAX];
} pt_phone;

static cd_provenance api_provenance(const cd_api_write_op *w)
{
    return (cd_provenance){.surface = "protexting",
                           .channel = "api",
                           .ip = w->ip,
                           .user_agent = w->user_agent,
                           .credential_id = w->who.credential_id,
                           .request_id = w->request_id};
}

/* Opts the contact (made if new: a do-not-text record) out of everything and cancels their
 * pending flows; sends nothing. An opt-out of all that stands already is left as it is, so
 * that an API call can never disguise a STOP as an opt-out made through the API. */
static int job_opt_out(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    pt_phone *in = w->in;
    int64_t acct = w->who.account.id;
    cd_provenance p = api_provenance(w);
    cd_scope all = {.kind = CD_SCOPE_ALL};
    cd_state st;
    w->done = done_contact;
    if (cd_contact_apply(db, acct, 0, &(cd_contact_patch){.phone = in->phone, .merge = true}, true,
                         &in->out.contact, NULL, err) != 0 ||
        cd_consent_state(db, acct, in->out.contact.id, all, &st, err) != 0)
        return -1;
    if (st != CD_STATE_OPTED_OUT &&
        (cd_consent_set(db, acct, &in->out.contact, all, CD_STATE_OPTED_OUT, 0, &p, NULL, NULL,
                        err) != 0 ||
         cd_flow_cancel_contact(db, acct, in->out.contact.id, &p, err) != 0))
        return -1;
    if (load_contact(db, acct, in->out.contact.id, &in->out, err) != 0)
        return -1;
    w->status = 201;
    w->render = render_contact;
    return 0;
}

/* Undoes an opt-out made through the API (cd_consent_undo_api_optout). */
static int job_undo(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    pt_phone *in = w->in;
    int64_t acct = w->who.account.id;
    cd_provenance p = api_provenance(w);
    bool undone;
    w->done = done_contact;
    if (cd_store_contact_by_phone(db, acct, in->phone, &in->out.contact, err) != 0) {
        if (err && err->code == CD_ENOTFOUND)
            cd_fail_reason(err, CD_EINVAL, "not_found", "PhoneNumber",
                           "Phone Number was not found.");
        return -1;
    }
    if (cd_consent_undo_api_optout(db, acct, &in->out.contact, &p, &undone, err) != 0) {
        if (err && strcmp(cd_err_reason(err), "opted_out_by_sms") == 0)
            cd_fail_reason(err, CD_ECONFLICT, "opted_out_by_sms", "PhoneNumber",
                           "The contact opted out by text message (STOP) and must re-subscribe "
                           "by texting START.");
        return -1;
    }
    w->status = 201;
    w->body = json_pack("{ss}", "message", "Phone number successfully opted in");
    return 0;
}

static int phone_only(cd_req *req, cd_api_write_fn job)
{
    pt_phone *in = cd_req_alloc(req, sizeof *in);
    json_t *o = body_of(req), *errs = json_array();
    parse_phone(req, o, in->phone, errs);
    json_decref(o);
    if (json_array_size(errs) > 0)
        return emit(req, 422, errs);
    json_decref(errs);
    snprintf(in->out.tz, sizeof in->out.tz, "%s", cd_api_who(req)->account.timezone);
    in->out.xml = wants_xml(req);
    return cd_api_write(req, &kit, job, in);
}

static int h_opt_out(cd_req *req)
{
    return phone_only(req, job_opt_out);
}

static int h_undo(cd_req *req)
{
    return phone_only(req, job_undo);
}

/* ---- routes ---- */

void cd_api_protexting_routes(cd_router *r, const cd_api_env *env)
{
    void *ctx = cd_api_ctx(env);
    const cd_route_opts opts = {.max_body = PT_MAX_BODY, .forms = true};
    /* Every other path under these answers in ProTexting's format. Not "/v1/": another
     * surface (Octopush, /v1/public/) lives there too. */
    cd_router_set_prefix_fallback(r, "/v1/contacts-opt-in/", &surface);
    cd_router_set_prefix_fallback(r, "/v1/contacts/", &surface);
    cd_router_add_opts(r, "POST", "/v1/contacts-opt-in/create", &surface, h_create, ctx, &opts);
    cd_router_add_opts(r, "POST", "/v1/contacts-opt-in/create-custom", &surface, h_undo, ctx,
                       &opts);
    cd_router_add_opts(r, "POST", "/v1/contacts/opt-out", &surface, h_opt_out, ctx, &opts);
}
