//! Moderation through the edge on every runtime: a viewer reports the public demo, a moderator
//! finds it in the queue and takes it down while a player holds it, and the player's next
//! segment is refused within 2 s; the watch page's details say the reason; a suspension ends
//! the creator's session at the edge and a reinstatement brings the videos back; an admin reads
//! it all in the audit log.

use std::time::{Duration, Instant};

use e2e::{token, Edge, Origin, Runtime, ADMIN_EMAIL, DEMO_EMAIL, MODERATOR_EMAIL, VIEWER_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// How soon a moderator's action must reach the edge.
const REACH: Duration = Duration::from_secs(2);

async fn post(c: &Client, url: String, token: &str, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What a player holds of the public demo: the URLs of its first rendition's segments, the
/// first of them played.
async fn hold_player(c: &Client, e: &str) -> Vec<String> {
    let (_, segments) = e2e::play_first_variant(c, e, "demo-free").await;
    assert!(segments.len() >= 2, "{segments:?}");
    let first = c.get(&segments[0]).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK, "the player plays");
    segments
}

/// Polls `check` until it holds; panics if that takes longer than [`REACH`]. Returns the time.
async fn within_reach(what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < REACH, "{what}: not within {REACH:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn flow(runtime: Runtime) {
    let edge_port = e2e::free_port();
    let origin = Origin::start(edge_port).await;
    // Six sign-ins from this one address: more than the tests' default allows.
    let edge = Edge::start_with(
        runtime,
        &origin,
        edge_port,
        &[("RATE_LIMITS", "login=20/600")],
    )
    .await;
    let e = edge.url.as_str();
    let c = e2e::client();
    let viewer = token(&c, e, VIEWER_EMAIL).await;
    let moderator = token(&c, e, MODERATOR_EMAIL).await;
    let admin = token(&c, e, ADMIN_EMAIL).await;

    // Reported, and in the queue, with its context.
    let (s, filed) = post(
        &c,
        format!("{e}/v1/reports"),
        &viewer,
        json!({"video": "demo-free", "reason": "copyright", "note": "my song"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{filed}");
    let r = c
        .get(format!("{e}/v1/moderation/queue"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "viewers see no queue");
    let queue = e2e::get_json_as(&c, &format!("{e}/v1/moderation/queue"), &moderator).await;
    assert_eq!(queue["items"][0]["target"], json!({"video": "demo-free"}));
    assert_eq!(queue["items"][0]["notes"][0]["note"], "my song");

    // A player holds the video; the takedown reaches the edge before its next segment.
    let segments = hold_player(&c, e).await;
    let (s, acted) = post(
        &c,
        format!("{e}/v1/moderation/actions"),
        &moderator,
        json!({"action": "take_down", "video": "demo-free", "reason": "a copyright claim"}),
    )
    .await;
    assert_eq!(
        (s, &acted["reports"]),
        (StatusCode::OK, &json!(1)),
        "{acted}"
    );
    let took = within_reach("the next segment refused", async || {
        let r = c.get(&segments[1]).send().await.unwrap();
        r.status() == StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS
    })
    .await;
    println!("{runtime:?}: the next segment refused {took:?} after the takedown");
    let r = c
        .get(format!("{e}/v1/videos/demo-free"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    let said: Value = r.json().await.unwrap();
    assert_eq!(
        said["message"], "a copyright claim",
        "the viewer is told why"
    );

    // A suspension: the creator's session ends at the edge; a reinstatement restores the
    // videos it took down (the one taken down before stays down).
    let creator = token(&c, e, DEMO_EMAIL).await;
    let me = e2e::get_json_as(&c, &format!("{e}/v1/me"), &creator).await;
    let creator_id = me["id"].as_str().unwrap().to_owned();
    let (s, acted) = post(
        &c,
        format!("{e}/v1/moderation/actions"),
        &moderator,
        json!({"action": "suspend", "user": creator_id, "reason": "repeat infringer"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{acted}");
    within_reach("the creator's token refused at the edge", async || {
        let r = c
            .get(format!("{e}/v1/me"))
            .bearer_auth(&creator)
            .send()
            .await
            .unwrap();
        r.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    let r = c
        .post(format!("{e}/v1/auth/login"))
        .json(&json!({"email": DEMO_EMAIL, "password": e2e::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a suspended account cannot sign in"
    );
    let (s, acted) = post(
        &c,
        format!("{e}/v1/moderation/actions"),
        &moderator,
        json!({"action": "reinstate", "user": creator_id, "reason": "counter-notice"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{acted}");
    let restored = acted["videos"].as_array().unwrap();
    assert!(
        !restored.is_empty() && !restored.contains(&json!("demo-free")),
        "{acted}"
    );
    token(&c, e, DEMO_EMAIL).await;

    // The audit log, through the edge, for admins.
    let r = c
        .get(format!("{e}/v1/moderation/log"))
        .bearer_auth(&moderator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let log = e2e::get_json_as(&c, &format!("{e}/v1/moderation/log"), &admin).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["reinstate", "suspend", "take_down"]);
}

#[tokio::test]
async fn moderation_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn moderation_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn moderation_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
