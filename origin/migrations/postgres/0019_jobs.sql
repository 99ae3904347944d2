-- One durable job queue for every kind of background work (origin/src/jobs/). A job is a row:
-- a worker takes it with a lease (`lease_until`) it renews while it works, and `attempts`
-- (raised by every claim) fences it: a worker whose lease was taken over finds its completion
-- refused. A failed job waits `run_at` (exponential backoff) and is dead-lettered (`dead`, the
-- last error kept) after its kind's last attempt. `key` makes enqueueing idempotent per kind
-- (a Stripe event id, a video id); finished jobs stay, so a key is never queued twice.
-- An identity never gives out an id again, so a job replaced under its key (a new row)
-- fences every worker of the old one.
CREATE TABLE jobs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT NOT NULL,
    key         TEXT,
    payload     TEXT NOT NULL DEFAULT '',
    -- Higher first among due jobs of a worker's kinds, then oldest first.
    priority    BIGINT NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts    BIGINT NOT NULL DEFAULT 0,
    run_at      BIGINT NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    -- What the handler reported ('applied', 'stale', …), 'failed' for a dead letter.
    outcome     TEXT,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (kind, key)
);
CREATE INDEX jobs_pending ON jobs (kind, run_at) WHERE state IN ('queued', 'running');
