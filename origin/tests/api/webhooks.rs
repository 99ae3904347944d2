//! Webhook endpoints: only public https URLs (no SSRF), each its owner's alone, bounded per
//! account, rotatable; an admin's endpoint for every creator hears a creator's event, a
//! delivery is given up after its window with the failures logged, and "send again" brings it.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::{json_of, now, TestApp};

async fn register(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    json_of(app.post("/v1/webhooks", Some(token), body).await).await
}

const PUBLIC: &str = "https://hooks.example.com/in";

#[tokio::test]
async fn endpoints_take_only_public_https_urls_and_stay_their_owners() {
    let app = TestApp::spawn().await;
    let (_, creator) = app.user("creator@example.com", Role::Creator).await;
    let (_, other) = app.user("other@example.com", Role::Creator).await;
    let (_, viewer) = app.user("viewer@example.com", Role::User).await;
    let hook = |url: &str| json!({"url": url, "events": ["video.ready"]});

    for (body, field) in [
        (hook("http://hooks.example.com/in"), "url"),
        (hook("https://127.0.0.1/in"), "url"),
        (hook("https://[::1]/in"), "url"),
        (hook("https://169.254.169.254/latest/meta-data"), "url"),
        (hook("https://localhost:8443/in"), "url"),
        (hook("https://user:pw@hooks.example.com/in"), "url"),
        (hook("not a url"), "url"),
        (
            json!({"url": "https://hooks.example.com/in", "events": []}),
            "events",
        ),
    ] {
        let (s, e) = register(&app, &creator, body.clone()).await;
        assert_eq!(
            (s, &e["field"]),
            (StatusCode::UNPROCESSABLE_ENTITY, &json!(field)),
            "{body}: {e}"
        );
    }
    let (s, e) = register(
        &app,
        &creator,
        json!({"url": "https://hooks.example.com/in", "events": ["video.watched"]}),
    )
    .await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_body")),
        "{e}"
    );
    let mut everyone = hook(PUBLIC);
    everyone["all_creators"] = true.into();
    let (s, _) = register(&app, &creator, everyone).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "every creator's events are an admin's to hear"
    );
    let (s, _) = register(&app, &viewer, hook(PUBLIC)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, made) = register(&app, &creator, hook(PUBLIC)).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"));
    let path = format!("/v1/webhooks/{}", made["id"].as_str().unwrap());

    // Another creator finds nothing there.
    for (method, p, body) in [
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"events": ["video.failed"]})),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/rotate"), Some(json!({}))),
        (Method::GET, format!("{path}/deliveries"), None),
    ] {
        let (s, _) = json_of(app.send(method.clone(), &p, &other, body).await).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {p}");
    }
    let (s, e) = json_of(
        app.send(
            Method::PATCH,
            &path,
            &creator,
            Some(json!({"url": "https://10.0.0.8/in"})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, &e["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("url"))
    );

    // Rotation: the old secret signs beside the new one for the overlap, at most a week.
    let (s, _) = json_of(
        app.send(
            Method::POST,
            &format!("{path}/rotate"),
            &creator,
            Some(json!({"overlap_secs": 7 * 24 * 3600 + 1})),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, rotated) = json_of(
        app.send(
            Method::POST,
            &format!("{path}/rotate"),
            &creator,
            Some(json!({})),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(rotated["secret"], made["secret"]);
    let until = rotated["previous_secret_until"].as_u64().unwrap();
    assert!(until.abs_diff(now() + 86_400) < 60, "{rotated}");

    // At most 10 per account.
    for _ in 1..10 {
        let (s, _) = register(&app, &creator, hook(PUBLIC)).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, e) = register(&app, &creator, hook(PUBLIC)).await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::CONFLICT, &json!("too_many_webhooks"))
    );
    let (s, _) = json_of(app.send(Method::DELETE, &path, &creator, None).await).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = json_of(app.get_as(&path, &creator).await).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The endpoint's delivery log, once `done` holds for its newest line.
async fn log_until(app: &TestApp, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, log) = json_of(app.get_as(&format!("{path}/deliveries"), token).await).await;
        if log["items"].get(0).is_some_and(&done) {
            return log["items"][0].clone();
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_delivery_is_given_up_after_its_window_and_sent_again_on_request() {
    let app = TestApp::spawn_tweaked(|s| {
        s.webhooks.workers = 1;
        s.webhooks.allow_private = true;
        s.webhooks.retry_secs = 1;
        s.webhooks.retry_cap_secs = 1;
        s.webhooks.window_secs = 3;
    })
    .await;
    let receiver = e2e::webhooks::Receiver::start().await;
    receiver.go_down();
    let (creator_id, creator) = app.user("creator@example.com", Role::Creator).await;
    let (admin_id, admin) = app.user("admin@example.com", Role::Admin).await;
    // The admin's endpoint hears every creator's events.
    let (s, made) = register(
        &app,
        &admin,
        json!({"url": receiver.url, "events": ["video.deleted"], "all_creators": true}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["all_creators"], true);
    receiver.trust(&[made["secret"].as_str().unwrap()]);
    let path = format!("/v1/webhooks/{}", made["id"].as_str().unwrap());
    app.public_video("v-gone", Some(&creator_id)).await;
    let (s, _) = json_of(
        app.send(Method::DELETE, "/v1/videos/v-gone", &creator, None)
            .await,
    )
    .await;
    assert!(s.is_success());

    let failed = log_until(&app, &path, &admin, |d| d["state"] == "failed").await;
    assert_eq!(
        (
            &failed["type"],
            &failed["video"],
            &failed["last_status"],
            &failed["last_error"]
        ),
        (
            &json!("video.deleted"),
            &json!("v-gone"),
            &json!(503),
            &json!("HTTP 503")
        ),
        "{failed}"
    );
    let attempts = failed["attempts"].as_i64().unwrap();
    assert!(attempts >= 2, "retried within the window: {failed}");
    assert_eq!(
        receiver.log().len() as i64,
        attempts,
        "each attempt logged once"
    );

    receiver.accept();
    let event = failed["event"].as_str().unwrap();
    // Nobody else can send it again.
    let (_, other) = app.user("other@example.com", Role::Creator).await;
    let (s, _) = json_of(
        app.send(
            Method::POST,
            &format!("{path}/deliveries/{event}/retry"),
            &other,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = json_of(
        app.send(
            Method::POST,
            &format!("{path}/deliveries/{event}/retry"),
            &admin,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let delivered = log_until(&app, &path, &admin, |d| d["state"] == "delivered").await;
    assert_eq!(delivered["last_status"], 200);
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["id"], event);
    // A signature that did not hold would have been answered 400 and logged.
    assert!(receiver.log().iter().all(|l| l["signature_ok"] == true));
    let body: Value = serde_json::from_str(accepted[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["video"]["owner"], creator_id.as_str());

    // Demoted, the admin's endpoint for every creator falls silent.
    origin::users::set_role(&app.state.db, &admin_id, Role::Creator)
        .await
        .unwrap();
    app.public_video("v-gone-too", Some(&creator_id)).await;
    let (s, _) = json_of(
        app.send(Method::DELETE, "/v1/videos/v-gone-too", &creator, None)
            .await,
    )
    .await;
    assert!(s.is_success());
    let deliveries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(deliveries, 1, "no delivery for a demoted admin's endpoint");
}
