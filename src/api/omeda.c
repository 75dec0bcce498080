/* api/omeda.c -- the Omeda surface (issue 12, seed 002): the SMS opt in/out queue.
 *
 *   POST /webservices/rest/brand/{brandAbbreviation}/messageoptqueue[/]
 *   x-omeda-appid: KEY        the brand in the path must be the key's account's brand
 *
 * Omeda's JSON goes in, core/optqueue applies the opts all or nothing, Omeda's JSON comes
 * out: 200 {"Submission","Success"[,"Messages"]} or 400 {"Submission","Errors":[{"Error"}]}.
 * Every submission that gets past the credentials is one writer job: its opts and its row
 * in `submissions` commit together, and a refused one leaves only that row (what it was
 * refused for), so GET /api/v1/submissions/{uuid} can show any Submission an answer names.
 * Errors before that (403, 404, 405, 413, 429, 503) come as {"Errors":[{"Error"}]}. */
#include "api/omeda.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/guard.h"
#include "api/kit.h"
#include "core/optqueue.h"
#include "http/ratelimit.h"
#include "util/buf.h"
#include "util/crypto.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define OMEDA_MAX_OPTS   1000               /* MessageTypeIds in one submission */
#define OMEDA_MAX_BODY   65536              /* bytes: room for OMEDA_MAX_OPTS ids and then some */
#define OMEDA_MAX_ERRORS 16                 /* the request's own faults kept for the answer */
#define OMEDA_MAX_ID     9007199254740991LL /* 2^53 - 1, as native message type ids */

static const char *const FINAL_ERROR =
    "There were errors with your submission. None of the Opts submitted in your request "
    "were created.";
static const char *const SUCCESS = "Your submission was successful";

/* ---- errors: {"Errors":[{"Error":"..."}]} ---- */

static int status_of(const cd_err *e)
{
    const char *reason = cd_err_reason(e);
    switch (e->code) {
    case CD_EAUTH: /* Omeda: "403 Forbidden ... an incorrect x-omeda-appid" */
        return 403;
    case CD_ENOTFOUND:
        return 404;
    case CD_EMETHOD:
        return 405;
    case CD_ELIMIT:
        return 413;
    case CD_EINVAL:
        return strcmp(reason, "request_timeout") == 0 ? 408 : 400;
    case CD_EMISMATCH: /* an Idempotency-Key reused with another body: a bad request */
        return 400;
    case CD_EBUSY:
        return strcmp(reason, "rate_limited") == 0 ? 429 : 503;
    case CD_ESTORE:
        return 503;
    default:
        return 500;
    }
}

static int omeda_error(cd_req *req, const cd_err *err)
{
    int status = status_of(err);
    const char *text = err->msg;
    if (status == 403) /* the same words whatever was wrong: nothing learned */
        text = "Forbidden: the x-omeda-appid is missing, not valid, or not authorized for "
               "this brand.";
    if (status == 429 || status == 503) {
        const cd_ratelimit_info *rl = cd_req_ratelimit(req);
        char v[16];
        snprintf(v, sizeof v, "%d",
                 status == 429 && rl ? (rl->retry_after_s > 0 ? rl->retry_after_s : rl->reset_s)
                                     : 1);
        cd_reply_header(req, "Retry-After", v);
    }
    json_t *msg = json_string(text);
    if (msg == NULL) /* not UTF-8: never expected, but never an empty answer either */
        msg = json_string("The request could not be processed.");
    return cd_reply_json(req, status, json_pack("{s[{so}]}", "Errors", "Error", msg));
}

/* ---- authentication: x-omeda-appid, and the brand of its account in the path ---- */

static int authenticate(cd_req *req, cd_err *err)
{
    if (cd_api_authenticate(req, cd_api_env_of(req)->store, CD_AUTH_OMEDA, err) != 0)
        return -1;
    /* Another brand is 403, never 404: no one learns which brands exist. */
    const char *brand = cd_req_param(req, "brand");
    if (brand == NULL || strcasecmp(brand, cd_api_who(req)->account.brand) != 0)
        return cd_fail_reason(err, CD_EAUTH, "unauthorized", "", "not this account's brand");
    return 0;
}

static const cd_surface omeda_http = {
    .name = "omeda", .authenticate = authenticate, .reply_error = omeda_error};
/* JSON only (another content type is a 400 in the answer, see h_submit); Idempotency-Key is
 * honoured, though Omeda's own clients do not send one. */
static const cd_api_surface omeda_kit = {.http = &omeda_http, .idempotency = true, .forms = false};

/* ---- the submission ---- */

typedef struct omeda_in {
    char uuid[40];
    char phone[CD_PHONE_MAX]; /* E.164; "" when none was valid */
    char shown[40];           /* PhoneNumber as submitted (ASCII), for the texts */
    char site[24];            /* SiteId in decimal, "" when none */
    char session[128];        /* SiteSessionId, "" when none */
    cd_opt *opts;             /* request memory */
    size_t nopts;
    bool refused;                       /* a fault, or a type that is not the account's */
    char errors[OMEDA_MAX_ERRORS][224]; /* the request's own faults, in order */
    size_t nerrors;
} omeda_in;

static void add_error(omeda_in *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_error(omeda_in *in, const char *fmt, ...)
{
    if (in->nerrors == OMEDA_MAX_ERRORS)
        return; /* enough to fix first; the submission is refused all the same */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->errors[in->nerrors++], sizeof in->errors[0], fmt, ap);
    va_end(ap);
}

/* A JSON integer, or a string of digits: Omeda's own server reads "6" as 6. */
static bool int_value(json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        if (cd_api_parse_int(json_string_value(v), lo, hi, &x) != 0 || json_string_length(v) > 18)
            return false;
    } else {
        return false;
    }
    if (x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static bool absent(json_t *v)
{
    return v == NULL || json_is_null(v);
}

static void parse_site(json_t *o, omeda_in *in)
{
    int64_t id;
    json_t *v = json_object_get(o, "SiteId");
    if (!absent(v)) {
        if (int_value(v, 0, OMEDA_MAX_ID, &id))
            snprintf(in->site, sizeof in->site, "%" PRId64, id);
        else
            add_error(in, "SiteId must be an integer.");
    }
    v = json_object_get(o, "SiteSessionId");
    if (absent(v))
        return;
    if (!json_is_string(v) || json_string_length(v) >= sizeof in->session ||
        strlen(json_string_value(v)) != json_string_length(v))
        add_error(in, "SiteSessionId must be a string of at most %zu characters.",
                  sizeof in->session - 1);
    else
        snprintf(in->session, sizeof in->session, "%s", json_string_value(v));
}

/* A national number as Omeda clients write it: digits, perhaps with separators. */
static bool national_ok(const char *s, size_t len)
{
    if (len == 0 || len >= 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]) && !strchr(" -.()", s[i]))
            return false;
    return true;
}

static void parse_phone(json_t *o, omeda_in *in)
{
    int64_t cc = 0;
    json_t *c = json_object_get(o, "CountryCallingCode"), *p = json_object_get(o, "PhoneNumber");
    bool cc_ok = false;
    if (absent(c))
        add_error(in, "CountryCallingCode is required.");
    else if (!int_value(c, 1, 999, &cc))
        add_error(in, "CountryCallingCode must be an integer from 1 to 999.");
    else
        cc_ok = true;
    if (absent(p)) {
        add_error(in, "PhoneNumber is required.");
        return;
    }
    if (json_is_integer(p) && json_integer_value(p) > 0) {
        snprintf(in->shown, sizeof in->shown, "%" JSON_INTEGER_FORMAT, json_integer_value(p));
    } else if (json_is_string(p) && national_ok(json_string_value(p), json_string_length(p))) {
        snprintf(in->shown, sizeof in->shown, "%s", json_string_value(p));
    } else {
        add_error(in, "PhoneNumber must be an integer: the cell phone number without its "
                      "country calling code.");
        return;
    }
    if (cc_ok && cd_phone_from_parts((int)cc, in->shown, "PhoneNumber", in->phone, NULL) != 0) {
        in->phone[0] = '\0';
        add_error(in,
                  "PhoneNumber %s is not a valid cell phone number for CountryCallingCode "
                  "%" PRId64 ".",
                  in->shown, cc);
    }
}

/* How many opts the MessageOpts array expands to (one per MessageTypeId). */
static size_t count_opts(json_t *list)
{
    size_t n = 0, i;
    json_t *e;
    json_array_foreach (list, i, e) {
        json_t *t = json_object_get(e, "MessageTypeId");
        n += json_is_array(t) ? json_array_size(t) : 1;
    }
    return n;
}

/* One element of MessageOpts (number k, from 1): its opts go to in->opts. */
static void parse_opt(json_t *e, size_t k, omeda_in *in)
{
    int64_t status = -1, del = 0, id;
    if (!json_is_object(e)) {
        add_error(in, "MessageOpts element %zu must be an object.", k);
        return;
    }
    json_t *t = json_object_get(e, "MessageTypeId"), *d = json_object_get(e, "DeleteOptOut");
    bool ok = true;
    if (!int_value(json_object_get(e, "Status"), 0, 1, &status)) {
        add_error(in, "MessageOpts element %zu: Status is required: 0 (opt out) or 1 (opt in).", k);
        ok = false;
    }
    if (!absent(d) && !int_value(d, 0, 1, &del)) {
        add_error(in, "MessageOpts element %zu: DeleteOptOut must be 0 or 1.", k);
        ok = false;
    }
    json_t *one = json_is_array(t) ? NULL : t;
    size_t n = one ? 1 : json_array_size(t);
    bool ids_ok = n > 0;
    for (size_t i = 0; ids_ok && i < n; i++)
        ids_ok = int_value(one ? one : json_array_get(t, i), 1, OMEDA_MAX_ID, &id);
    if (!ids_ok) {
        add_error(in,
                  "MessageOpts element %zu: MessageTypeId is required: an integer or an array "
                  "of integers.",
                  k);
        return;
    }
    for (size_t i = 0; ok && i < n; i++) {
        int_value(one ? one : json_array_get(t, i), 1, OMEDA_MAX_ID, &id);
        in->opts[in->nopts++] = (cd_opt){.type_id = id,
                                         .state = status ? CD_STATE_OPTED_IN : CD_STATE_OPTED_OUT,
                                         .delete_opt_out = del == 1};
    }
}

/* Reads the whole body, collecting every fault in in->errors. in->opts must have room for
 * count_opts(MessageOpts) opts. */
static void parse_body(json_t *o, omeda_in *in)
{
    size_t i;
    json_t *list = json_object_get(o, "MessageOpts");
    parse_site(o, in);
    parse_phone(o, in);
    if (absent(list))
        return;
    if (!json_is_array(list)) {
        add_error(in, "MessageOpts must be an array.");
        return;
    }
    if (count_opts(list) > OMEDA_MAX_OPTS) {
        add_error(in, "MessageOpts may name at most %d MessageTypeIds in one submission.",
                  OMEDA_MAX_OPTS);
        return;
    }
    for (i = 0; i < json_array_size(list); i++)
        parse_opt(json_array_get(list, i), i + 1, in);
}

/* ---- the answer, and what the submission did ---- */

static json_t *error_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_of(const char *fmt, ...)
{
    char text[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return json_pack("{ss}", "Error", text);
}

/* 400: the request's faults, then the types that are not the account's, then the last
 * line the seed shows. */
static json_t *refusal(const omeda_in *in)
{
    json_t *errs = json_array();
    for (size_t i = 0; i < in->nerrors; i++)
        json_array_append_new(errs, json_pack("{ss}", "Error", in->errors[i]));
    for (size_t i = 0; i < in->nopts; i++) {
        const cd_opt *o = &in->opts[i];
        if (o->outcome != CD_OPT_UNKNOWN_TYPE)
            continue;
        json_array_append_new(
            errs, error_of("MessageOpts submission (%" PRId64 "): the MessageTypeId is not "
                           "authorized for Opts for the AppId submitted. Phone number %s was "
                           "not opted %s.",
                           o->type_id, in->shown, o->state == CD_STATE_OPTED_IN ? "in" : "out"));
    }
    json_array_append_new(errs, json_pack("{ss}", "Error", FINAL_ERROR));
    return json_pack("{ss so}", "Submission", in->uuid, "Errors", errs);
}

/* The seed's "Message element" for an opt-in that was not written; false for any other. */
static bool kept_text(const omeda_in *in, const cd_opt *o, char text[320])
{
    if (o->outcome == CD_OPT_KEPT_OUT)
        snprintf(text, 320,
                 "MessageOpts submission (%" PRId64 "): an OUT exists for Phone number %s "
                 "and DeleteOptOut was not set to 1. The OptIn was not processed; the OUT "
                 "remains.",
                 o->type_id, in->shown);
    else if (o->outcome == CD_OPT_KEPT_OUT_ALL)
        snprintf(text, 320,
                 "MessageOpts submission (%" PRId64 "): Phone number %s has opted out of "
                 "all messages (STOP). The OptIn was not processed.",
                 o->type_id, in->shown);
    else
        return false;
    return true;
}

/* 200: and a Messages list when an opt-in was not written (the seed's "Message element"). */
static json_t *success(const omeda_in *in)
{
    char text[320];
    json_t *msgs = json_array();
    for (size_t i = 0; i < in->nopts; i++)
        if (kept_text(in, &in->opts[i], text))
            json_array_append_new(msgs, json_string(text));
    json_t *a = json_pack("{ss ss}", "Submission", in->uuid, "Success", SUCCESS);
    if (json_array_size(msgs) > 0)
        json_object_set_new(a, "Messages", msgs);
    else
        json_decref(msgs);
    return a;
}

/* What GET /api/v1/submissions/{uuid} shows besides the row's columns. */
static json_t *detail_of(const omeda_in *in, json_t *answer)
{
    json_t *opts = json_array();
    for (size_t i = 0; i < in->nopts; i++) {
        const cd_opt *o = &in->opts[i];
        json_array_append_new(
            opts, json_pack("{sI ss sb ss so}", "message_type_id", (json_int_t)o->type_id, "state",
                            cd_state_name(o->state), "delete_opt_out", o->delete_opt_out, "outcome",
                            cd_opt_outcome_name(o->outcome), "event_seq",
                            o->event_seq ? json_integer(o->event_seq) : json_null()));
    }
    return json_pack("{sO so}", "answer", answer, "opts", opts);
}

/* Whether s is copied as it is by a JSON encoder: printable ASCII, no quote or backslash. */
static bool plain(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* issue 12 (perf): the 200 answer and then the submission's detail, as the JSON text that
 * json_dumps(JSON_COMPACT) writes for success() and detail_of(), straight into b: the
 * writer no longer builds, dumps and frees two json_t trees per submission. Returns the
 * answer's length (it starts at b->data + 10), or 0 when a string would need an escape
 * (never expected: the uuid, fixed words, type ids and a PhoneNumber as national_ok() let
 * it through); the caller then builds the trees as before. */
static size_t success_text(const omeda_in *in, cd_buf *b)
{
    char text[320];
    bool any = false;
    if (!plain(in->uuid) || !plain(in->shown))
        return 0;
    cd_buf_puts(b, "{\"answer\":{\"Submission\":\"");
    cd_buf_puts(b, in->uuid);
    cd_buf_puts(b, "\",\"Success\":\"");
    cd_buf_puts(b, SUCCESS);
    cd_buf_puts(b, "\"");
    for (size_t i = 0; i < in->nopts; i++) {
        if (!kept_text(in, &in->opts[i], text))
            continue;
        cd_buf_puts(b, any ? ",\"" : ",\"Messages\":[\"");
        cd_buf_puts(b, text);
        cd_buf_puts(b, "\"");
        any = true;
    }
    cd_buf_puts(b, any ? "]}" : "}");
    size_t answer = b->len - 10;
    cd_buf_puts(b, ",\"opts\":[");
    for (size_t i = 0; i < in->nopts; i++) {
        const cd_opt *o = &in->opts[i];
        cd_buf_puts(b, i ? ",{\"message_type_id\":" : "{\"message_type_id\":");
        cd_buf_put_int(b, o->type_id, 0);
        cd_buf_puts(b, ",\"state\":\"");
        cd_buf_puts(b, cd_state_name(o->state));
        cd_buf_puts(b, o->delete_opt_out ? "\",\"delete_opt_out\":true,\"outcome\":\""
                                         : "\",\"delete_opt_out\":false,\"outcome\":\"");
        cd_buf_puts(b, cd_opt_outcome_name(o->outcome));
        cd_buf_puts(b, "\",\"event_seq\":");
        if (o->event_seq)
            cd_buf_put_int(b, o->event_seq, 0);
        else
            cd_buf_puts(b, "null");
        cd_buf_puts(b, "}");
    }
    cd_buf_puts(b, "]}");
    return answer;
}

/* The writer job: apply the opts (checked by the handler) unless the submission is refused,
 * and record it either way, in the same transaction. */
static int job_submit(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    omeda_in *in = w->in;
    int64_t acct = w->who.account.id;
    /* It may run twice (issue 10: cd_api_write_rerunnable): the opts of a submission that is
     * applied were all checked known, and are again before each run. */
    for (size_t i = 0; !in->refused && i < in->nopts; i++) {
        in->opts[i].outcome = CD_OPT_KNOWN;
        in->opts[i].event_seq = 0;
    }
    cd_provenance p = {.surface = "omeda",
                       .channel = "api",
                       .ip = w->ip,
                       .user_agent = w->user_agent,
                       .site = in->site,
                       .session = in->session,
                       .ext_ref = in->uuid,
                       .credential_id = w->who.credential_id,
                       .request_id = w->request_id};
    if (!in->refused && cd_optqueue_apply(db, acct, in->phone, in->opts, in->nopts, &p, err) != 0)
        return -1;
    /* sized for three opts' answer and detail: built with no realloc on the writer */
    cd_buf text = {.data = cd_xmalloc(1024), .cap = 1024};
    text.data[0] = '\0';
    size_t answer_len = in->refused ? 0 : success_text(in, &text);
    json_t *answer = NULL;
    cd_submission s = {.account_id = acct,
                       .status = in->refused ? 400 : 200,
                       .created_ms = cd_now_ms(),
                       .detail_text = answer_len ? text.data : NULL,
                       .detail_len = text.len};
    if (answer_len == 0) {
        answer = in->refused ? refusal(in) : success(in);
        s.detail = detail_of(in, answer);
    }
    _Static_assert(sizeof s.uuid >= sizeof in->uuid && sizeof s.site >= sizeof in->site &&
                       sizeof s.session >= sizeof in->session && sizeof s.phone >= sizeof in->phone,
                   "a submission holds what came in");
    memcpy(s.uuid, in->uuid, strlen(in->uuid) + 1);
    memcpy(s.site, in->site, strlen(in->site) + 1);
    memcpy(s.session, in->session, strlen(in->session) + 1);
    memcpy(s.phone, in->phone, strlen(in->phone) + 1);
    int rc = cd_store_submission_insert(db, &s, err);
    json_decref(s.detail);
    if (rc == 0 && answer_len) { /* the answer's bytes, as the reply and Idempotency-Key take */
        memmove(text.data, text.data + 10, answer_len); /* the buffer becomes the answer */
        text.data[answer_len] = '\0';
        w->raw = text.data;
        w->raw_len = answer_len;
        text.data = NULL;
    }
    cd_buf_free(&text);
    if (rc != 0) {
        json_decref(answer);
        return -1;
    }
    w->status = s.status;
    w->body = answer;
    return 0;
}

/* What to say about a body that is not a JSON object (or not labelled JSON). */
static void body_fault(cd_req *req, const cd_err *err, omeda_in *in)
{
    char shown[64];
    const char *ct = cd_req_header(req, "Content-Type");
    size_t n = 0;
    if (strcmp(cd_err_reason(err), "unsupported_media_type") != 0 || ct == NULL) {
        add_error(in, "The request body must be a JSON object.");
        return;
    }
    /* Echo printable ASCII only: the header is whatever the client sent. */
    for (; n < sizeof shown - 1 && ct[n]; n++)
        shown[n] = ct[n] >= 0x20 && ct[n] < 0x7f && ct[n] != '"' && ct[n] != '\\' ? ct[n] : '?';
    shown[n] = '\0';
    add_error(in, "Content type %s is not supported: send application/json.", shown);
}

static int h_submit(cd_req *req)
{
    cd_err err;
    json_t *o = NULL;
    size_t bad = 0;
    omeda_in *in = cd_req_alloc(req, sizeof *in);
    /* Time-ordered (a version 7 UUID): the submissions are indexed by it, and a random key
     * put each submission on a page of its own in that index, written whole to the WAL at
     * every commit (with the rows, three quarters of the pages an Omeda batch wrote). */
    cd_uuid_v7(in->uuid, cd_now_ms());
    if (cd_api_body(req, &omeda_kit, &o, &err) != 0) {
        body_fault(req, &err, in);
    } else {
        json_t *list = json_object_get(o, "MessageOpts");
        size_t n = json_is_array(list) ? count_opts(list) : 0;
        in->opts = cd_req_alloc(req, (n > 0 && n <= OMEDA_MAX_OPTS ? n : 1) * sizeof *in->opts);
        parse_body(o, in);
    }
    /* Validate everything first: the types on this request's reader (the writer gets only
     * work it can do), and even when the request has faults, so one answer lists them all. */
    cd_db *db = cd_api_reader(req, &err);
    if (db == NULL ||
        cd_optqueue_check(db, cd_api_who(req)->account.id, in->opts, in->nopts, &bad, &err) != 0)
        return omeda_error(req, &err);
    in->refused = in->nerrors > 0 || bad > 0;
    return cd_api_write_rerunnable(req, &omeda_kit, job_submit, in);
}

void cd_api_omeda_routes(cd_router *r, const cd_api_env *env)
{
    cd_route_opts opts = {.max_body = OMEDA_MAX_BODY};
    /* Every path under /webservices/ that matches no route answers in Omeda's form. */
    cd_router_set_prefix_fallback(r, "/webservices/", &omeda_http);
    /* The router skips empty segments: this also serves ".../messageoptqueue/". */
    cd_router_add_opts(r, "POST", "/webservices/rest/brand/{brand}/messageoptqueue", &omeda_http,
                       h_submit, cd_api_ctx(env), &opts);
}
