/* delivery/smpp_url.c -- where the SMSC is and who a message is from and to: the smpp:// URL
 * (delivery/smpp.h documents it) and SMPP addresses, ours to TON/NPI and back. */
#include "delivery/smpp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xalloc.h"

/* ------------------------------------------------------------------------------------ */
/* The URL                                                                               */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out[cap]; a value that does not fit is an error, because a
 * silently truncated password would only show up as a bind failure much later. */
static int url_part(const char *s, size_t n, char *out, size_t cap, const char *what, cd_err *err)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
            i += 2;
        }
        if (c == 0 || k + 1 >= cap)
            return cd_fail(err, CD_EINVAL, "url", "smpp url: %s is too long (at most %zu)", what,
                           cap - 1);
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

static int query_int(const char *v, size_t n, int lo, int hi, int *out, const char *what,
                     cd_err *err)
{
    char tmp[16];
    char *end;
    if (n == 0 || n >= sizeof tmp)
        return cd_fail(err, CD_EINVAL, "url", "smpp url: bad %s", what);
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    long x = strtol(tmp, &end, 10);
    if (*end != '\0' || x < lo || x > hi)
        return cd_fail(err, CD_EINVAL, "url", "smpp url: %s must be %d..%d", what, lo, hi);
    *out = (int)x;
    return 0;
}

static int parse_query(cd_transport *t, const char *q, cd_err *err)
{
    while (*q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        const char *v = eq ? eq + 1 : q + len;
        size_t vlen = (size_t)(q + len - v);
        int rc = 0;
        if (klen == 6 && memcmp(q, "window", 6) == 0)
            rc = query_int(v, vlen, 1, 1000, &t->window, "window", err);
        else if (klen == 12 && memcmp(q, "enquire_link", 12) == 0)
            rc = query_int(v, vlen, 0, 86400, &t->enquire_s, "enquire_link", err);
        else if (klen == 11 && memcmp(q, "system_type", 11) == 0)
            rc = url_part(v, vlen, t->system_type, sizeof t->system_type, "system_type", err);
        else if (klen == 4 && memcmp(q, "from", 4) == 0)
            rc = url_part(v, vlen, t->from, sizeof t->from, "from", err);
        else if (klen > 0) {
            char *key = cd_xstrndup(q, klen);
            cd_smpp__log(t, "warn", "smpp url: unknown parameter ignored", key);
            free(key);
        }
        if (rc != 0)
            return -1;
        q += len + (q[len] == '&');
    }
    return 0;
}

static int parse_hostport(cd_transport *t, const char *s, size_t n, cd_err *err)
{
    const char *colon;
    if (n > 0 && s[0] == '[') { /* [IPv6]:port */
        const char *rb = memchr(s, ']', n);
        if (rb == NULL)
            return cd_fail(err, CD_EINVAL, "url", "smpp url: unclosed [ in host");
        if (url_part(s + 1, (size_t)(rb - s - 1), t->host, sizeof t->host, "host", err) != 0)
            return -1;
        colon = (rb + 1 < s + n && rb[1] == ':') ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', n);
        size_t hl = colon ? (size_t)(colon - s) : n;
        if (url_part(s, hl, t->host, sizeof t->host, "host", err) != 0)
            return -1;
    }
    if (t->host[0] == '\0')
        return cd_fail(err, CD_EINVAL, "url", "smpp url: no host");
    if (colon != NULL) {
        int port;
        if (query_int(colon + 1, (size_t)(s + n - colon - 1), 1, 65535, &port, "port", err))
            return -1;
        snprintf(t->port, sizeof t->port, "%d", port);
    }
    return 0;
}

int cd_smpp__parse_url(cd_transport *t, const char *url, cd_err *err)
{
    if (url == NULL || strncasecmp(url, "smpp://", 7) != 0)
        return cd_fail(err, CD_EINVAL, "url", "not an smpp:// url");
    const char *s = url + 7;
    size_t auth_len = strcspn(s, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (s[i] == '@')
            at = s + i; /* the last '@': a password may hold a percent-encoded one */
    if (at == NULL)
        return cd_fail(err, CD_EINVAL, "url", "smpp url: needs SYSTEM_ID:PASSWORD@");
    const char *colon = memchr(s, ':', (size_t)(at - s));
    size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
    if (url_part(s, ulen, t->system_id, sizeof t->system_id, "system_id", err) != 0 ||
        (colon && url_part(colon + 1, (size_t)(at - colon - 1), t->password, sizeof t->password,
                           "password", err) != 0))
        return -1;
    if (t->system_id[0] == '\0')
        return cd_fail(err, CD_EINVAL, "url", "smpp url: empty system_id");
    snprintf(t->port, sizeof t->port, "2775");
    if (parse_hostport(t, at + 1, (size_t)(s + auth_len - at - 1), err) != 0)
        return -1;
    const char *q = strchr(s + auth_len, '?');
    if (q == NULL)
        return 0;
    char *query = cd_xstrndup(q + 1, strcspn(q + 1, "#"));
    int rc = parse_query(t, query, err);
    free(query);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Addresses                                                                             */

/* TON/NPI for an address: "+E.164" -> 1/1 without the '+'; up to 8 digits (a short code)
 * -> 3/0; more digits -> 1/1; letters (a sender name, at most 11 as GSM allows) -> 5/0.
 * "" -> 0/0, which lets the SMSC choose a sender; a destination must be a number. */
int cd_smpp__parse_addr(const char *in, bool dest, addr *a)
{
    memset(a, 0, sizeof *a);
    if (in == NULL || in[0] == '\0')
        return dest ? -1 : 0;
    const char *d = in[0] == '+' ? in + 1 : in;
    size_t n = strlen(d);
    bool digits = n > 0 && strspn(d, "0123456789") == n;
    if (in[0] == '+') {
        if (!digits || n > 15)
            return -1;
        a->ton = TON_International, a->npi = NPI_ISDN_E163_E164;
    } else if (digits) {
        if (n >= ADDR_LEN)
            return -1;
        if (n <= 8)
            a->ton = TON_Network_Specific, a->npi = NPI_Unknown;
        else
            a->ton = TON_International, a->npi = NPI_ISDN_E163_E164;
    } else {
        if (dest || n > 11)
            return -1;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] > 0x7E)
                return -1;
        a->ton = TON_Alphanumeric, a->npi = NPI_Unknown;
    }
    memcpy(a->s, d, n + 1);
    return 0;
}

/* An SMPP address as we show it: E.164 numbers (TON 1) get their '+' back. */
void cd_smpp__show_addr(uint8_t ton, const uint8_t *raw, char out[ADDR_LEN + 1])
{
    const char *s = (const char *)raw;
    snprintf(out, ADDR_LEN + 1, "%s%.*s", (ton == TON_International && s[0] != '+') ? "+" : "",
             ADDR_LEN - 1, s);
}
