-- 0006 (issue 8 item 12): the ledger head is signed with a key kept outside the database,
-- HMAC-SHA256(key, "account_id|seq|head_hash") in hex, so that whoever can write the
-- database but has no key cannot rewrite events and the head without `ledger verify`
-- noticing. '' until the account's first event is written under a key.
ALTER TABLE accounts ADD COLUMN ledger_sig TEXT NOT NULL DEFAULT '';
