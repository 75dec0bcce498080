-- 0018 (issue 12): the consents table's CHECK as comparisons. SQLite (3.40) codes an IN
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
