-- Creator uploads. A ticket (the signed upload URL) is single use: its nonce row is marked
-- when an upload starts with it. A resumable (tus) upload keeps how many bytes are on disk, so
-- a dropped connection resumes from there. `secrets` holds keys the origin makes for itself
-- (the upload-ticket key), so they survive restarts.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE upload_tickets (
    nonce      TEXT PRIMARY KEY,
    video_id   TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    video_id     TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    length       BIGINT NOT NULL,
    received     BIGINT NOT NULL DEFAULT 0,
    content_type TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX uploads_expiry ON uploads (expires_at);
