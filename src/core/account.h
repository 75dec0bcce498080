/* core/account.h -- accounts (tenants), API keys and the credentials that name them.
 *
 * An API key reads "cd_<16 hex id>_<43 url-safe chars>". Only the SHA-256 of the whole key
 * is stored; the id half finds the row, and the hash is compared in constant time.
 * Every failure to authenticate gives the same CD_EAUTH error, whatever was wrong. */
#ifndef CD_CORE_ACCOUNT_H
#define CD_CORE_ACCOUNT_H

#include <stdbool.h>

#include "store/store.h"
#include "util/err.h"

#define CD_KEY_LEN 96

/* Who is calling: set on the request once the credentials check out. */
typedef struct cd_principal {
    cd_account account;
    char credential_id[32]; /* the key id, or "jwt:<jti>" */
} cd_principal;

typedef struct cd_account_in {
    const char *name;     /* required: 1..64 of [A-Za-z0-9_.@-] */
    const char *login;    /* default: name */
    const char *brand;    /* default: name, upper-cased */
    const char *region;   /* default "US" */
    const char *timezone; /* default "UTC" */
} cd_account_in;

/* Validates and inserts an account with its first API key, in the writer's transaction.
 * key_out receives the key (shown once). */
int cd_account_create(cd_db *db, const cd_account_in *in, cd_account *out, char key_out[CD_KEY_LEN],
                      cd_err *err);

/* Creates another key for the account (writer's transaction). */
int cd_key_create(cd_db *db, int64_t account_id, const char *name, cd_apikey *out,
                  char key_out[CD_KEY_LEN], cd_err *err);

/* Resolves an API key to its account; `login`, when not NULL, must be the account's login
 * too (Octopush api-login, Basic LOGIN:KEY). */
int cd_key_authenticate(cd_db *db, const char *key, const char *login, cd_principal *out,
                        cd_err *err);

/* What "{brand}" in the account's texts (keyword replies, the CTA) stands for: its brand
 * abbreviation, or its name when it has none (issue 9 part 9). a must not be NULL. */
const char *cd_account_brand(const cd_account *a);

/* Mints an HS256 JWT for X-Auth-Token, signed with the account's own secret; malloc'd. */
char *cd_jwt_mint(const cd_account *a, long ttl_seconds, cd_err *err);
/* Verifies signature, algorithm and expiry, and resolves the account. */
int cd_jwt_authenticate(cd_db *db, const char *token, cd_principal *out, cd_err *err);
/* issue 14: revokes a token of account `a` before its expiry (a token it did not sign is
 * CD_EINVAL "invalid_token"); cd_jwt_authenticate refuses its jti from then on. Writer's
 * transaction. */
int cd_jwt_revoke(cd_db *db, const cd_account *a, const char *token, cd_err *err);

#endif
