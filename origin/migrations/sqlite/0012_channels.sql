-- Channels: a creator has one or more; each video belongs to one, and feeds and subscriptions
-- are per channel. Until now a channel was its creator's user id: each user who had videos or
-- subscribers gets one channel, id 'ch_' || user id, holding those videos and subscribers.
CREATE TABLE channels (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    -- 1 for a creator's first channel (their default), then 2, 3, …: creation order even
    -- within one second.
    ordinal     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX channels_owner ON channels (owner_id, ordinal, id);

INSERT INTO channels (id, owner_id, name, created_at)
SELECT 'ch_' || id, id, CASE WHEN display_name = '' THEN 'Channel' ELSE display_name END,
       created_at
FROM users
WHERE id IN (SELECT owner_id FROM videos) OR id IN (SELECT channel_id FROM subscriptions);

-- A video whose channel goes (its owner's account deleted) keeps playing, in no channel.
ALTER TABLE videos ADD COLUMN channel_id TEXT REFERENCES channels(id) ON DELETE SET NULL;
UPDATE videos SET channel_id = 'ch_' || owner_id WHERE owner_id IS NOT NULL;
CREATE INDEX videos_channel ON videos (channel_id, created_at DESC, id DESC);

-- Subscriptions now reference channels (SQLite cannot change a foreign key in place).
CREATE TABLE subscriptions_new (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);
INSERT INTO subscriptions_new (user_id, channel_id, created_at)
SELECT user_id, 'ch_' || channel_id, created_at FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_channel ON subscriptions (channel_id);
