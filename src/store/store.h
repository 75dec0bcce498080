/* store/store.h -- the one storage interface. Everything that reads or writes durable
 * state goes through these functions; no SQL lives anywhere else. The backend is chosen
 * by the URL given to cd_store_open() ("sqlite:PATH"; "postgres://..." when built).
 *
 * Threads and connections:
 * - Reads run on a cd_db taken from the reader pool with cd_store_reader() and given
 *   back with cd_store_release(). A reader sees only committed data, as of the moment it
 *   was taken: it holds one read transaction (one snapshot) until it is released.
 * - Writes run as jobs (cd_job_fn) on the store's single writer. Jobs queued together
 *   share one transaction and one fsync (group commit); each job runs inside its own
 *   savepoint, so a failing job leaves no trace and does not disturb its neighbours --
 *   unless the database rolled the whole transaction back on its own (a full disk, an I/O
 *   error): then every job of the batch fails with CD_ESTORE and none of it is durable.
 *   A job's completion callback runs only once the batch is durable (or has failed).
 * - Every function that touches account data takes the account id: no query crosses
 *   accounts.
 *
 * Ownership: records filled by the store own their heap members; release them with the
 * matching _clear(). Strings in fixed arrays are NUL-terminated and truncated by nobody:
 * the API layer validates lengths before anything reaches here. */
#ifndef CD_STORE_STORE_H
#define CD_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

typedef struct cd_store cd_store; /* opaque: see store_int.h */
typedef struct cd_db cd_db;       /* one connection: a reader, or the writer inside a job */

/* ---- records ---- */

typedef struct cd_account {
    int64_t id;
    char name[128];
    char login[256];
    char brand[64];
    char region[8];
    char timezone[64];
    char jwt_secret[65];
    int64_t created_ms;
    int64_t ledger_seq;   /* the newest event's seq, 0 when none */
    char ledger_head[65]; /* the newest event's hash, 64 zeros when none */
    char ledger_sig[65];  /* HMAC of the head under the ledger key, "" when unsigned */
} cd_account;

typedef struct cd_apikey {
    char id[32]; /* public part of the key ("k_...") */
    int64_t account_id;
    char name[128];
    char hash[65]; /* SHA-256 hex of the whole key */
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while usable */
} cd_apikey;

#define CD_CONTACT_PARAMS 5

typedef struct cd_contact {
    int64_t id;
    int64_t account_id;
    char phone[24];                                               /* E.164 */
    char *first_name, *last_name, *email, *birthday, *zip, *city; /* owned; NULL = unset */
    char *params[CD_CONTACT_PARAMS];                              /* owned; NULL = unset */
    json_t *custom; /* owned reference: object, or NULL */
    json_t *tags;   /* owned reference: array of strings, or NULL */
    json_t *groups; /* owned reference: array of group ids; filled by reads */
    int64_t created_ms;
    int64_t updated_ms;
} cd_contact;

void cd_contact_clear(cd_contact *c); /* frees the members, zeroes the record */

typedef struct cd_contact_filter {
    int64_t group_id; /* 0 = any */
    const char *tag;  /* NULL = any */
    const char *q;    /* substring of phone, names or e-mail; NULL = any */
    int64_t after_id; /* cursor: ids greater than this */
    int limit;
} cd_contact_filter;

typedef struct cd_named { /* a group or a message type */
    int64_t id;
    char name[256];
    int64_t created_ms;
} cd_named;

typedef struct cd_consent {
    char scope[40]; /* "all", "group:ID", "type:ID" */
    char state[16]; /* "pending", "opted_in", "opted_out" */
    int64_t updated_ms;
} cd_consent;

typedef struct cd_event {
    int64_t id;
    int64_t account_id;
    int64_t seq; /* 1, 2, 3... per account */
    int64_t contact_id;
    char phone[24];
    char scope[40];
    char old_state[16]; /* "" when there was none */
    char new_state[16];
    char surface[24];
    char channel[16];
    char keyword[32];
    char disclosure_sha256[65];
    char ip[64];
    char user_agent[512];
    char site[128];
    char session[128];
    char ext_ref[128];
    char credential_id[32];
    char request_id[40];
    int64_t created_ms;
    char prev_hash[65];
    char hash[65];
} cd_event;

typedef struct cd_event_filter {
    int64_t contact_id; /* 0 = any */
    const char *scope;  /* NULL = any */
    int64_t since_ms;   /* 0 = any */
    int64_t after_seq;  /* cursor */
    int limit;
} cd_event_filter;

typedef struct cd_message {
    char id[40];
    int64_t account_id;
    char to[24];
    char from[24];
    char *text; /* owned */
    char kind[16];
    char scope[40];
    char status[16];
    char reason[64];
    int parts;
    char transport[16];
    char transport_id[64];
    int64_t created_ms;
    int64_t updated_ms;
    json_t *history;    /* owned: [{"status","at","detail"}], filled by cd_store_message_get */
    char *history_json; /* owned, or NULL: the history as stored, for a write when history is
                         * NULL (a message queued with no caller to read it, issue 10) */
    char direction[4];  /* "out" or "in" */
    int64_t contact_id; /* 0 when unknown */
    int attempts;
    int64_t next_attempt_ms; /* when a queued message is due */
    char provider_id[64];    /* inbound: the provider's id */
    char flow_id[40];        /* a CTA's flow */
    char category[16];       /* "marketing" or "transactional" (quiet hours) */
    char action[16];         /* a keyword reply's action ("help", "opted_out"...), else "" */
} cd_message;

void cd_message_clear(cd_message *m);

typedef struct cd_message_filter {
    const char *to;       /* E.164 or NULL */
    const char *status;   /* NULL = any */
    const char *kind;     /* NULL = any */
    int64_t before_rowid; /* cursor: newest first; 0 = from the newest */
    int limit;
} cd_message_filter;

typedef struct cd_flow {
    char id[40];
    int64_t account_id;
    int64_t contact_id;
    char phone[24];
    char ext_ref[128];
    json_t *scopes;  /* owned: array of scope strings */
    char channel[8]; /* "sms" or "email" */
    char email[256];
    char *disclosure; /* owned */
    char status[12];  /* pending, confirmed, cancelled, expired */
    char confirmed_via[16];
    int64_t created_ms, updated_ms, expires_ms;
    char *confirm_text; /* owned; issue 10: sent once a YES confirms; NULL or "": none */
} cd_flow;

void cd_flow_clear(cd_flow *f);
/* A deep copy of src into dst (released with cd_flow_clear). */
void cd_flow_copy(cd_flow *dst, const cd_flow *src);

typedef struct cd_flow_filter {
    const char *status;  /* NULL = any */
    const char *ext_ref; /* NULL = any */
    int64_t contact_id;  /* 0 = any */
    int64_t after_rowid; /* cursor */
    int limit;
} cd_flow_filter;

typedef struct cd_sender {
    char number[24];
    int64_t account_id;
    char transport[16]; /* "" = the account's */
    bool is_default;
    int64_t created_ms;
    /* issue 14: the number pool */
    char type[12];       /* "long_code", "toll_free", "short_code"; "" = not known (older) */
    char profile[40];    /* the leasing profile's uuid, "" when not leased */
    char lease_uuid[40]; /* the lease's id, "" when not leased */
    int64_t leased_ms;
    int64_t last_used_ms; /* when the pool last picked it, 0 = never */
} cd_sender;

typedef struct cd_idem {
    char request_hash[65];
    int status;
    char *body; /* owned */
    int64_t created_ms;
} cd_idem;

/* ---- opening ---- */

/* Opens the backend named by `url`, applies pending migrations and starts the writer.
 * Returns NULL with *err filled on failure. Caller owns; cd_store_close() releases. */
cd_store *cd_store_open(const char *url, cd_err *err);
/* Drains queued jobs, stops the writer, closes every connection. NULL is a no-op. */
void cd_store_close(cd_store *s);
/* The schema version after migrations (number of the newest applied migration). */
int cd_store_schema_version(cd_store *s);

/* ---- connections and jobs ---- */

cd_db *cd_store_reader(cd_store *s);           /* blocks until a reader is free */
void cd_store_release(cd_store *s, cd_db *db); /* gives a reader back; NULL is a no-op */

/* A job runs on the writer thread inside the batch transaction. It returns 0, or -1
 * with *err filled, in which case everything it wrote is rolled back. */
typedef int (*cd_job_fn)(cd_db *db, void *arg, cd_err *err);
/* Runs once per job, on the writer thread, after the batch is durable (rc 0) or has
 * failed (rc -1, err says why). It must be quick: it only hands the result on. */
typedef void (*cd_job_done_fn)(void *arg, int rc, const cd_err *err);

/* Queues a job; `done` will be called exactly once, also when the store closes (close
 * answers every queued job before it returns). Returns -1 without queueing (and without
 * calling `done`) when the store is closing (CD_ESTORE) or its queue holds queue_max
 * jobs (CD_EBUSY, reason "overloaded": answer 503 and let the client retry). A job still
 * queued deadline_ms after its submit is not run: done gets rc -1 with CD_EBUSY, and
 * nothing of it was written, so a retry is safe. */
int cd_store_submit(cd_store *s, cd_job_fn fn, cd_job_done_fn done, void *arg, cd_err *err);
/* issue 10 (perf): the same, for a job that may be run again in the same batch, after what
 * its first run wrote was rolled back (another job sharing its savepoint failed): fn must
 * give the same result on every run, and leave nothing in `arg` that a second run loses.
 * Such jobs share one savepoint, which costs far less than one each. */
int cd_store_submit_rerunnable(cd_store *s, cd_job_fn fn, cd_job_done_fn done, void *arg,
                               cd_err *err);
/* Queues a job and waits for its durable completion (CLI, the delivery worker, internal
 * housekeeping). Neither the queue bound nor the deadline applies: the caller blocks, so
 * each caller adds at most one job, and what it carries (an inbound STOP, an operator's
 * command) must not be refused or dropped under load. Fails only when closing or when
 * the job or its commit fails. */
int cd_store_run(cd_store *s, cd_job_fn fn, void *arg, cd_err *err);

#define CD_STORE_QUEUE_DEFAULT       10000 /* jobs */
#define CD_STORE_DEADLINE_MS_DEFAULT 10000
/* issue 8 item 7: backpressure for cd_store_submit(). queue_max bounds the jobs waiting
 * for the writer; deadline_ms bounds how long one may wait. 0 turns either off. Call it
 * before submitting (cd_store_open sets the defaults above). */
void cd_store_set_limits(cd_store *s, int queue_max, int deadline_ms);

/* issue 16: work a writer job defers to the end of its batch (the ledger writes and signs
 * each account's head once per commit instead of once per event). All four run on the
 * writer thread: job_begin before each job of the batch, job_rollback after a job's
 * savepoint was rolled back (forget what that job deferred), finish once after the last
 * job and before COMMIT, in the transaction (a failure fails the whole batch, nothing of
 * it is committed), and reset once the batch is over, committed or not. */
typedef struct cd_batch_hook {
    void (*job_begin)(void);
    void (*job_rollback)(void);
    int (*finish)(cd_db *db, cd_err *err);
    void (*reset)(void);
} cd_batch_hook;
/* On the writer, inside a job of a batch: makes `h` run for this batch (joining twice is
 * fine) and returns true. Returns false elsewhere (a connection outside the writer's
 * batch, or another hook holds the batch's one slot): the caller then does its work now. */
bool cd_store_batch_join(cd_db *db, const cd_batch_hook *h);

/* issue 10 (perf): what waits for a job's commit to be on disk. On the writer, inside a job
 * of a batch: fn(arg, true) runs once the job's commit is durable, just before the job is
 * answered (on the syncer thread); fn(arg, false) when it never will be (the job failed and
 * its savepoint was rolled back, or its batch was not committed or not synced). Each fn
 * registered runs exactly once. Returns false, registering nothing, off the writer's batch. */
typedef void (*cd_store_durable_fn)(void *arg, bool durable);
bool cd_store_after_durable(cd_db *db, cd_store_durable_fn fn, void *arg);

/* issue 10 (perf): the delivery worker, as the writer's jobs see it, so that a message due
 * now can be claimed in the transaction that queues it (core/message.c) instead of by a
 * claim job of its own one commit later. reserve: room for one more message of that
 * transport (a name, "" for the default) and kind; a reservation is settled exactly once,
 * settle(m, epoch, true) once m is durable as 'sending' (the worker then submits it;
 * epoch: cd_store_optout_epoch of m's account when it was claimed), settle(m, .., false)
 * when it is not (the job failed). Any thread; all must be quick. */
typedef struct cd_store_claimer {
    bool (*reserve)(void *arg, const char *transport, const char *kind);
    void (*settle)(void *arg, const cd_message *m, uint64_t optout_epoch, bool durable);
    /* Once after the jobs of a batch are answered, when any of them settled something: the
     * worker is woken once per batch rather than once per message. */
    void (*settled)(void *arg);
    void *arg;
} cd_store_claimer;
/* issue 8 item 1: opt-outs, for what waits claimed in memory. A counter per account (slots
 * shared by accounts, so a move may be another's) that moves once an opt-out is durable
 * (cd_store_optout_noted, from the consent core); the delivery worker notes it when it
 * claims a message and checks consent again before the submit only when it moved since:
 * a STOP also stops a message that waits behind a full window. */
void cd_store_optout_noted(cd_db *db, int64_t account_id);
uint64_t cd_store_optout_epoch(cd_store *s, int64_t account_id);
cd_store *cd_store_of(cd_db *db); /* the store a connection belongs to */

/* NULL: none (the delivery worker stopped). c must live as long as the store. */
void cd_store_set_claimer(cd_store *s, const cd_store_claimer *c);
/* The claimer, on the writer's connection inside a batch; NULL elsewhere or when none. */
const cd_store_claimer *cd_store_claimer_of(cd_db *db);

/* One server per database: the second would requeue the first one's messages in flight
 * as it starts, and each keeps in memory what the other writes (the opt-out counters,
 * the claimed messages). Held until cd_store_close; the CLI's commands do not take it.
 * CD_ECONFLICT when another process serves the database. */
int cd_store_serve_lock(cd_store *s, cd_err *err);

/* Batch statistics for /metrics, and what the batch wrote (CD_STORE_WROTE_*: the workers
 * that look at those tables are woken only then; ALL when the backend cannot tell, 0 for
 * a batch that was not committed): called by the writer after every commit. */
#define CD_STORE_WROTE_MESSAGES 1u /* the outbox: a message may be due */
#define CD_STORE_WROTE_JOBS     2u /* the job worker: a job may be due */
#define CD_STORE_WROTE_ALL      (~0u)
typedef void (*cd_store_commit_hook)(void *arg, int batch_size, double seconds, unsigned wrote);
void cd_store_on_commit(cd_store *s, cd_store_commit_hook hook, void *arg);

/* ---- accounts and keys ---- */

int cd_store_account_insert(cd_db *db, cd_account *a, cd_err *err); /* sets a->id */
/* by = "id" | "name" | "login" | "brand"; returns 0, or -1 with CD_ENOTFOUND. */
int cd_store_account_get(cd_db *db, const char *by, const char *value, cd_account *out,
                         cd_err *err);
int cd_store_account_set_head(cd_db *db, int64_t account_id, int64_t seq, const char *hash,
                              cd_err *err);
/* Stores the head's signature (core/ledger.h computes it). */
int cd_store_account_sign_head(cd_db *db, int64_t account_id, const char *sig, cd_err *err);
/* The key that signs ledger heads (32 bytes, copied; NULL forgets it). It lives in memory
 * only, never in the database. Set it before any job is submitted: the writer reads it
 * without a lock. */
void cd_store_set_ledger_key(cd_store *s, const unsigned char key[32]);
/* The store's ledger key (borrowed, 32 bytes), or NULL when none was set. */
const unsigned char *cd_store_ledger_key(cd_db *db);
typedef int (*cd_account_each_fn)(const cd_account *a, void *arg);
int cd_store_account_each(cd_db *db, cd_account_each_fn each, void *arg, cd_err *err);

int cd_store_key_insert(cd_db *db, const cd_apikey *k, cd_err *err);
int cd_store_key_get(cd_db *db, const char *key_id, cd_apikey *out, cd_err *err);
/* issue 16: the key and the account it belongs to, in one read (per-request authentication);
 * fails with CD_ENOTFOUND when either is missing. */
int cd_store_key_auth(cd_db *db, const char *key_id, cd_apikey *key /* OUT */,
                      cd_account *account /* OUT */, cd_err *err);
int cd_store_key_revoke(cd_db *db, int64_t account_id, const char *key_id, int64_t now_ms,
                        cd_err *err);
typedef int (*cd_key_each_fn)(const cd_apikey *k, void *arg);
int cd_store_key_each(cd_db *db, int64_t account_id, cd_key_each_fn each, void *arg, cd_err *err);

/* ---- contacts ---- */

int cd_store_contact_get(cd_db *db, int64_t account_id, int64_t id, cd_contact *out, cd_err *err);
int cd_store_contact_by_phone(cd_db *db, int64_t account_id, const char *e164, cd_contact *out,
                              cd_err *err);
/* issue 16: only the id of the contact with number e164 (an index-only read, for checks);
 * fails with CD_ENOTFOUND when there is none. */
int cd_store_contact_id_by_phone(cd_db *db, int64_t account_id, const char *e164,
                                 int64_t *id /* OUT */, cd_err *err);
/* Inserts c (c->id set on return) or updates the row with c->id; writes c->groups as the
 * contact's complete group membership when it is not NULL. */
int cd_store_contact_put(cd_db *db, cd_contact *c, cd_err *err);
typedef int (*cd_contact_each_fn)(const cd_contact *c, void *arg);
int cd_store_contact_list(cd_db *db, int64_t account_id, const cd_contact_filter *f,
                          cd_contact_each_fn each, void *arg, cd_err *err);

/* ---- groups and message types ---- */

/* kind = "group" | "type". For types, n->id may be preset (Omeda ids); 0 = assign. */
int cd_store_named_insert(cd_db *db, const char *kind, int64_t account_id, cd_named *n,
                          cd_err *err);
int cd_store_named_get(cd_db *db, const char *kind, int64_t account_id, int64_t id, cd_named *out,
                       cd_err *err);
int cd_store_named_by_name(cd_db *db, const char *kind, int64_t account_id, const char *name,
                           cd_named *out, cd_err *err);
typedef int (*cd_named_each_fn)(const cd_named *n, void *arg);
int cd_store_named_list(cd_db *db, const char *kind, int64_t account_id, int64_t after_id,
                        int limit, cd_named_each_fn each, void *arg, cd_err *err);
/* Message types and groups are never deleted: one read once (cd_store_type_seen,
 * cd_store_group_seen) is known to the store for as long as it is open, without a read.
 * false = not remembered, not "unknown". */
bool cd_store_type_known(cd_db *db, int64_t account_id, int64_t id);
void cd_store_type_seen(cd_db *db, int64_t account_id, int64_t id);
bool cd_store_group_known(cd_db *db, int64_t account_id, int64_t id);
void cd_store_group_seen(cd_db *db, int64_t account_id, int64_t id);

/* ---- issue 11: lists (Octopush) ---- */

/* Removes from group `group_id` every member opted out of "all" (the blacklist), in the
 * writer's transaction; their consents stay as they are. *count (may be NULL) receives how
 * many memberships went. */
int cd_store_group_drop_opted_out(cd_db *db, int64_t account_id, int64_t group_id, int *count,
                                  cd_err *err);
/* issue 11: ids[i] = the id of the account's contact with number phones[i] (E.164), 0 when
 * there is none; one statement for a whole batch. */
int cd_store_contact_ids_by_phones(cd_db *db, int64_t account_id, const char *const *phones,
                                   size_t n, int64_t *ids, cd_err *err);
/* issue 11: from cd_store_rows_defer to cd_store_rows_end, new contacts (without groups),
 * consents and ledger events written on db are kept and written many to a statement (at
 * the latest by cd_store_rows_end(write = true)); a contact or event gets its id at once.
 * Reads of those tables through db see what was written. cd_store_rows_end(write = false)
 * drops what is kept (the caller's job is failing). Writer's transaction only; no nesting.
 * A backend without it writes each row at once. */
int cd_store_rows_defer(cd_db *db, cd_err *err);
int cd_store_rows_end(cd_db *db, bool write, cd_err *err);
/* Adds n contacts to one group (nothing for one that is a member already), leaving their
 * other memberships alone. All must exist in the account: the caller checked. Writer's
 * transaction. */
int cd_store_group_add_members(cd_db *db, int64_t account_id, int64_t group_id,
                               const int64_t *contact_ids, size_t n, cd_err *err);

/* ---- consents and the ledger ---- */

/* CD_ENOTFOUND when the contact has no state for that scope. */
int cd_store_consent_get(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                         cd_consent *out, cd_err *err);
int cd_store_consent_put(cd_db *db, int64_t account_id, int64_t contact_id, const cd_consent *c,
                         cd_err *err);
int cd_store_consent_delete(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                            cd_err *err);
typedef int (*cd_consent_each_fn)(const cd_consent *c, void *arg);
int cd_store_consent_list(cd_db *db, int64_t account_id, int64_t contact_id,
                          cd_consent_each_fn each, void *arg, cd_err *err);

int cd_store_event_insert(cd_db *db, cd_event *ev, cd_err *err); /* sets ev->id */
typedef int (*cd_event_each_fn)(const cd_event *ev, void *arg);
int cd_store_event_list(cd_db *db, int64_t account_id, const cd_event_filter *f,
                        cd_event_each_fn each, void *arg, cd_err *err);
/* Every event of the account in stored order of seq, for verification. */
int cd_store_event_scan(cd_db *db, int64_t account_id, cd_event_each_fn each, void *arg,
                        cd_err *err);
/* ---- issue 10: the last event ---- */
/* The newest event of a contact at `scope` ("all", "group:1"), into *out: CD_ENOTFOUND when
 * it has none (ProTexting's OptedOutViaApi asks how the last opt-out of "all" was made). */
int cd_store_event_last(cd_db *db, int64_t account_id, int64_t contact_id, const char *scope,
                        cd_event *out, cd_err *err);

/* ---- outbox ---- */

int cd_store_message_insert(cd_db *db, const cd_message *m, cd_err *err);
/* How many messages of `kind` with `action` ("" for none) the account queued to `to`
 * since `since_ms`, refused ones not counted: the caps on consent-exempt replies. */
int cd_store_message_count(cd_db *db, int64_t account_id, const char *to, const char *kind,
                           const char *action, int64_t since_ms, int *out, cd_err *err);
int cd_store_message_get(cd_db *db, int64_t account_id, const char *id, cd_message *out,
                         cd_err *err);
/* Each message's cursor is its rowid, handed to `each` with the record. */
typedef int (*cd_message_each_fn)(const cd_message *m, int64_t rowid, void *arg);
int cd_store_message_list(cd_db *db, int64_t account_id, const cd_message_filter *f,
                          cd_message_each_fn each, void *arg, cd_err *err);

/* Rewrites the delivery state of a message: status, reason, transport, transport_id,
 * attempts, next_attempt_ms, history, updated_ms. */
int cd_store_message_update(cd_db *db, const cd_message *m, cd_err *err);
/* Queued messages of every account that are due at `now_ms`, oldest first. This is the
 * delivery worker's system-level scan; nothing a tenant asks for uses it. */
int cd_store_message_due(cd_db *db, int64_t now_ms, int limit, cd_message_each_fn each, void *arg,
                         cd_err *err);
/* The earliest next_attempt_ms of a queued message, or 0 when none. */
int cd_store_message_next_due(cd_db *db, int64_t *out_ms, cd_err *err);
/* Every message left 'sending' by a previous process goes back to 'queued' (at least
 * once: it may or may not have reached the transport). Returns how many via *count. */
int cd_store_message_requeue_sending(cd_db *db, int64_t now_ms, int *count, cd_err *err);
/* Marks a queued message 'sending' and counts the attempt; *claimed is false when another
 * worker (or a cancel) got there first. */
int cd_store_message_claim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                           bool *claimed, cd_err *err);
/* Refuses every queued outbound message of a contact, for an opt-out (issue 8): status
 * 'refused', `reason`, and a history entry, in the caller's transaction. Keyword replies
 * (the one STOP confirmation, HELP answers) are left alone. scope NULL: every scope (an
 * opt-out of "all"); otherwise only the messages of that scope. *count may be NULL. */
int cd_store_message_refuse_queued(cd_db *db, int64_t account_id, int64_t contact_id,
                                   const char *scope, int64_t now_ms, const char *reason,
                                   int *count, cd_err *err);

/* issue 16: marks the message sent by `transport` with the remote id(s) `transport_id`, and
 * appends {"status":"sent","at":now,"detail":transport_id or null} to its history in place,
 * without reading the row (cd_message_record_sent when no webhook listens). CD_ENOTFOUND
 * when the account has no such message. */
int cd_store_message_mark_sent(cd_db *db, int64_t account_id, const char *id, const char *transport,
                               const char *transport_id, int64_t now_ms, cd_err *err);

/* Gives a claimed message that was never submitted back to the queue ('sending' ->
 * 'queued', the attempt uncounted), e.g. when its link went down while it waited. */
int cd_store_message_unclaim(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                             cd_err *err);

typedef struct cd_due_filter {
    const char *default_transport; /* what a message's "" transport stands for */
    const char *skip[3];           /* transports not to claim now; NULL or "" = unused */
} cd_due_filter;
/* Queued messages that are due, fairly (system-level, like _due): keyword replies of every
 * account first, then an equal share of the rest for every account with due messages
 * (each account's oldest first), leaving out the transports in f->skip. The messages come
 * without their history (NULL). */
int cd_store_message_due_fair(cd_db *db, int64_t now_ms, int limit, const cd_due_filter *f,
                              cd_message_each_fn each, void *arg, cd_err *err);
int cd_store_part_insert(cd_db *db, const char *transport, const char *remote_id,
                         int64_t account_id, const char *message_id, cd_err *err);
/* Records a part's receipt status and counts the message's parts: all, delivered, and
 * failed (any receipt status other than delivered). */
int cd_store_part_status(cd_db *db, const char *transport, const char *remote_id,
                         const char *status, int64_t account_id, const char *message_id,
                         int counts[3], cd_err *err);
/* Finds the message a transport part id belongs to (for receipts); CD_ENOTFOUND. */
int cd_store_part_message(cd_db *db, const char *transport, const char *remote_id, cd_message *out,
                          cd_err *err);

/* ---- flows ---- */

int cd_store_flow_insert(cd_db *db, const cd_flow *f, cd_err *err);
int cd_store_flow_update(cd_db *db, const cd_flow *f, cd_err *err); /* status fields */
int cd_store_flow_get(cd_db *db, int64_t account_id, const char *id, cd_flow *out, cd_err *err);
typedef int (*cd_flow_each_fn)(const cd_flow *f, int64_t rowid, void *arg);
int cd_store_flow_list(cd_db *db, int64_t account_id, const cd_flow_filter *f, cd_flow_each_fn each,
                       void *arg, cd_err *err);
/* Pending flows of every account whose expiry has passed (system-level, like _due). */
int cd_store_flow_expired(cd_db *db, int64_t now_ms, int limit, cd_flow_each_fn each, void *arg,
                          cd_err *err);

/* ---- senders and settings ---- */

int cd_store_sender_put(cd_db *db, const cd_sender *s, cd_err *err); /* insert or update */
int cd_store_sender_get(cd_db *db, const char *number, cd_sender *out, cd_err *err);
int cd_store_sender_delete(cd_db *db, int64_t account_id, const char *number, cd_err *err);
typedef int (*cd_sender_each_fn)(const cd_sender *s, void *arg);
int cd_store_sender_list(cd_db *db, int64_t account_id, cd_sender_each_fn each, void *arg,
                         cd_err *err);
/* The account's settings object (new reference), "{}" when never set. */
int cd_store_settings_get(cd_db *db, int64_t account_id, json_t **out, cd_err *err);
int cd_store_settings_put(cd_db *db, int64_t account_id, const json_t *settings, cd_err *err);
/* The same for a caller that only reads it: a new reference to an object that may be shared
 * (the writer's remembered copy, sqlite_cache.c), so that neither the caller nor anyone it
 * hands the object to may change it. Spares the copy cd_store_settings_get() makes for
 * a caller that changes it (issue 10 benchmark: 2% of the writer per ProTexting opt-in). */
int cd_store_settings_read(cd_db *db, int64_t account_id, json_t **out, cd_err *err);

/* ---- issue 14: Opentact messaging profiles, leases, pool health, revoked JWTs ---- */

#define CD_PROFILE_TEXT_MAX 1024 /* bytes: 255 characters of UTF-8 fit */

typedef struct cd_profile {
    char uuid[40];
    int64_t account_id;
    char name[CD_PROFILE_TEXT_MAX];
    char callback_url[CD_PROFILE_TEXT_MAX];  /* "" = none */
    char callback_url2[CD_PROFILE_TEXT_MAX]; /* the failover webhook, "" = none */
    bool number_pool_enable;
    int long_code_weight; /* 0..9; 0 = never that type */
    int toll_free_weight;
    bool skip_unhealthy_tns;
    bool sticky_sender;
    char signing_secret[65]; /* signs deliveries to the callback URLs; never shown again */
    int64_t created_ms, modified_ms;
} cd_profile;

/* Inserts p, or updates the row with p->uuid when it belongs to p->account_id (the secret
 * and created_ms are kept then). */
int cd_store_profile_put(cd_db *db, const cd_profile *p, cd_err *err);
/* CD_ENOTFOUND when the account has no profile with that uuid. */
int cd_store_profile_get(cd_db *db, int64_t account_id, const char *uuid, cd_profile *out,
                         cd_err *err);
/* Deletes the profile, releases its leases and forgets its sticky senders; CD_ENOTFOUND. */
int cd_store_profile_delete(cd_db *db, int64_t account_id, const char *uuid, cd_err *err);
typedef int (*cd_profile_each_fn)(const cd_profile *p, void *arg);
/* The account's profiles, oldest first (the first is the default profile). */
int cd_store_profile_list(cd_db *db, int64_t account_id, cd_profile_each_fn each, void *arg,
                          cd_err *err);
/* Leases the account's sender `number` to `profile` with lease id `lease_uuid`; profile ""
 * releases it (and forgets the sticky senders that point at it). CD_ENOTFOUND when the
 * account has no such sender. */
int cd_store_sender_lease(cd_db *db, int64_t account_id, const char *number, const char *profile,
                          const char *lease_uuid, int64_t now_ms, cd_err *err);
/* The senders leased to `profile`, by number. */
int cd_store_sender_leases(cd_db *db, int64_t account_id, const char *profile,
                           cd_sender_each_fn each, void *arg, cd_err *err);
/* Notes that the pool picked `number` at now_ms (spreads the load within a type). */
int cd_store_sender_used(cd_db *db, int64_t account_id, const char *number, int64_t now_ms,
                         cd_err *err);
/* Records a final receipt status for a sender number (and drops receipts older than
 * keep_since_ms, so the window table stays small). */
int cd_store_sender_receipt(cd_db *db, int64_t account_id, const char *number, const char *status,
                            int64_t at_ms, int64_t keep_since_ms, cd_err *err);
/* counts[0] = receipts since since_ms, [1] = delivered, [2] = blocked or rejected. */
int cd_store_sender_health(cd_db *db, int64_t account_id, const char *number, int64_t since_ms,
                           int counts[3], cd_err *err);
/* The sticky sender of (profile, to) valid at now_ms into number[24]; CD_ENOTFOUND. */
int cd_store_sticky_get(cd_db *db, int64_t account_id, const char *profile, const char *to,
                        int64_t now_ms, char number[24], cd_err *err);
int cd_store_sticky_put(cd_db *db, int64_t account_id, const char *profile, const char *to,
                        const char *number, int64_t until_ms, cd_err *err);
/* Refuses a JWT id from now on (kept until exp_ms passes). */
int cd_store_jwt_revoke(cd_db *db, int64_t account_id, const char *jti, int64_t exp_ms,
                        int64_t now_ms, cd_err *err);
int cd_store_jwt_revoked(cd_db *db, const char *jti, bool *revoked, cd_err *err);

/* ---- inbound messages no account owns ---- */

typedef struct cd_unrouted {
    int64_t id;
    char from[32], to[32];
    char *text; /* owned */
    char provider_id[64];
    char transport[16];
    int64_t received_ms;
} cd_unrouted;

/* Keeps an inbound message whose number no account owns (sets u->id). System-level. */
int cd_store_unrouted_insert(cd_db *db, cd_unrouted *u, cd_err *err);
typedef int (*cd_unrouted_each_fn)(const cd_unrouted *u, void *arg);
/* The newest `limit` unrouted inbound messages, newest first. */
int cd_store_unrouted_list(cd_db *db, int limit, cd_unrouted_each_fn each, void *arg, cd_err *err);

/* ---- idempotency ---- */

int cd_store_idem_get(cd_db *db, int64_t account_id, const char *key, cd_idem *out,
                      cd_err *err); /* CD_ENOTFOUND when unknown */
int cd_store_idem_put(cd_db *db, int64_t account_id, const char *key, const cd_idem *in,
                      cd_err *err);
void cd_idem_clear(cd_idem *i);
/* Deletes up to `limit` Idempotency-Key records of every account created before
 * `before_ms` (system-level housekeeping); *count says how many went. */
int cd_store_idem_purge(cd_db *db, int64_t before_ms, int limit, int *count, cd_err *err);

/* ---- issue 15: the generic job queue (delivery/jobs.h runs it) ---- */

/* A job: work done after a commit, at least once, with retries (a webhook delivery, a
 * mail). Queue it in the transaction of its cause. A job that succeeded is deleted; one
 * whose attempts are spent stays as 'dead' until it is revived or its owner deletes it. */
typedef struct cd_job {
    int64_t id;
    char kind[32];      /* whose handler runs it: "webhook", "mail" */
    int64_t account_id; /* 0 for system work */
    char ref[64];       /* what it is about, for its owner (a delivery id, a flow id) */
    char *payload;      /* owned; NULL is stored as "" */
    char status[12];    /* "queued", "running", "dead" */
    int attempts;       /* claims so far (a running job counts its current one) */
    int64_t due_ms;     /* queued: when it may run; 0 at enqueue = now */
    int64_t lease_ms;   /* running: when the claim is presumed dead */
    uint64_t watch;     /* the queuing process's waiter (cd_jobs_watch), 0 = none */
    char last_error[256];
    int64_t created_ms, updated_ms;
} cd_job;

void cd_job_clear(cd_job *j); /* frees the payload, zeroes the record */

/* Queues j (status 'queued', attempts 0); sets j->id and the times. Writer only. */
int cd_store_job_enqueue(cd_db *db, cd_job *j, cd_err *err);
/* CD_ENOTFOUND when there is no such job (a job that succeeded is gone). */
int cd_store_job_get(cd_db *db, int64_t id, cd_job *out, cd_err *err);
typedef int (*cd_job_each_fn)(const cd_job *j, void *arg);
/* Claims up to `limit` queued jobs of `kind` due at now_ms, oldest due first: each becomes
 * 'running' with one more attempt and a lease until now_ms + lease_ms, and is handed to
 * each(). Writer only (system-level: jobs of every account). */
int cd_store_job_claim(cd_db *db, const char *kind, int64_t now_ms, int64_t lease_ms, int limit,
                       cd_job_each_fn each, void *arg, cd_err *err);
/* The job succeeded: it is deleted. */
int cd_store_job_complete(cd_db *db, int64_t id, cd_err *err);
/* The attempt failed: back to 'queued', due at due_ms, with the error. */
int cd_store_job_retry(cd_db *db, int64_t id, int64_t due_ms, const char *error, int64_t now_ms,
                       cd_err *err);
/* The job failed for good (attempts spent, or refused): 'dead', with the error. */
int cd_store_job_dead(cd_db *db, int64_t id, const char *error, int64_t now_ms, cd_err *err);
/* A dead job queued again from scratch (attempts 0, due at due_ms): a replay.
 * CD_ENOTFOUND when there is no dead job with that id. */
int cd_store_job_revive(cd_db *db, int64_t id, int64_t due_ms, cd_err *err);
/* Running jobs whose lease ended before lease_before_ms go back to 'queued', due now_ms,
 * their attempt still counted (it may or may not have happened: at least once). At start,
 * INT64_MAX requeues every claim of the previous process. *count may be NULL. */
int cd_store_job_requeue(cd_db *db, int64_t lease_before_ms, int64_t now_ms, int *count,
                         cd_err *err);
/* Whether any running job's lease ended before lease_before_ms (a read: the worker's sweep
 * writes only when there is something to requeue). */
int cd_store_job_expired_any(cd_db *db, int64_t lease_before_ms, bool *any, cd_err *err);
/* The earliest due_ms of a queued job of `kind` (NULL: any kind), or 0 when none. */
int cd_store_job_next_due(cd_db *db, const char *kind, int64_t *out_ms, cd_err *err);
/* Deletes a job whatever its status (its owner dropped the work). CD_ENOTFOUND if none. */
int cd_store_job_delete(cd_db *db, int64_t id, cd_err *err);

/* ---- issue 15: webhooks (core/events.h queues them, delivery/webhook.h delivers) ---- */

typedef struct cd_webhook_endpoint {
    char id[48]; /* "wh_" + 24 hex; a profile's callbacks: "profile_" + its uuid */
    int64_t account_id;
    char url[512];
    char url2[512];  /* failover after 3 failed attempts on url; "" = none */
    json_t *events;  /* owned: array of event types; empty = every type */
    char secret[80]; /* signs deliveries; never returned by the API after creation */
    bool enabled;
    char profile[40]; /* a messaging profile's uuid when these are its callback URLs */
    int64_t created_ms, updated_ms, deleted_ms;
} cd_webhook_endpoint;

void cd_webhook_endpoint_clear(cd_webhook_endpoint *e);

/* Inserts e, or updates the account's endpoint with e->id (url, url2, events, secret,
 * enabled, profile, updated_ms). */
int cd_store_webhook_endpoint_put(cd_db *db, const cd_webhook_endpoint *e, cd_err *err);
/* A deleted endpoint is CD_ENOTFOUND, like another account's. A profile's callback row
 * (e->profile set) is found too: the API answers 404 for those itself. */
int cd_store_webhook_endpoint_get(cd_db *db, int64_t account_id, const char *id,
                                  cd_webhook_endpoint *out, cd_err *err);
typedef int (*cd_webhook_endpoint_each_fn)(const cd_webhook_endpoint *e, void *arg);
/* Whether anyone may receive the account's events: an enabled subscription, or a messaging
 * profile with a callback URL (so that events cost nothing more when nobody listens). */
int cd_store_webhook_any(cd_db *db, int64_t account_id, bool *any, cd_err *err);
/* The account's subscriptions that are not deleted, oldest first (not the rows that
 * stand for a messaging profile's callback URLs). */
int cd_store_webhook_endpoint_list(cd_db *db, int64_t account_id, cd_webhook_endpoint_each_fn each,
                                   void *arg, cd_err *err);
/* Marks a subscription deleted (kept for the deliveries that name it). CD_ENOTFOUND if
 * none (a profile's callback row is deleted with its profile, never here). */
int cd_store_webhook_endpoint_delete(cd_db *db, int64_t account_id, const char *id, int64_t now_ms,
                                     cd_err *err);

typedef struct cd_webhook_event {
    char id[32]; /* "evt_" + 24 hex */
    int64_t account_id;
    char type[32];
    const char *body; /* borrowed: the JSON delivered */
    int64_t created_ms;
} cd_webhook_event;

int cd_store_webhook_event_insert(cd_db *db, const cd_webhook_event *ev, cd_err *err);

typedef struct cd_webhook_delivery {
    int64_t id;
    int64_t account_id;
    char event_id[32], event_type[32], endpoint_id[48];
    char status[12]; /* "pending", "delivered", "dead" */
    int attempts;
    int last_code; /* the receiver's last HTTP status, 0 = none */
    char last_error[256];
    char last_url[12]; /* "primary", "failover", "" before the first attempt */
    int64_t next_ms;   /* pending: when the next attempt is due */
    int64_t job_id;
    int64_t created_ms, updated_ms, delivered_ms;
} cd_webhook_delivery;

/* Sets d->id. */
int cd_store_webhook_delivery_insert(cd_db *db, cd_webhook_delivery *d, cd_err *err);
/* Rewrites status, attempts, last_code, last_error, last_url, next_ms, job_id, updated_ms
 * and delivered_ms of the account's delivery d->id. CD_ENOTFOUND if none. */
int cd_store_webhook_delivery_update(cd_db *db, const cd_webhook_delivery *d, cd_err *err);
int cd_store_webhook_delivery_get(cd_db *db, int64_t account_id, int64_t id,
                                  cd_webhook_delivery *out, cd_err *err);

typedef struct cd_webhook_delivery_filter {
    const char *status;      /* NULL = any */
    const char *event_id;    /* NULL = any */
    const char *event_type;  /* NULL = any */
    const char *endpoint_id; /* NULL = any */
    int64_t from_ms, to_ms;  /* created in [from, to); 0 = open */
    int64_t after_id;        /* cursor: ids greater than this (oldest first) */
    int limit;
} cd_webhook_delivery_filter;
typedef int (*cd_webhook_delivery_each_fn)(const cd_webhook_delivery *d, void *arg);
int cd_store_webhook_delivery_list(cd_db *db, int64_t account_id,
                                   const cd_webhook_delivery_filter *f,
                                   cd_webhook_delivery_each_fn each, void *arg, cd_err *err);

/* What one attempt needs, by delivery id alone (system-level: a job knows only that). For
 * a profile's callbacks: the profile's URLs and signing secret as they are now, and
 * `deleted` once the profile is. */
typedef struct cd_webhook_target {
    cd_webhook_delivery d;
    char url[512], url2[512], secret[80];
    bool enabled, deleted;
    char *body; /* owned */
} cd_webhook_target;

int cd_store_webhook_target(cd_db *db, int64_t delivery_id, cd_webhook_target *out, cd_err *err);
/* ---- issue 12: Omeda opt queue submissions ---- */

typedef struct cd_submission {
    char uuid[40];
    int64_t account_id;
    char site[128];    /* Omeda SiteId, "" when none */
    char session[128]; /* Omeda SiteSessionId, "" when none */
    char phone[24];    /* E.164, "" when the submission carried no valid number */
    int status;        /* the HTTP status answered: 200 or 400 */
    json_t *detail;    /* owned: what the submission did (an object) */
    int64_t created_ms;
    /* issue 12: insert only: detail already as JSON text (borrowed), used instead of detail */
    const char *detail_text;
    size_t detail_len;
} cd_submission;

void cd_submission_clear(cd_submission *s); /* frees detail, zeroes the record */
/* Inserts s (s->detail borrowed); CD_ECONFLICT when the account has that uuid already. */
int cd_store_submission_insert(cd_db *db, const cd_submission *s, cd_err *err);
/* CD_ENOTFOUND when the account has no submission with that uuid. */
int cd_store_submission_get(cd_db *db, int64_t account_id, const char *uuid, cd_submission *out,
                            cd_err *err);

#endif
