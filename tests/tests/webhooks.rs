//! Webhooks for integrators, through the edge on every runtime: a creator registers an endpoint
//! (a receiver on loopback that checks signatures with Python's hmac), and a video's life
//! (uploaded, ready, taken down, deleted) reaches it signed, in order, exactly once per event
//! id although the receiver fails the first attempts; events written while the receiver is down
//! survive the origin being killed and arrive once after its restart; the delivery log, "send
//! again" and a secret rotation work through the edge.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::webhooks::Receiver;
use e2e::{free_port, Edge, Origin, Runtime, ADMIN_EMAIL, DEMO_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const TYPES: [&str; 5] = [
    "upload.completed",
    "video.ready",
    "video.failed",
    "video.deleted",
    "video.taken_down",
];

async fn token(c: &Client, e: &str, email: &str) -> String {
    e2e::login(c, e, email).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends `method path` through the edge with `token` and `body`; returns status and JSON.
async fn call(
    c: &Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = c.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A new video of the creator's with `bytes` PUT to its upload URL.
async fn upload(c: &Client, e: &str, token: &str, bytes: Vec<u8>) -> String {
    let (s, v) = call(
        c,
        reqwest::Method::POST,
        format!("{e}/v1/videos"),
        token,
        Some(json!({"title": "Hooked", "visibility": "public"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, t) = call(
        c,
        reqwest::Method::POST,
        format!("{e}/v1/videos/{id}/upload"),
        token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let r = c
        .put(t["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    id
}

/// The accepted deliveries' types for `video`, in arrival order.
fn types_of(accepted: &[Value], video: &str) -> Vec<String> {
    accepted
        .iter()
        .filter(|l| l["video"] == video)
        .map(|l| l["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Every request the receiver had was genuine, named the event it carried, and each event id
/// was accepted exactly once.
fn exactly_once(receiver: &Receiver) {
    let log = receiver.log();
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for l in &log {
        assert_eq!(l["signature_ok"], true, "{l}");
        assert_eq!(l["header_id"], l["id"], "{l}");
        if l["status"] == 200 {
            *accepted
                .entry(l["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "accepted more than once: {twice:?}");
}

async fn flow(runtime: Runtime) {
    let receiver = Receiver::start().await;
    let edge_port = free_port();
    let mut origin = Origin::start_with_env(
        edge_port,
        &[
            // The receiver is on loopback, which production endpoints may not be.
            ("APP_WEBHOOKS__ALLOW_PRIVATE", "true"),
            ("APP_WEBHOOKS__RETRY_SECS", "1"),
            ("APP_WEBHOOKS__RETRY_CAP_SECS", "2"),
        ],
    )
    .await;
    let edge = Edge::start(runtime, &origin, edge_port).await;
    let c = e2e::client();
    let e = edge.url.as_str();
    let creator = token(&c, e, DEMO_EMAIL).await;
    let admin = token(&c, e, ADMIN_EMAIL).await;
    use reqwest::Method as M;

    // Registration: a bad URL is refused with the field named; a good one answers its secret.
    let (s, err) = call(
        &c,
        M::POST,
        format!("{e}/v1/webhooks"),
        &creator,
        Some(json!({"url": "ftp://hooks.example/", "events": ["video.ready"]})),
    )
    .await;
    assert_eq!(
        (s, &err["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("url")),
        "{err}"
    );
    let (s, endpoint) = call(
        &c,
        M::POST,
        format!("{e}/v1/webhooks"),
        &creator,
        Some(json!({"url": receiver.url, "events": TYPES})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{endpoint}");
    let hook = endpoint["id"].as_str().unwrap().to_owned();
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    receiver.trust(&[&secret]);
    receiver.fail_first(2);
    let (s, listed) = call(&c, M::GET, format!("{e}/v1/webhooks"), &creator, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["items"][0]["id"], hook.as_str());
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");

    // A video's life, each event failed twice by the receiver before it takes it.
    let dir = tempfile::tempdir().unwrap();
    let video = upload(&c, e, &creator, e2e::render_source(dir.path(), 320, 180, 2)).await;
    receiver
        .until(
            "upload.completed, video.ready",
            Duration::from_secs(120),
            |a| types_of(a, &video).len() == 2,
        )
        .await;
    let (s, v) = call(
        &c,
        M::PATCH,
        format!("{e}/v1/videos/{video}"),
        &admin,
        Some(json!({"taken_down": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(
        &c,
        M::DELETE,
        format!("{e}/v1/videos/{video}"),
        &creator,
        None,
    )
    .await;
    assert!(s.is_success(), "{s} {v}");
    receiver
        .until("all four events", Duration::from_secs(60), |a| {
            types_of(a, &video).len() == 4
        })
        .await;
    assert_eq!(
        types_of(&receiver.accepted(), &video),
        [
            "upload.completed",
            "video.ready",
            "video.taken_down",
            "video.deleted"
        ]
    );
    for l in receiver.accepted() {
        assert_eq!(l["attempt"], 3, "two failures, then taken: {l}");
    }
    exactly_once(&receiver);
    let (s, log) = call(
        &c,
        M::GET,
        format!("{e}/v1/webhooks/{hook}/deliveries"),
        &creator,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{log}");
    for d in items {
        assert_eq!(
            (&d["state"], &d["attempts"], &d["last_status"]),
            (&json!("delivered"), &json!(3), &json!(200)),
            "{d}"
        );
    }
    assert_eq!(items[0]["type"], "video.deleted", "newest first");

    // Through a crash: events written while the receiver is down, the origin killed, then
    // restarted: each arrives once, in order.
    receiver.go_down();
    let broken = upload(
        &c,
        e,
        &creator,
        b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2 not a video".to_vec(),
    )
    .await;
    let refused = |log: &[Value]| {
        log.iter()
            .any(|l| l["video"] == broken.as_str() && l["status"] == 503)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !refused(&receiver.log()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt: {:#?}",
            receiver.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    origin.kill();
    origin.restart().await;
    receiver.accept();
    receiver
        .until(
            "upload.completed, video.failed",
            Duration::from_secs(120),
            |a| types_of(a, &broken).len() == 2,
        )
        .await;
    assert_eq!(
        types_of(&receiver.accepted(), &broken),
        ["upload.completed", "video.failed"]
    );
    exactly_once(&receiver);
    let failed = receiver
        .accepted()
        .into_iter()
        .find(|l| l["type"] == "video.failed")
        .unwrap();
    let body: Value = serde_json::from_str(failed["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["data"]["video"]["reason"], "unreadable_media",
        "{body}"
    );

    // Send again, after a rotation: the same id and body, signed with the new secret (the old
    // one still signs beside it for the overlap).
    let (s, rotated) = call(
        &c,
        M::POST,
        format!("{e}/v1/webhooks/{hook}/rotate"),
        &creator,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    receiver.trust(&[new_secret]);
    let first = receiver.accepted()[0].clone();
    let again = format!(
        "{e}/v1/webhooks/{hook}/deliveries/{}/retry",
        first["id"].as_str().unwrap()
    );
    let (s, v) = call(&c, M::POST, again, &creator, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    receiver
        .until("the event sent again", Duration::from_secs(30), |a| {
            a.iter().filter(|l| l["id"] == first["id"]).count() == 2
        })
        .await;
    let resent = receiver
        .accepted()
        .into_iter()
        .rfind(|l| l["id"] == first["id"])
        .unwrap();
    assert_eq!(resent["body"], first["body"], "the same bytes");
    assert!(receiver.log().iter().all(|l| l["signature_ok"] == true));

    // Another creator's endpoint is not found; a viewer may not register one.
    let viewer = token(&c, e, e2e::VIEWER_EMAIL).await;
    let (s, _) = call(&c, M::GET, format!("{e}/v1/webhooks/{hook}"), &admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &c,
        M::POST,
        format!("{e}/v1/webhooks"),
        &viewer,
        Some(json!({"url": receiver.url, "events": ["video.ready"]})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn webhooks_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn webhooks_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn webhooks_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
