/* store/store_int.h -- what the backends share with store.c and writer.c, and nobody else.
 * A backend fills one const struct cd_store_ops with designated initializers. */
#ifndef CD_STORE_STORE_INT_H
#define CD_STORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

struct cd_store_ops {
    const char *scheme; /* the URL prefix: "sqlite" */
    /* Opens one connection; `writer` says whether it is the single write connection. */
    cd_db *(*connect)(cd_store *s, const char *url, bool writer, cd_err *err);
    void (*disconnect)(cd_db *db);
    int (*migrate)(cd_db *db, int *version, cd_err *err);
    /* Transaction control, used by the writer only. */
    int (*exec)(cd_db *db, const char *sql, cd_err *err);
    /* Is a transaction open on db? After an error the database may have rolled the whole
     * transaction back on its own (SQLite does for SQLITE_FULL, _IOERR, _NOMEM). */
    bool (*in_transaction)(cd_db *db);
    /* Optional: durability off the writer thread (sqlite_sync.c). sync_start returns a
     * handle when the backend can COMMIT without waiting for the disk (commit_nosync) and
     * later make every such commit durable from another thread (sync_now, which must not
     * use the writer's connection; sync_idle is that thread's time for background work).
     * Without it, COMMIT is durable when it returns. */
    void *(*sync_start)(cd_db *db);
    int (*commit_nosync)(cd_db *db, cd_err *err);
    int (*sync_now)(void *sync, cd_err *err);
    void (*sync_idle)(void *sync);
    void (*sync_stop)(cd_db *db);
    /* Optional: a descriptor held while this process serves the database at `url` (one
     * server per database), -2 when there is nothing to hold (an in-memory database), or
     * -1 with *err (CD_ECONFLICT: another process holds it). */
    int (*serve_lock)(const char *url, cd_err *err);
    /* Optional: tells the process that holds serve_lock's lock, if any, that API keys were
     * revoked (store/keys.c). */
    void (*serve_notify)(const char *url);
    /* Optional: the tables this connection wrote since the last call (CD_STORE_WROTE_*),
     * forgotten by the call. Without it the writer reports CD_STORE_WROTE_ALL. */
    unsigned (*wrote)(cd_db *db);

    int (*account_insert)(cd_db *, cd_account *, cd_err *);
    int (*account_get)(cd_db *, const char *by, const char *value, cd_account *, cd_err *);
    int (*account_set_head)(cd_db *, int64_t, int64_t, const char *, cd_err *);
    int (*account_sign_head)(cd_db *, int64_t, const char *, cd_err *);
    int (*account_each)(cd_db *, cd_account_each_fn, void *, cd_err *);
    int (*key_insert)(cd_db *, const cd_apikey *, cd_err *);
    int (*key_get)(cd_db *, const char *, cd_apikey *, cd_err *);
    int (*key_auth)(cd_db *, const char *, cd_apikey *, cd_account *, cd_err *);
    int (*key_revoke)(cd_db *, int64_t, const char *, int64_t, cd_err *);
    int (*key_each)(cd_db *, int64_t, cd_key_each_fn, void *, cd_err *);
    int (*contact_get)(cd_db *, int64_t, int64_t, cd_contact *, cd_err *);
    int (*contact_by_phone)(cd_db *, int64_t, const char *, cd_contact *, cd_err *);
    int (*contact_id_by_phone)(cd_db *, int64_t, const char *, int64_t *, cd_err *);
    int (*contact_put)(cd_db *, cd_contact *, cd_err *);
    int (*contact_list)(cd_db *, int64_t, const cd_contact_filter *, cd_contact_each_fn, void *,
                        cd_err *);
    int (*named_insert)(cd_db *, const char *, int64_t, cd_named *, cd_err *);
    int (*named_get)(cd_db *, const char *, int64_t, int64_t, cd_named *, cd_err *);
    int (*named_by_name)(cd_db *, const char *, int64_t, const char *, cd_named *, cd_err *);
    int (*named_list)(cd_db *, const char *, int64_t, int64_t, int, cd_named_each_fn, void *,
                      cd_err *);
    int (*consent_get)(cd_db *, int64_t, int64_t, const char *, cd_consent *, cd_err *);
    int (*consent_put)(cd_db *, int64_t, int64_t, const cd_consent *, cd_err *);
    int (*consent_delete)(cd_db *, int64_t, int64_t, const char *, cd_err *);
    int (*consent_list)(cd_db *, int64_t, int64_t, cd_consent_each_fn, void *, cd_err *);
    int (*event_insert)(cd_db *, cd_event *, cd_err *);
    int (*event_list)(cd_db *, int64_t, const cd_event_filter *, cd_event_each_fn, void *,
                      cd_err *);
    int (*event_scan)(cd_db *, int64_t, cd_event_each_fn, void *, cd_err *);
    /* issue 10 */
    int (*event_last)(cd_db *, int64_t, int64_t, const char *, cd_event *, cd_err *);
    int (*message_insert)(cd_db *, const cd_message *, cd_err *);
    int (*message_count)(cd_db *, int64_t, const char *, const char *, const char *, int64_t, int *,
                         cd_err *);
    int (*message_get)(cd_db *, int64_t, const char *, cd_message *, cd_err *);
    int (*message_list)(cd_db *, int64_t, const cd_message_filter *, cd_message_each_fn, void *,
                        cd_err *);
    int (*message_update)(cd_db *, const cd_message *, cd_err *);
    int (*message_due)(cd_db *, int64_t, int, cd_message_each_fn, void *, cd_err *);
    int (*message_next_due)(cd_db *, int64_t *, cd_err *);
    int (*message_requeue_sending)(cd_db *, int64_t, int *, cd_err *);
    int (*message_claim)(cd_db *, int64_t, const char *, int64_t, bool *, cd_err *);
    int (*message_refuse_queued)(cd_db *, int64_t, int64_t, const char *, int64_t, const char *,
                                 int *, cd_err *);
    int (*message_unclaim)(cd_db *, int64_t, const char *, int64_t, cd_err *);
    int (*message_mark_sent)(cd_db *, int64_t, const char *, const char *, const char *, int64_t,
                             cd_err *);
    int (*message_due_fair)(cd_db *, int64_t, int, const cd_due_filter *, cd_message_each_fn,
                            void *, cd_err *);
    int (*unrouted_insert)(cd_db *, cd_unrouted *, cd_err *);
    int (*unrouted_list)(cd_db *, int, cd_unrouted_each_fn, void *, cd_err *);
    int (*part_insert)(cd_db *, const char *, const char *, int64_t, const char *, cd_err *);
    int (*part_status)(cd_db *, const char *, const char *, const char *, int64_t, const char *,
                       int[3], cd_err *);
    int (*part_message)(cd_db *, const char *, const char *, cd_message *, cd_err *);
    int (*flow_insert)(cd_db *, const cd_flow *, cd_err *);
    int (*flow_update)(cd_db *, const cd_flow *, cd_err *);
    int (*flow_get)(cd_db *, int64_t, const char *, cd_flow *, cd_err *);
    int (*flow_list)(cd_db *, int64_t, const cd_flow_filter *, cd_flow_each_fn, void *, cd_err *);
    int (*flow_expired)(cd_db *, int64_t, int, cd_flow_each_fn, void *, cd_err *);
    int (*sender_put)(cd_db *, const cd_sender *, cd_err *);
    int (*sender_get)(cd_db *, const char *, cd_sender *, cd_err *);
    int (*sender_delete)(cd_db *, int64_t, const char *, cd_err *);
    int (*sender_list)(cd_db *, int64_t, cd_sender_each_fn, void *, cd_err *);
    int (*settings_get)(cd_db *, int64_t, json_t **, cd_err *);
    int (*settings_put)(cd_db *, int64_t, const json_t *, cd_err *);
    int (*settings_read)(cd_db *, int64_t, json_t **, cd_err *);
    int (*idem_get)(cd_db *, int64_t, const char *, cd_idem *, cd_err *);
    int (*idem_purge)(cd_db *, int64_t, int, int *, cd_err *);
    /* issue 11 */
    int (*group_drop_opted_out)(cd_db *, int64_t, int64_t, int *, cd_err *);
    int (*group_add_members)(cd_db *, int64_t, int64_t, const int64_t *, size_t, cd_err *);
    int (*contact_ids_by_phones)(cd_db *, int64_t, const char *const *, size_t, int64_t *,
                                 cd_err *);
    /* issue 11: optional; cd_store_rows_defer and cd_store_rows_end */
    int (*rows_defer)(cd_db *, cd_err *);
    int (*rows_end)(cd_db *, bool, cd_err *);
    int (*idem_put)(cd_db *, int64_t, const char *, const cd_idem *, cd_err *);
    /* ---- issue 15: the generic job queue ---- */
    int (*job_enqueue)(cd_db *, cd_job *, cd_err *);
    int (*job_get)(cd_db *, int64_t, cd_job *, cd_err *);
    int (*job_claim)(cd_db *, const char *, int64_t, int64_t, int, cd_job_each_fn, void *,
                     cd_err *);
    int (*job_complete)(cd_db *, int64_t, cd_err *);
    int (*job_retry)(cd_db *, int64_t, int64_t, const char *, int64_t, cd_err *);
    int (*job_dead)(cd_db *, int64_t, const char *, int64_t, cd_err *);
    int (*job_revive)(cd_db *, int64_t, int64_t, cd_err *);
    int (*job_requeue)(cd_db *, int64_t, int64_t, int *, cd_err *);
    int (*job_expired_any)(cd_db *, int64_t, bool *, cd_err *);
    int (*job_next_due)(cd_db *, const char *, int64_t *, cd_err *);
    int (*job_delete)(cd_db *, int64_t, cd_err *);
    /* ---- issue 15: webhooks ---- */
    int (*webhook_endpoint_put)(cd_db *, const cd_webhook_endpoint *, cd_err *);
    int (*webhook_endpoint_get)(cd_db *, int64_t, const char *, cd_webhook_endpoint *, cd_err *);
    int (*webhook_any)(cd_db *, int64_t, bool *, cd_err *);
    int (*webhook_endpoint_list)(cd_db *, int64_t, cd_webhook_endpoint_each_fn, void *, cd_err *);
    int (*webhook_endpoint_delete)(cd_db *, int64_t, const char *, int64_t, cd_err *);
    int (*webhook_event_insert)(cd_db *, const cd_webhook_event *, cd_err *);
    int (*webhook_delivery_insert)(cd_db *, cd_webhook_delivery *, cd_err *);
    int (*webhook_delivery_update)(cd_db *, const cd_webhook_delivery *, cd_err *);
    int (*webhook_delivery_get)(cd_db *, int64_t, int64_t, cd_webhook_delivery *, cd_err *);
    int (*webhook_delivery_list)(cd_db *, int64_t, const cd_webhook_delivery_filter *,
                                 cd_webhook_delivery_each_fn, void *, cd_err *);
    int (*webhook_target)(cd_db *, int64_t, cd_webhook_target *, cd_err *);
    /* issue 12 */
    int (*submission_insert)(cd_db *, const cd_submission *, cd_err *);
    int (*submission_get)(cd_db *, int64_t, const char *, cd_submission *, cd_err *);
    /* issue 14: Opentact profiles, leases, pool health, revoked JWTs */
    int (*profile_put)(cd_db *, const cd_profile *, cd_err *);
    int (*profile_get)(cd_db *, int64_t, const char *, cd_profile *, cd_err *);
    int (*profile_delete)(cd_db *, int64_t, const char *, cd_err *);
    int (*profile_list)(cd_db *, int64_t, cd_profile_each_fn, void *, cd_err *);
    int (*sender_lease)(cd_db *, int64_t, const char *, const char *, const char *, int64_t,
                        cd_err *);
    int (*sender_leases)(cd_db *, int64_t, const char *, cd_sender_each_fn, void *, cd_err *);
    int (*sender_used)(cd_db *, int64_t, const char *, int64_t, cd_err *);
    int (*sender_receipt)(cd_db *, int64_t, const char *, const char *, int64_t, int64_t, cd_err *);
    int (*sender_health)(cd_db *, int64_t, const char *, int64_t, int[3], cd_err *);
    int (*sticky_get)(cd_db *, int64_t, const char *, const char *, int64_t, char[24], cd_err *);
    int (*sticky_put)(cd_db *, int64_t, const char *, const char *, const char *, int64_t,
                      cd_err *);
    int (*jwt_revoke)(cd_db *, int64_t, const char *, int64_t, int64_t, cd_err *);
    int (*jwt_revoked)(cd_db *, const char *, bool *, cd_err *);
};

/* Every backend's connection struct starts with this header. */
struct cd_db {
    const struct cd_store_ops *ops;
    cd_store *store;
    cd_db *next_free; /* reader pool link */
    /* issue 16: set by the writer while it runs a batch on this connection. */
    bool in_batch;
    const cd_batch_hook *batch_hook; /* joined by a job of the batch (cd_store_batch_join) */
    struct cd_after **afters;        /* the running job's cd_store_after_durable list */
    /* issue 10 (perf): a pooled reader, and the keys' epoch before its snapshot began. */
    bool keys_reader;
    uint64_t keys_epoch;
};

/* keys.c: the API keys that checked out, remembered (see there). */
#define CD_STORE_KEYS_SLOTS 64
typedef struct cd_store_known_key {
    cd_apikey key;
    cd_account account;
    uint64_t epoch;   /* the keys' epoch before the snapshot it was read from began */
    int64_t until_ms; /* 0: empty */
} cd_store_known_key;

/* One cd_store_after_durable registration (writer.c). */
typedef struct cd_after {
    cd_store_durable_fn fn;
    void *arg;
    struct cd_after *next;
} cd_after;

typedef struct cd_writer cd_writer; /* writer.c */

struct cd_store {
    const struct cd_store_ops *ops;
    char *url;
    int schema_version;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    cd_db *free_readers;
    int nreaders; /* created so far */
    int max_readers;
    cd_writer *writer;
    cd_store_commit_hook commit_hook;
    void *commit_hook_arg;
    const cd_store_claimer *_Atomic claimer; /* cd_store_set_claimer */
    int serve_fd;                            /* cd_store_serve_lock's descriptor, or -1 */
    _Atomic uint64_t optout_epoch[64];       /* cd_store_optout_noted, by account % 64 */
    /* keys.c */
    pthread_mutex_t keys_lock;
    _Atomic uint64_t keys_epoch; /* moves once a revocation made here is durable */
    uint64_t *keys_shared;       /* the lock file's counter (other processes'), or NULL */
    cd_store_known_key keys[CD_STORE_KEYS_SLOTS];
    /* Message types seen to exist (cd_store_type_known): direct-mapped, account 0 = empty. */
    pthread_mutex_t types_lock;
    struct {
        int64_t account_id, id;
        bool group; /* a group's id, else a message type's */
    } types[256];
    bool has_ledger_key;
    unsigned char ledger_key[32]; /* issue 8 item 12: signs ledger heads; never stored */
    /* Test-only fault injection (cd_store__fail_after): calls left before the next
     * injected fault, 0 when off. Read on every forwarded call, so it stays one relaxed
     * load when off. */
    atomic_int fault_left;
    atomic_int fault_fired;
    atomic_bool fault_persist;
    atomic_int fault_code;
};

extern const struct cd_store_ops cd_store__sqlite_ops;

/* Test-only fault injection (issue 9 part 10), like SQLite's test_malloc countdown: the
 * n-th call from now through a backend op (any forwarding cd_store_* call: reads and
 * writes, on any connection of s) fails without reaching the backend, with `code`
 * (CD_ESTORE when 0) and the message "injected fault". With `persist`, every call after
 * it fails too. n <= 0 turns injection off. Thread-safe; the countdown is store-wide. */
void cd_store__fail_after(cd_store *s, int n, bool persist, cd_errcode code);
/* How many faults were injected since the last cd_store__fail_after(). A fault test loops
 * n = 1, 2, ... until a run injects none: every call position has then failed once. */
int cd_store__faults_fired(cd_store *s);

/* writer.c: the single write connection and its group-commit thread. */
cd_writer *cd_store__writer_start(cd_store *s, cd_db *db, cd_err *err);
void cd_store__writer_stop(cd_writer *w); /* drains the queue, then joins */
/* `internal` (cd_store_run) skips the queue bound and the deadline; `rerunnable`: see
 * cd_store_submit_rerunnable(). */
int cd_store__writer_submit(cd_writer *w, cd_job_fn fn, cd_job_done_fn done, void *arg,
                            bool internal, bool rerunnable, cd_err *err);
/* See cd_store_set_limits(). */
void cd_store__writer_limits(cd_writer *w, int queue_max, int deadline_ms);

/* keys.c */
void cd_store__keys_began(cd_db *db); /* a pooled reader's transaction is about to begin */
bool cd_store__keys_recall(cd_db *db, const char *key_id, cd_apikey *key, cd_account *account);
void cd_store__keys_remember(cd_db *db, const cd_apikey *key, const cd_account *account);
void cd_store__keys_revoked(cd_db *db);       /* in the revoking job, after its write */
void cd_store__keys_map(cd_store *s, int fd); /* the serve lock's file */
void cd_store__keys_unmap(cd_store *s);

#endif
