-- How far the rollup has read an event store outside this database (ClickHouse,
-- origin/src/analytics/events.rs): the position of the last event it rolled up, written in the
-- same transaction as the views and hourly rows made of the events up to it.

CREATE TABLE analytics_cursor (
    -- The store: 'clickhouse'.
    store    TEXT PRIMARY KEY,
    -- ClickHouse's time of the insert (unix seconds), then the event's view and sequence number:
    -- the store's sort order.
    inserted BIGINT NOT NULL,
    view_id  TEXT NOT NULL,
    seq      BIGINT NOT NULL
);

-- The sequence numbers of a view the rollup has counted (origin/src/analytics/seqs.rs:
-- `0-41,43`): an event store that keeps a retried beacon twice still counts it once.
ALTER TABLE playback_views ADD COLUMN seqs TEXT NOT NULL DEFAULT '';

-- The retention job removes views by their first hour (origin/src/analytics/retention.rs).
CREATE INDEX playback_views_hour ON playback_views (hour);
