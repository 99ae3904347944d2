//! Webhooks for integrators, through the edge on every runtime: a creator registers an endpoint
//! (a receiver on loopback that checks signatures with Python's hmac), and a video's life
//! (uploaded, ready, taken down, deleted) reaches it signed, in order, exactly once per event
//! id although the receiver fails the first attempts; events written while the receiver is down
//! survive the origin being killed and arrive once after its restart; the delivery log, "send
//! again" and a secret rotation work through the edge.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::webhooks::Receiver;
use e2e::{call, free_port, token, Edge, Origin, Runtime, ADMIN_EMAIL, DEMO_EMAIL};
use reqwest::StatusCode;
use serde_json::{json, Value};

const TYPES: [&str; 5] = [
    "upload.completed",
    "video.ready",
    "video.failed",
    "video.deleted",
    "video.taken_down",
];

/// The accepted deliveries' types for `video`, in arrival order.
fn types_of(accepted: &[Value], video: &str) -> Vec<String> {
    accepted
        .iter()
        .filter(|l| l["video"] == video)
        .map(|l| l["type"].as_str().unwrap().to_owned())
        .collect()
}

/// How many times each event id was accepted, after checking that every request the receiver
/// had was genuine and named the event it carried.
fn accepted_counts(receiver: &Receiver) -> BTreeMap<String, usize> {
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for l in receiver.log() {
        assert_eq!(l["signature_ok"], true, "{l}");
        assert_eq!(l["header_id"], l["id"], "{l}");
        if l["status"] == 200 {
            *accepted
                .entry(l["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    accepted
}

fn exactly_once(receiver: &Receiver) {
    let counts = accepted_counts(receiver);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
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
            // A killed attempt's lease (the timeout + 10 s) runs out sooner.
            ("APP_WEBHOOKS__TIMEOUT_SECS", "2"),
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
    let video = e2e::upload_video(
        &c,
        e,
        &creator,
        "Hooked",
        e2e::render_source(dir.path(), 320, 180, 2),
    )
    .await;
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

    // Through crashes: events written while the receiver is down wait out their backoff across
    // a restart; and an attempt the receiver took but whose answer the origin never heard (it
    // was killed first) is made again, under the same id and body: at least once, and the
    // receiver de-duplicates on the id.
    receiver.go_down();
    let broken = e2e::upload_video(
        &c,
        e,
        &creator,
        "Hooked",
        b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2 not a video".to_vec(),
    )
    .await;
    let limit = Duration::from_secs(60);
    receiver
        .until_logged("a refused attempt", limit, |log| {
            log.iter()
                .any(|l| l["video"] == broken.as_str() && l["status"] == 503)
        })
        .await;
    origin.kill();
    origin.restart().await;
    receiver.hold();
    receiver
        .until_logged("a held attempt", limit, |log| {
            log.iter()
                .any(|l| l["video"] == broken.as_str() && l["status"] == "held")
        })
        .await;
    origin.kill();
    receiver.accept();
    origin.restart().await;
    receiver
        .until(
            "upload.completed twice, video.failed",
            Duration::from_secs(120),
            |a| types_of(a, &broken).len() == 3,
        )
        .await;
    assert_eq!(
        types_of(&receiver.accepted(), &broken),
        ["upload.completed", "upload.completed", "video.failed"]
    );
    let completed: Vec<Value> = receiver
        .accepted()
        .into_iter()
        .filter(|l| l["video"] == broken.as_str() && l["type"] == "upload.completed")
        .collect();
    assert_eq!(completed[0]["id"], completed[1]["id"]);
    assert_eq!(completed[0]["body"], completed[1]["body"], "the same bytes");
    let counts = accepted_counts(&receiver);
    for (id, n) in &counts {
        let want = if *id == completed[0]["id"] { 2 } else { 1 };
        assert_eq!(*n, want, "{id}");
    }
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

    // A rotation: through the overlap the old secret still signs (a receiver that has not
    // switched takes the event sent again); the new one signs too; with no overlap the old one
    // stops at once (refused until the receiver switches).
    let rotate = |overlap: Value| {
        call(
            &c,
            M::POST,
            format!("{e}/v1/webhooks/{hook}/rotate"),
            &creator,
            Some(json!({"overlap_secs": overlap})),
        )
    };
    let (s, rotated) = rotate(json!(3600)).await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second, secret);
    let first = receiver.accepted()[0].clone();
    let first_id = first["id"].as_str().unwrap().to_owned();
    let send_again = || {
        call(
            &c,
            M::POST,
            format!("{e}/v1/webhooks/{hook}/deliveries/{first_id}/retry"),
            &creator,
            None,
        )
    };
    let taken = |n: usize| {
        let first_id = first_id.clone();
        move |a: &[Value]| a.iter().filter(|l| l["id"] == first_id.as_str()).count() == n
    };
    let limit = Duration::from_secs(30);
    for (trusted, n) in [(&secret, 2), (&second, 3)] {
        receiver.trust(&[trusted]);
        let (s, v) = send_again().await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        receiver
            .until("the event sent again", limit, taken(n))
            .await;
    }
    let resent = receiver
        .accepted()
        .into_iter()
        .rfind(|l| l["id"] == first["id"])
        .unwrap();
    assert_eq!(resent["body"], first["body"], "the same bytes");
    accepted_counts(&receiver); // every signature held so far
    let (s, rotated) = rotate(json!(0)).await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let (s, _) = send_again().await;
    assert_eq!(s, StatusCode::ACCEPTED);
    receiver
        .until_logged("a refused signature", limit, |log| {
            log.iter().any(|l| l["signature_ok"] == false)
        })
        .await;
    receiver.trust(&[rotated["secret"].as_str().unwrap()]);
    receiver
        .until("the event under the newest secret", limit, taken(4))
        .await;

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
