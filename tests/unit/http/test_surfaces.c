/* tests/unit/http/test_surfaces.c -- issue 9 parts 3 to 6 through a real cd_http on a free
 * port: a router with several surfaces. Literal segments before parameters whatever the
 * order of registration, a table past the old 128 routes, per-prefix fallbacks (404/405 in
 * the vendor's format), the surface and its context seen from a handler, the headers hook on
 * every answer of a matched route, a rate-limited surface (429 + Retry-After +
 * X-Rate-Limit-*), per-route body caps and form bodies on routes that accept them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "http/http.h"
#include "http/ratelimit.h"
#include "http/router.h"
#include "util/buf.h"
#include "util/timeutil.h"

#include "../testhttp.h"

#define MAX_BODY (1 << 20) /* the server's default cap: 1 MiB */

static cd_router *router;
static cd_http *http;
static int port;

/* ---- surfaces ---- */

/* The native-like format, for the fallback. */
static int main_error(cd_req *req, const cd_err *err)
{
    return cd_reply_json(req, tu_status_of(err),
                         json_pack("{s:{s:s}}", "error", "code", cd_err_reason(err)));
}

/* A vendor's format: {"vendor":<surface name>,"Status":"<reason>"}. */
static int vendor_error(cd_req *req, const cd_err *err)
{
    return cd_reply_json(
        req, tu_status_of(err),
        json_pack("{s:s,s:s}", "vendor", cd_req_surface(req)->name, "Status", cd_err_reason(err)));
}

/* Marks every answer of the surface's routes with the status it carries. */
static void vendor_headers(cd_req *req, int status)
{
    char v[16];
    snprintf(v, sizeof v, "%d", status);
    cd_reply_header(req, "X-Hooked", v);
}

/* The rate-limited surface: 2 requests per minute and client address, its limiter in the
 * surface's context. */
static int limited_auth(cd_req *req, cd_err *err)
{
    char key[80];
    cd_ratelimit_info info;
    snprintf(key, sizeof key, "ip:%s", cd_req_client_ip(req));
    int ok = cd_ratelimit_hit(cd_req_surface_ctx(req), key, 2, 60, cd_monotonic_us() / 1000, &info);
    cd_req_set_ratelimit(req, &info);
    return ok ? 0 : cd_ratelimit_fail(err, &info);
}

static void limited_headers(cd_req *req, int status)
{
    cd_ratelimit_add_headers(req, status, "X-Rate-Limit-");
}

static int vendor_ctx = 7;
static const cd_surface main_s = {.name = "main", .reply_error = main_error};
static const cd_surface vend_s = {
    .name = "vend", .reply_error = vendor_error, .headers = vendor_headers, .ctx = &vendor_ctx};
static const cd_surface pub_s = {.name = "vpub", .reply_error = vendor_error};
static cd_surface limited_s = {.name = "limited",
                               .authenticate = limited_auth,
                               .reply_error = vendor_error,
                               .headers = limited_headers};

/* ---- handlers ---- */

/* Which route (ctx names it), its parameters, and the surface seen from the request. */
static int h_which(cd_req *req)
{
    const char *a = cd_req_param(req, "a"), *b = cd_req_param(req, "b");
    const int *sctx = cd_req_surface_ctx(req);
    return cd_reply_json(req, 200,
                         json_pack("{s:s,s:s*,s:s*,s:s,s:i}", "route",
                                   (const char *)cd_req_ctx(req), "a", a, "b", b, "surface",
                                   cd_req_surface(req)->name, "surface_ctx", sctx ? *sctx : -1));
}

static int h_len(cd_req *req)
{
    size_t n;
    cd_req_body(req, &n);
    return cd_reply_json(req, 200, json_pack("{s:I}", "len", (json_int_t)n));
}

static int h_json(cd_req *req)
{
    cd_err err = {0};
    json_t *body = cd_req_json(req, &err);
    if (body == NULL)
        return cd_req_surface(req)->reply_error(req, &err);
    return cd_reply_json(req, 200,
                         json_pack("{s:O,s:b}", "got", body, "form", cd_req_is_form(req)));
}

/* ---- server ---- */

static int group_setup(void **state)
{
    (void)state;
    cd_err err = {0};
    router = cd_router_new();
    cd_router *r = router;
    limited_s.ctx = cd_ratelimit_new(0);
    cd_router_set_fallback(r, &main_s);
    cd_router_set_prefix_fallback(r, "/v/", &vend_s);
    cd_router_set_prefix_fallback(r, "/v/public/", &pub_s);
    /* the parameter routes first: the literal ones must still win */
    cd_router_add(r, "GET", "/v/optins/{a}/{b}", &vend_s, h_which, "param-param");
    cd_router_add(r, "GET", "/v/optins/{a}/status", &vend_s, h_which, "param-status");
    cd_router_add(r, "GET", "/v/optins/flows/{b}", &vend_s, h_which, "flows-param");
    cd_router_add(r, "GET", "/v/optins/flows/all", &vend_s, h_which, "flows-all");
    cd_router_add(r, "GET", "/v/public/ping", &pub_s, h_which, "ping");
    cd_router_add(r, "GET", "/main", &main_s, h_which, "main");
    cd_router_add_opts(r, "POST", "/v/batch", &vend_s, h_len, NULL,
                       &(cd_route_opts){.max_body = 8 << 20});
    cd_router_add(r, "POST", "/v/small", &vend_s, h_len, NULL);
    cd_router_add_opts(r, "POST", "/v/form", &vend_s, h_json, NULL,
                       &(cd_route_opts){.forms = true});
    cd_router_add(r, "POST", "/v/noform", &vend_s, h_json, NULL);
    cd_router_add(r, "GET", "/lim/thing", &limited_s, h_which, "limited");
    /* issue 9 part 3: no abort at 128 routes */
    static char names[300][16];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof names[i], "/many/%d", i);
        cd_router_add(r, "GET", names[i], &main_s, h_which, names[i]);
    }
    cd_http_config cfg = {
        .host = "127.0.0.1", .port = 0, .threads = 2, .max_body = MAX_BODY, .request_timeout = 2};
    http = cd_http_start(&cfg, cd_router_dispatcher(router), &err);
    if (http == NULL) {
        print_error("cd_http_start: %s\n", err.msg);
        return -1;
    }
    port = cd_http_port(http);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cd_http_stop(http);
    cd_router_free(router);
    cd_ratelimit_free(limited_s.ctx);
    return 0;
}

/* ---- client ---- */

/* One request with a Content-Type (ctype NULL: JSON). */
static void call(const char *method, const char *path, const char *ctype, const char *body,
                 size_t len, tu_resp *r)
{
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    tu_request(
        port,
        &(tu_call){.method = method, .path = path, .body = body, .body_len = len, .headers = {ct}},
        r);
}

#define GET(p, r) call("GET", (p), NULL, NULL, 0, (r))

static void expect(const tu_resp *r, long status)
{
    if (r->status != status) {
        print_error("want %ld, got %ld %.*s\n", status, r->status, (int)r->body.len,
                    r->body.data ? r->body.data : "");
        fail();
    }
}

/* A vendor error: status, surface name and reason. */
static void expect_vendor(const tu_resp *r, long status, const char *surface, const char *reason)
{
    expect(r, status);
    assert_non_null(tu_jstr(r, "vendor", NULL));
    assert_string_equal(tu_jstr(r, "vendor", NULL), surface);
    assert_string_equal(tu_jstr(r, "Status", NULL), reason);
}

/* ---- tests ---- */

static void expect_route(const char *path, const char *route)
{
    tu_resp r;
    GET(path, &r);
    expect(&r, 200);
    assert_string_equal(tu_jstr(&r, "route", NULL), route);
    tu_resp_free(&r);
}

/* issue 9 part 3: at each position a literal beats a parameter, whatever the order. */
static void test_literal_before_param(void **state)
{
    (void)state;
    expect_route("/v/optins/flows/all", "flows-all");
    expect_route("/v/optins/flows/123", "flows-param");
    expect_route("/v/optins/42/status", "param-status");
    expect_route("/v/optins/42/other", "param-param");
    /* literal at the first differing position wins: flows/status is flows-param */
    expect_route("/v/optins/flows/status", "flows-param");
    tu_resp r;
    GET("/v/optins/42/status", &r);
    assert_string_equal(tu_jstr(&r, "a", NULL), "42");
    tu_resp_free(&r);
}

/* issue 9 part 3: the table grows past the old 128 routes. */
static void test_many_routes(void **state)
{
    (void)state;
    expect_route("/many/0", "/many/0");
    expect_route("/many/299", "/many/299");
}

/* issue 9 part 3: unknown paths and wrong methods under a prefix answer in its surface's
 * format; the longest prefix wins; elsewhere the fallback answers. */
static void test_prefix_fallback(void **state)
{
    (void)state;
    tu_resp r;
    GET("/v/nothing/here", &r);
    expect_vendor(&r, 404, "vend", "not_found");
    /* issue 9 part 3: no route matched, but the prefix's surface answers: its hook runs */
    assert_string_equal(tu_header(&r, "X-Hooked", (char[8]){0}, 8), "404");
    tu_resp_free(&r);
    GET("/v", &r);
    expect_vendor(&r, 404, "vend", "not_found");
    tu_resp_free(&r);
    GET("/v/public/nothing", &r);
    expect_vendor(&r, 404, "vpub", "not_found");
    tu_resp_free(&r);
    call("DELETE", "/v/public", NULL, NULL, 0, &r);
    expect_vendor(&r, 404, "vpub", "not_found");
    tu_resp_free(&r);
    GET("/vx/nothing", &r); /* not under "/v/" */
    expect(&r, 404);
    assert_string_equal(tu_jstr(&r, "error", "code"), "not_found");
    tu_resp_free(&r);
    GET("/nothing", &r);
    expect(&r, 404);
    assert_string_equal(tu_jstr(&r, "error", "code"), "not_found");
    tu_resp_free(&r);
    /* a wrong method on a vendor route: 405 in its format, with Allow */
    char allow[64];
    call("POST", "/v/optins/flows/all", NULL, "{}", 2, &r);
    expect_vendor(&r, 405, "vend", "method_not_allowed");
    assert_string_equal(tu_header(&r, "Allow", allow, sizeof allow), "GET");
    tu_resp_free(&r);
    expect_route("/v/public/ping", "ping");
}

/* issue 9 part 3: the handler sees its route's surface and that surface's context; the
 * headers hook marks every answer of the surface, errors included. */
static void test_surface_and_hook(void **state)
{
    (void)state;
    tu_resp r;
    char v[16];
    GET("/v/optins/flows/all", &r);
    expect(&r, 200);
    assert_string_equal(tu_jstr(&r, "surface", NULL), "vend");
    assert_int_equal(json_integer_value(json_object_get(r.json, "surface_ctx")), 7);
    assert_string_equal(tu_header(&r, "X-Hooked", v, sizeof v), "200");
    tu_resp_free(&r);
    GET("/main", &r);
    assert_string_equal(tu_jstr(&r, "surface", NULL), "main");
    assert_int_equal(json_integer_value(json_object_get(r.json, "surface_ctx")), -1);
    assert_null(tu_header(&r, "X-Hooked", v, sizeof v));
    tu_resp_free(&r);
    call("POST", "/v/noform", NULL, "{bad", 4, &r); /* a handler's error answer */
    expect_vendor(&r, 400, "vend", "invalid_json");
    assert_string_equal(tu_header(&r, "X-Hooked", v, sizeof v), "400");
    tu_resp_free(&r);
}

/* issue 9 part 5: a surface's limiter in its context, keyed by client address: the third
 * request in the window is refused 429 in the surface's format, with Retry-After, and the
 * figures are in the headers of every answer. */
static void test_rate_limit(void **state)
{
    (void)state;
    tu_resp r;
    char v[32];
    for (int i = 0; i < 2; i++) {
        GET("/lim/thing", &r);
        expect(&r, 200);
        assert_string_equal(tu_header(&r, "X-Rate-Limit-Limit", v, sizeof v), "2");
        assert_int_equal(atoi(tu_header(&r, "X-Rate-Limit-Remaining", v, sizeof v)), 1 - i);
        assert_in_range(atoi(tu_header(&r, "X-Rate-Limit-Reset", v, sizeof v)), 1, 60);
        assert_null(tu_header(&r, "Retry-After", v, sizeof v));
        tu_resp_free(&r);
    }
    GET("/lim/thing", &r);
    expect_vendor(&r, 429, "limited", "rate_limited");
    assert_in_range(atoi(tu_header(&r, "Retry-After", v, sizeof v)), 1, 60);
    assert_string_equal(tu_header(&r, "X-Rate-Limit-Remaining", v, sizeof v), "0");
    tu_resp_free(&r);
}

/* issue 9 part 6: one route takes 5 MiB while the others keep 1 MiB. */
static void test_body_cap_per_route(void **state)
{
    (void)state;
    size_t big = 5u << 20;
    char *body = malloc(big);
    memset(body, 'x', big);
    tu_resp r;
    call("POST", "/v/batch", "text/plain", body, big, &r);
    expect(&r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "len")), big);
    tu_resp_free(&r);
    call("POST", "/v/small", "text/plain", body, MAX_BODY, &r);
    expect(&r, 200);
    tu_resp_free(&r);
    char v[16];
    call("POST", "/v/small", "text/plain", body, MAX_BODY + 1, &r);
    expect_vendor(&r, 413, "vend", "too_large");
    assert_string_equal(tu_header(&r, "X-Hooked", v, sizeof v), "413");
    tu_resp_free(&r);
    call("POST", "/v/batch", "text/plain", body, big, &r); /* the cap is the route's */
    expect(&r, 200);
    tu_resp_free(&r);
    free(body);
}

/* issue 9 part 4: a form body on a route that accepts forms is the JSON object; a route
 * that does not reads it as JSON, and refuses it, as before. */
static void test_forms(void **state)
{
    (void)state;
    static const char form[] = "GroupIds[]=1&GroupIds[]=2&Name=Ann+Lee&Phone=%2B33612345678";
    const char *ct = "application/x-www-form-urlencoded; charset=UTF-8";
    tu_resp r;
    call("POST", "/v/form", ct, form, strlen(form), &r);
    expect(&r, 200);
    json_t *got = json_object_get(r.json, "got");
    assert_true(json_is_true(json_object_get(r.json, "form")));
    assert_int_equal(json_array_size(json_object_get(got, "GroupIds")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(got, "GroupIds"), 1)),
                        "2");
    assert_string_equal(json_string_value(json_object_get(got, "Name")), "Ann Lee");
    assert_string_equal(json_string_value(json_object_get(got, "Phone")), "+33612345678");
    tu_resp_free(&r);
    call("POST", "/v/form", ct, "a=%ZZ", 5, &r);
    expect_vendor(&r, 400, "vend", "invalid_form");
    tu_resp_free(&r);
    call("POST", "/v/form", ct, "", 0, &r); /* an empty form is an empty object */
    expect(&r, 200);
    assert_int_equal(json_object_size(json_object_get(r.json, "got")), 0);
    tu_resp_free(&r);
    call("POST", "/v/form", NULL, "{\"a\":1}", 7, &r); /* JSON still works there */
    expect(&r, 200);
    assert_true(json_is_false(json_object_get(r.json, "form")));
    tu_resp_free(&r);
    call("POST", "/v/noform", ct, form, strlen(form), &r);
    expect_vendor(&r, 400, "vend", "invalid_json");
    tu_resp_free(&r);
}

/* Sends `raw` and reads until the server closes: the 408 the watchdog wrote. */
static void raw_exchange(const char *raw, char *out, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(fd, raw, strlen(raw), 0), (ssize_t)strlen(raw));
    size_t got = 0;
    ssize_t k;
    while (got + 1 < n && (k = recv(fd, out + got, n - 1 - got, 0)) > 0)
        got += (size_t)k;
    out[got] = '\0';
    close(fd);
}

/* issue 9 part 3: a body that stops arriving on a vendor path gets the 408 in the vendor's
 * format; a head that never completes, in the fallback's. */
static void test_timeout_format(void **state)
{
    (void)state;
    char out[2048];
    raw_exchange("POST /v/small HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                 "Content-Length: 10\r\n\r\nabc",
                 out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 408"));
    assert_non_null(strstr(out, "\"vendor\":\"vend\""));
    assert_non_null(strstr(out, "request_timeout"));
    assert_non_null(strstr(out, "X-Hooked: 408\r\n")); /* the surface's headers hook ran */
    raw_exchange("POST /v/public/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab", out,
                 sizeof out);
    assert_non_null(strstr(out, "\"vendor\":\"vpub\""));
    raw_exchange("GET /v/optins", out, sizeof out); /* the head never ends */
    assert_non_null(strstr(out, "HTTP/1.1 408"));
    assert_null(strstr(out, "vendor"));
    assert_non_null(strstr(out, "{\"error\":{\"code\":\"request_timeout\"}}"));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_before_param),
        cmocka_unit_test(test_many_routes),
        cmocka_unit_test(test_prefix_fallback),
        cmocka_unit_test(test_surface_and_hook),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_body_cap_per_route),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_timeout_format),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
