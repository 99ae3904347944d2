//! Bearer access tokens at the edge: JWKS from the origin, cached in KV, the shared policy,
//! revocation records pushed by the origin, and per-route roles.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::{join, OptionFuture};
use shared_wasm::jwk::KeySet;
use shared_wasm::jwt::{self, AccessClaims, Alg, JwtError, Role};
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
    let ttl = cfg.access()?.jwks_ttl_secs.max(60);
    p.kv_put(JWKS_KEY, &rec.to_cbor(), Some(ttl)).await?;
    Ok(rec)
}

async fn cached_jwks<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<JwksRecord, EdgeError> {
    if let Some(bytes) = p.kv_get(JWKS_KEY).await? {
        if let Ok(rec) = JwksRecord::from_cbor(&bytes) {
            if p.now().0 < rec.fetched_at.saturating_add(cfg.access()?.jwks_ttl_secs) {
                return Ok(rec);
            }
        }
    }
    fetch_jwks(p, cfg, req).await
}

/// The last key set parsed here, with the JWKS text and algorithms it was parsed from.
type Parsed = (String, Vec<Alg>, Rc<KeySet>);

thread_local! {
    /// Where an instance serves many requests (a Worker's isolate), the JWKS read from KV is the
    /// same text for minutes: its keys are parsed (base64, curve points) once, not per request.
    /// KV is still read every time, so a rotation is seen as soon as the record changes.
    static PARSED: RefCell<Option<Parsed>> = const { RefCell::new(None) };
}

fn keyset(cfg: &EdgeConfig, rec: &JwksRecord) -> Result<Rc<KeySet>, EdgeError> {
    let algorithms = &cfg.access()?.policy.algorithms;
    let hit = PARSED.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(jwks, algs, _)| *jwks == rec.jwks && algs == algorithms)
            .map(|(_, _, keys)| keys.clone())
    });
    if let Some(keys) = hit {
        return Ok(keys);
    }
    let keys = KeySet::from_jwks(rec.jwks.as_bytes(), algorithms)
        .map(Rc::new)
        .map_err(|e| EdgeError::Upstream(format!("origin JWKS unusable: {e}")))?;
    PARSED.with(|p| *p.borrow_mut() = Some((rec.jwks.clone(), algorithms.clone(), keys.clone())));
    Ok(keys)
}

/// The shared policy's three steps: the header against the policy and the key set (in Rust),
/// the signature (EdDSA and ES256 by the platform's verifier, HS256 in Rust), the claims (in
/// Rust). The outer error is the platform's; the inner one is the token's refusal.
async fn verify<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    keys: &KeySet,
    token: &str,
) -> Result<Result<AccessClaims, JwtError>, EdgeError> {
    let policy = &cfg.access()?.policy;
    let check = match jwt::check_header(policy, keys, token) {
        Ok(check) => check,
        Err(e) => return Ok(Err(e)),
    };
    let valid = match check.key.alg() {
        Alg::Hs256 => jwt::verify_hmac(check.key, check.message, &check.signature),
        Alg::EdDsa | Alg::Es256 => {
            p.verify_signature(check.kid, check.key, check.message, &check.signature)
                .await?
        }
    };
    if !valid {
        return Ok(Err(JwtError::BadSignature));
    }
    Ok(jwt::check_claims(policy, token, p.now()))
}

fn unauthorized(e: JwtError) -> EdgeError {
    EdgeError::Unauthorized(AccessRefusal::Token(e))
}

/// The request's bearer token, unverified; `None` when it carries no credentials. Refuses, with
/// no I/O, a header that is not a bearer token or a token over the size cap (`jwt::check_header`
/// checks the size too; checking here spares an oversized token every read).
pub fn presented<'r>(cfg: &EdgeConfig, req: &'r Request) -> Result<Option<&'r str>, EdgeError> {
    let Some(value) = req.header("authorization") else {
        return Ok(None);
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(EdgeError::Unauthorized(AccessRefusal::NotBearer))?;
    if token.len() > cfg.access()?.policy.max_token_bytes {
        return Err(unauthorized(JwtError::TooLarge));
    }
    Ok(Some(token))
}

/// The verified claims of the request's bearer token; `None` when it carries no credentials.
pub async fn bearer<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Option<AccessClaims>, EdgeError> {
    verified(p, cfg, req, presented(cfg, req)?).await
}

/// The verified claims of `token`, the request's token as [`presented`] found it.
pub async fn verified<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    token: Option<&str>,
) -> Result<Option<AccessClaims>, EdgeError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let rec = cached_jwks(p, cfg, req).await?;
    let refresh_after = rec
        .fetched_at
        .saturating_add(cfg.access()?.jwks_min_refresh_secs);
    let claims = match verify(p, cfg, &*keyset(cfg, &rec)?, token).await? {
        Ok(claims) => claims,
        Err(JwtError::UnknownKid) if p.now().0 >= refresh_after => {
            let fresh = fetch_jwks(p, cfg, req).await?;
            verify(p, cfg, &*keyset(cfg, &fresh)?, token)
                .await?
                .map_err(unauthorized)?
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
    // Both reads at once: one key-value round trip per signed-in request instead of two.
    let session = claims.jti.as_deref().map(RevokedSession::key);
    let (user, revoked_session) = join(
        p.kv_get(&UserRecord::key(&claims.sub)),
        OptionFuture::from(session.as_deref().map(|key| p.kv_get(key))),
    )
    .await;
    if let Some(bytes) = user? {
        let user = UserRecord::from_cbor(&bytes).map_err(|_| REVOKED)?;
        if !user.admits(claims.iat) {
            return Err(REVOKED);
        }
    }
    if revoked_session.transpose()?.flatten().is_some() {
        return Err(REVOKED);
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

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;
    use crate::testing::{access_token, block_on, config, jwks_response, MemPlatform};

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    /// An origin whose JWKS holds the Ed25519 key `ed-1`.
    fn platform() -> MemPlatform {
        MemPlatform::new(move |_, req| {
            assert!(req.url.ends_with("/.well-known/jwks.json"), "{}", req.url);
            jwks_response()
        })
    }

    fn token(header: &str) -> String {
        access_token(header, "u_1")
    }

    fn bearer_of(p: &MemPlatform, token: &str) -> Result<Option<AccessClaims>, EdgeError> {
        let req = Request {
            method: "GET".into(),
            url: "http://edge.test/v1/me".into(),
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            ..Request::default()
        };
        block_on(bearer(p, &config(), &req))
    }

    fn refusal(r: Result<Option<AccessClaims>, EdgeError>) -> JwtError {
        match r {
            Err(EdgeError::Unauthorized(AccessRefusal::Token(e))) => e,
            other => panic!("not a token refusal: {other:?}"),
        }
    }

    #[test]
    fn the_platform_checks_the_signature_between_policy_and_claims() {
        let p = platform();
        let claims = bearer_of(&p, &token(r#"{"alg":"EdDSA","kid":"ed-1"}"#))
            .unwrap()
            .unwrap();
        assert_eq!(claims.sub, "u_1");
        assert_eq!(p.signature_checks.get(), 1);
    }

    #[test]
    fn a_bad_signature_is_refused_by_the_platforms_answer() {
        let p = platform();
        let good = token(r#"{"alg":"EdDSA","kid":"ed-1"}"#);
        let (input, _) = good.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", b64(&[1u8; 64]));
        assert_eq!(refusal(bearer_of(&p, &forged)), JwtError::BadSignature);
        assert_eq!(p.signature_checks.get(), 1);
    }

    #[test]
    fn a_parsed_key_set_is_kept_and_a_key_changed_in_kv_is_used_at_once() {
        let p = platform();
        let good = token(r#"{"alg":"EdDSA","kid":"ed-1"}"#);
        assert!(bearer_of(&p, &good).unwrap().is_some());
        let rec = JwksRecord::from_cbor(&p.kv.borrow()[JWKS_KEY]).unwrap();
        let (a, b) = (
            keyset(&config(), &rec).unwrap(),
            keyset(&config(), &rec).unwrap(),
        );
        assert!(Rc::ptr_eq(&a, &b), "the same text is parsed once");
        // The origin rotated `ed-1` to another key and the edge's record says so: the token
        // signed with the old one no longer passes, though the old key set was parsed here.
        let other = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]).verifying_key();
        let other = b64(other.as_bytes());
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"ed-1","x":"{other}"}}]}}"#
        );
        let rec = JwksRecord::new(p.now(), jwks);
        block_on(p.kv_put(JWKS_KEY, &rec.to_cbor(), None)).unwrap();
        assert_eq!(refusal(bearer_of(&p, &good)), JwtError::BadSignature);
    }

    #[test]
    fn the_policy_refuses_before_the_platform_is_asked() {
        let p = platform();
        // The kid names an EdDSA key; a header claiming ES256 (allowed) does not match it.
        assert_eq!(
            refusal(bearer_of(&p, &token(r#"{"alg":"ES256","kid":"ed-1"}"#))),
            JwtError::AlgorithmMismatch
        );
        assert_eq!(
            refusal(bearer_of(&p, &token(r#"{"alg":"HS256","kid":"ed-1"}"#))),
            JwtError::AlgorithmNotAllowed
        );
        assert_eq!(
            refusal(bearer_of(
                &p,
                &token(r#"{"alg":"EdDSA","kid":"ed-1","crit":["x"]}"#)
            )),
            JwtError::CriticalHeader
        );
        assert_eq!(p.signature_checks.get(), 0);
    }
}
