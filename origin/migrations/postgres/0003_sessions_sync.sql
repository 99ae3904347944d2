-- Sessions with rotating refresh tokens, revocation, entitlements, and the outbox that pushes
-- what the edge must know.

-- Access tokens issued (iat) before not_before are refused, at the origin and, once the
-- user's record is synced, at the edge. version orders the user's edge records.
ALTER TABLE users ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
-- The region that holds the user's data; writes are routed there (the JWT's `region`).
ALTER TABLE users ADD COLUMN home_region TEXT;

-- One row per login. Every access token of a session carries its id as `jti`. The refresh
-- token is `{id}.{secret}`; only SHA-256(secret) is stored. previous_hash is the token the last
-- refresh replaced: presenting it again means it was stolen, and the session is revoked.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    refresh_hash  BYTEA NOT NULL,
    previous_hash BYTEA,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

-- What a user may play beyond public videos. Written by billing (and the demo seed).
CREATE TABLE entitlements (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    tier       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    period_end BIGINT NOT NULL,
    version    BIGINT NOT NULL DEFAULT 1
);

-- Records for the edge, written in the same transaction as the change they describe.
-- seq orders them; each edge deployment's cursor says how far it has been sent.
-- Transactions that add rows hold one advisory lock from their start (db::begin_write), so
-- seq order is commit order and a pusher never passes a row that is yet to commit.
CREATE TABLE edge_outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        TEXT NOT NULL,
    version    BIGINT NOT NULL,
    value      BYTEA NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE edge_sync_cursors (
    edge     TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
