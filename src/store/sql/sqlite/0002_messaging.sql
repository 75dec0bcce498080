-- 0002: messaging. Account settings, sender numbers, the delivery columns of the outbox,
-- transport part ids (for delivery receipts), and double opt-in flows.
ALTER TABLE accounts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- A sender number belongs to one account: inbound messages are routed by it.
CREATE TABLE senders (
    number     TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    transport  TEXT NOT NULL DEFAULT '',
    is_default INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX senders_account ON senders(account_id, number);

ALTER TABLE messages ADD COLUMN direction TEXT NOT NULL DEFAULT 'out';
ALTER TABLE messages ADD COLUMN contact_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN provider_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN flow_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN category TEXT NOT NULL DEFAULT 'marketing';
DROP INDEX messages_status;
CREATE INDEX messages_due ON messages(status, next_attempt_ms, seq);

-- One row per transport part id, so that a receipt finds its message.
CREATE TABLE message_parts (
    transport  TEXT NOT NULL,
    remote_id  TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT '',  -- the part's last receipt: '', delivered, failed...
    PRIMARY KEY (transport, remote_id)
) WITHOUT ROWID;
CREATE INDEX message_parts_message ON message_parts(account_id, message_id);

CREATE TABLE flows (
    id           TEXT PRIMARY KEY,
    account_id   INTEGER NOT NULL,
    contact_id   INTEGER NOT NULL,
    phone        TEXT NOT NULL,
    ext_ref      TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    email        TEXT NOT NULL,
    disclosure   TEXT NOT NULL,
    status       TEXT NOT NULL,
    confirmed_via TEXT NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX flows_account ON flows(account_id, created_ms, id);
CREATE INDEX flows_ext_ref ON flows(account_id, ext_ref);
CREATE INDEX flows_contact ON flows(account_id, contact_id, status);
CREATE INDEX flows_expiry ON flows(status, expires_ms);
