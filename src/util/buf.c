#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static void reserve(cd_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = cd_xrealloc(b->data, cap);
    b->cap = cap;
}

void cd_buf_append(cd_buf *b, const void *p, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cd_buf_puts(cd_buf *b, const char *s)
{
    cd_buf_append(b, s, strlen(s));
}

size_t cd_fmt_int(char out[CD_INT_DIGITS], int64_t v)
{
    char t[CD_INT_DIGITS], *p = t + sizeof t;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(t + sizeof t - p);
    memcpy(out, p, n);
    return n;
}

void cd_buf_put_int(cd_buf *b, int64_t v, int width)
{
    char t[CD_INT_DIGITS];
    size_t n = cd_fmt_int(t, v);
    const char *d = t;
    if (v < 0) { /* the sign, then the padding */
        cd_buf_append(b, "-", 1);
        d++;
        n--;
    }
    for (int pad = width - (int)n; pad > 0; pad--)
        cd_buf_append(b, "0", 1);
    cd_buf_append(b, d, n);
}

void cd_buf_printf(cd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *cd_buf_take(cd_buf *b)
{
    char *d = b->data ? b->data : cd_xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void cd_buf_free(cd_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
