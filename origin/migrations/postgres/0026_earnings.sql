-- Creators' earnings (origin/src/earnings/): the invoices members paid, as the billing webhooks
-- recorded them, and each closed month: its figures, each creator's statement and the per-video
-- inputs behind it. A month is written whole in one transaction, once.

CREATE TABLE billing_invoices (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    -- What was paid, in minor units of `currency` (lower case, as Stripe writes it).
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    paid_at         BIGINT NOT NULL
);
CREATE INDEX billing_invoices_paid ON billing_invoices (paid_at);

CREATE TABLE earnings_months (
    -- 'YYYY-MM', UTC.
    month                    TEXT PRIMARY KEY,
    currency                 TEXT NOT NULL,
    -- The platform's share, in basis points (1/100 of a percent).
    share_bps                BIGINT NOT NULL,
    membership_gross         BIGINT NOT NULL,
    membership_platform      BIGINT NOT NULL,
    membership_pool          BIGINT NOT NULL,
    -- The pool when no member watched a members video that month (kept by the platform).
    membership_undistributed BIGINT NOT NULL,
    members_watch_ms         BIGINT NOT NULL,
    ad_impressions           BIGINT NOT NULL,
    -- The impressions' prices per thousand, summed: thousandths of a minor unit.
    ad_gross_milli           BIGINT NOT NULL,
    ad_gross                 BIGINT NOT NULL,
    ad_platform              BIGINT NOT NULL,
    ad_creators              BIGINT NOT NULL,
    closed_at                BIGINT NOT NULL
);

CREATE TABLE earnings_statements (
    month            TEXT NOT NULL,
    creator_id       TEXT NOT NULL,
    members_watch_ms BIGINT NOT NULL,
    membership       BIGINT NOT NULL,
    ad_impressions   BIGINT NOT NULL,
    ad_gross_milli   BIGINT NOT NULL,
    ad_gross         BIGINT NOT NULL,
    ad_platform      BIGINT NOT NULL,
    ad_net           BIGINT NOT NULL,
    total            BIGINT NOT NULL,
    PRIMARY KEY (month, creator_id)
);

CREATE TABLE earnings_lines (
    month            TEXT NOT NULL,
    creator_id       TEXT NOT NULL,
    video_id         TEXT NOT NULL,
    members_watch_ms BIGINT NOT NULL,
    ad_impressions   BIGINT NOT NULL,
    ad_gross_milli   BIGINT NOT NULL,
    PRIMARY KEY (month, creator_id, video_id)
);

-- Whether a view was of a members-only video when it was first rolled up: the membership pool
-- is split by that, not by what the video is when the month closes. Views before this version
-- take the video's visibility now.
ALTER TABLE playback_views ADD COLUMN members BIGINT NOT NULL DEFAULT 0;
UPDATE playback_views SET members = 1
 WHERE video_id IN (SELECT id FROM videos WHERE visibility = 'members');

-- When creators' earnings began: the job closes no month that started before (its invoices
-- were not kept).
CREATE TABLE earnings_start (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    started_at BIGINT NOT NULL
);
INSERT INTO earnings_start (id, started_at) VALUES (1, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT));
