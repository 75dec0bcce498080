/* delivery/smtp.c -- see smtp.h. One libcurl easy handle per mail: mails are rare (one per
 * double opt-in), so a connection cache would only hold sockets open. */
#include "delivery/smtp.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/crypto.h"
#include "util/timeutil.h"

bool cd_smtp_address_ok(const char *s)
{
    const char *at = s ? strchr(s, '@') : NULL;
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') || strlen(s) > 254)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("<>()[],;:\\\"", *p))
            return false;
    return true;
}

static bool header_ok(const char *s)
{
    return s && strpbrk(s, "\r\n") == NULL;
}

static bool ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* A UTF-8 subject as one RFC 2047 encoded word (base64), ASCII as it is. */
static void put_subject(cd_buf *b, const char *subject)
{
    if (ascii(subject)) {
        cd_buf_printf(b, "Subject: %s\r\n", subject);
        return;
    }
    size_t n = strlen(subject);
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *enc = malloc(cap);
    if (enc == NULL)
        return;
    sodium_bin2base64(enc, cap, (const unsigned char *)subject, n, sodium_base64_VARIANT_ORIGINAL);
    cd_buf_printf(b, "Subject: =?UTF-8?B?%s?=\r\n", enc);
    free(enc);
}

/* The body with every line ending made CRLF (SMTP's), and a final line end. */
static void put_body(cd_buf *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\r')
            continue;
        if (*p == '\n')
            cd_buf_puts(b, "\r\n");
        else
            cd_buf_append(b, p, 1);
    }
    if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
        cd_buf_puts(b, "\r\n");
}

char *cd_smtp_message(const cd_smtp_config *c, const cd_smtp_mail *m, cd_err *err)
{
    if (!cd_smtp_address_ok(c->from) || !cd_smtp_address_ok(m->to) || !header_ok(m->subject)) {
        cd_fail_reason(err, CD_EINVAL, "invalid_mail", "", "the mail has an invalid header");
        return NULL;
    }
    char date[64], id[33];
    time_t now = (time_t)(cd_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    cd_random_hex(id, 16);
    const char *domain = strchr(c->from, '@') + 1;
    cd_buf b = {0};
    cd_buf_printf(&b, "Date: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nMessage-ID: <%s@%s>\r\n", date,
                  c->from, m->to, id, domain);
    put_subject(&b, m->subject);
    cd_buf_puts(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n");
    put_body(&b, m->text ? m->text : "");
    return cd_buf_take(&b);
}

typedef struct upload {
    const char *data;
    size_t len, off;
} upload;

static size_t read_part(char *out, size_t size, size_t n, void *arg)
{
    upload *u = arg;
    size_t want = size * n, left = u->len - u->off;
    size_t k = left < want ? left : want;
    memcpy(out, u->data + u->off, k);
    u->off += k;
    return k;
}

/* The options of one transfer; TLS is STARTTLS when offered (smtp://), or implicit
 * (smtps://, chosen by libcurl from the scheme). */
static void set_options(CURL *curl, const cd_smtp_config *c, struct curl_slist *rcpt, upload *u)
{
    long t = c->timeout_ms > 0 && c->timeout_ms <= CD_SMTP_TIMEOUT_MS ? c->timeout_ms
                                                                      : CD_SMTP_TIMEOUT_MS;
    curl_easy_setopt(curl, CURLOPT_URL, c->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, t);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, t);
    if (c->username && *c->username) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, c->username);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, c->password ? c->password : "");
    }
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, c->from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_part);
    curl_easy_setopt(curl, CURLOPT_READDATA, u);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
}

int cd_smtp_send(const cd_smtp_config *c, const cd_smtp_mail *m, bool *permanent, cd_err *err)
{
    if (permanent)
        *permanent = false;
    char *msg = cd_smtp_message(c, m, err);
    if (msg == NULL) {
        if (permanent)
            *permanent = true;
        return -1;
    }
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        free(msg);
        return cd_fail_reason(err, CD_EINTERNAL, "smtp_failed", "", "no SMTP client");
    }
    char to[300];
    snprintf(to, sizeof to, "<%s>", m->to);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    upload u = {.data = msg, .len = strlen(msg)};
    set_options(curl, c, rcpt, &u);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    free(msg);
    if (rc == CURLE_OK)
        return 0;
    if (permanent)
        *permanent = code >= 500 && code < 600;
    /* curl's text names the failure, never the credentials. */
    if (code > 0)
        return cd_fail_reason(err, CD_EINTERNAL, "smtp_failed", "", "SMTP error %ld: %s", code,
                              curl_easy_strerror(rc));
    return cd_fail_reason(err, CD_EINTERNAL, "smtp_failed", "", "SMTP error: %s",
                          curl_easy_strerror(rc));
}
