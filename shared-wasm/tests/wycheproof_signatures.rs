//! Wycheproof Ed25519 and ECDSA P-256 (IEEE P1363, the JWS `r‖s` form) vectors through the
//! signature primitive that access-token verification uses (`jwt::verify_raw`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use shared_wasm::jwk::VerifyingKey;
use shared_wasm::jwt::verify_raw;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// Runs every case; returns (valid, invalid) counts. "acceptable" cases (legacy encodings that
/// an implementation may take either way) are left out.
fn run(file: &str, key_of: impl Fn(&Value) -> Option<VerifyingKey>) -> (usize, usize) {
    let doc = load(file);
    let (mut valid, mut invalid) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        let key = key_of(group);
        for t in group["tests"].as_array().unwrap() {
            let expected = match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                _ => continue,
            };
            let got = key
                .as_ref()
                .is_some_and(|k| verify_raw(k, &unhex(&t["msg"]), &unhex(&t["sig"])));
            assert_eq!(
                got, expected,
                "{file} tcId {} ({})",
                t["tcId"], t["comment"]
            );
            if expected {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
    }
    (valid, invalid)
}

#[test]
fn wycheproof_ed25519() {
    let (valid, invalid) = run("wycheproof_ed25519_test.json", |g| {
        let pk: [u8; 32] = unhex(&g["publicKey"]["pk"]).try_into().ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&pk)
            .ok()
            .map(VerifyingKey::Ed25519)
    });
    assert_eq!((valid, invalid), (88, 63), "every case is run");
}

#[test]
fn wycheproof_p256_p1363() {
    let (valid, invalid) = run("wycheproof_ecdsa_secp256r1_sha256_p1363_test.json", |g| {
        // Through the JWK path the edge uses for keys from the origin's JWKS, where the group
        // has a JWK; a few special-point groups only give the SEC1 encoding.
        match g.get("publicKeyJwk") {
            Some(jwk) => VerifyingKey::from_jwk(jwk).ok(),
            None => {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&unhex(&g["publicKey"]["uncompressed"]))
                    .ok()
                    .map(VerifyingKey::Es256)
            }
        }
    });
    assert_eq!((valid, invalid), (173, 89), "every case is run");
}

#[test]
fn jwk_and_raw_key_agree_for_p256() {
    let doc = load("wycheproof_ecdsa_secp256r1_sha256_p1363_test.json");
    let g = &doc["testGroups"][0];
    let x = URL_SAFE_NO_PAD
        .decode(g["publicKeyJwk"]["x"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        hex::encode(x),
        g["publicKey"]["wx"]
            .as_str()
            .unwrap()
            .trim_start_matches("00")
    );
}
