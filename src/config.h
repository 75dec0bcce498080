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
} cd_config;

/* Defaults, then the environment (CONSENTD_LISTEN, CONSENTD_DB, CONSENTD_THREADS,
 * CONSENTD_MAX_BODY, CONSENTD_LOG_REQUESTS). */
void cd_config_defaults(cd_config *cfg);
/* "127.0.0.1:8080" -> host and port. */
int cd_config_set_listen(cd_config *cfg, const char *listen);
/* Consumes the common flags (--db, --listen, --threads, --max-body, --quiet) from argv,
 * compacting it; returns the new argc, or -1 with a message on stderr. */
int cd_config_parse_flags(cd_config *cfg, int argc, char **argv);

#endif
