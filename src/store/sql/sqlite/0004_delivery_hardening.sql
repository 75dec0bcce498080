-- 0004: delivery hardening (issue 8).
-- Inbound messages to a number no account owns are kept, not thrown away: an operator can
-- see them (consentd inbound unrouted) and route the number.
CREATE TABLE unrouted_inbound (
    id          INTEGER PRIMARY KEY,
    from_phone  TEXT NOT NULL,
    to_phone    TEXT NOT NULL,
    text        TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    transport   TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);
-- An opt-out refuses the contact's queued messages in its own transaction.
CREATE INDEX messages_contact_status ON messages(account_id, contact_id, status);
-- Fair claiming: per account in due order, and keyword replies ahead of everything.
CREATE INDEX messages_due_account ON messages(status, account_id, next_attempt_ms, seq);
CREATE INDEX messages_due_kind ON messages(status, kind, next_attempt_ms, seq);
