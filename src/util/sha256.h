/* util/sha256.h -- SHA-256 by the CPU's SHA instructions, when it has them (util/sha256.c).
 * Used by util/crypto.c; everyone else calls cd_sha256_hex. */
#ifndef CD_UTIL_SHA256_H
#define CD_UTIL_SHA256_H

#include <stdbool.h>
#include <stddef.h>

/* The SHA-256 digest of data[len] into out; false (out untouched) when this CPU lacks the
 * SHA extensions, and the caller must hash another way. Thread-safe. */
bool cd_sha256__fast(const void *data, size_t len, unsigned char out[32]);

#endif
