/* api/native_msg.c -- the messaging half of the native API: consent-gated sends, inbound
 * SMS, double opt-in flows and their confirmation page, sender numbers and settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/limits.h"
#include "api/native.h"
#include "api/native_int.h"
#include "core/consent.h"
#include "core/flow.h"
#include "core/inbound.h"
#include "core/message.h"
#include "core/pool.h"
#include "core/profile.h"
#include "core/usecase.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define MAX_TEXT 65536 /* bytes: far past 10 parts; the part count decides */

static int fail(cd_req *req, const char *reason, const char *field, const char *msg)
{
    cd_err err;
    cd_fail_reason(&err, CD_EINVAL, reason, field, "%s", msg);
    return cd_native__error(req, &err);
}

/* ---- POST /messages ---- */

typedef struct send_in {
    char to[CD_PHONE_MAX];
    const char *to_raw, *text, *scope, *from, *category, *profile;
    bool invalid_number;
    cd_message out;
    const char *refused;
} send_in;

static void render_send(cd_api_write_op *w)
{
    send_in *in = w->in;
    json_t *m = cd_native__message_json(&in->out);
    if (in->refused == NULL) {
        w->body = m;
        return;
    }
    static const struct {
        const char *code, *msg;
    } why[] = {{"no_consent", "the contact has not agreed to messages in this scope"},
               {"opted_out", "the contact opted out"},
               {"pending_confirmation", "the contact has not confirmed yet"},
               {"invalid_number", "not a valid mobile number"},
               {"no_healthy_sender", "every number of the profile's pool is unhealthy"}};
    const char *msg = "refused";
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
        if (strcmp(why[i].code, in->refused) == 0)
            msg = why[i].msg;
    w->body = json_pack("{s{ss ss ss} so}", "error", "code", in->refused, "message", msg, "field",
                        "to", "message", m);
}

static void done_send(cd_api_write_op *w)
{
    cd_message_clear(&((send_in *)w->in)->out);
}

static int job_send(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    send_in *in = w->in;
    int rc;
    w->done = done_send;
    if (in->invalid_number) {
        rc = cd_message_refuse_invalid(db, &w->who.account, in->to_raw, in->text, in->scope,
                                       &in->out, err);
        in->refused = "invalid_number";
    } else {
        cd_send_in s = {.to = in->to,
                        .from = in->from,
                        .text = in->text,
                        .scope = in->scope,
                        .kind = "send",
                        .category = in->category,
                        .profile = in->profile};
        rc = cd_message_send(db, &w->who.account, &s, &in->out, &in->refused, err);
    }
    if (rc != 0)
        return -1;
    w->status = in->refused ? 422 : 202;
    w->render = render_send;
    return 0;
}

static int h_send(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    cd_scope scope;
    send_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_req_string(o, "to", 64, &in->to_raw, &err) != 0 ||
        cd_api_opt_string(o, "text", MAX_TEXT, &in->text, &err) != 0 ||
        cd_api_opt_string(o, "scope", 39, &in->scope, &err) != 0 ||
        cd_api_opt_string(o, "from", 24, &in->from, &err) != 0 ||
        cd_api_opt_string(o, "category", 15, &in->category, &err) != 0 ||
        cd_api_opt_string(o, "profile", 36, &in->profile, &err) != 0)
        return cd_native__error(req, &err);
    if (in->text == NULL || *in->text == '\0')
        return fail(req, "invalid_field", "text", "text is required");
    if (cd_scope_parse(in->scope ? in->scope : "all", "scope", &scope, &err) != 0)
        return cd_native__error(req, &err);
    if (in->category && strcmp(in->category, "marketing") != 0 &&
        strcmp(in->category, "transactional") != 0)
        return fail(req, "invalid_field", "category", "category is marketing or transactional");
    in->invalid_number = cd_api_normalize(req, in->to_raw, "to", in->to, NULL) != 0;
    return cd_api_write(req, &cd_native__kit, job_send, in);
}

/* ---- POST /inbound ---- */

typedef struct inbound_in {
    const char *from, *to, *text, *provider_id;
    cd_message out;
    cd_keyword_action action;
} inbound_in;

static void render_inbound(cd_api_write_op *w)
{
    inbound_in *in = w->in;
    w->body = json_pack("{so ss}", "message", cd_native__message_json(&in->out), "action",
                        cd_keyword_action_name(in->action));
}

static void done_inbound(cd_api_write_op *w)
{
    cd_message_clear(&((inbound_in *)w->in)->out);
}

static int job_inbound(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    inbound_in *in = w->in;
    w->done = done_inbound;
    cd_inbound_in i = {.from = in->from,
                       .to = in->to,
                       .text = in->text,
                       .provider_id = in->provider_id,
                       .surface = "native",
                       .credential_id = w->who.credential_id,
                       .request_id = w->request_id,
                       .ip = w->ip};
    if (cd_inbound_receive(db, &w->who.account, &i, &in->out, &in->action, err) != 0)
        return -1;
    w->status = 200;
    w->render = render_inbound;
    return 0;
}

static int h_inbound(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    inbound_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_req_string(o, "from", 64, &in->from, &err) != 0 ||
        cd_api_req_string(o, "to", 64, &in->to, &err) != 0 ||
        cd_api_opt_string(o, "text", MAX_TEXT, &in->text, &err) != 0 ||
        cd_api_opt_string(o, "provider_id", 63, &in->provider_id, &err) != 0)
        return cd_native__error(req, &err);
    if (in->text == NULL)
        return fail(req, "invalid_field", "text", "text is required");
    return cd_api_write(req, &cd_native__kit, job_inbound, in);
}

/* ---- flows ---- */

static json_t *flow_json(cd_req *req, const cd_flow *f)
{
    char token[160];
    cd_buf url = {0};
    cd_flow_token(&WHO(req)->account, f->id, token);
    cd_buf_printf(&url, "%s/c/%s", cd_api_env_of(req)->public_url, token);
    json_t *o = json_pack(
        "{ss so ss so ss so ss so so so so so}", "id", f->id, "ext_ref",
        cd_native__str_or_null(f->ext_ref), "phone", f->phone, "scopes",
        f->scopes ? json_incref(f->scopes) : json_array(), "channel", f->channel, "email",
        cd_native__str_or_null(f->email), "status", f->status, "confirmed_via",
        cd_native__str_or_null(f->confirmed_via), "created_at", cd_native__time(f->created_ms),
        "updated_at", cd_native__time(f->updated_ms), "expires_at", cd_native__time(f->expires_ms),
        "confirm_url", strcmp(f->status, "pending") == 0 ? json_string(url.data) : json_null());
    json_object_set_new(o, "disclosure", cd_native__str_or_null(f->disclosure));
    cd_buf_free(&url);
    return o;
}

typedef struct flow_in {
    cd_flow_in in;
    char phone[CD_PHONE_MAX];
    cd_flow out;
    cd_message cta;
    bool has_cta;
    cd_req *req; /* for the confirmation link; read after the commit, on a request thread */
} flow_in;

static void render_flow(cd_api_write_op *w)
{
    flow_in *in = w->in;
    w->body = flow_json(in->req, &in->out);
    if (in->has_cta)
        json_object_set_new(w->body, "message", cd_native__message_json(&in->cta));
}

static void done_flow(cd_api_write_op *w)
{
    flow_in *in = w->in;
    cd_flow_clear(&in->out);
    cd_message_clear(&in->cta);
}

static int job_flow_start(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    flow_in *in = w->in;
    cd_provenance p = {.surface = "native",
                       .channel = in->in.channel,
                       .disclosure = in->in.disclosure,
                       .ext_ref = in->in.ext_ref,
                       .ip = w->ip,
                       .user_agent = w->user_agent,
                       .credential_id = w->who.credential_id,
                       .request_id = w->request_id};
    memset(&in->cta, 0, sizeof in->cta);
    w->done = done_flow;
    if (cd_flow_start(db, &w->who.account, &in->in, &p, &in->out, &in->cta, err) != 0)
        return -1;
    in->has_cta = in->cta.id[0] != '\0';
    w->status = 201;
    w->render = render_flow;
    return 0;
}

static int h_flow_start(cd_req *req)
{
    cd_err err;
    json_t *o = NULL, *scopes;
    const char *phone;
    flow_in *in = cd_req_alloc(req, sizeof *in);
    in->req = req;
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_phone_field(o, "phone", &phone, &err) != 0 ||
        cd_api_normalize(req, phone, "phone", in->phone, &err) != 0 ||
        cd_api_req_string(o, "channel", 8, &in->in.channel, &err) != 0 ||
        cd_api_opt_string(o, "ext_ref", 127, &in->in.ext_ref, &err) != 0 ||
        cd_api_opt_string(o, "email", 255, &in->in.email, &err) != 0 ||
        cd_api_opt_string(o, "disclosure", 1000, &in->in.disclosure, &err) != 0)
        return cd_native__error(req, &err);
    in->in.phone = in->phone;
    if (strcmp(in->in.channel, "sms") != 0 && strcmp(in->in.channel, "email") != 0)
        return fail(req, "invalid_field", "channel", "channel is sms or email");
    if (strcmp(in->in.channel, "email") == 0 &&
        (in->in.email == NULL || !strchr(in->in.email, '@')))
        return fail(req, "invalid_field", "email", "an e-mail address is required");
    scopes = json_object_get(o, "scopes");
    if (!json_is_array(scopes) || json_array_size(scopes) == 0 || json_array_size(scopes) > 20)
        return fail(req, "invalid_field", "scopes", "scopes is an array of 1 to 20 scopes");
    size_t i;
    json_t *sv;
    json_t *canon = json_array();
    json_array_foreach (scopes, i, sv) {
        cd_scope sc;
        char name[CD_SCOPE_LEN];
        if (cd_scope_parse(json_string_value(sv), "scopes", &sc, &err) != 0) {
            json_decref(canon);
            return cd_native__error(req, &err);
        }
        cd_scope_format(sc, name);
        json_array_append_new(canon, json_string(name));
    }
    /* The scopes live as long as the request: hand them to a request-owned JSON value. */
    json_object_set_new(o, "scopes", canon);
    in->in.scopes = canon;
    json_t *ttl = json_object_get(o, "ttl_seconds");
    if (ttl) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
            json_integer_value(ttl) > 366 * 86400)
            return fail(req, "invalid_field", "ttl_seconds", "ttl_seconds is 1 to 31622400");
        in->in.ttl_ms = (int64_t)json_integer_value(ttl) * 1000;
    }
    return cd_api_write(req, &cd_native__kit, job_flow_start, in);
}

static int find_flow(cd_req *req, const char *id, cd_flow *f, cd_err *err)
{
    cd_db *db = cd_api_reader(req, err);
    if (db == NULL)
        return -1;
    int rc = cd_store_flow_get(db, WHO(req)->account.id, id, f, err);
    if (rc != 0 && err->code == CD_ENOTFOUND)
        cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such flow");
    return rc;
}

static int h_flow_get(cd_req *req)
{
    cd_err err;
    cd_flow f;
    if (find_flow(req, cd_req_param(req, "id"), &f, &err) != 0)
        return cd_native__error(req, &err);
    json_t *body = flow_json(req, &f);
    cd_flow_clear(&f);
    return cd_reply_json(req, 200, body);
}

typedef struct flow_list_state {
    cd_req *req;
    json_t *data;
    int64_t last;
    int n, keep;
} flow_list_state;

static int collect_flow(const cd_flow *f, int64_t rowid, void *arg)
{
    flow_list_state *s = arg;
    if (s->n++ < s->keep) {
        json_array_append_new(s->data, flow_json(s->req, f));
        s->last = rowid;
    }
    return 0;
}

static int h_flow_list(cd_req *req)
{
    cd_err err;
    cd_flow_filter f = {0};
    int limit;
    if (cd_api_paging(req, &limit, &f.after_rowid, &err) != 0)
        return cd_native__error(req, &err);
    f.status = cd_req_query(req, "status");
    f.ext_ref = cd_req_query(req, "ext_ref");
    if (f.status && !*f.status)
        f.status = NULL;
    if (f.ext_ref && !*f.ext_ref)
        f.ext_ref = NULL;
    f.limit = limit + 1;
    flow_list_state s = {.req = req, .data = json_array(), .keep = limit};
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? 0 : -1;
    const char *phone = cd_req_query(req, "phone");
    bool none = false;
    if (rc == 0 && phone && *phone) {
        char e164[CD_PHONE_MAX];
        cd_contact c;
        if (cd_api_normalize(req, phone, "phone", e164, &err) != 0)
            rc = -1;
        else if (cd_store_contact_by_phone(db, WHO(req)->account.id, e164, &c, NULL) == 0) {
            f.contact_id = c.id;
            cd_contact_clear(&c);
        } else {
            none = true;
        }
    }
    if (rc == 0 && !none)
        rc = cd_store_flow_list(db, WHO(req)->account.id, &f, collect_flow, &s, &err);
    if (rc != 0) {
        json_decref(s.data);
        return cd_native__error(req, &err);
    }
    return cd_reply_json(req, 200, cd_native__list(s.data, s.last, s.n > limit));
}

typedef struct flow_action {
    const char *id;
    bool confirm; /* else cancel */
    const char *via;
    cd_req *req;
    cd_flow out;
} flow_action;

static void render_flow_action(cd_api_write_op *w)
{
    flow_action *a = w->in;
    w->body = flow_json(a->req, &a->out);
}

static void done_flow_action(cd_api_write_op *w)
{
    cd_flow_clear(&((flow_action *)w->in)->out);
}

static int job_flow_action(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    flow_action *a = w->in;
    w->done = done_flow_action;
    cd_provenance p = {.surface = "native",
                       .channel = strcmp(a->via, "link") == 0 ? "web" : "api",
                       .ip = w->ip,
                       .user_agent = w->user_agent,
                       .credential_id = w->who.credential_id,
                       .request_id = w->request_id};
    if (cd_store_flow_get(db, w->who.account.id, a->id, &a->out, err) != 0) {
        if (err->code == CD_ENOTFOUND)
            cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such flow");
        return -1;
    }
    int rc = a->confirm ? cd_flow_confirm(db, &w->who.account, &a->out, a->via, &p, err)
                        : cd_flow_close(db, w->who.account.id, &a->out, "cancelled", &p, err);
    if (rc != 0)
        return -1;
    w->status = 200;
    w->render = render_flow_action;
    return 0;
}

static int flow_action_start(cd_req *req, bool confirm)
{
    flow_action *a = cd_req_alloc(req, sizeof *a);
    a->id = cd_req_param(req, "id");
    a->confirm = confirm;
    a->via = "api";
    a->req = req;
    return cd_api_write(req, &cd_native__kit, job_flow_action, a);
}

static int h_flow_confirm(cd_req *req)
{
    return flow_action_start(req, true);
}

static int h_flow_cancel(cd_req *req)
{
    return flow_action_start(req, false);
}

/* ---- the confirmation page: GET shows, POST confirms ---- */

static void html_escape(cd_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            cd_buf_puts(b, "&lt;");
            break;
        case '>':
            cd_buf_puts(b, "&gt;");
            break;
        case '&':
            cd_buf_puts(b, "&amp;");
            break;
        case '"':
            cd_buf_puts(b, "&quot;");
            break;
        default:
            cd_buf_append(b, s, 1);
        }
    }
}

static int page(cd_req *req, int status, const char *title, const char *text, const char *form)
{
    cd_buf b = {0};
    cd_buf_puts(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                    "<title>");
    html_escape(&b, title);
    cd_buf_puts(&b, "</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;"
                    "margin:3rem auto;padding:0 1rem;line-height:1.5}button{font-size:1.1rem;"
                    "padding:.6rem 1.4rem}</style></head><body><h1>");
    html_escape(&b, title);
    cd_buf_puts(&b, "</h1><p>");
    html_escape(&b, text);
    cd_buf_puts(&b, "</p>");
    if (form) {
        cd_buf_puts(&b, "<form method=\"post\" action=\"");
        html_escape(&b, form);
        cd_buf_puts(&b, "\"><button type=\"submit\">Yes, I agree</button></form>");
    }
    cd_buf_puts(&b, "</body></html>");
    size_t n = b.len;
    cd_reply_header(req, "Cache-Control", "no-store");
    /* Issue 8 item 13: the page must not be framed (a page of another site could lay its
     * own content over the button: clickjacking a consent), runs no script, loads nothing,
     * may post only to us, and keeps the token out of any Referer. */
    cd_reply_header(req, "X-Frame-Options", "DENY");
    cd_reply_header(req, "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                    "frame-ancestors 'none'; base-uri 'none'");
    cd_reply_header(req, "Referrer-Policy", "no-referrer");
    cd_reply_header(req, "X-Content-Type-Options", "nosniff");
    return cd_reply_take(req, status, "text/html; charset=utf-8", cd_buf_take(&b), n);
}

/* Resolves a token to its account and flow; the same "not found" for every failure. */
static int token_flow(cd_req *req, cd_account *a, cd_flow *f)
{
    const char *token = cd_req_param(req, "token");
    int64_t account_id;
    char flow_id[40], idbuf[32];
    if (cd_flow_token_parse(token, &account_id, flow_id) != 0)
        return -1;
    cd_db *db = cd_req_reader(req, cd_api_env_of(req)->store);
    if (db == NULL)
        return -1;
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)account_id);
    int rc = cd_store_account_get(db, "id", idbuf, a, NULL);
    if (rc == 0 && !cd_flow_token_valid(a, token))
        rc = -1;
    if (rc == 0)
        rc = cd_store_flow_get(db, account_id, flow_id, f, NULL);
    return rc;
}

static int h_confirm_page(cd_req *req)
{
    cd_account a;
    cd_flow f;
    if (token_flow(req, &a, &f) != 0)
        return page(req, 404, "Link not valid", "This confirmation link is not valid.", NULL);
    int rc;
    if (strcmp(f.status, "pending") == 0 && f.expires_ms > cd_now_ms()) {
        /* A GET never confirms: mail scanners open links. The person presses the button,
         * which posts to the one path of this flow, built from the token just verified, not
         * from the request's path (issue 8 item 13). */
        char action[200];
        snprintf(action, sizeof action, "/c/%s", cd_req_param(req, "token"));
        rc = page(req, 200, "Confirm your subscription",
                  f.disclosure && *f.disclosure ? f.disclosure
                                                : "Confirm that you want to receive messages.",
                  action);
    } else if (strcmp(f.status, "confirmed") == 0) {
        rc = page(req, 200, "Subscription confirmed", "You have already confirmed.", NULL);
    } else {
        rc = page(req, 410, "Link expired", "This confirmation link is no longer valid.", NULL);
    }
    cd_flow_clear(&f);
    return rc;
}

typedef struct link_confirm {
    cd_account account;
    char flow_id[40];
    char ip[64];
    const char *user_agent;
    char request_id[40];
    bool expired;
} link_confirm;

static int job_link_confirm(cd_db *db, void *arg, cd_err *err)
{
    link_confirm *l = arg;
    cd_flow f;
    cd_provenance p = {.surface = "native",
                       .channel = "web",
                       .ip = l->ip,
                       .user_agent = l->user_agent,
                       .credential_id = "link",
                       .request_id = l->request_id};
    if (cd_store_flow_get(db, l->account.id, l->flow_id, &f, err) != 0)
        return -1;
    int rc = cd_flow_confirm(db, &l->account, &f, "link", &p, err);
    cd_flow_clear(&f);
    return rc;
}

static int link_finish(cd_req *req, void *arg, int rc, const cd_err *err)
{
    (void)arg;
    if (rc == 0)
        return page(req, 200, "Subscription confirmed", "Thank you: you are subscribed.", NULL);
    if (err->code == CD_ECONFLICT)
        return page(req, 410, "Link expired", "This confirmation link is no longer valid.", NULL);
    return page(req, 503, "Please try again", "We could not record your answer just now.", NULL);
}

static int h_confirm_post(cd_req *req)
{
    link_confirm *l = cd_req_alloc(req, sizeof *l);
    cd_flow f;
    if (token_flow(req, &l->account, &f) != 0)
        return page(req, 404, "Link not valid", "This confirmation link is not valid.", NULL);
    snprintf(l->flow_id, sizeof l->flow_id, "%s", f.id);
    cd_flow_clear(&f);
    snprintf(l->ip, sizeof l->ip, "%s", cd_req_client_ip(req));
    l->user_agent = cd_req_header(req, "User-Agent"); /* the ledger escapes and cuts it */
    snprintf(l->request_id, sizeof l->request_id, "%s", cd_req_id(req));
    return cd_req_defer(req, cd_api_env_of(req)->store, job_link_confirm, l, link_finish);
}

/* ---- settings ---- */

typedef struct settings_in {
    json_t *patch;         /* borrowed from the request body */
    cd_api_limits *limits; /* borrowed from the env */
} settings_in;

/* issue 9 part 5: runs after the answer, so after the commit: cached limits are stale. */
static void settings_done(cd_api_write_op *w)
{
    settings_in *in = w->in;
    cd_api_limits_changed(in->limits);
}

static int job_settings(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    settings_in *in = w->in;
    if (cd_settings_patch(db, &w->who.account, in->patch, &w->body, err) != 0)
        return -1;
    w->status = 200;
    w->done = settings_done;
    return 0;
}

static int h_settings_patch(cd_req *req)
{
    cd_err err;
    json_t *o = NULL, *v;
    const char *k;
    settings_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0)
        return cd_native__error(req, &err);
    /* Refused before it is queued; the job checks again (cd_settings_patch). */
    json_object_foreach (o, k, v)
        if (cd_settings_check(k, v, &err) != 0)
            return cd_native__error(req, &err);
    in->patch = o;
    in->limits = cd_api_env_of(req)->limits;
    return cd_api_write(req, &cd_native__kit, job_settings, in);
}

static int h_settings_get(cd_req *req)
{
    cd_err err;
    json_t *s = NULL;
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? cd_store_settings_get(db, WHO(req)->account.id, &s, &err) : -1;
    if (rc != 0)
        return cd_native__error(req, &err);
    return cd_reply_json(req, 200, cd_settings_view(s));
}

/* ---- senders ---- */

/* issue 14: with its type, health (core/pool.h) and leasing profile. */
static json_t *sender_json(cd_db *db, const cd_sender *s, const char *def)
{
    bool healthy = true;
    (void)cd_pool_sender_healthy(db, s->account_id, s->number, &healthy, NULL);
    return cd_sender_view(s, def && strcmp(def, s->number) == 0, healthy);
}

static int job_sender_add(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    cd_sender_in *in = w->in;
    cd_sender s;
    bool is_default;
    if (cd_sender_add(db, &w->who.account, in, &s, &is_default, err) != 0)
        return -1;
    w->status = 201;
    w->body = sender_json(db, &s, is_default ? s.number : NULL);
    return 0;
}

static int h_sender_add(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    char number[CD_PHONE_MAX];
    cd_sender_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_req_string(o, "number", 64, &in->number, &err) != 0 ||
        cd_api_opt_string(o, "transport", 15, &in->transport, &err) != 0 ||
        cd_api_opt_string(o, "type", 15, &in->type, &err) != 0)
        return cd_native__error(req, &err);
    if (in->type && !cd_sender_type_valid(in->type)) /* issue 14 */
        return fail(req, "invalid_field", "type", "type is long_code, toll_free or short_code");
    json_t *def = json_object_get(o, "default");
    if (def && !json_is_boolean(def))
        return fail(req, "invalid_field", "default", "default is true or false");
    in->make_default = json_is_true(def);
    /* Refused before it is queued; cd_sender_add checks again. */
    if (cd_sender_parse(in, WHO(req)->account.region, number, &err) != 0)
        return cd_native__error(req, &err);
    return cd_api_write(req, &cd_native__kit, job_sender_add, in);
}

typedef struct sender_list {
    json_t *data;
    const char *def;
    cd_db *db;
} sender_list;

static int collect_sender(const cd_sender *s, void *arg)
{
    sender_list *l = arg;
    json_array_append_new(l->data, sender_json(l->db, s, l->def));
    return 0;
}

static int h_sender_list(cd_req *req)
{
    cd_err err;
    json_t *settings = NULL;
    sender_list l = {.data = json_array()};
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? cd_store_settings_get(db, WHO(req)->account.id, &settings, &err) : -1;
    if (rc == 0) {
        l.db = db;
        l.def = json_string_value(json_object_get(settings, "default_sender"));
        rc = cd_store_sender_list(db, WHO(req)->account.id, collect_sender, &l, &err);
    }
    json_decref(settings);
    if (rc != 0) {
        json_decref(l.data);
        return cd_native__error(req, &err);
    }
    return cd_reply_json(req, 200, cd_native__list(l.data, 0, false));
}

static int job_sender_delete(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    const char *number = w->in;
    json_t *settings = NULL;
    if (cd_store_sender_delete(db, w->who.account.id, number, err) != 0) {
        if (err->code == CD_ENOTFOUND)
            cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such sender");
        return -1;
    }
    if (cd_store_settings_get(db, w->who.account.id, &settings, err) != 0)
        return -1;
    const char *def = json_string_value(json_object_get(settings, "default_sender"));
    int rc = 0;
    if (def && strcmp(def, number) == 0) {
        json_object_del(settings, "default_sender");
        rc = cd_store_settings_put(db, w->who.account.id, settings, err);
    }
    json_decref(settings);
    w->status = 204;
    return rc;
}

static int h_sender_delete(cd_req *req)
{
    const char *raw = cd_req_param(req, "number");
    char *number = cd_req_alloc(req, CD_PHONE_MAX);
    if (cd_api_normalize(req, raw, "number", number, NULL) != 0)
        snprintf(number, CD_PHONE_MAX, "%.23s", raw);
    return cd_api_write(req, &cd_native__kit, job_sender_delete, number);
}

void cd_api_native_msg_routes(cd_router *r, const cd_api_env *env)
{
    void *ctx = cd_api_ctx(env);
    const cd_surface *n = &cd_native__surface, *pub = &cd_native__public;
    cd_router_add(r, "POST", "/api/v1/messages", n, h_send, ctx);
    cd_router_add(r, "POST", "/api/v1/inbound", n, h_inbound, ctx);
    cd_router_add(r, "POST", "/api/v1/flows", n, h_flow_start, ctx);
    cd_router_add(r, "GET", "/api/v1/flows", n, h_flow_list, ctx);
    cd_router_add(r, "GET", "/api/v1/flows/{id}", n, h_flow_get, ctx);
    cd_router_add(r, "POST", "/api/v1/flows/{id}/confirm", n, h_flow_confirm, ctx);
    cd_router_add(r, "POST", "/api/v1/flows/{id}/cancel", n, h_flow_cancel, ctx);
    cd_router_add(r, "GET", "/api/v1/settings", n, h_settings_get, ctx);
    cd_router_add(r, "PATCH", "/api/v1/settings", n, h_settings_patch, ctx);
    cd_router_add(r, "POST", "/api/v1/senders", n, h_sender_add, ctx);
    cd_router_add(r, "GET", "/api/v1/senders", n, h_sender_list, ctx);
    cd_router_add(r, "DELETE", "/api/v1/senders/{number}", n, h_sender_delete, ctx);
    cd_api_native_pool_routes(r, env); /* issue 14: leases and receipts */
    cd_router_add(r, "GET", "/c/{token}", pub, h_confirm_page, ctx);
    cd_router_add(r, "POST", "/c/{token}", pub, h_confirm_post, ctx);
}
