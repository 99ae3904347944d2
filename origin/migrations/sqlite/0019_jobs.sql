-- One durable job queue for every kind of background work (origin/src/jobs/). A job is a row:
-- a worker takes it with a lease (`lease_until`) it renews while it works, and `attempts`
-- (raised by every claim) fences it: a worker whose lease was taken over finds its completion
-- refused. A failed job waits `run_at` (exponential backoff) and is dead-lettered (`dead`, the
-- last error kept) after its kind's last attempt. `key` makes enqueueing idempotent per kind
-- (a Stripe event id, a video id); finished jobs stay, so a key is never queued twice.
-- AUTOINCREMENT: an id is never given out again, so a job replaced under its key (a new row)
-- fences every worker of the old one.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    key         TEXT,
    payload     TEXT NOT NULL DEFAULT '',
    -- Higher first among due jobs of a worker's kinds, then oldest first.
    priority    INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_at      INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    -- What the handler reported ('applied', 'stale', …), 'failed' for a dead letter.
    outcome     TEXT,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    UNIQUE (kind, key)
);
CREATE INDEX jobs_pending ON jobs (kind, run_at) WHERE state IN ('queued', 'running');

-- Stripe events move in as jobs (the event id their key, the body their payload), in arrival
-- order, with their attempts, backoff, lease and outcome.
INSERT INTO jobs (kind, key, payload, state, attempts, run_at, lease_until, outcome, last_error,
                  created_at, finished_at)
SELECT 'billing.event', id, payload,
       CASE WHEN processed_at IS NULL AND lease_until > 0 THEN 'running'
            WHEN processed_at IS NULL THEN 'queued'
            WHEN outcome = 'failed' THEN 'dead'
            ELSE 'done' END,
       attempts, next_attempt_at, lease_until, outcome, last_error, received_at, processed_at
FROM billing_events ORDER BY seq;
DROP TABLE billing_events;
-- The events as they were listed before, for the queries operators keep.
CREATE VIEW billing_events AS
SELECT id AS seq, key AS id, json_extract(payload, '$.type') AS type,
       json_extract(payload, '$.created') AS created, payload, created_at AS received_at,
       finished_at AS processed_at, outcome, attempts, run_at AS next_attempt_at, lease_until,
       last_error
FROM jobs WHERE kind = 'billing.event';

-- Transcoding work in progress: a probe or finalize stage is one job keyed by its video, a
-- rendition still to encode one job keyed by its task. Stages go before renditions.
INSERT INTO jobs (kind, key, priority, state, attempts, run_at, lease_until, last_error,
                  created_at)
SELECT CASE stage WHEN 'probe' THEN 'transcode.probe' ELSE 'transcode.finalize' END, video_id, 1,
       CASE WHEN lease_until > 0 THEN 'running' ELSE 'queued' END,
       attempts, next_attempt_at, lease_until, last_error, created_at
FROM transcode_jobs WHERE stage IN ('probe', 'finalize') ORDER BY created_at;
INSERT INTO jobs (kind, key, state, attempts, run_at, lease_until, last_error, created_at)
SELECT 'transcode.encode', t.id, CASE WHEN t.lease_until > 0 THEN 'running' ELSE 'queued' END,
       t.attempts, t.next_attempt_at, t.lease_until, t.last_error, j.created_at
FROM transcode_tasks t JOIN transcode_jobs j ON j.video_id = t.video_id
WHERE j.stage = 'encode' AND t.state IN ('queued', 'running')
ORDER BY j.created_at, t.video_id, t.height;
-- The transcoding tables keep what the status API shows (stage, each rendition's state,
-- progress, attempts and reason code); leases and backoff are the queue's now.
DROP INDEX transcode_jobs_due;
ALTER TABLE transcode_jobs DROP COLUMN next_attempt_at;
ALTER TABLE transcode_jobs DROP COLUMN lease_until;
DROP INDEX transcode_tasks_due;
ALTER TABLE transcode_tasks DROP COLUMN next_attempt_at;
ALTER TABLE transcode_tasks DROP COLUMN lease_until;
