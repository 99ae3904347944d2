//! Access-token key rotation end to end, once per edge runtime: the origin rotates its signing
//! key, old and new tokens both verify during the overlap, made-up `kid`s cost at most one JWKS
//! fetch per interval, and retiring the old key kills its tokens at the edge.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use e2e::{free_port, Edge, Origin, Runtime, DEMO_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::Value;

const JWKS: &str = "/.well-known/jwks.json";
/// The edge keeps the JWKS this long, and refetches for an unknown kid at most this often.
const CACHE_SECS: u64 = 3;

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

/// A well-formed EdDSA token naming a key nobody has.
fn ghost_token(n: usize) -> String {
    let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"EdDSA","kid":"ghost-{n}"}}"#));
    let p = URL_SAFE_NO_PAD.encode(r#"{"sub":"u","role":"admin","exp":9999999999}"#);
    format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]))
}

async fn login(c: &Client, e: &str) -> String {
    e2e::login(c, e, DEMO_EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn me(c: &Client, e: &str, token: &str) -> StatusCode {
    c.get(format!("{e}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn flow(runtime: Runtime) {
    let edge_port = free_port();
    let mut origin = Origin::start(edge_port).await;
    let secs = CACHE_SECS.to_string();
    let edge = Edge::start_with(
        runtime,
        &origin,
        edge_port,
        &[("JWKS_CACHE_SECS", &secs), ("JWKS_MIN_REFRESH_SECS", &secs)],
    )
    .await;
    let e = edge.url.as_str();
    let c = Client::new();
    let wait = || tokio::time::sleep(Duration::from_millis(CACHE_SECS * 1000 + 200));

    let old = login(&c, e).await;
    assert_eq!(me(&c, e, &old).await, StatusCode::OK, "{}", edge.log());

    // Rotate: the new key signs, the old one stays published.
    origin.cli(&["rotate-signing-key"]);
    origin.restart().await;
    let new = login(&c, e).await;
    assert_ne!(kid_of(&old), kid_of(&new));
    wait().await;
    assert_eq!(me(&c, e, &new).await, StatusCode::OK, "{}", edge.log());
    assert_eq!(
        me(&c, e, &old).await,
        StatusCode::OK,
        "overlap: both keys verify"
    );
    // The unknown new kid made the edge refetch (so the counting below does see fetches).
    assert!(
        origin.requests_for(JWKS) >= 1,
        "the edge refetched the JWKS"
    );

    // A burst of made-up kids: each is refused, and the JWKS is fetched at most once for all.
    let before = origin.requests_for(JWKS);
    for n in 0..20 {
        let r = c
            .get(format!("{e}/v1/me"))
            .bearer_auth(ghost_token(n))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let fetched = origin.requests_for(JWKS) - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for 20 unknown kids");

    // Retire the old key: once the edge's copy of the JWKS is refreshed, its tokens die.
    let out = origin.cli(&["retire-signing-keys", "--now"]);
    assert!(out.contains(&kid_of(&old)), "{out}");
    origin.restart().await;
    wait().await;
    assert_eq!(me(&c, e, &new).await, StatusCode::OK);
    let r = c
        .get(format!("{e}/v1/me"))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn key_rotation_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn key_rotation_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn key_rotation_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
