//! Handler tests: requests straight through the router (`oneshot`), where a socket and the
//! edge's signing proxy add nothing: the edge proof, body limits and error bodies.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use shared_wasm::{edge_auth, UnixTime};
use tower::ServiceExt;

use crate::helpers::{now, TestApp, EDGE_SECRET};

/// Sends `req` through a fresh router on the app's state: status and JSON body.
async fn through(app: &TestApp, req: Request<Body>) -> (StatusCode, Value, Option<String>) {
    let r = origin::routes::router(app.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = r.status();
    let cache = r
        .headers()
        .get(header::CACHE_CONTROL)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap(), cache)
}

/// A request with the edge's proof for its method and path.
fn from_edge(method: &str, path: &str, body: impl Into<Body>) -> Request<Body> {
    let proof = edge_auth::sign(EDGE_SECRET.as_bytes(), method, path, UnixTime(now()));
    Request::builder()
        .method(method)
        .uri(path)
        .header(edge_auth::HEADER, proof)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn the_api_answers_only_requests_with_the_edges_proof() {
    let app = TestApp::spawn().await;
    let bare = Request::get("/v1/me").body(Body::empty()).unwrap();
    let (status, body, cache) = through(&app, bare).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "edge_credentials_required");
    assert_eq!(cache.as_deref(), Some("no-store"));

    // A proof for another path does not open this one.
    let mut moved = from_edge("GET", "/v1/me/subscriptions", Body::empty());
    *moved.uri_mut() = "/v1/me".parse().unwrap();
    let (status, body, _) = through(&app, moved).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "edge_credentials_required");

    // With the proof, the route itself answers: no token, so 401 of its own.
    let (status, body, _) = through(&app, from_edge("GET", "/v1/me", Body::empty())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
}

#[tokio::test]
async fn refresh_refusals_say_which_refusal_it_is() {
    let app = TestApp::spawn().await;
    for (token, why) in [
        ("no-dot", "malformed"),
        ("unknown.secret", "unknown session"),
        (&*format!("{}.x", "s".repeat(65)), "session id too long"),
    ] {
        let body = json!({ "refresh_token": token }).to_string();
        let (status, body, cache) =
            through(&app, from_edge("POST", "/v1/auth/refresh", body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(body["error"], "invalid_refresh_token", "{why}");
        assert_eq!(cache.as_deref(), Some("no-store"), "{why}");
    }
}

#[tokio::test]
async fn bodies_are_bounded_and_strict() {
    let app = TestApp::spawn().await;
    let big = json!({ "email": "a@example.com", "password": "p".repeat(17 * 1024) }).to_string();
    let (status, body, _) = through(&app, from_edge("POST", "/v1/auth/login", big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");

    let extra = json!({ "email": "a@example.com", "password": "pw", "admin": true }).to_string();
    let (status, body, _) = through(&app, from_edge("POST", "/v1/auth/login", extra)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_body");
    assert!(
        body["message"].as_str().unwrap().contains("admin"),
        "{body}"
    );

    let (status, body, _) = through(&app, from_edge("POST", "/v1/auth/login", "{")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_body");
}

#[tokio::test]
async fn a_private_route_is_refused_with_its_role() {
    let app = TestApp::spawn().await;
    let (_, viewer) = app
        .user("viewer@example.com", shared_wasm::jwt::Role::User)
        .await;
    let mut req = from_edge("POST", "/v1/admin/users/someone/revoke", Body::empty());
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {viewer}").parse().unwrap(),
    );
    let (status, body, _) = through(&app, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "role_required");
}
