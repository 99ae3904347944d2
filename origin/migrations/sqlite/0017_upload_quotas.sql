-- Plain (PUT) uploads while their body streams in, so they count with the resumable ones
-- (`uploads`) against their creator's bounds on open uploads and bytes in flight. `id` is the
-- name of the partial file; `bytes` the most the request may write.
CREATE TABLE put_uploads (
    id         TEXT PRIMARY KEY,
    video_id   TEXT NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX put_uploads_video ON put_uploads (video_id);
CREATE INDEX uploads_video ON uploads (video_id);
