//! Creator uploads: single-use signed URLs, plain PUT, tus 1.0 with a resumed upload after a
//! dropped connection, termination, expiry and the sweep, and every refusal.

use std::time::Duration;

use bytes_of::data;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared_wasm::jwt::Role;
use shared_wasm::VideoId;

use crate::helpers::{now, TestApp, MAX_UPLOAD};

mod bytes_of {
    /// `n` bytes that start as an MP4 does (an `ftyp` box), then a fixed pseudo-random
    /// pattern: what the upload's checks take for an MP4 (only the transcoder would find out).
    pub fn data(n: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise = std::iter::from_fn(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Some(x as u8)
        });
        b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"
            .iter()
            .copied()
            .chain(noise)
            .take(n)
            .collect()
    }
}

/// A creator's new video and an upload ticket for it.
pub(crate) async fn ticket(app: &TestApp, token: &str) -> (String, Value) {
    let id = app.new_video(token, "Upload").await;
    let r = app
        .post(&format!("/v1/videos/{id}/upload"), Some(token), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    (id, r.json().await.unwrap())
}

pub(crate) async fn state_of(app: &TestApp, id: &str) -> String {
    let (s,): (String,) = sqlx::query_as("SELECT state FROM videos WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    s
}

/// The stored source of `id`: the object its transcoding job names.
pub(crate) async fn source(app: &TestApp, id: &str) -> Option<Vec<u8>> {
    let key: Option<(String,)> =
        sqlx::query_as("SELECT source FROM transcode_jobs WHERE video_id = $1")
            .bind(id)
            .fetch_optional(&app.state.db)
            .await
            .unwrap();
    let obj = app.state.store.get(&key?.0).await.unwrap()?;
    Some(obj.bytes().await.unwrap())
}

pub(crate) fn partial_files(app: &TestApp) -> usize {
    let dir = app.state.settings.storage.upload_dir().join("partial");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

pub(crate) async fn put(app: &TestApp, url: &str, ct: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = app
        .client
        .put(url)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn put_uploads_land_whole_once_and_only_as_allowed() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let (_, bob) = app.user("bob@example.com", Role::Creator).await;
    let (_, viewer) = app.user("v@example.com", Role::User).await;
    let (id, t) = ticket(&app, &ada).await;
    let url = t["upload_url"].as_str().unwrap().to_owned();
    assert_eq!(t["max_bytes"], MAX_UPLOAD);
    assert!(t["content_types"]
        .as_array()
        .unwrap()
        .contains(&json!("video/mp4")));
    // Only the owner gets a ticket.
    let path = format!("/v1/videos/{id}/upload");
    assert_eq!(
        app.post(&path, Some(&bob), json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&path, Some(&viewer), json!({})).await.status(),
        StatusCode::FORBIDDEN
    );

    // Refusals before anything is written: type, forgery.
    let (s, e) = put(&app, &url, "text/plain", data(10)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_type"))
    );
    let forged = format!("{}A", &url[..url.len() - 1]).replace("A", "B");
    let (s, e) = put(&app, &forged, "video/mp4", data(10)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_ticket"))
    );
    let bent = url.replacen(&MAX_UPLOAD.to_string(), &(MAX_UPLOAD * 2).to_string(), 1);
    let (s, _) = put(&app, &bent, "video/mp4", data(10)).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the size is bound by the signature"
    );

    // The upload.
    let file = data(1 << 20);
    let (s, v) = put(&app, &url, "video/mp4", file.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["bytes"], 1 << 20);
    assert_eq!(source(&app, &id).await.unwrap(), file);
    assert_eq!(partial_files(&app), 0);
    assert_eq!(state_of(&app, &id).await, "processing");
    let (version,): (i64,) =
        sqlx::query_as("SELECT version FROM edge_outbox WHERE key = $1 ORDER BY seq DESC LIMIT 1")
            .bind(format!("video:{id}"))
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(version, 2, "the processing state goes to the edge");

    // Single use; and a video with its file takes no new ticket.
    let (s, e) = put(&app, &url, "video/mp4", data(10)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::GONE, Some("ticket_used"))
    );
    let r = app.post(&path, Some(&ada), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(source(&app, &id).await.unwrap(), file, "untouched");
}

#[tokio::test]
async fn oversized_and_expired_uploads_leave_nothing() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    // Streamed without a length: refused at the cap, the partial file removed.
    let (id, t) = ticket(&app, &ada).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..=(MAX_UPLOAD >> 16))
        .map(|_| Ok(data(1 << 16)))
        .collect();
    let r = app
        .client
        .put(t["upload_url"].as_str().unwrap())
        .header("content-type", "video/webm")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    } // (or the server closed the connection while the client was still sending)
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(partial_files(&app), 0);
    assert!(source(&app, &id).await.is_none());
    let sources = app.state.settings.storage.upload_dir().join("sources");
    assert!(!sources.exists() || std::fs::read_dir(sources).unwrap().next().is_none());
    assert_eq!(state_of(&app, &id).await, "uploading");

    // An expired URL (signed with the origin's own key, so only the time is wrong).
    let (id, _) = ticket(&app, &ada).await;
    let expired = origin::uploads::ticket::issue(
        &app.state.upload_key[..],
        &origin::uploads::ticket::Ticket {
            video: VideoId::parse(&id).unwrap(),
            expires_at: now() - 1,
            max_bytes: MAX_UPLOAD,
            types: vec!["video/mp4"],
            nonce: "expired-nonce".into(),
        },
    );
    let (s, e) = put(
        &app,
        &format!("{}/uploads/{expired}", app.origin_url),
        "video/mp4",
        data(10),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::GONE, Some("ticket_expired"))
    );
}

async fn tus(app: &TestApp, method: Method, url: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, url)
        .header("tus-resumable", "1.0.0")
}

pub(crate) fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub(crate) async fn create(
    app: &TestApp,
    tus_url: &str,
    length: usize,
    filetype: &str,
) -> reqwest::Response {
    use base64::Engine;
    let meta = format!(
        "filename {},filetype {}",
        base64::engine::general_purpose::STANDARD.encode("clip.mp4"),
        base64::engine::general_purpose::STANDARD.encode(filetype)
    );
    tus(app, Method::POST, tus_url)
        .await
        .header("upload-length", length.to_string())
        .header("upload-metadata", meta)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn patch(
    app: &TestApp,
    url: &str,
    offset: u64,
    body: reqwest::Body,
) -> reqwest::Response {
    tus(app, Method::PATCH, url)
        .await
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .body(body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn offset(app: &TestApp, url: &str) -> (StatusCode, u64) {
    let r = tus(app, Method::HEAD, url).await.send().await.unwrap();
    (
        r.status(),
        header(&r, "upload-offset").parse().unwrap_or(u64::MAX),
    )
}

#[tokio::test]
async fn tus_uploads_resume_after_a_dropped_connection() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let r = app
        .client
        .request(Method::OPTIONS, format!("{}/uploads/tus", app.origin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "tus-version"), "1.0.0");
    assert_eq!(
        header(&r, "tus-extension"),
        "creation,expiration,termination"
    );
    assert_eq!(header(&r, "tus-max-size"), MAX_UPLOAD.to_string());

    let (id, t) = ticket(&app, &ada).await;
    let tus_url = t["tus_url"].as_str().unwrap();
    let r = app
        .client
        .post(tus_url)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::PRECONDITION_FAILED,
        "no Tus-Resumable"
    );
    let r = create(&app, tus_url, MAX_UPLOAD as usize + 1, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = create(&app, tus_url, 10, "application/pdf").await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let file = data(3 << 20);
    let r = create(&app, tus_url, file.len(), "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(!header(&r, "upload-expires").is_empty());
    let upload = header(&r, "location");
    assert!(upload.starts_with(&format!("{}/uploads/tus/", app.origin_url)));
    assert_eq!(offset(&app, &upload).await, (StatusCode::OK, 0));
    // The ticket made one upload; it makes no other.
    assert_eq!(
        create(&app, tus_url, 10, "video/mp4").await.status(),
        StatusCode::GONE
    );

    // The connection drops after 1 MiB.
    let sent = 1usize << 20;
    let head: Vec<u8> = file[..sent].to_vec();
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let head = head.clone();
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(head), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Some((Err(std::io::Error::other("cable pulled")), 2))
                }
                _ => None,
            }
        }
    });
    let dropped = tus(&app, Method::PATCH, &upload)
        .await
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", "0")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    assert!(dropped.is_err(), "the request failed on the client's side");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let got = loop {
        let (s, got) = offset(&app, &upload).await;
        assert_eq!(s, StatusCode::OK);
        if got == sent as u64 || std::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(got > 0 && got <= sent as u64, "{got}");
    assert_eq!(
        state_of(&app, &id).await,
        "uploading",
        "nothing visible yet"
    );

    // A wrong offset or type is refused; the rest from the reported offset completes it. (The
    // dropped request may still hold the upload until its body goes idle: 423, and the offset
    // is only checked under that lock.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = patch(&app, &upload, got + 1, data(1).into()).await;
        if r.status() != StatusCode::LOCKED || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = tus(&app, Method::PATCH, &upload)
        .await
        .header("upload-offset", got.to_string())
        .body(data(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = patch(&app, &upload, got, file[got as usize..].to_vec().into()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "upload-offset"), file.len().to_string());
    assert_eq!(source(&app, &id).await.unwrap(), file);
    assert_eq!(state_of(&app, &id).await, "processing");
    assert_eq!(offset(&app, &upload).await.0, StatusCode::NOT_FOUND);
    assert_eq!(partial_files(&app), 0);
}

#[tokio::test]
async fn terminated_and_expired_uploads_are_removed() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let root = app.state.settings.storage.upload_dir();

    // Termination.
    let (id, t) = ticket(&app, &ada).await;
    let r = create(&app, t["tus_url"].as_str().unwrap(), 1000, "video/mp4").await;
    let upload = header(&r, "location");
    assert_eq!(
        patch(&app, &upload, 0, data(100).into()).await.status(),
        StatusCode::NO_CONTENT
    );
    let r = tus(&app, Method::DELETE, &upload)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(offset(&app, &upload).await.0, StatusCode::NOT_FOUND);
    assert_eq!(partial_files(&app), 0);
    assert_eq!(state_of(&app, &id).await, "uploading");

    // Expiry: refused at once, removed by the sweep; a live upload is left alone.
    let (_, t) = ticket(&app, &ada).await;
    let r = create(&app, t["tus_url"].as_str().unwrap(), 1000, "video/mp4").await;
    let old = header(&r, "location");
    patch(&app, &old, 0, data(100).into()).await;
    let (_, t) = ticket(&app, &ada).await;
    let r = create(&app, t["tus_url"].as_str().unwrap(), 1000, "video/mp4").await;
    let live = header(&r, "location");
    let old_id = old.rsplit('/').next().unwrap();
    sqlx::query("UPDATE uploads SET expires_at = $1 WHERE id = $2")
        .bind(now() as i64 - 1)
        .bind(old_id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let r = tus(&app, Method::HEAD, &old).await.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    // A plain upload's partial file from a crashed process counts as abandoned once stale.
    std::fs::write(root.join("partial").join("put-crashed"), b"half").unwrap();
    let swept = origin::uploads::store::sweep(&app.state.db, &root, now(), 0)
        .await
        .unwrap();
    assert_eq!(swept, 2);
    assert_eq!(partial_files(&app), 1, "the live upload's file stays");
    assert_eq!(offset(&app, &live).await, (StatusCode::OK, 0));
    assert_eq!(offset(&app, &old).await.0, StatusCode::NOT_FOUND);
}

/// The store fails as the last bytes arrive: a 503 with a JSON body, the upload kept whole and
/// the video still waiting; once the store is back, a PATCH of no bytes at the end finishes it.
#[tokio::test]
async fn a_store_failure_at_the_end_of_a_tus_upload_can_be_retried() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let (id, t) = ticket(&app, &ada).await;
    let file = data(100_000);
    let r = create(
        &app,
        t["tus_url"].as_str().unwrap(),
        file.len(),
        "video/mp4",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let upload = header(&r, "location");
    // The local store cannot take it: where its sources go is a plain file, not a folder.
    let sources = app.state.settings.storage.upload_dir().join("sources");
    std::fs::write(&sources, b"in the way").unwrap();

    let r = patch(&app, &upload, 0, file.clone().into()).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "storage_unavailable", "{body}");
    assert_eq!(
        offset(&app, &upload).await,
        (StatusCode::OK, file.len() as u64)
    );
    assert_eq!(state_of(&app, &id).await, "uploading");

    std::fs::remove_file(&sources).unwrap();
    let r = patch(&app, &upload, file.len() as u64, Vec::new().into()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(source(&app, &id).await.unwrap(), file);
    assert_ne!(state_of(&app, &id).await, "uploading");
    assert_eq!(
        offset(&app, &upload).await.0,
        StatusCode::NOT_FOUND,
        "done with"
    );
    assert_eq!(partial_files(&app), 0);
}

/// A second URL for a video that got its file in the meantime is refused before its body is
/// read (the body here never ends: only an answer that does not wait for it can come back),
/// by PUT and by tus creation.
#[tokio::test]
async fn an_upload_for_a_video_that_has_its_file_is_refused_before_its_body() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let (id, first) = ticket(&app, &ada).await;
    let more = || async {
        let r = app
            .post(&format!("/v1/videos/{id}/upload"), Some(&ada), json!({}))
            .await;
        r.json::<Value>().await.unwrap()
    };
    let (second, third) = (more().await, more().await);
    let (s, _) = put(
        &app,
        first["upload_url"].as_str().unwrap(),
        "video/mp4",
        data(4096),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    let r = app
        .put_without_end(second["upload_url"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "already_uploaded"
    );
    let r = create(&app, third["tus_url"].as_str().unwrap(), 4096, "video/mp4").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(partial_files(&app), 0);
}
