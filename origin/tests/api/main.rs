//! Black-box API tests of the origin over real HTTP.

mod accounts;
mod ads;
mod analytics;
mod billing;
mod catalog;
mod channels;
mod control_text;
mod earnings;
mod handlers;
mod helpers;
mod hostile_uploads;
mod jobs;
mod migrations;
mod moderation;
mod notifications;
mod openapi;
mod quotas;
mod sessions;
mod shutdown;
mod social;
mod storage;
mod studio;
mod sync;
mod telemetry;
mod transcode;
mod uploads;
mod video_writes;
mod webhooks;

use helpers::{now, TestApp, EDGE_SECRET};
use origin::users;
use origin::videos::{self, NewVideo};
use reqwest::StatusCode;
use serde_json::Value;
use shared_wasm::jwk::KeySet;
use shared_wasm::jwt::{self, JwtPolicy, Role};
use shared_wasm::record::{VideoRecord, VideoState, Visibility};
use shared_wasm::{edge_auth, UnixTime, VideoId};

async fn body(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[tokio::test]
async fn healthz() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/healthz", app.origin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Straight to the origin, without the edge's proof: every `/v1` route and the key set answer
/// 401 (so the edge's rate limits, role checks and revocation cannot be gone around); health,
/// the API document, the upload routes and Stripe's webhook stay public.
#[tokio::test]
async fn the_api_answers_only_the_edge() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com", Role::Creator).await;
    let direct = |m: reqwest::Method, path: &str| {
        app.client
            .request(m, format!("{}{path}", app.origin_url))
            .json(&serde_json::json!({"email": "ada@example.com", "password": "correct horse"}))
    };
    use reqwest::Method as M;
    for (m, path) in [
        (M::POST, "/v1/auth/login"),
        (M::POST, "/v1/auth/signup"),
        (M::GET, "/v1/feeds/home"),
        (M::GET, "/v1/me"),
        (M::POST, "/v1/videos"),
        (M::GET, "/v1/videos/v1/comments"),
        (M::POST, "/v1/admin/users/u1/role"),
        (M::GET, "/v1/admin/users?q=ada"),
        (M::GET, "/.well-known/jwks.json"),
    ] {
        let r = direct(m.clone(), path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{m} {path}");
        assert_eq!(
            body(r).await["error"],
            "edge_credentials_required",
            "{m} {path}"
        );
    }
    // A proof for another path or method does not open this one.
    let proof = edge_auth::sign(
        EDGE_SECRET.as_bytes(),
        "GET",
        "/v1/feeds/home",
        UnixTime(now()),
    );
    let r = direct(M::POST, "/v1/auth/login")
        .header(edge_auth::HEADER, proof)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // With the edge's proof, the same calls work.
    assert_eq!(
        app.login("ada@example.com", "correct horse").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.edge_get("/v1/feeds/home").await.status(),
        StatusCode::OK
    );

    // Public: reached, and answered by the route itself.
    for path in ["/healthz", "/openapi.json"] {
        let r = direct(M::GET, path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = direct(M::OPTIONS, "/uploads/tus").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = direct(M::PUT, "/uploads/not-a-ticket")
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["error"], "invalid_ticket");
    // (Refused by the webhook's own signature check, not by the edge's.)
    let r = direct(M::POST, "/billing/stripe/webhook")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(r).await["error"], "invalid_signature");
}

#[tokio::test]
async fn login_issues_a_token_the_edge_policy_accepts() {
    let app = TestApp::spawn().await;
    users::ensure_user(
        &app.state.db,
        "a@example.com",
        "correct horse",
        Role::Creator,
        "test",
    )
    .await
    .unwrap();
    let r = app.login("a@example.com", "correct horse").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let b = body(r).await;
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 600);
    let token = b["access_token"].as_str().unwrap();

    let jwks = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let doc: Value = serde_json::from_slice(&jwks).unwrap();
    assert!(
        doc["keys"][0].get("d").is_none(),
        "private key published: {doc}"
    );
    let policy = JwtPolicy::new("test-origin", "test-edge");
    let keys = KeySet::from_jwks(&jwks, &policy.algorithms).unwrap();
    let claims = jwt::verify(&policy, &keys, token, UnixTime(now())).unwrap();
    assert_eq!(claims.role, Role::Creator);
    assert!(claims.exp <= now() + 600 && claims.jti.is_some());
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = TestApp::spawn().await;
    users::ensure_user(
        &app.state.db,
        "a@example.com",
        "correct horse",
        Role::User,
        "test",
    )
    .await
    .unwrap();
    let wrong = app.login("a@example.com", "battery staple").await;
    let unknown = app.login("nobody@example.com", "battery staple").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(wrong).await, body(unknown).await);
}

#[tokio::test]
async fn bad_login_bodies_get_json_400s() {
    let app = TestApp::spawn().await;
    let url = format!("{}/v1/auth/login", app.url);
    for raw in [
        "not json",
        r#"{"email":"a@example.com"}"#,
        r#"{"email":"a","password":"b","admin":true}"#,
    ] {
        let r = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{raw}");
        assert_eq!(body(r).await["error"], "invalid_body", "{raw}");
    }
    let long = "x".repeat(300);
    let r = app.login("a@example.com", &long).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(r).await["error"], "invalid_password");
    let huge = "x".repeat(64 * 1024);
    let r = app.login("a@example.com", &huge).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn seed_video(app: &TestApp) -> VideoId {
    let id = VideoId::parse("v1").unwrap();
    videos::upsert(
        &app.state.db,
        NewVideo {
            id: &id,
            owner_id: None,
            channel_id: None,
            title: "Clip",
            description: "",
            visibility: Visibility::Members,
            state: VideoState::Ready,
            duration_ms: Some(1000),
            countries: None,
            taken_down: false,
            binding: None,
            category: None,
            tags: "",
        },
    )
    .await
    .unwrap();
    let dir = std::path::Path::new(&app.state.settings.storage.media_dir).join("v1/480p");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.parent().unwrap().join("master.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(dir.join("seg_000.ts"), [0x47u8; 1880]).unwrap();
    id
}

#[tokio::test]
async fn internal_routes_refuse_anyone_but_the_edge() {
    let app = TestApp::spawn().await;
    seed_video(&app).await;
    let path = "/internal/media/v1/master.m3u8";
    let url = format!("{}{path}", app.origin_url);
    let none = app.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["cache-control"], "private, no-store");
    assert_eq!(body(none).await["error"], "edge_credentials_required");

    let stale = edge_auth::sign(EDGE_SECRET.as_bytes(), "GET", path, UnixTime(now() - 120));
    let wrong_key = edge_auth::sign(&[1u8; 32], "GET", path, UnixTime(now()));
    let other_path = edge_auth::sign(
        EDGE_SECRET.as_bytes(),
        "GET",
        "/internal/videos/v1",
        UnixTime(now()),
    );
    for proof in [stale, wrong_key, other_path] {
        let r = app
            .client
            .get(&url)
            .header(edge_auth::HEADER, proof)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.edge_get(path).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn records_and_media_for_the_edge() {
    let app = TestApp::spawn().await;
    let id = seed_video(&app).await;
    let r = app.edge_get("/internal/videos/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/cbor");
    // Nothing between the edge and the origin may keep a copy.
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let rec = VideoRecord::from_cbor(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.visibility, Visibility::Members);
    assert_eq!(rec.version, 1);

    assert_eq!(
        app.edge_get("/internal/videos/nope").await.status(),
        StatusCode::NOT_FOUND
    );

    let r = app.edge_get("/internal/media/v1/480p/seg_000.ts").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[0x47u8; 1880][..]);

    // One byte range: 206 with its place in the file; a range past the end: 416 with the
    // size; several ranges, or a range under an If-Range the origin cannot match: the file.
    let seg = "/internal/media/v1/480p/seg_000.ts";
    let r = app.edge_get_range(seg, "bytes=188-375", None).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 188-375/1880");
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[0x47u8; 188][..]);
    let r = app.edge_get_range(seg, "bytes=-100", None).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 1780-1879/1880");
    assert_eq!(r.bytes().await.unwrap().len(), 100);
    let r = app.edge_get_range(seg, "bytes=1880-", None).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */1880");
    for (range, if_range) in [("bytes=0-0,5-9", None), ("bytes=0-9", Some("\"abc\""))] {
        let r = app.edge_get_range(seg, range, if_range).await;
        assert_eq!(r.status(), StatusCode::OK, "{range} {if_range:?}");
        assert_eq!(r.bytes().await.unwrap().len(), 1880);
    }
    let r = app
        .edge_get_range("/internal/media/v1/480p/seg_999.ts", "bytes=0-9", None)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    assert_eq!(
        app.edge_get("/internal/media/v1/480p/seg_999.ts")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    for bad in [
        "/internal/media/v1/%2e%2e%2f%2e%2e%2fetc%2fpasswd.ts",
        "/internal/media/v1/480p/x.sh",
    ] {
        let r = app.edge_get(bad).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body(r).await["error"], "bad_media_path");
    }
}

#[tokio::test]
async fn upsert_bumps_the_record_version() {
    let app = TestApp::spawn().await;
    seed_video(&app).await;
    seed_video(&app).await;
    let rec = videos::record(&app.state.db, &VideoId::parse("v1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.version, 2);
}

#[tokio::test]
async fn country_rules_and_takedown_reach_the_record() {
    use shared_wasm::record::{CountryMode, CountryRule};
    use shared_wasm::CountryCode;
    let app = TestApp::spawn().await;
    let id = VideoId::parse("geo").unwrap();
    let rule = CountryRule {
        mode: CountryMode::Deny,
        list: vec![
            CountryCode::parse("FR").unwrap(),
            CountryCode::parse("BE").unwrap(),
        ],
    };
    videos::upsert(
        &app.state.db,
        NewVideo {
            id: &id,
            owner_id: None,
            channel_id: None,
            title: "Geo",
            description: "",
            visibility: Visibility::Public,
            state: VideoState::Ready,
            duration_ms: None,
            countries: Some(rule.clone()),
            taken_down: true,
            binding: None,
            category: None,
            tags: "",
        },
    )
    .await
    .unwrap();
    let r = app.edge_get("/internal/videos/geo").await;
    let rec = VideoRecord::from_cbor(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(rec.countries, Some(rule));
    assert!(rec.taken_down);
}
