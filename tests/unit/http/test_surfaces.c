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

#define MAX_BODY (1 << 20) /* the server's default cap: 1 MiB */

static cd_router *router;
static cd_http *http;
static int port;

/* ---- surfaces ---- */

static int status_of(const cd_err *err)
{
    switch (err->code) {
    case CD_EINVAL:
        return 400;
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
        return 500;
    }
}

/* The native-like format, for the fallback. */
static int main_error(cd_req *req, const cd_err *err)
{
    return cd_reply_json(req, status_of(err),
                         json_pack("{s:{s:s}}", "error", "code", cd_err_reason(err)));
}

/* A vendor's format: {"vendor":<surface name>,"Status":"<reason>"}. */
static int vendor_error(cd_req *req, const cd_err *err)
{
    return cd_reply_json(
        req, status_of(err),
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

typedef struct resp {
    long status;
    cd_buf body, headers;
    json_t *json;
} resp;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    cd_buf_append(arg, p, size * n);
    return size * n;
}

static void resp_free(resp *r)
{
    cd_buf_free(&r->body);
    cd_buf_free(&r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static void call(const char *method, const char *path, const char *ctype, const char *body,
                 size_t len, resp *r)
{
    char url[512], ct[128];
    struct curl_slist *hl = NULL;
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    hl = curl_slist_append(hl, "Expect:");
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    hl = curl_slist_append(hl, ct);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    if (r->body.len > 0)
        r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

#define GET(p, r) call("GET", (p), NULL, NULL, 0, (r))

static const char *header(const resp *r, const char *name, char *out, size_t n)
{
    size_t len = strlen(name);
    for (const char *line = r->headers.data; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > len && strncasecmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(ll - (size_t)(v - line)), v);
            return out;
        }
        line = eol ? eol + 2 : line + ll;
    }
    return NULL;
}

static const char *jstr(const resp *r, const char *a, const char *b)
{
    json_t *v = json_object_get(r->json, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

static void expect(const resp *r, long status)
{
    if (r->status != status) {
        print_error("want %ld, got %ld %.*s\n", status, r->status, (int)r->body.len,
                    r->body.data ? r->body.data : "");
        fail();
    }
}

/* A vendor error: status, surface name and reason. */
static void expect_vendor(const resp *r, long status, const char *surface, const char *reason)
{
    expect(r, status);
    assert_non_null(jstr(r, "vendor", NULL));
    assert_string_equal(jstr(r, "vendor", NULL), surface);
    assert_string_equal(jstr(r, "Status", NULL), reason);
}

/* ---- tests ---- */

static void expect_route(const char *path, const char *route)
{
    resp r;
    GET(path, &r);
    expect(&r, 200);
    assert_string_equal(jstr(&r, "route", NULL), route);
    resp_free(&r);
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
    resp r;
    GET("/v/optins/42/status", &r);
    assert_string_equal(jstr(&r, "a", NULL), "42");
    resp_free(&r);
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
    resp r;
    GET("/v/nothing/here", &r);
    expect_vendor(&r, 404, "vend", "not_found");
    /* issue 9 part 3: no route matched, but the prefix's surface answers: its hook runs */
    assert_string_equal(header(&r, "X-Hooked", (char[8]){0}, 8), "404");
    resp_free(&r);
    GET("/v", &r);
    expect_vendor(&r, 404, "vend", "not_found");
    resp_free(&r);
    GET("/v/public/nothing", &r);
    expect_vendor(&r, 404, "vpub", "not_found");
    resp_free(&r);
    call("DELETE", "/v/public", NULL, NULL, 0, &r);
    expect_vendor(&r, 404, "vpub", "not_found");
    resp_free(&r);
    GET("/vx/nothing", &r); /* not under "/v/" */
    expect(&r, 404);
    assert_string_equal(jstr(&r, "error", "code"), "not_found");
    resp_free(&r);
    GET("/nothing", &r);
    expect(&r, 404);
    assert_string_equal(jstr(&r, "error", "code"), "not_found");
    resp_free(&r);
    /* a wrong method on a vendor route: 405 in its format, with Allow */
    char allow[64];
    call("POST", "/v/optins/flows/all", NULL, "{}", 2, &r);
    expect_vendor(&r, 405, "vend", "method_not_allowed");
    assert_string_equal(header(&r, "Allow", allow, sizeof allow), "GET");
    resp_free(&r);
    expect_route("/v/public/ping", "ping");
}

/* issue 9 part 3: the handler sees its route's surface and that surface's context; the
 * headers hook marks every answer of the surface, errors included. */
static void test_surface_and_hook(void **state)
{
    (void)state;
    resp r;
    char v[16];
    GET("/v/optins/flows/all", &r);
    expect(&r, 200);
    assert_string_equal(jstr(&r, "surface", NULL), "vend");
    assert_int_equal(json_integer_value(json_object_get(r.json, "surface_ctx")), 7);
    assert_string_equal(header(&r, "X-Hooked", v, sizeof v), "200");
    resp_free(&r);
    GET("/main", &r);
    assert_string_equal(jstr(&r, "surface", NULL), "main");
    assert_int_equal(json_integer_value(json_object_get(r.json, "surface_ctx")), -1);
    assert_null(header(&r, "X-Hooked", v, sizeof v));
    resp_free(&r);
    call("POST", "/v/noform", NULL, "{bad", 4, &r); /* a handler's error answer */
    expect_vendor(&r, 400, "vend", "invalid_json");
    assert_string_equal(header(&r, "X-Hooked", v, sizeof v), "400");
    resp_free(&r);
}

/* issue 9 part 5: a surface's limiter in its context, keyed by client address: the third
 * request in the window is refused 429 in the surface's format, with Retry-After, and the
 * figures are in the headers of every answer. */
static void test_rate_limit(void **state)
{
    (void)state;
    resp r;
    char v[32];
    for (int i = 0; i < 2; i++) {
        GET("/lim/thing", &r);
        expect(&r, 200);
        assert_string_equal(header(&r, "X-Rate-Limit-Limit", v, sizeof v), "2");
        assert_int_equal(atoi(header(&r, "X-Rate-Limit-Remaining", v, sizeof v)), 1 - i);
        assert_in_range(atoi(header(&r, "X-Rate-Limit-Reset", v, sizeof v)), 1, 60);
        assert_null(header(&r, "Retry-After", v, sizeof v));
        resp_free(&r);
    }
    GET("/lim/thing", &r);
    expect_vendor(&r, 429, "limited", "rate_limited");
    assert_in_range(atoi(header(&r, "Retry-After", v, sizeof v)), 1, 60);
    assert_string_equal(header(&r, "X-Rate-Limit-Remaining", v, sizeof v), "0");
    resp_free(&r);
}

/* issue 9 part 6: one route takes 5 MiB while the others keep 1 MiB. */
static void test_body_cap_per_route(void **state)
{
    (void)state;
    size_t big = 5u << 20;
    char *body = malloc(big);
    memset(body, 'x', big);
    resp r;
    call("POST", "/v/batch", "text/plain", body, big, &r);
    expect(&r, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "len")), big);
    resp_free(&r);
    call("POST", "/v/small", "text/plain", body, MAX_BODY, &r);
    expect(&r, 200);
    resp_free(&r);
    char v[16];
    call("POST", "/v/small", "text/plain", body, MAX_BODY + 1, &r);
    expect_vendor(&r, 413, "vend", "too_large");
    assert_string_equal(header(&r, "X-Hooked", v, sizeof v), "413");
    resp_free(&r);
    call("POST", "/v/batch", "text/plain", body, big, &r); /* the cap is the route's */
    expect(&r, 200);
    resp_free(&r);
    free(body);
}

/* issue 9 part 4: a form body on a route that accepts forms is the JSON object; a route
 * that does not reads it as JSON, and refuses it, as before. */
static void test_forms(void **state)
{
    (void)state;
    static const char form[] = "GroupIds[]=1&GroupIds[]=2&Name=Ann+Lee&Phone=%2B33612345678";
    const char *ct = "application/x-www-form-urlencoded; charset=UTF-8";
    resp r;
    call("POST", "/v/form", ct, form, strlen(form), &r);
    expect(&r, 200);
    json_t *got = json_object_get(r.json, "got");
    assert_true(json_is_true(json_object_get(r.json, "form")));
    assert_int_equal(json_array_size(json_object_get(got, "GroupIds")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(got, "GroupIds"), 1)),
                        "2");
    assert_string_equal(json_string_value(json_object_get(got, "Name")), "Ann Lee");
    assert_string_equal(json_string_value(json_object_get(got, "Phone")), "+33612345678");
    resp_free(&r);
    call("POST", "/v/form", ct, "a=%ZZ", 5, &r);
    expect_vendor(&r, 400, "vend", "invalid_form");
    resp_free(&r);
    call("POST", "/v/form", ct, "", 0, &r); /* an empty form is an empty object */
    expect(&r, 200);
    assert_int_equal(json_object_size(json_object_get(r.json, "got")), 0);
    resp_free(&r);
    call("POST", "/v/form", NULL, "{\"a\":1}", 7, &r); /* JSON still works there */
    expect(&r, 200);
    assert_true(json_is_false(json_object_get(r.json, "form")));
    resp_free(&r);
    call("POST", "/v/noform", ct, form, strlen(form), &r);
    expect_vendor(&r, 400, "vend", "invalid_json");
    resp_free(&r);
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
