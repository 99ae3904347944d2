-- Stripe billing: customers linked to users, subscriptions as the newest applied event left
-- them, and every verified webhook event (stored before it is acknowledged, applied by a
-- worker: the event id makes a redelivery a no-op).
CREATE TABLE billing_customers (
    customer_id TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE billing_subscriptions (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- Stripe's status: active, trialing, past_due, canceled, unpaid, incomplete, …
    status             TEXT NOT NULL,
    current_period_end INTEGER NOT NULL DEFAULT 0,
    -- When a renewal payment failed (invoice.payment_failed); cleared by invoice.paid.
    payment_failed_at  INTEGER,
    -- `created` of the newest event applied: an older one changes nothing.
    observed_at        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX billing_subscriptions_user ON billing_subscriptions (user_id);

CREATE TABLE billing_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    type            TEXT NOT NULL,
    created         INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    -- Set when the event's effect is committed (or it was given up on: outcome 'failed').
    processed_at    INTEGER,
    outcome         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    -- A worker owns the event until then (it crashed if the event is still unprocessed).
    lease_until     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX billing_events_due ON billing_events (processed_at, next_attempt_at, seq);
