/* delivery/jobs.h -- the generic durable job queue's worker (issue 15): webhook deliveries,
 * CURSOR's mails. Jobs are rows of the store's `jobs` table (store.h, cd_store_job_*),
 * queued by their cause in its own writer transaction; this worker claims the due ones of
 * each registered kind, runs the kind's handler on one of its own threads (never the writer
 * nor an HTTP thread), and writes each outcome through the writer.
 *
 * Guarantees: a job runs at least once. Its outcome is written (deleted when done, queued
 * again with backoff and jitter, dead when its attempts are spent) in one commit, together
 * with what the kind's `record` hook writes. A job claimed by a process that died goes back
 * to the queue at the next start (and a claim older than its lease at any time).
 *
 * Threads: one loop thread claims and records; `threads` handler threads call handlers.
 * A handler may finish at once (a blocking call, e.g. SMTP) or hand the attempt to its own
 * machinery (e.g. a libcurl multi loop) and call cd_jobs_finish() later from any thread. */
#ifndef CD_DELIVERY_JOBS_H
#define CD_DELIVERY_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

typedef struct cd_jobs cd_jobs;
typedef struct cd_job_call cd_job_call; /* one attempt in flight; owned by the worker */

typedef enum cd_job_result {
    CD_JOB_DONE,  /* succeeded: the job is deleted */
    CD_JOB_RETRY, /* failed for now: again after the kind's schedule (or retry_in_ms) */
    CD_JOB_FAIL   /* failed for good: dead at once, whatever attempts are left */
} cd_job_result;

typedef struct cd_job_outcome {
    cd_job_result result;
    int64_t retry_in_ms; /* CD_JOB_RETRY: > 0 overrides the schedule's delay */
    char error[256];     /* why it failed (stored, logged): never a secret */
    int code;            /* free for the kind (an HTTP status, an SMTP reply), 0 = none */
} cd_job_outcome;

/* What the worker decided for an attempt, handed to `record` and to watchers. */
typedef struct cd_job_verdict {
    const char *status; /* "done", "queued" (a retry), "dead" */
    int64_t due_ms;     /* "queued": when the next attempt is due */
} cd_job_verdict;

/* Runs one attempt of `job` (borrowed until cd_jobs_finish). Must call cd_jobs_finish(call)
 * exactly once, before returning or later from any thread. Runs on a handler thread. */
typedef void (*cd_job_handler_fn)(void *arg, const cd_job *job, cd_job_call *call);
/* Optional: runs on the writer, inside the transaction that records the outcome, so that
 * the kind's own rows (a delivery's state) change in the same commit. -1 with *err (a
 * storage error) keeps the outcome for the next round; nothing of it is written. */
typedef int (*cd_job_record_fn)(cd_db *db, void *arg, const cd_job *job, const cd_job_outcome *out,
                                const cd_job_verdict *v, cd_err *err);
/* A watcher (cd_jobs_watch): called once, on the loop thread, after the outcome of the
 * watched job's first attempt in this process is durable. job and v are NULL when the
 * worker stops first (out->error says "shutting down"). Must be quick. */
typedef void (*cd_job_watch_fn)(void *arg, const cd_job *job, const cd_job_outcome *out,
                                const cd_job_verdict *v);

#define CD_JOBS_SCHEDULE_MAX 32

typedef struct cd_jobs_kind {
    const char *name; /* copied; matches cd_job.kind */
    cd_job_handler_fn handler;
    cd_job_record_fn record; /* NULL: none */
    void *arg;               /* handed to handler and record */
    /* Delays between attempts: after failed attempt k (1-based) the next is due
     * schedule_ms[k-1] later; after attempt nschedule + 1 the job is dead. Copied. */
    const int64_t *schedule_ms;
    int nschedule;
    int jitter_pct;   /* each delay is moved by up to +/- this percent; 0 = exact */
    int64_t lease_ms; /* a claim older than this is presumed lost; 0 = 10 minutes */
    int max_inflight; /* attempts of this kind running at once; 0 = 64 */
} cd_jobs_kind;

typedef struct cd_jobs_config {
    int threads;  /* handler threads; 0 = 4 */
    int drain_ms; /* how long a halt waits for attempts in flight; 0 = 6000 */
} cd_jobs_config;

/* A worker with no kinds yet. The store is borrowed and must outlive it. Never NULL. */
cd_jobs *cd_jobs_new(cd_store *store, const cd_jobs_config *cfg);
/* Adds a kind; call before cd_jobs_start. CD_EINVAL for a duplicate, too many kinds, or a
 * schedule longer than CD_JOBS_SCHEDULE_MAX. */
int cd_jobs_register(cd_jobs *q, const cd_jobs_kind *kind, cd_err *err);
/* Requeues the claims of a previous process, then starts the threads. */
int cd_jobs_start(cd_jobs *q, cd_err *err);

/* Finishes an attempt (see cd_job_handler_fn); `call` is freed by the worker. Any thread. */
void cd_jobs_finish(cd_job_call *call, const cd_job_outcome *out);

/* Something may have been queued: look now rather than at the next poll. Any thread;
 * NULL is a no-op. */
void cd_jobs_kick(cd_jobs *q);

/* Waiting for a job's first attempt (CURSOR answers its POST once the mail was tried):
 * take a token BEFORE queueing, put it in cd_job.watch, and queue the job; fn(arg, ...)
 * runs once that attempt's outcome is durable. If the queueing transaction fails, call
 * cd_jobs_unwatch. Tokens are unique to this process (a restarted process ignores the
 * tokens of the previous one). Any thread. */
uint64_t cd_jobs_watch(cd_jobs *q, cd_job_watch_fn fn, void *arg);
/* Forgets a token. Returns true when fn will never run, false when it ran or is running. */
bool cd_jobs_unwatch(cd_jobs *q, uint64_t token);

/* The delay before the attempt after failed attempt `attempt` (1-based), jittered by
 * `rnd` (uniform 32-bit random), or -1 when the schedule is spent. Pure: for tests. */
int64_t cd_jobs_backoff_ms(const int64_t *schedule_ms, int nschedule, int attempt, int jitter_pct,
                           uint32_t rnd);

/* Prometheus counters per kind (attempts, done, retried, dead) and jobs in flight. */
void cd_jobs_metrics(cd_jobs *q, cd_buf *out);

/* Stops claiming, waits up to drain_ms for the attempts in flight, records
 * them, and joins the threads. Watchers still waiting are told "shutting down". An
 * attempt not finished by then stays 'running' and is requeued at the next start. A kind
 * with its own machinery stops it after cd_jobs_halt and before cd_jobs_stop: after
 * cd_jobs_stop, cd_jobs_finish must not be called. Idempotent; NULL is a no-op. */
void cd_jobs_halt(cd_jobs *q);
/* Halts if needed and frees everything. NULL is a no-op. */
void cd_jobs_stop(cd_jobs *q);

#endif
