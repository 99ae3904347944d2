-- Versions of the shared feeds the edge caches (`home`, `channel:{user}`), bumped with every
-- write that changes them; and the index the home feed reads in order.
CREATE TABLE feed_versions (
    feed    TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
CREATE INDEX videos_feed ON videos (visibility, state, created_at DESC, id DESC);
CREATE INDEX videos_owner ON videos (owner_id, created_at DESC, id DESC);
