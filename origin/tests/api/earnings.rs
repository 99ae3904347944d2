//! Creators' earnings: a month closed once into statements, with a worked example whose every
//! amount is counted by hand (rounding included), balancing to the minor unit.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;
use shared_wasm::record::{VideoState, Visibility};

use crate::helpers::{json_of, TestApp};
use origin::earnings::{self, Month};

const MONTH: &str = "2026-10";

async fn video(app: &TestApp, id: &str, owner: &str, visibility: Visibility) {
    app.video_with(id, Some(owner), visibility, VideoState::Ready, false)
        .await;
}

async fn invoice(app: &TestApp, id: &str, amount: i64, currency: &str, paid_at: u64) {
    sqlx::query(
        "INSERT INTO billing_invoices (id, user_id, subscription_id, amount_minor, currency, paid_at)
         VALUES ($1, 'member', 'sub_1', $2, $3, $4)",
    )
    .bind(id)
    .bind(amount)
    .bind(currency)
    .bind(paid_at as i64)
    .execute(&app.state.db)
    .await
    .unwrap();
}

/// A view as the rollup leaves it: `members` says whether the video was members-only then.
async fn watched(app: &TestApp, view: &str, video: &str, ms: i64, at: u64) {
    watched_by(app, view, video, ms, at, "u:member").await;
}

async fn watched_by(app: &TestApp, view: &str, video: &str, ms: i64, at: u64, viewer: &str) {
    let hour = (at / 3600 * 3600) as i64;
    sqlx::query(
        "INSERT INTO playback_views (view_id, video_id, viewer, country, device, hour, issued_at,
             watched_ms, retention, startup_ms, rebuffers, rebuffer_ms, switches, errors,
             counted_at, members)
         VALUES ($1, $2, $5, 'FR', 'desktop', $3, $3, $4, 0, NULL, 0, 0, 0, 0, NULL,
                 (SELECT COUNT(*) FROM videos WHERE id = $2 AND visibility = 'members'))",
    )
    .bind(view)
    .bind(video)
    .bind(hour)
    .bind(ms)
    .bind(viewer)
    .execute(&app.state.db)
    .await
    .unwrap();
}

async fn ad(app: &TestApp, view: &str, event: &str, video: &str, cpm: i64, at: u64) {
    sqlx::query(
        "INSERT INTO ad_events (ad_view, event, campaign_id, video_id, viewer, country, cpm_minor,
             day, served_at, received_at)
         VALUES ($1, $2, 'ad_c', $3, 'a:someone', '', $4, $5, $6, $6)",
    )
    .bind(view)
    .bind(event)
    .bind(video)
    .bind(cpm)
    .bind((at / 86_400) as i64)
    .bind(at as i64)
    .execute(&app.state.db)
    .await
    .unwrap();
}

/// Three creators, one month of invoices, members' watch time and ad impressions, and some
/// of each that must not count: `(app, admin, [a, b, c] tokens)`.
async fn worked_example() -> (TestApp, String, [String; 3]) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user("admin@example.com", Role::Admin).await;
    let (a, a_token) = app.user("a@example.com", Role::Creator).await;
    let (b, b_token) = app.user("b@example.com", Role::Creator).await;
    let (c, c_token) = app.user("c@example.com", Role::Creator).await;
    video(&app, "a-members", &a, Visibility::Members).await;
    video(&app, "a-public", &a, Visibility::Public).await;
    video(&app, "b-members", &b, Visibility::Members).await;
    video(&app, "b-public", &b, Visibility::Public).await;
    video(&app, "c-public", &c, Visibility::Public).await;
    // A title a spreadsheet would run as a formula.
    sqlx::query("UPDATE videos SET title = '=HYPERLINK(\"x\")' WHERE id = 'a-public'")
        .execute(&app.state.db)
        .await
        .unwrap();
    let m = Month::parse(MONTH).unwrap();
    let (start, end) = (m.start(), m.end());
    // Three memberships of 9.99 paid in the month; one in dollars and one the next month do
    // not count.
    for (i, at) in [start, start + 86_400 * 10, end - 1]
        .into_iter()
        .enumerate()
    {
        invoice(&app, &format!("in_{i}"), 999, "eur", at).await;
    }
    invoice(&app, "in_usd", 500, "usd", start + 5).await;
    invoice(&app, "in_next", 999, "eur", end).await;
    // Members' watch time: A 1,000,000 ms, B 3,000,000 ms (two views). A public video's, and
    // a members video's of the month before, do not count.
    watched(&app, "w1", "a-members", 1_000_000, start + 3_600).await;
    watched(&app, "w2", "b-members", 2_000_000, start + 7_200).await;
    watched(&app, "w3", "b-members", 1_000_000, end - 60).await;
    watched(&app, "w4", "a-public", 5_000_000, start + 3_600).await;
    watched(&app, "w5", "a-members", 9_000_000, start - 3_600).await;
    // A creator's own watching, and a public video's watch time before it was made members-only
    // (at the close it is), do not count either.
    watched_by(
        &app,
        "w6",
        "a-members",
        7_000_000,
        start + 60,
        &format!("u:{a}"),
    )
    .await;
    watched(&app, "w7", "c-public", 8_000_000, start + 60).await;
    sqlx::query("UPDATE videos SET visibility = 'members' WHERE id = 'c-public'")
        .execute(&app.state.db)
        .await
        .unwrap();
    // Ads: A 2 × 25.00 per thousand, B 2 × 17.50, C 1 × 17.50; a completion and an impression
    // of the next month do not count.
    ad(&app, "x1", "impression", "a-public", 2_500, start + 100).await;
    ad(&app, "x2", "impression", "a-public", 2_500, start + 200).await;
    ad(&app, "x3", "impression", "b-public", 1_750, start + 300).await;
    ad(&app, "x4", "impression", "b-public", 1_750, start + 400).await;
    ad(&app, "x5", "impression", "c-public", 1_750, start + 500).await;
    ad(&app, "x5", "complete", "c-public", 1_750, start + 510).await;
    ad(&app, "x6", "impression", "c-public", 1_750, end).await;
    (app, admin, [a_token, b_token, c_token])
}

async fn close(app: &TestApp, admin: &str, month: &str) -> (StatusCode, Value) {
    let path = format!("/v1/admin/earnings/{month}/close");
    json_of(app.send(Method::POST, &path, admin, None).await).await
}

#[tokio::test]
async fn a_month_closes_once_into_statements_that_balance_to_the_minor_unit() {
    let (app, admin, [a, b, c]) = worked_example().await;
    // Two closes at once: one writes the month, the other answers what it wrote.
    let settings = &app.state.settings.earnings;
    let month = Month::parse(MONTH).unwrap();
    let now = crate::helpers::now();
    let (x, y) = tokio::join!(
        earnings::close(&app.state.db, settings, month, now),
        earnings::close(&app.state.db, settings, month, now),
    );
    let f = serde_json::to_value(x.unwrap()).unwrap();
    assert_eq!(serde_json::to_value(y.unwrap()).unwrap(), f);
    // Memberships: 3 × 999 = 2,997; the platform's 30 % takes the fraction: 900, pool 2,097.
    // Split 1 : 3 by watch time: 524.25 and 1,572.75; the unit left goes to the larger
    // fraction: A 524, B 1,573.
    // Ads: 5,000 + 3,500 + 1,750 = 10,250 thousandths: 10 to share: 4.88, 3.41, 1.71 → 4, 3, 1
    // and the unit left to the largest fraction (A's .88): A 5, B 3, C 2; less 30 %, rounded
    // in the platform's favour: A 3 (2), B 2 (1), C 1 (1).
    assert_eq!(
        (
            &f["membership_gross"],
            &f["membership_platform"],
            &f["membership_pool"],
            &f["membership_undistributed"],
            &f["members_watch_ms"],
        ),
        (
            &json!(2_997),
            &json!(900),
            &json!(2_097),
            &json!(0),
            &json!(4_000_000)
        )
    );
    assert_eq!(
        (
            &f["ad_impressions"],
            &f["ad_gross_milli"],
            &f["ad_gross"],
            &f["ad_platform"],
            &f["ad_creators"],
        ),
        (&json!(5), &json!(10_250), &json!(10), &json!(4), &json!(6))
    );
    let statement = |token: String| {
        let app = &app;
        async move {
            json_of(
                app.get_as(&format!("/v1/creator/earnings/{MONTH}"), &token)
                    .await,
            )
            .await
        }
    };
    let (status, sa) = statement(a.clone()).await;
    assert_eq!(status, StatusCode::OK, "{sa}");
    let s = &sa["statement"];
    assert_eq!(
        (
            &s["members_watch_ms"],
            &s["membership"],
            &s["ad_impressions"],
            &s["ad_gross_milli"]
        ),
        (&json!(1_000_000), &json!(524), &json!(2), &json!(5_000))
    );
    assert_eq!(
        (&s["ad_gross"], &s["ad_platform"], &s["ad_net"], &s["total"]),
        (&json!(5), &json!(2), &json!(3), &json!(527))
    );
    assert_eq!(
        sa["videos"],
        json!([
            {"video_id": "a-members", "title": "A video", "members_watch_ms": 1_000_000,
             "ad_impressions": 0, "ad_gross_milli": 0},
            {"video_id": "a-public", "title": "=HYPERLINK(\"x\")", "members_watch_ms": 0,
             "ad_impressions": 2, "ad_gross_milli": 5_000},
        ])
    );
    let (_, sb) = statement(b.clone()).await;
    assert_eq!(
        (
            &sb["statement"]["membership"],
            &sb["statement"]["ad_net"],
            &sb["statement"]["total"]
        ),
        (&json!(1_573), &json!(2), &json!(1_575))
    );
    let (_, sc) = statement(c.clone()).await;
    assert_eq!(
        (
            &sc["statement"]["membership"],
            &sc["statement"]["ad_net"],
            &sc["statement"]["total"]
        ),
        (&json!(0), &json!(1), &json!(1))
    );
    // Everything balances: each gross is the platform's part plus the creators'.
    let (status, report) = json_of(
        app.get_as(&format!("/v1/admin/earnings/{MONTH}"), &admin)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let statements = report["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 3);
    let sum = |k: &str| {
        statements
            .iter()
            .map(|s| s[k].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(900 + sum("membership"), 2_997);
    assert_eq!(4 + sum("ads"), 10);

    // Closed once: asked again through the API, after a late invoice, the same figures.
    invoice(&app, "in_late", 999, "eur", month.start() + 60).await;
    let (status, again) = close(&app, &admin, MONTH).await;
    assert_eq!((status, again), (StatusCode::OK, f.clone()));

    // The CSV holds the same figures; a title that would be a formula is text.
    let r = app
        .get_as(&format!("/v1/creator/earnings/{MONTH}/csv"), &a)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("earnings-2026-10-eur.csv"));
    let csv = r.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<Vec<String>> = rows
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let value = |section: &str, item: &str, video: &str| -> i64 {
        rows.iter()
            .find(|r| r[0] == section && r[1] == item && r[2] == video)
            .unwrap_or_else(|| panic!("{section} {item} {video} in {csv}"))[4]
            .parse()
            .unwrap()
    };
    assert_eq!(value("platform", "membership_pool", ""), 2_097);
    assert_eq!(value("platform", "members_watch_ms", ""), 4_000_000);
    assert_eq!(value("video", "ad_gross_milli", "a-public"), 5_000);
    assert_eq!(value("statement", "membership", ""), 524);
    assert_eq!(value("statement", "total", ""), 527);
    let formula = rows.iter().find(|r| r[2] == "a-public").unwrap();
    assert_eq!(formula[3], "'=HYPERLINK(\"x\")");

    // The months a creator sees, and what is refused.
    let (status, list) = json_of(app.get_as("/v1/creator/earnings", &c).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["items"],
        json!([{"month": MONTH, "currency": "eur", "membership": 0, "ads": 1, "total": 1}])
    );
    let (_, viewer) = app.user("viewer@example.com", Role::User).await;
    let path = format!("/v1/creator/earnings/{MONTH}");
    assert_eq!(
        app.get_as(&path, &viewer).await.status(),
        StatusCode::FORBIDDEN
    );
    let (status, e) = json_of(app.get_as("/v1/creator/earnings/2026-13", &a).await).await;
    assert_eq!(
        (status, &e["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_month"))
    );
    let (status, e) = json_of(app.get_as("/v1/creator/earnings/2026-09", &a).await).await;
    assert_eq!(
        (status, &e["error"]),
        (StatusCode::NOT_FOUND, &json!("month_not_closed"))
    );
    let current = Month::of(crate::helpers::now()).to_string();
    let (status, e) = close(&app, &admin, &current).await;
    assert_eq!(
        (status, &e["error"]),
        (StatusCode::CONFLICT, &json!("month_not_over"))
    );
    assert_eq!(close(&app, &a, MONTH).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_members_watch_time_the_pool_stays_with_the_platform() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.user("admin@example.com", Role::Admin).await;
    let m = Month::parse("2026-09").unwrap();
    invoice(&app, "in_1", 1_000, "eur", m.start() + 1).await;
    let (status, f) = close(&app, &admin, "2026-09").await;
    assert_eq!(status, StatusCode::OK, "{f}");
    assert_eq!(
        (
            &f["membership_pool"],
            &f["membership_undistributed"],
            &f["membership_platform"]
        ),
        (&json!(700), &json!(700), &json!(300))
    );
}
