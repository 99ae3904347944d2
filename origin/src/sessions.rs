//! Login sessions: rotating refresh tokens with reuse detection, and revocation that reaches
//! the edge through the outbox.
//!
//! A refresh token is `{session id}.{secret}`; the database keeps only SHA-256 of the secret.
//! Each refresh replaces the secret. Presenting the replaced one again can only mean two
//! parties hold the session (the token was stolen), so the whole session is revoked.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use shared_wasm::jwt::Role;
use shared_wasm::record::{RevokedSession, UserRecord};
use subtle::ConstantTimeEq;

use crate::clock::{now, now_ms};
use crate::db::{parse_enum, WriteTx};
use crate::error::ApiError;
use crate::keys::random_bytes;
use crate::outbox;
use crate::startup::AppState;

/// What a login or a refresh returns.
pub struct Issued {
    /// The access JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// The new refresh token.
    pub refresh_token: String,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

const INVALID: ApiError = ApiError::Unauthorized {
    code: "invalid_refresh_token",
    message: "refresh token is invalid, expired or revoked; log in again",
};

/// Starts a session for a user who has just proven who they are.
pub async fn start(
    state: &AppState,
    user_id: &str,
    role: Role,
    home_region: &str,
) -> Result<Issued, ApiError> {
    wait_for_epoch(state, user_id).await?;
    let id = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
    let secret = new_secret();
    let t = now();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(hash(&secret))
    .bind(t as i64)
    .bind((t + state.settings.auth.refresh_ttl_secs) as i64)
    .execute(&state.db)
    .await?;
    issue(state, user_id, role, &id, home_region, secret)
}

/// `iat` has whole seconds, so a revocation sets the user's epoch to the second after it
/// ([`revoke_user`]): every token issued up to the revocation, even in the same second, is then
/// refused. A login in that same second waits for the epoch, or its own token would be refused.
async fn wait_for_epoch(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let (not_before,): (i64,) = sqlx::query_as("SELECT not_before FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&state.db)
        .await?;
    let wait_ms = (not_before.max(0) as u64 * 1000).saturating_sub(now_ms());
    // Bounded: an epoch set by this origin is at most one second ahead of its clock.
    if wait_ms > 0 {
        tokio::time::sleep(Duration::from_millis(wait_ms.min(2_000))).await;
    }
    Ok(())
}

fn issue(
    state: &AppState,
    user_id: &str,
    role: Role,
    session_id: &str,
    home_region: &str,
    secret: String,
) -> Result<Issued, ApiError> {
    let (access_token, expires_in) =
        state
            .keys
            .issue(&state.settings.auth, user_id, role, session_id, home_region)?;
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token: format!("{session_id}.{secret}"),
    })
}

type SessionRow = (
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    i64,
    Option<i64>,
    String,
    Option<String>,
);

/// Exchanges a refresh token for a new access token and a new refresh token.
pub async fn refresh(state: &AppState, token: &str) -> Result<Issued, ApiError> {
    let (id, secret) = token.split_once('.').ok_or(INVALID)?;
    if id.len() > 64 || secret.len() > 128 {
        return Err(INVALID);
    }
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT s.user_id, s.refresh_hash, s.previous_hash, s.expires_at, s.revoked_at, u.role,
                u.home_region
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let (user_id, current, previous, expires_at, revoked_at, role, region) = row.ok_or(INVALID)?;
    if revoked_at.is_some() || expires_at as u64 <= now() {
        return Err(INVALID);
    }
    let presented = hash(secret);
    if bool::from(presented.ct_eq(&current)) {
        let next = new_secret();
        // Compare-and-set: of two refreshes racing with the same token, one wins.
        let done = sqlx::query(
            "UPDATE sessions SET previous_hash = refresh_hash, refresh_hash = $1
             WHERE id = $2 AND refresh_hash = $3 AND revoked_at IS NULL",
        )
        .bind(hash(&next))
        .bind(id)
        .bind(&current)
        .execute(&state.db)
        .await?;
        if done.rows_affected() != 1 {
            return Err(INVALID);
        }
        let region = region.unwrap_or_else(|| state.settings.server.region.clone());
        return issue(state, &user_id, parse_enum(&role)?, id, &region, next);
    }
    if previous.is_some_and(|p| bool::from(presented.ct_eq(&p))) {
        tracing::warn!(session = %id, user = %user_id, "refresh token reused; revoking the session");
        let mut tx = crate::db::begin_write(&state.db).await?;
        revoke_session(&mut tx, state, id).await?;
        tx.commit().await?;
        state.outbox.wake();
        return Err(ApiError::Unauthorized {
            code: "refresh_token_reused",
            message: "this refresh token was already used; the session is revoked",
        });
    }
    Err(INVALID)
}

/// Revokes one session: its refresh token stops working and its access tokens are refused at
/// the edge once the record arrives. Call inside a transaction, then wake the outbox.
pub async fn revoke_session(
    tx: &mut WriteTx,
    state: &AppState,
    session_id: &str,
) -> Result<(), ApiError> {
    let t = now();
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(t as i64)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    // No access token of the session outlives the access lifetime plus the edge's skew.
    let record = RevokedSession {
        v: 1,
        jti: session_id.to_owned(),
        expires_at: t + state.settings.auth.access_ttl_secs + 60,
        version: 1,
    };
    outbox::enqueue(tx, &record).await?;
    Ok(())
}

/// Logs a user out everywhere: every session revoked and every access token issued so far
/// refused (the user's "not before" epoch). Used by logout-everywhere, by an admin's revoke,
/// and after a role change. Call inside a transaction, then wake the outbox.
pub async fn revoke_user(tx: &mut WriteTx, user_id: &str) -> Result<bool, ApiError> {
    let t = now();
    // The next second: a token issued in this one may predate the revocation.
    let epoch = t + 1;
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE users SET not_before = $1, version = version + 1 WHERE id = $2 RETURNING version",
    )
    .bind(epoch as i64)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((version,)) = row else {
        return Ok(false);
    };
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(t as i64)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let record = UserRecord {
        v: 1,
        id: user_id.to_owned(),
        not_before: epoch,
        version: version as u64,
    };
    outbox::enqueue(tx, &record).await?;
    Ok(true)
}
