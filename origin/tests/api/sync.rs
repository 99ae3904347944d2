//! The outbox reaches an edge that fails at first: every record arrives, signed, in order.
//! The receiver here is a plain HTTP server standing in for the edge's sync endpoint (the real
//! edge receives the same pushes in the end-to-end tests).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use origin::users;
use serde_json::json;
use shared_wasm::jwt::Role;
use shared_wasm::record::UserRecord;
use shared_wasm::sync::{self, SyncBatch, SyncItem};
use shared_wasm::UnixTime;

use crate::helpers::{now, TestApp, SYNC_SECRET};

#[derive(Clone, Default)]
struct Receiver {
    failures_left: Arc<Mutex<u32>>,
    received: Arc<Mutex<Vec<SyncItem>>>,
    nonces: Arc<Mutex<Vec<String>>>,
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut left = rx.failures_left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let header = headers.get(sync::HEADER).and_then(|v| v.to_str().ok());
    let Ok(nonce) = sync::verify(SYNC_SECRET.as_bytes(), header, &body, UnixTime(now())) else {
        return StatusCode::UNAUTHORIZED;
    };
    let mut nonces = rx.nonces.lock().unwrap();
    if nonces.iter().any(|n| n == nonce) {
        return StatusCode::CONFLICT;
    }
    nonces.push(nonce.to_owned());
    let batch = SyncBatch::from_cbor(&body).expect("a valid batch");
    rx.received.lock().unwrap().extend(batch.items);
    StatusCode::OK
}

/// Serves `rx` on a free loopback port; its sync URL.
async fn listen(rx: &Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/internal/sync", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/internal/sync", post(receive))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[tokio::test]
async fn outbox_delivers_every_record_in_order_through_failures() {
    let rx = Receiver {
        failures_left: Arc::new(Mutex::new(3)),
        ..Receiver::default()
    };
    let url = listen(&rx).await;

    let app = TestApp::spawn_syncing_to(&url).await;
    let id = users::ensure_user(
        &app.state.db,
        "a@example.com",
        "pw-pw-pw",
        Role::User,
        "test",
    )
    .await
    .unwrap()
    .id;
    // Five revocations of one user: versions 2..=6, each in its own transaction.
    for _ in 0..5 {
        let login = app.login("a@example.com", "pw-pw-pw").await;
        let token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app
            .post("/v1/auth/logout", Some(&token), json!({"everywhere": true}))
            .await;
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let user_key = UserRecord::key(&id);
    loop {
        let users: Vec<u64> = rx
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|i| i.key == user_key)
            .map(|i| i.version)
            .collect();
        if users.len() >= 5 {
            assert_eq!(
                users,
                vec![2, 3, 4, 5, 6],
                "in order, none lost or repeated"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {users:?} arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each logout also revoked its session.
    let sessions = rx
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|i| i.key.starts_with("session:"))
        .count();
    assert_eq!(sessions, 5);
    assert_eq!(
        *rx.failures_left.lock().unwrap(),
        0,
        "the failures were retried"
    );

    // Once delivered, the outbox keeps only the newest row of each key: what a new edge needs.
    // (The pusher compacts right after the receiver's 200, so give it a moment.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT key, version FROM edge_outbox WHERE key = $1")
                .bind(&user_key)
                .fetch_all(&app.state.db)
                .await
                .unwrap();
        if rows.len() == 1 || std::time::Instant::now() > deadline {
            assert_eq!(rows, [(user_key.clone(), 6)]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Many writers at once: the outbox's order must be commit order, or a pusher that has sent
/// a later row could pass over an earlier one still committing and never send it (the reason
/// for `db::begin_write`'s lock on PostgreSQL). Every version of every video arrives, in order.
#[tokio::test]
async fn concurrent_writers_lose_no_record() {
    let rx = Receiver::default();
    let url = listen(&rx).await;
    let app = TestApp::spawn_syncing_to(&url).await;
    let (_, creator) = app.user("c@example.com", Role::Creator).await;

    const VIDEOS: usize = 4;
    const EDITS: usize = 10;
    let mut ids = Vec::new();
    for i in 0..VIDEOS {
        let r = app
            .post(
                "/v1/videos",
                Some(&creator),
                json!({"title": format!("v{i}"), "visibility": "public"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let mut edits = tokio::task::JoinSet::new();
    for id in &ids {
        for n in 0..EDITS {
            let req = app
                .client
                .patch(format!("{}/v1/videos/{id}", app.url))
                .bearer_auth(&creator)
                .json(&json!({"title": format!("edit {n}")}));
            edits.spawn(req.send());
        }
    }
    while let Some(r) = edits.join_next().await {
        assert_eq!(r.unwrap().unwrap().status(), 200);
    }

    let want: Vec<u64> = (1..=(EDITS as u64 + 1)).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for id in &ids {
        let key = format!("video:{id}");
        loop {
            let got: Vec<u64> = rx
                .received
                .lock()
                .unwrap()
                .iter()
                .filter(|i| i.key == key)
                .map(|i| i.version)
                .collect();
            if got.len() >= want.len() {
                assert_eq!(got, want, "{key}: every version, in order, once");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{key}: only {got:?} arrived"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The guarantee behind the test above, shown directly: while one transaction that queues
/// records is open, a second one waits for it, so rows commit in `seq` order.
#[tokio::test]
async fn outbox_writers_take_turns() {
    let app = TestApp::spawn().await;
    let db = app.state.db.clone();
    let mut first = origin::db::begin_write(&db).await.unwrap();
    origin::feeds::bump(&mut first, &["home".to_owned()])
        .await
        .unwrap();
    let second = tokio::spawn(async move {
        let mut tx = origin::db::begin_write(&db).await.unwrap();
        origin::feeds::bump(&mut tx, &["channel:x".to_owned()])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!second.is_finished(), "the second writer went ahead");
    first.commit().await.unwrap();
    second.await.unwrap();
    let keys: Vec<(String,)> = sqlx::query_as("SELECT key FROM edge_outbox ORDER BY seq")
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    let keys: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(keys, ["feedver:home", "feedver:channel:x"]);
}
