#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int cd_config_set_listen(cd_config *cfg, const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof cfg->host)
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || colon[1] == '\0')
        return -1;
    snprintf(cfg->host, sizeof cfg->host, "%.*s", (int)(colon - listen), listen);
    cfg->port = (int)port;
    return 0;
}

static void env_str(const char *name, char *dst, size_t n)
{
    const char *v = getenv(name);
    if (v && *v)
        snprintf(dst, n, "%s", v);
}

/* A whole number of digits only (no sign, no spaces) from min to max, or -1. */
static long long parse_num(const char *v, long long min, long long max)
{
    if (v == NULL || *v < '0' || *v > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end != '\0' || errno == ERANGE || n > (unsigned long long)max || (long long)n < min)
        return -1;
    return (long long)n;
}

#define UINT_MAX_FLAG  1000000  /* connections, seconds: a bigger figure is a typo */
#define COUNT_MAX_FLAG 10000000 /* writer queue length, milliseconds */

/* "0".."10000000" -> 0 and the value, anything else -> -1. */
static int parse_count(const char *v, int *out)
{
    long long n = parse_num(v, 0, COUNT_MAX_FLAG);
    if (n < 0)
        return -1;
    *out = (int)n;
    return 0;
}

/* "LIMIT/SECONDS" (or "0": none) -> the public routes' limit per client address. */
int cd_config_set_public_limit(cd_config *cfg, const char *v)
{
    if (strcmp(v, "0") == 0) {
        cfg->public_limit = cfg->public_window_s = 0;
        return 0;
    }
    char limit[16];
    const char *slash = strchr(v, '/');
    if (slash == NULL || (size_t)(slash - v) >= sizeof limit)
        return -1;
    snprintf(limit, sizeof limit, "%.*s", (int)(slash - v), v);
    long long n = parse_num(limit, 1, UINT_MAX_FLAG), w = parse_num(slash + 1, 1, 86400);
    if (n < 0 || w < 0)
        return -1;
    cfg->public_limit = (int)n;
    cfg->public_window_s = (int)w;
    return 0;
}

static void env_uint(const char *name, unsigned *dst, unsigned min)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return;
    long long n = parse_num(v, min, UINT_MAX_FLAG);
    if (n < 0)
        fprintf(stderr, "consentd: ignoring invalid %s=%s\n", name, v);
    else
        *dst = (unsigned)n;
}

/* --flag N into *dst; 0 when it was another flag, -1 (with a message) when N is bad. */
static int flag_uint(const char *flag, const char *v, unsigned *dst, unsigned min)
{
    long long n = parse_num(v, min, UINT_MAX_FLAG);
    if (n < 0) {
        fprintf(stderr, "consentd: %s must be a whole number from %u to 1000000\n", flag, min);
        return -1;
    }
    *dst = (unsigned)n;
    return 0;
}

void cd_config_defaults(cd_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
    cfg->port = 8080;
    snprintf(cfg->db, sizeof cfg->db, "sqlite:./data/consentd.db");
    cfg->threads = 2;
    cfg->max_body = 1024 * 1024;
    cfg->log_requests = true;
    const char *listen = getenv("CONSENTD_LISTEN");
    if (listen && cd_config_set_listen(cfg, listen) != 0)
        fprintf(stderr, "consentd: ignoring invalid CONSENTD_LISTEN=%s\n", listen);
    env_str("CONSENTD_DB", cfg->db, sizeof cfg->db);
    const char *v = getenv("CONSENTD_THREADS");
    if (v && atoi(v) > 0 && atoi(v) <= 64)
        cfg->threads = atoi(v);
    v = getenv("CONSENTD_MAX_BODY");
    if (v && atol(v) > 0)
        cfg->max_body = (size_t)atol(v);
    snprintf(cfg->transport, sizeof cfg->transport, "sink");
    env_str("CONSENTD_TRANSPORT", cfg->transport, sizeof cfg->transport);
    env_str("CONSENTD_SMPP_URL", cfg->smpp_url, sizeof cfg->smpp_url);
    env_str("CONSENTD_HTTP_SMS_URL", cfg->http_sms_url, sizeof cfg->http_sms_url);
    env_str("CONSENTD_PUBLIC_URL", cfg->public_url, sizeof cfg->public_url);
    /* issue 15: about a day of webhook retries */
    cd_config_set_webhook_schedule(cfg, "5,30,120,600,1800,3600,7200,14400,28800,43200");
    if ((v = getenv("CONSENTD_WEBHOOK_SCHEDULE")) && cd_config_set_webhook_schedule(cfg, v) != 0)
        fprintf(stderr, "consentd: ignoring invalid CONSENTD_WEBHOOK_SCHEDULE=%s\n", v);
    cfg->max_connections = 4000;
    cfg->max_conns_per_ip = 256;
    cfg->request_timeout = 30;
    env_uint("CONSENTD_MAX_CONNECTIONS", &cfg->max_connections, 1);
    env_uint("CONSENTD_MAX_CONNS_PER_IP", &cfg->max_conns_per_ip, 0);
    env_uint("CONSENTD_REQUEST_TIMEOUT", &cfg->request_timeout, 0);
    cfg->public_limit = 600; /* issue 9 part 5: a person or a scraper never needs more */
    cfg->public_window_s = 60;
    v = getenv("CONSENTD_PUBLIC_RATE_LIMIT");
    if (v && *v && cd_config_set_public_limit(cfg, v) != 0)
        fprintf(stderr, "consentd: ignoring invalid CONSENTD_PUBLIC_RATE_LIMIT=%s\n", v);
    /* issue 8 item 7: the writer's backpressure (store.h cd_store_set_limits). */
    cfg->writer_queue = CD_STORE_QUEUE_DEFAULT;
    cfg->writer_deadline_ms = CD_STORE_DEADLINE_MS_DEFAULT;
    if ((v = getenv("CONSENTD_WRITER_QUEUE")) && parse_count(v, &cfg->writer_queue) != 0)
        fprintf(stderr, "consentd: ignoring invalid CONSENTD_WRITER_QUEUE=%s\n", v);
    v = getenv("CONSENTD_WRITER_DEADLINE_MS");
    if (v && parse_count(v, &cfg->writer_deadline_ms) != 0)
        fprintf(stderr, "consentd: ignoring invalid CONSENTD_WRITER_DEADLINE_MS=%s\n", v);
    env_str("CONSENTD_LEDGER_KEY", cfg->ledger_key, sizeof cfg->ledger_key);
    v = getenv("CONSENTD_ALLOW_PRIVATE_WEBHOOKS"); /* issue 14 */
    cfg->allow_private_webhooks = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
    v = getenv("CONSENTD_LOG_REQUESTS");
    if (v && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0))
        cfg->log_requests = false;
}

static int bad_count(const char *flag)
{
    fprintf(stderr, "consentd: %s wants a number 0..10000000 (0 = off)\n", flag);
    return -1;
}

/* Accepts "--flag value" and "--flag=value". */
static const char *flag_value(const char *flag, int *i, int argc, char **argv)
{
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int cd_config_parse_flags(cd_config *cfg, int argc, char **argv)
{
    int out = 0;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if ((v = flag_value("--db", &i, argc, argv))) {
            /* A bare path means SQLite. */
            if (strchr(v, ':') == NULL || strncmp(v, "./", 2) == 0 || v[0] == '/')
                snprintf(cfg->db, sizeof cfg->db, "sqlite:%s", v);
            else
                snprintf(cfg->db, sizeof cfg->db, "%s", v);
        } else if ((v = flag_value("--listen", &i, argc, argv))) {
            if (cd_config_set_listen(cfg, v) != 0) {
                fprintf(stderr, "consentd: --listen wants HOST:PORT, got %s\n", v);
                return -1;
            }
        } else if ((v = flag_value("--threads", &i, argc, argv))) {
            cfg->threads = atoi(v);
            if (cfg->threads < 1 || cfg->threads > 64) {
                fprintf(stderr, "consentd: --threads must be 1..64\n");
                return -1;
            }
        } else if ((v = flag_value("--max-body", &i, argc, argv))) {
            cfg->max_body = (size_t)strtoull(v, NULL, 10);
            if (cfg->max_body == 0) {
                fprintf(stderr, "consentd: --max-body must be a positive number of bytes\n");
                return -1;
            }
        } else if ((v = flag_value("--transport", &i, argc, argv))) {
            if (strcmp(v, "sink") && strcmp(v, "smpp") && strcmp(v, "http")) {
                fprintf(stderr, "consentd: --transport is sink, smpp or http\n");
                return -1;
            }
            snprintf(cfg->transport, sizeof cfg->transport, "%s", v);
        } else if ((v = flag_value("--smpp", &i, argc, argv))) {
            snprintf(cfg->smpp_url, sizeof cfg->smpp_url, "%s", v);
        } else if ((v = flag_value("--http-sms", &i, argc, argv))) {
            snprintf(cfg->http_sms_url, sizeof cfg->http_sms_url, "%s", v);
        } else if ((v = flag_value("--public-url", &i, argc, argv))) {
            snprintf(cfg->public_url, sizeof cfg->public_url, "%s", v);
        } else if ((v = flag_value("--webhook-schedule", &i, argc, argv))) { /* issue 15 */
            if (cd_config_set_webhook_schedule(cfg, v) != 0) {
                fprintf(stderr, "consentd: --webhook-schedule wants 1 to 32 comma-separated "
                                "delays in seconds, e.g. 5,30,120\n");
                return -1;
            }
        } else if ((v = flag_value("--max-connections", &i, argc, argv))) {
            if (flag_uint("--max-connections", v, &cfg->max_connections, 1) != 0)
                return -1;
        } else if ((v = flag_value("--max-conns-per-ip", &i, argc, argv))) {
            if (flag_uint("--max-conns-per-ip", v, &cfg->max_conns_per_ip, 0) != 0)
                return -1;
        } else if ((v = flag_value("--request-timeout", &i, argc, argv))) {
            if (flag_uint("--request-timeout", v, &cfg->request_timeout, 0) != 0)
                return -1;
        } else if ((v = flag_value("--public-rate-limit", &i, argc, argv))) {
            if (cd_config_set_public_limit(cfg, v) != 0) {
                fprintf(stderr, "consentd: --public-rate-limit wants LIMIT/SECONDS or 0\n");
                return -1;
            }
        } else if ((v = flag_value("--writer-queue", &i, argc, argv))) {
            if (parse_count(v, &cfg->writer_queue) != 0)
                return bad_count("--writer-queue");
        } else if ((v = flag_value("--writer-deadline-ms", &i, argc, argv))) {
            if (parse_count(v, &cfg->writer_deadline_ms) != 0)
                return bad_count("--writer-deadline-ms");
        } else if ((v = flag_value("--ledger-key", &i, argc, argv))) {
            snprintf(cfg->ledger_key, sizeof cfg->ledger_key, "%s", v);
        } else if (strcmp(argv[i], "--allow-private-webhooks") == 0) { /* issue 14 */
            cfg->allow_private_webhooks = true;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            cfg->log_requests = false;
        } else {
            argv[out++] = argv[i];
        }
    }
    return out;
}

int cd_config_set_webhook_schedule(cd_config *cfg, const char *list)
{
    long long ms[32];
    int n = 0;
    const char *p = list;
    while (p && *p) {
        char *end;
        double s = strtod(p, &end);
        if (end == p || n == 32 || !(s >= 0 && s <= 7 * 86400.0) || (*end && *end != ',') ||
            (*end == ',' && end[1] == '\0'))
            return -1;
        ms[n++] = (long long)(s * 1000.0 + 0.5);
        p = *end ? end + 1 : end;
    }
    if (n == 0)
        return -1;
    memcpy(cfg->webhook_schedule_ms, ms, sizeof ms[0] * (size_t)n);
    cfg->webhook_schedule_n = n;
    return 0;
}

void cd_config_ledger_key_path(const cd_config *cfg, char *out, size_t n)
{
    if (cfg->ledger_key[0]) {
        snprintf(out, n, "%s", cfg->ledger_key);
        return;
    }
    /* Next to the database, so that one data directory holds both (and a backup of it
     * that should not hold the key can leave the file out). */
    const char *path = strncmp(cfg->db, "sqlite:", 7) == 0 ? cfg->db + 7 : "./data/x";
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, n, "ledger.key");
    else
        snprintf(out, n, "%.*s/ledger.key", (int)(slash - path), path);
}
