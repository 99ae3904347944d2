//! Channels: several per creator, videos in them, feeds and subscriptions per channel.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;

async fn make_channel(app: &TestApp, token: &str, name: &str) -> String {
    let r = app
        .post("/v1/channels", Some(token), json!({"name": name}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn ready_video(app: &TestApp, token: &str, body: Value) -> String {
    let r = app.post("/v1/videos", Some(token), body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    // Feeds list only playable videos; uploads are another issue's, so mark it ready here.
    sqlx::query("UPDATE videos SET state = 'ready' WHERE id = $1")
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    id
}

async fn feed_ids(app: &TestApp, channel: &str) -> Vec<String> {
    let page = app
        .get_json(&format!("/v1/feeds/channel/{channel}?limit=50"))
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn feed_version(app: &TestApp, channel: &str) -> i64 {
    let v: Option<(i64,)> = sqlx::query_as("SELECT version FROM feed_versions WHERE feed = $1")
        .bind(format!("channel:{channel}"))
        .fetch_optional(&app.state.db)
        .await
        .unwrap();
    v.map_or(0, |(v,)| v)
}

#[tokio::test]
async fn creators_keep_videos_in_several_channels() {
    let app = TestApp::spawn().await;
    let (ada_id, ada) = app.user("ada@example.com", Role::Creator).await;
    let (_, bob) = app.user("bob@example.com", Role::Creator).await;
    let (_, viewer) = app.user("v@example.com", Role::User).await;

    // The first video without a channel named makes the default channel.
    let first = ready_video(&app, &ada, json!({"title": "One", "visibility": "public"})).await;
    let cooking = make_channel(&app, &ada, "Cooking").await;
    let list = app.get_json(&format!("/v1/users/{ada_id}/channels")).await;
    let ids: Vec<&str> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1], cooking, "the default channel comes first");
    let default = ids[0].to_owned();
    let soup = ready_video(
        &app,
        &ada,
        json!({"title": "Soup", "visibility": "public", "channel": cooking}),
    )
    .await;
    assert_eq!(feed_ids(&app, &default).await, std::slice::from_ref(&first));
    assert_eq!(feed_ids(&app, &cooking).await, std::slice::from_ref(&soup));

    // Someone else's channel is not the caller's to use.
    let r = app
        .post(
            "/v1/videos",
            Some(&bob),
            json!({"title": "Mine", "visibility": "public", "channel": cooking}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "channel");

    // Moving a video changes both channel feeds (and both versions).
    let (before_default, before_cooking) = (
        feed_version(&app, &default).await,
        feed_version(&app, &cooking).await,
    );
    let r = app
        .send(
            Method::PATCH,
            &format!("/v1/videos/{first}"),
            &ada,
            Some(json!({"channel": cooking})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["channel_id"], cooking);
    assert!(feed_ids(&app, &default).await.is_empty());
    assert_eq!(feed_ids(&app, &cooking).await.len(), 2);
    assert!(feed_version(&app, &default).await > before_default);
    assert!(feed_version(&app, &cooking).await > before_cooking);

    // Renaming: the owner may, another creator's attempt finds nothing, bad names are 422.
    let path = format!("/v1/channels/{cooking}");
    let r = app
        .send(Method::PATCH, &path, &ada, Some(json!({"name": "Kitchen"})))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Kitchen");
    let r = app
        .send(Method::PATCH, &path, &bob, Some(json!({"name": "Mine"})))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .send(Method::PATCH, &path, &ada, Some(json!({"name": " "})))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .send(Method::PATCH, &path, &viewer, Some(json!({"name": "X"})))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a plain user has no channels"
    );

    // Only an empty channel is deleted; its subscribers' subscriptions go with it.
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/channels/{default}/subscription"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.send(Method::DELETE, &path, &ada, None).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "channel_not_empty"
    );
    let gone = format!("/v1/channels/{default}");
    let r = app.send(Method::DELETE, &gone, &ada, None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .client
        .get(format!("{}{gone}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .get(format!("{}/v1/feeds/channel/{default}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mine = app.get_json_as("/v1/me/subscriptions", &viewer).await;
    assert_eq!(mine["channels"], json!([]));
}

#[tokio::test]
async fn deleting_a_creator_empties_their_channels_feeds() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let channel = make_channel(&app, &ada, "Travel").await;
    let video = ready_video(
        &app,
        &ada,
        json!({"title": "Alps", "visibility": "public", "channel": channel}),
    )
    .await;
    let before = feed_version(&app, &channel).await;
    let r = app
        .send(
            Method::DELETE,
            "/v1/me",
            &ada,
            Some(json!({"password": crate::helpers::PW})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(feed_version(&app, &channel).await > before);
    // The video stays, playable, in no channel and without an owner.
    let home = app.get_json("/v1/feeds/home").await;
    let item = &home["items"][0];
    assert_eq!(item["id"], video.as_str());
    assert_eq!(item["channel_id"], Value::Null);
    assert_eq!(item["owner_id"], Value::Null);
}

/// The cap of 20 channels a creator holds under concurrent requests: exactly 20 are made, the
/// rest are 409, none is a 500.
#[tokio::test]
async fn the_channel_cap_holds_under_concurrent_requests() {
    let app = TestApp::spawn().await;
    let (ada_id, ada) = app.user("ada@example.com", Role::Creator).await;
    let made = futures_util::future::join_all((0..30).map(|i| {
        app.post(
            "/v1/channels",
            Some(&ada),
            json!({"name": format!("Channel {i}")}),
        )
    }))
    .await;
    let mut statuses: Vec<u16> = made.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [[201u16; 20].as_slice(), &[409; 10]].concat(),
        "{statuses:?}"
    );
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM channels WHERE owner_id = $1")
        .bind(&ada_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 20);
}
