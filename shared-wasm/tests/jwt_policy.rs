//! The access-token policy against hand-built tokens: what must pass and every way to fail.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signer;
use serde_json::{json, Value};
use shared_wasm::jwk::{KeySet, VerifyingKey};
use shared_wasm::jwt::{self, Alg, JwtError, JwtPolicy, Role};
use shared_wasm::UnixTime;

const NOW: u64 = 1_800_000_000;
const KID: &str = "ed-1";

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn ed_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

/// Signs raw header and claims JSON text (so duplicates and odd spellings survive).
fn ed_token(header: &str, claims: &str, key: &ed25519_dalek::SigningKey) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&sig.to_bytes()))
}

fn claims(extra: Value) -> String {
    let mut c = json!({
        "sub": "u_1", "role": "creator", "iss": "origin", "aud": "edge",
        "exp": NOW + 600, "iat": NOW - 10,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c.to_string()
}

fn header() -> String {
    format!(r#"{{"alg":"EdDSA","kid":"{KID}","typ":"JWT"}}"#)
}

fn keys() -> KeySet {
    let mut k = KeySet::new();
    k.insert(KID, VerifyingKey::Ed25519(ed_key().verifying_key()));
    k
}

fn policy() -> JwtPolicy {
    JwtPolicy::new("origin", "edge")
}

fn check(token: &str) -> Result<jwt::AccessClaims, JwtError> {
    jwt::verify(&policy(), &keys(), token, UnixTime(NOW))
}

#[test]
fn valid_eddsa_token_passes() {
    let c = check(&ed_token(&header(), &claims(json!({})), &ed_key())).unwrap();
    assert_eq!(c.sub, "u_1");
    assert_eq!(c.role, Role::Creator);
}

#[test]
fn alg_none_in_any_spelling_is_refused() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = format!(r#"{{"alg":"{alg}","kid":"{KID}"}}"#);
        let t = format!(
            "{}.{}.",
            b64(h.as_bytes()),
            b64(claims(json!({})).as_bytes())
        );
        assert_eq!(check(&t), Err(JwtError::AlgorithmNotAllowed), "{alg}");
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    use hmac::{Hmac, Mac};
    let public = ed_key().verifying_key().to_bytes();
    let h = format!(r#"{{"alg":"HS256","kid":"{KID}"}}"#);
    let input = format!(
        "{}.{}",
        b64(h.as_bytes()),
        b64(claims(json!({})).as_bytes())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&public).unwrap();
    mac.update(input.as_bytes());
    let t = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
    assert_eq!(check(&t), Err(JwtError::AlgorithmNotAllowed));
    // Even where HS256 is allowed, the kid names an Ed25519 key: the key decides the algorithm.
    let mut p = policy();
    p.algorithms.push(Alg::Hs256);
    assert_eq!(
        jwt::verify(&p, &keys(), &t, UnixTime(NOW)),
        Err(JwtError::AlgorithmMismatch)
    );
}

#[test]
fn kid_must_name_a_known_key() {
    let unknown = r#"{"alg":"EdDSA","kid":"nope"}"#;
    assert_eq!(
        check(&ed_token(unknown, &claims(json!({})), &ed_key())),
        Err(JwtError::UnknownKid)
    );
    let missing = r#"{"alg":"EdDSA"}"#;
    assert_eq!(
        check(&ed_token(missing, &claims(json!({})), &ed_key())),
        Err(JwtError::MissingKid)
    );
}

#[test]
fn embedded_key_headers_are_ignored() {
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let x = b64(&attacker.verifying_key().to_bytes());
    let h = format!(
        r#"{{"alg":"EdDSA","kid":"{KID}","jwk":{{"kty":"OKP","crv":"Ed25519","x":"{x}"}},"jku":"http://127.0.0.1:1/jwks","x5u":"http://127.0.0.1:1/c"}}"#
    );
    assert_eq!(
        check(&ed_token(&h, &claims(json!({})), &attacker)),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn crit_header_is_refused() {
    let h = format!(r#"{{"alg":"EdDSA","kid":"{KID}","crit":["exp"]}}"#);
    assert_eq!(
        check(&ed_token(&h, &claims(json!({})), &ed_key())),
        Err(JwtError::CriticalHeader)
    );
}

#[test]
fn time_claims() {
    let t = |extra| ed_token(&header(), &claims(extra), &ed_key());
    assert_eq!(
        check(&t(json!({"exp": null}))),
        Err(JwtError::MissingExpiry)
    );
    assert_eq!(check(&t(json!({"exp": NOW - 31}))), Err(JwtError::Expired));
    assert!(check(&t(json!({"exp": NOW - 29}))).is_ok(), "30 s leeway");
    assert_eq!(
        check(&t(json!({"nbf": NOW + 60}))),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(
        check(&t(json!({"iat": NOW + 60}))),
        Err(JwtError::IssuedInFuture)
    );
}

#[test]
fn issuer_and_audience() {
    let t = |extra| ed_token(&header(), &claims(extra), &ed_key());
    assert_eq!(
        check(&t(json!({"iss": "evil"}))),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        check(&t(json!({"aud": "other"}))),
        Err(JwtError::WrongAudience)
    );
    assert!(check(&t(json!({"aud": ["other", "edge"]}))).is_ok());
}

#[test]
fn duplicate_claims_are_refused() {
    let c = claims(json!({}));
    let dup = c.replacen('{', r#"{"sub":"admin-user","#, 1);
    assert_eq!(
        check(&ed_token(&header(), &dup, &ed_key())),
        Err(JwtError::MalformedClaims)
    );
}

#[test]
fn oversized_token_is_refused_before_parsing() {
    let big = "a".repeat(5000);
    assert_eq!(check(&big), Err(JwtError::TooLarge));
}

#[test]
fn tampered_payload_fails_the_signature() {
    let t = ed_token(&header(), &claims(json!({})), &ed_key());
    let parts: Vec<&str> = t.split('.').collect();
    let other = b64(claims(json!({"role": "admin"})).as_bytes());
    let forged = format!("{}.{other}.{}", parts[0], parts[2]);
    assert_eq!(check(&forged), Err(JwtError::BadSignature));
}

#[test]
fn es256_tokens_verify_with_a_p256_key() {
    use p256::ecdsa::signature::Signer as _;
    let sk = p256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
    let mut ks = KeySet::new();
    ks.insert("ec-1", VerifyingKey::Es256(*sk.verifying_key()));
    let h = r#"{"alg":"ES256","kid":"ec-1"}"#;
    let input = format!(
        "{}.{}",
        b64(h.as_bytes()),
        b64(claims(json!({})).as_bytes())
    );
    let sig: p256::ecdsa::Signature = sk.sign(input.as_bytes());
    let t = format!("{input}.{}", b64(&sig.to_bytes()));
    assert!(jwt::verify(&policy(), &ks, &t, UnixTime(NOW)).is_ok());
}

#[test]
fn public_reasons_hide_detail() {
    assert_eq!(
        JwtError::UnknownKid.public_reason(),
        JwtError::BadSignature.public_reason()
    );
    assert_eq!(JwtError::Expired.public_reason(), "token expired");
}
