-- Sessions with rotating refresh tokens, revocation, entitlements, and the outbox that pushes
-- what the edge must know.

-- Access tokens issued (iat) before not_before are refused, at the origin and, once the
-- user's record is synced, at the edge. version orders the user's edge records.
ALTER TABLE users ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
-- The region that holds the user's data; writes are routed there (the JWT's `region`).
ALTER TABLE users ADD COLUMN home_region TEXT;

-- One row per login. Every access token of a session carries its id as `jti`. The refresh
-- token is `{id}.{secret}`; only SHA-256(secret) is stored. previous_hash is the token the last
-- refresh replaced: presenting it again means it was stolen, and the session is revoked.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    refresh_hash  BLOB NOT NULL,
    previous_hash BLOB,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id);

-- What a user may play beyond public videos. Written by billing (and the demo seed).
CREATE TABLE entitlements (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    tier       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    period_end INTEGER NOT NULL,
    version    INTEGER NOT NULL DEFAULT 1
);

-- Records for the edge, written in the same transaction as the change they describe.
-- seq orders them; each edge deployment's cursor says how far it has been sent.
CREATE TABLE edge_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    value      BLOB NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE edge_sync_cursors (
    edge     TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
