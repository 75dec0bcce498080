/* delivery/jobs.c -- the generic job queue's worker (see jobs.h for the guarantees).
 *
 * One loop thread claims due jobs of every kind through the writer, hands them to the
 * handler threads, and writes the outcomes that handlers report (cd_jobs_finish, from any
 * thread) in batches through the writer (group commit), like delivery/outbox.c does with
 * transport reports. A batch that fails to commit is kept for the next round. */
#include "delivery/jobs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/crypto.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define MAX_KINDS      8
#define CLAIM_BATCH    256
#define LEASE_CHECK_MS 1000
#define POLL_MS        200

struct cd_job_call {
    struct cd_job_call *next;
    cd_jobs *q;
    int kind; /* index in q->kinds */
    cd_job job;
    cd_job_outcome out;
    cd_job_verdict v; /* decided once, before the write, so a rewrite keeps its jitter */
    char v_status[8];
};

typedef struct kind_state {
    cd_jobs_kind k;
    char name[32];
    int64_t schedule[CD_JOBS_SCHEDULE_MAX];
    int inflight; /* under q->lock */
    atomic_uint_fast64_t n_attempts, n_done, n_retried, n_dead;
} kind_state;

typedef struct watch {
    struct watch *next;
    uint64_t token;
    cd_job_watch_fn fn;
    void *arg;
} watch;

typedef struct call_list {
    cd_job_call *head, *tail;
} call_list;

struct cd_jobs {
    cd_store *store;
    cd_jobs_config cfg;
    kind_state kinds[MAX_KINDS];
    int nkinds;
    pthread_t loop;
    pthread_t *workers;
    int nworkers;
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* the loop: a kick, an outcome, a stop */
    pthread_cond_t work;      /* the handler threads: something to run, or a stop */
    call_list todo, finished; /* under lock */
    bool stop, workers_stop, kicked, started, halted;
    watch *watches; /* under lock */
    uint64_t boot, next_token;
    uint32_t rnd; /* the loop's jitter generator (xorshift32) */
    int64_t next_lease_check;
};

/* ---- lists ---- */

static void list_push(call_list *l, cd_job_call *c)
{
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static cd_job_call *list_take(call_list *l)
{
    cd_job_call *all = l->head;
    l->head = l->tail = NULL;
    return all;
}

static void call_free(cd_job_call *c)
{
    cd_job_clear(&c->job);
    free(c);
}

/* ---- backoff ---- */

int64_t cd_jobs_backoff_ms(const int64_t *schedule_ms, int nschedule, int attempt, int jitter_pct,
                           uint32_t rnd)
{
    if (attempt < 1 || attempt > nschedule)
        return -1;
    int64_t d = schedule_ms[attempt - 1];
    if (jitter_pct <= 0 || d <= 0)
        return d;
    if (jitter_pct > 100)
        jitter_pct = 100;
    /* A uniform move in [-span, +span], so that receivers that failed together (an outage)
     * are not hit again by every delivery in the same second. */
    int64_t span = d * jitter_pct / 100;
    int64_t move = (int64_t)((double)rnd / 4294967295.0 * (double)(2 * span)) - span;
    return d + move < 0 ? 0 : d + move;
}

static uint32_t next_rnd(cd_jobs *q)
{
    uint32_t x = q->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    q->rnd = x;
    return x;
}

/* ---- handler threads ---- */

static void *worker_main(void *arg)
{
    cd_thread_name("cd-job");
    cd_jobs *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (!q->workers_stop && q->todo.head == NULL)
            pthread_cond_wait(&q->work, &q->lock);
        cd_job_call *c = q->todo.head;
        if (c == NULL) { /* stopping, nothing left */
            pthread_mutex_unlock(&q->lock);
            return NULL;
        }
        q->todo.head = c->next;
        if (q->todo.head == NULL)
            q->todo.tail = NULL;
        pthread_mutex_unlock(&q->lock);
        kind_state *ks = &q->kinds[c->kind];
        atomic_fetch_add(&ks->n_attempts, 1);
        ks->k.handler(ks->k.arg, &c->job, c);
    }
}

void cd_jobs_finish(cd_job_call *c, const cd_job_outcome *out)
{
    cd_jobs *q = c->q;
    c->out = *out;
    pthread_mutex_lock(&q->lock);
    list_push(&q->finished, c);
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

/* ---- recording outcomes ---- */

static void decide(cd_jobs *q, cd_job_call *c, int64_t now)
{
    kind_state *ks = &q->kinds[c->kind];
    const char *st = "done";
    int64_t delay = -1;
    if (c->out.result == CD_JOB_RETRY) {
        delay = cd_jobs_backoff_ms(ks->schedule, ks->k.nschedule, c->job.attempts, ks->k.jitter_pct,
                                   next_rnd(q));
        if (delay >= 0 && c->out.retry_in_ms > 0)
            delay = c->out.retry_in_ms;
        st = delay < 0 ? "dead" : "queued";
    } else if (c->out.result == CD_JOB_FAIL) {
        st = "dead";
    }
    snprintf(c->v_status, sizeof c->v_status, "%s", st);
    c->v.status = c->v_status;
    c->v.due_ms = delay >= 0 ? now + delay : 0;
}

static int record_one(cd_db *db, cd_jobs *q, cd_job_call *c, int64_t now, cd_err *err)
{
    kind_state *ks = &q->kinds[c->kind];
    cd_err e = {0};
    if (ks->k.record && ks->k.record(db, ks->k.arg, &c->job, &c->out, &c->v, &e) != 0) {
        if (e.code == CD_ESTORE) {
            *err = e;
            return -1;
        }
        cd_logf("warn", "job outcome hook failed", "\"kind\":\"%s\",\"job\":%lld,\"reason\":\"%s\"",
                ks->name, (long long)c->job.id, cd_err_reason(&e));
    }
    int rc;
    const char *error = c->out.error;
    if (strcmp(c->v.status, "done") == 0)
        rc = cd_store_job_complete(db, c->job.id, &e);
    else if (strcmp(c->v.status, "queued") == 0)
        rc = cd_store_job_retry(db, c->job.id, c->v.due_ms, error, now, &e);
    else
        rc = cd_store_job_dead(db, c->job.id, error, now, &e);
    if (rc != 0 && e.code == CD_ESTORE) {
        *err = e;
        return -1;
    }
    return 0; /* a job deleted meanwhile (its owner dropped it) is nothing to record */
}

static int job_record(cd_db *db, void *arg, cd_err *err)
{
    cd_job_call *list = arg;
    int64_t now = cd_now_ms();
    cd_jobs *q = list->q;
    for (cd_job_call *c = list; c; c = c->next)
        if (record_one(db, q, c, now, err) != 0)
            return -1;
    return 0;
}

static watch *take_watch(cd_jobs *q, uint64_t token)
{
    if (token == 0)
        return NULL;
    pthread_mutex_lock(&q->lock);
    watch *found = NULL;
    for (watch **p = &q->watches; *p; p = &(*p)->next) {
        if ((*p)->token == token) {
            found = *p;
            *p = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return found;
}

/* After the commit: counters, watchers, and room for the next claims. */
static void after_record(cd_jobs *q, cd_job_call *list)
{
    for (cd_job_call *c = list, *next; c; c = next) {
        next = c->next;
        kind_state *ks = &q->kinds[c->kind];
        const char *st = c->v.status;
        atomic_fetch_add(st[0] == 'd' && st[1] == 'o' ? &ks->n_done
                         : strcmp(st, "queued") == 0  ? &ks->n_retried
                                                      : &ks->n_dead,
                         1);
        if (strcmp(st, "dead") == 0)
            cd_logf("warn", "job dead", "\"kind\":\"%s\",\"job\":%lld,\"attempts\":%d", ks->name,
                    (long long)c->job.id, c->job.attempts);
        watch *w = take_watch(q, c->job.watch);
        if (w) {
            w->fn(w->arg, &c->job, &c->out, &c->v);
            free(w);
        }
        pthread_mutex_lock(&q->lock);
        ks->inflight--;
        pthread_mutex_unlock(&q->lock);
        call_free(c);
    }
}

/* Writes every finished attempt; gives them back on a storage error. */
static void record_finished(cd_jobs *q)
{
    pthread_mutex_lock(&q->lock);
    cd_job_call *list = list_take(&q->finished);
    pthread_mutex_unlock(&q->lock);
    if (list == NULL)
        return;
    int64_t now = cd_now_ms();
    for (cd_job_call *c = list; c; c = c->next)
        if (c->v.status == NULL)
            decide(q, c, now);
    cd_err err = {0};
    if (cd_store_run(q->store, job_record, list, &err) != 0) {
        cd_logf("error", "job outcomes not stored, will retry", "\"reason\":\"%s\"",
                cd_err_reason(&err));
        cd_job_call *last = list;
        while (last->next)
            last = last->next;
        pthread_mutex_lock(&q->lock);
        last->next = q->finished.head;
        q->finished.head = list;
        if (q->finished.tail == NULL)
            q->finished.tail = last;
        pthread_mutex_unlock(&q->lock);
        return;
    }
    after_record(q, list);
}

/* ---- claiming ---- */

typedef struct claim_job {
    cd_jobs *q;
    int kind;
    int room;
    int64_t now;
    call_list got;
} claim_job;

static int collect_claimed(const cd_job *j, void *arg)
{
    claim_job *cj = arg;
    cd_job_call *c = cd_xcalloc(1, sizeof *c);
    c->q = cj->q;
    c->kind = cj->kind;
    c->job = *j;
    c->job.payload = cd_xstrdup(j->payload ? j->payload : "");
    list_push(&cj->got, c);
    return 0;
}

static int job_claim(cd_db *db, void *arg, cd_err *err)
{
    claim_job *cj = arg;
    kind_state *ks = &cj->q->kinds[cj->kind];
    return cd_store_job_claim(db, ks->name, cj->now, ks->k.lease_ms, cj->room, collect_claimed, cj,
                              err);
}

static bool kind_due(cd_jobs *q, kind_state *ks, int64_t now)
{
    int64_t next = 0;
    cd_db *db = cd_store_reader(q->store);
    if (db == NULL)
        return false;
    int rc = cd_store_job_next_due(db, ks->name, &next, NULL);
    cd_store_release(q->store, db);
    return rc == 0 && next > 0 && next <= now;
}

static void claim_kind(cd_jobs *q, int k)
{
    kind_state *ks = &q->kinds[k];
    pthread_mutex_lock(&q->lock);
    int room = ks->k.max_inflight - ks->inflight;
    pthread_mutex_unlock(&q->lock);
    int64_t now = cd_now_ms();
    if (room <= 0 || !kind_due(q, ks, now))
        return;
    claim_job cj = {.q = q, .kind = k, .room = room < CLAIM_BATCH ? room : CLAIM_BATCH, .now = now};
    cd_err err = {0};
    if (cd_store_run(q->store, job_claim, &cj, &err) != 0) {
        /* Nothing was claimed (the transaction rolled back): drop the copies. */
        for (cd_job_call *c = cj.got.head, *next; c; c = next) {
            next = c->next;
            call_free(c);
        }
        return;
    }
    pthread_mutex_lock(&q->lock);
    for (cd_job_call *c = cj.got.head, *next; c; c = next) {
        next = c->next;
        ks->inflight++;
        list_push(&q->todo, c);
    }
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
}

typedef struct requeue_arg {
    int64_t before;
    int count;
} requeue_arg;

static int job_requeue(cd_db *db, void *arg, cd_err *err)
{
    requeue_arg *r = arg;
    return cd_store_job_requeue(db, r->before, cd_now_ms(), &r->count, err);
}

/* Claims whose lease ended (a handler that never finished) go back to the queue. */
static void requeue_expired(cd_jobs *q, int64_t now)
{
    if (now < q->next_lease_check)
        return;
    q->next_lease_check = now + LEASE_CHECK_MS;
    /* A read first: an idle server would otherwise commit an empty UPDATE every second. */
    bool any = true; /* when the read fails, the write decides */
    cd_db *db = cd_store_reader(q->store);
    if (db != NULL) {
        cd_store_job_expired_any(db, now, &any, NULL);
        cd_store_release(q->store, db);
    }
    if (!any)
        return;
    requeue_arg r = {.before = now};
    cd_err err = {0};
    if (cd_store_run(q->store, job_requeue, &r, &err) == 0 && r.count > 0)
        cd_logf("warn", "jobs whose claim expired went back to the queue", "\"count\":%d", r.count);
}

/* ---- the loop ---- */

static void wait_for_work(cd_jobs *q)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += POLL_MS * 1000000L; /* poll: due times pass while nobody kicks */
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->lock);
    while (!q->stop && !q->kicked && q->finished.head == NULL)
        if (pthread_cond_timedwait(&q->wake, &q->lock, &until) != 0)
            break;
    q->kicked = false;
    pthread_mutex_unlock(&q->lock);
}

static int inflight_total(cd_jobs *q)
{
    int n = 0;
    pthread_mutex_lock(&q->lock);
    for (int k = 0; k < q->nkinds; k++)
        n += q->kinds[k].inflight;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* Claimed jobs no handler started yet are dropped from memory: they stay 'running' and the
 * next start puts them back in the queue (their attempt counted: at least once). */
static void drop_todo(cd_jobs *q)
{
    pthread_mutex_lock(&q->lock);
    cd_job_call *list = list_take(&q->todo);
    for (cd_job_call *c = list; c; c = c->next)
        q->kinds[c->kind].inflight--;
    pthread_mutex_unlock(&q->lock);
    for (cd_job_call *c = list, *next; c; c = next) {
        next = c->next;
        call_free(c);
    }
}

static void drain(cd_jobs *q)
{
    drop_todo(q);
    int64_t until = cd_now_ms() + (q->cfg.drain_ms > 0 ? q->cfg.drain_ms : 6000);
    while (inflight_total(q) > 0 && cd_now_ms() < until) {
        record_finished(q);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    record_finished(q);
}

static void *loop_main(void *arg)
{
    cd_thread_name("cd-jobloop");
    cd_jobs *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        bool stop = q->stop;
        pthread_mutex_unlock(&q->lock);
        if (stop)
            break;
        record_finished(q);
        requeue_expired(q, cd_now_ms());
        for (int k = 0; k < q->nkinds; k++)
            claim_kind(q, k);
        wait_for_work(q);
    }
    drain(q);
    return NULL;
}

/* ---- public ---- */

cd_jobs *cd_jobs_new(cd_store *store, const cd_jobs_config *cfg)
{
    cd_jobs *q = cd_xcalloc(1, sizeof *q);
    q->store = store;
    if (cfg)
        q->cfg = *cfg;
    if (q->cfg.threads <= 0)
        q->cfg.threads = 4;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    pthread_cond_init(&q->work, NULL);
    char hex[9];
    cd_random_hex(hex, 4);
    q->boot = (uint64_t)strtoul(hex, NULL, 16) | 1u; /* never 0: 0 means "no watcher" */
    cd_random_hex(hex, 4);
    q->rnd = (uint32_t)strtoul(hex, NULL, 16) | 1u;
    return q;
}

int cd_jobs_register(cd_jobs *q, const cd_jobs_kind *kind, cd_err *err)
{
    if (q->started || q->nkinds == MAX_KINDS || kind->name == NULL || kind->handler == NULL ||
        strlen(kind->name) >= sizeof q->kinds[0].name || kind->nschedule < 0 ||
        kind->nschedule > CD_JOBS_SCHEDULE_MAX)
        return cd_fail(err, CD_EINVAL, "kind", "cannot register this job kind");
    for (int k = 0; k < q->nkinds; k++)
        if (strcmp(q->kinds[k].name, kind->name) == 0)
            return cd_fail(err, CD_EINVAL, "kind", "job kind %s is registered twice", kind->name);
    kind_state *ks = &q->kinds[q->nkinds++];
    ks->k = *kind;
    snprintf(ks->name, sizeof ks->name, "%s", kind->name);
    ks->k.name = ks->name;
    for (int i = 0; i < kind->nschedule; i++)
        ks->schedule[i] = kind->schedule_ms[i];
    ks->k.schedule_ms = ks->schedule;
    if (ks->k.lease_ms <= 0)
        ks->k.lease_ms = 10 * 60 * 1000;
    if (ks->k.max_inflight <= 0)
        ks->k.max_inflight = 64;
    return 0;
}

int cd_jobs_start(cd_jobs *q, cd_err *err)
{
    requeue_arg r = {.before = INT64_MAX};
    if (cd_store_run(q->store, job_requeue, &r, err) != 0)
        return -1;
    if (r.count > 0)
        cd_logf("info", "requeued jobs left running", "\"count\":%d", r.count);
    q->workers = cd_xcalloc((size_t)q->cfg.threads, sizeof(pthread_t));
    for (; q->nworkers < q->cfg.threads; q->nworkers++)
        if (pthread_create(&q->workers[q->nworkers], NULL, worker_main, q) != 0)
            break;
    if (q->nworkers == 0 || pthread_create(&q->loop, NULL, loop_main, q) != 0) {
        cd_fail(err, CD_EINTERNAL, "", "cannot start the job worker");
        cd_jobs_halt(q);
        return -1;
    }
    q->started = true;
    return 0;
}

void cd_jobs_kick(cd_jobs *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->kicked = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

uint64_t cd_jobs_watch(cd_jobs *q, cd_job_watch_fn fn, void *arg)
{
    watch *w = cd_xcalloc(1, sizeof *w);
    w->fn = fn;
    w->arg = arg;
    pthread_mutex_lock(&q->lock);
    w->token = (q->boot << 32) | (++q->next_token & 0xffffffffu);
    w->next = q->watches;
    q->watches = w;
    pthread_mutex_unlock(&q->lock);
    return w->token;
}

bool cd_jobs_unwatch(cd_jobs *q, uint64_t token)
{
    watch *w = take_watch(q, token);
    free(w);
    return w != NULL;
}

void cd_jobs_metrics(cd_jobs *q, cd_buf *out)
{
    static const char *const names[4] = {"attempts", "done", "retried", "dead"};
    static const char *const help[4] = {"Job attempts started.", "Jobs that succeeded.",
                                        "Failed attempts queued again.",
                                        "Jobs that became dead letters."};
    for (int i = 0; i < 4; i++) {
        cd_buf_printf(out,
                      "# HELP consentd_jobs_%s_total %s\n# TYPE consentd_jobs_%s_total counter\n",
                      names[i], help[i], names[i]);
        for (int k = 0; k < q->nkinds; k++) {
            kind_state *ks = &q->kinds[k];
            atomic_uint_fast64_t *c[4] = {&ks->n_attempts, &ks->n_done, &ks->n_retried,
                                          &ks->n_dead};
            cd_buf_printf(out, "consentd_jobs_%s_total{kind=\"%s\"} %llu\n", names[i], ks->name,
                          (unsigned long long)atomic_load(c[i]));
        }
    }
    cd_buf_printf(out,
                  "# HELP consentd_jobs_inflight Job attempts running now.\n"
                  "# TYPE consentd_jobs_inflight gauge\nconsentd_jobs_inflight %d\n",
                  inflight_total(q));
}

void cd_jobs_halt(cd_jobs *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    bool first = !q->halted;
    bool started = q->started;
    q->halted = true;
    q->stop = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    if (!first)
        return;
    if (started)
        pthread_join(q->loop, NULL); /* drains what is in flight, for a while */
    pthread_mutex_lock(&q->lock);
    q->workers_stop = true;
    pthread_cond_broadcast(&q->work);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->nworkers; i++)
        pthread_join(q->workers[i], NULL);
    if (started)
        record_finished(q); /* what finished while the handler threads stopped */
    pthread_mutex_lock(&q->lock);
    watch *ws = q->watches;
    q->watches = NULL;
    pthread_mutex_unlock(&q->lock);
    cd_job_outcome out = {.result = CD_JOB_RETRY};
    snprintf(out.error, sizeof out.error, "shutting down");
    for (watch *w = ws, *next; w; w = next) {
        next = w->next;
        w->fn(w->arg, NULL, &out, NULL);
        free(w);
    }
}

void cd_jobs_stop(cd_jobs *q)
{
    if (q == NULL)
        return;
    cd_jobs_halt(q);
    /* Attempts finished too late to record stay 'running': requeued at the next start. */
    for (cd_job_call *c = list_take(&q->finished), *next; c; c = next) {
        next = c->next;
        call_free(c);
    }
    for (cd_job_call *c = list_take(&q->todo), *next; c; c = next) {
        next = c->next;
        call_free(c);
    }
    free(q->workers);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->wake);
    pthread_cond_destroy(&q->work);
    free(q);
}
