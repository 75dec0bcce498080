/* util/crypto.h -- hashes, HMAC, randomness and constant-time compares (libsodium; SHA-256
 * through OpenSSL, for the CPU's SHA extensions). cd_crypto_init() runs in main before any
 * thread starts. */
#ifndef CD_UTIL_CRYPTO_H
#define CD_UTIL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CD_SHA256_HEX 65 /* 64 hex digits + NUL */

int cd_crypto_init(void);
void cd_sha256_hex(const void *data, size_t len, char out[CD_SHA256_HEX]);
void cd_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                        char out[CD_SHA256_HEX]);
/* Fills out with `nbytes` random bytes written as lowercase hex (2*nbytes+1 chars). */
void cd_random_hex(char *out, size_t nbytes);
/* URL-safe random token of `nbytes` random bytes (base64url, no padding) into out[outlen]. */
void cd_random_token(char *out, size_t outlen, size_t nbytes);
/* prefix, then 32 hex digits: the first 12 are unix_ms, the other 20 random (80 bits). Ids
 * made later sort later, so the index keyed on them grows at its right edge (message and
 * flow ids). */
void cd_time_id(char *out, size_t n, const char *prefix, int64_t unix_ms);
/* A version 7 UUID (RFC 9562) in lowercase 8-4-4-4-12 form: the first 48 bits are unix_ms,
 * then 74 random bits. Ids made later sort later, so an index keyed on them grows at its
 * right edge instead of rewriting a random page for each insert. */
#define CD_UUID_LEN 37 /* 36 characters + NUL */
void cd_uuid_v7(char out[CD_UUID_LEN], int64_t unix_ms);
/* Constant-time equality of two equal-length buffers. */
bool cd_ct_equal(const void *a, const void *b, size_t len);

#endif
