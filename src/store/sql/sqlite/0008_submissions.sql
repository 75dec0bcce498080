-- 0008 (issue 12): every Omeda opt queue submission, accepted or rejected. Its uuid is the
-- "Submission" of the answer and the ext_ref of the ledger events it produced; site and
-- session are Omeda's SiteId and SiteSessionId; status is the HTTP status answered (200 or
-- 400); detail is what it did, as JSON (the answer and the outcome of each opt).
CREATE TABLE submissions (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    uuid       TEXT NOT NULL,
    site       TEXT NOT NULL DEFAULT '',
    session    TEXT NOT NULL DEFAULT '',
    phone      TEXT NOT NULL DEFAULT '',
    status     INTEGER NOT NULL,
    detail     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, uuid)
) WITHOUT ROWID;
