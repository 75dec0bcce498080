/* http/auth.h -- reading credentials off a request, for every style in DESIGN.md
 * section 1. Parsing only: whether the credentials are valid is for core/account.
 * Returned strings live in request memory. */
#ifndef CD_HTTP_AUTH_H
#define CD_HTTP_AUTH_H

#include <stddef.h>

#include "http/http.h"

enum cd_auth_style {
    CD_AUTH_QUERY_TOKEN = 1u << 0, /* ?access_token=KEY (ProTexting) */
    CD_AUTH_HEADER_PAIR = 1u << 1, /* api-login: LOGIN + api-key: KEY (Octopush) */
    CD_AUTH_OMEDA = 1u << 2,       /* x-omeda-appid: KEY (+ brand in the path) */
    CD_AUTH_BASIC = 1u << 3,       /* Authorization: Basic base64(LOGIN:KEY) */
    CD_AUTH_BEARER = 1u << 4,      /* Authorization: Bearer KEY */
    CD_AUTH_JWT = 1u << 5,         /* X-Auth-Token: JWT (Opentact) */
};

typedef struct cd_credentials {
    enum cd_auth_style style; /* 0 when none was found */
    const char *login;        /* NULL unless the style carries one */
    const char *secret;       /* the key or the token */
} cd_credentials;

/* Looks for the first of `styles` present on the request. 0 when found, -1 when none is
 * (or the one found is malformed). */
int cd_auth_read(cd_req *req, unsigned styles, cd_credentials *out);

/* Pure parsers, exposed for unit tests. */
/* "Bearer  abc" -> "abc" (pointer into header); NULL if not a bearer header. */
const char *cd_auth_bearer(const char *header);
/* "Basic base64(login:key)" -> login and key, NUL-terminated in the caller's buffers.
 * 0 on success, -1 if malformed or too long. */
int cd_auth_basic(const char *header, char *login, size_t loginlen, char *key, size_t keylen);

#endif
