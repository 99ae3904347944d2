//! Ad campaigns: the admin's API and its checks, the catalog the edge is sent after every
//! change, tracking events counted once per ad view, and the daily cap.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::ads::{AdClaims, AdEvent};
use shared_wasm::beacon::view_id;
use shared_wasm::jwt::Role;
use shared_wasm::record::{AdCatalog, VideoState, Visibility};
use shared_wasm::VideoId;

use crate::helpers::{json_of, now, TestApp};

const CREATIVE: &str = "ad-creative";

/// An admin (token), and a public 8 s creative.
async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let (admin, token) = app.user("admin@example.com", Role::Admin).await;
    app.public_video(CREATIVE, Some(&admin)).await;
    sqlx::query("UPDATE videos SET duration_ms = 8000 WHERE id = $1")
        .bind(CREATIVE)
        .execute(&app.state.db)
        .await
        .unwrap();
    (app, token)
}

fn campaign(daily_cap: u64) -> Value {
    json!({
        "name": "Spring sale",
        "creative": CREATIVE,
        "click_url": "https://advertiser.example/spring?from=ad",
        "countries": ["fr", "BE", "FR"],
        "categories": ["music"],
        "ends_at": now() + 86_400 * 30,
        "daily_cap": daily_cap,
        "cpm_minor": 2_500,
    })
}

async fn create(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    json_of(app.post("/v1/ads/campaigns", Some(token), body).await).await
}

/// The newest catalog the outbox holds for the edge.
async fn last_catalog(app: &TestApp) -> AdCatalog {
    let (value,): (Vec<u8>,) = sqlx::query_as(
        "SELECT value FROM edge_outbox WHERE key = 'ads:catalog' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    AdCatalog::from_cbor(&value).unwrap()
}

#[tokio::test]
async fn campaigns_are_checked_and_the_edge_is_sent_every_change() {
    let (app, admin) = setup().await;
    let (_, creator) = app.user("creator@example.com", Role::Creator).await;
    let (status, _) = create(&app, &creator, campaign(100)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    app.video_with(
        "members-only",
        None,
        Visibility::Members,
        VideoState::Ready,
        false,
    )
    .await;
    let with = |k: &str, v: Value| {
        let mut c = campaign(100);
        c[k] = v;
        c
    };
    for (body, field) in [
        (with("click_url", json!("javascript:alert(1)")), "click_url"),
        (
            with("click_url", json!("http://advertiser.example/")),
            "click_url",
        ),
        (
            with("click_url", json!("https://user:pw@advertiser.example/")),
            "click_url",
        ),
        (with("creative", json!("members-only")), "creative"),
        (with("creative", json!("no-such-video")), "creative"),
        (with("ends_at", json!(now() - 10)), "ends_at"),
        (with("daily_cap", json!(0)), "daily_cap"),
        (with("cpm_minor", json!(0)), "cpm_minor"),
        (with("countries", json!(["France"])), "countries"),
        (with("categories", json!(["Not A Slug"])), "categories"),
        (with("name", json!("  ")), "name"),
    ] {
        let (status, err) = create(&app, &admin, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {err}");
        assert_eq!(err["field"], field, "{err}");
    }
    let (status, _) = create(&app, &admin, with("price", json!(1))).await;
    assert!(status.is_client_error(), "unknown field: {status}");

    let (status, c) = create(&app, &admin, campaign(100)).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["countries"], json!(["BE", "FR"]));
    assert_eq!(c["frequency_cap"], 3);
    assert_eq!(c["figures"]["events"]["impression"], 0);
    let id = c["id"].as_str().unwrap().to_owned();
    let catalog = last_catalog(&app).await;
    assert_eq!(catalog.campaigns.len(), 1);
    assert_eq!(catalog.campaigns[0].id, id);
    assert_eq!(catalog.campaigns[0].creative.as_str(), CREATIVE);
    assert_eq!(catalog.campaigns[0].categories, vec!["music".to_owned()]);
    let first = catalog.version;

    // Paused: the edge's catalog loses it; resumed with a new price: back, at that price.
    let path = format!("/v1/ads/campaigns/{id}");
    let patch = |body: Value| app.send(Method::PATCH, &path, &admin, Some(body));
    let (status, c) = json_of(patch(json!({"status": "paused"})).await).await;
    assert_eq!(
        (status, c["status"].as_str()),
        (StatusCode::OK, Some("paused"))
    );
    let catalog = last_catalog(&app).await;
    assert!(catalog.version > first && catalog.campaigns.is_empty());
    let (status, _) = json_of(patch(json!({"status": "active", "cpm_minor": 4000})).await).await;
    assert_eq!(status, StatusCode::OK);
    let catalog = last_catalog(&app).await;
    assert_eq!(catalog.campaigns[0].cpm_minor, 4000);
    let (status, err) = json_of(patch(json!({"daily_cap": -1})).await).await;
    assert_eq!(
        (status, &err["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("daily_cap"))
    );

    // The edge's read-through gets the same catalog.
    let r = app.edge_get("/internal/ads/catalog").await;
    assert_eq!(r.status(), StatusCode::OK);
    let read = AdCatalog::from_cbor(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(read, catalog);

    let (status, list) = json_of(app.get_as("/v1/ads/campaigns", &admin).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, _) = json_of(app.get_as("/v1/ads/campaigns/nope", &admin).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // At most 32 run at once.
    for _ in 1..shared_wasm::record::MAX_CAMPAIGNS {
        assert_eq!(
            create(&app, &admin, campaign(100)).await.0,
            StatusCode::CREATED
        );
    }
    let (status, err) = create(&app, &admin, campaign(100)).await;
    assert_eq!(
        (status, &err["error"]),
        (StatusCode::CONFLICT, &json!("too_many_campaigns"))
    );
}

fn ad_view(n: u8, campaign: &str) -> AdClaims {
    AdClaims {
        ad_view: view_id([n; 16]),
        campaign: campaign.into(),
        video: VideoId::parse("some-video").unwrap(),
        viewer: format!("a:viewer{n}"),
        country: None,
        issued: now(),
        expires: now() + 3600,
    }
}

async fn track(app: &TestApp, ad: &AdClaims, event: AdEvent) -> StatusCode {
    let body = json!({"ad": ad, "event": event, "received_at": now()});
    app.edge_post("/internal/ads/events", &body).await.status()
}

#[tokio::test]
async fn tracking_counts_once_per_ad_view_and_the_daily_cap_pauses_until_midnight() {
    let (app, admin) = setup().await;
    let (_, c) = create(&app, &admin, campaign(2)).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let before = last_catalog(&app).await.version;

    // One ad view played to the end, its tracking sent twice over.
    let a = ad_view(1, &id);
    for _ in 0..2 {
        for e in [
            AdEvent::Impression,
            AdEvent::FirstQuartile,
            AdEvent::Midpoint,
            AdEvent::ThirdQuartile,
            AdEvent::Complete,
        ] {
            assert_eq!(track(&app, &a, e).await, StatusCode::NO_CONTENT);
        }
    }
    assert_eq!(last_catalog(&app).await.version, before, "under the cap");
    // A second viewer's impression reaches the cap of 2: paused until the next UTC midnight.
    let b = ad_view(2, &id);
    assert_eq!(
        track(&app, &b, AdEvent::Impression).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(track(&app, &b, AdEvent::Skip).await, StatusCode::NO_CONTENT);
    let catalog = last_catalog(&app).await;
    let midnight = (now() / 86_400 + 1) * 86_400;
    assert!(catalog.version > before);
    assert_eq!(catalog.campaigns[0].paused_until, midnight);
    // An ad served before the pause reached the edge still counts (and pays), without a
    // second republication.
    let late = ad_view(3, &id);
    assert_eq!(
        track(&app, &late, AdEvent::Impression).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(last_catalog(&app).await.version, catalog.version);

    let (status, c) = json_of(app.get_as(&format!("/v1/ads/campaigns/{id}"), &admin).await).await;
    assert_eq!(status, StatusCode::OK);
    let f = &c["figures"];
    assert_eq!(
        f["events"],
        json!({"impression": 3, "first_quartile": 1, "midpoint": 1, "third_quartile": 1,
               "complete": 1, "skip": 1, "click": 0})
    );
    assert_eq!(f["impressions_today"], 3);
    // Three impressions at 25.00 a thousand: 7.5 minor units, rounded down.
    assert_eq!(f["spend_minor"], 7);
    assert_eq!(c["paused_until"], midnight);

    // A higher cap lifts today's pause; a campaign an admin paused counts nothing more, even
    // from ads served before.
    let path = format!("/v1/ads/campaigns/{id}");
    let (status, c) = json_of(
        app.send(Method::PATCH, &path, &admin, Some(json!({"daily_cap": 10})))
            .await,
    )
    .await;
    assert_eq!((status, &c["paused_until"]), (StatusCode::OK, &json!(0)));
    assert_eq!(last_catalog(&app).await.campaigns[0].paused_until, 0);
    let before_pause = ad_view(5, &id);
    app.send(
        Method::PATCH,
        &path,
        &admin,
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(
        track(&app, &before_pause, AdEvent::Impression).await,
        StatusCode::NO_CONTENT
    );
    let (_, c) = json_of(app.get_as(&path, &admin).await).await;
    assert_eq!(c["figures"]["events"]["impression"], 3);

    // An unknown campaign, a bad body.
    assert_eq!(
        track(&app, &ad_view(4, "ad_nope"), AdEvent::Impression).await,
        StatusCode::NOT_FOUND
    );
    let r = app
        .edge_post(
            "/internal/ads/events",
            &json!({"ad": a, "event": "teleport", "received_at": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
