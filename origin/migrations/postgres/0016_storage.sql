-- Sources and media move behind a store (local folders or an S3-compatible bucket). A job
-- names the object holding its source (a key per upload); a finished rendition keeps its
-- measured bitrates, so the master playlist is written without the rendition's files at hand
-- (they may be in the bucket already, or on another machine's worker).
ALTER TABLE transcode_jobs ADD COLUMN source TEXT;
UPDATE transcode_jobs SET source = 'sources/' || video_id;
ALTER TABLE transcode_tasks ADD COLUMN bandwidth BIGINT;
ALTER TABLE transcode_tasks ADD COLUMN average_bandwidth BIGINT;
-- Renditions finished before this version sit in a work folder this version no longer reads:
-- they are encoded again.
UPDATE transcode_tasks SET state = 'queued', attempts = 0, progress = 0, lease_until = 0,
    next_attempt_at = 0
WHERE state IN ('running', 'done')
  AND video_id IN (SELECT video_id FROM transcode_jobs WHERE stage IN ('encode', 'finalize'));
UPDATE transcode_jobs SET stage = 'encode', lease_until = 0 WHERE stage = 'finalize';
