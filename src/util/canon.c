#include "util/canon.h"
#include "util/utf8.h"

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
        size_t n = 1;
        long c = cd_utf8_next(p, 4, &n);
        unsigned cp = c < 0 ? 0xFFFD : (unsigned)c; /* not UTF-8: jansson never gives us that */
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
            char e[6] = {'\\',
                         'u',
                         hex[units[i] >> 12 & 15],
                         hex[units[i] >> 8 & 15],
                         hex[units[i] >> 4 & 15],
                         hex[units[i] & 15]};
            cd_buf_append(b, e, 6);
        }
    }
    cd_buf_append(b, "\"", 1);
}

bool cd_canon_text_copy(char *dst, size_t n, const char *src)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t out = 0;
    while (*p) {
        size_t len = 1;
        char esc[4];
        const void *piece = p;
        if (cd_utf8_next(p, 4, &len) < 0) {
            /* One byte at a time: the next byte may start a good sequence. */
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[*p >> 4], esc[3] = hex[*p & 15];
            piece = esc;
            len = 1;
        }
        size_t w = piece == esc ? 4 : len;
        if (out + w + 1 > n) {
            dst[out] = '\0';
            return true;
        }
        memcpy(dst + out, piece, w);
        out += w;
        p += len;
    }
    dst[out] = '\0';
    return false;
}
