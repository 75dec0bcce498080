/* delivery/mail.c -- see mail.h. */
#include "delivery/mail.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/flow.h"
#include "delivery/smtp.h"
#include "util/buf.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

json_t *cd_mail_payload(const char *to, const json_t *flow_ids)
{
    return json_pack("{ss sO}", "to", to, "flows", flow_ids);
}

/* Appends the text and link of each flow of the payload that is still pending; *n counts
 * them. */
static int write_links(cd_db *db, const cd_account *a, const char *public_url, const json_t *flows,
                       cd_buf *b, int *n, cd_err *err)
{
    size_t i;
    json_t *id;
    *n = 0;
    json_array_foreach (flows, i, id) {
        cd_flow f;
        cd_err e;
        if (cd_store_flow_get(db, a->id, json_string_value(id), &f, &e) != 0) {
            if (e.code == CD_ENOTFOUND)
                continue;
            if (err)
                *err = e;
            return -1;
        }
        if (strcmp(f.status, "pending") == 0 && f.expires_ms > cd_now_ms()) {
            char token[160];
            cd_flow_token(a, f.id, token);
            cd_buf_printf(b, "\n%s\n\nConfirm: %s/c/%s\n", f.disclosure ? f.disclosure : "",
                          public_url, token);
            (*n)++;
        }
        cd_flow_clear(&f);
    }
    return 0;
}

/* Reads the account, its smtp setting and the flows' links: *n = 0 when nothing is left
 * to confirm. */
static int prepare(cd_db *db, int64_t account_id, const char *public_url, const json_t *payload,
                   cd_account *a, json_t **settings, cd_buf *body, int *n, cd_err *err)
{
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)account_id);
    if (cd_store_account_get(db, "id", idbuf, a, err) != 0 ||
        cd_store_settings_get(db, account_id, settings, err) != 0)
        return -1;
    cd_buf_printf(body, "Hello,\n\nplease confirm that you agree to receive messages from %s.\n",
                  cd_account_brand(a));
    if (write_links(db, a, public_url, json_object_get(payload, "flows"), body, n, err) != 0)
        return -1;
    cd_buf_puts(body, "\nIf you did not ask for this, ignore this e-mail: nothing will be "
                      "sent to you.\n");
    return 0;
}

int cd_mail_send(cd_store *store, const char *public_url, int64_t account_id, const json_t *payload,
                 bool *permanent, cd_err *err)
{
    cd_account a;
    json_t *settings = NULL;
    cd_buf body = {0};
    int n = 0, rc = -1;
    *permanent = false;
    cd_db *db = cd_store_reader(store);
    if (db == NULL)
        return cd_fail(err, CD_ESTORE, "", "storage unavailable");
    rc = prepare(db, account_id, public_url, payload, &a, &settings, &body, &n, err);
    cd_store_release(store, db); /* not held across the SMTP exchange */
    json_t *smtp = json_object_get(settings, "smtp");
    if (rc == 0 && n > 0 && !json_is_object(smtp))
        rc = cd_fail_reason(err, CD_EINVAL, "smtp_not_configured", "smtp",
                            "the account has no smtp setting");
    if (rc == 0 && n > 0) {
        char subject[160];
        snprintf(subject, sizeof subject, "Please confirm your subscription to %s",
                 cd_account_brand(&a));
        cd_smtp_config c = {
            .url = json_string_value(json_object_get(smtp, "url")),
            .username = json_string_value(json_object_get(smtp, "username")),
            .password = json_string_value(json_object_get(smtp, "password")),
            .from = json_string_value(json_object_get(smtp, "from")),
        };
        cd_smtp_mail m = {.to = json_string_value(json_object_get(payload, "to")),
                          .subject = subject,
                          .text = body.data};
        rc = cd_smtp_send(&c, &m, permanent, err);
    }
    json_decref(settings);
    cd_buf_free(&body);
    return rc;
}

/* ---- waiting for a first attempt ---- */

typedef struct waiter {
    int64_t job_id;
    bool done; /* the first attempt is over: rc and err hold its outcome */
    int rc;
    cd_err err;
    cd_mail_wake_fn fn; /* NULL until someone waits */
    void *arg;
    struct waiter *next;
} waiter;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static waiter *waiters;

/* Unlinks and returns the entry of job_id; NULL when none. Under lock. */
static waiter *take(int64_t job_id)
{
    for (waiter **p = &waiters; *p; p = &(*p)->next)
        if ((*p)->job_id == job_id) {
            waiter *w = *p;
            *p = w->next;
            return w;
        }
    return NULL;
}

void cd_mail_expect(int64_t job_id)
{
    waiter *w = cd_xcalloc(1, sizeof *w);
    w->job_id = job_id;
    pthread_mutex_lock(&lock);
    w->next = waiters;
    waiters = w;
    pthread_mutex_unlock(&lock);
}

void cd_mail_forget(int64_t job_id)
{
    pthread_mutex_lock(&lock);
    free(take(job_id));
    pthread_mutex_unlock(&lock);
}

void cd_mail_wait(int64_t job_id, cd_mail_wake_fn fn, void *arg)
{
    pthread_mutex_lock(&lock);
    waiter *w = take(job_id);
    if (w && !w->done) {
        w->fn = fn;
        w->arg = arg;
        w->next = waiters;
        waiters = w;
        w = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (w == NULL)
        return; /* woken by cd_mail_attempted */
    fn(arg, w->rc, &w->err);
    free(w);
}

void cd_mail_attempted(int64_t job_id, int rc, const cd_err *err)
{
    pthread_mutex_lock(&lock);
    waiter *w = NULL;
    for (waiter *p = waiters; p; p = p->next)
        if (p->job_id == job_id && !p->done)
            w = p;
    if (w) {
        w->done = true;
        w->rc = rc;
        if (rc != 0 && err)
            w->err = *err;
        if (w->fn)
            take(job_id);
        else
            w = NULL; /* kept for cd_mail_wait */
    }
    pthread_mutex_unlock(&lock);
    if (w) { /* called outside the lock: it resumes a connection */
        w->fn(w->arg, w->rc, &w->err);
        free(w);
    }
}

void cd_mail_wake_all(void)
{
    cd_err e;
    cd_fail_reason(&e, CD_EBUSY, "stopping", "", "the server is stopping");
    for (;;) {
        pthread_mutex_lock(&lock);
        waiter *w = NULL;
        for (waiter **p = &waiters; *p; p = &(*p)->next)
            if ((*p)->fn) {
                w = *p;
                *p = w->next;
                break;
            }
        pthread_mutex_unlock(&lock);
        if (w == NULL)
            return;
        w->fn(w->arg, -1, &e);
        free(w);
    }
}
