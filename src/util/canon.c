#include "util/canon.h"

#include <stdlib.h>
#include <string.h>

char *cd_canon_json(const json_t *v)
{
    if (v == NULL)
        return NULL;
    /* Reals are printed with 17 significant digits so that a value round-trips. */
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY |
                             JSON_REAL_PRECISION(17));
}

void cd_canon_sha256(const json_t *v, char out[CD_SHA256_HEX])
{
    char *s = cd_canon_json(v);
    cd_sha256_hex(s ? s : "", s ? strlen(s) : 0, out);
    free(s);
}

/* Decodes one UTF-8 sequence at p (valid input assumed, as jansson produced or checked it);
 * returns its length and the code point. */
static int utf8_next(const unsigned char *p, unsigned *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xE0) == 0xC0 && p[1]) {
        *cp = (unsigned)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
        return 2;
    }
    if ((p[0] & 0xF0) == 0xE0 && p[1] && p[2]) {
        *cp = (unsigned)(p[0] & 0x0F) << 12 | (unsigned)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        return 3;
    }
    if ((p[0] & 0xF8) == 0xF0 && p[1] && p[2] && p[3]) {
        *cp = (unsigned)(p[0] & 0x07) << 18 | (unsigned)(p[1] & 0x3F) << 12 |
              (unsigned)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
        return 4;
    }
    *cp = 0xFFFD; /* not UTF-8: cannot come from jansson; keep going */
    return 1;
}

void cd_canon_string(cd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson prints \u escapes in upper case */
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    cd_buf_append(b, "\"", 1);
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            cd_buf_append(b, run, (size_t)(p - run));
        if (*p == '\0')
            break;
        unsigned cp;
        int n = utf8_next(p, &cp);
        p += n;
        switch (cp) {
        case '"':
            cd_buf_puts(b, "\\\"");
            continue;
        case '\\':
            cd_buf_puts(b, "\\\\");
            continue;
        case '\b':
            cd_buf_puts(b, "\\b");
            continue;
        case '\f':
            cd_buf_puts(b, "\\f");
            continue;
        case '\n':
            cd_buf_puts(b, "\\n");
            continue;
        case '\r':
            cd_buf_puts(b, "\\r");
            continue;
        case '\t':
            cd_buf_puts(b, "\\t");
            continue;
        default:
            break;
        }
        unsigned units[2] = {cp, 0};
        int nu = 1;
        if (cp > 0xFFFF) {
            cp -= 0x10000;
            units[0] = 0xD800 | (cp >> 10);
            units[1] = 0xDC00 | (cp & 0x3FF);
            nu = 2;
        }
        for (int i = 0; i < nu; i++) {
            char e[6] = {'\\', 'u', hex[units[i] >> 12 & 15], hex[units[i] >> 8 & 15],
                         hex[units[i] >> 4 & 15], hex[units[i] & 15]};
            cd_buf_append(b, e, 6);
        }
    }
    cd_buf_append(b, "\"", 1);
}
