//! Bearer access tokens at the edge: JWKS from the origin, cached in KV, the shared policy,
//! revocation records pushed by the origin, and per-route roles.

use shared_wasm::jwk::KeySet;
use shared_wasm::jwt::{self, AccessClaims, JwtError, Role};
use shared_wasm::record::{JwksRecord, RevokedSession, UserRecord};

use crate::config::EdgeConfig;
use crate::error::{AccessRefusal, EdgeError};
use crate::origin;
use crate::platform::{Platform, Request};

const JWKS_KEY: &str = "jwks";

async fn fetch_jwks<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<JwksRecord, EdgeError> {
    let resp = origin::get(p, cfg, req, "/.well-known/jwks.json").await?;
    if resp.status != 200 {
        return Err(EdgeError::Upstream(format!(
            "jwks answered {}",
            resp.status
        )));
    }
    let json = String::from_utf8(resp.body)
        .map_err(|_| EdgeError::Upstream("jwks is not UTF-8".into()))?;
    let rec = JwksRecord::new(p.now(), json);
    p.kv_put(JWKS_KEY, &rec.to_cbor(), Some(cfg.jwks_ttl_secs.max(60)))
        .await?;
    Ok(rec)
}

async fn cached_jwks<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<JwksRecord, EdgeError> {
    if let Some(bytes) = p.kv_get(JWKS_KEY).await? {
        if let Ok(rec) = JwksRecord::from_cbor(&bytes) {
            if p.now().0 < rec.fetched_at.saturating_add(cfg.jwks_ttl_secs) {
                return Ok(rec);
            }
        }
    }
    fetch_jwks(p, cfg, req).await
}

fn keyset(cfg: &EdgeConfig, rec: &JwksRecord) -> Result<KeySet, EdgeError> {
    KeySet::from_jwks(rec.jwks.as_bytes(), &cfg.jwt.algorithms)
        .map_err(|e| EdgeError::Upstream(format!("origin JWKS unusable: {e}")))
}

fn unauthorized(e: JwtError) -> EdgeError {
    EdgeError::Unauthorized(AccessRefusal::Token(e))
}

/// The verified claims of the request's bearer token; `None` when it carries no credentials.
pub async fn bearer<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Option<AccessClaims>, EdgeError> {
    let Some(value) = req.header("authorization") else {
        return Ok(None);
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(EdgeError::Unauthorized(AccessRefusal::NotBearer))?;
    // `jwt::verify` checks this too; checking here spares an oversized token the KV read and
    // the possible JWKS fetch below.
    if token.len() > cfg.jwt.max_token_bytes {
        return Err(unauthorized(JwtError::TooLarge));
    }
    let rec = cached_jwks(p, cfg, req).await?;
    let claims = match jwt::verify(&cfg.jwt, &keyset(cfg, &rec)?, token, p.now()) {
        Ok(claims) => claims,
        Err(JwtError::UnknownKid)
            if p.now().0 >= rec.fetched_at.saturating_add(cfg.jwks_min_refresh_secs) =>
        {
            let fresh = fetch_jwks(p, cfg, req).await?;
            jwt::verify(&cfg.jwt, &keyset(cfg, &fresh)?, token, p.now()).map_err(unauthorized)?
        }
        Err(e) => return Err(unauthorized(e)),
    };
    check_revocation(p, &claims).await?;
    Ok(Some(claims))
}

/// Refuses a token whose user has a later "not before" epoch or whose session is revoked.
/// Both records arrive through the origin's sync; an unreadable record counts as a refusal
/// (failing closed), since it can only come from a broken write.
async fn check_revocation<P: Platform>(p: &P, claims: &AccessClaims) -> Result<(), EdgeError> {
    const REVOKED: EdgeError = EdgeError::Unauthorized(AccessRefusal::Revoked);
    if let Some(bytes) = p.kv_get(&UserRecord::key(&claims.sub)).await? {
        let user = UserRecord::from_cbor(&bytes).map_err(|_| REVOKED)?;
        if !user.admits(claims.iat) {
            return Err(REVOKED);
        }
    }
    if let Some(jti) = &claims.jti {
        if p.kv_get(&RevokedSession::key(jti)).await?.is_some() {
            return Err(REVOKED);
        }
    }
    Ok(())
}

/// The claims of a request that must carry a token of at least `role` (admin ⊇ creator ⊇ user).
pub async fn require<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    role: Role,
) -> Result<AccessClaims, EdgeError> {
    let claims = bearer(p, cfg, req)
        .await?
        .ok_or(EdgeError::Unauthorized(AccessRefusal::Missing))?;
    if claims.role < role {
        return Err(EdgeError::RoleRequired(role));
    }
    Ok(claims)
}
