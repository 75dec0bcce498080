-- 0010 (issue 14): Opentact messaging profiles, sender types and leases, the number pool's
-- memory (delivery receipts per sender, sticky senders) and revoked JWT ids.

-- A messaging profile of one account. signing_secret signs deliveries to its callback URLs
-- (the webhooks issue); it is shown once, at creation. seq orders profiles by creation, so
-- "the first created" (the account's default profile) is the smallest.
CREATE TABLE profiles (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid               TEXT NOT NULL UNIQUE,
    account_id         INTEGER NOT NULL,
    name               TEXT NOT NULL,
    callback_url       TEXT NOT NULL DEFAULT '',
    callback_url2      TEXT NOT NULL DEFAULT '',
    number_pool_enable INTEGER NOT NULL DEFAULT 0,
    long_code_weight   INTEGER NOT NULL DEFAULT 1,
    toll_free_weight   INTEGER NOT NULL DEFAULT 1,
    skip_unhealthy_tns INTEGER NOT NULL DEFAULT 0,
    sticky_sender      INTEGER NOT NULL DEFAULT 0,
    signing_secret     TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    modified_ms        INTEGER NOT NULL
);
CREATE INDEX profiles_account ON profiles(account_id, seq);

-- A sender's type (long_code, toll_free, short_code; '' for the numbers registered before
-- this migration: core infers it from the number), the profile leasing it ('' = none), and
-- when the pool last picked it (to spread the load within a type).
ALTER TABLE senders ADD COLUMN type TEXT NOT NULL DEFAULT '';
ALTER TABLE senders ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE senders ADD COLUMN lease_uuid TEXT NOT NULL DEFAULT '';
ALTER TABLE senders ADD COLUMN leased_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE senders ADD COLUMN last_used_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX senders_profile ON senders(account_id, profile);

-- Final delivery receipts per sender number: the sliding window of a sender's health.
CREATE TABLE sender_receipts (
    account_id INTEGER NOT NULL,
    number     TEXT NOT NULL,
    status     TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
);
CREATE INDEX sender_receipts_number ON sender_receipts(account_id, number, at_ms);

-- Sticky sender: the number a recipient gets its messages of a profile from, until until_ms.
CREATE TABLE sticky_senders (
    account_id INTEGER NOT NULL,
    profile    TEXT NOT NULL,
    to_phone   TEXT NOT NULL,
    number     TEXT NOT NULL,
    until_ms   INTEGER NOT NULL,
    PRIMARY KEY (account_id, profile, to_phone)
) WITHOUT ROWID;

-- JWT ids revoked before their expiry (`consentd token revoke`).
CREATE TABLE revoked_jwts (
    jti        TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    exp_ms     INTEGER NOT NULL,
    revoked_ms INTEGER NOT NULL
) WITHOUT ROWID;
