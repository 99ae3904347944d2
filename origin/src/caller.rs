//! The authenticated caller of an API route: the bearer token checked with the origin's own
//! keys and the same policy as the edge, then against the database (user epoch, revoked
//! session). The edge has checked it already; this is the second line, for requests that
//! reach the origin by another path.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use shared_wasm::jwk::KeySet;
use shared_wasm::jwt::{self, AccessClaims, JwtPolicy, Role};
use shared_wasm::UnixTime;
use sqlx::AnyPool;

use crate::clock::now;
use crate::error::ApiError;

/// What checking a caller takes: the origin's public keys, the edge's policy and the database
/// (for revocations).
#[derive(Clone)]
pub struct Verifier {
    /// Where users' epochs and sessions are.
    pub db: AnyPool,
    /// The public half of the origin's signing keys.
    pub keys: Arc<KeySet>,
    /// The same access-token policy the edge applies.
    pub policy: Arc<JwtPolicy>,
}

/// A verified, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Caller(pub AccessClaims);

const REQUIRED: ApiError =
    ApiError::unauthorized("unauthorized", "a valid access token is required");

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    Verifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let verifier = Verifier::from_ref(state);
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(REQUIRED)?;
        let claims = jwt::verify(
            &verifier.policy,
            &verifier.keys,
            token.trim(),
            UnixTime(now()),
        )
        .map_err(|_| REQUIRED)?;
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT u.not_before, s.revoked_at FROM users u
             LEFT JOIN sessions s ON s.id = $1 AND s.user_id = u.id WHERE u.id = $2",
        )
        .bind(claims.jti.as_deref().unwrap_or(""))
        .bind(&claims.sub)
        .fetch_optional(&verifier.db)
        .await?;
        let revoked = match row {
            None => true,
            Some((not_before, session_revoked)) => {
                session_revoked.is_some()
                    || (not_before > 0 && claims.iat.is_none_or(|t| (t as i64) < not_before))
            }
        };
        if revoked {
            return Err(ApiError::unauthorized("unauthorized", "token revoked"));
        }
        Ok(Self(claims))
    }
}

/// `Option<Caller>`: `None` for a request without credentials (an anonymous reader); a request
/// that carries a token must carry a good one, so a broken client hears about it rather than
/// silently reading as anonymous.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller
where
    Verifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        if !parts.headers.contains_key("authorization") {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

impl Caller {
    /// Refuses a caller below `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "role_required",
                "your role does not allow this",
            ))
        }
    }
}
