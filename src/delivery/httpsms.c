/* delivery/httpsms.c -- the generic HTTP provider transport: POSTs
 * {"id","to","from","text"} as JSON to the configured URL. A 2xx answer is acceptance
 * (its "id" or "message_id", else ours, becomes the transport id); 4xx other than 408/429
 * is a permanent refusal; anything else is retried by the outbox. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/transport.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/xalloc.h"

#define WINDOW 64

typedef struct item {
    struct item *next;
    char *id, *body;
} item;

struct cd_transport {
    cd_transport_events ev;
    char *url;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    item *head, *tail;
    int queued;
    bool stop;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    cd_buf *b = arg;
    if (b->len + size * n > 65536)
        return 0; /* a provider's answer is small; do not buffer a flood */
    cd_buf_append(b, p, size * n);
    return size * n;
}

static void post_one(cd_transport *t, CURL *curl, item *it)
{
    cd_buf answer = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, t->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, it->body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        json_t *j = answer.data ? json_loads(answer.data, 0, NULL) : NULL;
        const char *rid = json_string_value(json_object_get(j, "id"));
        if (rid == NULL)
            rid = json_string_value(json_object_get(j, "message_id"));
        t->ev.sent(t->ev.arg, it->id, true, rid ? rid : it->id, false, NULL);
        json_decref(j);
    } else {
        char why[96];
        bool permanent =
            rc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429;
        if (rc == CURLE_OK)
            snprintf(why, sizeof why, "provider answered %ld", status);
        else
            snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
        t->ev.sent(t->ev.arg, it->id, false, NULL, permanent, why);
    }
    cd_buf_free(&answer);
}

static void *http_main(void *arg)
{
    cd_thread_name("cd-httpsms");
    cd_transport *t = arg;
    CURL *curl = curl_easy_init();
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        if (t->head == NULL) {
            pthread_cond_wait(&t->cond, &t->lock);
            continue;
        }
        item *it = t->head;
        t->head = it->next;
        if (t->head == NULL)
            t->tail = NULL;
        pthread_mutex_unlock(&t->lock);
        post_one(t, curl, it);
        free(it->id);
        free(it->body);
        free(it);
        pthread_mutex_lock(&t->lock);
        t->queued--;
    }
    pthread_mutex_unlock(&t->lock);
    curl_easy_cleanup(curl);
    return NULL;
}

static cd_transport *http_open(const char *url, const cd_transport_events *events, cd_err *err)
{
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        cd_fail(err, CD_EINVAL, "http_sms_url", "the SMS provider URL must be http(s)://");
        return NULL;
    }
    cd_transport *t = cd_xcalloc(1, sizeof *t);
    t->ev = *events;
    t->url = cd_xstrdup(url);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (pthread_create(&t->thread, NULL, http_main, t) != 0) {
        free(t->url);
        free(t);
        cd_fail(err, CD_EINTERNAL, "", "cannot start the HTTP transport");
        return NULL;
    }
    return t;
}

static int http_submit(cd_transport *t, const cd_sms *m)
{
    json_t *j =
        json_pack("{ss ss ss ss}", "id", m->id, "to", m->to, "from", m->from, "text", m->text);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (body == NULL)
        return -1;
    pthread_mutex_lock(&t->lock);
    if (t->queued >= WINDOW || t->stop) {
        pthread_mutex_unlock(&t->lock);
        free(body);
        return -1;
    }
    item *it = cd_xcalloc(1, sizeof *it);
    it->id = cd_xstrdup(m->id);
    it->body = body;
    if (t->tail)
        t->tail->next = it;
    else
        t->head = it;
    t->tail = it;
    t->queued++;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static bool http_ready(cd_transport *t)
{
    pthread_mutex_lock(&t->lock);
    bool ok = t->queued < WINDOW;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

static void http_close(cd_transport *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    while (t->head) {
        item *it = t->head;
        t->head = it->next;
        free(it->id);
        free(it->body);
        free(it);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t->url);
    free(t);
}

const struct cd_transport_ops cd_transport_http = {
    .name = "http",
    .open = http_open,
    .submit = http_submit,
    .ready = http_ready,
    .close = http_close,
};
