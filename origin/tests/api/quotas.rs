//! Per-creator bounds on open uploads and bytes in flight, and the free-space check: refusals
//! come before a byte is written and leave nothing behind (no row, no partial file, the ticket
//! still usable), hold under concurrent starts, and finishing or abandoning an upload makes
//! room again.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared_wasm::jwt::Role;
use tokio::sync::mpsc;

use crate::helpers::{now, TestApp, MAX_UPLOAD};
use crate::uploads::{create, header, offset, partial_files, patch, put, state_of, ticket};

/// An MP4's first box, then zeros: what the upload checks take for an MP4.
fn mp4(n: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    v.resize(n, 0);
    v
}

async fn rows(app: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    n
}

async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn terminate(app: &TestApp, upload: &str) -> StatusCode {
    app.client
        .request(Method::DELETE, upload)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap()
        .status()
}

/// A PUT whose body keeps coming (a chunk every 200 ms, within the idle limit) until the
/// sender is dropped; then the connection fails, as when a client goes away.
fn streaming_put(app: &TestApp, url: &str) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<()>(1);
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if first {
            return Some((Ok(mp4(1024)), (rx, false)));
        }
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(None) => Some((Err(std::io::Error::other("client gone")), (rx, false))),
            _ => Some((Ok(vec![0u8; 1024]), (rx, false))),
        }
    });
    let req = app
        .client
        .put(url)
        .header("content-type", "video/mp4")
        .body(reqwest::Body::wrap_stream(stream));
    let task = tokio::spawn(async move {
        let _ = req.send().await;
    });
    (tx, task)
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two open uploads at most: a third is 429 `too_many_uploads` by tus and by PUT (before the
/// PUT's body is read), a PUT still streaming counts, another creator is not affected, and a
/// refused start leaves its ticket usable once there is room.
#[tokio::test]
async fn open_uploads_are_bounded_by_put_and_by_tus() {
    let app = TestApp::spawn_tweaked(|s| s.storage.max_open_uploads = 2).await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let (_, bob) = app.user("bob@example.com", Role::Creator).await;

    let (_, first) = ticket(&app, &ada).await;
    let r = create(&app, first["tus_url"].as_str().unwrap(), 1000, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first_upload = header(&r, "location");
    // A PUT in progress is the second.
    let (_, streamed) = ticket(&app, &ada).await;
    let (sender, streaming) = streaming_put(&app, streamed["upload_url"].as_str().unwrap());
    eventually("the PUT started", async || {
        rows(&app, "put_uploads").await == 1
    })
    .await;

    let (third_id, third) = ticket(&app, &ada).await;
    let r = create(&app, third["tus_url"].as_str().unwrap(), 1000, "video/mp4").await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads".into())
    );
    let r = app
        .put_without_end(third["upload_url"].as_str().unwrap())
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads".into())
    );
    assert_eq!(rows(&app, "uploads").await, 1);
    assert_eq!(rows(&app, "put_uploads").await, 1);
    assert_eq!(
        partial_files(&app),
        2,
        "the tus upload's and the streaming PUT's"
    );
    assert_eq!(state_of(&app, &third_id).await, "uploading");

    // Bounds are per creator.
    let (bob_video, t) = ticket(&app, &bob).await;
    let (s, _) = put(
        &app,
        t["upload_url"].as_str().unwrap(),
        "video/mp4",
        mp4(4096),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(state_of(&app, &bob_video).await, "processing");

    // The client of the streaming PUT goes away: its place is free again, and the refused
    // ticket works.
    drop(sender);
    streaming.await.unwrap();
    eventually("the dropped PUT is closed", async || {
        rows(&app, "put_uploads").await == 0
    })
    .await;
    let (s, body) = put(
        &app,
        third["upload_url"].as_str().unwrap(),
        "video/mp4",
        mp4(4096),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(state_of(&app, &third_id).await, "processing");
    assert_eq!(partial_files(&app), 1, "only the open tus upload's");
    assert_eq!(offset(&app, &first_upload).await, (StatusCode::OK, 0));
}

/// With 6 MiB in flight allowed: 4 MiB and 2 MiB open, then nothing more (429
/// `upload_quota_exceeded`, by tus and by PUT) until one is terminated.
#[tokio::test]
async fn bytes_in_flight_are_bounded() {
    let bound = MAX_UPLOAD + MAX_UPLOAD / 2;
    let app = TestApp::spawn_tweaked(|s| s.storage.max_upload_bytes_in_flight = Some(bound)).await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let mut tickets = Vec::new();
    for _ in 0..5 {
        tickets.push(ticket(&app, &ada).await.1);
    }
    let tus_url = |i: usize| tickets[i]["tus_url"].as_str().unwrap().to_owned();

    let r = create(&app, &tus_url(0), MAX_UPLOAD as usize, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let big = header(&r, "location");
    let over = (bound - MAX_UPLOAD + 1) as usize;
    let r = create(&app, &tus_url(1), over, "video/mp4").await;
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            "upload_quota_exceeded".into()
        )
    );
    let r = create(&app, &tus_url(1), over - 1, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED, "exactly at the bound");
    let r = app
        .client
        .put(tickets[2]["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(mp4(1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            "upload_quota_exceeded".into()
        )
    );
    assert_eq!(rows(&app, "uploads").await, 2);
    assert_eq!(rows(&app, "put_uploads").await, 0);
    assert_eq!(partial_files(&app), 2);

    assert_eq!(terminate(&app, &big).await, StatusCode::NO_CONTENT);
    let (s, body) = put(
        &app,
        tickets[2]["upload_url"].as_str().unwrap(),
        "video/mp4",
        mp4(4096),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let r = create(&app, &tus_url(3), MAX_UPLOAD as usize, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Ten tus creations at once by one creator with room for three: exactly three succeed.
#[tokio::test]
async fn concurrent_starts_cannot_pass_the_bound() {
    let app = TestApp::spawn_tweaked(|s| s.storage.max_open_uploads = 3).await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let mut urls = Vec::new();
    for _ in 0..10 {
        urls.push(
            ticket(&app, &ada).await.1["tus_url"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let app = &app;
    let answers = futures_util::future::join_all(urls.iter().map(|url| async move {
        error_or_created(create(app, url, 1000, "video/mp4").await).await
    }))
    .await;
    let created = answers
        .iter()
        .filter(|a| a.0 == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|a| **a == (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads".into()))
        .count();
    assert_eq!((created, refused), (3, 7), "{answers:?}");
    assert_eq!(rows(app, "uploads").await, 3);
    assert_eq!(partial_files(app), 3);
}

async fn error_or_created(r: reqwest::Response) -> (StatusCode, String) {
    if r.status() == StatusCode::CREATED {
        return (StatusCode::CREATED, String::new());
    }
    error_of(r).await
}

/// An origin whose reserve is larger than any disk answers 507 `insufficient_storage` to a PUT,
/// a tus creation and a tus PATCH, writing nothing; the same tickets and upload then work on
/// an origin (same database and folders) with a normal reserve.
#[tokio::test]
async fn no_room_on_disk_is_507_and_writes_nothing() {
    let app = TestApp::spawn_tweaked(|s| s.storage.min_free_bytes = 1 << 30).await;
    let upload_dir = app.state.settings.storage.upload_dir();
    let db = app.state.settings.database.url.clone();
    let full = TestApp::spawn_tweaked(|s| {
        s.database.url = db;
        s.storage.upload_dir = Some(upload_dir.display().to_string());
        s.storage.min_free_bytes = u64::MAX / 2;
    })
    .await;
    let on_full = |url: &str| url.replace(&app.origin_url, &full.origin_url);
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;

    let (put_video, t) = ticket(&app, &ada).await;
    let url = t["upload_url"].as_str().unwrap();
    let r = app
        .client
        .put(on_full(url))
        .header("content-type", "video/mp4")
        .body(mp4(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage".into()
        )
    );
    assert_eq!(partial_files(&app), 0);
    assert_eq!(rows(&app, "put_uploads").await, 0);
    assert_eq!(state_of(&app, &put_video).await, "uploading");
    let (s, body) = put(&app, url, "video/mp4", mp4(4096)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    let (tus_video, t) = ticket(&app, &ada).await;
    let tus_url = t["tus_url"].as_str().unwrap();
    let r = create(&app, &on_full(tus_url), 4096, "video/mp4").await;
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage".into()
        )
    );
    assert_eq!(rows(&app, "uploads").await, 0);
    assert_eq!(partial_files(&app), 0);
    let r = create(&app, tus_url, 4096, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let upload = header(&r, "location");

    let r = patch(&app, &on_full(&upload), 0, mp4(4096).into()).await;
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage".into()
        )
    );
    assert_eq!(offset(&app, &upload).await, (StatusCode::OK, 0));
    let r = patch(&app, &upload, 0, mp4(4096).into()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(state_of(&app, &tus_video).await, "processing");
    assert_eq!(partial_files(&app), 0);
}

/// With one upload open at most, each way an upload ends makes room for the next: a tus upload
/// completed, one terminated, one expired, a PUT completed, and a PUT's row a crashed process
/// left (swept once its file is stale).
#[tokio::test]
async fn finishing_or_abandoning_an_upload_frees_its_place() {
    let app = TestApp::spawn_tweaked(|s| s.storage.max_open_uploads = 1).await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let mut tickets = Vec::new();
    for _ in 0..6 {
        tickets.push(ticket(&app, &ada).await);
    }
    let tus_url = |i: usize| tickets[i].1["tus_url"].as_str().unwrap().to_owned();
    let refused = async |i: usize| {
        let r = create(&app, &tus_url(i), 1000, "video/mp4").await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads".into()),
            "ticket {i}"
        );
    };

    // Completed.
    let r = create(&app, &tus_url(0), 4096, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let upload = header(&r, "location");
    refused(1).await;
    let r = patch(&app, &upload, 0, mp4(4096).into()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(state_of(&app, &tickets[0].0).await, "processing");

    // Terminated.
    let r = create(&app, &tus_url(1), 1000, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    refused(2).await;
    assert_eq!(
        terminate(&app, &header(&r, "location")).await,
        StatusCode::NO_CONTENT
    );

    // Expired.
    let r = create(&app, &tus_url(2), 1000, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    refused(3).await;
    sqlx::query("UPDATE uploads SET expires_at = $1")
        .bind(now() as i64 - 1)
        .execute(&app.state.db)
        .await
        .unwrap();

    // A PUT, completed.
    let (s, body) = put(
        &app,
        tickets[3].1["upload_url"].as_str().unwrap(),
        "video/mp4",
        mp4(4096),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(rows(&app, "put_uploads").await, 0);

    // A PUT of a process that died mid-way.
    sqlx::query(
        "INSERT INTO put_uploads (id, video_id, bytes, created_at) VALUES ('put-crashed', $1, 10, $2)",
    )
    .bind(&tickets[4].0)
    .bind(now() as i64 - 7200)
    .execute(&app.state.db)
    .await
    .unwrap();
    refused(5).await;
    let root = app.state.settings.storage.upload_dir();
    origin::uploads::store::sweep(&app.state.db, &root, now(), 3600)
        .await
        .unwrap();
    assert_eq!(rows(&app, "put_uploads").await, 0);
    let r = create(&app, &tus_url(5), 1000, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
