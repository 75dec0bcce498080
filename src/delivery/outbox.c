/* delivery/outbox.c -- the delivery worker (see outbox.h for the guarantees).
 *
 * One thread owns the loop: it turns transport reports into store writes, claims due
 * messages, and submits them. Transports call back from their own threads; the callbacks
 * only append a report to a queue under the lock and wake the worker, so no store work
 * ever runs on a transport's thread. Reports are written in batches through the store's
 * writer (group commit), and kept for the next round if a write fails. */
#include "delivery/outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/consent.h"
#include "core/inbound.h"
#include "core/message.h"
#include "delivery/transport.h"
#include "delivery/upkeep.h"
#include "util/log.h"
#include "util/thread.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define CLAIM_BATCH 256
#define MAX_PENDING 1024
/* issue 10 (perf): messages claimed as they were queued (cd_store_claimer), reserved and
 * not yet in the pending list; the list has room for them on top of MAX_PENDING. */
#define MAX_DIRECT 256
/* issue 8 item 9: claimed-but-not-submitted messages per transport. A dead link holds at
 * most this many; the others keep being claimed (3 * 256 < MAX_PENDING). */
#define TRANSPORT_CAP 256
#define SCAN_IDLE_MS  20 /* after a due scan that claimed nothing */

enum report_kind { R_SENT, R_RECEIPT, R_INBOUND, R_LINK, R_CLAIMED };

typedef struct pending { /* claimed, not yet accepted by a transport */
    int64_t account_id;
    int ti; /* index of its transport in o->tports, -1 for none */
    char id[40], to[24], from[24], transport[16], kind[16], scope[40];
    int64_t contact_id;
    char *text;
    uint64_t epoch; /* cd_store_optout_epoch of the account when consent was last checked */
} pending;

/* A pending entry for message m (its text copied), for transport ti. */
static void pending_of(pending *p, const cd_message *m, int ti)
{
    memset(p, 0, sizeof *p);
    p->ti = ti;
    p->account_id = m->account_id;
    p->contact_id = m->contact_id;
    snprintf(p->id, sizeof p->id, "%s", m->id);
    snprintf(p->to, sizeof p->to, "%s", m->to);
    snprintf(p->from, sizeof p->from, "%s", m->from);
    snprintf(p->transport, sizeof p->transport, "%s", m->transport);
    snprintf(p->kind, sizeof p->kind, "%s", m->kind);
    snprintf(p->scope, sizeof p->scope, "%s", m->scope);
    p->text = cd_xstrdup(m->text ? m->text : "");
}

/* The message as the claim's checks read it (cd_message_claim, cd_message_recheck). */
static cd_message message_of(const pending *p)
{
    cd_message m = {.account_id = p->account_id, .contact_id = p->contact_id};
    snprintf(m.id, sizeof m.id, "%s", p->id);
    snprintf(m.kind, sizeof m.kind, "%s", p->kind);
    snprintf(m.scope, sizeof m.scope, "%s", p->scope);
    snprintf(m.from, sizeof m.from, "%s", p->from);
    snprintf(m.transport, sizeof m.transport, "%s", p->transport);
    return m;
}

typedef struct report {
    struct report *next;
    enum report_kind kind;
    char transport[16];
    char id[64]; /* R_SENT: "<account>/<message id>" */
    bool ok, permanent;
    char *a, *b, *c, *d; /* remote_id/error, or from/to/text/provider_id, or status/detail */
    uint64_t ack;        /* inbound and receipts: to hand back once stored */
    struct tport *tp;
    pending p; /* R_CLAIMED: durable as 'sending', for the pending list */
} report;

typedef struct tport {
    const struct cd_transport_ops *ops;
    cd_transport *t;
    struct cd_outbox *box;
    bool busy; /* submit() said "not now": wait for a report before trying again */
    bool down; /* the link reported itself down: what waits for it goes back to the queue */
    /* Set and read under the box's lock (claimer_reserve): the transport may take messages
     * claimed as they are queued: open, and linked as far as its reports tell (after the
     * first report, !down; before it, true only for a transport without a link). */
    bool live;
} tport;

struct cd_outbox {
    cd_store *store;
    cd_outbox_config cfg;
    char default_transport[16];
    tport tports[3]; /* sink, smpp, http */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop, kicked, started, joined;
    bool reported;        /* a report came in since the worker last looked */
    bool rescan;          /* something may have become due or claimable: worth a due scan */
    int64_t next_scan_ms; /* after a scan that found nothing, kicks wait until then */
    report *head, *tail;
    pending *pend;
    _Atomic int npend;
    _Atomic int npend_t[3]; /* pend entries per transport (read by claimer_reserve) */
    /* issue 10 (perf), under lock: reservations of cd_store_claimer not yet in pend, per
     * transport and in all; whether reserve may say yes (the worker runs, no backlog of
     * due messages that the due scan has yet to claim). */
    int direct[3], ndirect;
    bool claiming, backlog[3];
    cd_store_claimer claimer;
    /* The writer jobs in flight (at most one claim and one batch of reports): the worker
     * keeps submitting while their commits are on the way. The done callbacks hand them
     * back here, under lock. */
    struct claim_job *claim_inflight, *claim_ready;
    struct report_batch *reports_inflight, *reports_ready;
    /* /metrics */
    atomic_uint_fast64_t n_submitted, n_sent, n_retried, n_failed, n_receipts, n_inbound;
    atomic_uint_fast64_t n_unrouted, n_refused, n_direct;
    cd_upkeep upkeep; /* expired double opt-ins, old idempotency records (upkeep.c) */
};

/* ---- reports from the transports (any thread) ---- */

/* Queues a report for the worker; `wake`: wakes it too (claimer_settled wakes it once for
 * a whole batch of claims). */
static void push_report(cd_outbox *o, report *r, bool wake)
{
    pthread_mutex_lock(&o->lock);
    if (o->tail)
        o->tail->next = r;
    else
        o->head = r;
    o->tail = r;
    o->reported = true;
    if (wake)
        pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void push(cd_outbox *o, report *r)
{
    push_report(o, r, true);
}

static report *new_report(tport *tp, enum report_kind kind)
{
    report *r = cd_xcalloc(1, sizeof *r);
    r->kind = kind;
    r->tp = tp;
    snprintf(r->transport, sizeof r->transport, "%s", tp->ops->name);
    return r;
}

static report *sent_report(const char *transport, const char *msg_id, bool ok,
                           const char *remote_id, bool permanent, const char *error)
{
    report *r = cd_xcalloc(1, sizeof *r);
    r->kind = R_SENT;
    snprintf(r->transport, sizeof r->transport, "%s", transport);
    snprintf(r->id, sizeof r->id, "%s", msg_id);
    r->ok = ok;
    r->permanent = permanent;
    r->a = cd_xstrdup(remote_id ? remote_id : "");
    r->b = cd_xstrdup(error ? error : "");
    return r;
}

static void on_sent(void *arg, const char *msg_id, bool ok, const char *remote_id, bool permanent,
                    const char *error)
{
    tport *tp = arg;
    push(tp->box, sent_report(tp->ops->name, msg_id, ok, remote_id, permanent, error));
}

static void on_inbound(void *arg, const char *from, const char *to, const char *text,
                       const char *provider_id, uint64_t ack)
{
    tport *tp = arg;
    report *r = new_report(tp, R_INBOUND);
    r->ack = ack;
    r->a = cd_xstrdup(from ? from : "");
    r->b = cd_xstrdup(to ? to : "");
    r->c = cd_xstrdup(text ? text : "");
    r->d = cd_xstrdup(provider_id ? provider_id : "");
    push(tp->box, r);
}

static void on_receipt(void *arg, const char *remote_id, const char *status, const char *detail,
                       uint64_t ack)
{
    tport *tp = arg;
    report *r = new_report(tp, R_RECEIPT);
    r->ack = ack;
    r->a = cd_xstrdup(remote_id ? remote_id : "");
    r->b = cd_xstrdup(status ? status : "unknown");
    r->c = cd_xstrdup(detail ? detail : "");
    push(tp->box, r);
}

static void on_link(void *arg, bool up, const char *detail)
{
    tport *tp = arg;
    cd_buf f = {0};
    cd_buf_printf(&f, "\"transport\":\"%s\",\"up\":%s,\"detail\":", tp->ops->name,
                  up ? "true" : "false");
    cd_json_quote(&f, detail ? detail : "");
    cd_log(up ? "info" : "warn", "transport link", f.data);
    cd_buf_free(&f);
    report *r = new_report(tp, R_LINK);
    r->ok = up;
    push(tp->box, r); /* wakes the worker: it may submit again */
}

/* Tells the transport that what it reported is stored (or will never be). */
static void ack(report *r, bool ok, bool permanent)
{
    if (r->ack && r->tp && r->tp->t && r->tp->ops->ack)
        r->tp->ops->ack(r->tp->t, r->ack, ok, permanent);
    r->ack = 0;
}

static void report_free(report *r)
{
    free(r->p.text);
    free(r->a);
    free(r->b);
    free(r->c);
    free(r->d);
    free(r);
}

/* ---- writing reports ---- */

typedef struct report_batch {
    cd_outbox *o;
    report *list;
    int max_attempts;
    uint64_t counts[4]; /* sent, retried, failed (as far as we can tell), receipts */
    int rc;             /* the job's outcome, from its done callback */
    cd_err err;
} report_batch;

/* One job for a whole batch of sent/receipt reports. A report about a message we do not
 * know (a receipt for someone else's id) is logged and skipped; only storage errors fail
 * the job, and then every report is kept for the next round. It may run twice (its counts
 * start again): it shares the savepoint of the opt-ins it reports on (issue 10). */
static int job_reports(cd_db *db, void *arg, cd_err *err)
{
    report_batch *b = arg;
    memset(b->counts, 0, sizeof b->counts);
    for (report *r = b->list; r; r = r->next) {
        cd_err e = {0};
        int rc = 0;
        if (r->kind == R_SENT) {
            char *slash = strchr(r->id, '/');
            if (slash == NULL)
                continue;
            cd_sent_report s = {.account_id = strtoll(r->id, NULL, 10),
                                .id = slash + 1,
                                .transport = r->transport,
                                .ok = r->ok,
                                .remote_id = r->a,
                                .permanent = r->permanent,
                                .error = r->b};
            rc = cd_message_record_sent(db, &s, b->max_attempts, &e);
            if (rc == 0)
                b->counts[r->ok ? 0 : r->permanent ? 2 : 1]++;
        } else if (r->kind == R_RECEIPT) {
            rc = cd_message_record_receipt(db, r->transport, r->a, r->b, r->c, &e);
            b->counts[3]++;
        }
        if (rc != 0 && e.code == CD_ESTORE) {
            *err = e;
            return -1;
        }
        if (rc != 0) { /* issue 8 item 13: the id came from the SMSC: quoted, never raw */
            cd_buf f = {0};
            cd_buf_printf(&f, "\"transport\":\"%s\",\"id\":", r->transport);
            cd_json_quote(&f, r->kind == R_SENT ? r->id : r->a);
            cd_log("warn", "report skipped", f.data);
            cd_buf_free(&f);
        }
    }
    return 0;
}

/* The report as core sees an inbound message. */
static cd_inbound_in inbound_of(const report *r)
{
    return (cd_inbound_in){
        .from = r->a, .to = r->b, .text = r->c, .provider_id = r->d, .surface = r->transport};
}

typedef struct inbound_job {
    cd_account account;
    report *r;
} inbound_job;

static int job_inbound(cd_db *db, void *arg, cd_err *err)
{
    inbound_job *j = arg;
    cd_message m;
    cd_keyword_action act;
    cd_inbound_in in = inbound_of(j->r);
    if (cd_inbound_receive(db, &j->account, &in, &m, &act, err) != 0)
        return -1;
    cd_message_clear(&m);
    return 0;
}

/* issue 8 item 4: an inbound message to a number no account owns is kept for an operator
 * (consentd inbound unrouted) and acknowledged once stored, never thrown away. */
static int job_unrouted(cd_db *db, void *arg, cd_err *err)
{
    const report *r = arg;
    cd_inbound_in in = inbound_of(r);
    return cd_inbound_unrouted(db, &in, r->transport, err);
}

static int handle_unrouted(cd_outbox *o, report *r)
{
    cd_err err = {0};
    cd_buf f = {0};
    cd_buf_puts(&f, "\"to\":");
    cd_json_quote(&f, r->b);
    cd_buf_puts(&f, ",\"transport\":");
    cd_json_quote(&f, r->transport);
    cd_log("warn", "inbound for an unknown number kept as unrouted", f.data);
    cd_buf_free(&f);
    if (cd_store_run(o->store, job_unrouted, r, &err) != 0) {
        cd_logf("error", "unrouted inbound not stored", "\"reason\":\"%s\"", cd_err_reason(&err));
        return -1; /* kept, and acknowledged when a later round stores it */
    }
    ack(r, true, false);
    atomic_fetch_add(&o->n_unrouted, 1);
    return 0;
}

/* Inbound messages go to the account that owns the number they were sent to
 * (cd_inbound_route); the worker only hands them over and acknowledges them. */
static int handle_inbound(cd_outbox *o, report *r)
{
    inbound_job j = {.r = r};
    cd_err err = {0};
    cd_db *db = cd_store_reader(o->store);
    if (db == NULL)
        return -1;
    bool known = cd_inbound_route(db, r->b, &j.account, NULL) == 0;
    cd_store_release(o->store, db);
    if (!known)
        return handle_unrouted(o, r);
    if (cd_store_run(o->store, job_inbound, &j, &err) != 0) {
        cd_logf("error", "inbound not stored", "\"reason\":\"%s\"", cd_err_reason(&err));
        if (err.code == CD_ESTORE)
            return -1; /* kept, and acknowledged when a later round stores it */
        ack(r, false, true);
        return 0;
    }
    ack(r, true, false);
    atomic_fetch_add(&o->n_inbound, 1);
    return 0;
}

/* Puts reports back at the front of the queue, for the next round. */
static void requeue_reports(cd_outbox *o, report *failed)
{
    if (failed == NULL)
        return;
    report *last = failed;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&o->lock);
    last->next = o->head;
    o->head = failed;
    if (o->tail == NULL)
        o->tail = last;
    pthread_mutex_unlock(&o->lock);
}

/* Runs on the writer once the batch is durable (or failed): hands it back to the worker. */
static void reports_done(void *arg, int rc, const cd_err *err)
{
    report_batch *b = arg;
    cd_outbox *o = b->o;
    b->rc = rc;
    if (rc != 0 && err != NULL)
        b->err = *err;
    pthread_mutex_lock(&o->lock);
    o->reports_ready = b;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* The batch's commit is over: acknowledge what is stored, or keep it all for later. */
static void finish_reports(cd_outbox *o, report_batch *b)
{
    if (b->rc != 0) {
        cd_logf("error", "delivery reports not stored, will retry", "\"reason\":\"%s\"",
                cd_err_reason(&b->err));
        requeue_reports(o, b->list);
        free(b);
        return;
    }
    atomic_fetch_add(&o->n_sent, b->counts[0]);
    atomic_fetch_add(&o->n_retried, b->counts[1]);
    atomic_fetch_add(&o->n_failed, b->counts[2]);
    atomic_fetch_add(&o->n_receipts, b->counts[3]);
    for (report *r = b->list, *next; r; r = next) {
        next = r->next;
        ack(r, true, false); /* stored, or about nothing we know: either way, done */
        report_free(r);
    }
    free(b);
}

static void take_claimed(cd_outbox *o, report *r);

/* Takes every queued report and writes them: sent/receipt reports as one writer job for
 * the whole batch, which runs while the worker goes on submitting (`sync`: waits for it,
 * as halt does). One batch is in flight at a time, so reports are written in the order
 * they came; what arrives meanwhile makes the next batch. A batch that fails is given
 * back whole, for the next round. */
static void process_reports(cd_outbox *o, bool sync)
{
    if (o->reports_inflight)
        return;
    pthread_mutex_lock(&o->lock);
    report *list = o->head;
    o->head = o->tail = NULL;
    pthread_mutex_unlock(&o->lock);
    if (list == NULL)
        return;
    report_batch *b = cd_xcalloc(1, sizeof *b);
    b->o = o;
    b->max_attempts = o->cfg.max_attempts;
    report **tail = &b->list, *failed = NULL;
    for (report *r = list, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (r->kind == R_SENT || r->kind == R_RECEIPT) {
            *tail = r;
            tail = &r->next;
        } else if (r->kind == R_LINK) {
            pthread_mutex_lock(&o->lock); /* claimer_reserve reads both */
            r->tp->down = !r->ok;
            r->tp->live = r->ok;
            pthread_mutex_unlock(&o->lock);
            o->rescan = true;
            report_free(r);
        } else if (r->kind == R_CLAIMED) {
            take_claimed(o, r);
            report_free(r);
        } else if (r->kind == R_INBOUND && handle_inbound(o, r) != 0) {
            r->next = failed;
            failed = r;
        } else {
            report_free(r);
        }
    }
    requeue_reports(o, failed);
    if (b->list == NULL) {
        free(b);
        return;
    }
    cd_err err = {0};
    if (!sync && cd_store_submit_rerunnable(o->store, job_reports, reports_done, b, &err) == 0) {
        o->reports_inflight = b;
        return;
    }
    /* Closing, or the writer's queue is full: wait for it (cd_store_run has no bound). */
    b->rc = cd_store_run(o->store, job_reports, b, &b->err);
    finish_reports(o, b);
}

/* ---- claiming and submitting ---- */

typedef struct claim_job {
    cd_outbox *o;
    pending *cand;
    int ncand;
    bool *claimed;
    int refused;
    int rc; /* the job's outcome, from its done callback */
} claim_job;

/* Runs on the writer: consent is checked again in the transaction that claims (issue 8
 * item 1), so an opt-out committed before it is always seen. */
static int job_claim(cd_db *db, void *arg, cd_err *err)
{
    claim_job *j = arg;
    int64_t now = cd_now_ms();
    j->refused = 0;
    for (int i = 0; i < j->ncand; i++) {
        const pending *p = &j->cand[i];
        cd_message m = message_of(p);
        const char *refused;
        j->cand[i].epoch = cd_store_optout_epoch(j->o->store, p->account_id); /* before checks */
        if (cd_message_claim(db, &m, now, &j->claimed[i], &refused, err) != 0)
            return -1;
        j->refused += refused != NULL;
    }
    return 0;
}

typedef struct due_list {
    cd_outbox *o;
    pending *items;
    int n, max;
    int room[3];  /* per transport (o->tports order), TRANSPORT_CAP minus what waits */
    bool left[3]; /* due messages of that transport may have been left behind */
} due_list;

static int tport_index(const cd_outbox *o, const char *name)
{
    if (name == NULL || *name == '\0')
        name = o->default_transport;
    for (int i = 0; i < 3; i++)
        if (strcmp(o->tports[i].ops->name, name) == 0)
            return i;
    return -1;
}

static int collect_due(const cd_message *m, int64_t rowid, void *arg)
{
    due_list *d = arg;
    (void)rowid;
    if (d->n == d->max)
        return 1;
    int ti = tport_index(d->o, m->transport);
    if (ti >= 0 && d->room[ti] <= 0) {
        d->left[ti] = true;
        return 0; /* that transport has enough waiting: leave the message for later */
    }
    if (ti >= 0)
        d->room[ti]--;
    pending_of(&d->items[d->n++], m, ti);
    return 0;
}

/* Appends a claimed message; a keyword reply (a STOP confirmation) goes ahead of every
 * other message already waiting, after the replies before it (issue 8 item 9). */
static void add_pending(cd_outbox *o, const pending *p)
{
    int at = o->npend;
    if (strcmp(p->kind, "keyword_reply") == 0) {
        at = 0;
        while (at < o->npend && strcmp(o->pend[at].kind, "keyword_reply") == 0)
            at++;
        memmove(&o->pend[at + 1], &o->pend[at], (size_t)(o->npend - at) * sizeof(pending));
    }
    o->pend[at] = *p;
    o->npend++;
    if (p->ti >= 0)
        o->npend_t[p->ti]++;
}

/* ---- issue 10 (perf): messages claimed as they are queued ----
 *
 * A message due now that the claim job would claim is claimed by the writer job that
 * queues it (core/message.c, through cd_store_claimer): stored 'sending' in that
 * transaction, after the claim's own consent checks, and handed over here once durable.
 * That saves the claim's write and a due scan per message. The worker says yes only while
 * it keeps up: the transport open and linked, its pending list under half full, and no
 * due message left behind by the last due scan (a new message must not overtake them). */
static bool claimer_reserve(void *arg, const char *transport, const char *kind)
{
    cd_outbox *o = arg;
    (void)kind;
    int ti = tport_index(o, transport); /* names and default: fixed once started */
    if (ti < 0)
        return false;
    pthread_mutex_lock(&o->lock);
    const tport *tp = &o->tports[ti];
    bool ok = o->claiming && !o->backlog[ti] && tp->t != NULL && tp->live &&
              o->ndirect < MAX_DIRECT &&
              atomic_load(&o->npend_t[ti]) + o->direct[ti] < TRANSPORT_CAP / 2;
    if (ok) {
        o->direct[ti]++;
        o->ndirect++;
    }
    pthread_mutex_unlock(&o->lock);
    return ok;
}

static void unreserve(cd_outbox *o, int ti)
{
    pthread_mutex_lock(&o->lock);
    o->direct[ti]--;
    o->ndirect--;
    pthread_mutex_unlock(&o->lock);
}

/* On the syncer thread (or the writer's, when the job failed): a durable claim goes to the
 * worker as a report, like everything that comes from other threads. */
static void claimer_settle(void *arg, const cd_message *m, uint64_t epoch, bool durable)
{
    cd_outbox *o = arg;
    int ti = tport_index(o, m->transport);
    if (!durable) {
        unreserve(o, ti);
        return;
    }
    report *r = cd_xcalloc(1, sizeof *r);
    r->kind = R_CLAIMED;
    pending_of(&r->p, m, ti);
    r->p.epoch = epoch;
    push_report(o, r, false);
}

/* After a batch's answers: the claims it settled are there for the worker. */
static void claimer_settled(void *arg)
{
    cd_outbox *o = arg;
    pthread_mutex_lock(&o->lock);
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* On the worker: the claimed message joins the pending list (which owns its text now). */
static void take_claimed(cd_outbox *o, report *r)
{
    add_pending(o, &r->p);
    r->p.text = NULL;
    unreserve(o, r->p.ti);
    atomic_fetch_add(&o->n_direct, 1);
}

/* The due scan, fairly across accounts, without the transports that have enough waiting. */
static void find_due(cd_outbox *o, due_list *d)
{
    cd_due_filter f = {.default_transport = o->default_transport};
    int nskip = 0;
    for (int i = 0; i < 3; i++) {
        d->room[i] = TRANSPORT_CAP - o->npend_t[i];
        /* A link that is down claims nothing: its messages stay 'queued', where an opt-out
         * still reaches them (issue 8 item 1). A full window on a live link does claim, up
         * to TRANSPORT_CAP, so that the next submits are durable before the window opens. */
        const tport *tp = &o->tports[i];
        bool (*up)(cd_transport *) = tp->ops->linked ? tp->ops->linked : tp->ops->ready;
        if (d->room[i] <= 0 || (tp->t && up && !up(tp->t))) {
            f.skip[nskip++] = tp->ops->name;
            d->left[i] = true;
        }
    }
    if (nskip == 3)
        return;
    cd_err err = {0};
    cd_db *db = cd_store_reader(o->store);
    if (db) {
        cd_store_message_due_fair(db, cd_now_ms(), d->max, &f, collect_due, d, &err);
        cd_store_release(o->store, db);
    }
}

/* Is any queued message due now? One indexed MIN, so that the worker, which looks after
 * every commit, pays for the fair scan (a window function over the queue) and the
 * candidate list only when there is something to claim. */
static bool anything_due(cd_outbox *o)
{
    int64_t next = 0;
    cd_db *db = cd_store_reader(o->store);
    if (db == NULL)
        return false;
    int rc = cd_store_message_next_due(db, &next, NULL);
    cd_store_release(o->store, db);
    return rc != 0 || (next > 0 && next <= cd_now_ms());
}

/* Runs on the writer once the claim is durable (or failed): hands it back to the worker. */
static void claim_done(void *arg, int rc, const cd_err *err)
{
    claim_job *j = arg;
    cd_outbox *o = j->o;
    (void)err;
    j->rc = rc;
    pthread_mutex_lock(&o->lock);
    o->claim_ready = j;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* The claim is durable: its messages may be submitted now (the outbox is fsynced before a
 * message is submitted). What it did not claim is left alone. */
static void finish_claim(cd_outbox *o, claim_job *j)
{
    for (int i = 0; i < j->ncand; i++) {
        if (j->rc == 0 && j->claimed[i])
            add_pending(o, &j->cand[i]);
        else
            free(j->cand[i].text);
    }
    if (j->rc == 0 && j->refused > 0) {
        atomic_fetch_add(&o->n_refused, (uint64_t)j->refused);
        cd_logf("info", "queued messages refused at claim", "\"count\":%d", j->refused);
    }
    free(j->claimed);
    free(j->cand);
    free(j);
}

/* Worth a claim now? Only when a transport that can take messages has room for a good
 * part of a batch, so that the worker, which wakes on every report, does not query the
 * queue for a handful at a time. */
static bool wants_claim(const cd_outbox *o)
{
    if (!o->rescan || o->claim_inflight != NULL || o->npend >= MAX_PENDING ||
        cd_now_ms() < o->next_scan_ms)
        return false;
    for (int i = 0; i < 3; i++)
        if (o->tports[i].t && !o->tports[i].down && o->npend_t[i] <= TRANSPORT_CAP / 2)
            return true;
    return false;
}

/* Claims a batch of due messages: one writer job for the batch, which runs while the worker
 * goes on submitting what was claimed before. One claim is in flight at a time, and the
 * next due scan starts after its commit, so no message is picked twice. */
static void fill_pending(cd_outbox *o)
{
    int room = MAX_PENDING - o->npend;
    if (!wants_claim(o))
        return;
    if (!anything_due(o)) {
        pthread_mutex_lock(&o->lock);
        memset(o->backlog, 0, sizeof o->backlog);
        pthread_mutex_unlock(&o->lock);
        return;
    }
    int max = room < CLAIM_BATCH ? room : CLAIM_BATCH;
    due_list d = {.o = o, .items = cd_xcalloc((size_t)max, sizeof(pending)), .max = max};
    o->rescan = false;
    find_due(o, &d);
    /* Due messages are left behind when the batch is full, or for a transport the scan
     * skipped: until they are claimed, none of theirs is claimed as it is queued. */
    pthread_mutex_lock(&o->lock);
    for (int i = 0; i < 3; i++)
        o->backlog[i] = d.n == max || d.left[i];
    pthread_mutex_unlock(&o->lock);
    if (d.n == 0) {
        /* Nothing claimable: the messages due are for a link that is down or full, and each
         * scan walks past them. Commits kick the worker a thousand times a second. */
        o->next_scan_ms = cd_now_ms() + SCAN_IDLE_MS;
        o->rescan = true;
        free(d.items);
        return;
    }
    o->rescan = d.n == max; /* a full batch: there may be more */
    claim_job *j = cd_xcalloc(1, sizeof *j);
    *j = (claim_job){
        .o = o, .cand = d.items, .ncand = d.n, .claimed = cd_xcalloc((size_t)d.n, sizeof(bool))};
    cd_err err = {0};
    if (cd_store_submit(o->store, job_claim, claim_done, j, &err) == 0) {
        o->claim_inflight = j;
        return;
    }
    j->rc = cd_store_run(o->store, job_claim, j, &err); /* the writer's queue is full */
    finish_claim(o, j);
}

static tport *transport_for(cd_outbox *o, const char *name)
{
    if (name == NULL || *name == '\0')
        name = o->default_transport;
    for (int i = 0; i < 3; i++)
        if (o->tports[i].t && strcmp(o->tports[i].ops->name, name) == 0)
            return &o->tports[i];
    return NULL;
}

/* p leaves the pending list: its text is freed, the count of its transport goes down. */
static void unpend(cd_outbox *o, pending *p)
{
    if (p->ti >= 0 && --o->npend_t[p->ti] == TRANSPORT_CAP / 2)
        o->rescan = true; /* room for a good batch again */
    free(p->text);
    p->text = NULL;
}

/* ---- issue 8 item 1: a STOP also stops what waits claimed ----
 *
 * A claimed message waits here until its transport takes it: behind a full SMPP window
 * that can be seconds, and refuse_queued (core/consent.c) only reaches 'queued' rows. So
 * before a message is submitted, consent is checked again (the claim's checks, on a
 * reader) when an opt-out of its account has become durable since it was last checked
 * (cd_store_optout_epoch); refused ones are written refused in one job and never
 * submitted. Without opt-outs this costs one atomic load per message. */
/* Claimed messages that will not be submitted: given back to the queue (reason NULL: their
 * link went down, see give_back) or refused with reason[i]. */
typedef struct release_job {
    pending *list;
    const char **reason;
    int n;
} release_job;

static int job_release(cd_db *db, void *arg, cd_err *err)
{
    release_job *j = arg;
    int64_t now = cd_now_ms();
    for (int i = 0; i < j->n; i++) {
        const pending *p = &j->list[i];
        if ((j->reason ? cd_message_refuse_claimed(db, p->account_id, p->id, j->reason[i], now, err)
                       : cd_store_message_unclaim(db, p->account_id, p->id, now, err)) != 0)
            return -1;
    }
    return 0;
}

/* Whether p may be submitted now: 1 yes; 0 no, refused (added to j, written after the
 * round); -1 not known now (a read failed: it waits for the next round). Only a message
 * about to be submitted is checked, so each costs at most one read per opt-out of its
 * account while it waited, however long its transport keeps it waiting. */
static int still_allowed(cd_outbox *o, pending *p, cd_db **db, release_job *j)
{
    uint64_t now = cd_store_optout_epoch(o->store, p->account_id);
    if (p->epoch == now || strcmp(p->kind, "keyword_reply") == 0)
        return 1;
    const char *reason = NULL;
    cd_message m = message_of(p);
    cd_err err = {0};
    if ((*db == NULL && (*db = cd_store_reader(o->store)) == NULL) ||
        cd_message_recheck(*db, &m, &reason, &err) != 0)
        return -1;
    if (reason == NULL) {
        p->epoch = now;
        return 1;
    }
    if (j->list == NULL) {
        j->list = cd_xcalloc((size_t)o->npend, sizeof *j->list);
        j->reason = cd_xcalloc((size_t)o->npend, sizeof *j->reason);
    }
    j->list[j->n] = *p;
    j->reason[j->n++] = reason;
    return 0;
}

/* The refusals of a round, written in one job; once written they leave the list (the rest
 * keep their order). A failed write keeps them: the next round checks them again. */
static void refuse_pending(cd_outbox *o, release_job *j)
{
    cd_err err = {0};
    if (j->n > 0 && cd_store_run(o->store, job_release, j, &err) == 0) {
        int kept = 0;
        for (int i = 0, r = 0; i < o->npend; i++) {
            if (r < j->n && strcmp(o->pend[i].id, j->list[r].id) == 0 &&
                o->pend[i].account_id == j->list[r].account_id) {
                r++;
                unpend(o, &o->pend[i]);
                continue;
            }
            o->pend[kept++] = o->pend[i];
        }
        o->npend = kept;
        atomic_fetch_add(&o->n_refused, (uint64_t)j->n);
        cd_logf("info", "claimed messages refused after an opt-out", "\"count\":%d", j->n);
    }
    free(j->list);
    free(j->reason);
}

/* Submits what the transports will take; keeps the rest in order for later. */
static void submit_pending(cd_outbox *o)
{
    int kept = 0;
    cd_db *db = NULL;
    release_job j = {0};
    for (int i = 0; i < o->npend; i++) {
        pending *p = &o->pend[i];
        tport *tp = transport_for(o, p->transport);
        char ref[64];
        snprintf(ref, sizeof ref, "%lld/%s", (long long)p->account_id, p->id);
        if (tp == NULL) {
            /* Nothing can send it: fail it now rather than hold it forever. */
            push(o, sent_report(p->transport, ref, false, NULL, true, "transport_unavailable"));
            unpend(o, p);
            continue;
        }
        cd_sms sms = {.id = ref, .to = p->to, .from = p->from, .text = p->text};
        if (!tp->busy && still_allowed(o, p, &db, &j) == 1) {
            if (tp->ops->submit(tp->t, &sms) == 0) {
                atomic_fetch_add(&o->n_submitted, 1);
                unpend(o, p);
                continue;
            }
            tp->busy = true;
        }
        o->pend[kept++] = *p;
    }
    o->npend = kept;
    if (db)
        cd_store_release(o->store, db);
    refuse_pending(o, &j);
}

/* issue 8 item 1: messages claimed for a link that then went down are given back to the
 * queue rather than held in memory as 'sending', where an opt-out could not reach them;
 * the link's messages are not claimed again until it is ready. */

static void give_back(cd_outbox *o)
{
    int down = 0;
    for (int i = 0; i < 3; i++)
        down += o->tports[i].down;
    if (down == 0 || o->npend == 0)
        return;
    release_job j = {.list = cd_xcalloc((size_t)o->npend, sizeof(pending))};
    int kept = 0;
    for (int i = 0; i < o->npend; i++) {
        tport *tp = transport_for(o, o->pend[i].transport);
        if (tp && tp->down)
            j.list[j.n++] = o->pend[i];
        else
            o->pend[kept++] = o->pend[i];
    }
    cd_err err = {0};
    if (j.n > 0 && cd_store_run(o->store, job_release, &j, &err) != 0) {
        for (int i = 0; i < j.n; i++) /* kept for the next round */
            o->pend[kept++] = j.list[i];
        j.n = 0;
    }
    for (int i = 0; i < j.n; i++)
        unpend(o, &j.list[i]);
    if (j.n > 0)
        cd_logf("info", "messages for a link that is down went back to the queue", "\"count\":%d",
                j.n);
    o->npend = kept;
    free(j.list);
}

/* ---- the loop ---- */

static int job_requeue(cd_db *db, void *arg, cd_err *err)
{
    return cd_store_message_requeue_sending(db, cd_now_ms(), arg, err);
}

/* Takes back the writer jobs whose commits are over. */
static void finish_async(cd_outbox *o)
{
    pthread_mutex_lock(&o->lock);
    claim_job *cj = o->claim_ready;
    report_batch *rb = o->reports_ready;
    o->claim_ready = NULL;
    o->reports_ready = NULL;
    pthread_mutex_unlock(&o->lock);
    if (cj != NULL) {
        o->claim_inflight = NULL;
        finish_claim(o, cj);
    }
    if (rb != NULL) {
        o->reports_inflight = NULL;
        finish_reports(o, rb);
    }
}

/* Sleeps until there is something to do: a kick (a commit may have queued a message), a
 * report (room in a window), a writer job back, or the poll interval. */
static void wait_for_work(cd_outbox *o)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t wait_ms = 200; /* poll: due times pass while nobody kicks */
    int64_t left = o->next_scan_ms - cd_now_ms();
    if (o->rescan && left > 0 && left < wait_ms)
        wait_ms = left; /* the scan that waits for SCAN_IDLE_MS */
    until.tv_nsec += wait_ms * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&o->lock);
    bool timed_out = false;
    while (!o->stop && !o->kicked && !o->reported && !o->claim_ready && !o->reports_ready &&
           !timed_out)
        timed_out = pthread_cond_timedwait(&o->cond, &o->lock, &until) != 0;
    if (o->kicked || timed_out)
        o->rescan = true;
    if (o->reported)
        for (int i = 0; i < 3; i++)
            o->tports[i].busy = false; /* a report may mean room in the window */
    o->kicked = o->reported = false;
    pthread_mutex_unlock(&o->lock);
}

/* Before the worker ends: the jobs in flight come back (the store answers every job, also
 * when it closes), so that nothing they point to is freed under them. A claim that became
 * durable is submitted, as it was when the worker waited for its claims: the reports that
 * come back before the transports close are written by cd_outbox_halt. */
static void drain_async(cd_outbox *o)
{
    for (;;) {
        finish_async(o);
        submit_pending(o);
        if (o->claim_inflight == NULL && o->reports_inflight == NULL)
            return;
        pthread_mutex_lock(&o->lock);
        while (!o->claim_ready && !o->reports_ready)
            pthread_cond_wait(&o->cond, &o->lock);
        pthread_mutex_unlock(&o->lock);
    }
}

static void *outbox_main(void *arg)
{
    cd_thread_name("cd-outbox");
    cd_outbox *o = arg;
    int requeued = 0;
    cd_err err = {0};
    if (cd_store_run(o->store, job_requeue, &requeued, &err) == 0 && requeued > 0)
        cd_logf("info", "requeued messages left sending", "\"count\":%d", requeued);
    /* Only now: a message claimed as it is queued must not be one the requeue puts back. */
    pthread_mutex_lock(&o->lock);
    o->claiming = true;
    pthread_mutex_unlock(&o->lock);
    cd_store_set_claimer(o->store, &o->claimer);
    o->rescan = true;
    for (;;) {
        pthread_mutex_lock(&o->lock);
        bool stop = o->stop;
        pthread_mutex_unlock(&o->lock);
        if (stop)
            break;
        finish_async(o);
        submit_pending(o); /* first: a report may have made room in a window */
        process_reports(o, false);
        cd_upkeep_run(o->store, &o->upkeep);
        fill_pending(o);
        submit_pending(o);
        give_back(o);
        wait_for_work(o);
    }
    drain_async(o);
    return NULL;
}

cd_outbox *cd_outbox_start(cd_store *store, const cd_outbox_config *cfg, cd_err *err)
{
    cd_outbox *o = cd_xcalloc(1, sizeof *o);
    o->store = store;
    o->cfg = *cfg;
    if (o->cfg.max_attempts <= 0)
        o->cfg.max_attempts = 8;
    snprintf(o->default_transport, sizeof o->default_transport, "%s",
             cfg->default_transport && *cfg->default_transport ? cfg->default_transport : "sink");
    cd_message_set_default_transport(o->default_transport);
    o->pend = cd_xcalloc(MAX_PENDING + MAX_DIRECT, sizeof(pending));
    o->claimer = (cd_store_claimer){
        .reserve = claimer_reserve, .settle = claimer_settle, .settled = claimer_settled, .arg = o};
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    const struct cd_transport_ops *ops[3] = {&cd_transport_sink, &cd_transport_smpp,
                                             &cd_transport_http};
    const char *urls[3] = {"sink:", cfg->smpp_url, cfg->http_url};
    for (int i = 0; i < 3; i++) {
        o->tports[i].ops = ops[i];
        o->tports[i].box = o;
        if (urls[i] == NULL || *urls[i] == '\0')
            continue;
        cd_transport_events ev = {.arg = &o->tports[i],
                                  .sent = on_sent,
                                  .inbound = on_inbound,
                                  .receipt = on_receipt,
                                  .link = on_link};
        o->tports[i].t = ops[i]->open(urls[i], &ev, err);
        /* A transport with a link is live once it reports it up (before this thread
         * looks at the report: the worker has not started yet). */
        o->tports[i].live = ops[i]->linked == NULL;
        if (o->tports[i].t == NULL) {
            cd_outbox_stop(o);
            return NULL;
        }
    }
    if (transport_for(o, o->default_transport) == NULL) {
        cd_fail(err, CD_EINVAL, "transport", "the default transport %s is not configured",
                o->default_transport);
        cd_outbox_stop(o);
        return NULL;
    }
    if (pthread_create(&o->thread, NULL, outbox_main, o) != 0) {
        cd_fail(err, CD_EINTERNAL, "", "cannot start the delivery worker");
        cd_outbox_stop(o);
        return NULL;
    }
    o->started = true;
    return o;
}

void cd_outbox_metrics(cd_outbox *o, cd_buf *out)
{
    const struct {
        const char *name, *help;
        uint64_t v;
    } c[] = {
        {"submitted", "Messages handed to a transport.", atomic_load(&o->n_submitted)},
        {"sent", "Messages a transport accepted (recorded as sent).", atomic_load(&o->n_sent)},
        {"retried", "Submits that failed and were queued again.", atomic_load(&o->n_retried)},
        {"failed", "Submits that failed for good.", atomic_load(&o->n_failed)},
        {"receipts", "Delivery receipts processed.", atomic_load(&o->n_receipts)},
        {"inbound", "Inbound messages from transports stored.", atomic_load(&o->n_inbound)},
        {"refused", "Queued messages refused at claim (consent gone, no sender).",
         atomic_load(&o->n_refused)},
        {"claimed_queued", "Messages claimed in the transaction that queued them.",
         atomic_load(&o->n_direct)},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        cd_buf_printf(out,
                      "# HELP consentd_outbox_%s_total %s\n# TYPE consentd_outbox_%s_total "
                      "counter\nconsentd_outbox_%s_total %llu\n",
                      c[i].name, c[i].help, c[i].name, c[i].name, (unsigned long long)c[i].v);
    cd_buf_printf(out,
                  "# HELP consentd_inbound_unrouted_total Inbound messages to a number no "
                  "account owns, kept as unrouted.\n# TYPE consentd_inbound_unrouted_total "
                  "counter\nconsentd_inbound_unrouted_total %llu\n",
                  (unsigned long long)atomic_load(&o->n_unrouted));
    cd_buf_printf(out,
                  "# HELP consentd_outbox_waiting Claimed messages waiting for a transport.\n"
                  "# TYPE consentd_outbox_waiting gauge\nconsentd_outbox_waiting %d\n",
                  atomic_load(&o->npend));
}

void cd_outbox_kick(cd_outbox *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->lock);
    o->kicked = true;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

void cd_outbox_halt(cd_outbox *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->lock);
    bool first = !o->joined;
    bool started = o->started && !o->joined;
    o->stop = true;
    o->joined = true;
    o->claiming = false; /* before the transports close: claimer_reserve reads them */
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
    if (first) /* the first halt comes while the store is open (cd_server_stop) */
        cd_store_set_claimer(o->store, NULL);
    if (started)
        pthread_join(o->thread, NULL);
    /* issue 8 item 13: reports that came in after the worker's last round (a receipt just
     * before SIGTERM) are written now, while the store is still open and the transports
     * can still be told; what arrives while they close is answered by nobody and the
     * remote end delivers it again. */
    if (started)
        process_reports(o, true);
    for (int i = 0; i < 3; i++) {
        if (o->tports[i].t)
            o->tports[i].ops->close(o->tports[i].t);
        o->tports[i].t = NULL;
    }
}

void cd_outbox_stop(cd_outbox *o)
{
    if (o == NULL)
        return;
    cd_outbox_halt(o);
    /* Reports that arrived while the transports closed: unacknowledged, so delivered again;
     * their messages are still 'sending' and go back to the queue at the next start. */
    while (o->head) {
        report *r = o->head;
        o->head = r->next;
        report_free(r);
    }
    for (int i = 0; i < o->npend; i++)
        free(o->pend[i].text);
    free(o->pend);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
    free(o);
}
