-- 0005: caps on the consent-exempt replies (issue 8 item 5). A keyword reply records the
-- action it answers ("help", "opted_out", "opted_in"), so that HELP replies can be counted
-- apart from the opt-out confirmation, which is never capped; the index serves the count of
-- one number's CTAs or HELP replies in a time window.
ALTER TABLE messages ADD COLUMN action TEXT NOT NULL DEFAULT '';
CREATE INDEX messages_exempt ON messages(account_id, to_phone, kind, created_ms);
