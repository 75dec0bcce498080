-- 0003: Idempotency-Key records are kept 7 days (DESIGN 7 asks for at least 24 hours);
-- the delivery worker's sweep deletes older ones by age.
CREATE INDEX idempotency_age ON idempotency(created_ms);
