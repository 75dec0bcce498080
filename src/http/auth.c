#include "http/auth.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

const char *cd_auth_bearer(const char *header)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    header += 7;
    while (*header == ' ')
        header++;
    return *header ? header : NULL;
}

int cd_auth_basic(const char *header, char *login, size_t loginlen, char *key, size_t keylen)
{
    unsigned char raw[512];
    size_t rawlen = 0;
    if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
        return -1;
    header += 6;
    while (*header == ' ')
        header++;
    size_t n = strlen(header);
    if (n == 0 || n > 600 ||
        sodium_base642bin(raw, sizeof raw - 1, header, n, NULL, &rawlen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    raw[rawlen] = '\0';
    if (memchr(raw, '\0', rawlen))
        return -1; /* an embedded NUL would cut the key short */
    char *colon = strchr((char *)raw, ':');
    if (colon == NULL)
        return -1;
    size_t l = (size_t)(colon - (char *)raw), k = rawlen - l - 1;
    if (l == 0 || k == 0 || l >= loginlen || k >= keylen)
        return -1;
    memcpy(login, raw, l);
    login[l] = '\0';
    memcpy(key, colon + 1, k);
    key[k] = '\0';
    sodium_memzero(raw, sizeof raw);
    return 0;
}

int cd_auth_read(cd_req *req, unsigned styles, cd_credentials *out)
{
    const char *authz = cd_req_header(req, "Authorization");
    const char *v;
    memset(out, 0, sizeof *out);
    if ((styles & CD_AUTH_BEARER) && (v = cd_auth_bearer(authz))) {
        *out = (cd_credentials){.style = CD_AUTH_BEARER, .secret = v};
        return 0;
    }
    if ((styles & CD_AUTH_BASIC) && authz && strncasecmp(authz, "Basic ", 6) == 0) {
        char *login = cd_req_alloc(req, 256), *key = cd_req_alloc(req, 256);
        if (cd_auth_basic(authz, login, 256, key, 256) != 0)
            return -1;
        *out = (cd_credentials){.style = CD_AUTH_BASIC, .login = login, .secret = key};
        return 0;
    }
    if ((styles & CD_AUTH_JWT) && (v = cd_req_header(req, "X-Auth-Token")) && *v) {
        *out = (cd_credentials){.style = CD_AUTH_JWT, .secret = v};
        return 0;
    }
    if ((styles & CD_AUTH_OMEDA) && (v = cd_req_header(req, "x-omeda-appid")) && *v) {
        *out = (cd_credentials){.style = CD_AUTH_OMEDA, .secret = v};
        return 0;
    }
    if (styles & CD_AUTH_HEADER_PAIR) {
        const char *login = cd_req_header(req, "api-login"), *key = cd_req_header(req, "api-key");
        if (login && key && *login && *key) {
            *out = (cd_credentials){.style = CD_AUTH_HEADER_PAIR, .login = login, .secret = key};
            return 0;
        }
    }
    if ((styles & CD_AUTH_QUERY_TOKEN) && (v = cd_req_query(req, "access_token")) && *v) {
        *out = (cd_credentials){.style = CD_AUTH_QUERY_TOKEN, .secret = v};
        return 0;
    }
    return -1;
}
