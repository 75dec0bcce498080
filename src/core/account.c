#include "core/account.h"

#include <assert.h>
#include <ctype.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ledger.h"
#include "core/phone.h"
#include "util/crypto.h"
#include "util/timeutil.h"

static int auth_fail(cd_err *err)
{
    return cd_fail_reason(err, CD_EAUTH, "unauthorized", "", "missing or invalid credentials");
}

static bool valid_name(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.@-+", s[i]))
            return false;
    return true;
}

static bool valid_tz(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || strstr(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_/+-", s[i]))
            return false;
    return true;
}

int cd_key_create(cd_db *db, int64_t account_id, const char *name, cd_apikey *out,
                  char key_out[CD_KEY_LEN], cd_err *err)
{
    cd_apikey k = {.account_id = account_id, .created_ms = cd_now_ms()};
    char hex[33], secret[64];
    if (name && strlen(name) >= sizeof k.name)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "name", "name is too long");
    cd_random_hex(hex, 8);
    cd_random_token(secret, sizeof secret, 32);
    snprintf(k.id, sizeof k.id, "key_%.16s", hex);
    snprintf(k.name, sizeof k.name, "%s", name ? name : "");
    snprintf(key_out, CD_KEY_LEN, "cd_%.16s_%.43s", hex, secret);
    cd_sha256_hex(key_out, strlen(key_out), k.hash);
    if (cd_store_key_insert(db, &k, err) != 0)
        return -1;
    if (out)
        *out = k;
    return 0;
}

int cd_account_create(cd_db *db, const cd_account_in *in, cd_account *out, char key_out[CD_KEY_LEN],
                      cd_err *err)
{
    cd_account a = {.created_ms = cd_now_ms()};
    if (!valid_name(in->name, 64))
        return cd_fail(err, CD_EINVAL, "name", "account names are 1-64 letters, digits or _.@-+");
    const char *login = in->login ? in->login : in->name;
    if (!valid_name(login, 254))
        return cd_fail(err, CD_EINVAL, "login", "invalid login");
    const char *region = in->region ? in->region : "US";
    if (!cd_phone_region_valid(region))
        return cd_fail(err, CD_EINVAL, "region", "unknown region %s", region);
    const char *tz = in->timezone ? in->timezone : "UTC";
    if (!valid_tz(tz) || !cd_time_zone_valid(tz)) /* issue 8 item 10: an error now, not later */
        return cd_fail(err, CD_EINVAL, "timezone",
                       "unknown time zone %s: use an IANA name such as America/New_York", tz);
    snprintf(a.name, sizeof a.name, "%s", in->name);
    snprintf(a.login, sizeof a.login, "%s", login);
    if (in->brand) {
        if (!valid_name(in->brand, 32))
            return cd_fail(err, CD_EINVAL, "brand", "invalid brand abbreviation");
        snprintf(a.brand, sizeof a.brand, "%s", in->brand);
    } else {
        for (size_t i = 0; i < 32 && in->name[i]; i++)
            a.brand[i] = (char)toupper((unsigned char)in->name[i]);
    }
    for (size_t i = 0; i < 2 && region[i]; i++)
        a.region[i] = (char)toupper((unsigned char)region[i]);
    snprintf(a.timezone, sizeof a.timezone, "%s", tz);
    cd_random_hex(a.jwt_secret, 32);
    snprintf(a.ledger_head, sizeof a.ledger_head, "%s", CD_LEDGER_GENESIS);
    if (cd_store_account_insert(db, &a, err) != 0) {
        if (err && err->code == CD_ECONFLICT)
            cd_fail(err, CD_ECONFLICT, "name", "an account with that name or login exists");
        return -1;
    }
    if (cd_key_create(db, a.id, "first", NULL, key_out, err) != 0)
        return -1;
    if (out)
        *out = a;
    return 0;
}

static int load_account(cd_db *db, int64_t id, cd_principal *out, cd_err *err)
{
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
    if (cd_store_account_get(db, "id", idbuf, &out->account, NULL) != 0)
        return auth_fail(err);
    return 0;
}

/* issue 16: a client sends its key on every request, and each thread keeps the hash of the
 * last key it saw. The hash is a pure function of the key, so only the SHA-256 is saved: the
 * key is still looked up and compared on every request. The cached key is a secret, hence
 * the constant-time compare. */
static void key_hash(const char *key, size_t n, char hash[65])
{
    static _Thread_local struct {
        char key[CD_KEY_LEN];
        char hash[65];
    } last;
    if (n < sizeof last.key && last.hash[0] != '\0' && last.key[n] == '\0' &&
        cd_ct_equal(last.key, key, n)) {
        memcpy(hash, last.hash, 65);
        return;
    }
    cd_sha256_hex(key, n, hash);
    if (n < sizeof last.key) {
        memset(last.key, 0, sizeof last.key);
        memcpy(last.key, key, n);
        memcpy(last.hash, hash, 65);
    }
}

int cd_key_authenticate(cd_db *db, const char *key, const char *login, cd_principal *out,
                        cd_err *err)
{
    /* cd_ + 16 hex + _ + 43 chars */
    char id[32], hash[65];
    cd_apikey k;
    if (key == NULL || strlen(key) != 3 + 16 + 1 + 43 || strncmp(key, "cd_", 3) != 0 ||
        key[19] != '_')
        return auth_fail(err);
    memcpy(id, "key_", 4); /* "key_%.16s" (issue 16: no printf per request) */
    memcpy(id + 4, key + 3, 16);
    id[20] = '\0';
    key_hash(key, strlen(key), hash);
    /* issue 16: the key and its account in one read (a key whose account is gone is no
     * key); this runs on every authenticated request. */
    bool found = cd_store_key_auth(db, id, &k, &out->account, NULL) == 0;
    /* Compare even when the id is unknown, so both paths cost the same. */
    bool same = cd_ct_equal(hash, found ? k.hash : CD_LEDGER_GENESIS, 64);
    if (!found || !same || k.revoked_ms != 0) {
        memset(&out->account, 0, sizeof out->account);
        return auth_fail(err);
    }
    if (login && strcmp(login, out->account.login) != 0)
        return auth_fail(err);
    size_t n = strnlen(k.id, sizeof out->credential_id - 1); /* as snprintf("%s") cuts it */
    memcpy(out->credential_id, k.id, n);
    out->credential_id[n] = '\0';
    return 0;
}

char *cd_jwt_mint(const cd_account *a, long ttl_seconds, cd_err *err)
{
    jwt_t *jwt = NULL;
    char sub[32], jti[33];
    char *out = NULL;
    time_t now = time(NULL);
    snprintf(sub, sizeof sub, "%lld", (long long)a->id);
    cd_random_hex(jti, 16);
    if (jwt_new(&jwt) != 0 || jwt_add_grant(jwt, "sub", sub) != 0 ||
        jwt_add_grant(jwt, "jti", jti) != 0 || jwt_add_grant(jwt, "iss", "consentd") != 0 ||
        jwt_add_grant_int(jwt, "iat", now) != 0 ||
        jwt_add_grant_int(jwt, "exp", now + (ttl_seconds > 0 ? ttl_seconds : 3600)) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)a->jwt_secret,
                    (int)strlen(a->jwt_secret)) != 0 ||
        (out = jwt_encode_str(jwt)) == NULL)
        cd_fail(err, CD_EINTERNAL, "", "cannot mint a token");
    jwt_free(jwt);
    return out;
}

/* Reads the unverified "sub" claim to find whose secret verifies the token. Nothing of it
 * is trusted until jwt_decode() has checked the signature with that secret. */
static int64_t unverified_sub(const char *token)
{
    const char *p1 = strchr(token, '.');
    const char *p2 = p1 ? strchr(p1 + 1, '.') : NULL;
    unsigned char raw[1024];
    size_t rawlen = 0;
    int64_t sub = 0;
    if (p2 == NULL || (size_t)(p2 - p1 - 1) > sizeof raw * 4 / 3)
        return 0;
    if (sodium_base642bin(raw, sizeof raw - 1, p1 + 1, (size_t)(p2 - p1 - 1), NULL, &rawlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return 0;
    json_t *claims = json_loadb((const char *)raw, rawlen, 0, NULL);
    const char *s = json_string_value(json_object_get(claims, "sub"));
    if (s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        sub = *end == '\0' && v > 0 ? v : 0;
    }
    json_decref(claims);
    return sub;
}

int cd_jwt_authenticate(cd_db *db, const char *token, cd_principal *out, cd_err *err)
{
    if (token == NULL || strlen(token) > 2048)
        return auth_fail(err);
    int64_t sub = unverified_sub(token);
    if (sub == 0 || load_account(db, sub, out, err) != 0)
        return auth_fail(err);
    jwt_t *jwt = NULL;
    const cd_account *a = &out->account;
    int rc =
        jwt_decode(&jwt, token, (const unsigned char *)a->jwt_secret, (int)strlen(a->jwt_secret));
    bool ok = rc == 0 && jwt_get_alg(jwt) == JWT_ALG_HS256;
    if (ok) {
        long exp = jwt_get_grant_int(jwt, "exp");
        ok = exp > (long)time(NULL);
        const char *jti = jwt_get_grant(jwt, "jti");
        snprintf(out->credential_id, sizeof out->credential_id, "jwt:%.24s", jti ? jti : "");
        /* issue 14: `consentd token revoke` refuses a token before its expiry. */
        bool revoked = true;
        ok = ok && jti && cd_store_jwt_revoked(db, jti, &revoked, NULL) == 0 && !revoked;
    }
    jwt_free(jwt);
    return ok ? 0 : auth_fail(err);
}

int cd_jwt_revoke(cd_db *db, const cd_account *a, const char *token, cd_err *err)
{
    jwt_t *jwt = NULL;
    if (token == NULL || strlen(token) > 2048 ||
        jwt_decode(&jwt, token, (const unsigned char *)a->jwt_secret, (int)strlen(a->jwt_secret)) !=
            0 ||
        unverified_sub(token) != a->id) {
        jwt_free(jwt);
        return cd_fail_reason(err, CD_EINVAL, "invalid_token", "token",
                              "not a token of this account");
    }
    const char *jti = jwt_get_grant(jwt, "jti");
    long exp = jwt_get_grant_int(jwt, "exp");
    int rc = jti == NULL
                 ? cd_fail_reason(err, CD_EINVAL, "invalid_token", "token", "the token has no id")
                 : cd_store_jwt_revoke(db, a->id, jti, (int64_t)exp * 1000,
                                       (int64_t)time(NULL) * 1000, err);
    jwt_free(jwt);
    return rc;
}

const char *cd_account_brand(const cd_account *a)
{
    assert(a != NULL);
    return a->brand[0] ? a->brand : a->name;
}
