//! JSON Web Keys: the verifying keys the edge trusts, by `kid`.

use std::collections::BTreeMap;

use jwt_compact::alg::Hs256Key;
use jwt_compact::jwk::JsonWebKey;
use serde::Deserialize;
use thiserror::Error;

use crate::jwt::Alg;

/// A verifying key, tagged with the one algorithm it may be used with. The algorithm of a token
/// is decided by the key its `kid` names, never by the token's own header.
///
/// With the `native-verify` feature (the default) the asymmetric keys are parsed for Rust's own
/// verifiers (ed25519-dalek, p256). Without it (the Workers build, where the runtime's WebCrypto
/// checks signatures) they are kept as their public bytes, checked for length, curve and, for
/// Ed25519, small order; [`VerifyingKey::public_key`] gives those bytes either way.
#[derive(Clone)]
#[non_exhaustive]
pub enum VerifyingKey {
    /// EdDSA over Ed25519 (RFC 8037).
    #[cfg(feature = "native-verify")]
    Ed25519(ed25519_dalek::VerifyingKey),
    /// EdDSA over Ed25519 (RFC 8037): the 32-byte public key.
    #[cfg(not(feature = "native-verify"))]
    Ed25519([u8; 32]),
    /// ECDSA P-256 with SHA-256, signatures in the JWS `r‖s` form.
    #[cfg(feature = "native-verify")]
    Es256(p256::ecdsa::VerifyingKey),
    /// ECDSA P-256 with SHA-256: the uncompressed point (`0x04 ‖ x ‖ y`).
    #[cfg(not(feature = "native-verify"))]
    Es256([u8; 65]),
    /// HMAC-SHA256; a shared secret, accepted only where configuration allows HS256.
    Hs256(Hs256Key),
}

/// The public bytes of an asymmetric key, in the forms WebCrypto's `importKey("raw", ..)` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// Ed25519: the 32-byte encoding of RFC 8032.
    Ed25519([u8; 32]),
    /// P-256: the uncompressed SEC1 point, `0x04 ‖ x ‖ y`.
    P256([u8; 65]),
}

impl PublicKey {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Ed25519(b) => b,
            Self::P256(b) => b,
        }
    }

    /// The algorithm the key verifies.
    pub fn alg(&self) -> Alg {
        match self {
            Self::Ed25519(_) => Alg::EdDsa,
            Self::P256(_) => Alg::Es256,
        }
    }
}

/// The encodings of Ed25519 points of small order (orders 1, 2, 4 and 8), which a key must not
/// be: a signature under such a key can be valid for any message. This is libsodium's blocklist
/// (`ge25519_has_small_order` in `crypto_core/ed25519/ref10/ed25519_ref10.c`), also listed in
/// Chalkias, Garillot and Nikolaenko, "Taming the many EdDSAs" (2020): the canonical encodings
/// of y = 0, 1, p−1 and the two order-8 y values, and the non-canonical y = p, p+1. Compared with
/// the sign bit (bit 255) cleared, so each entry also stands for its other sign: 14 encodings in
/// all. A unit test checks every one against ed25519-dalek's `is_weak`.
const ED25519_SMALL_ORDER: [[u8; 32]; 7] = [
    // y = 0 (order 4)
    [0; 32],
    // y = 1 (the identity, order 1)
    little_endian(1, 0),
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    // y = p − 1 (order 2); p = 2^255 − 19 is 0xed, 0xff × 30, 0x7f little-endian
    p_plus(-1),
    // y = p, a non-canonical 0 (order 4)
    p_plus(0),
    // y = p + 1, a non-canonical 1 (order 1)
    p_plus(1),
];

/// The 32-byte little-endian encoding with `low` in the first byte and `fill` in the others
/// (the top byte's sign bit cleared).
const fn little_endian(low: u8, fill: u8) -> [u8; 32] {
    let mut b = [fill; 32];
    b[0] = low;
    b[31] &= 0x7f;
    b
}

/// p + `k` for a small `k`, encoded (p = 2^255 − 19).
const fn p_plus(k: i8) -> [u8; 32] {
    little_endian((0xed_i16 + k as i16) as u8, 0xff)
}

/// Whether `key` encodes an Ed25519 point of small order (either sign).
pub fn ed25519_small_order(key: &[u8; 32]) -> bool {
    ED25519_SMALL_ORDER
        .iter()
        .any(|bad| bad[..31] == key[..31] && bad[31] == key[31] & 0x7f)
}

fn key_err(e: impl core::fmt::Display) -> JwksError {
    JwksError::Key(e.to_string())
}

/// Reads an Ed25519 public JWK (`kty` OKP, `crv` Ed25519, a 32-byte `x`), refusing a key of
/// small order.
fn ed25519_public(jwk: &JsonWebKey<'_>) -> Result<[u8; 32], JwksError> {
    let JsonWebKey::KeyPair { curve, x, .. } = jwk else {
        return Err(key_err("not an OKP key"));
    };
    if curve != "Ed25519" {
        return Err(key_err(format_args!("crv {curve} is not Ed25519")));
    }
    let x: [u8; 32] = x
        .as_ref()
        .try_into()
        .map_err(|_| key_err(format_args!("x is {} bytes, not 32", x.len())))?;
    if ed25519_small_order(&x) {
        return Err(key_err("Ed25519 key of small order"));
    }
    Ok(x)
}

/// Reads a P-256 public JWK (`kty` EC, `crv` P-256, 32-byte `x` and `y`) as an uncompressed
/// point. Whether the point is on the curve is checked by whichever verifier imports it.
fn p256_public(jwk: &JsonWebKey<'_>) -> Result<[u8; 65], JwksError> {
    let JsonWebKey::EllipticCurve { curve, x, y, .. } = jwk else {
        return Err(key_err("not an EC key"));
    };
    if curve != "P-256" {
        return Err(key_err(format_args!("crv {curve} is not P-256")));
    }
    if x.len() != 32 || y.len() != 32 {
        return Err(key_err("P-256 coordinates must be 32 bytes"));
    }
    let mut point = [0u8; 65];
    point[0] = 4;
    point[1..33].copy_from_slice(x);
    point[33..].copy_from_slice(y);
    Ok(point)
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

    /// The public bytes of an asymmetric key, for a verifier outside Rust; `None` for HS256,
    /// whose secret never leaves Rust.
    pub fn public_key(&self) -> Option<PublicKey> {
        match self {
            #[cfg(feature = "native-verify")]
            Self::Ed25519(k) => Some(PublicKey::Ed25519(k.to_bytes())),
            #[cfg(not(feature = "native-verify"))]
            Self::Ed25519(k) => Some(PublicKey::Ed25519(*k)),
            #[cfg(feature = "native-verify")]
            Self::Es256(k) => k
                .to_encoded_point(false)
                .as_bytes()
                .try_into()
                .ok()
                .map(PublicKey::P256),
            #[cfg(not(feature = "native-verify"))]
            Self::Es256(k) => Some(PublicKey::P256(*k)),
            Self::Hs256(_) => None,
        }
    }

    /// Reads one JWK (without looking at its `kid` or `alg` members).
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, JwksError> {
        let parsed: JsonWebKey<'_> = serde_json::from_value(jwk.clone()).map_err(key_err)?;
        match &parsed {
            JsonWebKey::KeyPair { .. } => {
                let x = ed25519_public(&parsed)?;
                #[cfg(feature = "native-verify")]
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(key_err)?;
                #[cfg(not(feature = "native-verify"))]
                let key = x;
                Ok(Self::Ed25519(key))
            }
            JsonWebKey::EllipticCurve { .. } => {
                let point = p256_public(&parsed)?;
                #[cfg(feature = "native-verify")]
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(key_err)?;
                #[cfg(not(feature = "native-verify"))]
                let key = point;
                Ok(Self::Es256(key))
            }
            JsonWebKey::Symmetric { .. } => Hs256Key::try_from(&parsed)
                .map(Self::Hs256)
                .map_err(key_err),
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

    /// The key named by `kid` with the set's own copy of the name.
    pub fn get_key_value(&self, kid: &str) -> Option<(&str, &VerifyingKey)> {
        self.keys.get_key_value(kid).map(|(k, v)| (k.as_str(), v))
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    /// Every entry of the list, in both signs.
    fn small_order_encodings() -> Vec<[u8; 32]> {
        ED25519_SMALL_ORDER
            .iter()
            .flat_map(|e| {
                let mut neg = *e;
                neg[31] |= 0x80;
                [*e, neg]
            })
            .collect()
    }

    #[test]
    fn small_order_ed25519_keys_are_refused_when_read() {
        for enc in small_order_encodings() {
            assert!(ed25519_small_order(&enc));
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&enc)});
            assert!(VerifyingKey::from_jwk(&jwk).is_err(), "{enc:02x?} accepted");
        }
        // The RFC 8037 example key is fine.
        let good = json!({"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let key = VerifyingKey::from_jwk(&good).unwrap();
        assert_eq!(key.alg(), Alg::EdDsa);
        assert!(matches!(key.public_key(), Some(PublicKey::Ed25519(_))));
    }

    /// The list is right: every entry that decodes to a point is of small order by
    /// ed25519-dalek's own test, and the eight points of order dividing 8 are all on it.
    #[cfg(feature = "native-verify")]
    #[test]
    fn the_small_order_list_is_what_dalek_calls_weak() {
        let mut decoded = 0;
        for enc in small_order_encodings() {
            if let Ok(k) = ed25519_dalek::VerifyingKey::from_bytes(&enc) {
                decoded += 1;
                assert!(k.is_weak(), "{enc:02x?} is not of small order");
            }
        }
        assert!(decoded >= 8, "only {decoded} entries decode");
        // A key from a real seed is not on the list.
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        assert!(!ed25519_small_order(sk.verifying_key().as_bytes()));
    }

    #[test]
    fn malformed_jwks_are_refused() {
        let x32 = b64(&[9u8; 32]);
        let bad = [
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[9u8; 31])}),
            json!({"kty": "OKP", "crv": "Ed448", "x": x32}),
            json!({"kty": "OKP", "crv": "X25519", "x": x32}),
            json!({"kty": "EC", "crv": "P-384", "x": x32, "y": x32}),
            json!({"kty": "EC", "crv": "P-256", "x": x32, "y": b64(&[9u8; 33])}),
            json!({"kty": "EC", "crv": "P-256", "x": x32}),
            json!({"kty": "RSA", "n": x32, "e": "AQAB"}),
            json!({"kty": "OKP", "crv": "Ed25519"}),
        ];
        for jwk in bad {
            assert!(VerifyingKey::from_jwk(&jwk).is_err(), "{jwk} accepted");
        }
        // An `alg` member that disagrees with the key type refuses the set.
        let doc = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a", "alg": "ES256",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        assert!(KeySet::from_jwks(doc.to_string().as_bytes(), &[Alg::EdDsa, Alg::Es256]).is_err());
    }

    #[test]
    fn p256_keys_keep_their_uncompressed_point() {
        // RFC 7515 A.3's key.
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        let Some(PublicKey::P256(point)) = key.public_key() else {
            panic!("not a P-256 key");
        };
        assert_eq!(point[0], 4);
        assert_eq!(
            b64(&point[1..33]),
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
        );
        assert_eq!(
            b64(&point[33..]),
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        );
    }
}
