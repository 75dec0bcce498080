/* api/native.c -- the native API (DESIGN.md section 7): JSON in, core calls, JSON out.
 *
 * Reads run on a pooled reader. Writes go through the kit's write path (api/kit.h):
 * durable before they are answered, and every POST honours Idempotency-Key. */
#include "api/native.h"
#include "api/native_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/guard.h"
#include "api/limits.h"
#include "core/account.h"
#include "core/consent.h"
#include "core/contact.h"
#include "core/ledger.h"
#include "core/phone.h"
#include "core/usecase.h"
#include "http/ratelimit.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#define MAX_ID 9007199254740991LL /* 2^53 - 1 */

/* ---- errors ---- */

static int status_of(const cd_err *e)
{
    /* issue 8 items 6 and 13: refusals that http.c makes before a handler runs */
    static const struct {
        const char *reason;
        int status;
    } by_reason[] = {{"invalid_json", 400},
                     {"bad_request", 400},
                     {"request_timeout", 408},
                     {"unsupported_media_type", 415}};
    switch (e->code) {
    case CD_EINVAL:
        for (size_t i = 0; i < sizeof by_reason / sizeof by_reason[0]; i++)
            if (strcmp(cd_err_reason(e), by_reason[i].reason) == 0)
                return by_reason[i].status;
        return 422;
    case CD_EAUTH:
        return 401;
    case CD_ENOTFOUND:
        return 404;
    case CD_ECONFLICT:
        return 409;
    case CD_EMISMATCH:
        return 422;
    case CD_ELIMIT:
        return 413;
    case CD_EMETHOD:
        return 405;
    case CD_EBUSY: /* issue 9 part 5: a rate limit is 429, an overload 503 */
        return strcmp(cd_err_reason(e), "rate_limited") == 0 ? 429 : 503;
    case CD_ESTORE:
        return 503;
    default:
        return 500;
    }
}

int cd_native__error(cd_req *req, const cd_err *err)
{
    const cd_ratelimit_info *rl = cd_req_ratelimit(req);
    if (err->code == CD_EBUSY && status_of(err) == 429 && rl != NULL) {
        char v[16];
        snprintf(v, sizeof v, "%d", rl->retry_after_s > 0 ? rl->retry_after_s : rl->reset_s);
        cd_reply_header(req, "Retry-After", v);
    } else if (err->code == CD_EBUSY) {
        cd_reply_header(req, "Retry-After", "1");
    }
    json_t *body =
        json_pack("{s{ss ss so}}", "error", "code", cd_err_reason(err), "message", err->msg,
                  "field", err->field[0] ? json_string(err->field) : json_null());
    return cd_reply_json(req, status_of(err), body);
}

/* ---- authentication: Authorization: Bearer KEY ---- */

static int authenticate(cd_req *req, cd_err *err)
{
    return cd_api_authenticate(req, cd_api_env_of(req)->store, CD_AUTH_BEARER, err);
}

const cd_surface cd_native__surface = {
    .name = "native", .authenticate = authenticate, .reply_error = cd_native__error};
/* issue 9 part 5: public routes authenticate no one, but count against the per-address
 * limit (--public-rate-limit), answered 429 from the request head. */
static int public_guard(cd_req *req, cd_err *err)
{
    return cd_api_limits_check_ip(cd_api_env_of(req)->limits, req, err);
}

const cd_surface cd_native__public = {
    .name = "public", .authenticate = public_guard, .reply_error = cd_native__error};
const cd_api_surface cd_native__kit = {
    .http = &cd_native__surface, .idempotency = true, .forms = false};

const cd_surface *cd_api_native_public(void)
{
    return &cd_native__public;
}

/* ---- output helpers ---- */

json_t *cd_native__str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *cd_native__time(int64_t ms)
{
    char t[CD_TIME_LEN];
    if (ms == 0)
        return json_null();
    cd_time_format(ms, t);
    return json_string(t);
}

json_t *cd_native__list(json_t *data, int64_t next, bool more)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, next);
    return json_pack("{so so}", "data", data, "next_cursor", more ? json_string(buf) : json_null());
}

json_t *cd_native__contact_json(const cd_contact *contact)
{
    cd_contact copy = *contact; /* shallow: only read through cd_contact_field() */
    cd_contact *c = &copy;
    json_t *o = json_pack("{sI ss}", "id", (json_int_t)c->id, "phone", c->phone);
    json_t *params = json_object();
    for (int f = 0; f < CD_CF_COUNT; f++) {
        const char *v = *cd_contact_field(c, f);
        json_object_set_new(f >= CD_CF_PARAM1 ? params : o, cd_contact_field_name(f),
                            cd_native__str_or_null(v));
    }
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "custom", c->custom ? json_incref(c->custom) : json_object());
    json_object_set_new(o, "tags", c->tags ? json_incref(c->tags) : json_array());
    json_object_set_new(o, "groups", c->groups ? json_incref(c->groups) : json_array());
    json_object_set_new(o, "created_at", cd_native__time(c->created_ms));
    json_object_set_new(o, "updated_at", cd_native__time(c->updated_ms));
    return o;
}

static int dump_to_buf(const char *p, size_t n, void *b)
{
    cd_buf_append(b, p, n);
    return 0;
}

/* "key": after a comma unless it is the first; keys are plain ASCII names. */
static void dump_key(cd_buf *b, bool first, const char *key)
{
    cd_buf_append(b, &",\""[first], 2 - (size_t)first);
    cd_buf_puts(b, key);
    cd_buf_append(b, "\":", 2);
}

/* A text field: null when unset or empty, as cd_native__str_or_null() has it. */
static int dump_field(cd_buf *b, bool first, const char *key, const char *v)
{
    dump_key(b, first, key);
    if (v == NULL || *v == '\0') {
        cd_buf_append(b, "null", 4);
        return 0;
    }
    return cd_utf8_json_string(b, v);
}

static int dump_json(cd_buf *b, const char *key, json_t *v, bool object)
{
    dump_key(b, false, key);
    if (v == NULL) {
        cd_buf_append(b, object ? "{}" : "[]", 2);
        return 0;
    }
    return json_dump_callback(v, dump_to_buf, b, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void dump_time(cd_buf *b, const char *key, int64_t ms)
{
    char t[CD_TIME_LEN];
    dump_key(b, false, key);
    if (ms == 0) {
        cd_buf_append(b, "null", 4);
        return;
    }
    cd_time_format(ms, t);
    cd_buf_append(b, "\"", 1);
    cd_buf_puts(b, t);
    cd_buf_append(b, "\"", 1);
}

int cd_native__contact_dump(const cd_contact *contact, cd_buf *b)
{
    cd_contact copy = *contact; /* shallow: only read through cd_contact_field() */
    cd_contact *c = &copy;
    cd_buf_puts(b, "{\"id\":");
    cd_buf_put_int(b, c->id, 1); /* as jansson writes it ("%lld") */
    cd_buf_puts(b, ",\"phone\":");
    int rc = cd_utf8_json_string(b, c->phone);
    for (int f = 0; rc == 0 && f < CD_CF_PARAM1; f++)
        rc = dump_field(b, false, cd_contact_field_name(f), *cd_contact_field(c, f));
    cd_buf_puts(b, ",\"params\":{");
    for (int f = CD_CF_PARAM1; rc == 0 && f < CD_CF_COUNT; f++)
        rc = dump_field(b, f == CD_CF_PARAM1, cd_contact_field_name(f), *cd_contact_field(c, f));
    cd_buf_puts(b, "}");
    if (rc != 0 || dump_json(b, "custom", c->custom, true) != 0 ||
        dump_json(b, "tags", c->tags, false) != 0 || dump_json(b, "groups", c->groups, false) != 0)
        return -1;
    dump_time(b, "created_at", c->created_ms);
    dump_time(b, "updated_at", c->updated_ms);
    cd_buf_puts(b, "}");
    return 0;
}

/* An event's text fields, in the answer's order; each is null when empty. */
static const struct {
    const char *k;
    size_t off;
} event_texts[] = {{"old_state", offsetof(cd_event, old_state)},
                   {"new_state", offsetof(cd_event, new_state)},
                   {"surface", offsetof(cd_event, surface)},
                   {"channel", offsetof(cd_event, channel)},
                   {"keyword", offsetof(cd_event, keyword)},
                   {"disclosure_sha256", offsetof(cd_event, disclosure_sha256)},
                   {"ip", offsetof(cd_event, ip)},
                   {"user_agent", offsetof(cd_event, user_agent)},
                   {"site", offsetof(cd_event, site)},
                   {"session", offsetof(cd_event, session)},
                   {"ext_ref", offsetof(cd_event, ext_ref)},
                   {"credential_id", offsetof(cd_event, credential_id)},
                   {"request_id", offsetof(cd_event, request_id)}};
#define EVENT_TEXT(e, i) ((const char *)(e) + event_texts[i].off)

/* issue 16: the answer to POST /api/v1/consents, {"consent":...,"event":...}, with the bytes
 * json_dumps(JSON_COMPACT) writes for cd_native__consent_json() and cd_native__event_json()
 * (keys in insertion order); -1 when a string is not valid UTF-8 (the tree then decides). */
int cd_native__consent_dump(const cd_consent *c, const cd_event *e, cd_buf *b)
{
    int rc = 0; /* -1 from any string: what was written after it is thrown away */
    cd_buf_puts(b, "{\"consent\":{\"scope\":");
    rc |= cd_utf8_json_string(b, c->scope);
    dump_key(b, false, "state");
    rc |= cd_utf8_json_string(b, c->state);
    dump_time(b, "updated_at", c->updated_ms);
    cd_buf_puts(b, "},\"event\":{\"id\":");
    cd_buf_put_int(b, e->id, 1);
    cd_buf_puts(b, ",\"seq\":");
    cd_buf_put_int(b, e->seq, 1);
    cd_buf_puts(b, ",\"phone\":");
    rc |= cd_utf8_json_string(b, e->phone);
    dump_key(b, false, "scope");
    rc |= cd_utf8_json_string(b, e->scope);
    for (size_t i = 0; i < sizeof event_texts / sizeof event_texts[0]; i++)
        rc |= dump_field(b, false, event_texts[i].k, EVENT_TEXT(e, i));
    dump_time(b, "created_at", e->created_ms);
    dump_key(b, false, "hash");
    rc |= cd_utf8_json_string(b, e->hash);
    dump_key(b, false, "prev_hash");
    rc |= cd_utf8_json_string(b, e->prev_hash);
    cd_buf_puts(b, "}}");
    return rc != 0 ? -1 : 0;
}

json_t *cd_native__consent_json(const cd_consent *c)
{
    return json_pack("{ss ss so}", "scope", c->scope, "state", c->state, "updated_at",
                     cd_native__time(c->updated_ms));
}

json_t *cd_native__event_json(const cd_event *e)
{
    json_t *o = json_pack("{sI sI ss ss}", "id", (json_int_t)e->id, "seq", (json_int_t)e->seq,
                          "phone", e->phone, "scope", e->scope);
    for (size_t i = 0; i < sizeof event_texts / sizeof event_texts[0]; i++)
        json_object_set_new(o, event_texts[i].k, cd_native__str_or_null(EVENT_TEXT(e, i)));
    json_object_set_new(o, "created_at", cd_native__time(e->created_ms));
    json_object_set_new(o, "hash", json_string(e->hash));
    json_object_set_new(o, "prev_hash", json_string(e->prev_hash));
    return o;
}

json_t *cd_native__message_json(const cd_message *m)
{
    return json_pack("{ss ss so ss ss so ss so si so so so}", "id", m->id, "to", m->to, "from",
                     cd_native__str_or_null(m->from), "text", m->text ? m->text : "", "kind",
                     m->kind, "scope", cd_native__str_or_null(m->scope), "status", m->status,
                     "reason", cd_native__str_or_null(m->reason), "parts", m->parts, "created_at",
                     cd_native__time(m->created_ms), "updated_at", cd_native__time(m->updated_ms),
                     "history", m->history ? json_incref(m->history) : json_array());
}

/* ---- contacts ---- */

/* Parses the contact members of `o` into p. Strings are borrowed from o. */
static int parse_contact(json_t *o, cd_contact_patch *p, cd_err *err)
{
    json_t *params = json_object_get(o, "params");
    if (params && !json_is_null(params) && !json_is_object(params))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "params",
                              "params must be an object");
    for (int f = 0; f < CD_CF_COUNT; f++) {
        const char *name = cd_contact_field_name(f);
        json_t *src = o;
        if (f >= CD_CF_PARAM1 && json_is_object(params) && json_object_get(params, name))
            src = params;
        if (json_object_get(src, name) == NULL)
            continue;
        if (cd_api_opt_string(src, name, 255, &p->value[f], err) != 0 ||
            cd_contact_field_check(f, p->value[f], err) != 0)
            return -1;
        p->has[f] = true;
    }
    json_t *v = json_object_get(o, "custom");
    if (v && !json_is_null(v)) {
        const char *k;
        json_t *x;
        if (!json_is_object(v) || json_object_size(v) > 50)
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "custom",
                                  "custom must be an object of at most 50 members");
        json_object_foreach (v, k, x) {
            if (strlen(k) > 64 || json_is_object(x) || json_is_array(x) ||
                (json_is_string(x) && json_string_length(x) > 1024))
                return cd_fail_reason(err, CD_EINVAL, "invalid_field", "custom",
                                      "custom values must be scalars (strings up to 1024)");
        }
        p->custom = v;
    }
    v = json_object_get(o, "tags");
    if (v && !json_is_null(v)) {
        size_t i;
        json_t *x;
        if (!json_is_array(v) || json_array_size(v) > 100)
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "tags",
                                  "tags must be an array of at most 100 strings");
        json_array_foreach (v, i, x)
            if (!json_is_string(x) || json_string_length(x) == 0 || json_string_length(x) > 64)
                return cd_fail_reason(err, CD_EINVAL, "invalid_field", "tags",
                                      "each tag is a string of 1 to 64 characters");
        p->tags = v;
    }
    v = json_object_get(o, "groups");
    if (v && !json_is_null(v)) {
        size_t i;
        json_t *x;
        if (!json_is_array(v) || json_array_size(v) > 100)
            return cd_fail_reason(err, CD_EINVAL, "invalid_field", "groups",
                                  "groups must be an array of at most 100 group ids");
        json_array_foreach (v, i, x)
            if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > MAX_ID)
                return cd_fail_reason(err, CD_EINVAL, "invalid_field", "groups",
                                      "group ids are positive integers");
        p->groups = v;
    }
    return 0;
}

typedef struct contact_in {
    cd_contact_patch patch;
    char phone[CD_PHONE_MAX];
    int64_t id;     /* PATCH: the contact */
    cd_contact out; /* what the job wrote, rendered after the commit */
} contact_in;

/* issue 16: the answer is built on the request's thread, not on the single writer. */
static void render_contact(cd_api_write_op *w)
{
    contact_in *in = w->in;
    w->body = cd_native__contact_json(&in->out);
}

static void contact_done(cd_api_write_op *w)
{
    contact_in *in = w->in;
    cd_contact_clear(&in->out);
}

static int job_contact_upsert(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    contact_in *in = w->in;
    bool created = false;
    w->done = contact_done;
    if (cd_contact_apply(db, w->who.account.id, in->id, &in->patch, in->id == 0, &in->out, &created,
                         err) != 0)
        return -1;
    w->status = in->id ? 200 : created ? 201 : 200;
    w->render = render_contact;
    return 0;
}

static int h_contact_create(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    const char *phone;
    contact_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_phone_field(o, "phone", &phone, &err) != 0 ||
        cd_api_normalize(req, phone, "phone", in->phone, &err) != 0 ||
        parse_contact(o, &in->patch, &err) != 0)
        return cd_native__error(req, &err);
    in->patch.phone = in->phone;
    in->patch.merge = true;
    return cd_api_write(req, &cd_native__kit, job_contact_upsert, in);
}

/* Resolves {ref} on a reader; fills c. */
static int find_contact(cd_req *req, cd_contact *c, cd_err *err)
{
    cd_db *db = cd_api_reader(req, err);
    if (db == NULL)
        return -1;
    return cd_contact_find(db, WHO(req)->account.id, WHO(req)->account.region,
                           cd_req_param(req, "ref"), c, err);
}

static int h_contact_get(cd_req *req)
{
    cd_err err;
    cd_contact c;
    if (find_contact(req, &c, &err) != 0)
        return cd_native__error(req, &err);
    /* issue 16: written straight into the answer, without a jansson tree */
    cd_buf b = {.data = cd_xmalloc(1024), .cap = 1024}; /* most contacts fit */
    b.data[0] = '\0';
    if (cd_native__contact_dump(&c, &b) == 0) {
        size_t len = b.len;
        cd_contact_clear(&c);
        return cd_reply_take(req, 200, "application/json", cd_buf_take(&b), len);
    }
    cd_buf_free(&b);
    json_t *body = cd_native__contact_json(&c);
    cd_contact_clear(&c);
    return cd_reply_json(req, 200, body);
}

static int h_contact_patch(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    cd_contact c;
    contact_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0)
        return cd_native__error(req, &err);
    if (json_object_get(o, "phone")) {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "phone",
                       "a contact's number cannot change; create a new contact");
        return cd_native__error(req, &err);
    }
    if (parse_contact(o, &in->patch, &err) != 0 || find_contact(req, &c, &err) != 0)
        return cd_native__error(req, &err);
    in->id = c.id;
    cd_contact_clear(&c);
    return cd_api_write(req, &cd_native__kit, job_contact_upsert, in);
}

typedef struct collect {
    json_t *data;
    int64_t last;
    int n;
} collect;

static int collect_contact(const cd_contact *c, void *arg)
{
    collect *k = arg;
    json_array_append_new(k->data, cd_native__contact_json(c));
    k->last = c->id;
    k->n++;
    return 0;
}

static int h_contact_list(cd_req *req)
{
    cd_err err;
    cd_contact_filter f = {0};
    int64_t group = 0;
    if (cd_api_paging(req, &f.limit, &f.after_id, &err) != 0)
        return cd_native__error(req, &err);
    const char *g = cd_req_query(req, "group");
    if (g && *g && cd_api_parse_int(g, 1, MAX_ID, &group) != 0) {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "group", "group must be a group id");
        return cd_native__error(req, &err);
    }
    f.group_id = group;
    f.tag = cd_req_query(req, "tag");
    f.q = cd_req_query(req, "q");
    if (f.tag && !*f.tag)
        f.tag = NULL;
    if (f.q && !*f.q)
        f.q = NULL;
    int want = f.limit;
    f.limit = want + 1; /* one more tells whether there is a next page */
    collect k = {.data = json_array()};
    cd_db *db = cd_api_reader(req, &err);
    int rc =
        db ? cd_store_contact_list(db, WHO(req)->account.id, &f, collect_contact, &k, &err) : -1;
    if (rc != 0) {
        json_decref(k.data);
        return cd_native__error(req, &err);
    }
    bool more = k.n > want;
    if (more) {
        json_array_remove(k.data, (size_t)want);
        k.last = json_integer_value(json_object_get(json_array_get(k.data, want - 1), "id"));
    }
    return cd_reply_json(req, 200, cd_native__list(k.data, k.last, more));
}

static int collect_consent(const cd_consent *c, void *arg)
{
    json_array_append_new(arg, cd_native__consent_json(c));
    return 0;
}

static int h_contact_consents(cd_req *req)
{
    cd_err err;
    cd_contact c;
    if (find_contact(req, &c, &err) != 0)
        return cd_native__error(req, &err);
    json_t *data = json_array();
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? cd_store_consent_list(db, WHO(req)->account.id, c.id, collect_consent, data, &err)
                : -1;
    cd_contact_clear(&c);
    if (rc != 0) {
        json_decref(data);
        return cd_native__error(req, &err);
    }
    return cd_reply_json(req, 200, cd_native__list(data, 0, false));
}

/* ---- groups and message types ---- */

typedef struct named_in {
    const char *kind;
    cd_named n;
} named_in;

static int job_named_create(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    named_in *in = w->in;
    if (cd_named_create(db, in->kind, w->who.account.id, &in->n, err) != 0)
        return -1;
    w->status = 201;
    w->body = json_pack("{sI ss}", "id", (json_int_t)in->n.id, "name", in->n.name);
    return 0;
}

static int named_create(cd_req *req, const char *kind)
{
    cd_err err;
    json_t *o = NULL;
    const char *name;
    named_in *in = cd_req_alloc(req, sizeof *in);
    in->kind = kind;
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_req_string(o, "name", 255, &name, &err) != 0)
        return cd_native__error(req, &err);
    snprintf(in->n.name, sizeof in->n.name, "%s", name);
    json_t *id = json_object_get(o, "id");
    if (strcmp(kind, "type") == 0 && id && !json_is_null(id)) {
        if (!json_is_integer(id) || json_integer_value(id) < 1 || json_integer_value(id) > MAX_ID) {
            cd_fail_reason(&err, CD_EINVAL, "invalid_field", "id", "id must be a positive integer");
            return cd_native__error(req, &err);
        }
        in->n.id = json_integer_value(id);
    }
    return cd_api_write(req, &cd_native__kit, job_named_create, in);
}

static int collect_named(const cd_named *n, void *arg)
{
    collect *k = arg;
    json_array_append_new(k->data, json_pack("{sI ss so}", "id", (json_int_t)n->id, "name", n->name,
                                             "created_at", cd_native__time(n->created_ms)));
    k->last = n->id;
    k->n++;
    return 0;
}

static int named_list(cd_req *req, const char *kind)
{
    cd_err err;
    int limit;
    int64_t cursor;
    if (cd_api_paging(req, &limit, &cursor, &err) != 0)
        return cd_native__error(req, &err);
    collect k = {.data = json_array()};
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? cd_store_named_list(db, kind, WHO(req)->account.id, cursor, limit + 1,
                                      collect_named, &k, &err)
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

static int h_group_create(cd_req *req)
{
    return named_create(req, "group");
}
static int h_group_list(cd_req *req)
{
    return named_list(req, "group");
}
static int h_type_create(cd_req *req)
{
    return named_create(req, "type");
}
static int h_type_list(cd_req *req)
{
    return named_list(req, "type");
}

/* ---- consents, check, events ---- */

static const char *const channels[] = {"api", "sms", "web", "email", "paper", "import"};

typedef struct consent_in {
    char phone[CD_PHONE_MAX];
    cd_consent_request rq; /* rq.phone = phone */
    cd_consent out;        /* the job's result */
    cd_event ev;
} consent_in;

static void render_consent(cd_api_write_op *w)
{
    consent_in *in = w->in;
    cd_buf b = {.data = cd_xmalloc(1024), .cap = 1024}; /* the answer fits: no regrowth */
    b.data[0] = '\0';
    if (w->surface->reply == NULL && cd_native__consent_dump(&in->out, &in->ev, &b) == 0) {
        w->raw_len = b.len;
        w->raw = cd_buf_take(&b);
        return;
    }
    cd_buf_free(&b);
    w->body = json_pack("{so so}", "consent", cd_native__consent_json(&in->out), "event",
                        cd_native__event_json(&in->ev));
}

static int job_consent_set(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    consent_in *in = w->in;
    in->rq.prov.credential_id = w->who.credential_id;
    in->rq.prov.request_id = w->request_id;
    if (cd_consent_record(db, w->who.account.id, &in->rq, &in->out, &in->ev, err) != 0)
        return -1;
    w->status = 201;
    w->render = render_consent;
    return 0;
}

static int h_consent_set(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    const char *phone, *scope, *state, *channel;
    consent_in *in = cd_req_alloc(req, sizeof *in);
    cd_provenance *p = &in->rq.prov;
    in->rq.phone = in->phone;
    if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
        cd_api_phone_field(o, "phone", &phone, &err) != 0 ||
        cd_api_normalize(req, phone, "phone", in->phone, &err) != 0 ||
        cd_api_opt_string(o, "scope", 39, &scope, &err) != 0 ||
        cd_scope_parse(scope ? scope : "all", "scope", &in->rq.scope, &err) != 0 ||
        cd_api_req_string(o, "state", 16, &state, &err) != 0 ||
        cd_api_opt_string(o, "channel", 15, &channel, &err) != 0 ||
        cd_api_opt_string(o, "disclosure", 10000, &p->disclosure, &err) != 0 ||
        cd_api_opt_string(o, "ip", 63, &p->ip, &err) != 0 ||
        cd_api_opt_string(o, "user_agent", 511, &p->user_agent, &err) != 0 ||
        cd_api_opt_string(o, "site", 127, &p->site, &err) != 0 ||
        cd_api_opt_string(o, "session", 127, &p->session, &err) != 0 ||
        cd_api_opt_string(o, "ext_ref", 127, &p->ext_ref, &err) != 0)
        return cd_native__error(req, &err);
    in->rq.state = cd_state_parse(state);
    if (in->rq.state == CD_STATE_NONE) {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "state",
                       "state must be pending, opted_in or opted_out");
        return cd_native__error(req, &err);
    }
    p->channel = "api";
    if (channel) {
        size_t i = 0;
        while (i < sizeof channels / sizeof channels[0] && strcmp(channels[i], channel) != 0)
            i++;
        if (i == sizeof channels / sizeof channels[0]) {
            cd_fail_reason(&err, CD_EINVAL, "invalid_field", "channel",
                           "channel must be api, sms, web, email, paper or import");
            return cd_native__error(req, &err);
        }
        p->channel = channels[i];
    }
    p->surface = "native";
    /* Without the consumer's own address, record the caller's: some provenance beats none. */
    if (p->ip == NULL)
        p->ip = cd_req_strdup(req, cd_req_client_ip(req));
    /* A raw header may be long or not UTF-8: the ledger escapes and cuts it (issue 8 item 12). */
    if (p->user_agent == NULL)
        p->user_agent = cd_req_header(req, "User-Agent");
    /* job_consent_set reads `in` and overwrites its result: it may run twice (issue 10). */
    return cd_api_write_rerunnable(req, &cd_native__kit, job_consent_set, in);
}

/* {"phone","scope","allowed","reason"} as json_pack + json_dumps write it; -1 (the caller
 * then builds the tree) when a text is not valid UTF-8. */
static int dump_check(cd_buf *b, const char *shown, const char *scope, const cd_check_result *r)
{
    cd_buf_puts(b, "{\"phone\":");
    if (shown == NULL)
        cd_buf_puts(b, "null");
    else if (cd_utf8_json_string(b, shown) != 0)
        return -1;
    cd_buf_puts(b, ",\"scope\":");
    if (cd_utf8_json_string(b, scope) != 0)
        return -1;
    cd_buf_puts(b, r->allowed ? ",\"allowed\":true,\"reason\":" : ",\"allowed\":false,\"reason\":");
    if (cd_utf8_json_string(b, r->reason) != 0)
        return -1;
    cd_buf_puts(b, "}");
    return 0;
}

static int h_check(cd_req *req)
{
    cd_err err;
    cd_scope scope;
    cd_check_result r;
    char scope_name[CD_SCOPE_LEN];
    const char *to = cd_req_query(req, "to"), *s = cd_req_query(req, "scope");
    if (to == NULL || *to == '\0') {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "to", "to is required");
        return cd_native__error(req, &err);
    }
    if (cd_scope_parse(s && *s ? s : "all", "scope", &scope, &err) != 0)
        return cd_native__error(req, &err);
    cd_scope_format(scope, scope_name);
    /* The request's reader is open already: authentication used it. */
    cd_db *db = cd_api_reader(req, &err);
    if (db == NULL || cd_consent_check_phone(db, &WHO(req)->account, to, scope, &r, &err) != 0)
        return cd_native__error(req, &err);
    /* issue 16: the answer written directly, as the tree below would write it */
    const char *shown = r.valid ? r.phone : strlen(to) <= 64 ? to : NULL;
    cd_buf b = {.data = cd_xmalloc(512), .cap = 512}; /* the answer fits: no regrowth */
    b.data[0] = '\0';
    if (dump_check(&b, shown, scope_name, &r) == 0) {
        size_t len = b.len;
        return cd_reply_take(req, 200, "application/json", cd_buf_take(&b), len);
    }
    cd_buf_free(&b);
    /* Echo an invalid number only when it is short, valid UTF-8 text. */
    json_t *echo = r.valid ? json_string(r.phone) : strlen(to) <= 64 ? json_string(to) : NULL;
    return cd_reply_json(req, 200,
                         json_pack("{so ss sb ss}", "phone", echo ? echo : json_null(), "scope",
                                   scope_name, "allowed", r.allowed, "reason", r.reason));
}

static int collect_event(const cd_event *e, void *arg)
{
    collect *k = arg;
    json_array_append_new(k->data, cd_native__event_json(e));
    k->last = e->seq;
    k->n++;
    return 0;
}

static int h_events(cd_req *req)
{
    cd_err err;
    cd_event_filter f = {0};
    cd_scope scope;
    char scope_name[CD_SCOPE_LEN];
    const char *phone = cd_req_query(req, "phone"), *s = cd_req_query(req, "scope");
    const char *since = cd_req_query(req, "since");
    int limit;
    if (cd_api_paging(req, &limit, &f.after_seq, &err) != 0)
        return cd_native__error(req, &err);
    if (s && *s) {
        if (cd_scope_parse(s, "scope", &scope, &err) != 0)
            return cd_native__error(req, &err);
        cd_scope_format(scope, scope_name);
        f.scope = scope_name;
    }
    if (since && *since && cd_time_parse(since, &f.since_ms) != 0) {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "since", "since must be RFC 3339");
        return cd_native__error(req, &err);
    }
    f.limit = limit + 1;
    collect k = {.data = json_array()};
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? 0 : -1;
    bool none = false;
    if (rc == 0 && phone && *phone) {
        char e164[CD_PHONE_MAX];
        cd_contact c;
        if (cd_api_normalize(req, phone, "phone", e164, &err) != 0) {
            rc = -1;
        } else if (cd_store_contact_by_phone(db, WHO(req)->account.id, e164, &c, NULL) == 0) {
            f.contact_id = c.id;
            cd_contact_clear(&c);
        } else {
            none = true; /* an unknown number has no events */
        }
    }
    if (rc == 0 && !none)
        rc = cd_store_event_list(db, WHO(req)->account.id, &f, collect_event, &k, &err);
    if (rc != 0) {
        json_decref(k.data);
        return cd_native__error(req, &err);
    }
    bool more = k.n > limit;
    if (more) {
        json_array_remove(k.data, (size_t)limit);
        k.last = json_integer_value(json_object_get(json_array_get(k.data, limit - 1), "seq"));
    }
    return cd_reply_json(req, 200, cd_native__list(k.data, k.last, more));
}

/* ---- outbox ---- */

typedef struct collect_msgs {
    json_t *data;
    int64_t last; /* rowid of the last message kept: the next page's cursor */
    int n, keep;
} collect_msgs;

static int collect_message(const cd_message *m, int64_t rowid, void *arg)
{
    collect_msgs *k = arg;
    if (k->n++ < k->keep) {
        json_array_append_new(k->data, cd_native__message_json(m));
        k->last = rowid;
    }
    return 0;
}

static int h_messages(cd_req *req)
{
    cd_err err;
    cd_message_filter f = {0};
    char e164[CD_PHONE_MAX];
    int limit;
    if (cd_api_paging(req, &limit, &f.before_rowid, &err) != 0)
        return cd_native__error(req, &err);
    const char *to = cd_req_query(req, "to");
    if (to && *to) {
        if (cd_api_normalize(req, to, "to", e164, &err) != 0)
            return cd_native__error(req, &err);
        f.to = e164;
    }
    f.status = cd_req_query(req, "status");
    f.kind = cd_req_query(req, "kind");
    if (f.status && !*f.status)
        f.status = NULL;
    if (f.kind && !*f.kind)
        f.kind = NULL;
    collect_msgs k = {.data = json_array(), .keep = limit};
    /* Newest first; one extra row tells whether there is a next page. */
    f.limit = limit + 1;
    cd_db *db = cd_api_reader(req, &err);
    int rc =
        db ? cd_store_message_list(db, WHO(req)->account.id, &f, collect_message, &k, &err) : -1;
    if (rc != 0) {
        json_decref(k.data);
        return cd_native__error(req, &err);
    }
    return cd_reply_json(req, 200, cd_native__list(k.data, k.last, k.n > limit));
}

static int h_message_get(cd_req *req)
{
    cd_err err;
    cd_message m;
    cd_db *db = cd_api_reader(req, &err);
    int rc =
        db ? cd_store_message_get(db, WHO(req)->account.id, cd_req_param(req, "id"), &m, &err) : -1;
    if (rc != 0) {
        if (err.code == CD_ENOTFOUND)
            cd_fail_reason(&err, CD_ENOTFOUND, "not_found", "", "no such message");
        return cd_native__error(req, &err);
    }
    json_t *body = cd_native__message_json(&m);
    cd_message_clear(&m);
    return cd_reply_json(req, 200, body);
}

/* ---- keys ---- */

typedef struct key_in {
    const char *name;
} key_in;

static int job_key_create(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    key_in *in = w->in;
    cd_apikey k;
    char key[CD_KEY_LEN];
    if (cd_key_create(db, w->who.account.id, in->name, &k, key, err) != 0)
        return -1;
    w->status = 201;
    w->body = json_pack("{ss ss ss so}", "id", k.id, "key", key, "name", k.name, "created_at",
                        cd_native__time(k.created_ms));
    /* A retry learns the key's id, never the key again: it is shown once and stored hashed. */
    w->idem_body = json_deep_copy(w->body);
    json_object_set_new(w->idem_body, "key", json_null());
    return 0;
}

static int h_key_create(cd_req *req)
{
    cd_err err;
    key_in *in = cd_req_alloc(req, sizeof *in);
    size_t len;
    cd_req_body(req, &len);
    if (len > 0) {
        json_t *o = NULL;
        if (cd_api_body(req, &cd_native__kit, &o, &err) != 0 ||
            cd_api_opt_string(o, "name", 127, &in->name, &err) != 0)
            return cd_native__error(req, &err);
    }
    return cd_api_write(req, &cd_native__kit, job_key_create, in);
}

static int collect_key(const cd_apikey *k, void *arg)
{
    json_array_append_new(arg, json_pack("{ss ss so so}", "id", k->id, "name", k->name,
                                         "created_at", cd_native__time(k->created_ms), "revoked_at",
                                         cd_native__time(k->revoked_ms)));
    return 0;
}

static int h_key_list(cd_req *req)
{
    cd_err err;
    json_t *data = json_array();
    cd_db *db = cd_api_reader(req, &err);
    int rc = db ? cd_store_key_each(db, WHO(req)->account.id, collect_key, data, &err) : -1;
    if (rc != 0) {
        json_decref(data);
        return cd_native__error(req, &err);
    }
    return cd_reply_json(req, 200, cd_native__list(data, 0, false));
}

typedef struct key_revoke_in {
    const char *id;
} key_revoke_in;

static int job_key_revoke(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    key_revoke_in *in = w->in;
    if (cd_store_key_revoke(db, w->who.account.id, in->id, cd_now_ms(), err) != 0) {
        if (err && err->code == CD_ENOTFOUND)
            cd_fail_reason(err, CD_ENOTFOUND, "not_found", "", "no such key");
        return -1;
    }
    w->status = 204;
    w->body = NULL;
    return 0;
}

static int h_key_revoke(cd_req *req)
{
    key_revoke_in *in = cd_req_alloc(req, sizeof *in);
    in->id = cd_req_param(req, "id");
    return cd_api_write(req, &cd_native__kit, job_key_revoke, in);
}

/* ---- export: a contact's consent proof ----
 * issue 8 items 11 to 13: the events carry exactly their hashed content plus "hash" (see
 * core/ledger.h), and they are streamed a page at a time, each page its own short read, up
 * to the head as it was when the export began. */

typedef struct export_stream {
    cd_ledger_export x;
    char *head; /* what comes before the events (owned), sent with the first part */
} export_stream;

static int export_next(void *arg, cd_buf *out)
{
    export_stream *s = arg;
    cd_err err = {0};
    if (s->head) {
        cd_buf_puts(out, s->head);
        free(s->head);
        s->head = NULL;
    }
    int rc = cd_ledger_export_page(&s->x, out, &err);
    if (rc < 0) {
        cd_logf("error", "export_failed", "\"account_id\":%lld", (long long)s->x.account_id);
        return -1;
    }
    if (rc == 0 && !s->x.csv)
        cd_buf_puts(out, "\n]}\n");
    return rc;
}

static void export_free(void *arg)
{
    export_stream *s = arg;
    free(s->head);
    free(s);
}

/* The JSON document up to the opening of "events". */
static char *export_head(const cd_contact *c, json_t *consents)
{
    json_t *o = json_pack("{so so ss ss}", "contact", cd_native__contact_json(c), "consents",
                          consents, "hash_algorithm", CD_LEDGER_HASH_ALGORITHM, "canonical_json",
                          CD_LEDGER_CANONICAL_JSON);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    char *head = cd_xmalloc(n + sizeof ",\"events\":[");
    memcpy(head, text, n - 1); /* all but the closing brace */
    memcpy(head + n - 1, ",\"events\":[", sizeof ",\"events\":[");
    free(text);
    return head;
}

static int h_export(cd_req *req)
{
    cd_err err;
    cd_contact c;
    cd_account a;
    char idbuf[32];
    const char *phone = cd_req_query(req, "phone"), *format = cd_req_query(req, "format");
    bool csv = format && strcmp(format, "csv") == 0;
    if (format && !csv && strcmp(format, "json") != 0) {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "format", "format is json or csv");
        return cd_native__error(req, &err);
    }
    if (phone == NULL || *phone == '\0') {
        cd_fail_reason(&err, CD_EINVAL, "invalid_field", "phone", "phone is required");
        return cd_native__error(req, &err);
    }
    cd_db *db = cd_api_reader(req, &err);
    if (db == NULL)
        return cd_native__error(req, &err);
    int64_t acct = WHO(req)->account.id;
    json_t *consents = json_array();
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)acct);
    /* One snapshot: the head read here bounds the events the stream sends. */
    int rc = cd_store_account_get(db, "id", idbuf, &a, &err);
    if (rc == 0)
        rc = cd_contact_find(db, acct, WHO(req)->account.region, phone, &c, &err);
    if (rc == 0) {
        rc = cd_store_consent_list(db, acct, c.id, collect_consent, consents, &err);
        if (rc != 0)
            cd_contact_clear(&c);
    }
    if (rc != 0) {
        json_decref(consents);
        return cd_native__error(req, &err);
    }
    export_stream *s = cd_xcalloc(1, sizeof *s);
    s->x = (cd_ledger_export){.store = cd_api_env_of(req)->store,
                              .account_id = acct,
                              .contact_id = c.id,
                              .upto_seq = a.ledger_seq,
                              .csv = csv};
    if (csv) {
        cd_buf b = {0};
        cd_ledger_csv_header(&b);
        s->head = cd_buf_take(&b);
        json_decref(consents);
    } else {
        s->head = export_head(&c, consents); /* takes consents */
    }
    cd_contact_clear(&c);
    if (s->head == NULL) {
        export_free(s);
        cd_fail(&err, CD_EINTERNAL, "", "the export could not be built");
        return cd_native__error(req, &err);
    }
    cd_reply_header(req, "Content-Disposition",
                    csv ? "attachment; filename=\"consent-proof.csv\""
                        : "attachment; filename=\"consent-proof.json\"");
    return cd_reply_stream(req, 200, csv ? "text/csv; charset=utf-8" : "application/json",
                           export_next, s, export_free);
}

void cd_api_native_routes(cd_router *r, const cd_api_env *env)
{
    const cd_surface *n = &cd_native__surface;
    void *ctx = cd_api_ctx(env);
    cd_router_set_fallback(r, &cd_native__public);
    cd_router_add(r, "POST", "/api/v1/contacts", n, h_contact_create, ctx);
    cd_router_add(r, "GET", "/api/v1/contacts", n, h_contact_list, ctx);
    cd_router_add(r, "GET", "/api/v1/contacts/{ref}", n, h_contact_get, ctx);
    cd_router_add(r, "PATCH", "/api/v1/contacts/{ref}", n, h_contact_patch, ctx);
    cd_router_add(r, "GET", "/api/v1/contacts/{ref}/consents", n, h_contact_consents, ctx);
    cd_router_add(r, "POST", "/api/v1/groups", n, h_group_create, ctx);
    cd_router_add(r, "GET", "/api/v1/groups", n, h_group_list, ctx);
    cd_router_add(r, "POST", "/api/v1/message-types", n, h_type_create, ctx);
    cd_router_add(r, "GET", "/api/v1/message-types", n, h_type_list, ctx);
    cd_router_add(r, "POST", "/api/v1/consents", n, h_consent_set, ctx);
    cd_router_add(r, "GET", "/api/v1/check", n, h_check, ctx);
    cd_router_add(r, "GET", "/api/v1/events", n, h_events, ctx);
    cd_router_add(r, "GET", "/api/v1/messages", n, h_messages, ctx);
    cd_router_add(r, "GET", "/api/v1/messages/{id}", n, h_message_get, ctx);
    cd_router_add(r, "POST", "/api/v1/keys", n, h_key_create, ctx);
    cd_router_add(r, "GET", "/api/v1/keys", n, h_key_list, ctx);
    cd_router_add(r, "DELETE", "/api/v1/keys/{id}", n, h_key_revoke, ctx);
    cd_router_add(r, "GET", "/api/v1/export", n, h_export, ctx);
    cd_api_native_msg_routes(r, env);
    cd_api_native_sub_routes(r, env); /* issue 12 */
}
