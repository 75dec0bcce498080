#include "util/crypto.h"

#include <sodium.h>

#include "util/sha256.h"

int cd_crypto_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void cd_sha256_hex(const void *data, size_t len, char out[CD_SHA256_HEX])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    if (!cd_sha256__fast(data, len, h)) /* issue 12: the ledger hashes on the writer */
        crypto_hash_sha256(h, data, len);
    sodium_bin2hex(out, CD_SHA256_HEX, h, sizeof h);
}

void cd_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                        char out[CD_SHA256_HEX])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, data, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, CD_SHA256_HEX, mac, sizeof mac);
}

void cd_random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    randombytes_buf(b, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, b, nbytes);
}

void cd_random_token(char *out, size_t outlen, size_t nbytes)
{
    unsigned char b[64];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    randombytes_buf(b, nbytes);
    sodium_bin2base64(out, outlen, b, nbytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool cd_ct_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}
