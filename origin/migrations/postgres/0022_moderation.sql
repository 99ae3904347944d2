-- Moderation (origin/src/moderation/): reports, takedown reasons, account suspensions, the
-- append-only audit log, and the role `moderator` (between creator and admin).

-- One report per reporter and target while it is open; a moderator's action closes every open
-- report of its target (`resolution` names the action).
CREATE TABLE reports (
    id          TEXT PRIMARY KEY,
    reporter_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- `video:{id}` or `comment:{id}`.
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL
                CHECK (reason IN ('spam', 'abuse', 'copyright', 'sexual', 'violence', 'other')),
    note        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    resolved_at BIGINT,
    resolution  TEXT
);
CREATE UNIQUE INDEX reports_one_open ON reports (reporter_id, target) WHERE resolved_at IS NULL;
CREATE INDEX reports_open ON reports (target) WHERE resolved_at IS NULL;
CREATE INDEX reports_by_reporter ON reports (reporter_id, created_at);

-- A suspended account cannot sign in; its sessions were ended and its videos taken down with it.
-- Only someone of the suspender's role or above lifts it.
CREATE TABLE suspensions (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    by_role    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- What the viewer of a taken-down video is told (NULL: the general message); the role of who
-- took it down (only that role or above restores it); and whether the takedown came with its
-- owner's suspension (reinstating the owner restores those, and only those).
ALTER TABLE videos ADD COLUMN takedown_reason TEXT;
ALTER TABLE videos ADD COLUMN takedown_role TEXT;
ALTER TABLE videos ADD COLUMN taken_down_with_owner BIGINT NOT NULL DEFAULT 0;

-- Who did what, when and why; rows are never changed or removed (the trigger refuses it) and
-- outlive the accounts they name.
CREATE TABLE moderation_log (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id   TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- `video:{id}`, `comment:{id}` or `user:{id}`.
    target     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    -- The open reports the action closed.
    reports    BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE FUNCTION moderation_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'moderation_log is append-only';
END $$;
CREATE TRIGGER moderation_log_append_only BEFORE UPDATE OR DELETE ON moderation_log
FOR EACH ROW EXECUTE FUNCTION moderation_log_append_only();

-- The role `moderator`.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('user', 'creator', 'moderator', 'admin'));
