-- 0007 (issue 10): a flow keeps the text sent to the handset once a YES confirms it
-- (ProTexting's ConfirmMessage); '' means none: the START keyword reply is sent instead.
ALTER TABLE flows ADD COLUMN confirm_text TEXT NOT NULL DEFAULT '';
