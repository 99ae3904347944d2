//! The durable sync end to end, once per edge runtime: the edge goes down, the origin takes a
//! burst of writes (twelve title edits of one video, a logout everywhere), the edge comes back
//! with its stored state, and every change arrives through the outbox in order: the title the
//! edge serves only moves forward and ends at the last edit, and the revoked token is refused.

use std::time::{Duration, Instant};

use e2e::{Runtime, DEMO_EMAIL, VIEWER_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const EDITS: usize = 12;

async fn title_at_edge(c: &Client, e: &str) -> String {
    let r = c
        .get(format!("{e}/v1/videos/demo-free/playback"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["title"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn edit_number(title: &str) -> usize {
    title
        .strip_prefix("Edit ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn flow(runtime: Runtime) {
    let (origin, mut edge) = e2e::stack(runtime).await;
    let e = edge.url.clone();
    let c = e2e::client();
    let token = |v: Value| v["access_token"].as_str().unwrap().to_owned();
    let creator = token(e2e::login(&c, &e, DEMO_EMAIL).await);
    let viewer = token(e2e::login(&c, &e, VIEWER_EMAIL).await);
    assert_eq!(title_at_edge(&c, &e).await, "Test pattern (public)");

    edge.kill();
    // Written at the origin while the edge is down (as through another edge).
    let o = origin.as_edge().await;
    for i in 1..=EDITS {
        let r = c
            .patch(format!("{o}/v1/videos/demo-free"))
            .bearer_auth(&creator)
            .json(&json!({"title": format!("Edit {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = c
        .post(format!("{o}/v1/auth/logout"))
        .bearer_auth(&viewer)
        .json(&json!({"everywhere": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    edge.restart().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let n = edit_number(&title_at_edge(&c, &e).await);
        if seen.last() != Some(&n) {
            seen.push(n);
        }
        if n == EDITS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge still serves edit {n} (saw {seen:?}):\n{}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the title went backwards: {seen:?}"
    );
    // The revocation was queued after the edits, so it comes in the same batch or a later one,
    // and the edge writes a batch's records one by one: it may land a moment after the last
    // edit shows. Until then the token still works; any other answer is wrong.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c
            .get(format!("{e}/v1/videos/demo-free/playback"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(r.status(), StatusCode::OK, "until revoked, the token plays");
        assert!(
            Instant::now() < deadline,
            "the revocation never arrived:\n{}",
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Deleting a video through the edge: its tombstone reaches the edge, playback is a 404.
    let playback = format!("{e}/v1/videos/demo-geo/playback");
    let r = c.get(&playback).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
        "France only"
    );
    let r = c
        .delete(format!("{e}/v1/videos/demo-geo"))
        .bearer_auth(&creator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", edge.log());
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.get(&playback).send().await.unwrap().status() != StatusCode::NOT_FOUND {
        assert!(Instant::now() < deadline, "the tombstone never arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sync_survives_edge_downtime_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn sync_survives_edge_downtime_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn sync_survives_edge_downtime_under_spin_up() {
    flow(Runtime::SpinUp).await;
}
