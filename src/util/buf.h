/* util/buf.h -- a growable byte buffer, always NUL-terminated. */
#ifndef CD_UTIL_BUF_H
#define CD_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cd_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
} cd_buf;

void cd_buf_append(cd_buf *b, const void *p, size_t n);
void cd_buf_puts(cd_buf *b, const char *s);
/* Writes v in decimal ("%lld" without printf) into out, which has room for 20 digits and a
 * sign; returns the length written, without a NUL. */
#define CD_INT_DIGITS 21
size_t cd_fmt_int(char out[CD_INT_DIGITS], int64_t v);
/* Appends v in decimal, at least `width` digits (zero-padded after any sign); no printf,
 * for the per-request answers and log lines. */
void cd_buf_put_int(cd_buf *b, int64_t v, int width);
void cd_buf_printf(cd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *cd_buf_take(cd_buf *b); /* hands data to the caller (free()), leaves b empty */
void cd_buf_free(cd_buf *b);

#endif
