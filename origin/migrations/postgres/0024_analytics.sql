-- Playback analytics (origin/src/analytics/): the players' reports as the edge forwarded them,
-- each view's running totals, and the hourly rollups the statistics read.

-- One row per view and event, never rewritten: a retried beacon's events hit the key and are
-- dropped. `pending` is the one column that changes: the rollup clears it in the transaction
-- that counts the event, so an event counts exactly once whatever crashes.
CREATE TABLE playback_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    view_id     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    video_id    TEXT NOT NULL,
    -- `u:{user id}` or `a:{pseudonym}` (never an address).
    viewer      TEXT NOT NULL,
    -- '' when the edge did not know it.
    country     TEXT NOT NULL,
    device      TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    -- The event as the player sent it (JSON, checked by shared_wasm::beacon).
    data        TEXT NOT NULL,
    pending     BIGINT NOT NULL DEFAULT 1,
    UNIQUE (view_id, seq)
);
CREATE INDEX playback_events_pending ON playback_events (id) WHERE pending = 1;

-- A view's totals so far, kept by the rollup.
CREATE TABLE playback_views (
    view_id    TEXT PRIMARY KEY,
    video_id   TEXT NOT NULL,
    viewer     TEXT NOT NULL,
    country    TEXT NOT NULL,
    device     TEXT NOT NULL,
    -- The hour of its first event: the rollup row it counts in.
    hour       BIGINT NOT NULL,
    issued_at  BIGINT NOT NULL,
    watched_ms BIGINT NOT NULL,
    -- Bit k: the view played the point at k × 5 % of the duration.
    retention  BIGINT NOT NULL,
    startup_ms BIGINT,
    -- What it reported besides (each capped per view: see analytics::rollup).
    rebuffers  BIGINT NOT NULL,
    rebuffer_ms BIGINT NOT NULL,
    switches   BIGINT NOT NULL,
    errors     BIGINT NOT NULL,
    -- When it counted as a view (30 s watched, or the whole of a shorter video; once per viewer
    -- and video per 30 minutes); never, if it did not.
    counted_at BIGINT
);
CREATE INDEX playback_views_counted ON playback_views (viewer, video_id, counted_at);
CREATE INDEX playback_views_video ON playback_views (video_id, hour);

-- Per video, hour, country and device.
CREATE TABLE video_stats_hourly (
    video_id    TEXT NOT NULL,
    hour        BIGINT NOT NULL,
    country     TEXT NOT NULL,
    device      TEXT NOT NULL,
    -- Views that played anything, and of those the ones that counted as views.
    plays       BIGINT NOT NULL,
    views       BIGINT NOT NULL,
    watch_ms    BIGINT NOT NULL,
    rebuffers   BIGINT NOT NULL,
    rebuffer_ms BIGINT NOT NULL,
    switches    BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    -- Plays per startup-time bucket (s0 … s9: analytics::STARTUP_BUCKETS_MS).
    s0 BIGINT NOT NULL,
    s1 BIGINT NOT NULL,
    s2 BIGINT NOT NULL,
    s3 BIGINT NOT NULL,
    s4 BIGINT NOT NULL,
    s5 BIGINT NOT NULL,
    s6 BIGINT NOT NULL,
    s7 BIGINT NOT NULL,
    s8 BIGINT NOT NULL,
    s9 BIGINT NOT NULL,
    -- Plays that played the point at k × 5 % of the duration (r0 … r19).
    r0 BIGINT NOT NULL,
    r1 BIGINT NOT NULL,
    r2 BIGINT NOT NULL,
    r3 BIGINT NOT NULL,
    r4 BIGINT NOT NULL,
    r5 BIGINT NOT NULL,
    r6 BIGINT NOT NULL,
    r7 BIGINT NOT NULL,
    r8 BIGINT NOT NULL,
    r9 BIGINT NOT NULL,
    r10 BIGINT NOT NULL,
    r11 BIGINT NOT NULL,
    r12 BIGINT NOT NULL,
    r13 BIGINT NOT NULL,
    r14 BIGINT NOT NULL,
    r15 BIGINT NOT NULL,
    r16 BIGINT NOT NULL,
    r17 BIGINT NOT NULL,
    r18 BIGINT NOT NULL,
    r19 BIGINT NOT NULL,
    PRIMARY KEY (video_id, hour, country, device)
);
