-- When a session's refresh token was last replaced (Unix milliseconds). A browser can lose the
-- answer that carried the new token (a page left while its refresh was under way); for a few
-- seconds after a rotation (auth.refresh_reuse_grace_secs) the replaced token is exchanged once
-- more instead of being taken for a stolen one (origin/src/sessions.rs).
ALTER TABLE sessions ADD COLUMN rotated_at_ms INTEGER;
