/* server.h -- cd_server: config + store + router + HTTP; the one long-lived object.
 * Built in main, read-only once serving starts (apart from atomic metrics). */
#ifndef CD_SERVER_H
#define CD_SERVER_H

#include <stdatomic.h>

#include "api/api.h"
#include "config.h"
#include "delivery/jobs.h"
#include "delivery/mail.h"
#include "delivery/outbox.h"
#include "delivery/webhook.h"
#include "http/http.h"
#include "http/router.h"
#include "store/store.h"
#include "util/metrics.h"

typedef struct cd_server {
    cd_config cfg;
    cd_store *store;
    cd_router *router;
    cd_http *http;
    cd_outbox *outbox;
    cd_jobs *jobs;             /* issue 15: the generic job queue (webhooks, mail) */
    cd_webhook *webhook;       /* issue 15: the "webhook" kind's delivery loop */
    cd_mail_ctx mail;          /* issue 13: what the mail jobs read */
    _Atomic(cd_outbox *) kick; /* what the writer's commit hook wakes: set once it exists */
    char public_url[256];      /* no trailing slash */
    cd_api_env api;            /* what the surfaces' handlers see (points into this) */
    cd_hist commit_batch;      /* jobs per commit */
    cd_hist commit_seconds;    /* writer time per batch (SQLite: the sync follows) */
    int64_t started_ms;
} cd_server;

/* Opens the store, registers every surface's routes, starts listening. */
int cd_server_start(cd_server *srv, const cd_config *cfg, cd_err *err);
/* Stops listening, lets deferred requests finish, closes the store. */
void cd_server_stop(cd_server *srv);
/* Appends the Prometheus text of everything the server measures. */
void cd_server_metrics(cd_server *srv, cd_buf *out);

#endif
