-- The transcoding queue. A job per uploaded video moves through stages (probe, encode,
-- finalize, then done or failed); encode is one task per rendition, so a failed rendition is
-- retried alone. Whoever works on a row holds a lease it renews while it works (heartbeat);
-- `attempts` fences it: a worker whose lease was taken over finds its updates refused.
CREATE TABLE transcode_jobs (
    video_id        TEXT PRIMARY KEY REFERENCES videos(id) ON DELETE CASCADE,
    stage           TEXT NOT NULL CHECK (stage IN ('probe', 'encode', 'finalize', 'done', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    width           BIGINT,
    height          BIGINT,
    duration_ms     BIGINT,
    has_audio       BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX transcode_jobs_due ON transcode_jobs (stage, next_attempt_at);

CREATE TABLE transcode_tasks (
    id              TEXT PRIMARY KEY,
    video_id        TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    rendition       TEXT NOT NULL,
    height          BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    progress        BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX transcode_tasks_video ON transcode_tasks (video_id);
CREATE INDEX transcode_tasks_due ON transcode_tasks (state, next_attempt_at);
