-- Creator uploads. A ticket (the signed upload URL) is single use: its nonce row is marked
-- when an upload starts with it. A resumable (tus) upload keeps how many bytes are on disk, so
-- a dropped connection resumes from there. `secrets` holds keys the origin makes for itself
-- (the upload-ticket key), so they survive restarts.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE upload_tickets (
    nonce      TEXT PRIMARY KEY,
    video_id   TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    video_id     TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    length       INTEGER NOT NULL,
    received     INTEGER NOT NULL DEFAULT 0,
    content_type TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX uploads_expiry ON uploads (expires_at);
