/* delivery/mail.c -- see mail.h. */
#include "delivery/mail.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
            /* The flow's disclosure: the text its ledger events hash. */
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
    cd_buf_puts(body, "Hello,\n");
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

/* ---- the job kind ---- */

static void handle(void *arg, const cd_job *job, cd_job_call *call)
{
    const cd_mail_ctx *k = arg;
    cd_job_outcome out = {.result = CD_JOB_DONE};
    cd_err err = {0};
    bool permanent = false;
    json_t *payload = json_loads(job->payload ? job->payload : "", 0, NULL);
    /* A job due at start runs before the links' base is known: wait for it, briefly. */
    for (int i = 0; i < 500 && !atomic_load(&k->ready); i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    if (!atomic_load(&k->ready)) {
        out.result = CD_JOB_RETRY;
        out.retry_in_ms = 1000;
        snprintf(out.error, sizeof out.error, "the server is starting");
    } else if (!json_is_object(payload)) {
        out.result = CD_JOB_FAIL;
        snprintf(out.error, sizeof out.error, "unreadable mail job");
    } else if (cd_mail_send(k->store, k->public_url, job->account_id, payload, &permanent, &err) !=
               0) {
        /* Even a 5xx is retried (issue 13: a 525 leaves the mail queued): a refusal is
         * often the account's settings (a wrong password, a sender not allowed), which the
         * operator may fix; only a mail that can never be written is dead at once. */
        out.result = permanent && !strcmp(err.reason, "invalid_mail") ? CD_JOB_FAIL : CD_JOB_RETRY;
        snprintf(out.error, sizeof out.error, "%s", err.msg);
    }
    json_decref(payload);
    cd_jobs_finish(call, &out);
}

void cd_mail_ready(cd_mail_ctx *ctx)
{
    atomic_store(&ctx->ready, true);
}

/* A confirmation mail is wanted now: the first retries come soon, then less often, for
 * about a day (the flow itself lasts longer, but a mail days late is confusing). */
static const int64_t schedule[] = {5000, 30000, 120000, 600000, 3600000, 6 * 3600000};

int cd_mail_register(cd_jobs *jobs, const cd_mail_ctx *ctx, cd_err *err)
{
    cd_jobs_kind kind = {.name = CD_MAIL_JOB_KIND,
                         .handler = handle,
                         .arg = (void *)(uintptr_t)ctx, /* read only */
                         .schedule_ms = schedule,
                         .nschedule = (int)(sizeof schedule / sizeof schedule[0]),
                         .jitter_pct = 10,
                         .max_inflight = 16};
    return cd_jobs_register(jobs, &kind, err);
}
