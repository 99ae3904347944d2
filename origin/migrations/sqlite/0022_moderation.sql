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
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER,
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
    created_at INTEGER NOT NULL
);

-- What the viewer of a taken-down video is told (NULL: the general message); the role of who
-- took it down (only that role or above restores it); and whether the takedown came with its
-- owner's suspension (reinstating the owner restores those, and only those).
ALTER TABLE videos ADD COLUMN takedown_reason TEXT;
ALTER TABLE videos ADD COLUMN takedown_role TEXT;
ALTER TABLE videos ADD COLUMN taken_down_with_owner INTEGER NOT NULL DEFAULT 0;

-- Who did what, when and why; rows are never changed or removed (the triggers refuse it) and
-- outlive the accounts they name.
CREATE TABLE moderation_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_id   TEXT NOT NULL,
    action     TEXT NOT NULL,
    -- `video:{id}`, `comment:{id}` or `user:{id}`.
    target     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    -- The open reports the action closed.
    reports    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TRIGGER moderation_log_no_update BEFORE UPDATE ON moderation_log
BEGIN SELECT RAISE(ABORT, 'moderation_log is append-only'); END;
CREATE TRIGGER moderation_log_no_delete BEFORE DELETE ON moderation_log
BEGIN SELECT RAISE(ABORT, 'moderation_log is append-only'); END;

-- The role `moderator`. SQLite cannot change a CHECK constraint in place, and `users` cannot be
-- rebuilt here: migrations run in a transaction, where references cannot be switched off, and
-- dropping the table would cascade to every session, channel and subscription. Widening the
-- list changes no stored row, so the table's definition is edited where SQLite keeps it (the
-- procedure SQLite documents for changes that leave the stored rows as they are). Last, so no
-- other statement here works from the old definition; `db::connect` runs migrations on a
-- connection of their own and closes it before the pool opens, so no pooled connection keeps it.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
SET sql = replace(sql, 'CHECK (role IN (''user'', ''creator'', ''admin''))',
                  'CHECK (role IN (''user'', ''creator'', ''moderator'', ''admin''))')
WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = OFF;
