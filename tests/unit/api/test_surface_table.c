/* tests/unit/api/test_surface_table.c -- issue 9 part 10 "done when": a minimal extra
 * surface registered with one table entry (cd_api_routes_with) beside the real ops and
 * native surfaces, on a real store and a real cd_http on a free port. The "mini" surface
 * has its own prefix (/mini/, with a prefix fallback), its own credential style (the
 * api-login/api-key header pair) and its own error format (plain text "MINI <status>
 * <reason>"). Shows that its failed writes, 401s, 404s, 405s, 413s and 429s come in that
 * format; that its writes go through the shared path (durable, idempotent); and that it
 * shares contacts and consent with the native API. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/guard.h"
#include "api/kit.h"
#include "core/account.h"
#include "core/usecase.h"
#include "http/http.h"
#include "http/ratelimit.h"
#include "http/router.h"
#include "util/buf.h"
#include "util/crypto.h"

#include "../testhttp.h"
#include "../testutil.h"

#define PHONE "+12125550123"

static struct {
    char dir[TU_PATH_MAX];
    cd_store *store;
    cd_router *router;
    cd_http *http;
    cd_api_env env;
    int port;
    char key[CD_KEY_LEN];
    cd_account account;
} srv;

static atomic_int writes; /* how many times the mini write job ran */

/* ---- the mini surface: one file's worth ---- */

static int mini_status(const cd_err *err)
{
    switch (err->code) {
    case CD_EAUTH:
        return 401;
    case CD_ENOTFOUND:
        return 404;
    case CD_EMETHOD:
        return 405;
    case CD_ELIMIT:
        return 413;
    case CD_EBUSY:
        return strcmp(cd_err_reason(err), "rate_limited") == 0 ? 429 : 503;
    default:
        return 400;
    }
}

static int mini_error(cd_req *req, const cd_err *err)
{
    char text[200];
    int status = mini_status(err);
    const cd_ratelimit_info *rl = cd_req_ratelimit(req);
    if (status == 429 && rl != NULL) {
        char v[16];
        snprintf(v, sizeof v, "%d", rl->retry_after_s);
        cd_reply_header(req, "Retry-After", v);
    }
    int n = snprintf(text, sizeof text, "MINI %d %s", status, cd_err_reason(err));
    return cd_reply_data(req, status, "text/plain", cd_req_strdup(req, text), (size_t)n);
}

static int mini_auth(cd_req *req, cd_err *err)
{
    return cd_api_authenticate(req, cd_api_env_of(req)->store, CD_AUTH_HEADER_PAIR, err);
}

static const cd_surface mini_http = {
    .name = "mini", .authenticate = mini_auth, .reply_error = mini_error};
static const cd_api_surface mini = {.http = &mini_http, .idempotency = true, .forms = true};

typedef struct optin_in {
    cd_consent_request rq;
} optin_in;

static int job_optin(cd_db *db, cd_api_write_op *w, cd_err *err)
{
    optin_in *in = w->in;
    cd_event ev;
    atomic_fetch_add(&writes, 1);
    in->rq.prov.credential_id = w->who.credential_id;
    in->rq.prov.request_id = w->request_id;
    if (cd_consent_record(db, w->who.account.id, &in->rq, NULL, &ev, err) != 0)
        return -1;
    w->status = 200;
    w->body = json_pack("{ss sI}", "ok", "yes", "event", (json_int_t)ev.seq);
    return 0;
}

/* POST /mini/optin  phone=...&scope=...  (form or JSON) */
static int h_optin(cd_req *req)
{
    cd_err err;
    json_t *o;
    const char *phone, *scope;
    optin_in *in = cd_req_alloc(req, sizeof *in);
    if (cd_api_body(req, &mini, &o, &err) != 0 || cd_api_phone_field(o, "phone", &phone, &err) ||
        cd_api_opt_string(o, "scope", 39, &scope, &err) != 0 ||
        cd_scope_parse(scope ? scope : "all", "scope", &in->rq.scope, &err) != 0)
        return cd_api_error(req, &mini, &err);
    char *e164 = cd_req_alloc(req, CD_PHONE_MAX);
    if (cd_api_normalize(req, phone, "phone", e164, &err) != 0)
        return cd_api_error(req, &mini, &err);
    in->rq.phone = e164;
    in->rq.state = CD_STATE_OPTED_IN;
    in->rq.prov.surface = "mini";
    in->rq.prov.channel = "api";
    return cd_api_write(req, &mini, job_optin, in);
}

static void mini_routes(cd_router *r, const cd_api_env *env)
{
    cd_router_set_prefix_fallback(r, "/mini/", &mini_http);
    cd_router_add_opts(r, "POST", "/mini/optin", &mini_http, h_optin, cd_api_ctx(env),
                       &(cd_route_opts){.forms = true});
}

/* The one table entry. */
static const cd_api_surface_entry extra[] = {{"mini", mini_routes}};

/* ---- the server ---- */

static int job_account(cd_db *db, void *arg, cd_err *err)
{
    (void)arg;
    cd_account_in in = {.name = "wire", .login = "wire-login"};
    return cd_account_create(db, &in, &srv.account, srv.key, err);
}

static int group_setup(void **state)
{
    cd_err err = {0};
    (void)state;
    if (cd_crypto_init() != 0)
        return -1;
    tu_mkdtemp(srv.dir);
    srv.store = tu_store_open(srv.dir, "table.db");
    if (cd_store_run(srv.store, job_account, NULL, &err) != 0)
        return -1;
    srv.env = (cd_api_env){
        .store = srv.store, .public_url = "http://localhost", .limits = cd_api_limits_new()};
    srv.router = cd_router_new();
    cd_api_routes_with(srv.router, &srv.env, extra, 1);
    cd_http_config cfg = {.host = "127.0.0.1", .threads = 2, .max_body = 4096};
    srv.http = cd_http_start(&cfg, cd_router_dispatcher(srv.router), &err);
    if (srv.http == NULL)
        return -1;
    srv.port = cd_http_port(srv.http);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cd_http_stop(srv.http);
    cd_router_free(srv.router);
    cd_api_limits_free(srv.env.limits);
    cd_store_close(srv.store);
    tu_rmtree(srv.dir);
    return 0;
}

/* ---- the client ---- */

enum { MINI_AUTH = 1, NATIVE_AUTH = 2 };

/* method path [body] with the mini header pair or the native Bearer key, and one more
 * header (h1, may be NULL). */
static void call(const char *method, const char *path, const char *body, int auth, const char *h1,
                 tu_resp *r)
{
    char a1[CD_KEY_LEN + 32];
    const char *login = NULL;
    if (auth == MINI_AUTH) {
        login = "api-login: wire-login";
        snprintf(a1, sizeof a1, "api-key: %s", srv.key);
    } else {
        snprintf(a1, sizeof a1, "Authorization: Bearer %s", srv.key);
    }
    tu_call c = {.method = method, .path = path, .body = body, .headers = {a1, h1}};
    if (login) /* the pair's login first, as a client sends it */
        c = (tu_call){.method = method, .path = path, .body = body, .headers = {login, a1, h1}};
    tu_request(srv.port, &c, r);
}

/* Asserts one request's status and exact body, then frees it. */
static void expect(tu_resp *r, long status, const char *body)
{
    if (r->status != status || strcmp(r->body.data, body) != 0)
        fail_msg("expected %ld %s, got %ld %s", status, body, r->status, r->body.data);
    tu_resp_free(r);
}

#define FORM "Content-Type: application/x-www-form-urlencoded"

// issue 9 part 10: the mini surface's refusals come in its own format.
static void test_errors_in_mini_format(void **state)
{
    tu_resp r;
    (void)state;
    call("POST", "/mini/optin", "phone=2125550199&scope=group:999", MINI_AUTH, FORM, &r);
    expect(&r, 400, "MINI 400 invalid_scope"); /* a failed write (the scope does not exist) */
    call("POST", "/mini/optin", "phone=2125550199", NATIVE_AUTH, FORM, &r);
    expect(&r, 401, "MINI 401 unauthorized"); /* its own credential style only */
    call("GET", "/mini/nothing-here", NULL, MINI_AUTH, NULL, &r);
    expect(&r, 404, "MINI 404 not_found");
    call("GET", "/mini", NULL, MINI_AUTH, NULL, &r);
    expect(&r, 404, "MINI 404 not_found");
    call("GET", "/mini/optin", NULL, MINI_AUTH, NULL, &r);
    expect(&r, 405, "MINI 405 method_not_allowed");
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "phone=", 6);
    call("POST", "/mini/optin", big, MINI_AUTH, FORM, &r);
    expect(&r, 413, "MINI 413 too_large");
    assert_int_equal(atomic_load(&writes), 1); /* only the invalid_scope one reached the job */
    /* The native surface keeps its own format beside it. */
    call("GET", "/api/v1/nothing-here", NULL, NATIVE_AUTH, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.data, "{\"error\""));
    tu_resp_free(&r);
}

// issue 9 part 10: a write through the shared path is durable, idempotent, and seen by the
// native API (shared contacts and consent).
static void test_write_shared_with_native(void **state)
{
    tu_resp a, b;
    cd_check_result cr;
    cd_scope all = {.kind = CD_SCOPE_ALL};
    (void)state;
    int before = atomic_load(&writes);
    call("POST", "/mini/optin", "phone=(212) 555-0123", MINI_AUTH, "Idempotency-Key: mini-1", &a);
    assert_int_equal(a.status, 200);
    /* durable once answered: a fresh reader sees it */
    cd_db *db = cd_store_reader(srv.store);
    assert_int_equal(cd_consent_check_phone(db, &srv.account, PHONE, all, &cr, NULL), 0);
    cd_store_release(srv.store, db);
    assert_string_equal(cr.reason, "opted_in");
    /* a replay answers the first answer and writes nothing */
    call("POST", "/mini/optin", "phone=(212) 555-0123", MINI_AUTH, "Idempotency-Key: mini-1", &b);
    assert_int_equal(b.status, 200);
    assert_string_equal(a.body.data, b.body.data);
    assert_non_null(strcasestr(b.headers.data, "Idempotent-Replayed: true"));
    assert_int_equal(atomic_load(&writes), before + 1);
    tu_resp_free(&a);
    tu_resp_free(&b);
    /* the native API sees the same consent and the same contact */
    call("GET", "/api/v1/check?to=%2B12125550123", NULL, NATIVE_AUTH, NULL, &a);
    assert_int_equal(a.status, 200);
    json_t *j = json_loads(a.body.data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "opted_in");
    assert_true(json_is_true(json_object_get(j, "allowed")));
    json_decref(j);
    tu_resp_free(&a);
    call("GET", "/api/v1/contacts", NULL, NATIVE_AUTH, NULL, &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body.data, PHONE));
    tu_resp_free(&a);
}

// issue 9 parts 5 and 10: the account's rate_limit applies to every surface, keyed by
// credential, and the mini surface answers 429 in its own format with Retry-After.
static void test_rate_limit_in_mini_format(void **state)
{
    tu_resp r;
    (void)state;
    call("PATCH", "/api/v1/settings", "{\"rate_limit\":{\"limit\":2,\"window_seconds\":60}}",
         NATIVE_AUTH, "Content-Type: application/json", &r);
    assert_int_equal(r.status, 200);
    tu_resp_free(&r);
    int before = atomic_load(&writes);
    call("POST", "/mini/optin", "phone=2125550124", MINI_AUTH, FORM, &r);
    assert_int_equal(r.status, 200);
    tu_resp_free(&r);
    call("GET", "/api/v1/contacts", NULL, NATIVE_AUTH, NULL, &r); /* the same key */
    assert_int_equal(r.status, 200);
    tu_resp_free(&r);
    call("POST", "/mini/optin", "phone=2125550125", MINI_AUTH, FORM, &r);
    assert_non_null(strcasestr(r.headers.data, "Retry-After: 60"));
    expect(&r, 429, "MINI 429 rate_limited");
    assert_int_equal(atomic_load(&writes), before + 1); /* refused before the write */
    call("GET", "/api/v1/contacts", NULL, NATIVE_AUTH, NULL, &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.body.data, "\"rate_limited\""));
    tu_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_in_mini_format),
        cmocka_unit_test(test_write_shared_with_native),
        cmocka_unit_test(test_rate_limit_in_mini_format), /* last: it limits the account */
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
