/* delivery/webhook.c -- webhook delivery (see webhook.h).
 *
 * The job queue's handler threads look a delivery up (event, endpoint, secret) and hand a
 * signed request to the one thread that runs the libcurl multi loop; that thread reports
 * each answer back with cd_jobs_finish. The outcome is written by the job worker through
 * the writer, together with the delivery's own row (record_outcome), so the delivery and
 * its job never disagree after a commit. */
#include "delivery/webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/events.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

typedef struct xfer {
    struct xfer *next;              /* the incoming list */
    struct xfer *prev_on, *next_on; /* the loop's list of running transfers */
    cd_webhook *w;
    cd_job_call *call;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char url[CD_WEBHOOK_URL_MAX + 12];
    size_t got;    /* answer bytes seen */
    bool refused;  /* the socket was refused: a private address */
    bool overflow; /* the answer passed the cap: reading stopped */
    char errbuf[CURL_ERROR_SIZE];
} xfer;

struct cd_webhook {
    cd_store *store;
    cd_webhook_config cfg;
    long long schedule[CD_JOBS_SCHEDULE_MAX];
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t lock;
    xfer *incoming; /* under lock: handed over by the handler threads */
    xfer *running;  /* the loop's own: in the multi handle */
    bool stop, started;
    atomic_uint_fast64_t n_ok, n_failed, n_refused;
};

/* ---- addresses and URLs ---- */

static bool v4_private(uint32_t a) /* host order */
{
    static const struct {
        uint32_t net, mask;
    } nets[] = {
        {0x00000000, 0xff000000}, /* 0/8 "this network" */
        {0x0a000000, 0xff000000}, /* 10/8 */
        {0x64400000, 0xffc00000}, /* 100.64/10 shared (CGNAT) */
        {0x7f000000, 0xff000000}, /* 127/8 loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local, cloud metadata */
        {0xac100000, 0xfff00000}, /* 172.16/12 */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 protocol assignments */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
        {0xe0000000, 0xf0000000}, /* 224/4 multicast */
        {0xf0000000, 0xf0000000}, /* 240/4 reserved, broadcast */
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if ((a & nets[i].mask) == nets[i].net)
            return true;
    return false;
}

bool cd_webhook_address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_private(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return true; /* nothing else is a webhook */
    const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[15] = {0};
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                          b[15]);
    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
        return true;                                  /* :: and ::1 */
    return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 unique local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
           b[0] == 0xff;                              /* multicast */
}

static int bad_url(cd_err *err, const char *field, const char *reason, const char *msg)
{
    return cd_fail_reason(err, CD_EINVAL, reason, field, "%s", msg);
}

/* Every address the host resolves to must be public. */
static int check_host(const char *host, const char *field, cd_err *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char h[256];
    size_t n = strlen(host);
    /* "[::1]" as curl hands back IPv6 literals */
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
        snprintf(h, sizeof h, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(h, sizeof h, "%s", host);
    if (getaddrinfo(h, NULL, &hints, &res) != 0 || res == NULL)
        return bad_url(err, field, "invalid_url", "the URL's host does not resolve");
    bool priv = false;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        priv |= cd_webhook_address_private(ai->ai_addr);
    freeaddrinfo(res);
    if (priv)
        return bad_url(err, field, "private_address",
                       "the URL points at a loopback, private or link-local address");
    return 0;
}

int cd_webhook_check_url(const char *url, bool allow_private, const char *field, cd_err *err)
{
    if (url == NULL || *url == '\0' || strlen(url) > CD_WEBHOOK_URL_MAX)
        return bad_url(err, field, "invalid_url", "the URL is missing or too long");
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        rc = bad_url(err, field, "invalid_url", "the URL does not parse");
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        rc = bad_url(err, field, "invalid_url", "the URL must be http or https");
    else if (!allow_private)
        rc = check_host(host, field, err);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

void cd_webhook_signature(const char *secret, const char *timestamp, const char *body, char out[68])
{
    cd_buf b = {0};
    cd_buf_printf(&b, "%s.", timestamp);
    cd_buf_puts(&b, body);
    char hex[CD_SHA256_HEX];
    cd_hmac_sha256_hex(secret, strlen(secret), b.data, b.len, hex);
    cd_buf_free(&b);
    snprintf(out, 68, "v1=%s", hex);
}

/* ---- the curl loop ---- */

static size_t on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    xfer *x = arg;
    (void)data;
    x->got += size * nmemb;
    if (x->got > CD_WEBHOOK_ANSWER_CAP) {
        x->overflow = true;
        return 0; /* stops the transfer: its status is already known */
    }
    return size * nmemb;
}

/* At connect time: a name that resolved to a private address (DNS rebinding) gets no
 * socket, whatever it resolved to when the endpoint was set. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    xfer *x = arg;
    (void)purpose;
    if (!x->w->cfg.allow_private && cd_webhook_address_private(&a->addr)) {
        x->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static void xfer_free(xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
}

static void setup_easy(cd_webhook *w, xfer *x)
{
    CURL *c = x->easy = curl_easy_init();
    long timeout = w->cfg.timeout_ms;
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer, not a 2xx */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* no proxy from the environment */
    curl_easy_setopt(c, CURLOPT_USERAGENT, "consentd-webhooks/1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
}

static void finish(cd_webhook *w, xfer *x, CURLcode res)
{
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    cd_job_outcome out = {.result = CD_JOB_RETRY, .code = (int)code};
    bool answered = res == CURLE_OK || (res == CURLE_WRITE_ERROR && x->overflow);
    if (answered && code >= 200 && code < 300) {
        out.result = CD_JOB_DONE;
        atomic_fetch_add(&w->n_ok, 1);
    } else if (x->refused) {
        snprintf(out.error, sizeof out.error, "private_address");
        atomic_fetch_add(&w->n_refused, 1);
    } else if (answered) {
        snprintf(out.error, sizeof out.error, "HTTP %ld", code);
        atomic_fetch_add(&w->n_failed, 1);
    } else {
        snprintf(out.error, sizeof out.error, "%s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
        atomic_fetch_add(&w->n_failed, 1);
    }
    cd_jobs_finish(x->call, &out);
}

static void take_incoming(cd_webhook *w)
{
    pthread_mutex_lock(&w->lock);
    xfer *list = w->incoming;
    w->incoming = NULL;
    pthread_mutex_unlock(&w->lock);
    for (xfer *x = list, *next; x; x = next) {
        next = x->next;
        setup_easy(w, x);
        curl_multi_add_handle(w->multi, x->easy);
        x->prev_on = NULL;
        x->next_on = w->running;
        if (w->running)
            w->running->prev_on = x;
        w->running = x;
    }
}

static void reap(cd_webhook *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(w->multi, m->easy_handle);
        if (x->prev_on)
            x->prev_on->next_on = x->next_on;
        else
            w->running = x->next_on;
        if (x->next_on)
            x->next_on->prev_on = x->prev_on;
        finish(w, x, res);
        xfer_free(x);
    }
}

/* What is still running when the worker stops is failed for now; its job is retried. */
static void abandon_all(cd_webhook *w)
{
    cd_job_outcome out = {.result = CD_JOB_RETRY};
    snprintf(out.error, sizeof out.error, "shutting down");
    for (xfer *x = w->running, *next; x; x = next) {
        next = x->next_on;
        curl_multi_remove_handle(w->multi, x->easy);
        cd_jobs_finish(x->call, &out);
        xfer_free(x);
    }
    w->running = NULL;
    pthread_mutex_lock(&w->lock);
    xfer *list = w->incoming;
    w->incoming = NULL;
    pthread_mutex_unlock(&w->lock);
    for (xfer *x = list, *next; x; x = next) {
        next = x->next;
        cd_jobs_finish(x->call, &out);
        xfer_free(x);
    }
}

static void *loop_main(void *arg)
{
    cd_thread_name("cd-webhook");
    cd_webhook *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool stop = w->stop;
        pthread_mutex_unlock(&w->lock);
        if (stop)
            break;
        take_incoming(w);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        reap(w);
        curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
    }
    abandon_all(w);
    return NULL;
}

/* ---- the job kind ---- */

static void fail_now(cd_job_call *call, cd_job_result r, const char *why)
{
    cd_job_outcome out = {.result = r};
    snprintf(out.error, sizeof out.error, "%s", why);
    cd_jobs_finish(call, &out);
}

/* Builds the signed request for one attempt and hands it to the loop. */
static void send_attempt(cd_webhook *w, const cd_job *job, const cd_webhook_target *t,
                         cd_job_call *call)
{
    bool failover = job->attempts > CD_WEBHOOK_FAILOVER_AFTER && t->url2[0];
    xfer *x = cd_xcalloc(1, sizeof *x);
    x->w = w;
    x->call = call;
    x->body = cd_xstrdup(t->body ? t->body : "");
    snprintf(x->url, sizeof x->url, "%s", failover ? t->url2 : t->url);
    char ts[24], sig[68], line[128];
    snprintf(ts, sizeof ts, "%lld", (long long)(cd_now_ms() / 1000));
    cd_webhook_signature(t->secret, ts, x->body, sig);
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(line, sizeof line, "Consentd-Event-Id: %s", t->d.event_id);
    x->headers = curl_slist_append(x->headers, line);
    snprintf(line, sizeof line, "Consentd-Timestamp: %s", ts);
    x->headers = curl_slist_append(x->headers, line);
    snprintf(line, sizeof line, "Consentd-Signature: %s", sig);
    x->headers = curl_slist_append(x->headers, line);
    x->headers = curl_slist_append(x->headers, "Expect:"); /* no 100-continue round trip */
    pthread_mutex_lock(&w->lock);
    x->next = w->incoming;
    w->incoming = x;
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
}

static void handle(void *arg, const cd_job *job, cd_job_call *call)
{
    cd_webhook *w = arg;
    cd_webhook_target t;
    cd_err err = {0};
    char *end;
    long long id = strtoll(job->ref, &end, 10);
    if (*end != '\0' || id <= 0) {
        fail_now(call, CD_JOB_FAIL, "no such delivery");
        return;
    }
    cd_db *db = cd_store_reader(w->store);
    int rc = db ? cd_store_webhook_target(db, id, &t, &err) : -1;
    cd_store_release(w->store, db);
    if (rc != 0) {
        bool gone = err.code == CD_ENOTFOUND;
        fail_now(call, gone ? CD_JOB_FAIL : CD_JOB_RETRY,
                 gone ? "no such delivery" : "storage error");
        return;
    }
    if (t.deleted || !t.enabled)
        fail_now(call, CD_JOB_FAIL, t.deleted ? "endpoint_deleted" : "endpoint_disabled");
    else if (t.d.job_id != job->id)
        fail_now(call, CD_JOB_DONE, ""); /* replayed meanwhile: the new job delivers */
    else
        send_attempt(w, job, &t, call);
    free(t.body);
}

/* On the writer, in the commit of the job's outcome: the delivery's row follows. */
static int record_outcome(cd_db *db, void *arg, const cd_job *job, const cd_job_outcome *out,
                          const cd_job_verdict *v, cd_err *err)
{
    (void)arg;
    cd_webhook_target t;
    long long id = strtoll(job->ref, NULL, 10);
    cd_err e = {0};
    if (cd_store_webhook_target(db, id, &t, &e) != 0) {
        if (e.code == CD_ESTORE)
            *err = e;
        return e.code == CD_ESTORE ? -1 : 0;
    }
    cd_webhook_delivery d = t.d;
    free(t.body);
    if (d.job_id != job->id)
        return 0; /* a replay owns the delivery now */
    int64_t now = cd_now_ms();
    d.attempts = job->attempts;
    d.last_code = out->code;
    snprintf(d.last_error, sizeof d.last_error, "%s", out->error);
    snprintf(d.last_url, sizeof d.last_url, "%s",
             job->attempts > CD_WEBHOOK_FAILOVER_AFTER && t.url2[0] ? "failover" : "primary");
    bool done = strcmp(v->status, "done") == 0, queued = strcmp(v->status, "queued") == 0;
    snprintf(d.status, sizeof d.status, "%s", done ? "delivered" : queued ? "pending" : "dead");
    d.next_ms = queued ? v->due_ms : 0;
    d.delivered_ms = done ? now : 0;
    d.updated_ms = now;
    return cd_store_webhook_delivery_update(db, &d, err);
}

/* ---- lifetime ---- */

cd_webhook *cd_webhook_start(cd_store *store, cd_jobs *jobs, const cd_webhook_config *cfg,
                             cd_err *err)
{
    cd_webhook *w = cd_xcalloc(1, sizeof *w);
    w->store = store;
    w->cfg = *cfg;
    if (w->cfg.timeout_ms <= 0)
        w->cfg.timeout_ms = CD_WEBHOOK_TIMEOUT_MS;
    if (w->cfg.max_inflight <= 0)
        w->cfg.max_inflight = 512;
    int64_t sched[CD_JOBS_SCHEDULE_MAX];
    int n = cfg->nschedule < CD_JOBS_SCHEDULE_MAX ? cfg->nschedule : CD_JOBS_SCHEDULE_MAX;
    for (int i = 0; i < n; i++)
        sched[i] = cfg->schedule_ms[i];
    cd_jobs_kind k = {.name = CD_EVENTS_JOB_KIND,
                      .handler = handle,
                      .record = record_outcome,
                      .arg = w,
                      .schedule_ms = sched,
                      .nschedule = n,
                      .jitter_pct = 10,
                      /* longer than any attempt: a claim this old was lost in a crash */
                      .lease_ms = 10LL * w->cfg.timeout_ms + 60000,
                      .max_inflight = w->cfg.max_inflight};
    pthread_mutex_init(&w->lock, NULL);
    w->multi = curl_multi_init();
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 256L);
    if (cd_jobs_register(jobs, &k, err) != 0 ||
        pthread_create(&w->thread, NULL, loop_main, w) != 0) {
        if (err->code == 0)
            cd_fail(err, CD_EINTERNAL, "", "cannot start the webhook worker");
        curl_multi_cleanup(w->multi);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    w->started = true;
    return w;
}

void cd_webhook_stop(cd_webhook *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    curl_multi_cleanup(w->multi);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void cd_webhook_metrics(cd_webhook *w, cd_buf *out)
{
    if (w == NULL)
        return;
    cd_buf_printf(out,
                  "# HELP consentd_webhook_answers_total Webhook attempts by outcome.\n"
                  "# TYPE consentd_webhook_answers_total counter\n"
                  "consentd_webhook_answers_total{outcome=\"ok\"} %llu\n"
                  "consentd_webhook_answers_total{outcome=\"failed\"} %llu\n"
                  "consentd_webhook_answers_total{outcome=\"private_address\"} %llu\n",
                  (unsigned long long)atomic_load(&w->n_ok),
                  (unsigned long long)atomic_load(&w->n_failed),
                  (unsigned long long)atomic_load(&w->n_refused));
}
