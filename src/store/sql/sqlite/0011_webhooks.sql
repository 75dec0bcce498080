-- 0011: webhooks (issue 15). Endpoints an account subscribes (or a messaging profile's
-- callback URLs), the events queued for them, and one delivery per (event, endpoint), each
-- carried by a job of the generic queue (0009) until it is delivered or dead.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,            -- "wh_" + 24 hex
    account_id  INTEGER NOT NULL,
    url         TEXT NOT NULL,
    url2        TEXT NOT NULL DEFAULT '',    -- failover after 3 failed attempts on url
    events      TEXT NOT NULL DEFAULT '[]',  -- JSON array of event types; [] = every type
    secret      TEXT NOT NULL,               -- signs deliveries: stored usable, never shown
    enabled     INTEGER NOT NULL DEFAULT 1,
    profile     TEXT NOT NULL DEFAULT '',    -- a messaging profile's uuid for its callbacks
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    deleted_ms  INTEGER NOT NULL DEFAULT 0   -- kept for the deliveries that name it
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints(account_id, deleted_ms, created_ms);

-- The exact bytes delivered (and signed), so that every attempt and replay sends the same.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,            -- "evt_" + 24 hex
    account_id  INTEGER NOT NULL,
    type        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending', -- pending, delivered, dead
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_code    INTEGER NOT NULL DEFAULT 0,      -- the receiver's HTTP status, 0 = none
    last_error   TEXT NOT NULL DEFAULT '',
    last_url     TEXT NOT NULL DEFAULT '',        -- "primary" or "failover"
    next_ms      INTEGER NOT NULL DEFAULT 0,      -- pending: when the next attempt is due
    job_id       INTEGER NOT NULL DEFAULT 0,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    delivered_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_account ON webhook_deliveries(account_id, id);
CREATE INDEX webhook_deliveries_status ON webhook_deliveries(account_id, status, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(account_id, event_id);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(account_id, endpoint_id, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(account_id, created_ms);
