#include "server.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "api/api.h"
#include "core/ledger.h"
#include "core/profile.h"
#include "util/log.h"
#include "util/timeutil.h"

static void metrics(void *arg, cd_buf *out)
{
    cd_server_metrics(arg, out);
}

static void on_commit(void *arg, int batch, double seconds, unsigned wrote)
{
    cd_server *srv = arg;
    cd_hist_observe(&srv->commit_batch, batch);
    cd_hist_observe(&srv->commit_seconds, seconds);
    /* A commit that wrote messages may have queued one: let the delivery worker look; one
     * that wrote jobs (issue 15), the job worker. The others wake neither: both also poll,
     * and an Omeda submission, say, writes neither table. */
    if (wrote & CD_STORE_WROTE_MESSAGES)
        cd_outbox_kick(atomic_load(&srv->kick));
    if (wrote & CD_STORE_WROTE_JOBS)
        cd_jobs_kick(srv->jobs);
}

/* issue 15: every kind of job the server runs, registered before the worker starts (one
 * line per kind: webhook deliveries, CURSOR's mail). */
static int jobs_start(cd_server *srv, cd_err *err)
{
    const cd_config *cfg = &srv->cfg;
    cd_webhook_config wc = {.schedule_ms = cfg->webhook_schedule_ms,
                            .nschedule = cfg->webhook_schedule_n,
                            .allow_private = cfg->allow_private_webhooks};
    srv->webhook = cd_webhook_start(srv->store, srv->jobs, &wc, err);
    if (srv->webhook == NULL)
        return -1;
    srv->mail.store = srv->store;
    srv->mail.public_url = srv->public_url;
    if (cd_mail_register(srv->jobs, &srv->mail, err) != 0) /* issue 13 */
        return -1;
    return cd_jobs_start(srv->jobs, err);
}

/* The job worker first (it waits a little for attempts in flight), then what runs them. */
static void jobs_halt(cd_server *srv)
{
    cd_jobs_halt(srv->jobs);
    cd_webhook_stop(srv->webhook);
    srv->webhook = NULL;
}

/* Open files kept out of the HTTP connection limit: SQLite (database, WAL and shared
 * memory per pooled connection), SMPP and provider sockets, logs, the listening socket. */
#define FD_RESERVE 128

/* Raises the soft open-file limit to the hard one and returns the connection limit that
 * fits under it (issue 8 item 6): past the limit, accept() would fail with EMFILE for
 * everyone, and so would SQLite's opens, instead of the excess connections being refused. */
static unsigned connection_limit(unsigned wanted)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return wanted;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)wanted + 2 * FD_RESERVE)
        return wanted;
    unsigned fit = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)rl.rlim_cur - FD_RESERVE
                                                : (unsigned)rl.rlim_cur / 2;
    cd_logf("warn", "connection limit lowered to fit the open-file limit",
            "\"wanted\":%u,\"limit\":%u,\"nofile\":%llu", wanted, fit,
            (unsigned long long)rl.rlim_cur);
    return fit > 0 ? fit : 1;
}

static void set_public_url(cd_server *srv, const cd_config *cfg)
{
    if (cfg->public_url[0])
        snprintf(srv->public_url, sizeof srv->public_url, "%s", cfg->public_url);
    else
        snprintf(srv->public_url, sizeof srv->public_url, "http://%s:%d", cfg->host,
                 cd_http_port(srv->http));
    size_t n = strlen(srv->public_url);
    if (n > 0 && srv->public_url[n - 1] == '/')
        srv->public_url[n - 1] = '\0';
}

/* issue 8 item 12: the key that signs ledger heads, kept outside the database. A new key
 * (first start, or the old one was removed) signs the heads as they are now: from then
 * on, rewriting the ledger without the key is detected. */
static int ledger_key_setup(cd_store *store, const cd_config *cfg, cd_err *err)
{
    char path[1100];
    int n;
    cd_config_ledger_key_path(cfg, path, sizeof path);
    if (cd_ledger_key_use(store, path, true, &n, err) != 0)
        return -1;
    if (n >= 0)
        cd_logf("warn", "ledger_key_created", "\"path\":\"%s\",\"heads_signed\":%d", path, n);
    return 0;
}

int cd_server_start(cd_server *srv, const cd_config *cfg, cd_err *err)
{
    static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    static const double sec_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01,
                                        0.02,   0.05,  0.1,   0.25,  1};
    memset(srv, 0, sizeof *srv);
    srv->cfg = *cfg;
    srv->started_ms = cd_now_ms();
    cd_hist_init(&srv->commit_batch, batch_bounds, (int)(sizeof batch_bounds / sizeof(double)));
    cd_hist_init(&srv->commit_seconds, sec_bounds, (int)(sizeof sec_bounds / sizeof(double)));
    srv->store = cd_store_open(cfg->db, err);
    if (srv->store == NULL)
        return -1;
    if (cd_store_serve_lock(srv->store, err) != 0) { /* before anything runs: the outbox's
                                                      * first act is to requeue 'sending' */
        cd_store_close(srv->store);
        return -1;
    }
    cd_store_set_limits(srv->store, cfg->writer_queue, cfg->writer_deadline_ms);
    /* issue 15: created (not started) before the commit hook that kicks it is in place */
    srv->jobs = cd_jobs_new(srv->store, NULL);
    /* The hook is in place before any job is submitted (the submit's lock orders it before
     * the writer reads it); the outbox it kicks is published atomically once it exists. */
    cd_store_on_commit(srv->store, on_commit, srv);
    if (ledger_key_setup(srv->store, cfg, err) != 0 || jobs_start(srv, err) != 0) {
        jobs_halt(srv);
        cd_store_close(srv->store);
        cd_jobs_stop(srv->jobs);
        return -1;
    }
    cd_outbox_config oc = {.default_transport = cfg->transport,
                           .smpp_url = cfg->smpp_url[0] ? cfg->smpp_url : NULL,
                           .http_url = cfg->http_sms_url[0] ? cfg->http_sms_url : NULL};
    srv->outbox = cd_outbox_start(srv->store, &oc, err);
    if (srv->outbox == NULL) {
        jobs_halt(srv);
        cd_store_close(srv->store);
        cd_jobs_stop(srv->jobs);
        return -1;
    }
    atomic_store(&srv->kick, srv->outbox);
    cd_profile_set_allow_private(cfg->allow_private_webhooks); /* issue 14 */
    srv->router = cd_router_new();
    /* public_url is filled in once the port is known, before the first request. */
    srv->api = (cd_api_env){.store = srv->store,
                            .public_url = srv->public_url,
                            .metrics = metrics,
                            .metrics_arg = srv,
                            .limits = cd_api_limits_new(),
                            .jobs = srv->jobs,
                            .allow_private_webhooks = cfg->allow_private_webhooks};
    cd_api_limits_set_public(srv->api.limits, cfg->public_limit, cfg->public_window_s);
    cd_api_routes(srv->router, &srv->api);
    cd_http_config hc = {.host = cfg->host,
                         .port = cfg->port,
                         .threads = cfg->threads,
                         .max_body = cfg->max_body,
                         .log_requests = cfg->log_requests,
                         .max_connections = connection_limit(cfg->max_connections),
                         .max_per_ip = cfg->max_conns_per_ip,
                         .request_timeout = cfg->request_timeout};
    /* Bound first, so that public_url (which may need the port) is written before any
     * HTTP thread can read it (issue 8 item 13). */
    srv->http = cd_http_bind(&hc, cd_router_dispatcher(srv->router), err);
    if (srv->http != NULL) {
        set_public_url(srv, cfg);
        cd_mail_ready(&srv->mail); /* issue 13: mails carry links to public_url */
        if (cd_http_serve(srv->http, err) != 0) {
            cd_http_stop(srv->http);
            srv->http = NULL;
        }
    }
    if (srv->http == NULL) {
        cd_router_free(srv->router);
        cd_api_limits_free(srv->api.limits);
        srv->api.limits = NULL;
        jobs_halt(srv);
        cd_outbox_halt(srv->outbox);
        cd_store_close(srv->store);
        atomic_store(&srv->kick, NULL);
        cd_outbox_stop(srv->outbox);
        cd_jobs_stop(srv->jobs);
        return -1;
    }
    return 0;
}

/* The order matters (issue 8 item 7):
 * 1. HTTP first: it refuses new requests, lets the writer finish what is queued for up to
 *    a grace period, answers 503 to the requests still waiting (a stuck writer cannot keep
 *    a connection suspended, which would make MHD abort), then closes every connection.
 *    The store is still open, so the writer can run and hand back the jobs meanwhile.
 * 2. The job worker and the delivery worker, which write through the store (the job
 *    worker waits a few seconds for the attempts in flight).
 * 3. The store: closing it joins the writer, which skips the abandoned jobs and frees
 *    them; no commit hook runs after this. */
void cd_server_stop(cd_server *srv)
{
    cd_http_stop(srv->http);
    jobs_halt(srv);
    /* The worker writes through the store, so it halts before the store closes; the
     * writer may still kick it until then, which is why it is freed only afterwards. */
    cd_outbox_halt(srv->outbox);
    cd_store_close(srv->store); /* joins the writer: no commit hook runs after this */
    atomic_store(&srv->kick, NULL);
    cd_outbox_stop(srv->outbox);
    srv->outbox = NULL;
    cd_jobs_stop(srv->jobs); /* the commit hook kicked it until the store closed */
    srv->jobs = NULL;
    cd_router_free(srv->router);
    cd_api_limits_free(srv->api.limits); /* no request runs any more */
    srv->api.limits = NULL;
    srv->http = NULL;
    srv->store = NULL;
    srv->router = NULL;
}

void cd_server_metrics(cd_server *srv, cd_buf *out)
{
    cd_router_metrics(srv->router, out);
    cd_http_metrics(srv->http, out);
    cd_hist_write(&srv->commit_batch, out, "consentd_commit_batch_size",
                  "Write jobs committed together in one transaction.");
    cd_hist_write(&srv->commit_seconds, out, "consentd_commit_seconds",
                  "Writer time per batch, BEGIN to COMMIT (on SQLite the sync that makes "
                  "it durable follows on the syncer thread).");
    cd_outbox_metrics(srv->outbox, out);
    cd_jobs_metrics(srv->jobs, out);
    cd_webhook_metrics(srv->webhook, out);
    cd_buf_printf(out, "# TYPE consentd_uptime_seconds gauge\nconsentd_uptime_seconds %.3f\n",
                  (double)(cd_now_ms() - srv->started_ms) / 1000.0);
}
