//! Native cost of the edge's per-request checks. Run: `cargo bench -p shared-wasm --bench verify`.
//!
//! - a segment request's playback-token verification vs one bare HMAC-SHA256 of the same
//!   message, `DOMAIN ‖ body` (the floor any HMAC scheme pays; the goal is a ratio under 2x);
//! - access-token verification with EdDSA and ES256, and the Rust part alone of what the Worker
//!   does (the policy step and the claims, the signature left to WebCrypto).
//!
//! A plain timing loop (median of several runs) keeps the harness dependency-free; figures are
//! recorded in docs/benchmarks.md ("Figures"), never asserted.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use shared_wasm::jwk::{KeySet, VerifyingKey};
use shared_wasm::jwt::{self, JwtPolicy};
use shared_wasm::playback::{self, Binding, Claims, PlaybackKeys, Use, Viewer};
use shared_wasm::{hmac, Kid, UnixTime};

/// Median nanoseconds per call of `f` over `runs` runs of `iters` calls.
fn measure(iters: u32, runs: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[runs / 2]
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn main() {
    let kid = Kid::parse("k1").unwrap();
    let mut keys = BTreeMap::new();
    keys.insert(kid.clone(), vec![7u8; 32]);
    let keys = PlaybackKeys::new(kid, keys).unwrap();
    let claims = Claims {
        prefix: "/hls/demo-members/".into(),
        not_before: UnixTime(1_000),
        expires: UnixTime(1_000_000),
        binding: Binding::default(),
    };
    let token = playback::sign(&keys, &claims);
    let at = Use {
        path: "/hls/demo-members/480p/seg_001.ts",
        now: UnixTime(5_000),
        leeway_secs: 30,
        viewer: Viewer::default(),
    };
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let body = &raw[..raw.len() - 32];

    let verify_ns = measure(200_000, 7, || {
        black_box(playback::verify(&keys, black_box(&token), &at).unwrap());
    });
    let hmac_ns = measure(200_000, 7, || {
        black_box(hmac::sign(&[7u8; 32], &[playback::DOMAIN, black_box(body)]));
    });

    let now = 1_800_000_000u64;
    let claims_json = format!(
        r#"{{"sub":"u_1","role":"user","iss":"origin","aud":"edge","exp":{},"iat":{}}}"#,
        now + 600,
        now
    );
    let policy = JwtPolicy::new("origin", "edge");

    let ed = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"EdDSA","kid":"ed"}"#),
        b64(claims_json.as_bytes())
    );
    let ed_token = format!("{input}.{}", b64(&ed.sign(input.as_bytes()).to_bytes()));
    let mut ed_keys = KeySet::new();
    ed_keys.insert("ed", VerifyingKey::Ed25519(ed.verifying_key()));
    let eddsa_ns = measure(5_000, 7, || {
        black_box(jwt::verify(&policy, &ed_keys, black_box(&ed_token), UnixTime(now)).unwrap());
    });

    let ec = p256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256","kid":"ec"}"#),
        b64(claims_json.as_bytes())
    );
    let sig: p256::ecdsa::Signature = ec.sign(input.as_bytes());
    let ec_token = format!("{input}.{}", b64(&sig.to_bytes()));
    let mut ec_keys = KeySet::new();
    ec_keys.insert("ec", VerifyingKey::Es256(*ec.verifying_key()));
    let es256_ns = measure(2_000, 7, || {
        black_box(jwt::verify(&policy, &ec_keys, black_box(&ec_token), UnixTime(now)).unwrap());
    });

    // What stays in Rust on Workers: `check_header` and `check_claims` around the signature.
    let policy_ns = measure(100_000, 7, || {
        let check = jwt::check_header(&policy, &ed_keys, black_box(&ed_token)).unwrap();
        black_box((check.key.public_key(), check.message, &check.signature));
        black_box(jwt::check_claims(&policy, black_box(&ed_token), UnixTime(now)).unwrap());
    });

    println!("playback token verify (segment request): {verify_ns:8.0} ns");
    println!("bare HMAC-SHA256 of the same message:     {hmac_ns:8.0} ns");
    println!(
        "ratio:                                    {:8.2}x",
        verify_ns / hmac_ns
    );
    println!("JWT verify, EdDSA:                        {eddsa_ns:8.0} ns");
    println!("JWT verify, ES256:                        {es256_ns:8.0} ns");
    println!("JWT policy + claims, no signature:        {policy_ns:8.0} ns");
}
