-- Creators' earnings (origin/src/earnings/): the invoices members paid, as the billing webhooks
-- recorded them, and each closed month: its figures, each creator's statement and the per-video
-- inputs behind it. A month is written whole in one transaction, once.

CREATE TABLE billing_invoices (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    -- What was paid, in minor units of `currency` (lower case, as Stripe writes it).
    amount_minor    INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    paid_at         INTEGER NOT NULL
);
CREATE INDEX billing_invoices_paid ON billing_invoices (paid_at);

CREATE TABLE earnings_months (
    -- 'YYYY-MM', UTC.
    month                    TEXT PRIMARY KEY,
    currency                 TEXT NOT NULL,
    -- The platform's share, in basis points (1/100 of a percent).
    share_bps                INTEGER NOT NULL,
    membership_gross         INTEGER NOT NULL,
    membership_platform      INTEGER NOT NULL,
    membership_pool          INTEGER NOT NULL,
    -- The pool when no member watched a members video that month (kept by the platform).
    membership_undistributed INTEGER NOT NULL,
    members_watch_ms         INTEGER NOT NULL,
    ad_impressions           INTEGER NOT NULL,
    -- The impressions' prices per thousand, summed: thousandths of a minor unit.
    ad_gross_milli           INTEGER NOT NULL,
    ad_gross                 INTEGER NOT NULL,
    ad_platform              INTEGER NOT NULL,
    ad_creators              INTEGER NOT NULL,
    closed_at                INTEGER NOT NULL
);

CREATE TABLE earnings_statements (
    month            TEXT NOT NULL,
    creator_id       TEXT NOT NULL,
    members_watch_ms INTEGER NOT NULL,
    membership       INTEGER NOT NULL,
    ad_impressions   INTEGER NOT NULL,
    ad_gross_milli   INTEGER NOT NULL,
    ad_gross         INTEGER NOT NULL,
    ad_platform      INTEGER NOT NULL,
    ad_net           INTEGER NOT NULL,
    total            INTEGER NOT NULL,
    PRIMARY KEY (month, creator_id)
);

CREATE TABLE earnings_lines (
    month            TEXT NOT NULL,
    creator_id       TEXT NOT NULL,
    video_id         TEXT NOT NULL,
    members_watch_ms INTEGER NOT NULL,
    ad_impressions   INTEGER NOT NULL,
    ad_gross_milli   INTEGER NOT NULL,
    PRIMARY KEY (month, creator_id, video_id)
);
