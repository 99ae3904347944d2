-- Playback analytics (origin/src/analytics/): the players' reports as the edge forwarded them,
-- each view's running totals, and the hourly rollups the statistics read.

-- One row per view and event, never rewritten: a retried beacon's events hit the key and are
-- dropped. `pending` is the one column that changes: the rollup clears it in the transaction
-- that counts the event, so an event counts exactly once whatever crashes.
CREATE TABLE playback_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    view_id     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    video_id    TEXT NOT NULL,
    -- `u:{user id}` or `a:{pseudonym}` (never an address).
    viewer      TEXT NOT NULL,
    -- '' when the edge did not know it.
    country     TEXT NOT NULL,
    device      TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    -- The event as the player sent it (JSON, checked by shared_wasm::beacon).
    data        TEXT NOT NULL,
    pending     INTEGER NOT NULL DEFAULT 1,
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
    hour       INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    watched_ms INTEGER NOT NULL,
    -- Bit k: the view played the point at k × 5 % of the duration.
    retention  INTEGER NOT NULL,
    startup_ms INTEGER,
    -- What it reported besides (each capped per view: see analytics::rollup).
    rebuffers  INTEGER NOT NULL,
    rebuffer_ms INTEGER NOT NULL,
    switches   INTEGER NOT NULL,
    errors     INTEGER NOT NULL,
    -- When it counted as a view (30 s watched, or the whole of a shorter video; once per viewer
    -- and video per 30 minutes); never, if it did not.
    counted_at INTEGER
);
CREATE INDEX playback_views_counted ON playback_views (viewer, video_id, counted_at);
CREATE INDEX playback_views_video ON playback_views (video_id, hour);

-- Per video, hour, country and device.
CREATE TABLE video_stats_hourly (
    video_id    TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    country     TEXT NOT NULL,
    device      TEXT NOT NULL,
    -- Views that played anything, and of those the ones that counted as views.
    plays       INTEGER NOT NULL,
    views       INTEGER NOT NULL,
    watch_ms    INTEGER NOT NULL,
    rebuffers   INTEGER NOT NULL,
    rebuffer_ms INTEGER NOT NULL,
    switches    INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    -- Plays per startup-time bucket (s0 … s9: analytics::STARTUP_BUCKETS_MS).
    s0 INTEGER NOT NULL,
    s1 INTEGER NOT NULL,
    s2 INTEGER NOT NULL,
    s3 INTEGER NOT NULL,
    s4 INTEGER NOT NULL,
    s5 INTEGER NOT NULL,
    s6 INTEGER NOT NULL,
    s7 INTEGER NOT NULL,
    s8 INTEGER NOT NULL,
    s9 INTEGER NOT NULL,
    -- Plays that played the point at k × 5 % of the duration (r0 … r19).
    r0 INTEGER NOT NULL,
    r1 INTEGER NOT NULL,
    r2 INTEGER NOT NULL,
    r3 INTEGER NOT NULL,
    r4 INTEGER NOT NULL,
    r5 INTEGER NOT NULL,
    r6 INTEGER NOT NULL,
    r7 INTEGER NOT NULL,
    r8 INTEGER NOT NULL,
    r9 INTEGER NOT NULL,
    r10 INTEGER NOT NULL,
    r11 INTEGER NOT NULL,
    r12 INTEGER NOT NULL,
    r13 INTEGER NOT NULL,
    r14 INTEGER NOT NULL,
    r15 INTEGER NOT NULL,
    r16 INTEGER NOT NULL,
    r17 INTEGER NOT NULL,
    r18 INTEGER NOT NULL,
    r19 INTEGER NOT NULL,
    PRIMARY KEY (video_id, hour, country, device)
);
