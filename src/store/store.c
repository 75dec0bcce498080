/* store/store.c -- backend selection, the reader pool, and the public cd_store_* calls,
 * each of which forwards to the connection's backend. */
#include "store/store_int.h"

#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "util/xalloc.h"

static const struct cd_store_ops *const backends[] = {&cd_store__sqlite_ops};

static const struct cd_store_ops *pick(const char *url)
{
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        size_t n = strlen(backends[i]->scheme);
        if (strncmp(url, backends[i]->scheme, n) == 0 && url[n] == ':')
            return backends[i];
    }
    return NULL;
}

cd_store *cd_store_open(const char *url, cd_err *err)
{
    const struct cd_store_ops *ops = url ? pick(url) : NULL;
    if (ops == NULL) {
        cd_fail(err, CD_EINVAL, "db", "unsupported database URL (use sqlite:PATH)");
        return NULL;
    }
    cd_store *s = cd_xcalloc(1, sizeof *s);
    s->ops = ops;
    s->url = cd_xstrdup(url);
    s->max_readers = 16;
    s->serve_fd = -1;
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_cond, NULL);
    pthread_mutex_init(&s->types_lock, NULL);
    pthread_mutex_init(&s->keys_lock, NULL);
    cd_db *w = ops->connect(s, url, true, err);
    if (w == NULL)
        goto fail;
    if (ops->migrate(w, &s->schema_version, err) != 0) {
        ops->disconnect(w);
        goto fail;
    }
    s->writer = cd_store__writer_start(s, w, err);
    if (s->writer == NULL) {
        ops->disconnect(w);
        goto fail;
    }
    cd_store_set_limits(s, CD_STORE_QUEUE_DEFAULT, CD_STORE_DEADLINE_MS_DEFAULT);
    return s;
fail:
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_cond);
    pthread_mutex_destroy(&s->types_lock);
    pthread_mutex_destroy(&s->keys_lock);
    free(s->url);
    free(s);
    return NULL;
}

void cd_store_close(cd_store *s)
{
    if (s == NULL)
        return;
    cd_store__writer_stop(s->writer);
    cd_store__keys_unmap(s);
    if (s->serve_fd >= 0)
        close(s->serve_fd); /* releases the lock */
    while (s->free_readers) {
        cd_db *db = s->free_readers;
        s->free_readers = db->next_free;
        s->ops->disconnect(db);
    }
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_cond);
    pthread_mutex_destroy(&s->types_lock);
    pthread_mutex_destroy(&s->keys_lock);
    free(s->url);
    free(s);
}

int cd_store_serve_lock(cd_store *s, cd_err *err)
{
    if (s->ops->serve_lock == NULL || s->serve_fd >= 0)
        return 0;
    int fd = s->ops->serve_lock(s->url, err);
    if (fd == -1)
        return -1;
    s->serve_fd = fd;
    if (fd >= 0)
        cd_store__keys_map(s, fd);
    return 0;
}

int cd_store_schema_version(cd_store *s)
{
    return s->schema_version;
}

/* A checked-out reader holds one read transaction until it is released: every read of a
 * request sees the same snapshot, and SQLite takes its file locks once instead of once
 * per statement (each lock is a few fcntl calls, which showed up in profiles). */
static cd_db *begin_read(cd_db *db)
{
    cd_store__keys_began(db);
    if (db->ops->exec(db, "BEGIN", NULL) != 0) {
        cd_store *s = db->store;
        db->ops->disconnect(db);
        pthread_mutex_lock(&s->pool_lock);
        s->nreaders--; /* the slot is free again */
        pthread_cond_signal(&s->pool_cond);
        pthread_mutex_unlock(&s->pool_lock);
        return NULL;
    }
    return db;
}

cd_db *cd_store_reader(cd_store *s)
{
    pthread_mutex_lock(&s->pool_lock);
    for (;;) {
        if (s->free_readers) {
            cd_db *db = s->free_readers;
            s->free_readers = db->next_free;
            pthread_mutex_unlock(&s->pool_lock);
            return begin_read(db);
        }
        if (s->nreaders < s->max_readers)
            break;
        pthread_cond_wait(&s->pool_cond, &s->pool_lock);
    }
    s->nreaders++;
    pthread_mutex_unlock(&s->pool_lock);
    /* Connect outside the lock: opening a file is slow and needs no shared state. */
    cd_err err;
    cd_db *db = s->ops->connect(s, s->url, false, &err);
    if (db == NULL) {
        pthread_mutex_lock(&s->pool_lock);
        s->nreaders--;
        pthread_mutex_unlock(&s->pool_lock);
        return NULL;
    }
    return begin_read(db);
}

void cd_store_release(cd_store *s, cd_db *db)
{
    if (db == NULL)
        return;
    if (db->ops->exec(db, "COMMIT", NULL) != 0) {
        /* A reader that cannot end its transaction is not reused. */
        db->ops->disconnect(db);
        pthread_mutex_lock(&s->pool_lock);
        s->nreaders--;
        pthread_cond_signal(&s->pool_cond);
        pthread_mutex_unlock(&s->pool_lock);
        return;
    }
    pthread_mutex_lock(&s->pool_lock);
    db->next_free = s->free_readers;
    s->free_readers = db;
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
}

int cd_store_submit(cd_store *s, cd_job_fn fn, cd_job_done_fn done, void *arg, cd_err *err)
{
    return cd_store__writer_submit(s->writer, fn, done, arg, false, false, err);
}

int cd_store_submit_rerunnable(cd_store *s, cd_job_fn fn, cd_job_done_fn done, void *arg,
                               cd_err *err)
{
    return cd_store__writer_submit(s->writer, fn, done, arg, false, true, err);
}

bool cd_store_batch_join(cd_db *db, const cd_batch_hook *h)
{
    if (!db->in_batch || (db->batch_hook != NULL && db->batch_hook != h))
        return false;
    db->batch_hook = h;
    return true;
}

bool cd_store_after_durable(cd_db *db, cd_store_durable_fn fn, void *arg)
{
    if (!db->in_batch || db->afters == NULL)
        return false;
    cd_after **tail = db->afters; /* in the order registered: a job's list is short */
    while (*tail)
        tail = &(*tail)->next;
    *tail = cd_xmalloc(sizeof **tail);
    **tail = (cd_after){.fn = fn, .arg = arg, .next = NULL};
    return true;
}

/* The account's opt-out counter (a slot shared by the accounts equal modulo its size). */
static _Atomic uint64_t *optout_counter(cd_store *s, int64_t account_id)
{
    return &s->optout_epoch[(uint64_t)account_id %
                            (sizeof s->optout_epoch / sizeof s->optout_epoch[0])];
}

typedef struct optout_note {
    cd_store *store;
    int64_t account_id;
} optout_note;

static void optout_durable(void *arg, bool durable)
{
    optout_note *n = arg;
    if (durable)
        atomic_fetch_add(optout_counter(n->store, n->account_id), 1);
    free(n);
}

void cd_store_optout_noted(cd_db *db, int64_t account_id)
{
    optout_note *n = cd_xmalloc(sizeof *n);
    *n = (optout_note){.store = db->store, .account_id = account_id};
    if (!cd_store_after_durable(db, optout_durable, n))
        optout_durable(n, true); /* off the writer's batch: at once, to be safe */
}

uint64_t cd_store_optout_epoch(cd_store *s, int64_t account_id)
{
    return atomic_load(optout_counter(s, account_id));
}

cd_store *cd_store_of(cd_db *db)
{
    return db->store;
}

void cd_store_set_claimer(cd_store *s, const cd_store_claimer *c)
{
    atomic_store(&s->claimer, c);
}

const cd_store_claimer *cd_store_claimer_of(cd_db *db)
{
    return db->in_batch && db->afters ? atomic_load(&db->store->claimer) : NULL;
}

void cd_store_set_limits(cd_store *s, int queue_max, int deadline_ms)
{
    cd_store__writer_limits(s->writer, queue_max, deadline_ms);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool finished;
    int rc;
    cd_err err;
} sync_wait;

static void sync_done(void *arg, int rc, const cd_err *err)
{
    sync_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    if (rc != 0 && err)
        w->err = *err;
    w->finished = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

typedef struct {
    cd_job_fn fn;
    void *arg;
    sync_wait wait;
} sync_job;

static int sync_run(cd_db *db, void *arg, cd_err *err)
{
    sync_job *j = arg;
    return j->fn(db, j->arg, err);
}

static void sync_finish(void *arg, int rc, const cd_err *err)
{
    sync_job *j = arg;
    sync_done(&j->wait, rc, err);
}

int cd_store_run(cd_store *s, cd_job_fn fn, void *arg, cd_err *err)
{
    sync_job j = {.fn = fn, .arg = arg};
    pthread_mutex_init(&j.wait.lock, NULL);
    pthread_cond_init(&j.wait.cond, NULL);
    /* Internal: the caller waits anyway, and what it writes (a STOP from the delivery
     * worker, an operator's command) must not be refused or dropped under load. */
    int rc = cd_store__writer_submit(s->writer, sync_run, sync_finish, &j, true, false, err);
    if (rc == 0) {
        pthread_mutex_lock(&j.wait.lock);
        while (!j.wait.finished)
            pthread_cond_wait(&j.wait.cond, &j.wait.lock);
        pthread_mutex_unlock(&j.wait.lock);
        rc = j.wait.rc;
        if (rc != 0 && err)
            *err = j.wait.err;
    }
    pthread_mutex_destroy(&j.wait.lock);
    pthread_cond_destroy(&j.wait.cond);
    return rc;
}

void cd_store_on_commit(cd_store *s, cd_store_commit_hook hook, void *arg)
{
    s->commit_hook = hook;
    s->commit_hook_arg = arg;
}

/* ---- fault injection (tests only) ---- */

void cd_store__fail_after(cd_store *s, int n, bool persist, cd_errcode code)
{
    atomic_store(&s->fault_code, code ? (int)code : (int)CD_ESTORE);
    atomic_store(&s->fault_persist, persist);
    atomic_store(&s->fault_fired, 0);
    atomic_store(&s->fault_left, n > 0 ? n : 0);
}

int cd_store__faults_fired(cd_store *s)
{
    return atomic_load(&s->fault_fired);
}

/* The slow path of faulted(): counts this call down and fails it if it is the n-th. */
static int fault_tick(cd_store *s, cd_err *err)
{
    int left = atomic_load(&s->fault_left);
    while (left > 0 && !atomic_compare_exchange_weak(&s->fault_left, &left, left - 1))
        ;
    if (left != 1)
        return 0;
    if (atomic_load(&s->fault_persist))
        atomic_store(&s->fault_left, 1); /* the next call fails too */
    atomic_fetch_add(&s->fault_fired, 1);
    return cd_fail(err, (cd_errcode)atomic_load(&s->fault_code), NULL, "injected fault");
}

/* Checked first in every forwarding call: -1 (err set) when an injected fault is due. */
static inline int faulted(cd_db *db, cd_err *err)
{
    cd_store *s = db->store;
    if (atomic_load_explicit(&s->fault_left, memory_order_relaxed) == 0)
        return 0;
    return fault_tick(s, err);
}

#define FORWARD(db, err, call) (faulted((db), (err)) ? -1 : (db)->ops->call)

/* ---- forwarding ---- */

int cd_store_account_insert(cd_db *db, cd_account *a, cd_err *err)
{
    return FORWARD(db, err, account_insert(db, a, err));
}
int cd_store_account_get(cd_db *db, const char *by, const char *value, cd_account *out, cd_err *err)
{
    return FORWARD(db, err, account_get(db, by, value, out, err));
}
int cd_store_account_set_head(cd_db *db, int64_t account_id, int64_t seq, const char *hash,
                              cd_err *err)
{
    return FORWARD(db, err, account_set_head(db, account_id, seq, hash, err));
}
int cd_store_account_sign_head(cd_db *db, int64_t account_id, const char *sig, cd_err *err)
{
    return FORWARD(db, err, account_sign_head(db, account_id, sig, err));
}
void cd_store_set_ledger_key(cd_store *s, const unsigned char key[32])
{
    s->has_ledger_key = key != NULL;
    if (key)
        memcpy(s->ledger_key, key, sizeof s->ledger_key);
}
const unsigned char *cd_store_ledger_key(cd_db *db)
{
    return db->store->has_ledger_key ? db->store->ledger_key : NULL;
}
int cd_store_account_each(cd_db *db, cd_account_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, account_each(db, each, arg, err));
}
int cd_store_key_insert(cd_db *db, const cd_apikey *k, cd_err *err)
{
    return FORWARD(db, err, key_insert(db, k, err));
}
int cd_store_key_get(cd_db *db, const char *key_id, cd_apikey *out, cd_err *err)
{
    return FORWARD(db, err, key_get(db, key_id, out, err));
}
int cd_store_key_auth(cd_db *db, const char *key_id, cd_apikey *key, cd_account *account,
                      cd_err *err)
{
    if (cd_store__keys_recall(db, key_id, key, account))
        return 0;
    int rc = FORWARD(db, err, key_auth(db, key_id, key, account, err));
    if (rc == 0)
        cd_store__keys_remember(db, key, account);
    return rc;
}
int cd_store_key_revoke(cd_db *db, int64_t account_id, const char *key_id, int64_t now_ms,
                        cd_err *err)
{
    int rc = FORWARD(db, err, key_revoke(db, account_id, key_id, now_ms, err));
    if (rc == 0)
        cd_store__keys_revoked(db);
    return rc;
}
int cd_store_key_each(cd_db *db, int64_t account_id, cd_key_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, key_each(db, account_id, each, arg, err));
}
int cd_store_contact_get(cd_db *db, int64_t account_id, int64_t id, cd_contact *out, cd_err *err)
{
    return FORWARD(db, err, contact_get(db, account_id, id, out, err));
}
int cd_store_contact_by_phone(cd_db *db, int64_t account_id, const char *e164, cd_contact *out,
                              cd_err *err)
{
    return FORWARD(db, err, contact_by_phone(db, account_id, e164, out, err));
}
int cd_store_contact_id_by_phone(cd_db *db, int64_t account_id, const char *e164, int64_t *id,
                                 cd_err *err)
{
    return FORWARD(db, err, contact_id_by_phone(db, account_id, e164, id, err));
}
int cd_store_contact_put(cd_db *db, cd_contact *c, cd_err *err)
{
    return FORWARD(db, err, contact_put(db, c, err));
}
int cd_store_contact_list(cd_db *db, int64_t account_id, const cd_contact_filter *f,
                          cd_contact_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, contact_list(db, account_id, f, each, arg, err));
}
int cd_store_named_insert(cd_db *db, const char *kind, int64_t account_id, cd_named *n, cd_err *err)
{
    return FORWARD(db, err, named_insert(db, kind, account_id, n, err));
}
int cd_store_named_get(cd_db *db, const char *kind, int64_t account_id, int64_t id, cd_named *out,
                       cd_err *err)
{
    return FORWARD(db, err, named_get(db, kind, account_id, id, out, err));
}
int cd_store_named_by_name(cd_db *db, const char *kind, int64_t account_id, const char *name,
                           cd_named *out, cd_err *err)
{
    return FORWARD(db, err, named_by_name(db, kind, account_id, name, out, err));
}

/* issue 12: no path deletes a message type, so one seen once stays a type of its account.
 * Omeda checks every submission's types on an HTTP thread; this memo spares that read.
 * issue 10: the same for groups, which ProTexting checks on every opt-in. */
static size_t type_slot(const cd_store *s, int64_t account_id, int64_t id, bool group)
{
    uint64_t h = ((uint64_t)account_id * 0x9E3779B97F4A7C15u) ^ (uint64_t)id ^ (group ? 1u : 0u);
    return (size_t)(h ^ (h >> 29)) % (sizeof s->types / sizeof s->types[0]);
}

static bool named_known(cd_db *db, int64_t account_id, int64_t id, bool group)
{
    cd_store *s = db->store;
    size_t i = type_slot(s, account_id, id, group);
    pthread_mutex_lock(&s->types_lock);
    bool known =
        s->types[i].account_id == account_id && s->types[i].id == id && s->types[i].group == group;
    pthread_mutex_unlock(&s->types_lock);
    return known;
}

static void named_seen(cd_db *db, int64_t account_id, int64_t id, bool group)
{
    cd_store *s = db->store;
    size_t i = type_slot(s, account_id, id, group);
    pthread_mutex_lock(&s->types_lock);
    s->types[i].account_id = account_id;
    s->types[i].id = id;
    s->types[i].group = group;
    pthread_mutex_unlock(&s->types_lock);
}

bool cd_store_type_known(cd_db *db, int64_t account_id, int64_t id)
{
    return named_known(db, account_id, id, false);
}

void cd_store_type_seen(cd_db *db, int64_t account_id, int64_t id)
{
    named_seen(db, account_id, id, false);
}

bool cd_store_group_known(cd_db *db, int64_t account_id, int64_t id)
{
    return named_known(db, account_id, id, true);
}

void cd_store_group_seen(cd_db *db, int64_t account_id, int64_t id)
{
    named_seen(db, account_id, id, true);
}

int cd_store_named_list(cd_db *db, const char *kind, int64_t account_id, int64_t after_id,
                        int limit, cd_named_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, named_list(db, kind, account_id, after_id, limit, each, arg, err));
}
int cd_store_consent_get(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                         cd_consent *out, cd_err *err)
{
    return FORWARD(db, err, consent_get(db, account_id, contact_id, scope, out, err));
}
int cd_store_consent_put(cd_db *db, int64_t account_id, int64_t contact_id, const cd_consent *c,
                         cd_err *err)
{
    return FORWARD(db, err, consent_put(db, account_id, contact_id, c, err));
}
int cd_store_consent_delete(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                            cd_err *err)
{
    return FORWARD(db, err, consent_delete(db, account_id, contact_id, scope, err));
}
int cd_store_consent_list(cd_db *db, int64_t account_id, int64_t contact_id,
                          cd_consent_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, consent_list(db, account_id, contact_id, each, arg, err));
}
int cd_store_event_insert(cd_db *db, cd_event *ev, cd_err *err)
{
    return FORWARD(db, err, event_insert(db, ev, err));
}
int cd_store_event_list(cd_db *db, int64_t account_id, const cd_event_filter *f,
                        cd_event_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, event_list(db, account_id, f, each, arg, err));
}
int cd_store_event_scan(cd_db *db, int64_t account_id, cd_event_each_fn each, void *arg,
                        cd_err *err)
{
    return FORWARD(db, err, event_scan(db, account_id, each, arg, err));
}
int cd_store_message_insert(cd_db *db, const cd_message *m, cd_err *err)
{
    return FORWARD(db, err, message_insert(db, m, err));
}

int cd_store_message_count(cd_db *db, int64_t account_id, const char *to, const char *kind,
                           const char *action, int64_t since_ms, int *out, cd_err *err)
{
    return FORWARD(db, err, message_count(db, account_id, to, kind, action, since_ms, out, err));
}
int cd_store_message_get(cd_db *db, int64_t account_id, const char *id, cd_message *out,
                         cd_err *err)
{
    return FORWARD(db, err, message_get(db, account_id, id, out, err));
}
int cd_store_message_list(cd_db *db, int64_t account_id, const cd_message_filter *f,
                          cd_message_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, message_list(db, account_id, f, each, arg, err));
}
int cd_store_idem_get(cd_db *db, int64_t account_id, const char *key, cd_idem *out, cd_err *err)
{
    return FORWARD(db, err, idem_get(db, account_id, key, out, err));
}
int cd_store_idem_put(cd_db *db, int64_t account_id, const char *key, const cd_idem *in,
                      cd_err *err)
{
    return FORWARD(db, err, idem_put(db, account_id, key, in, err));
}

int cd_store_message_update(cd_db *db, const cd_message *m, cd_err *err)
{
    return FORWARD(db, err, message_update(db, m, err));
}
int cd_store_message_due(cd_db *db, int64_t now_ms, int limit, cd_message_each_fn each, void *arg,
                         cd_err *err)
{
    return FORWARD(db, err, message_due(db, now_ms, limit, each, arg, err));
}
int cd_store_message_refuse_queued(cd_db *db, int64_t account_id, int64_t contact_id,
                                   const char *scope, int64_t now_ms, const char *reason,
                                   int *count, cd_err *err)
{
    return FORWARD(
        db, err,
        message_refuse_queued(db, account_id, contact_id, scope, now_ms, reason, count, err));
}
int cd_store_message_mark_sent(cd_db *db, int64_t account_id, const char *id, const char *transport,
                               const char *transport_id, int64_t now_ms, cd_err *err)
{
    return FORWARD(db, err,
                   message_mark_sent(db, account_id, id, transport, transport_id, now_ms, err));
}
int cd_store_message_unclaim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                             cd_err *err)
{
    return FORWARD(db, err, message_unclaim(db, account_id, id, now_ms, err));
}
int cd_store_message_due_fair(cd_db *db, int64_t now_ms, int limit, const cd_due_filter *f,
                              cd_message_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, message_due_fair(db, now_ms, limit, f, each, arg, err));
}
int cd_store_unrouted_insert(cd_db *db, cd_unrouted *u, cd_err *err)
{
    return FORWARD(db, err, unrouted_insert(db, u, err));
}
int cd_store_unrouted_list(cd_db *db, int limit, cd_unrouted_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, unrouted_list(db, limit, each, arg, err));
}
int cd_store_message_next_due(cd_db *db, int64_t *out_ms, cd_err *err)
{
    return FORWARD(db, err, message_next_due(db, out_ms, err));
}
int cd_store_message_requeue_sending(cd_db *db, int64_t now_ms, int *count, cd_err *err)
{
    return FORWARD(db, err, message_requeue_sending(db, now_ms, count, err));
}
int cd_store_message_claim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                           bool *claimed, cd_err *err)
{
    return FORWARD(db, err, message_claim(db, account_id, id, now_ms, claimed, err));
}
int cd_store_part_insert(cd_db *db, const char *transport, const char *remote_id,
                         int64_t account_id, const char *message_id, cd_err *err)
{
    return FORWARD(db, err, part_insert(db, transport, remote_id, account_id, message_id, err));
}
int cd_store_part_status(cd_db *db, const char *transport, const char *remote_id,
                         const char *status, int64_t account_id, const char *message_id,
                         int counts[3], cd_err *err)
{
    return FORWARD(
        db, err,
        part_status(db, transport, remote_id, status, account_id, message_id, counts, err));
}
int cd_store_part_message(cd_db *db, const char *transport, const char *remote_id, cd_message *out,
                          cd_err *err)
{
    return FORWARD(db, err, part_message(db, transport, remote_id, out, err));
}
int cd_store_flow_insert(cd_db *db, const cd_flow *f, cd_err *err)
{
    return FORWARD(db, err, flow_insert(db, f, err));
}
int cd_store_flow_update(cd_db *db, const cd_flow *f, cd_err *err)
{
    return FORWARD(db, err, flow_update(db, f, err));
}
int cd_store_flow_get(cd_db *db, int64_t account_id, const char *id, cd_flow *out, cd_err *err)
{
    return FORWARD(db, err, flow_get(db, account_id, id, out, err));
}
int cd_store_flow_list(cd_db *db, int64_t account_id, const cd_flow_filter *f, cd_flow_each_fn each,
                       void *arg, cd_err *err)
{
    return FORWARD(db, err, flow_list(db, account_id, f, each, arg, err));
}
int cd_store_flow_expired(cd_db *db, int64_t now_ms, int limit, cd_flow_each_fn each, void *arg,
                          cd_err *err)
{
    return FORWARD(db, err, flow_expired(db, now_ms, limit, each, arg, err));
}
int cd_store_sender_put(cd_db *db, const cd_sender *s, cd_err *err)
{
    return FORWARD(db, err, sender_put(db, s, err));
}
int cd_store_sender_get(cd_db *db, const char *number, cd_sender *out, cd_err *err)
{
    return FORWARD(db, err, sender_get(db, number, out, err));
}
int cd_store_sender_delete(cd_db *db, int64_t account_id, const char *number, cd_err *err)
{
    return FORWARD(db, err, sender_delete(db, account_id, number, err));
}
int cd_store_sender_list(cd_db *db, int64_t account_id, cd_sender_each_fn each, void *arg,
                         cd_err *err)
{
    return FORWARD(db, err, sender_list(db, account_id, each, arg, err));
}
int cd_store_settings_get(cd_db *db, int64_t account_id, json_t **out, cd_err *err)
{
    return FORWARD(db, err, settings_get(db, account_id, out, err));
}
int cd_store_settings_read(cd_db *db, int64_t account_id, json_t **out, cd_err *err)
{
    return FORWARD(db, err, settings_read(db, account_id, out, err));
}
int cd_store_settings_put(cd_db *db, int64_t account_id, const json_t *settings, cd_err *err)
{
    return FORWARD(db, err, settings_put(db, account_id, settings, err));
}

int cd_store_idem_purge(cd_db *db, int64_t before_ms, int limit, int *count, cd_err *err)
{
    return FORWARD(db, err, idem_purge(db, before_ms, limit, count, err));
}

/* ---- issue 14: Opentact profiles, leases, pool health, revoked JWTs ---- */

int cd_store_profile_put(cd_db *db, const cd_profile *p, cd_err *err)
{
    return FORWARD(db, err, profile_put(db, p, err));
}
int cd_store_profile_get(cd_db *db, int64_t account_id, const char *uuid, cd_profile *out,
                         cd_err *err)
{
    return FORWARD(db, err, profile_get(db, account_id, uuid, out, err));
}
int cd_store_profile_delete(cd_db *db, int64_t account_id, const char *uuid, cd_err *err)
{
    return FORWARD(db, err, profile_delete(db, account_id, uuid, err));
}
int cd_store_profile_list(cd_db *db, int64_t account_id, cd_profile_each_fn each, void *arg,
                          cd_err *err)
{
    return FORWARD(db, err, profile_list(db, account_id, each, arg, err));
}
int cd_store_sender_lease(cd_db *db, int64_t account_id, const char *number, const char *profile,
                          const char *lease_uuid, int64_t now_ms, cd_err *err)
{
    return FORWARD(db, err, sender_lease(db, account_id, number, profile, lease_uuid, now_ms, err));
}
int cd_store_sender_leases(cd_db *db, int64_t account_id, const char *profile,
                           cd_sender_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, sender_leases(db, account_id, profile, each, arg, err));
}
int cd_store_sender_used(cd_db *db, int64_t account_id, const char *number, int64_t now_ms,
                         cd_err *err)
{
    return FORWARD(db, err, sender_used(db, account_id, number, now_ms, err));
}
int cd_store_sender_receipt(cd_db *db, int64_t account_id, const char *number, const char *status,
                            int64_t at_ms, int64_t keep_since_ms, cd_err *err)
{
    return FORWARD(db, err,
                   sender_receipt(db, account_id, number, status, at_ms, keep_since_ms, err));
}
int cd_store_sender_health(cd_db *db, int64_t account_id, const char *number, int64_t since_ms,
                           int counts[3], cd_err *err)
{
    return FORWARD(db, err, sender_health(db, account_id, number, since_ms, counts, err));
}
int cd_store_sticky_get(cd_db *db, int64_t account_id, const char *profile, const char *to,
                        int64_t now_ms, char number[24], cd_err *err)
{
    return FORWARD(db, err, sticky_get(db, account_id, profile, to, now_ms, number, err));
}
int cd_store_sticky_put(cd_db *db, int64_t account_id, const char *profile, const char *to,
                        const char *number, int64_t until_ms, cd_err *err)
{
    return FORWARD(db, err, sticky_put(db, account_id, profile, to, number, until_ms, err));
}
int cd_store_jwt_revoke(cd_db *db, int64_t account_id, const char *jti, int64_t exp_ms,
                        int64_t now_ms, cd_err *err)
{
    return FORWARD(db, err, jwt_revoke(db, account_id, jti, exp_ms, now_ms, err));
}
int cd_store_jwt_revoked(cd_db *db, const char *jti, bool *revoked, cd_err *err)
{
    return FORWARD(db, err, jwt_revoked(db, jti, revoked, err));
}

/* ---- issue 11: lists ---- */
int cd_store_group_drop_opted_out(cd_db *db, int64_t account_id, int64_t group_id, int *count,
                                  cd_err *err)
{
    return FORWARD(db, err, group_drop_opted_out(db, account_id, group_id, count, err));
}
int cd_store_contact_ids_by_phones(cd_db *db, int64_t account_id, const char *const *phones,
                                   size_t n, int64_t *ids, cd_err *err)
{
    return FORWARD(db, err, contact_ids_by_phones(db, account_id, phones, n, ids, err));
}
/* Not forwarded through FORWARD: no fault is injected into these two, so that a test's
 * count of store calls is the same with and without them. */
int cd_store_rows_defer(cd_db *db, cd_err *err)
{
    return db->ops->rows_defer ? db->ops->rows_defer(db, err) : 0;
}
int cd_store_rows_end(cd_db *db, bool write, cd_err *err)
{
    return db->ops->rows_end ? db->ops->rows_end(db, write, err) : 0;
}
int cd_store_group_add_members(cd_db *db, int64_t account_id, int64_t group_id,
                               const int64_t *contact_ids, size_t n, cd_err *err)
{
    return FORWARD(db, err, group_add_members(db, account_id, group_id, contact_ids, n, err));
}

/* ---- issue 10: the last event ---- */

int cd_store_event_last(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                        cd_event *out, cd_err *err)
{
    return FORWARD(db, err, event_last(db, account_id, contact_id, scope, out, err));
}

/* ---- record helpers ---- */

void cd_flow_clear(cd_flow *f)
{
    json_decref(f->scopes);
    free(f->disclosure);
    free(f->confirm_text);
    memset(f, 0, sizeof *f);
}

void cd_flow_copy(cd_flow *dst, const cd_flow *src)
{
    *dst = *src;
    dst->scopes = json_incref(src->scopes);
    dst->disclosure = src->disclosure ? cd_xstrdup(src->disclosure) : NULL;
    dst->confirm_text = src->confirm_text ? cd_xstrdup(src->confirm_text) : NULL;
}

void cd_contact_clear(cd_contact *c)
{
    free(c->first_name);
    free(c->last_name);
    free(c->email);
    free(c->birthday);
    free(c->zip);
    free(c->city);
    for (int i = 0; i < CD_CONTACT_PARAMS; i++)
        free(c->params[i]);
    json_decref(c->custom);
    json_decref(c->tags);
    json_decref(c->groups);
    memset(c, 0, sizeof *c);
}

void cd_message_clear(cd_message *m)
{
    free(m->text);
    json_decref(m->history);
    free(m->history_json);
    memset(m, 0, sizeof *m);
}

void cd_idem_clear(cd_idem *i)
{
    free(i->body);
    memset(i, 0, sizeof *i);
}

/* ---- issue 15: the generic job queue ---- */

int cd_store_job_enqueue(cd_db *db, cd_job *j, cd_err *err)
{
    return FORWARD(db, err, job_enqueue(db, j, err));
}
int cd_store_job_get(cd_db *db, int64_t id, cd_job *out, cd_err *err)
{
    return FORWARD(db, err, job_get(db, id, out, err));
}
int cd_store_job_claim(cd_db *db, const char *kind, int64_t now_ms, int64_t lease_ms, int limit,
                       cd_job_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, job_claim(db, kind, now_ms, lease_ms, limit, each, arg, err));
}
int cd_store_job_complete(cd_db *db, int64_t id, cd_err *err)
{
    return FORWARD(db, err, job_complete(db, id, err));
}
int cd_store_job_retry(cd_db *db, int64_t id, int64_t due_ms, const char *error, int64_t now_ms,
                       cd_err *err)
{
    return FORWARD(db, err, job_retry(db, id, due_ms, error, now_ms, err));
}
int cd_store_job_dead(cd_db *db, int64_t id, const char *error, int64_t now_ms, cd_err *err)
{
    return FORWARD(db, err, job_dead(db, id, error, now_ms, err));
}
int cd_store_job_revive(cd_db *db, int64_t id, int64_t due_ms, cd_err *err)
{
    return FORWARD(db, err, job_revive(db, id, due_ms, err));
}
int cd_store_job_expired_any(cd_db *db, int64_t lease_before_ms, bool *any, cd_err *err)
{
    return FORWARD(db, err, job_expired_any(db, lease_before_ms, any, err));
}

int cd_store_job_requeue(cd_db *db, int64_t lease_before_ms, int64_t now_ms, int *count,
                         cd_err *err)
{
    return FORWARD(db, err, job_requeue(db, lease_before_ms, now_ms, count, err));
}
int cd_store_job_next_due(cd_db *db, const char *kind, int64_t *out_ms, cd_err *err)
{
    return FORWARD(db, err, job_next_due(db, kind, out_ms, err));
}
int cd_store_job_delete(cd_db *db, int64_t id, cd_err *err)
{
    return FORWARD(db, err, job_delete(db, id, err));
}

void cd_job_clear(cd_job *j)
{
    free(j->payload);
    memset(j, 0, sizeof *j);
}

/* ---- issue 15: webhooks ---- */

int cd_store_webhook_endpoint_put(cd_db *db, const cd_webhook_endpoint *e, cd_err *err)
{
    return FORWARD(db, err, webhook_endpoint_put(db, e, err));
}
int cd_store_webhook_endpoint_get(cd_db *db, int64_t account_id, const char *id,
                                  cd_webhook_endpoint *out, cd_err *err)
{
    return FORWARD(db, err, webhook_endpoint_get(db, account_id, id, out, err));
}
int cd_store_webhook_any(cd_db *db, int64_t account_id, bool *any, cd_err *err)
{
    return FORWARD(db, err, webhook_any(db, account_id, any, err));
}

int cd_store_webhook_endpoint_list(cd_db *db, int64_t account_id, cd_webhook_endpoint_each_fn each,
                                   void *arg, cd_err *err)
{
    return FORWARD(db, err, webhook_endpoint_list(db, account_id, each, arg, err));
}
int cd_store_webhook_endpoint_delete(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                                     cd_err *err)
{
    return FORWARD(db, err, webhook_endpoint_delete(db, account_id, id, now_ms, err));
}
int cd_store_webhook_event_insert(cd_db *db, const cd_webhook_event *ev, cd_err *err)
{
    return FORWARD(db, err, webhook_event_insert(db, ev, err));
}
int cd_store_webhook_delivery_insert(cd_db *db, cd_webhook_delivery *d, cd_err *err)
{
    return FORWARD(db, err, webhook_delivery_insert(db, d, err));
}
int cd_store_webhook_delivery_update(cd_db *db, const cd_webhook_delivery *d, cd_err *err)
{
    return FORWARD(db, err, webhook_delivery_update(db, d, err));
}
int cd_store_webhook_delivery_get(cd_db *db, int64_t account_id, int64_t id,
                                  cd_webhook_delivery *out, cd_err *err)
{
    return FORWARD(db, err, webhook_delivery_get(db, account_id, id, out, err));
}
int cd_store_webhook_delivery_list(cd_db *db, int64_t account_id,
                                   const cd_webhook_delivery_filter *f,
                                   cd_webhook_delivery_each_fn each, void *arg, cd_err *err)
{
    return FORWARD(db, err, webhook_delivery_list(db, account_id, f, each, arg, err));
}
int cd_store_webhook_target(cd_db *db, int64_t delivery_id, cd_webhook_target *out, cd_err *err)
{
    return FORWARD(db, err, webhook_target(db, delivery_id, out, err));
}

void cd_webhook_endpoint_clear(cd_webhook_endpoint *e)
{
    json_decref(e->events);
    memset(e, 0, sizeof *e);
}

/* ---- issue 12: Omeda opt queue submissions ---- */

int cd_store_submission_insert(cd_db *db, const cd_submission *s, cd_err *err)
{
    return FORWARD(db, err, submission_insert(db, s, err));
}

int cd_store_submission_get(cd_db *db, int64_t account_id, const char *uuid, cd_submission *out,
                            cd_err *err)
{
    return FORWARD(db, err, submission_get(db, account_id, uuid, out, err));
}

void cd_submission_clear(cd_submission *s)
{
    json_decref(s->detail);
    memset(s, 0, sizeof *s);
}
