#include "util/utf8.h"

#include <stdio.h>

#include "util/buf.h"

long cd_utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    long cp;
    size_t need;

    if (s[0] < 0x80) {
        *len = 1;
        return s[0];
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        cp = s[0] & 0x07;
    } else {
        return -1;
    }
    if (n < need)
        return -1;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *len = need;
    return cp;
}

int cd_utf8_json_string(struct cd_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *run = p;
    cd_buf_append(b, "\"", 1);
    while (*p) {
        char u[8];
        const char *esc = u;
        size_t len = 1;
        if (*p >= 0x80) {
            if (cd_utf8_next(p, 4, &len) < 0)
                return -1;
            p += len;
            continue;
        }
        switch (*p) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (*p >= 0x20) {
                p++;
                continue;
            }
            snprintf(u, sizeof u, "\\u%04X", (unsigned)*p);
        }
        cd_buf_append(b, run, (size_t)(p - run));
        cd_buf_puts(b, esc);
        run = ++p;
    }
    cd_buf_append(b, run, (size_t)(p - run));
    cd_buf_append(b, "\"", 1);
    return 0;
}
