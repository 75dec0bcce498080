-- 0018 (issue 12): two tables rebuilt so that a consent write costs less. First the
-- consents table's CHECK, as comparisons. SQLite (3.40) codes an IN
-- list of more than two constants with an ephemeral b-tree, built afresh each time the
-- constraint runs: every consent write opened one (two for an upsert that updates), which
-- cost the writer more than the row itself. `state = 'a' OR state = 'b' OR ...` accepts
-- and refuses exactly the same values (state is NOT NULL) without any. A CHECK cannot be
-- altered in place, so the table is rebuilt, keeping its rows, key and index.
CREATE TABLE consents_0018 (
    account_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    scope      TEXT NOT NULL,
    state      TEXT NOT NULL
               CHECK (state = 'pending' OR state = 'opted_in' OR state = 'opted_out'),
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact_id, scope)
) WITHOUT ROWID;
INSERT INTO consents_0018 (account_id, contact_id, scope, state, updated_ms)
    SELECT account_id, contact_id, scope, state, updated_ms FROM consents;
DROP TABLE consents;
ALTER TABLE consents_0018 RENAME TO consents;
CREATE INDEX consents_blacklist ON consents(account_id, contact_id)
    WHERE scope = 'all' AND state = 'opted_out';

-- The submissions of Omeda's queue: each row (about 400 bytes, most of it the detail) went
-- into a WITHOUT ROWID table keyed by its random uuid, so every submission dirtied a page
-- of its own somewhere in the table, and split one every few rows. As a rowid table the
-- rows are appended to the last page, and only the small (account_id, uuid) entry of the
-- unique index lands at random: fewer pages written per commit, the same lookups.
CREATE TABLE submissions_0018 (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    uuid       TEXT NOT NULL,
    site       TEXT NOT NULL DEFAULT '',
    session    TEXT NOT NULL DEFAULT '',
    phone      TEXT NOT NULL DEFAULT '',
    status     INTEGER NOT NULL,
    detail     TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (account_id, uuid)
);
INSERT INTO submissions_0018 (account_id, uuid, site, session, phone, status, detail, created_ms)
    SELECT account_id, uuid, site, session, phone, status, detail, created_ms FROM submissions
    ORDER BY created_ms;
DROP TABLE submissions;
ALTER TABLE submissions_0018 RENAME TO submissions;
