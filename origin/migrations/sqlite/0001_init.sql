-- Users, the keys that sign their access tokens, and the videos the edge plays.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'creator', 'admin')),
    created_at    INTEGER NOT NULL
);

-- Access-token signing keys. One is active; older ones stay published in the JWKS until the
-- tokens they signed have expired.
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    alg        TEXT NOT NULL CHECK (alg IN ('EdDSA')),
    secret     BLOB NOT NULL,
    active     INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL
);

CREATE TABLE videos (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT REFERENCES users(id) ON DELETE SET NULL,
    title       TEXT NOT NULL,
    visibility  TEXT NOT NULL CHECK (visibility IN ('public', 'members', 'private')),
    state       TEXT NOT NULL CHECK (state IN ('uploading', 'processing', 'ready', 'failed')),
    duration_ms INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
