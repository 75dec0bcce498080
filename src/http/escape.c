/* http/escape.c -- the percent decoding of paths and query values, in two passes (see
 * cd_http__decode), and the UTF-8 check of what we may echo back. */
#include <stdbool.h>
#include <string.h>

#include "http/http_int.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The byte a "%HH" at r stands for, or -1 when r is not one. */
static int pct(const char *r)
{
    int hi, lo;
    if (r[0] != '%' || (hi = hexval(r[1])) < 0 || (lo = hexval(r[2])) < 0)
        return -1;
    return hi * 16 + lo;
}

/* Decodes %HH like MHD's default, except three that must survive until later:
 * - %00: a decoded NUL would cut the path or value short ("/contacts/%00" would become
 *   "/contacts/"), so it stays as written, for good;
 * - %2F and %25: a "/" inside a path parameter ("/contacts/646%2F555%2F0123") must not
 *   split the path, so these wait for cd_http__unescape_late() on the parameter or query
 *   value, after routing; %25 waits too, or "%252F" would be decoded twice. */
/* Copies in to out (which may be in: decoding only shortens), decoding the "%HH" that
 * `late` selects: the first pass everything but %00, %2F and %25; the late pass only
 * %2F and %25. Returns the length written. */
size_t cd_http__decode(const char *in, char *out, bool late)
{
    char *w = out;
    for (const char *r = in; *r;) {
        int v = pct(r);
        bool kept_for_later = v == '/' || v == '%';
        if (v > 0 && kept_for_later == late) {
            *w++ = (char)v;
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - out);
}

const char *cd_http__unescape_late(cd_req *req, const char *s)
{
    if (s == NULL || strchr(s, '%') == NULL)
        return s;
    char *out = cd_req_alloc(req, strlen(s) + 1);
    cd_http__decode(s, out, true);
    return out;
}

/* Valid UTF-8 as jansson reads it (no overlong forms, no surrogates, nothing past
 * U+10FFFF): anything we may echo in a JSON message must be, or the answer fails. */
bool cd_http__utf8_ok(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s++;
        int more = c < 0x80             ? 0
                   : (c & 0xE0) == 0xC0 ? 1
                   : (c & 0xF0) == 0xE0 ? 2
                   : (c & 0xF8) == 0xF0 ? 3
                                        : -1;
        if (more < 0 || c == 0xC0 || c == 0xC1 || c > 0xF4)
            return false;
        unsigned cp = more ? c & (0x3Fu >> more) : c;
        for (int k = 0; k < more; k++, s++) {
            if ((*s & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (*s & 0x3Fu);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
    }
    return true;
}
