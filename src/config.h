/* config.h -- flags, CONSENTD_* environment variables -> one immutable cd_config. */
#ifndef CD_CONFIG_H
#define CD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cd_config {
    char host[64];
    int port;
    char db[1024];
    int threads;
    size_t max_body;
    bool log_requests;
    char transport[16];        /* default transport: "sink", "smpp", "http" */
    char smpp_url[512];        /* smpp://SYSTEM_ID:PASSWORD@HOST:PORT?window=10; "" = none */
    char http_sms_url[512];    /* the HTTP provider; "" = none */
    char public_url[256];      /* base of links we hand out (double opt-in confirmation) */
    int writer_queue;          /* write jobs that may wait for the writer; 0 = no bound */
    int writer_deadline_ms;    /* how long one may wait before it is refused; 0 = forever */
    char ledger_key[1024];     /* the file with the key that signs ledger heads; "" = default */
    unsigned max_connections;  /* open HTTP connections; capped below the open-file limit */
    unsigned max_conns_per_ip; /* open HTTP connections from one address; 0 = no limit */
    unsigned request_timeout;  /* seconds for a request's head and body (408); 0 = none */
    int public_limit;          /* requests per client address on public routes; 0 = none */
    int public_window_s;       /* ... per this many seconds */
    /* issue 14 (and the webhooks issue): callback URLs may point at loopback or private
     * addresses (--allow-private-webhooks, CONSENTD_ALLOW_PRIVATE_WEBHOOKS=1). */
    bool allow_private_webhooks;
    /* issue 15: delays between webhook delivery attempts (--webhook-schedule,
     * CONSENTD_WEBHOOK_SCHEDULE: seconds, comma-separated; fractions allowed). */
    long long webhook_schedule_ms[32];
    int webhook_schedule_n;
} cd_config;

/* Defaults, then the environment (CONSENTD_LISTEN, CONSENTD_DB, CONSENTD_THREADS,
 * CONSENTD_MAX_BODY, CONSENTD_LOG_REQUESTS, CONSENTD_TRANSPORT, CONSENTD_SMPP_URL,
 * CONSENTD_HTTP_SMS_URL, CONSENTD_PUBLIC_URL, CONSENTD_WRITER_QUEUE,
 * CONSENTD_WRITER_DEADLINE_MS, CONSENTD_LEDGER_KEY, CONSENTD_MAX_CONNECTIONS,
 * CONSENTD_MAX_CONNS_PER_IP, CONSENTD_REQUEST_TIMEOUT, CONSENTD_PUBLIC_RATE_LIMIT,
 * CONSENTD_WEBHOOK_SCHEDULE, CONSENTD_ALLOW_PRIVATE_WEBHOOKS). */
void cd_config_defaults(cd_config *cfg);
/* "127.0.0.1:8080" -> host and port. */
int cd_config_set_listen(cd_config *cfg, const char *listen);
/* "LIMIT/SECONDS" (e.g. "600/60") or "0" (none) -> public_limit/public_window_s; -1 if bad. */
int cd_config_set_public_limit(cd_config *cfg, const char *v);
/* Consumes the common flags (--db, --listen, --threads, --max-body, --quiet, --transport,
 * --smpp, --http-sms, --public-url, --writer-queue, --writer-deadline-ms, --ledger-key,
 * --max-connections, --max-conns-per-ip, --request-timeout, --public-rate-limit,
 * --webhook-schedule, --allow-private-webhooks) from argv,
 * compacting it; returns the new argc, or -1 with a message on stderr. */
int cd_config_parse_flags(cd_config *cfg, int argc, char **argv);
/* The ledger key file: --ledger-key, else ledger.key in the SQLite database's directory
 * (./data/ledger.key by default), else ./data/ledger.key. */
/* issue 15: "5,30,120" (seconds, fractions allowed) into cfg's webhook schedule; -1 when
 * it is not 1..32 non-negative numbers of at most a week each. */
int cd_config_set_webhook_schedule(cd_config *cfg, const char *list);
void cd_config_ledger_key_path(const cd_config *cfg, char *out, size_t n);

#endif
