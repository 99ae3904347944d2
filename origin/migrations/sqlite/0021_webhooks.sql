-- Webhooks for integrators (origin/src/webhooks/). An endpoint belongs to a creator (or, with
-- `all_creators`, to an admin who hears every creator's events); an event is written once, in
-- the transaction of the change it reports, with one delivery per endpoint that listens for it
-- and one job per delivery (kind `webhook.deliver`, key `{endpoint}:{seq}`).
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    -- The event types it receives, comma-separated.
    events          TEXT NOT NULL,
    all_creators    INTEGER NOT NULL DEFAULT 0,
    -- The signing secret (the whole `whsec_…` string is the HMAC key, as Stripe's is).
    secret          TEXT NOT NULL,
    -- The secret before the last rotation: deliveries are signed with both until
    -- `previous_until`, so a receiver can switch without refusing any.
    previous_secret TEXT,
    previous_until  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner_id);

-- `seq` is commit order (events are written in the edge-outbox transactions, which commit one
-- after another), so it orders a video's events; `id` is what receivers de-duplicate on.
CREATE TABLE webhook_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    video_id   TEXT NOT NULL,
    -- The body sent, the same bytes in every attempt.
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_seq       INTEGER NOT NULL REFERENCES webhook_events(seq) ON DELETE CASCADE,
    -- The event's video, here too: a video's deliveries to one endpoint go in order.
    video_id        TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_error      TEXT,
    last_attempt_at INTEGER,
    delivered_at    INTEGER,
    -- Retried for `webhooks.window_secs` (a day) from then: the event's time, or a "send again".
    retry_from      INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, video_id, event_seq)
    WHERE state = 'pending';
