//! Request ids and metrics: every answer carries an id (the caller's when valid), and the
//! metrics listener serves series a scraper can parse, by route template, never on the public
//! port.

use prom_text_format_parser::{Scrape, Type, ValueType};
use reqwest::StatusCode;
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;

/// The value of the sample of `metric` whose labels are exactly `labels` (for a histogram, its
/// `_count`); `None` when there is none.
pub fn sample(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let m = scrape.metrics.iter().find(|m| m.name == metric)?;
    let wanted = |t: ValueType| match m.kind {
        Type::Histogram | Type::Summary => t == ValueType::Count,
        _ => t == ValueType::Sample,
    };
    m.samples
        .iter()
        .filter(|s| wanted(s.value.value_type))
        .find(|s| {
            s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|l| l.key == *k && l.value == *v))
        })
        .map(|s| s.value.value.as_f64())
}

/// Parses an exposition, failing on any line a scraper would refuse.
pub fn parse(text: &str) -> Scrape {
    Scrape::parse(text).unwrap_or_else(|e| panic!("not the Prometheus text format: {e:?}\n{text}"))
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_a_valid_one() {
    let app = TestApp::spawn().await;
    let healthz = format!("{}/healthz", app.origin_url);
    let theirs = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let r = app
        .client
        .get(&healthz)
        .header("x-request-id", theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], theirs);
    let mut seen = Vec::new();
    for forged in [None, Some("two words"), Some(&*"x".repeat(65))] {
        let mut req = app.client.get(&healthz);
        if let Some(id) = forged {
            req = req.header("x-request-id", id);
        }
        let r = req.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(
            shared_wasm::RequestId::parse(&id).is_ok() && Some(id.as_str()) != forged,
            "{forged:?} → {id}"
        );
        seen.push(id);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "each a new one: {seen:?}");
    // Refusals too, and requests that match no route.
    let r = app
        .client
        .get(format!("{}/v1/me", app.origin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("x-request-id"));
    let r = app
        .client
        .get(format!("{}/no/such/route", app.origin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn metrics_are_scraped_from_their_own_listener_by_route_template() {
    let app = TestApp::spawn_tweaked(|s| {
        s.metrics.listen = "127.0.0.1:0".into();
        // Nothing listens there: whatever the outbox queues for that edge stays pending.
        s.sync.edges = "http://127.0.0.1:9/internal/sync".into();
        // No transcoding here (`transcode.rs` checks its series).
        s.transcode.workers = 0;
    })
    .await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    assert_eq!(
        app.login("ada@example.com", "wrong password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let dir = tempfile::tempdir().unwrap();
    let file = e2e::render_source(dir.path(), 320, 240, 1);
    let id = crate::transcode::upload(&app, &ada, file.clone()).await;
    let r = app
        .client
        .get(format!("{}/v1/feeds/home?limit=1", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.client
        .get(format!("{}/no/such/route", app.origin_url))
        .send()
        .await
        .unwrap();

    let addr = app.state.metrics.served_at().expect("the metrics listener");
    assert!(addr.ip().is_loopback());
    let r = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let scrape = parse(&text);
    let series = |metric, method, route, status| {
        let labels = [("method", method), ("route", route), ("status", status)];
        sample(&scrape, metric, &labels)
    };
    let requests = |method, route, status| series("http_requests_total", method, route, status);
    assert_eq!(requests("POST", "/v1/auth/login", "200"), Some(1.0));
    assert_eq!(requests("POST", "/v1/auth/login", "401"), Some(1.0));
    assert_eq!(requests("POST", "/v1/videos", "201"), Some(1.0));
    assert_eq!(requests("PUT", "/uploads/{ticket}", "201"), Some(1.0));
    assert_eq!(requests("GET", "/v1/feeds/home", "200"), Some(1.0));
    assert_eq!(requests("GET", "unmatched", "404"), Some(1.0));
    let latency =
        |method, route, status| series("http_request_duration_seconds", method, route, status);
    assert_eq!(latency("PUT", "/uploads/{ticket}", "201"), Some(1.0));
    assert_eq!(latency("POST", "/v1/auth/login", "200"), Some(1.0));
    // Templates, never paths: no ticket, no id, no query string.
    let mut routes: Vec<&str> = scrape
        .metrics
        .iter()
        .flat_map(|m| m.samples.iter())
        .flat_map(|s| s.labels.iter())
        .filter(|l| l.key == "route")
        .map(|l| l.value.as_str())
        .collect();
    routes.sort_unstable();
    routes.dedup();
    assert_eq!(
        routes,
        [
            "/uploads/{ticket}",
            "/v1/auth/login",
            "/v1/feeds/home",
            "/v1/videos",
            "/v1/videos/{id}/upload",
            "unmatched"
        ]
    );
    assert!(!text.contains(&id) && !text.contains("limit="), "{text}");
    assert_eq!(
        sample(&scrape, "upload_bytes_total", &[("protocol", "put")]),
        Some(file.len() as f64)
    );
    let edge = [("edge", "http://127.0.0.1:9/internal/sync")];
    let pending = sample(&scrape, "edge_sync_pending_records", &edge).expect("backlog");
    assert!(pending >= 1.0, "the new video's record waits: {pending}");
    let age = sample(&scrape, "edge_sync_oldest_pending_age_seconds", &edge).expect("age");
    assert!((0.0..3600.0).contains(&age), "{age}");
    // The queue: the upload's probe waits (no transcode workers here), and the machine's
    // upload sweep has run once at start (it is periodic, so it waits for its next time).
    let probe = [("kind", "transcode.probe")];
    assert_eq!(sample(&scrape, "jobs_due", &probe), Some(1.0));
    assert_eq!(sample(&scrape, "jobs_running", &probe), Some(0.0));
    let age = sample(&scrape, "jobs_oldest_due_age_seconds", &probe).expect("probe's wait");
    assert!((0.0..3600.0).contains(&age), "{age}");
    let sweep = [("kind", "uploads.sweep")];
    assert_eq!(
        sample(&scrape, "jobs_due", &sweep).unwrap_or(0.0)
            + sample(&scrape, "jobs_scheduled", &sweep).unwrap_or(0.0)
            + sample(&scrape, "jobs_running", &sweep).unwrap_or(0.0),
        1.0,
        "one sweep job"
    );

    // The public listener has no such page.
    let r = app
        .client
        .get(format!("{}/metrics", app.origin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_metrics_listener_unless_configured() {
    let app = TestApp::spawn().await;
    app.client
        .get(format!("{}/healthz", app.origin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(app.state.metrics.served_at(), None);
    // Still counted, for a listener to serve.
    let scrape = parse(&app.state.metrics.render().await);
    let healthz = [("method", "GET"), ("route", "/healthz"), ("status", "200")];
    assert_eq!(sample(&scrape, "http_requests_total", &healthz), Some(1.0));
}
