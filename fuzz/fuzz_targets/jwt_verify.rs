//! Arbitrary bytes as an access token through the full policy: no panic, and no acceptance
//! without the signing key (EdDSA, ES256 and, allowed here on purpose, HS256).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_wasm::jwk::{KeySet, VerifyingKey};
use shared_wasm::jwt::{self, Alg, JwtPolicy};
use shared_wasm::UnixTime;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let mut keys = KeySet::new();
    let jwks = br#"{"keys":[
        {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        {"kty":"oct","kid":"hs","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}
    ]}"#;
    let mut policy = JwtPolicy::new("iss", "aud");
    policy.algorithms.push(Alg::Hs256);
    let set = KeySet::from_jwks(jwks, &policy.algorithms).unwrap();
    for kid in ["ed", "ec", "hs"] {
        let key: &VerifyingKey = set.get(kid).unwrap();
        keys.insert(kid, key.clone());
    }
    let _ = jwt::verify_signature(token, keys.get("ed").unwrap());
    assert!(
        jwt::verify(&policy, &keys, token, UnixTime(1_800_000_000)).is_err(),
        "token accepted without the key: {token}"
    );
});
