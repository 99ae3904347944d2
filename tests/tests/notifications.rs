//! Notifications through the edge on every runtime: a viewer who follows a channel and comments
//! gets the creator's replies and new video in the app's list (polled with `ETag`, 304 until
//! something changes) and by email from a real SMTP server on loopback (aiosmtpd): replies that
//! come together as one digest, the video alone, each with a signed one-click unsubscribe link
//! that works through the edge. And a fan-out killed mid-way (SIGKILL) tells every subscriber
//! exactly once after the restart.

use std::time::{Duration, Instant};

use e2e::mail::Sink;
use e2e::{call, free_port, token, Edge, Origin, Runtime, DEMO_EMAIL, VIEWER_EMAIL};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// The list through the edge, with `If-None-Match: tag` when given: status, `ETag`, JSON.
async fn poll(c: &Client, e: &str, token: &str, tag: Option<&str>) -> (StatusCode, String, Value) {
    let mut req = c.get(format!("{e}/v1/me/notifications")).bearer_auth(token);
    if let Some(t) = tag {
        req = req.header("if-none-match", t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (
        status,
        etag,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Polls until the list holds `n` items; its `ETag` and JSON.
async fn until_items(c: &Client, e: &str, token: &str, n: usize) -> (String, Value) {
    let start = Instant::now();
    loop {
        let (s, tag, v) = poll(c, e, token, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if v["items"].as_array().is_some_and(|i| i.len() >= n) {
            return (tag, v);
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "never {n} notifications: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn flow(runtime: Runtime) {
    let sink = Sink::start().await;
    let edge_port = free_port();
    let origin = Origin::start_with_env(
        edge_port,
        &[
            ("APP_NOTIFICATIONS__SMTP_URL", sink.url.as_str()),
            (
                "APP_NOTIFICATIONS__FROM",
                "Edge Video <notifications@edge.test>",
            ),
            // A short digest window, swept often, so the test takes seconds.
            ("APP_NOTIFICATIONS__DIGEST_SECS", "3"),
            ("APP_NOTIFICATIONS__SWEEP_SECS", "1"),
        ],
    )
    .await;
    let edge = Edge::start(runtime, &origin, edge_port).await;
    let c = e2e::client();
    let e = edge.url.as_str();
    let creator = token(&c, e, DEMO_EMAIL).await;
    let viewer = token(&c, e, VIEWER_EMAIL).await;

    // The viewer follows the demo channel and comments.
    let video = e2e::get_json_as(&c, &format!("{e}/v1/videos/demo-free"), &viewer).await;
    let channel = video["channel_id"].as_str().unwrap().to_owned();
    let (s, v) = call(
        &c,
        Method::PUT,
        format!("{e}/v1/channels/{channel}/subscription"),
        &viewer,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, comment) = call(
        &c,
        Method::POST,
        format!("{e}/v1/videos/demo-free/comments"),
        &viewer,
        Some(json!({"body": "How was this filmed?"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{comment}");
    let (_, empty_tag, empty) = poll(&c, e, &viewer, None).await;
    assert_eq!(
        (empty["items"].as_array().unwrap().len(), &empty["unread"]),
        (0, &json!(0))
    );
    let (s, _, _) = poll(&c, e, &viewer, Some(&empty_tag)).await;
    assert_eq!(
        s,
        StatusCode::NOT_MODIFIED,
        "nothing new: a 304 through the edge"
    );

    // Two replies within the digest window: in the list at once, by email as one digest.
    for text in ["With a drone", "And a lot of patience"] {
        let (s, r) = call(
            &c,
            Method::POST,
            format!("{e}/v1/videos/demo-free/comments"),
            &creator,
            Some(json!({"body": text, "reply_to": comment["id"]})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
    }
    let (tag, list) = until_items(&c, e, &viewer, 2).await;
    assert_eq!(list["unread"], 2);
    assert_ne!(tag, empty_tag);
    assert!(
        list["items"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("“And a lot of patience”"),
        "{list}"
    );
    let (s, _, _) = poll(&c, e, &viewer, Some(&tag)).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let mail = sink
        .until("the replies' digest", Duration::from_secs(30), |m| {
            !m.is_empty()
        })
        .await;
    let digest = &mail[0];
    assert_eq!(digest["rcpt_tos"], json!([VIEWER_EMAIL]));
    assert_eq!(digest["from"], "Edge Video <notifications@edge.test>");
    assert_eq!(digest["subject"], "2 new notifications");
    assert_eq!(digest["content_type"], "text/plain");
    let body = digest["body"].as_str().unwrap();
    assert!(
        body.contains("“With a drone”") && body.contains("“And a lot of patience”"),
        "{body}"
    );
    assert!(body.contains(&format!("{e}/watch?v=demo-free")), "{body}");
    assert_eq!(
        digest["list_unsubscribe_post"],
        "List-Unsubscribe=One-Click"
    );

    // Read through the edge: the count and the tag change.
    let newest = list["items"][0]["id"].as_i64().unwrap();
    let (s, v) = call(
        &c,
        Method::POST,
        format!("{e}/v1/me/notifications/read"),
        &viewer,
        Some(json!({"up_to": newest})),
    )
    .await;
    assert_eq!((s, &v["unread"]), (StatusCode::OK, &json!(0)));
    let (s, _, _) = poll(&c, e, &viewer, Some(&tag)).await;
    assert_eq!(s, StatusCode::OK, "read: the old tag no longer matches");

    // A new video in the channel: uploaded, transcoded, published and fanned out to the viewer.
    let dir = tempfile::tempdir().unwrap();
    let source = e2e::render_source(dir.path(), 320, 180, 1);
    let new = e2e::upload_video(&c, e, &creator, "Fresh", source).await;
    let (_, list) = until_items(&c, e, &viewer, 3).await;
    let item = &list["items"][0];
    assert_eq!(item["kind"], "new_video");
    assert_eq!(item["link"], format!("/watch?v={new}"));
    let mail = sink
        .until("the new video's email", Duration::from_secs(30), |m| {
            m.len() >= 2
        })
        .await;
    let alone = &mail[1];
    assert_eq!(
        alone["subject"], item["text"],
        "one notification goes as itself"
    );
    assert_ne!(alone["message_id"], digest["message_id"]);

    // Its one-click unsubscribe (RFC 8058), POSTed through the edge as a mail client does,
    // stops new-video emails and nothing else.
    let link = alone["list_unsubscribe"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(
        link.starts_with(&format!("{e}/v1/notifications/unsubscribe?t=")),
        "{link}"
    );
    let page = c.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<form method=\"post\">"));
    let r = c
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let prefs = e2e::get_json_as(&c, &format!("{e}/v1/me/notification-preferences"), &viewer).await;
    assert_eq!(prefs["new_video"], json!({"in_app": true, "email": false}));
    assert_eq!(
        prefs["comment_reply"],
        json!({"in_app": true, "email": true})
    );
    let tampered = format!("{}x", &link);
    let r = c.post(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sink.messages().len(), 2, "no email beyond the two");

    // A signup through the edge gets a link that confirms its address, followed through the edge.
    let r = c
        .post(format!("{e}/v1/auth/signup"))
        .json(&json!({"email": "newcomer@example.com", "password": "long enough pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let newcomer = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = e2e::get_json_as(&c, &format!("{e}/v1/me"), &newcomer).await;
    assert_eq!(me["email_confirmed"], false);
    let mail = sink
        .until("the confirmation email", Duration::from_secs(30), |m| {
            m.len() >= 3
        })
        .await;
    assert_eq!(mail[2]["rcpt_tos"], json!(["newcomer@example.com"]));
    let body = mail[2]["body"].as_str().unwrap();
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{e}/v1/auth/confirm-email?t=")))
        .unwrap_or_else(|| panic!("no link to the edge in {body}"));
    let r = c.post(link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me = e2e::get_json_as(&c, &format!("{e}/v1/me"), &newcomer).await;
    assert_eq!(me["email_confirmed"], true);
    drop(origin);
}

#[tokio::test]
async fn notifications_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn notifications_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn notifications_under_spin_up() {
    flow(Runtime::SpinUp).await;
}

/// Subscribers the crash test writes; enough batches of [`BATCH`] that the kill lands mid-way.
const SUBSCRIBERS: i64 = 1_000;
const BATCH: &str = "2";

/// A fan-out killed (SIGKILL) between batches resumes after the restart and tells every
/// subscriber exactly once: nobody left out of the list, and one email each at the SMTP server.
#[tokio::test]
async fn a_fan_out_killed_mid_way_tells_every_subscriber_once() {
    let sink = Sink::start().await;
    let mut origin = Origin::start_with_env(
        free_port(),
        &[
            ("APP_NOTIFICATIONS__FANOUT_BATCH", BATCH),
            ("APP_NOTIFICATIONS__WORKERS", "1"),
            ("APP_NOTIFICATIONS__SMTP_URL", sink.url.as_str()),
            // The emails start after the restart (the kill comes within the first batches), so
            // what is counted is the fan-out's, not a send cut between its 250 and its commit.
            ("APP_NOTIFICATIONS__DIGEST_SECS", "5"),
            ("APP_NOTIFICATIONS__SWEEP_SECS", "1"),
            ("APP_NOTIFICATIONS__MAIL_WORKERS", "4"),
        ],
    )
    .await;
    let db = origin::db::connect(&origin.database).await.unwrap();
    let channel: String =
        sqlx::query_scalar("SELECT channel_id FROM videos WHERE id = 'demo-free'")
            .fetch_one(&db)
            .await
            .unwrap();
    // Subscribers straight into the database, in one statement per thousand, their addresses
    // confirmed (notification emails go only to those).
    for start in (0..SUBSCRIBERS).step_by(1000) {
        let mut users = String::from(
            "INSERT INTO users (id, email, password_hash, role, created_at, email_confirmed_at)
             VALUES ",
        );
        let mut subs =
            String::from("INSERT INTO subscriptions (user_id, channel_id, created_at) VALUES ");
        for i in start..(start + 1000).min(SUBSCRIBERS) {
            let sep = if i == start { "" } else { "," };
            users.push_str(&format!(
                "{sep}('fan-{i:06}', 'fan-{i:06}@example.com', 'x', 'user', 0, 0)"
            ));
            subs.push_str(&format!("{sep}('fan-{i:06}', '{channel}', 0)"));
        }
        sqlx::query(&users).execute(&db).await.unwrap();
        sqlx::query(&subs).execute(&db).await.unwrap();
    }
    let api = origin.as_edge().await;
    let c = e2e::client();
    let creator = token(&c, &api, DEMO_EMAIL).await;
    let dir = tempfile::tempdir().unwrap();
    let source = e2e::render_source(dir.path(), 320, 180, 1);
    let video = e2e::upload_video(&c, &api, &creator, "Fan-out", source).await;
    let key = format!("video:{video}");
    let told = || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE key = $1")
            .bind(&key)
            .fetch_one(&db)
            .await
            .unwrap();
        n
    };
    let start = Instant::now();
    while told().await == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the fan-out never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    origin.kill();
    let at_kill = told().await;
    assert!(
        at_kill < SUBSCRIBERS,
        "the fan-out was over before the kill ({at_kill} told): the test proves nothing"
    );
    origin.restart().await;
    let start = Instant::now();
    loop {
        let state: String =
            sqlx::query_scalar("SELECT state FROM jobs WHERE kind = 'notify.fanout' AND key = $1")
                .bind(&key)
                .fetch_one(&db)
                .await
                .unwrap();
        if state == "done" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the fan-out never finished ({state})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rows, users): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM notifications
         WHERE key = $1 AND user_id LIKE 'fan-%'",
    )
    .bind(&key)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        (rows, users),
        (SUBSCRIBERS, SUBSCRIBERS),
        "killed after {at_kill}"
    );
    sink.until(
        "an email to every subscriber",
        Duration::from_secs(180),
        |m| m.len() as i64 >= SUBSCRIBERS,
    )
    .await;
    // Anything sent twice would come with the last of them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut to: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(to.len() as i64, SUBSCRIBERS, "emails sent");
    to.sort();
    to.dedup();
    assert_eq!(to.len() as i64, SUBSCRIBERS, "subscribers emailed");
}
