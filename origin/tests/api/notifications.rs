//! Notifications: a new video fanned out to a channel's subscribers as each chooses, once even
//! when a fan-out runs again; replies and likes told to a comment's author; moderation
//! outcomes to reporters and owners; billing trouble to the member; the list's unread count,
//! marks and `ETag`; preferences and the signed unsubscribe link.

use std::time::{Duration, Instant};

use origin::jobs::{self, Handler};
use origin::notifications::fanout::{Fanout, FANOUT};
use origin::notifications::unsubscribe::{self, Scope};
use origin::notifications::Kind;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;
use shared_wasm::record::{VideoState, Visibility};

use crate::helpers::{json_of, now, TestApp, WEBHOOK_SECRETS};

async fn inbox(app: &TestApp, token: &str) -> Value {
    app.get_json_as("/v1/me/notifications", token).await
}

/// The notifications stored for `user` (every channel), as `(kind, key, in_app, email)`.
async fn stored(app: &TestApp, user: &str) -> Vec<(String, String, i64, String)> {
    sqlx::query_as(
        "SELECT kind, key, in_app, email FROM notifications WHERE user_id = $1 ORDER BY id",
    )
    .bind(user)
    .fetch_all(&app.state.db)
    .await
    .unwrap()
}

/// Waits until video `video`'s fan-out job is done; its outcome.
async fn fanned_out(app: &TestApp, video: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT state, outcome FROM jobs WHERE kind = $1 AND key = $2")
                .bind(FANOUT)
                .bind(format!("video:{video}"))
                .fetch_optional(&app.state.db)
                .await
                .unwrap();
        if let Some((state, Some(outcome))) = row.filter(|(s, _)| s == "done") {
            assert_eq!(state, "done");
            return outcome;
        }
        assert!(
            Instant::now() < deadline,
            "the fan-out of {video} never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `token`'s comment `body` on `video` answering comment `parent` (any comment when `Null`);
/// the new comment.
async fn comment_on(app: &TestApp, token: &str, video: &str, body: &str, parent: &Value) -> Value {
    let path = format!("/v1/videos/{video}/comments");
    let mut body = json!({"body": body});
    if !parent.is_null() {
        body["reply_to"] = parent.clone();
    }
    let (s, c) = json_of(app.post(&path, Some(token), body).await).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    c
}

/// Signs up `email` through the API; its access token.
/// `POST /v1/me/email/confirm` as `token`: the status and the JSON answer.
async fn ask_confirmation(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    json_of(
        app.post("/v1/me/email/confirm", Some(token), json!(null))
            .await,
    )
    .await
}

async fn signup(app: &TestApp, email: &str) -> String {
    let body = json!({"email": email, "password": "long enough pw"});
    let r = app.post("/v1/auth/signup", None, body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn set_prefs(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    json_of(
        app.send(
            Method::PUT,
            "/v1/me/notification-preferences",
            token,
            Some(body),
        )
        .await,
    )
    .await
}

/// A creator whose channel exists (made with a private video) and its id.
async fn creator_with_channel(app: &TestApp, email: &str) -> (String, String, String) {
    let (id, token) = app.user(email, Role::Creator).await;
    let first = format!("v-first-{}", &id[..6.min(id.len())]);
    app.video_with(
        &first,
        Some(&id),
        Visibility::Private,
        VideoState::Ready,
        false,
    )
    .await;
    let channel =
        origin::videos::channel_of(&app.state.db, &shared_wasm::VideoId::parse(&first).unwrap())
            .await
            .unwrap()
            .unwrap();
    (id, token, channel)
}

async fn subscribe(app: &TestApp, token: &str, channel: &str) {
    let path = format!("/v1/channels/{channel}/subscription");
    let r = app.send(Method::PUT, &path, token, None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_new_video_reaches_each_subscriber_once_as_they_choose() {
    let app = TestApp::spawn().await;
    let (creator, creator_token, channel) = creator_with_channel(&app, "ch@example.com").await;
    let (_, ada) = app.user("ada@example.com", Role::User).await;
    let (bob_id, bob) = app.user("bob@example.com", Role::User).await;
    let (cy_id, cy) = app.user("cy@example.com", Role::User).await;
    for t in [&ada, &bob, &cy, &creator_token] {
        subscribe(&app, t, &channel).await;
    }
    let (s, p) = set_prefs(
        &app,
        &bob,
        json!({"new_video": {"in_app": false, "email": true}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["new_video"], json!({"in_app": false, "email": true}));
    assert_eq!(
        p["comment_like"],
        json!({"in_app": true, "email": false}),
        "a default"
    );
    set_prefs(
        &app,
        &cy,
        json!({"new_video": {"in_app": false, "email": false}}),
    )
    .await;

    let before = inbox(&app, &ada).await;
    assert_eq!(
        (before["items"].as_array().unwrap().len(), &before["unread"]),
        (0, &json!(0))
    );

    app.public_video("v-news", Some(&creator)).await;
    assert_eq!(fanned_out(&app, "v-news").await, "told");
    let list = inbox(&app, &ada).await;
    assert_eq!(list["unread"], 1, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["kind"], "new_video");
    assert_eq!(item["data"]["video"], "v-news");
    assert_eq!(item["link"], "/watch?v=v-news");
    assert!(
        item["text"]
            .as_str()
            .unwrap()
            .ends_with("published “A video”"),
        "{item}"
    );
    assert_eq!(item["read"], false);
    // Bob wanted it by email only: stored for the email, not in his list.
    assert_eq!(inbox(&app, &bob).await["items"], json!([]));
    let bobs = stored(&app, &bob_id).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!((bobs[0].2, bobs[0].3.as_str()), (0, "pending"));
    assert!(
        stored(&app, &cy_id).await.is_empty(),
        "Cy wanted it nowhere"
    );
    assert!(
        stored(&app, &creator).await.is_empty(),
        "not to its own creator"
    );

    // Published again (an edit), and a private video: nobody is told anything new.
    let r = app
        .send(
            Method::PATCH,
            "/v1/videos/v-news",
            &creator_token,
            Some(json!({"title": "New"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.video_with(
        "v-hidden",
        Some(&creator),
        Visibility::Private,
        VideoState::Ready,
        false,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        inbox(&app, &ada).await["items"].as_array().unwrap().len(),
        1
    );
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1 AND key = $2")
        .bind(FANOUT)
        .bind("video:v-hidden")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "a private video is announced to nobody");
}

#[tokio::test]
async fn the_list_pages_marks_read_and_answers_polls_with_304() {
    let app = TestApp::spawn().await;
    let (creator, _, channel) = creator_with_channel(&app, "ch@example.com").await;
    let (_, ada) = app.user("ada@example.com", Role::User).await;
    subscribe(&app, &ada, &channel).await;
    for i in 0..32 {
        let id = format!("v-{i:02}");
        app.public_video(&id, Some(&creator)).await;
        fanned_out(&app, &id).await;
    }
    let r = app.get_as("/v1/me/notifications", &ada).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["unread"], 32);
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 30);
    assert_eq!(items[0]["data"]["video"], "v-31", "newest first");
    let before = first["next_before"].as_i64().unwrap();
    let rest = app
        .get_json_as(&format!("/v1/me/notifications?before={before}"), &ada)
        .await;
    let rest: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["data"]["video"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["v-01", "v-00"]);

    let poll = |tag: String| {
        let app = &app;
        let ada = ada.clone();
        async move {
            app.client
                .get(format!("{}/v1/me/notifications", app.url))
                .bearer_auth(ada)
                .header("if-none-match", tag)
                .send()
                .await
                .unwrap()
        }
    };
    let r = poll(etag.clone()).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);

    // Reading some changes the count and the tag.
    let newest = items[0]["id"].as_i64().unwrap();
    let (s, v) = json_of(
        app.post(
            "/v1/me/notifications/read",
            Some(&ada),
            json!({"ids": [newest]}),
        )
        .await,
    )
    .await;
    assert_eq!((s, &v["unread"]), (StatusCode::OK, &json!(31)));
    let r = poll(etag.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    // So does a new one.
    app.public_video("v-32", Some(&creator)).await;
    fanned_out(&app, "v-32").await;
    let r = poll(etag).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["unread"], 32);

    let (s, v) = json_of(
        app.post(
            "/v1/me/notifications/read",
            Some(&ada),
            json!({"up_to": i64::MAX}),
        )
        .await,
    )
    .await;
    assert_eq!((s, &v["unread"]), (StatusCode::OK, &json!(0)));
    for bad in [
        json!({}),
        json!({"up_to": 1, "ids": [1]}),
        json!({"ids": []}),
        json!({"ids": (0..101).collect::<Vec<i64>>()}),
        json!({"everything": true}),
    ] {
        let (s, e) = json_of(
            app.post("/v1/me/notifications/read", Some(&ada), bad.clone())
                .await,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
    }
    let (s, _) = json_of(app.get_as("/v1/me/notifications?before=x", &ada).await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// A fan-out claimed again after a crash resumes after its last committed batch, and a batch
/// committed without its checkpoint (as if the worker died between the two) is not written twice.
#[tokio::test]
async fn a_fan_out_run_again_writes_nobody_twice() {
    let app = TestApp::spawn_tweaked(|s| s.notifications.workers = 0).await;
    let (creator, _, channel) = creator_with_channel(&app, "ch@example.com").await;
    let subscribers = 2_500;
    let mut tx = app.state.db.begin().await.unwrap();
    for i in 0..subscribers {
        let id = format!("u-{i:05}");
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at)
             VALUES ($1, $2, 'x', 'user', 0)",
        )
        .bind(&id)
        .bind(format!("{id}@example.com"))
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO subscriptions (user_id, channel_id, created_at) VALUES ($1, $2, 0)",
        )
        .bind(&id)
        .bind(&channel)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    app.public_video("v-big", Some(&creator)).await;
    // The first 1,200 were told, but the checkpoint says nobody was.
    sqlx::query(
        "INSERT INTO notifications (user_id, kind, key, data, in_app, email, created_at)
         SELECT user_id, 'new_video', 'video:v-big', '{}', 1, 'none', 0 FROM subscriptions
         WHERE channel_id = $1 AND user_id < 'u-01200'",
    )
    .bind(&channel)
    .execute(&app.state.db)
    .await
    .unwrap();
    let handler = Fanout {
        db: app.state.db.clone(),
        batch: 1000,
    };
    let job = jobs::claim(&app.state.db, &[FANOUT], None, 30, now())
        .await
        .unwrap()
        .expect("the video's fan-out is queued");
    assert_eq!(job.payload, "");
    assert!(matches!(
        handler.run(&job).await.unwrap(),
        jobs::Finished::Done("told")
    ));
    let (rows, users): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM notifications WHERE key = 'video:v-big'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!((rows, users), (subscribers, subscribers));
    let payload: String = sqlx::query_scalar("SELECT payload FROM jobs WHERE id = $1")
        .bind(job.id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        payload, "u-02499",
        "its progress is the last subscriber told"
    );
    // A claim whose lease was taken over stops at its first batch and writes nothing: the
    // notifications of the first batch, taken away, are not written again.
    sqlx::query("DELETE FROM notifications WHERE key = 'video:v-big' AND user_id < 'u-00500'")
        .execute(&app.state.db)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET state = 'running', payload = '' WHERE id = $1")
        .bind(job.id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let stale = jobs::Job {
        attempts: job.attempts - 1,
        ..job.clone()
    };
    assert!(matches!(
        handler.run(&stale).await.unwrap(),
        jobs::Finished::Recorded
    ));
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE key = 'video:v-big'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(rows, subscribers - 500);
}

#[tokio::test]
async fn replies_and_likes_tell_the_comment_author() {
    let app = TestApp::spawn().await;
    let (creator, _) = app.user("creator@example.com", Role::Creator).await;
    let (ada_id, ada) = app.user("ada@example.com", Role::User).await;
    let (_, bob) = app.user("bob@example.com", Role::User).await;
    sqlx::query("UPDATE users SET display_name = 'Bob B' WHERE email = 'bob@example.com'")
        .execute(&app.state.db)
        .await
        .unwrap();
    app.public_video("v-talk", Some(&creator)).await;
    app.public_video("v-other", Some(&creator)).await;
    let comment = |token: &str, body: Value| {
        let app = &app;
        let token = token.to_owned();
        async move {
            json_of(
                app.post("/v1/videos/v-talk/comments", Some(&token), body)
                    .await,
            )
            .await
        }
    };
    let (s, first) = comment(&ada, json!({"body": "Lovely light"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let first_id = first["id"].as_str().unwrap().to_owned();
    let (s, reply) = comment(
        &bob,
        json!({"body": "Agreed, the clouds too", "reply_to": first_id}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["parent_id"], first_id);
    // Her own reply tells her nothing.
    comment(&ada, json!({"body": "Thanks!", "reply_to": first_id})).await;
    let list = inbox(&app, &ada).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["kind"], "comment_reply");
    assert_eq!(
        items[0]["text"],
        "Bob B replied to your comment on “A video”: “Agreed, the clouds too”"
    );
    // A reply to a comment of another video, or to none, is refused and nobody is told.
    let (s, _) = json_of(
        app.post(
            "/v1/videos/v-other/comments",
            Some(&bob),
            json!({"body": "x", "reply_to": first_id}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = comment(&bob, json!({"body": "x", "reply_to": "c_nothing"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A like, taken back and given again, is told once; a dislike not at all.
    let react = |value: &'static str| {
        let app = &app;
        let bob = bob.clone();
        let path = format!("/v1/comments/{first_id}/reaction");
        async move {
            let r = app
                .send(Method::PUT, &path, &bob, Some(json!({"value": value})))
                .await;
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    for v in ["like", "none", "like", "dislike", "like"] {
        react(v).await;
    }
    let kinds: Vec<String> = stored(&app, &ada_id)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(kinds, ["comment_reply", "comment_like"]);
    let list = inbox(&app, &ada).await;
    assert_eq!(
        list["items"][0]["text"],
        "Bob B liked your comment on “A video”"
    );
    assert_eq!(list["unread"], 2);
    assert_eq!(
        stored(&app, &ada_id).await[1].3,
        "none",
        "likes are not emailed by default"
    );
}

#[tokio::test]
async fn moderation_outcomes_reach_reporters_and_owners() {
    let app = TestApp::spawn().await;
    let (creator_id, creator) = app.user("creator@example.com", Role::Creator).await;
    let (_, one) = app.user("one@example.com", Role::User).await;
    let (_, two) = app.user("two@example.com", Role::User).await;
    let (_, moderator) = app.user("mod@example.com", Role::Moderator).await;
    app.public_video("v-bad", Some(&creator_id)).await;
    let (_, c) = json_of(
        app.post(
            "/v1/videos/v-bad/comments",
            Some(&two),
            json!({"body": "hello"}),
        )
        .await,
    )
    .await;
    let comment = c["id"].as_str().unwrap().to_owned();
    for t in [&one, &two] {
        let r = app
            .post(
                "/v1/reports",
                Some(t),
                json!({"video": "v-bad", "reason": "copyright"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = app
        .post(
            "/v1/reports",
            Some(&one),
            json!({"comment": comment, "reason": "spam"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let act = |body: Value| {
        let app = &app;
        let moderator = moderator.clone();
        async move {
            let (s, v) = json_of(
                app.post("/v1/moderation/actions", Some(&moderator), body)
                    .await,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    };
    act(json!({"action": "take_down", "video": "v-bad", "reason": "a film studio's claim"})).await;
    act(json!({"action": "dismiss", "comment": comment, "reason": "not spam"})).await;

    let texts = |list: Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        texts(inbox(&app, &creator).await),
        ["A moderator took down your video “A video”: a film studio's claim"]
    );
    assert_eq!(
        texts(inbox(&app, &one).await),
        [
            "Moderators reviewed your report of a comment on “A video” and found nothing against the rules",
            "Moderators reviewed your report of “A video” and acted on it",
        ]
    );
    // Two reported the video and is the comment's author: a dismissal tells an author nothing.
    assert_eq!(
        texts(inbox(&app, &two).await),
        ["Moderators reviewed your report of “A video” and acted on it"]
    );
    for item in inbox(&app, &one).await["items"].as_array().unwrap() {
        assert!(
            item["data"].get("action").is_none(),
            "what was done is the owner's: {item}"
        );
        assert!(item["data"].get("reason").is_none(), "{item}");
    }
    act(json!({"action": "restore", "video": "v-bad", "reason": "claim withdrawn"})).await;
    assert_eq!(
        texts(inbox(&app, &creator).await)[0],
        "A moderator restored your video “A video”"
    );
}

#[tokio::test]
async fn billing_tells_of_a_failed_payment_and_a_membership_ending() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user("member@example.com", Role::User).await;
    let t = now();
    let deliver = |id: &str, kind: &str, object: Value| {
        let body = e2e::stripe::event(id, kind, t, object);
        let app = &app;
        async move {
            let sig = e2e::stripe::sign(WEBHOOK_SECRETS[0], now(), &body);
            let r = app
                .client
                .post(format!("{}/billing/stripe/webhook", app.origin_url))
                .header("content-type", "application/json")
                .header("stripe-signature", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    deliver(
        "evt_co",
        "checkout.session.completed",
        json!({"id": "cs_1", "object": "checkout.session", "mode": "subscription",
               "client_reference_id": user, "customer": "cus_m", "subscription": "sub_m"}),
    )
    .await;
    let invoice = json!({
        "id": "in_1", "object": "invoice", "customer": "cus_m",
        "parent": {"subscription_details": {"subscription": "sub_m"}},
    });
    // Stripe's retries of one invoice: told once.
    deliver("evt_f1", "invoice.payment_failed", invoice.clone()).await;
    deliver("evt_f2", "invoice.payment_failed", invoice).await;
    let end = t + 20 * 24 * 3600;
    deliver(
        "evt_cancel",
        "customer.subscription.updated",
        json!({"id": "sub_m", "object": "subscription", "customer": "cus_m", "status": "active",
               "cancel_at_period_end": true,
               "items": {"data": [{"id": "si_1", "current_period_end": end}]}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let list = loop {
        let list = inbox(&app, &token).await;
        if list["items"].as_array().unwrap().len() >= 2 || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(
        items[0]["data"],
        json!({"event": "membership_ending", "until": end})
    );
    assert!(items[0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Your membership ends on "));
    assert_eq!(items[0]["link"], "/account");
    assert_eq!(items[1]["data"], json!({"event": "payment_failed"}));
}

#[tokio::test]
async fn preferences_are_checked_and_a_signed_link_stops_emails() {
    let app = TestApp::spawn().await;
    let (ada_id, ada) = app.user("ada@example.com", Role::User).await;
    let defaults = app
        .get_json_as("/v1/me/notification-preferences", &ada)
        .await;
    assert_eq!(defaults.as_object().unwrap().len(), Kind::ALL.len());
    assert_eq!(
        defaults["new_video"],
        json!({"in_app": true, "email": true})
    );
    for bad in [
        json!({"everything": {"in_app": true, "email": true}}),
        json!({"new_video": {"in_app": true}}),
        json!({"new_video": {"in_app": true, "email": true, "sms": true}}),
        json!({"new_video": "off"}),
        json!([]),
    ] {
        let (s, e) = set_prefs(&app, &ada, bad.clone()).await;
        assert_eq!(s.as_u16() / 100, 4, "{bad}: {e}");
        assert!(e["error"].is_string(), "{bad}: {e}");
    }

    // A pending email of the kind goes with the link.
    sqlx::query(
        "INSERT INTO notifications (user_id, kind, key, data, in_app, email, created_at)
         VALUES ($1, 'new_video', 'video:v-x', '{}', 1, 'pending', 0)",
    )
    .bind(&ada_id)
    .execute(&app.state.db)
    .await
    .unwrap();
    let key = app.state.email_link_key.as_slice();
    let link = format!(
        "/v1/notifications/unsubscribe?t={}",
        unsubscribe::token(key, &ada_id, Scope::Kind(Kind::NewVideo))
    );
    let r = app
        .client
        .get(format!("{}{link}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(r.text().await.unwrap().contains("<form method=\"post\">"));
    let now_prefs = app
        .get_json_as("/v1/me/notification-preferences", &ada)
        .await;
    assert_eq!(
        now_prefs["new_video"]["email"], true,
        "opening the link changes nothing"
    );

    // The mail client's one-click POST (RFC 8058).
    let r = app
        .client
        .post(format!("{}{link}", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let after = app
        .get_json_as("/v1/me/notification-preferences", &ada)
        .await;
    assert_eq!(after["new_video"], json!({"in_app": true, "email": false}));
    assert_eq!(after["comment_reply"]["email"], true, "only that kind");
    assert_eq!(
        stored(&app, &ada_id).await[0].3,
        "none",
        "its pending email dropped"
    );

    // Another key's token, or a tampered one, is refused with a reason.
    let forged = unsubscribe::token(&[9u8; 32], &ada_id, Scope::All);
    for t in [forged.as_str(), "nonsense", ""] {
        let r = app
            .client
            .post(format!("{}/v1/notifications/unsubscribe?t={t}", app.url))
            .send()
            .await
            .unwrap();
        let (s, e) = json_of(r).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{t}");
        assert_eq!(e["error"], "invalid_token", "{t}");
    }
    let all = app
        .get_json_as("/v1/me/notification-preferences", &ada)
        .await;
    assert_eq!(
        all["billing"]["email"], true,
        "refused links change nothing"
    );

    // An old email's link, its account gone since: nothing to stop, and a page that says so.
    let (gone, _) = app.user("gone@example.com", Role::User).await;
    let link = unsubscribe::token(key, &gone, Scope::All);
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(&gone)
        .execute(&app.state.db)
        .await
        .unwrap();
    let r = app
        .client
        .post(format!("{}/v1/notifications/unsubscribe?t={link}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Emails through a real SMTP server on loopback: a message the server refuses for good is not
/// sent again, and does not hold back the user's next email.
#[tokio::test]
async fn a_refused_email_is_dropped_and_the_next_one_goes() {
    let sink = e2e::mail::Sink::start().await;
    let smtp = sink.url.clone();
    let app = TestApp::spawn_tweaked(move |s| {
        s.notifications.smtp_url = Some(smtp.into());
        s.notifications.digest_secs = 1;
        s.notifications.sweep_secs = 1;
    })
    .await;
    let (creator, creator_token) = app.user("creator@example.com", Role::Creator).await;
    let (ada_id, ada) = app.user("ada@example.com", Role::User).await;
    app.public_video("v-mail", Some(&creator)).await;
    let c = comment_on(&app, &ada, "v-mail", "Hi", &Value::Null).await;
    let reply = |text: &'static str| comment_on(&app, &creator_token, "v-mail", text, &c["id"]);
    let emails = |state: &'static str| {
        let app = &app;
        let ada_id = ada_id.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND email = $2",
            )
            .bind(&ada_id)
            .bind(state)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
            n
        }
    };
    reply("REFUSE this one").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while emails("expired").await == 0 {
        assert!(
            Instant::now() < deadline,
            "the refused email was never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reply("but take this one").await;
    let got = sink
        .until("the next email", Duration::from_secs(30), |m| !m.is_empty())
        .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0]["subject"]
            .as_str()
            .unwrap()
            .contains("but take this one"),
        "{got:?}"
    );
    assert_eq!(got[0]["rcpt_tos"], json!(["ada@example.com"]));
    // Settled: one refused, one sent, nothing pending or sent twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        (
            emails("expired").await,
            emails("sent").await,
            emails("pending").await
        ),
        (1, 1, 0)
    );
    assert_eq!(sink.messages().len(), 1);
    // One email job per user, renewed once finished: its latest run sent.
    let jobs: Vec<(String, String)> =
        sqlx::query_as("SELECT key, outcome FROM jobs WHERE kind = 'notify.mail'")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(jobs, [(ada_id.clone(), "sent".to_owned())]);
}

/// Notification emails go only to confirmed addresses: a signup gets a link by email, and only
/// following it (before it expires, for the address it was sent to) turns its emails on.
#[tokio::test]
async fn emails_wait_for_a_confirmed_address() {
    let sink = e2e::mail::Sink::start().await;
    let smtp = sink.url.clone();
    let app = TestApp::spawn_tweaked(move |s| s.notifications.smtp_url = Some(smtp.into())).await;
    let (creator, creator_token) = app.user("creator@example.com", Role::Creator).await;
    app.public_video("v-c", Some(&creator)).await;
    let token = signup(&app, "new@example.com").await;
    let me = app.get_json_as("/v1/me", &token).await;
    assert_eq!(me["email_confirmed"], false);
    let user = me["id"].as_str().unwrap().to_owned();

    // Unconfirmed: a reply is in the list, not waiting for an email.
    let c = comment_on(&app, &token, "v-c", "Hi", &Value::Null).await;
    let reply = |text: &'static str| comment_on(&app, &creator_token, "v-c", text, &c["id"]);
    reply("first").await;
    assert_eq!(stored(&app, &user).await[0].3, "none");

    // The link the signup sent, and another asked for too soon.
    let mail = sink
        .until("the confirmation email", Duration::from_secs(20), |m| {
            !m.is_empty()
        })
        .await;
    assert_eq!(mail[0]["subject"], "Confirm your email address");
    assert_eq!(mail[0]["rcpt_tos"], json!(["new@example.com"]));
    let body = mail[0]["body"].as_str().unwrap();
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/v1/auth/confirm-email?t="))
        .unwrap();
    let t = link.split_once("?t=").unwrap().1;
    let (s, e) = ask_confirmation(&app, &token).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");

    // Forged, for another address, expired: refused with a reason, nothing confirmed.
    let key = app.state.email_link_key.as_slice();
    let confirm = |t: String| {
        let app = &app;
        async move {
            let url = format!("{}/v1/auth/confirm-email?t={t}", app.url);
            json_of(app.client.post(url).send().await.unwrap()).await
        }
    };
    use origin::notifications::confirm::{token as confirm_token, VALID_SECS};
    for (t, status, code) in [
        (
            confirm_token(&[1u8; 32], &user, "new@example.com", now()),
            400,
            "invalid_token",
        ),
        (
            confirm_token(key, &user, "old@example.com", now()),
            400,
            "invalid_token",
        ),
        (
            confirm_token(key, &user, "new@example.com", now() - VALID_SECS - 10),
            410,
            "link_expired",
        ),
        ("x.y".into(), 400, "invalid_token"),
    ] {
        let (s, e) = confirm(t).await;
        assert_eq!((s.as_u16(), &e["error"]), (status, &json!(code)), "{e}");
    }
    assert_eq!(
        app.get_json_as("/v1/me", &token).await["email_confirmed"],
        false
    );

    // Opened (a page that changes nothing), then followed.
    let page = app
        .client
        .get(format!("{}/v1/auth/confirm-email?t={t}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        app.get_json_as("/v1/me", &token).await["email_confirmed"],
        false
    );
    let (s, _) = confirm(t.to_owned()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.get_json_as("/v1/me", &token).await["email_confirmed"],
        true
    );
    let (s, e) = ask_confirmation(&app, &token).await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::CONFLICT, &json!("already_confirmed"))
    );

    // Confirmed: the next reply waits for its email.
    reply("second").await;
    assert_eq!(stored(&app, &user).await[1].3, "pending");
}

/// An origin without an SMTP server sends no confirmation, and says so.
#[tokio::test]
async fn no_email_service_no_confirmation() {
    let app = TestApp::spawn().await;
    let token = signup(&app, "new@example.com").await;
    let (s, e) = ask_confirmation(&app, &token).await;
    assert_eq!(
        (s, &e["error"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("email_unavailable"))
    );
}
