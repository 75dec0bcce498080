/* util/canon.h -- canonical JSON: object keys sorted, no insignificant whitespace,
 * non-ASCII escaped. Two equal values always give the same bytes, which is what the
 * ledger hashes and the idempotency check compare. */
#ifndef CD_UTIL_CANON_H
#define CD_UTIL_CANON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/crypto.h"

/* Returns a malloc'd string (free()) or NULL if v is NULL or not serialisable. */
char *cd_canon_json(const json_t *v);
/* SHA-256 (hex) of cd_canon_json(v); "" hashes as the empty string when v is NULL. */
void cd_canon_sha256(const json_t *v, char out[CD_SHA256_HEX]);

/* Appends s as a JSON string exactly as cd_canon_json() writes one (jansson's escapes,
 * non-ASCII as \uXXXX with surrogate pairs), for callers that build canonical JSON by
 * hand on a hot path. s must be valid UTF-8; NULL writes "". */
void cd_canon_string(cd_buf *b, const char *s);

/* Copies text that may not be UTF-8 (a raw User-Agent header) into dst[n] as valid
 * UTF-8: every byte that is not part of a well-formed sequence is written as the four
 * characters \xHH (upper-case hex), and when dst is too small the copy ends at a
 * character boundary, never inside a sequence or an escape. dst is always terminated
 * (n > 0). Returns true when the text was cut. */
bool cd_canon_text_copy(char *dst, size_t n, const char *src);

#endif
