//! Login sessions: rotating refresh tokens with reuse detection, and revocation that reaches
//! the edge through the outbox.
//!
//! A refresh token is `{session id}.{secret}`; the database keeps only SHA-256 of the secret.
//! Each refresh replaces the secret. Presenting the replaced one again means either that two
//! parties hold the session (the token was stolen), so the whole session is revoked, or that the
//! answer carrying the new secret never arrived (a browser drops it when a page is left during
//! its refresh). For the second, the replaced secret is exchanged again for a short grace after
//! the rotation (`auth.refresh_reuse_grace_secs`, as identity providers do), replacing the lost
//! one; later, it revokes. A thief within the grace gets the session and the owner's next refresh
//! fails: the window is the price of not signing people out at random.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use shared_wasm::jwt::Role;
use shared_wasm::record::{RevokedSession, UserRecord};
use sqlx::AnyPool;
use subtle::ConstantTimeEq;

use crate::clock::{now, now_ms};
use crate::db::{parse_enum, WriteTx};
use crate::error::ApiError;
use crate::keys::random_bytes;
use crate::keys::SigningKeys;
use crate::outbox;
use crate::outbox::Waker;
use crate::settings::AuthSettings;

/// What a login or a refresh returns.
pub struct Issued {
    /// The access JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// The new refresh token.
    pub refresh_token: String,
    /// Seconds until the session (and so the refresh token) expires; a refresh keeps the
    /// session's expiry. The edge gives a browser's refresh cookie this lifetime.
    pub refresh_expires_in: u64,
}

/// Why a session could not be started, refreshed or revoked.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The refresh token is malformed, unknown, expired or revoked.
    #[error("refresh token is invalid, expired or revoked")]
    Invalid,
    /// The refresh token was already exchanged: the session is now revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    /// The account is suspended: no session starts.
    #[error("account suspended")]
    Suspended,
    /// The database failed.
    #[error("session store")]
    Db(#[from] sqlx::Error),
    /// The access token could not be made, or a stored row is not what this code writes.
    #[error("issuing the access token")]
    Issue(#[source] anyhow::Error),
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid => ApiError::unauthorized(
                "invalid_refresh_token",
                "refresh token is invalid, expired or revoked; log in again",
            ),
            SessionError::Reused => ApiError::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used; the session is revoked",
            ),
            SessionError::Suspended => {
                ApiError::forbidden("account_suspended", "this account is suspended")
            }
            SessionError::Db(e) => e.into(),
            SessionError::Issue(e) => ApiError::Internal(e),
        }
    }
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    user_id: String,
    refresh_hash: Vec<u8>,
    previous_hash: Option<Vec<u8>>,
    expires_at: i64,
    revoked_at: Option<i64>,
    rotated_at_ms: Option<i64>,
    role: String,
    home_region: Option<String>,
}

/// Starts, refreshes and ends sessions: what it needs of the origin, and nothing more.
#[derive(Clone)]
pub struct Sessions {
    db: AnyPool,
    keys: Arc<SigningKeys>,
    auth: Arc<AuthSettings>,
    /// Home region of users who have none of their own.
    region: Arc<str>,
    outbox: Waker,
}

impl Sessions {
    /// Sessions on `db`, tokens signed with `keys` under `auth`.
    pub fn new(
        db: AnyPool,
        keys: Arc<SigningKeys>,
        auth: AuthSettings,
        region: &str,
        outbox: Waker,
    ) -> Self {
        Self {
            db,
            keys,
            auth: Arc::new(auth),
            region: region.into(),
            outbox,
        }
    }

    /// Starts a session for a user who has just proven who they are.
    pub async fn start(
        &self,
        user_id: &str,
        role: Role,
        home_region: Option<&str>,
    ) -> Result<Issued, SessionError> {
        self.wait_for_epoch(user_id).await?;
        let id = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
        let secret = new_secret();
        let t = now();
        let expires_at = t + self.auth.refresh_ttl_secs;
        // In one statement with the suspension check: a suspension committing meanwhile
        // either comes first (no session) or revokes this one.
        let started = sqlx::query(
            "INSERT INTO sessions (id, user_id, refresh_hash, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5
             WHERE NOT EXISTS (SELECT 1 FROM suspensions WHERE user_id = $2)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(hash(&secret))
        .bind(t as i64)
        .bind(expires_at as i64)
        .execute(&self.db)
        .await?;
        if started.rows_affected() == 0 {
            return Err(SessionError::Suspended);
        }
        self.issue(user_id, role, &id, home_region, secret, expires_at)
    }

    /// `iat` has whole seconds, so a revocation sets the user's epoch to the second after it
    /// ([`revoke_user`]): every token issued up to the revocation, even in the same second, is
    /// then refused. A login in that same second waits for the epoch, or its own token would be
    /// refused.
    async fn wait_for_epoch(&self, user_id: &str) -> sqlx::Result<()> {
        let not_before: i64 = sqlx::query_scalar("SELECT not_before FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&self.db)
            .await?;
        let wait_ms = (not_before.max(0) as u64 * 1000).saturating_sub(now_ms());
        // Bounded: an epoch set by this origin is at most one second ahead of its clock.
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms.min(2_000))).await;
        }
        Ok(())
    }

    fn issue(
        &self,
        user_id: &str,
        role: Role,
        session_id: &str,
        home_region: Option<&str>,
        secret: String,
        expires_at: u64,
    ) -> Result<Issued, SessionError> {
        let region = home_region.unwrap_or(&self.region);
        let (access_token, expires_in) = self
            .keys
            .issue(&self.auth, user_id, role, session_id, region)
            .map_err(SessionError::Issue)?;
        Ok(Issued {
            access_token,
            expires_in,
            refresh_token: format!("{session_id}.{secret}"),
            refresh_expires_in: expires_at.saturating_sub(now()),
        })
    }

    /// Exchanges a refresh token for a new access token and a new refresh token.
    pub async fn refresh(&self, token: &str) -> Result<Issued, SessionError> {
        let (id, secret) = token.split_once('.').ok_or(SessionError::Invalid)?;
        if id.len() > 64 || secret.len() > 128 {
            return Err(SessionError::Invalid);
        }
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT s.user_id, s.refresh_hash, s.previous_hash, s.expires_at, s.revoked_at,
                    s.rotated_at_ms, u.role, u.home_region
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = $1
               AND NOT EXISTS (SELECT 1 FROM suspensions x WHERE x.user_id = s.user_id)",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        let row = row.ok_or(SessionError::Invalid)?;
        if row.revoked_at.is_some() || row.expires_at as u64 <= now() {
            return Err(SessionError::Invalid);
        }
        let presented = hash(secret);
        let current = bool::from(presented.ct_eq(&row.refresh_hash));
        let replaced = row
            .previous_hash
            .as_ref()
            .is_some_and(|p| bool::from(presented.ct_eq(p)));
        let grace_ms = self.auth.refresh_reuse_grace_secs.saturating_mul(1000);
        let in_grace = row
            .rotated_at_ms
            .is_some_and(|at| now_ms() < (at as u64).saturating_add(grace_ms));
        if current || (replaced && in_grace) {
            let next = new_secret();
            // Compare-and-set: of two refreshes racing with the same token, one wins. A
            // rotation moves the current secret to `previous_hash` and starts the grace; an
            // exchange within the grace replaces only the lost secret, so the grace never
            // stretches and the replaced secret stays the one that revokes after it.
            let done = if current {
                sqlx::query(
                    "UPDATE sessions SET previous_hash = refresh_hash, refresh_hash = $1,
                            rotated_at_ms = $4
                     WHERE id = $2 AND refresh_hash = $3 AND revoked_at IS NULL",
                )
                .bind(hash(&next))
                .bind(id)
                .bind(&row.refresh_hash)
                .bind(now_ms() as i64)
                .execute(&self.db)
                .await?
            } else {
                tracing::info!(session = %id, "replaced refresh token presented within the grace; exchanged again");
                sqlx::query(
                    "UPDATE sessions SET refresh_hash = $1
                     WHERE id = $2 AND refresh_hash = $3 AND previous_hash = $4
                       AND revoked_at IS NULL",
                )
                .bind(hash(&next))
                .bind(id)
                .bind(&row.refresh_hash)
                .bind(&presented)
                .execute(&self.db)
                .await?
            };
            if done.rows_affected() != 1 {
                return Err(SessionError::Invalid);
            }
            let role = parse_enum(&row.role).map_err(SessionError::Issue)?;
            let region = row.home_region.as_deref();
            return self.issue(&row.user_id, role, id, region, next, row.expires_at as u64);
        }
        if replaced {
            tracing::warn!(session = %id, user = %row.user_id, "refresh token reused; revoking the session");
            let mut tx = crate::db::begin_write(&self.db).await?;
            self.revoke_session(&mut tx, id).await?;
            tx.commit().await?;
            self.outbox.wake();
            return Err(SessionError::Reused);
        }
        Err(SessionError::Invalid)
    }

    /// Ends the session `session_id` (if any) and, with `everywhere`, every session of `user_id`,
    /// in one transaction; the edge is told.
    pub async fn logout(
        &self,
        user_id: &str,
        session_id: Option<&str>,
        everywhere: bool,
    ) -> Result<(), SessionError> {
        let mut tx = crate::db::begin_write(&self.db).await?;
        if let Some(jti) = session_id {
            self.revoke_session(&mut tx, jti).await?;
        }
        if everywhere {
            revoke_user(&mut tx, user_id).await?;
        }
        tx.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Revokes one session: its refresh token stops working and its access tokens are refused
    /// at the edge once the record arrives. Call inside a transaction, then wake the outbox.
    async fn revoke_session(&self, tx: &mut WriteTx, session_id: &str) -> sqlx::Result<()> {
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
            expires_at: t + self.auth.access_ttl_secs + 60,
            version: 1,
        };
        outbox::enqueue(tx, &record).await
    }
}

/// Logs a user out everywhere: every session revoked and every access token issued so far
/// refused (the user's "not before" epoch). Used by logout-everywhere, by an admin's revoke,
/// and after a role change. Call inside a transaction, then wake the outbox.
pub async fn revoke_user(tx: &mut WriteTx, user_id: &str) -> sqlx::Result<bool> {
    let t = now();
    // The next second: a token issued in this one may predate the revocation.
    let epoch = t + 1;
    let row: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET not_before = $1, version = version + 1 WHERE id = $2 RETURNING version",
    )
    .bind(epoch as i64)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(version) = row else {
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
