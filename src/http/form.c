/* http/form.c -- application/x-www-form-urlencoded to a JSON object (form.h). */
#include "http/form.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"
#include "util/xalloc.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (cd_utf8_next((const unsigned char *)s + i, n - i, &k) < 0)
            return false;
    return true;
}

/* Decodes in[0..n) into out (room for n + 1 bytes): '+' is a space, "%HH" a byte. Returns
 * the decoded length, or -1 with *err filled (bad escape, NUL, not UTF-8). */
static long decode(const char *in, size_t n, char *out, const char *what, cd_err *err)
{
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        char c = in[r];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = r + 2 < n ? hexval(in[r + 1]) : -1;
            int lo = hi >= 0 ? hexval(in[r + 2]) : -1;
            if (hi < 0 || lo < 0)
                return cd_fail_reason(err, CD_EINVAL, "invalid_form", "",
                                      "a %s has a bad %%-escape", what);
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return cd_fail_reason(err, CD_EINVAL, "invalid_form", "",
                                      "a %s contains an escaped NUL (%%00)", what);
            r += 2;
        }
        out[w++] = c;
    }
    out[w] = '\0';
    if (!utf8_valid(out, w))
        return cd_fail_reason(err, CD_EINVAL, "invalid_form", "",
                              "a %s is not valid UTF-8 once decoded", what);
    return (long)w;
}

/* Adds one decoded field to obj under the rules of form.h. */
static int add_field(json_t *obj, char *name, size_t nlen, const char *value, cd_err *err)
{
    bool array = nlen >= 2 && strcmp(name + nlen - 2, "[]") == 0;
    if (array)
        name[nlen - 2] = '\0';
    if (name[0] == '\0')
        return cd_fail_reason(err, CD_EINVAL, "invalid_form", "", "a form field has no name");
    json_t *have = json_object_get(obj, name);
    if (!array) {
        if (have != NULL)
            return cd_fail_reason(err, CD_EINVAL, "invalid_form", name,
                                  "%s is given more than once (use %s[]= for a list)", name, name);
        return json_object_set_new(obj, name, json_string(value)) == 0
                   ? 0
                   : cd_fail(err, CD_EINTERNAL, name, "out of memory");
    }
    if (have == NULL) {
        have = json_array();
        if (json_object_set_new(obj, name, have) != 0)
            return cd_fail(err, CD_EINTERNAL, name, "out of memory");
    } else if (!json_is_array(have)) {
        return cd_fail_reason(err, CD_EINVAL, "invalid_form", name,
                              "%s is given both as a value and as a list (%s[])", name, name);
    }
    return json_array_append_new(have, json_string(value)) == 0
               ? 0
               : cd_fail(err, CD_EINTERNAL, name, "out of memory");
}

/* One "name=value" (or "name") field of f[0..n). buf has room for n + 1 bytes. */
static int parse_field(json_t *obj, const char *f, size_t n, char *buf, cd_err *err)
{
    const char *eq = memchr(f, '=', n);
    size_t klen = eq ? (size_t)(eq - f) : n;
    long nl = decode(f, klen, buf, "form field name", err);
    if (nl < 0)
        return -1;
    char *value = buf + nl + 1; /* the value is decoded after the name, in the same buffer */
    if (eq && decode(eq + 1, n - klen - 1, value, "form field value", err) < 0)
        return -1;
    if (!eq)
        value[0] = '\0';
    return add_field(obj, buf, (size_t)nl, value, err);
}

int cd_form_parse(const char *body, size_t len, size_t max_fields, json_t **out, cd_err *err)
{
    *out = NULL;
    json_t *obj = json_object();
    char *buf = cd_xmalloc(len + 2);
    size_t fields = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t n = amp ? (size_t)(amp - (body + i)) : len - i;
        if (n > 0 && ++fields > max_fields)
            rc = cd_fail_reason(err, CD_EINVAL, "invalid_form", "",
                                "the form has more than %zu fields", max_fields);
        else if (n > 0)
            rc = parse_field(obj, body + i, n, buf, err);
        i += n + 1;
    }
    free(buf);
    if (rc != 0) {
        json_decref(obj);
        return -1;
    }
    *out = obj;
    return 0;
}
