//! The authenticated caller of an API route: the bearer token checked with the origin's own
//! keys and the same policy as the edge, then against the database (user epoch, revoked
//! session). The edge has checked it already; this is the second line, for requests that
//! reach the origin by another path.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use shared_wasm::jwt::{self, AccessClaims, Role};
use shared_wasm::UnixTime;

use crate::clock::now;
use crate::error::ApiError;
use crate::startup::AppState;

/// A verified, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Caller(pub AccessClaims);

const REQUIRED: ApiError = ApiError::Unauthorized {
    code: "unauthorized",
    message: "a valid access token is required",
};

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(REQUIRED)?;
        let claims = jwt::verify(
            &state.jwt_policy,
            &state.jwt_keys,
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
        .fetch_optional(&state.db)
        .await?;
        let revoked = match row {
            None => true,
            Some((not_before, session_revoked)) => {
                session_revoked.is_some()
                    || (not_before > 0 && claims.iat.is_none_or(|t| (t as i64) < not_before))
            }
        };
        if revoked {
            return Err(ApiError::Unauthorized {
                code: "unauthorized",
                message: "token revoked",
            });
        }
        Ok(Self(claims))
    }
}

/// `Option<Caller>`: `None` for a request without credentials (an anonymous reader); a request
/// that carries a token must carry a good one, so a broken client hears about it rather than
/// silently reading as anonymous.
impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if !parts.headers.contains_key("authorization") {
            return Ok(None);
        }
        <Self as FromRequestParts<AppState>>::from_request_parts(parts, state)
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
            Err(ApiError::Forbidden {
                code: "role_required",
                message: "your role does not allow this",
            })
        }
    }
}
