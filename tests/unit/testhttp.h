/* tests/unit/testhttp.h -- the HTTP client the unit tests that serve real requests share
 * (libcurl): one request, its status, headers and body (parsed when JSON). Header-only
 * (static inline) because meson builds each test from its one .c file. Include it after
 * <cmocka.h>. */
#ifndef CD_TESTS_UNIT_TESTHTTP_H
#define CD_TESTS_UNIT_TESTHTTP_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/err.h"

typedef struct tu_resp {
    long status;
    cd_buf body;    /* NUL-terminated (the NUL is not counted in len) */
    cd_buf headers; /* the raw header lines, NUL-terminated */
    json_t *json;   /* the body parsed, when it is JSON */
    long connects;  /* new connections this request opened */
} tu_resp;

typedef struct tu_call {
    const char *method;
    const char *path;
    const char *body;       /* NULL: none */
    size_t body_len;        /* 0: strlen(body) */
    size_t chunked;         /* > 0: upload that many bytes ('x') chunked, no Content-Length */
    const char *headers[6]; /* "Name: value" lines; NULL ends the list */
} tu_call;

static inline size_t tu_on_data(char *p, size_t size, size_t n, void *arg)
{
    cd_buf_append(arg, p, size * n);
    return size * n;
}

static inline size_t tu_on_read(char *p, size_t size, size_t n, void *arg)
{
    size_t *left = arg;
    size_t k = size * n < *left ? size * n : *left;
    memset(p, 'x', k);
    *left -= k;
    return k;
}

static inline void tu_terminate(cd_buf *b)
{
    cd_buf_append(b, "", 1);
    b->len--;
}

/* Makes one request to 127.0.0.1:port on `h` (a handle kept across calls reuses its
 * connection). Fails the test when no answer comes. */
static inline void tu_perform(CURL *h, int port, const tu_call *c, tu_resp *r)
{
    char url[1024];
    struct curl_slist *hl = NULL;
    size_t left = c->chunked;

    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, c->path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tu_on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, tu_on_data);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    if (strcmp(c->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(c->body_len ? c->body_len : strlen(c->body)));
    } else if (c->chunked) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, tu_on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &left);
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    }
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; i < sizeof c->headers / sizeof c->headers[0] && c->headers[i]; i++)
        hl = curl_slist_append(hl, c->headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", c->method, c->path, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    if (r->body.len > 0)
        r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
    tu_terminate(&r->body);
    tu_terminate(&r->headers);
}

/* One request on a handle of its own. */
static inline void tu_request(int port, const tu_call *c, tu_resp *r)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    tu_perform(h, port, c, r);
    curl_easy_cleanup(h);
}

static inline void tu_resp_free(tu_resp *r)
{
    cd_buf_free(&r->body);
    cd_buf_free(&r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* The value of response header `name` (case-insensitive), copied into out; NULL if absent. */
static inline const char *tu_header(const tu_resp *r, const char *name, char *out, size_t n)
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

/* The string at json[a] or json[a][b]; NULL when absent or not a string. */
static inline const char *tu_jstr(const tu_resp *r, const char *a, const char *b)
{
    json_t *v = json_object_get(r->json, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

/* The status a test surface answers err with (the native mapping, in short). */
static inline int tu_status_of(const cd_err *err)
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
    case CD_ECONFLICT:
        return 409;
    case CD_ELIMIT:
        return 413;
    case CD_EBUSY:
        return strcmp(cd_err_reason(err), "rate_limited") == 0 ? 429 : 503;
    default:
        return 500;
    }
}

#endif
