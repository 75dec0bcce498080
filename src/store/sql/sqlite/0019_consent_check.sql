-- 0019 (issue 11): the consents table's CHECK on state without IN. SQLite evaluates
-- `state IN ('pending', 'opted_in', 'opted_out')` by building an ephemeral b-tree of the
-- three values for each statement it runs: every consent write (an Octopush batch writes one
-- per new contact) opened and closed a temporary table, about a fifth of the write's cost.
-- The same rule written with OR compares in place. SQLite cannot alter a CHECK, so the
-- table is rebuilt with the same columns, key and rows, and its index made again.
CREATE TABLE consents_0019 (
    account_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    scope      TEXT NOT NULL,
    state      TEXT NOT NULL
               CHECK (state = 'pending' OR state = 'opted_in' OR state = 'opted_out'),
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact_id, scope)
) WITHOUT ROWID;
INSERT INTO consents_0019 (account_id, contact_id, scope, state, updated_ms)
    SELECT account_id, contact_id, scope, state, updated_ms FROM consents;
DROP TABLE consents;
ALTER TABLE consents_0019 RENAME TO consents;
CREATE INDEX consents_blacklist ON consents(account_id, contact_id)
    WHERE scope = 'all' AND state = 'opted_out';
