-- Video ads (origin/src/ads/): the campaigns admins run, what their ads' tracking URLs reported,
-- and the version of the catalog the edge serves them from.

CREATE TABLE ad_campaigns (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    -- The video that plays as the ad: served only while it is public, ready and not taken down.
    creative_id   TEXT NOT NULL,
    click_url     TEXT NOT NULL,
    -- Comma-separated; '' for everywhere / before any video.
    countries     TEXT NOT NULL,
    categories    TEXT NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    daily_cap     INTEGER NOT NULL,
    frequency_cap INTEGER NOT NULL,
    -- Price per thousand impressions, in minor units of the platform's currency.
    cpm_minor     INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    -- The daily cap was reached: not served before this second (the next UTC midnight).
    paused_until  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- One row per ad view and event, never rewritten: a repeated tracking request hits the key.
-- The price is the campaign's when the impression came, so a later change of price does not
-- reprice what already ran.
CREATE TABLE ad_events (
    ad_view     TEXT NOT NULL,
    event       TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    -- The video the ad ran before (whose creator it earns for).
    video_id    TEXT NOT NULL,
    viewer      TEXT NOT NULL,
    country     TEXT NOT NULL,
    cpm_minor   INTEGER NOT NULL,
    -- UTC day (received_at / 86400): what the daily cap counts.
    day         INTEGER NOT NULL,
    served_at   INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (ad_view, event)
);
CREATE INDEX ad_events_campaign ON ad_events (campaign_id, event, day);
CREATE INDEX ad_events_video ON ad_events (video_id, event, day);

-- The catalog's version: one row, bumped whenever the edge's copy must change.
CREATE TABLE ad_catalog (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
