/* util/utf8.h -- one strict UTF-8 decoder for everything that walks text by code point
 * (the XML writer, canonical JSON, phone input checks, the GSM codec). */
#ifndef CD_UTIL_UTF8_H
#define CD_UTIL_UTF8_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decodes the sequence at s[0..n): returns the code point and sets *len, or -1 for a
 * malformed, truncated, overlong or surrogate sequence or one past U+10FFFF. On a
 * NUL-terminated string n may be 4: a NUL ends a sequence before anything past it is read. */
long cd_utf8_next(const unsigned char *s, size_t n, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
