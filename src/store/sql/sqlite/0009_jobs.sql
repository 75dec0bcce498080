-- 0009: a generic durable job queue (issue 15; CURSOR's mail uses it too).
-- A job is work to do after a commit, at least once, with retries: a webhook delivery, a
-- mail. It is queued in the same transaction as its cause, so nothing acknowledged is lost.
-- status: 'queued' (waiting for due_ms), 'running' (claimed; lease_ms is when the claim is
-- presumed dead and the job goes back to the queue), 'dead' (attempts spent or refused for
-- good; kept for an operator or a replay). A job that succeeded is deleted: its owner keeps
-- the outcome in its own table.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    account_id  INTEGER NOT NULL DEFAULT 0,
    ref         TEXT NOT NULL DEFAULT '',
    payload     TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT 'queued',
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_ms      INTEGER NOT NULL,
    lease_ms    INTEGER NOT NULL DEFAULT 0,
    watch       INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
-- The worker's scan: the due jobs of one kind, oldest due first.
CREATE INDEX jobs_due ON jobs(kind, status, due_ms, id);
-- Requeue of expired claims.
CREATE INDEX jobs_lease ON jobs(status, lease_ms);
-- An owner finds its jobs (a delivery's job, an account's mail).
CREATE INDEX jobs_ref ON jobs(account_id, kind, ref);
