/* delivery/upkeep.c -- the delivery worker's periodic upkeep (see upkeep.h): pending
 * double opt-ins past their expiry are closed (a reader finds them, one writer job closes
 * up to 64), and Idempotency-Key records older than a week are purged in batches. */
#include "delivery/upkeep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/flow.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define FLOW_SWEEP_MS 1000 /* one indexed query a second */

typedef struct expire_job {
    char ids[64][40];
    int64_t accounts[64];
    int n;
} expire_job;

static int collect_expired(const cd_flow *f, int64_t rowid, void *arg)
{
    expire_job *j = arg;
    (void)rowid;
    if (j->n == 64)
        return 1;
    snprintf(j->ids[j->n], 40, "%s", f->id);
    j->accounts[j->n++] = f->account_id;
    return 0;
}

static int job_expire(cd_db *db, void *arg, cd_err *err)
{
    expire_job *j = arg;
    cd_provenance p = {.surface = "system", .channel = "system", .keyword = "expired"};
    for (int i = 0; i < j->n; i++) {
        cd_flow f;
        if (cd_store_flow_get(db, j->accounts[i], j->ids[i], &f, err) != 0)
            return -1;
        int rc = strcmp(f.status, "pending") == 0
                     ? cd_flow_close(db, j->accounts[i], &f, "expired", &p, err)
                     : 0;
        cd_flow_clear(&f);
        if (rc != 0)
            return -1;
    }
    return 0;
}

#define IDEM_KEEP_MS     (7LL * 24 * 3600 * 1000)
#define IDEM_PURGE_BATCH 1000
#define IDEM_PURGE_ROUND 10 /* batches per round before the worker sees to delivery */

static int job_purge_idem(cd_db *db, void *arg, cd_err *err)
{
    return cd_store_idem_purge(db, cd_now_ms() - IDEM_KEEP_MS, IDEM_PURGE_BATCH, arg, err);
}

/* issue 8 item 11: purges until a batch comes back short, so the purge keeps up with any
 * rate of writes. Each batch is its own short job: between two, the writer commits what
 * requests queued. After a round of batches the worker does its delivery work, and comes
 * back on its next turn (next_purge_ms = now) while there is more. */
static void purge_idem(cd_store *s, cd_upkeep *u, int64_t now)
{
    cd_err err = {0};
    int total = 0, purged = IDEM_PURGE_BATCH;
    u->next_purge_ms = now + 60000;
    for (int i = 0; i < IDEM_PURGE_ROUND && purged == IDEM_PURGE_BATCH; i++) {
        purged = 0;
        if (cd_store_run(s, job_purge_idem, &purged, &err) != 0)
            break;
        total += purged;
    }
    if (purged == IDEM_PURGE_BATCH)
        u->next_purge_ms = now; /* more to do */
    if (total > 0)
        cd_logf("info", "idempotency records purged", "\"count\":%d", total);
}

void cd_upkeep_run(cd_store *s, cd_upkeep *u)
{
    int64_t now = cd_now_ms();
    if (now < u->next_sweep_ms)
        return;
    u->next_sweep_ms = now + FLOW_SWEEP_MS;
    expire_job *j = cd_xcalloc(1, sizeof *j);
    cd_err err = {0};
    cd_db *db = cd_store_reader(s);
    if (db) {
        cd_store_flow_expired(db, now, 64, collect_expired, j, &err);
        cd_store_release(s, db);
    }
    if (j->n > 0 && cd_store_run(s, job_expire, j, &err) == 0)
        cd_logf("info", "double opt-ins expired", "\"count\":%d", j->n);
    if (j->n == 64)
        u->next_sweep_ms = now; /* more to do */
    free(j);
    /* Idempotency records past their week go in small batches, once a minute. */
    if (now >= u->next_purge_ms)
        purge_idem(s, u, now);
}
