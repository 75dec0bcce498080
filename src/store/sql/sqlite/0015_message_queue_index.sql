-- 0015: the messages table's indexes cover only what a query asks for (issue 16). Every
-- vendor surface writes this table, and each message changed status three or four times
-- under seven indexes, four of them keyed on the status: 24-32 index writes per message.
-- The outbox looks only at queued messages (and, after a restart, at the ones left
-- sending), so its indexes are partial: a message enters them when it is queued and leaves
-- when it is claimed; recording it sent, and its receipts, touch no index at all.
DROP INDEX messages_due;
DROP INDEX messages_due_account;
DROP INDEX messages_due_kind;
DROP INDEX messages_contact_status;
-- The next due time, and the due scan in due order (Q_MESSAGE_NEXT_DUE, Q_MESSAGE_DUE).
CREATE INDEX messages_queued ON messages(next_attempt_ms, seq) WHERE status = 'queued';
-- Fair claiming: the next account with a due message, and an account's oldest.
CREATE INDEX messages_queued_account ON messages(account_id, next_attempt_ms, seq)
    WHERE status = 'queued';
-- Keyword replies go ahead of everything: only they are in this one.
CREATE INDEX messages_queued_reply ON messages(next_attempt_ms, seq)
    WHERE status = 'queued' AND kind = 'keyword_reply';
-- An opt-out refuses the contact's queued messages in its own transaction.
CREATE INDEX messages_queued_contact ON messages(account_id, contact_id) WHERE status = 'queued';
-- A restart puts back what was left sending.
CREATE INDEX messages_sending ON messages(seq) WHERE status = 'sending';
