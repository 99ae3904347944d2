-- When a signing key stopped being the active one: its tokens live at most access_ttl_secs
-- longer, after which it may be retired (removed from the JWKS).
ALTER TABLE signing_keys ADD COLUMN deactivated_at BIGINT;
