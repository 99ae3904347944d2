//! Playback analytics: beacons at the ingest, the rollup, and the creator's statistics, with a
//! worked example whose every figure is counted by hand.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::beacon::{view_id, Device, ViewClaims};
use shared_wasm::jwt::Role;
use shared_wasm::{CountryCode, VideoId};

use crate::helpers::{json_of, now, TestApp};
use origin::analytics::rollup::batch_once;

const VIDEO: &str = "stats-video";

/// Where the events go: the database, or ClickHouse.
#[derive(Clone, Copy, PartialEq)]
enum Store {
    Database,
    ClickHouse,
}

/// A creator with a public 60 s video, the rollup left to the test: `(app, creator's token)`.
async fn setup() -> (TestApp, String) {
    setup_on(Store::Database).await
}

async fn setup_on(store: Store) -> (TestApp, String) {
    let app = TestApp::spawn_tweaked(|s| {
        s.analytics.rollup = false;
        if store == Store::ClickHouse {
            s.analytics.clickhouse = Some(e2e::clickhouse());
        }
    })
    .await;
    let (creator, token) = app.user("creator@example.com", Role::Creator).await;
    app.public_video(VIDEO, Some(&creator)).await;
    sqlx::query("UPDATE videos SET duration_ms = 60000 WHERE id = $1")
        .bind(VIDEO)
        .execute(&app.state.db)
        .await
        .unwrap();
    (app, token)
}

fn claims(view: u8, viewer: &str, country: Option<&str>, device: Device, at: u64) -> ViewClaims {
    ViewClaims {
        view: view_id([view; 16]),
        video: VideoId::parse(VIDEO).unwrap(),
        viewer: viewer.into(),
        country: country.map(|c| CountryCode::parse(c).unwrap()),
        device,
        issued: at,
        expires: at + 3600,
    }
}

async fn ingest(app: &TestApp, view: &ViewClaims, received_at: u64, events: Value) -> StatusCode {
    let body = json!({"view": view, "received_at": received_at, "events": events});
    app.edge_post("/internal/beacons", &body).await.status()
}

/// Rolls up everything pending, in batches of 4 so views span batches (ClickHouse: once its
/// inserts have settled).
async fn roll_up(app: &TestApp) {
    settle(app).await;
    while batch_once(&app.state.db, &app.state.events, 4)
        .await
        .unwrap()
        > 0
    {}
}

async fn stats(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    json_of(
        app.get_as(&format!("/v1/creator/stats?{query}"), token)
            .await,
    )
    .await
}

#[tokio::test]
async fn a_scripted_session_gives_exact_counts_and_duplicates_change_nothing() {
    scripted_session(Store::Database).await;
}

#[tokio::test]
async fn a_scripted_session_gives_exact_counts_and_duplicates_change_nothing_on_clickhouse() {
    scripted_session(Store::ClickHouse).await;
}

async fn scripted_session(store: Store) {
    let (app, token) = setup_on(store).await;
    let t0 = now();
    // Alice in France on a desktop: starts in 800 ms, plays 40 s with one 500 ms stall.
    let a = claims(1, "u:alice", Some("FR"), Device::Desktop, t0);
    let a_events = json!([
        {"type": "start", "seq": 0, "startup_ms": 800},
        {"type": "heartbeat", "seq": 1, "played": [[0, 10000]]},
        {"type": "heartbeat", "seq": 2, "played": [[10000, 20000]]},
        {"type": "rebuffer", "seq": 3, "ms": 500},
        {"type": "rendition", "seq": 4, "height": 720},
        {"type": "heartbeat", "seq": 5, "played": [[20000, 35000]]},
        {"type": "end", "seq": 6, "played": [[35000, 40000]]},
    ]);
    assert_eq!(
        ingest(&app, &a, t0 + 40, a_events.clone()).await,
        StatusCode::NO_CONTENT
    );
    // The same beacon again (a retry): stored once.
    assert_eq!(
        ingest(&app, &a, t0 + 41, a_events).await,
        StatusCode::NO_CONTENT
    );
    // Alice again ten minutes later, 30 s: a play, not a second view within 30 minutes.
    let b = claims(2, "u:alice", Some("FR"), Device::Desktop, t0 + 600);
    let b_events = json!([{"type": "heartbeat", "seq": 0, "played": [[0, 30000]]}]);
    assert_eq!(
        ingest(&app, &b, t0 + 630, b_events).await,
        StatusCode::NO_CONTENT
    );
    // Someone signed out on a phone, country unknown: 12 s after a 3 s start.
    let c = claims(3, "a:pseudonym", None, Device::Mobile, t0);
    let c_events = json!([
        {"type": "start", "seq": 0, "startup_ms": 3000},
        {"type": "heartbeat", "seq": 1, "played": [[0, 12000]]},
        {"type": "error", "seq": 2, "code": "media_error"},
    ]);
    assert_eq!(
        ingest(&app, &c, t0 + 15, c_events).await,
        StatusCode::NO_CONTENT
    );
    roll_up(&app).await;

    let range = format!("from={}&to={}&video={VIDEO}", t0 - 3600, t0 + 7200);
    let (status, s) = stats(&app, &token, &range).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    let t = &s["totals"];
    assert_eq!(t["plays"], 3);
    assert_eq!(t["views"], 1);
    assert_eq!(t["unique_viewers"], 1);
    assert_eq!(t["watch_ms"], 40_000 + 30_000 + 12_000);
    assert_eq!(t["average_view_ms"], 82_000 / 3);
    assert_eq!(t["rebuffers"], 1);
    assert_eq!(t["rebuffer_ratio"], 500.0 / 82_500.0);
    assert_eq!(t["rendition_switches"], 1);
    assert_eq!(t["errors"], 1);
    assert_eq!(t["startup_ms"], json!({"p50": 1000, "p95": 3000}));
    // Points every 3 s: alice's 40 s covers 0–39 s (14 points), her 30 s 0–29 s (10), the
    // phone's 12 s 0–11 s (4).
    let expected: Vec<f64> = (0..20)
        .map(|k| match k {
            0..=3 => 1.0,
            4..=9 => 2.0 / 3.0,
            10..=13 => 1.0 / 3.0,
            _ => 0.0,
        })
        .collect();
    assert_eq!(s["retention"], json!(expected));
    let countries = json!([
        {"country": null, "plays": 1, "views": 0, "watch_ms": 12_000},
        {"country": "FR", "plays": 2, "views": 1, "watch_ms": 70_000},
    ]);
    assert_eq!(s["countries"], countries);
    let devices = json!([
        {"device": "desktop", "plays": 2, "views": 1, "watch_ms": 70_000},
        {"device": "mobile", "plays": 1, "views": 0, "watch_ms": 12_000},
    ]);
    assert_eq!(s["devices"], devices);
    assert_eq!(s["granularity"], "hour");
    let series_views: i64 = s["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["views"].as_i64().unwrap())
        .sum();
    assert_eq!(series_views, 1);

    // Rolling up again changes nothing; a view of alice's 31 minutes after her first counts.
    roll_up(&app).await;
    assert_eq!(stats(&app, &token, &range).await.1, s);
    let d = claims(4, "u:alice", Some("FR"), Device::Desktop, t0 + 1800);
    let d_events = json!([{"type": "heartbeat", "seq": 0, "played": [[0, 30000]]}]);
    assert_eq!(
        ingest(&app, &d, t0 + 1900, d_events).await,
        StatusCode::NO_CONTENT
    );
    roll_up(&app).await;
    let (_, s) = stats(&app, &token, &range).await;
    let (_, admin) = app.user("admin@example.com", Role::Admin).await;
    let platform = format!("/v1/admin/stats?from={}&to={}", t0 - 3600, t0 + 7200);
    let (status, all) = json_of(app.get_as(&platform, &admin).await).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        all["totals"], s["totals"],
        "one creator's videos are all there is"
    );
    assert_eq!(all["retention"], Value::Null);
    let (status, _) = json_of(app.get_as(&platform, &token).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a creator is not an admin");
    assert_eq!(
        (
            s["totals"]["views"].clone(),
            s["totals"]["unique_viewers"].clone()
        ),
        (json!(2), json!(1))
    );
}

#[tokio::test]
async fn what_one_view_claims_is_capped_by_the_clock_and_the_video() {
    let (app, token) = setup().await;
    let t0 = now();
    // Received 10 s after the playback was allowed: at most (10 + 60) × 2 s can have played,
    // at most 70 s can have stalled; one fatal error.
    let fast = claims(5, "u:bob", None, Device::Desktop, t0);
    let mut events: Vec<Value> = (0..5)
        .map(|i| json!({"type": "heartbeat", "seq": i, "played": [[0, 60000]]}))
        .collect();
    events.extend((5..10).map(|i| json!({"type": "rebuffer", "seq": i, "ms": 600000})));
    events.extend((10..13).map(|i| json!({"type": "error", "seq": i, "code": "media_error"})));
    assert_eq!(
        ingest(&app, &fast, t0 + 10, json!(events)).await,
        StatusCode::NO_CONTENT
    );
    // An hour on, another view claims the 60 s video ten times over: four count.
    let long = claims(6, "u:dan", None, Device::Desktop, t0);
    let events: Vec<Value> = (0..10)
        .map(|i| json!({"type": "heartbeat", "seq": i, "played": [[0, 60000]]}))
        .collect();
    assert_eq!(
        ingest(&app, &long, t0 + 3600, json!(events)).await,
        StatusCode::NO_CONTENT
    );
    roll_up(&app).await;
    let range = format!("from={}&to={}", t0 - 3600, t0 + 7200);
    let (_, s) = stats(&app, &token, &range).await;
    let t = &s["totals"];
    assert_eq!(t["watch_ms"], 140_000 + 240_000, "{s}");
    assert_eq!(
        (t["rebuffers"].clone(), t["errors"].clone()),
        (json!(5), json!(1))
    );
    assert_eq!(t["rebuffer_ratio"], 70_000.0 / (380_000.0 + 70_000.0));
    assert_eq!(s["retention"], Value::Null, "only for one video");
}

#[tokio::test]
async fn bad_beacons_and_other_peoples_statistics_are_refused() {
    let (app, token) = setup().await;
    let t0 = now();
    let v = claims(6, "u:carol", None, Device::Desktop, t0);
    // Past the end of the 60 s video (2 s of slack), unknown fields, an unknown video.
    let past = json!([{"type": "heartbeat", "seq": 0, "played": [[0, 62001]]}]);
    assert_eq!(ingest(&app, &v, t0, past).await, StatusCode::BAD_REQUEST);
    let extra = json!([{"type": "start", "seq": 0, "startup_ms": 1, "views": 1000}]);
    assert_eq!(ingest(&app, &v, t0, extra).await, StatusCode::BAD_REQUEST);
    let mut elsewhere = v.clone();
    elsewhere.video = VideoId::parse("no-such-video").unwrap();
    let fine = json!([{"type": "start", "seq": 0, "startup_ms": 1}]);
    assert_eq!(
        ingest(&app, &elsewhere, t0, fine.clone()).await,
        StatusCode::NOT_FOUND
    );
    // Without the edge's proof.
    let body = json!({"view": v, "received_at": t0, "events": fine});
    let r = app
        .client
        .post(format!("{}/internal/beacons", app.origin_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM playback_events")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(pending, 0);

    let (_, other) = app.user("other@example.com", Role::Creator).await;
    let (status, body) = stats(&app, &other, &format!("video={VIDEO}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (_, viewer) = app.user("viewer@example.com", Role::User).await;
    assert_eq!(stats(&app, &viewer, "").await.0, StatusCode::FORBIDDEN);
    for bad in [
        "from=10&to=5",
        "from=0&to=99999999",
        "video=a%20b",
        "until=5",
    ] {
        let (status, body) = stats(&app, &token, bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn trending_counts_recent_watch_time() {
    let (app, _) = setup().await;
    app.public_video("liked", None).await;
    let (_, fan) = app.user("fan@example.com", Role::User).await;
    let r = app
        .send(
            reqwest::Method::PUT,
            "/v1/videos/liked/reaction",
            &fan,
            Some(json!({"value": "like"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let order = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        order(app.get_json("/v1/feeds/trending").await),
        ["liked", VIDEO]
    );
    // Twenty minutes watched in the last hours count as two likes: the watched video leads.
    let t0 = now();
    for i in 0..20u8 {
        let viewer = format!("u:watcher{i}");
        let v = claims(10 + i, &viewer, None, Device::Desktop, t0 - 600);
        let events = json!([{"type": "heartbeat", "seq": 0, "played": [[0, 60000]]}]);
        assert_eq!(ingest(&app, &v, t0, events).await, StatusCode::NO_CONTENT);
    }
    roll_up(&app).await;
    assert_eq!(
        order(app.get_json("/v1/feeds/trending").await),
        [VIDEO, "liked"]
    );
}

#[tokio::test]
async fn an_unreadable_stored_event_is_skipped_not_a_stop() {
    let (app, token) = setup().await;
    let t0 = now();
    sqlx::query(
        "INSERT INTO playback_events
           (view_id, seq, video_id, viewer, country, device, issued_at, received_at, kind, data)
         VALUES ('damaged', 0, $1, 'u:x', '', 'desktop', $2, $2, 'heartbeat', '{not json')",
    )
    .bind(VIDEO)
    .bind(t0 as i64)
    .execute(&app.state.db)
    .await
    .unwrap();
    let v = claims(7, "u:erin", None, Device::Desktop, t0);
    let events = json!([{"type": "heartbeat", "seq": 0, "played": [[0, 40000]]}]);
    assert_eq!(
        ingest(&app, &v, t0 + 40, events).await,
        StatusCode::NO_CONTENT
    );
    roll_up(&app).await;
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM playback_events WHERE pending = 1")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    let (_, s) = stats(
        &app,
        &token,
        &format!("from={}&to={}", t0 - 3600, t0 + 3600),
    )
    .await;
    assert_eq!(
        (
            s["totals"]["views"].clone(),
            s["totals"]["watch_ms"].clone()
        ),
        (json!(1), json!(40_000))
    );
}

/// Waits until the rollup may read what ClickHouse took so far (nothing on the database).
async fn settle(app: &TestApp) {
    if let Some(ch) = &app.state.settings.analytics.clickhouse {
        tokio::time::sleep(std::time::Duration::from_secs(ch.settle_secs + 1)).await;
    }
}

/// Rows of the test's ClickHouse table, counted through its HTTP interface.
async fn rows_in_clickhouse(app: &TestApp) -> u64 {
    let ch = app.state.settings.analytics.clickhouse.as_ref().unwrap();
    let count = app
        .client
        .post(&ch.url)
        .body(format!(
            "SELECT count() FROM {}.playback_events",
            ch.database
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    count.trim().parse().unwrap()
}

#[tokio::test]
async fn clickhouse_keeps_a_replay_and_the_rollup_counts_it_once_reading_on_from_its_cursor() {
    let (app, token) = setup_on(Store::ClickHouse).await;
    let t0 = now();
    let v = claims(8, "u:frank", Some("DE"), Device::Tv, t0);
    let first = json!([
        {"type": "start", "seq": 0, "startup_ms": 400},
        {"type": "heartbeat", "seq": 1, "played": [[0, 20000]]},
    ]);
    assert_eq!(
        ingest(&app, &v, t0 + 20, first.clone()).await,
        StatusCode::NO_CONTENT
    );
    // A store that lets inserts settle for an hour reads none of these yet.
    let settings = app.state.settings.analytics.clickhouse.clone().unwrap();
    let patient =
        origin::analytics::events::Events::open(Some(&origin::settings::ClickHouseSettings {
            settle_secs: 3600,
            ..settings.clone()
        }))
        .await
        .unwrap();
    assert_eq!(batch_once(&app.state.db, &patient, 100).await.unwrap(), 0);
    roll_up(&app).await;

    // The first beacon again (after it was rolled up), with the next one: ClickHouse keeps all
    // four rows, the view counts the replay's events once, and a fresh store (another process,
    // or this one restarted) reads on from the cursor, not from the start.
    let second = json!([
        {"type": "heartbeat", "seq": 1, "played": [[0, 20000]]},
        {"type": "start", "seq": 0, "startup_ms": 400},
        {"type": "end", "seq": 2, "played": [[20000, 35000]]},
    ]);
    assert_eq!(
        ingest(&app, &v, t0 + 25, first).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ingest(&app, &v, t0 + 40, second).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(rows_in_clickhouse(&app).await, 2 + 2 + 3);
    let restarted = origin::analytics::events::Events::open(Some(&settings))
        .await
        .unwrap();
    settle(&app).await;
    let mut taken = 0;
    loop {
        let n = batch_once(&app.state.db, &restarted, 2).await.unwrap();
        if n == 0 {
            break;
        }
        taken += n;
    }
    assert_eq!(taken, 5, "what came after the cursor");
    roll_up(&app).await;

    let (_, s) = stats(
        &app,
        &token,
        &format!("from={}&to={}&video={VIDEO}", t0 - 3600, t0 + 3600),
    )
    .await;
    let t = &s["totals"];
    assert_eq!(
        (
            t["plays"].clone(),
            t["views"].clone(),
            t["watch_ms"].clone()
        ),
        (json!(1), json!(1), json!(35_000)),
        "{s}"
    );
    assert_eq!(t["startup_ms"], json!({"p50": 500, "p95": 500}));
    let seqs: String = sqlx::query_scalar("SELECT seqs FROM playback_views WHERE view_id = $1")
        .bind(&v.view)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(seqs, "0-2");
}

#[tokio::test]
async fn old_events_and_views_go_but_not_before_their_months_earnings_close() {
    retention(Store::Database).await;
}

#[tokio::test]
async fn old_events_and_views_go_but_not_before_their_months_earnings_close_on_clickhouse() {
    retention(Store::ClickHouse).await;
}

async fn retention(store: Store) {
    use origin::analytics::retention::{sweep, Swept};
    use origin::earnings::Month;
    let (app, _) = setup_on(store).await;
    let t0 = now();
    let day = 86_400;
    // Earnings began 200 days ago; a view 100 days ago, another now.
    sqlx::query("UPDATE earnings_start SET started_at = $1")
        .bind((t0 - 200 * day) as i64)
        .execute(&app.state.db)
        .await
        .unwrap();
    let old = claims(9, "u:gina", None, Device::Desktop, t0 - 100 * day);
    let events = json!([
        {"type": "start", "seq": 0, "startup_ms": 300},
        {"type": "heartbeat", "seq": 1, "played": [[0, 40000]]},
    ]);
    assert_eq!(
        ingest(&app, &old, t0 - 100 * day + 40, events.clone()).await,
        StatusCode::NO_CONTENT
    );
    let new = claims(10, "u:hugo", None, Device::Desktop, t0);
    assert_eq!(
        ingest(&app, &new, t0 + 40, events).await,
        StatusCode::NO_CONTENT
    );
    // ClickHouse drops months by its own time of the insert: a row as if stored 130 days ago
    // (its whole month ended over 90 days ago, whatever the date).
    let ch = app.state.settings.analytics.clickhouse.clone();
    if let Some(ch) = &ch {
        let insert = format!(
            "INSERT INTO {}.playback_events (inserted, view_id, seq, video_id, viewer, country,
               device, issued_at, received_at, kind, data)
             SELECT toDateTime({t}), 'long-ago', 0, '{VIDEO}', 'u:ida', '', 'desktop', {t}, {t},
               'start', '{{\"type\":\"start\",\"seq\":0,\"startup_ms\":300}}'",
            ch.database,
            t = t0 - 130 * day,
        );
        let r = app.client.post(&ch.url).body(insert).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    // Nothing goes before the rollup has taken it (the database's pending events; ClickHouse's
    // months the cursor has not passed).
    let mut settings = app.state.settings.analytics.clone();
    settings.views_days = 30;
    let swept = sweep(&app.state.db, &app.state.events, &settings, t0)
        .await
        .unwrap();
    assert_eq!(swept, Swept::default());
    roll_up(&app).await;
    let views = || async {
        let mut ids: Vec<String> = sqlx::query_scalar("SELECT view_id FROM playback_views")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
        ids.sort();
        ids
    };
    let mut all = vec![old.view.clone(), new.view.clone()];
    if ch.is_some() {
        all.push("long-ago".into());
        all.sort();
    }
    assert_eq!(views().await, all);

    // Events older than 90 days go (ClickHouse: the month of the row stored long ago); views are
    // kept 30 days here, but the old ones' months are not closed yet.
    let swept = sweep(&app.state.db, &app.state.events, &settings, t0)
        .await
        .unwrap();
    assert_eq!(
        swept,
        Swept {
            events: if ch.is_some() { 1 } else { 2 },
            views: 0
        }
    );
    if ch.is_some() {
        assert_eq!(rows_in_clickhouse(&app).await, 4, "this month's rows stay");
    } else {
        let kept: Vec<String> = sqlx::query_scalar("SELECT DISTINCT view_id FROM playback_events")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
        assert_eq!(kept, std::slice::from_ref(&new.view));
    }

    // Once the months up to the old view's are closed, its views go; the new one stays.
    let mut month = Month::of(t0 - 200 * day);
    while month <= Month::of(t0 - 100 * day) {
        origin::earnings::close(&app.state.db, &app.state.settings.earnings, month, t0)
            .await
            .unwrap();
        month = month.next();
    }
    let swept = sweep(&app.state.db, &app.state.events, &settings, t0)
        .await
        .unwrap();
    assert_eq!(
        swept,
        Swept {
            events: 0,
            views: all.len() as u64 - 1
        }
    );
    assert_eq!(views().await, std::slice::from_ref(&new.view));
    // Nothing else is old enough.
    let swept = sweep(&app.state.db, &app.state.events, &settings, t0)
        .await
        .unwrap();
    assert_eq!(swept, Swept::default());
}

#[tokio::test]
async fn a_gathered_batch_stores_the_beacons_that_fit_and_names_the_others() {
    let (app, token) = setup().await;
    let t0 = now();
    let good = claims(11, "u:jo", Some("NL"), Device::Desktop, t0);
    let mut gone = claims(12, "u:kim", None, Device::Desktop, t0);
    gone.video = VideoId::parse("no-such-video").unwrap();
    let late = claims(13, "u:lee", None, Device::Mobile, t0);
    let played = json!([{"type": "heartbeat", "seq": 0, "played": [[0, 31000]]}]);
    let past_the_end = json!([{"type": "heartbeat", "seq": 0, "played": [[0, 70000]]}]);
    let beacon = |view: &ViewClaims, events: &Value| json!({"view": view, "received_at": t0 + 31, "events": events});
    let body = json!({"beacons": [
        beacon(&good, &played),
        beacon(&gone, &played),
        beacon(&late, &past_the_end),
    ]});
    let r = app.edge_post("/internal/beacons/batch", &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["events"], 1);
    assert_eq!(
        answer["refused"][0],
        json!({"beacon": 1, "error": "not_found"})
    );
    assert_eq!(answer["refused"][1]["beacon"], 2);
    assert_eq!(answer["refused"][1]["error"], "invalid_beacon");
    assert_eq!(answer["refused"].as_array().unwrap().len(), 2);
    roll_up(&app).await;
    let (_, s) = stats(
        &app,
        &token,
        &format!("from={}&to={}", t0 - 3600, t0 + 3600),
    )
    .await;
    assert_eq!(
        (
            s["totals"]["views"].clone(),
            s["totals"]["watch_ms"].clone()
        ),
        (json!(1), json!(31_000))
    );

    // Nothing, too many, or something else: refused whole.
    for bad in [
        json!({"beacons": []}),
        json!({"beacons": vec![beacon(&good, &played); shared_wasm::beacon::MAX_GATHERED + 1]}),
        json!({"beacons": [beacon(&good, &played)], "more": 1}),
    ] {
        let r = app.edge_post("/internal/beacons/batch", &bad).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_beacon");
    }
}
