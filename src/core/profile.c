/* core/profile.c -- issue 14: messaging profiles and sender leases (core/profile.h). */
#include "core/profile.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/phone.h"
#include "util/crypto.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

static bool allow_private;

void cd_profile_set_allow_private(bool allow)
{
    allow_private = allow;
}

bool cd_profile_allow_private(void)
{
    return allow_private;
}

void cd_profile_in_init(cd_profile_in *in)
{
    memset(in, 0, sizeof *in);
    in->number_pool_enable = in->long_code_weight = in->toll_free_weight = CD_PROFILE_UNSET;
    in->skip_unhealthy_tns = in->sticky_sender = CD_PROFILE_UNSET;
}

/* Characters, not bytes: the seed's limits are "[1 .. 255] characters" (UTF-8 input). */
static size_t chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Loopback, private (RFC 1918, ULA), carrier-grade NAT, link-local, unspecified,
 * multicast and broadcast: nothing a webhook on the public internet lives at. */
static bool private_v4(const unsigned char a[4])
{
    return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 100 && (a[1] & 0xC0) == 64) ||
           (a[0] == 169 && a[1] == 254) || (a[0] == 172 && (a[1] & 0xF0) == 16) ||
           (a[0] == 192 && a[1] == 168) || a[0] >= 224;
}

static bool private_host(const char *host)
{
    unsigned char a[16];
    char h[256];
    size_t n = strlen(host);
    if (n >= sizeof h)
        return false;
    snprintf(h, sizeof h, "%s", host);
    if (n > 2 && h[0] == '[' && h[n - 1] == ']') { /* curl keeps IPv6 brackets */
        memmove(h, h + 1, n - 2);
        h[n - 2] = '\0';
    }
    if (inet_pton(AF_INET, h, a) == 1)
        return private_v4(a);
    if (inet_pton(AF_INET6, h, a) == 1) {
        static const unsigned char zero[10] = {0};
        bool mapped = memcmp(a, zero, 10) == 0 && a[10] == 0xFF && a[11] == 0xFF;
        bool unspecified_or_loop = memcmp(a, zero, 10) == 0 && a[10] == 0 && a[11] == 0 &&
                                   a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1;
        return unspecified_or_loop || (mapped && private_v4(a + 12)) || (a[0] & 0xFE) == 0xFC ||
               (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) || a[0] == 0xFF;
    }
    size_t dot = n > 10 ? n - 10 : 0;
    return strcasecmp(h, "localhost") == 0 || strcasecmp(h + dot, ".localhost") == 0;
}

int cd_profile_url_check(const char *url, const char *field, cd_err *err)
{
    size_t n = chars(url);
    if (n < CD_PROFILE_URL_MIN || n > CD_PROFILE_URL_MAX)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", field,
                              "%s must be %d to %d characters", field, CD_PROFILE_URL_MIN,
                              CD_PROFILE_URL_MAX);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0))
        rc = cd_fail_reason(err, CD_EINVAL, "invalid_field", field,
                            "%s must be an http or https URL", field);
    else if (!allow_private && private_host(host))
        rc = cd_fail_reason(err, CD_EINVAL, "invalid_field", field,
                            "%s must not point at a loopback or private address", field);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int weight_check(int w, const char *field, cd_err *err)
{
    if (w == CD_PROFILE_UNSET || (w >= 0 && w <= CD_PROFILE_WEIGHT_MAX))
        return 0;
    return cd_fail_reason(err, CD_EINVAL, "invalid_field", field, "%s must be 0 to %d", field,
                          CD_PROFILE_WEIGHT_MAX);
}

int cd_profile_check(const cd_profile_in *in, bool create, cd_err *err)
{
    if (create && in->name == NULL)
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "name", "name is required");
    if (in->name && (chars(in->name) < 1 || chars(in->name) > CD_PROFILE_NAME_MAX))
        return cd_fail_reason(err, CD_EINVAL, "invalid_field", "name",
                              "name must be 1 to %d characters", CD_PROFILE_NAME_MAX);
    if ((in->callback_url && cd_profile_url_check(in->callback_url, "callback_url", err) != 0) ||
        (in->callback_url2 && cd_profile_url_check(in->callback_url2, "callback_url2", err) != 0))
        return -1;
    if (weight_check(in->long_code_weight, "long_code_weight", err) != 0 ||
        weight_check(in->toll_free_weight, "toll_free_weight", err) != 0)
        return -1;
    return 0;
}

void cd_profile_new_uuid(char out[37])
{
    char h[33];
    cd_random_hex(h, 16);
    h[12] = '4';                       /* version 4 */
    h[16] = "89ab"[(h[16] - '0') & 3]; /* RFC 4122 variant: 8, 9, a or b */
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* Applies the set members of `in` to p. */
static void apply(cd_profile *p, const cd_profile_in *in)
{
    if (in->name)
        snprintf(p->name, sizeof p->name, "%s", in->name);
    if (in->callback_url || in->clear_url)
        snprintf(p->callback_url, sizeof p->callback_url, "%s",
                 in->callback_url ? in->callback_url : "");
    if (in->callback_url2 || in->clear_url2)
        snprintf(p->callback_url2, sizeof p->callback_url2, "%s",
                 in->callback_url2 ? in->callback_url2 : "");
    if (in->number_pool_enable != CD_PROFILE_UNSET)
        p->number_pool_enable = in->number_pool_enable != 0;
    if (in->long_code_weight != CD_PROFILE_UNSET)
        p->long_code_weight = in->long_code_weight;
    if (in->toll_free_weight != CD_PROFILE_UNSET)
        p->toll_free_weight = in->toll_free_weight;
    if (in->skip_unhealthy_tns != CD_PROFILE_UNSET)
        p->skip_unhealthy_tns = in->skip_unhealthy_tns != 0;
    if (in->sticky_sender != CD_PROFILE_UNSET)
        p->sticky_sender = in->sticky_sender != 0;
}

int cd_profile_create(cd_db *db, int64_t account_id, const cd_profile_in *in, cd_profile *out,
                      cd_err *err)
{
    if (cd_profile_check(in, true, err) != 0)
        return -1;
    memset(out, 0, sizeof *out);
    cd_profile_new_uuid(out->uuid);
    out->account_id = account_id;
    out->long_code_weight = out->toll_free_weight = 1;
    cd_random_hex(out->signing_secret, 32);
    out->created_ms = out->modified_ms = cd_now_ms();
    apply(out, in);
    return cd_store_profile_put(db, out, err);
}

int cd_profile_update(cd_db *db, int64_t account_id, const char *uuid, const cd_profile_in *in,
                      cd_profile *out, cd_err *err)
{
    if (cd_profile_check(in, false, err) != 0 ||
        cd_store_profile_get(db, account_id, uuid, out, err) != 0)
        return -1;
    apply(out, in);
    out->modified_ms = cd_now_ms();
    return cd_store_profile_put(db, out, err);
}

int cd_profile_delete(cd_db *db, int64_t account_id, const char *uuid, cd_err *err)
{
    return cd_store_profile_delete(db, account_id, uuid, err);
}

static int take_first(const cd_profile *p, void *arg)
{
    *(cd_profile *)arg = *p;
    return 1;
}

int cd_profile_default(cd_db *db, int64_t account_id, const json_t *settings, cd_profile *out,
                       cd_err *err)
{
    const char *def = json_string_value(json_object_get(settings, "default_profile"));
    if (def && cd_store_profile_get(db, account_id, def, out, NULL) == 0)
        return 0;
    out->uuid[0] = '\0';
    if (cd_store_profile_list(db, account_id, take_first, out, err) != 0)
        return -1;
    if (out->uuid[0] == '\0')
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "profile", "no messaging profile");
    return 0;
}

int cd_sender_lease(cd_db *db, int64_t account_id, const char *number, const char *uuid,
                    cd_sender *out, cd_err *err)
{
    cd_profile *p = cd_xcalloc(1, sizeof *p);
    char lease[37];
    int rc = cd_store_profile_get(db, account_id, uuid, p, err);
    free(p);
    if (rc != 0)
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "profile", "no such profile");
    if (cd_store_sender_get(db, number, out, NULL) != 0 || out->account_id != account_id)
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "number", "no such sender");
    cd_profile_new_uuid(lease);
    if (cd_store_sender_lease(db, account_id, number, uuid, lease, cd_now_ms(), err) != 0)
        return -1;
    return cd_store_sender_get(db, number, out, err);
}

int cd_sender_release(cd_db *db, int64_t account_id, const char *number, cd_err *err)
{
    cd_sender s;
    if (cd_store_sender_get(db, number, &s, NULL) != 0 || s.account_id != account_id)
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "number", "no such sender");
    if (s.profile[0] == '\0')
        return cd_fail_reason(err, CD_ENOTFOUND, "not_found", "number", "the sender is not leased");
    return cd_store_sender_lease(db, account_id, number, "", "", 0, err);
}

const char *cd_sender_type_of(const char *number)
{
    size_t n = strlen(number), digits = strspn(number, "0123456789");
    if (n >= 3 && n <= 8 && digits == n)
        return "short_code";
    return cd_phone_is_toll_free(number) ? "toll_free" : "long_code";
}

bool cd_sender_type_valid(const char *type)
{
    return type && (strcmp(type, "long_code") == 0 || strcmp(type, "toll_free") == 0 ||
                    strcmp(type, "short_code") == 0);
}

static json_t *time_or_null(int64_t ms)
{
    char t[CD_TIME_LEN];
    if (ms == 0)
        return json_null();
    cd_time_format(ms, t);
    return json_string(t);
}

json_t *cd_sender_view(const cd_sender *s, bool is_default, bool healthy)
{
    return json_pack("{ss ss so sb sb so so}", "number", s->number, "type",
                     s->type[0] ? s->type : cd_sender_type_of(s->number), "transport",
                     s->transport[0] ? json_string(s->transport) : json_null(), "default",
                     is_default, "healthy", healthy, "profile",
                     s->profile[0] ? json_string(s->profile) : json_null(), "created_at",
                     time_or_null(s->created_ms));
}

json_t *cd_lease_view(const cd_sender *s)
{
    return json_pack("{ss ss ss ss so}", "uuid", s->lease_uuid, "number", s->number, "type",
                     s->type[0] ? s->type : cd_sender_type_of(s->number), "profile", s->profile,
                     "created_on", time_or_null(s->leased_ms));
}
