/* delivery/smtp.h -- one e-mail over SMTP with libcurl (issue 13: CURSOR's double opt-in
 * mail). smtp:// upgrades with STARTTLS when the server offers it, smtps:// is TLS from the
 * first byte; certificates are verified. Blocking: call it from a delivery worker, never
 * from the writer thread or an HTTP thread. Nothing here logs, so the password stays out
 * of every log line. */
#ifndef CD_DELIVERY_SMTP_H
#define CD_DELIVERY_SMTP_H

#include <stdbool.h>

#include "util/err.h"

#define CD_SMTP_TIMEOUT_MS 5000 /* the most one attempt may take, connection included */

/* An account's "smtp" setting (every string borrowed). */
typedef struct cd_smtp_config {
    const char *url;      /* smtp://host[:port] or smtps://host[:port] */
    const char *username; /* NULL or "": no AUTH */
    const char *password;
    const char *from; /* the envelope sender and the From: header */
    long timeout_ms;  /* 0 or above CD_SMTP_TIMEOUT_MS: CD_SMTP_TIMEOUT_MS */
} cd_smtp_config;

/* One plain-text mail (strings borrowed, UTF-8). */
typedef struct cd_smtp_mail {
    const char *to;
    const char *subject; /* ASCII or UTF-8 (then sent RFC 2047 encoded) */
    const char *text;    /* lines end in \n; sent with CRLF */
} cd_smtp_mail;

/* The RFC 5322 message for m (headers, blank line, body; CRLF line ends), malloc'd: the
 * caller frees it. NULL with CD_EINVAL "invalid_mail" when a header value holds CR or LF
 * (header injection) or an address is not one. */
char *cd_smtp_message(const cd_smtp_config *c, const cd_smtp_mail *m, cd_err *err);

/* Sends m. 0 once the server accepted it. -1 with *err: reason "smtp_failed" and a
 * message fit for a client (no password); *permanent (may be NULL) is true when the
 * server refused for good (a 5xx answer), false for a timeout or connection failure. */
int cd_smtp_send(const cd_smtp_config *c, const cd_smtp_mail *m, bool *permanent, cd_err *err);

/* True when s looks like an address (one @, no spaces, controls or <>). */
bool cd_smtp_address_ok(const char *s);

#endif
