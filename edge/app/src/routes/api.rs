//! JSON API routes the edge forwards to the origin after its own checks: the route's role, the
//! route class's quota, and a body size cap. The origin checks the token again (defence in
//! depth); the edge's check spares it the traffic and applies revocation at the edge.

use shared_wasm::jwt::Role;
use shared_wasm::ratelimit::Quota;

use crate::auth;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::limits;
use crate::origin::{self, Target};
use crate::platform::{Platform, Request, Response};

/// Largest request body the edge forwards (JSON writes such as login).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Who may call a forwarded route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (login, refresh): no token is read, and none is forwarded.
    Public,
    /// A valid, unrevoked token of at least this role.
    Role(Role),
}

/// Checks and forwards `req` to `path` at the origin.
pub async fn forward<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    path: &str,
    access: Access,
    quota: &Quota,
) -> Result<Response, EdgeError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(EdgeError::PayloadTooLarge);
    }
    // Anonymous calls go to the nearest region; a user's calls go to their home region (data
    // residency), whatever region is nearest.
    let claims = match access {
        Access::Public => None,
        Access::Role(role) => Some(auth::require(p, cfg, req, role).await?),
    };
    let user = claims.as_ref().map(|c| c.sub.as_str());
    let allowed = limits::enforce(p, quota, req, user).await?;
    let (target, authorization) = match &claims {
        None => (Target::Nearest(req), None),
        Some(c) => (
            Target::Home(c.region.as_deref()),
            req.header("authorization"),
        ),
    };
    let resp = origin::forward_json(p, cfg, target, req, path, authorization).await?;
    Ok(allowed.annotate(resp))
}

/// A path segment the edge will put into an origin path: an id, never `..`, `/` or `%`.
pub fn id_segment(s: &str) -> Result<&str, EdgeError> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s)
    } else {
        Err(EdgeError::BadRequest {
            code: "invalid_id",
            message: "ids are 1 to 64 letters, digits, '-' or '_'".into(),
        })
    }
}
