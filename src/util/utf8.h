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

struct cd_buf;
/* Appends s as a JSON string the way jansson's json_dumps writes one (JSON_COMPACT, no
 * JSON_ENSURE_ASCII): \" \\ \b \f \n \r \t, other control characters as \u00XX, all else
 * (UTF-8 included) as it is. -1 when s is not valid UTF-8, which jansson refuses (b then
 * holds part of the string: callers fall back to jansson and its error). For answers
 * written without a jansson tree, byte for byte what the tree would have given. */
int cd_utf8_json_string(struct cd_buf *b, const char *s);

#ifdef __cplusplus
}
#endif

#endif
