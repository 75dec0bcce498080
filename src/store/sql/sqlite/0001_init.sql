-- 0001: accounts, keys, contacts, groups, message types, consents, the ledger, the outbox,
-- idempotency. Every table but accounts carries account_id, and every index starts with it.
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    login       TEXT NOT NULL UNIQUE,
    brand       TEXT NOT NULL DEFAULT '',
    region      TEXT NOT NULL DEFAULT 'US',
    timezone    TEXT NOT NULL DEFAULT 'UTC',
    jwt_secret  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    ledger_seq  INTEGER NOT NULL DEFAULT 0,
    ledger_head TEXT NOT NULL
);
CREATE INDEX accounts_brand ON accounts(brand);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name       TEXT NOT NULL DEFAULT '',
    hash       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_account ON api_keys(account_id, created_ms);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    phone      TEXT NOT NULL,
    first_name TEXT, last_name TEXT, email TEXT, birthday TEXT, zip TEXT, city TEXT,
    param1 TEXT, param2 TEXT, param3 TEXT, param4 TEXT, param5 TEXT,
    custom     TEXT,
    tags       TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (account_id, phone)
);

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE contact_groups (
    account_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    group_id   INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact_id, group_id)
) WITHOUT ROWID;
CREATE INDEX contact_groups_group ON contact_groups(account_id, group_id, contact_id);

CREATE TABLE message_types (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    id         INTEGER NOT NULL,
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;

CREATE TABLE consents (
    account_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    scope      TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'opted_in', 'opted_out')),
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact_id, scope)
) WITHOUT ROWID;

-- The ledger: append-only. Each row's hash covers its content and prev_hash.
CREATE TABLE events (
    id                INTEGER PRIMARY KEY,
    account_id        INTEGER NOT NULL,
    seq               INTEGER NOT NULL,
    contact_id        INTEGER NOT NULL,
    phone             TEXT NOT NULL,
    scope             TEXT NOT NULL,
    old_state         TEXT NOT NULL,
    new_state         TEXT NOT NULL,
    surface           TEXT NOT NULL,
    channel           TEXT NOT NULL,
    keyword           TEXT NOT NULL,
    disclosure_sha256 TEXT NOT NULL,
    ip                TEXT NOT NULL,
    user_agent        TEXT NOT NULL,
    site              TEXT NOT NULL,
    session           TEXT NOT NULL,
    ext_ref           TEXT NOT NULL,
    credential_id     TEXT NOT NULL,
    request_id        TEXT NOT NULL,
    created_ms        INTEGER NOT NULL,
    prev_hash         TEXT NOT NULL,
    hash              TEXT NOT NULL,
    UNIQUE (account_id, seq)
);
CREATE INDEX events_contact ON events(account_id, contact_id, seq);

CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    account_id   INTEGER NOT NULL,
    to_phone     TEXT NOT NULL,
    from_phone   TEXT NOT NULL,
    text         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    scope        TEXT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    parts        INTEGER NOT NULL,
    transport    TEXT NOT NULL,
    transport_id TEXT NOT NULL,
    history      TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
);
CREATE INDEX messages_account ON messages(account_id, seq);
CREATE INDEX messages_status ON messages(status, seq);

CREATE TABLE idempotency (
    account_id   INTEGER NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
