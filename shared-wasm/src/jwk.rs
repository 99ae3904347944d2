//! JSON Web Keys: the verifying keys the edge trusts, by `kid`.

use std::collections::BTreeMap;

use jwt_compact::alg::Hs256Key;
use jwt_compact::jwk::JsonWebKey;
use serde::Deserialize;
use thiserror::Error;

use crate::jwt::Alg;

/// A verifying key, tagged with the one algorithm it may be used with. The algorithm of a token
/// is decided by the key its `kid` names, never by the token's own header.
#[derive(Clone)]
#[non_exhaustive]
pub enum VerifyingKey {
    /// EdDSA over Ed25519 (RFC 8037).
    Ed25519(ed25519_dalek::VerifyingKey),
    /// ECDSA P-256 with SHA-256, signatures in the JWS `r‖s` form.
    Es256(p256::ecdsa::VerifyingKey),
    /// HMAC-SHA256; a shared secret, accepted only where configuration allows HS256.
    Hs256(Hs256Key),
}

impl core::fmt::Debug for VerifyingKey {
    // An HS256 key is a secret: print only the algorithm.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VerifyingKey({})", self.alg().name())
    }
}

impl VerifyingKey {
    /// The only algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        match self {
            Self::Ed25519(_) => Alg::EdDsa,
            Self::Es256(_) => Alg::Es256,
            Self::Hs256(_) => Alg::Hs256,
        }
    }

    /// Reads one JWK (without looking at its `kid` or `alg` members).
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, JwksError> {
        let parsed: JsonWebKey<'_> =
            serde_json::from_value(jwk.clone()).map_err(|e| JwksError::Key(e.to_string()))?;
        match &parsed {
            JsonWebKey::KeyPair { .. } => ed25519_dalek::VerifyingKey::try_from(&parsed)
                .map(Self::Ed25519)
                .map_err(|e| JwksError::Key(e.to_string())),
            JsonWebKey::EllipticCurve { .. } => p256::ecdsa::VerifyingKey::try_from(&parsed)
                .map(Self::Es256)
                .map_err(|e| JwksError::Key(e.to_string())),
            JsonWebKey::Symmetric { .. } => Hs256Key::try_from(&parsed)
                .map(Self::Hs256)
                .map_err(|e| JwksError::Key(e.to_string())),
            _ => Err(JwksError::Key("unsupported key type".into())),
        }
    }
}

/// Why a key set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not a JWKS document (`{"keys": [...]}`).
    #[error("not a JWK set: {0}")]
    Document(String),
    /// A key member is malformed.
    #[error("bad key: {0}")]
    Key(String),
    /// A key without a `kid`: it could never be selected, so the set is refused.
    #[error("a key has no kid")]
    MissingKid,
}

/// The fixed set of verifying keys, looked up by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: BTreeMap<String, VerifyingKey>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// An empty set; add keys with [`KeySet::insert`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key for `kid`.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(kid.into(), key);
    }

    /// The key named by `kid`, if any.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads a JWKS document, keeping only keys whose algorithm is in `allowed`. A key whose
    /// `alg` member disagrees with its key type is refused: that mismatch is how algorithm
    /// confusion starts.
    pub fn from_jwks(json: &[u8], allowed: &[Alg]) -> Result<Self, JwksError> {
        let doc: Jwks =
            serde_json::from_slice(json).map_err(|e| JwksError::Document(e.to_string()))?;
        let mut set = Self::new();
        for jwk in &doc.keys {
            let kid = jwk
                .get("kid")
                .and_then(|k| k.as_str())
                .ok_or(JwksError::MissingKid)?;
            let key = VerifyingKey::from_jwk(jwk)?;
            if let Some(alg) = jwk.get("alg").and_then(|a| a.as_str()) {
                if alg != key.alg().name() {
                    return Err(JwksError::Key(format!("alg {alg} does not match key type")));
                }
            }
            if allowed.contains(&key.alg()) {
                set.insert(kid, key);
            }
        }
        Ok(set)
    }
}
