#include "util/crypto.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <sodium.h>

int cd_crypto_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* SHA-256 through OpenSSL, which uses the CPU's SHA extensions where it has them: libsodium's
 * portable code took ~3 us for a ledger event's ~650 bytes, OpenSSL's ~0.5 us, and the writer
 * hashes one event per consent change. The digest is fetched once and each thread keeps one
 * context (freed when the thread ends); libsodium remains the fallback. */
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha_md;
static pthread_key_t sha_key;

static void sha_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha_init(void)
{
    if (pthread_key_create(&sha_key, sha_ctx_free) == 0)
        sha_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static bool sha_openssl(const void *data, size_t len, unsigned char h[32])
{
    pthread_once(&sha_once, sha_init);
    if (sha_md == NULL)
        return false;
    EVP_MD_CTX *ctx = pthread_getspecific(sha_key);
    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL || pthread_setspecific(sha_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            return false;
        }
    }
    unsigned int n = 0;
    return EVP_DigestInit_ex2(ctx, sha_md, NULL) == 1 && EVP_DigestUpdate(ctx, data, len) == 1 &&
           EVP_DigestFinal_ex(ctx, h, &n) == 1 && n == 32;
}

static const char HEX[] = "0123456789abcdef";

/* n bytes as lowercase hex, as sodium_bin2hex writes them, then a NUL; returns where the NUL
 * is. Not constant-time: for digests and fresh random ids, no secrets (the ledger hashes
 * every event on the writer). */
static char *put_hex(char *o, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *o++ = HEX[b[i] >> 4];
        *o++ = HEX[b[i] & 15];
    }
    *o = '\0';
    return o;
}

void cd_sha256_hex(const void *data, size_t len, char out[CD_SHA256_HEX])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    _Static_assert(sizeof h == 32 && CD_SHA256_HEX == 65, "a digest is 32 bytes");
    if (!sha_openssl(data, len, h))
        crypto_hash_sha256(h, data, len);
    put_hex(out, h, sizeof h);
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

/* Each thread draws the ids' random bits from its own pool, refilled 64 ids at a time:
 * randombytes_buf() is a getrandom() system call each time, and the writer makes two ids
 * per ProTexting opt-in (a flow's and its CTA's). The bytes are used once each. */
#define ID_RANDOM 10
static _Thread_local unsigned char id_pool[64 * ID_RANDOM];
static _Thread_local size_t id_used = sizeof id_pool;

void cd_time_id(char *out, size_t n, const char *prefix, int64_t unix_ms)
{
    char id[12 + 2 * ID_RANDOM + 1], *o = id;
    if (id_used + ID_RANDOM > sizeof id_pool) {
        randombytes_buf(id_pool, sizeof id_pool);
        id_used = 0;
    }
    uint64_t ms = (uint64_t)unix_ms & 0xFFFFFFFFFFFFULL;
    for (int shift = 44; shift >= 0; shift -= 4)
        *o++ = HEX[(ms >> shift) & 0xF];
    put_hex(o, id_pool + id_used, ID_RANDOM);
    id_used += ID_RANDOM;
    snprintf(out, n, "%s%s", prefix, id);
}

void cd_uuid_v7(char out[CD_UUID_LEN], int64_t unix_ms)
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    uint64_t ms = (uint64_t)unix_ms & 0xFFFFFFFFFFFFULL;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0F)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3F)); /* variant 10 */
    static const char hx[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hx[b[i] >> 4];
        *o++ = hx[b[i] & 0x0F];
    }
    *o = '\0';
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
