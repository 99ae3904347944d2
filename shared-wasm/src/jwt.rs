//! Access-token (JWT) verification policy.
//!
//! jwt-compact parses the compact form and provides the signature algorithms; this module decides
//! what is acceptable. The order matters: size cap, header policy (allow-listed `alg`, no `crit`,
//! a `kid` from the fixed key set whose algorithm the header must match), signature, and only
//! then the claims. Nothing about the claims is reported for a token whose signature fails.
//!
//! The three steps are separate so that the signature can be checked outside Rust:
//! [`check_header`] (the policy) yields a [`SignatureCheck`] (key, signing input, signature),
//! whoever holds a verifier checks it, and [`check_claims`] reads the claims. [`verify`] runs
//! all three with Rust's verifiers (feature `native-verify`, on by default); the Workers build
//! leaves that feature off and has the runtime's WebCrypto check EdDSA and ES256. HS256 is
//! always checked in Rust ([`verify_hmac`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
#[cfg(feature = "native-verify")]
use jwt_compact::alg::Es256;
use jwt_compact::alg::Hs256;
use jwt_compact::{Algorithm, AlgorithmSignature, UntrustedToken};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::jwk::{KeySet, VerifyingKey};
use crate::UnixTime;

/// A signature algorithm this deployment may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// Ed25519 (RFC 8037).
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA P-256 SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// HMAC-SHA256: off unless configured, because it needs the shared secret at the edge.
    #[serde(rename = "HS256")]
    Hs256,
}

impl Alg {
    /// The JOSE name, compared byte for byte (so `none`, `NONE` or `eddsa` never match).
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Hs256 => "HS256",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [Self::EdDsa, Self::Es256, Self::Hs256]
            .into_iter()
            .find(|a| a.name() == s)
    }
}

/// The role a user holds; routes require one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A viewer.
    User,
    /// May upload and manage a channel.
    Creator,
    /// May work the moderation queue (and do what a creator does), but not change roles.
    Moderator,
    /// May do anything, roles included.
    Admin,
}

/// What a deployment accepts.
#[derive(Debug, Clone)]
pub struct JwtPolicy {
    /// Allowed algorithms. Keys of other types are never used.
    pub algorithms: Vec<Alg>,
    /// Required `iss`.
    pub issuer: String,
    /// Required member of `aud`.
    pub audience: String,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_bytes: usize,
    /// Allowed clock skew for `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
}

impl JwtPolicy {
    /// EdDSA and ES256, 4 KiB tokens, 30 s of skew.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            algorithms: vec![Alg::EdDsa, Alg::Es256],
            issuer: issuer.into(),
            audience: audience.into(),
            max_token_bytes: 4096,
            leeway_secs: 30,
        }
    }
}

/// `aud` may be one string or an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// The claims of an access token. Deserialized with plain serde derive (no `flatten`), so a
/// repeated claim name is an error rather than a silent last-one-wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The user's role.
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: Audience,
    /// Expiry, required.
    pub exp: u64,
    /// Not before, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, optional; must not be in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Session id, for revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The user's home region: where the edge sends their writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Header members beyond the registered ones that the policy must see.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeaderExtras {
    /// RFC 7515 §4.1.11. We understand no extension, so any `crit` means refuse.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Why an access token was refused. [`JwtError::public_reason`] is what a client may see.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than the policy's cap.
    #[error("token too large")]
    TooLarge,
    /// Not a compact JWS, bad base64 or bad header JSON.
    #[error("token malformed")]
    Malformed,
    /// `alg` not in the allow-list (this includes `none` in any spelling).
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The header has `crit`.
    #[error("critical header extension not supported")]
    CriticalHeader,
    /// No `kid` in the header.
    #[error("missing kid")]
    MissingKid,
    /// `kid` is not in the key set.
    #[error("unknown kid")]
    UnknownKid,
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("algorithm does not match key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Claims are not the expected JSON object (or repeat a member).
    #[error("claims malformed")]
    MalformedClaims,
    /// No `exp`: every access token must expire.
    #[error("token has no expiry")]
    MissingExpiry,
    /// `exp` passed.
    #[error("token expired")]
    Expired,
    /// `nbf` ahead.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` ahead.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Wrong `iss`.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not include us.
    #[error("wrong audience")]
    WrongAudience,
}

impl JwtError {
    /// RFC 6750 wants one `invalid_token` error; the description may say a little more.
    /// Only expiry is worth telling apart: a client refreshes on it.
    pub fn public_reason(&self) -> &'static str {
        match self {
            Self::Expired => "token expired",
            _ => "token invalid",
        }
    }
}

type Parsed<'a> = UntrustedToken<'a, HeaderExtras>;

fn parse(token: &str) -> Result<Parsed<'_>, JwtError> {
    UntrustedToken::try_from(token).map_err(|_| JwtError::Malformed)
}

fn check<A: Algorithm>(alg: &A, key: &A::VerifyingKey, message: &[u8], sig: &[u8]) -> bool {
    if let Some(len) = A::Signature::LENGTH {
        if sig.len() != len.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(sig) {
        Ok(s) => alg.verify_signature(&s, key, message),
        Err(_) => false,
    }
}

/// HS256 in Rust, whatever the build: does `signature` (the MAC) verify `message` under `key`?
/// False for a key of any other algorithm.
pub fn verify_hmac(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    match key {
        VerifyingKey::Hs256(k) => check(&Hs256, k, message, signature),
        _ => false,
    }
}

/// The primitive under the signature layer: does `signature` (JWS encoding: 64 bytes for
/// Ed25519, `r‖s` for ES256, the MAC for HS256) verify `message` under `key`?
///
/// Ed25519 uses ed25519-dalek's `verify_strict`, which also refuses small-order keys and
/// non-canonical points that plain `verify` accepts; a token must have exactly one valid
/// signature under exactly one key.
#[cfg(feature = "native-verify")]
pub fn verify_raw(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    match key {
        VerifyingKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
            .map(|s| k.verify_strict(message, &s).is_ok())
            .unwrap_or(false),
        VerifyingKey::Es256(k) => check(&Es256, k, message, signature),
        VerifyingKey::Hs256(_) => verify_hmac(key, message, signature),
    }
}

/// The signature layer alone: `token` must be a compact JWS whose header `alg` is exactly the
/// algorithm of `key` and whose signature verifies over `header.payload`. The payload is not
/// interpreted (the Wycheproof JWS vectors carry bare strings there).
#[cfg(feature = "native-verify")]
pub fn verify_signature(token: &str, key: &VerifyingKey) -> Result<(), JwtError> {
    let parsed = parse(token)?;
    verify_parsed_signature(token, &parsed, key)
}

#[cfg(feature = "native-verify")]
fn verify_parsed_signature(
    token: &str,
    parsed: &Parsed<'_>,
    key: &VerifyingKey,
) -> Result<(), JwtError> {
    let check = signature_check(token, parsed, key)?;
    if verify_raw(check.key, check.message, &check.signature) {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    }
}

/// What the policy step leaves to a verifier: the signature of `message` under `key`. The
/// header has passed the policy; the claims are unread until the signature is accepted.
#[derive(Debug, Clone)]
pub struct SignatureCheck<'t, 'k> {
    /// The `kid` the header names (empty from [`verify_signature`], which is given the key).
    pub kid: &'k str,
    /// The key that `kid` names, whose algorithm the header's `alg` matches.
    pub key: &'k VerifyingKey,
    /// The JWS signing input, `header.payload` (ASCII).
    pub message: &'t [u8],
    /// The decoded signature (64 bytes for EdDSA, `r‖s` for ES256, the MAC for HS256).
    pub signature: Vec<u8>,
}

fn signature_check<'t, 'k>(
    token: &'t str,
    parsed: &Parsed<'_>,
    key: &'k VerifyingKey,
) -> Result<SignatureCheck<'t, 'k>, JwtError> {
    if parsed.algorithm() != key.alg().name() {
        return Err(JwtError::AlgorithmMismatch);
    }
    let Some((signed, _)) = token.rsplit_once('.') else {
        return Err(JwtError::Malformed);
    };
    Ok(SignatureCheck {
        kid: "",
        key,
        message: signed.as_bytes(),
        signature: parsed.signature_bytes().to_vec(),
    })
}

/// The policy step: size cap, header (allow-listed `alg`, no `crit`, a `kid` in `keys` whose
/// algorithm is allowed and is the header's `alg`). `jku`, `x5u` and `jwk` are never followed:
/// keys come only from `keys`. Returns what a verifier must check; nothing of the claims is read.
pub fn check_header<'t, 'k>(
    policy: &JwtPolicy,
    keys: &'k KeySet,
    token: &'t str,
) -> Result<SignatureCheck<'t, 'k>, JwtError> {
    if token.len() > policy.max_token_bytes {
        return Err(JwtError::TooLarge);
    }
    let parsed = parse(token)?;
    let alg = Alg::from_name(parsed.algorithm()).ok_or(JwtError::AlgorithmNotAllowed)?;
    if !policy.algorithms.contains(&alg) {
        return Err(JwtError::AlgorithmNotAllowed);
    }
    if parsed.header().other_fields.crit.is_some() {
        return Err(JwtError::CriticalHeader);
    }
    let kid = parsed
        .header()
        .key_id
        .as_deref()
        .ok_or(JwtError::MissingKid)?;
    let (kid, key) = keys.get_key_value(kid).ok_or(JwtError::UnknownKid)?;
    if !policy.algorithms.contains(&key.alg()) {
        return Err(JwtError::AlgorithmNotAllowed);
    }
    let check = signature_check(token, &parsed, key)?;
    Ok(SignatureCheck { kid, ..check })
}

/// Verifies an access token against `policy` and `keys` at `now`, all in Rust: the policy
/// step, the signature, the claims.
#[cfg(feature = "native-verify")]
pub fn verify(
    policy: &JwtPolicy,
    keys: &KeySet,
    token: &str,
    now: UnixTime,
) -> Result<AccessClaims, JwtError> {
    let check = check_header(policy, keys, token)?;
    if !verify_raw(check.key, check.message, &check.signature) {
        return Err(JwtError::BadSignature);
    }
    check_claims(policy, token, now)
}

#[derive(Deserialize)]
struct TimeClaims {
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
}

/// The claims layer: times first (so an expired token says so whatever else it carries), then
/// the full typed claims, issuer and audience. Call it only on a token whose signature the
/// signature layer has accepted.
pub fn check_claims(
    policy: &JwtPolicy,
    token: &str,
    now: UnixTime,
) -> Result<AccessClaims, JwtError> {
    let payload = token.split('.').nth(1).ok_or(JwtError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Malformed)?;
    let times: TimeClaims =
        serde_json::from_slice(&bytes).map_err(|_| JwtError::MalformedClaims)?;
    let skew = policy.leeway_secs;
    let exp = times.exp.ok_or(JwtError::MissingExpiry)?;
    if now > UnixTime(exp).plus(skew) {
        return Err(JwtError::Expired);
    }
    if times.nbf.is_some_and(|nbf| now < UnixTime(nbf).minus(skew)) {
        return Err(JwtError::NotYetValid);
    }
    if times.iat.is_some_and(|iat| now < UnixTime(iat).minus(skew)) {
        return Err(JwtError::IssuedInFuture);
    }
    let claims: AccessClaims =
        serde_json::from_slice(&bytes).map_err(|_| JwtError::MalformedClaims)?;
    if claims.iss != policy.issuer {
        return Err(JwtError::WrongIssuer);
    }
    if !claims.aud.contains(&policy.audience) {
        return Err(JwtError::WrongAudience);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    const SECRET: &[u8] = b"a shared secret of thirty-two by";

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn hs_keys() -> KeySet {
        let jwks = format!(
            r#"{{"keys":[{{"kty":"oct","kid":"hs-1","k":"{}"}}]}}"#,
            b64(SECRET)
        );
        KeySet::from_jwks(jwks.as_bytes(), &[Alg::Hs256]).unwrap()
    }

    fn policy() -> JwtPolicy {
        let mut p = JwtPolicy::new("origin", "edge");
        p.algorithms = vec![Alg::EdDsa, Alg::Hs256];
        p
    }

    fn hs_token(header: &str) -> String {
        let claims = r#"{"sub":"u_1","role":"user","iss":"origin","aud":"edge","exp":2000000000}"#;
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    }

    #[test]
    fn policy_step_hands_over_key_signing_input_and_signature() {
        let keys = hs_keys();
        let token = hs_token(r#"{"alg":"HS256","kid":"hs-1"}"#);
        let check = check_header(&policy(), &keys, &token).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        assert_eq!(check.kid, "hs-1");
        assert_eq!(check.key.alg(), Alg::Hs256);
        assert_eq!(check.message, input.as_bytes());
        assert_eq!(check.signature, URL_SAFE_NO_PAD.decode(sig).unwrap());
        assert!(
            check.key.public_key().is_none(),
            "a secret never leaves Rust"
        );
        assert!(verify_hmac(check.key, check.message, &check.signature));
        assert!(!verify_hmac(check.key, b"other.input", &check.signature));
        let claims = check_claims(&policy(), &token, UnixTime(1_900_000_000)).unwrap();
        assert_eq!(claims.sub, "u_1");
    }

    #[test]
    fn policy_step_refuses_before_any_signature_is_checked() {
        let keys = hs_keys();
        let p = policy();
        let refused = |header: &str| check_header(&p, &keys, &hs_token(header)).unwrap_err();
        // The header claims EdDSA (allowed) but the kid names an HS256 key.
        assert_eq!(
            refused(r#"{"alg":"EdDSA","kid":"hs-1"}"#),
            JwtError::AlgorithmMismatch
        );
        assert_eq!(
            refused(r#"{"alg":"ES256","kid":"hs-1"}"#),
            JwtError::AlgorithmNotAllowed
        );
        assert_eq!(
            refused(r#"{"alg":"none","kid":"hs-1"}"#),
            JwtError::AlgorithmNotAllowed
        );
        assert_eq!(
            refused(r#"{"alg":"HS256","kid":"hs-1","crit":["exp"]}"#),
            JwtError::CriticalHeader
        );
        assert_eq!(refused(r#"{"alg":"HS256"}"#), JwtError::MissingKid);
        assert_eq!(
            refused(r#"{"alg":"HS256","kid":"hs-2"}"#),
            JwtError::UnknownKid
        );
        let mut small = policy();
        small.max_token_bytes = 10;
        assert_eq!(
            check_header(&small, &keys, &hs_token(r#"{"alg":"HS256","kid":"hs-1"}"#)).unwrap_err(),
            JwtError::TooLarge
        );
        assert_eq!(
            check_header(&p, &keys, "not.a-token").unwrap_err(),
            JwtError::Malformed
        );
    }

    /// The identity key with the signature (R = identity, S = 0) satisfies the plain Ed25519
    /// equation for every message; workerd's WebCrypto accepts it (bench/workerd-webcrypto).
    /// Rust refuses it twice: when reading the key, and in `verify_strict`.
    #[test]
    fn the_identity_key_forgery_is_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let jwk = format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
            b64(&identity)
        );
        let jwk: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
        #[cfg(feature = "native-verify")]
        {
            let key =
                VerifyingKey::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap());
            let mut sig = [0u8; 64];
            sig[0] = 1;
            assert!(!verify_raw(&key, b"any message", &sig));
        }
    }

    #[cfg(feature = "native-verify")]
    #[test]
    fn the_split_steps_agree_with_verify() {
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"ed-1","x":"{}"}}]}}"#,
            b64(sk.verifying_key().as_bytes())
        );
        let keys = KeySet::from_jwks(jwks.as_bytes(), &[Alg::EdDsa]).unwrap();
        let claims = r#"{"sub":"u_1","role":"user","iss":"origin","aud":"edge","exp":2000000000}"#;
        let input = format!(
            "{}.{}",
            b64(br#"{"alg":"EdDSA","kid":"ed-1"}"#),
            b64(claims.as_bytes())
        );
        let token = format!("{input}.{}", b64(&sk.sign(input.as_bytes()).to_bytes()));
        let now = UnixTime(1_900_000_000);

        let check = check_header(&policy(), &keys, &token).unwrap();
        assert_eq!(
            check.key.public_key(),
            Some(crate::jwk::PublicKey::Ed25519(
                sk.verifying_key().to_bytes()
            ))
        );
        assert!(verify_raw(check.key, check.message, &check.signature));
        assert_eq!(
            check_claims(&policy(), &token, now),
            verify(&policy(), &keys, &token, now)
        );

        let mut forged = check.signature.clone();
        forged[0] ^= 1;
        assert!(!verify_raw(check.key, check.message, &forged));
    }
}
