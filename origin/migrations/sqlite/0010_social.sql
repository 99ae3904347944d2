-- Comments, reactions (likes and dislikes) with their counts kept on the target, and channel
-- subscriptions (a channel is a creator's user id).
CREATE TABLE comments (
    id         TEXT PRIMARY KEY,
    video_id   TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    author_id  TEXT REFERENCES users(id) ON DELETE SET NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    likes      INTEGER NOT NULL DEFAULT 0,
    dislikes   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX comments_video ON comments (video_id, created_at, id);

ALTER TABLE videos ADD COLUMN likes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN dislikes INTEGER NOT NULL DEFAULT 0;

-- target: 'video:{id}' or 'comment:{id}'; one reaction per user and target.
CREATE TABLE reactions (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    target  TEXT NOT NULL,
    value   INTEGER NOT NULL CHECK (value IN (-1, 1)),
    PRIMARY KEY (user_id, target)
);

CREATE TABLE subscriptions (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);
