//! An uploaded file becomes an HLS ladder: probe, one task per rendition, poster, master
//! playlist, the video `ready` and its record queued for the edge; an unreadable file fails
//! the video with the reason.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;

/// Uploads `file` by PUT for a new video of `token`'s; the video id.
pub async fn upload(app: &TestApp, token: &str, file: Vec<u8>) -> String {
    let id = app.new_video(token, "Clip").await;
    let t: Value = app
        .post(&format!("/v1/videos/{id}/upload"), Some(token), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .client
        .put(t["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    id
}

pub(crate) async fn status_until(app: &TestApp, token: &str, id: &str, want: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let s = app
            .get_json_as(&format!("/v1/videos/{id}/transcode"), token)
            .await;
        if s["state"] == want {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "still {s}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An object in the origin's store, whichever it is.
async fn stored(app: &TestApp, key: &str) -> Option<Vec<u8>> {
    let obj = app.state.store.get(key).await.unwrap()?;
    Some(obj.bytes().await.unwrap())
}

async fn text(app: &TestApp, key: &str) -> String {
    String::from_utf8(stored(app, key).await.unwrap_or_else(|| panic!("no {key}"))).unwrap()
}

#[tokio::test]
async fn an_upload_becomes_a_ladder_no_higher_than_its_source() {
    let app = TestApp::spawn().await;
    ladder_from_an_upload(&app).await;
    let sources = app.state.settings.storage.upload_dir().join("sources");
    let left: Vec<_> = std::fs::read_dir(sources).unwrap().collect();
    assert!(
        left.is_empty(),
        "the deleted video's source is gone: {left:?}"
    );
}

#[tokio::test]
async fn with_an_s3_bucket_the_ladder_goes_to_the_bucket() {
    let endpoint = e2e::s3_endpoint();
    let app = TestApp::spawn_on_s3(&endpoint).await;
    let id = ladder_from_an_upload(&app).await;
    // Nothing of it on the origin's disk: not the media, not the source.
    let storage = &app.state.settings.storage;
    assert!(!Path::new(&storage.media_dir).join(&id).exists());
    assert!(!storage.upload_dir().join("sources").exists());
    // And nothing of it left in the bucket once deleted.
    let s3 = storage.s3.as_ref().unwrap();
    let bucket = origin::storage::s3::Bucket::new(s3).unwrap();
    let left = bucket.list("").await.unwrap();
    assert!(left.is_empty(), "{id}: {left:?}");
}

/// Uploads a 640x360 clip and checks the ladder in `app`'s store; the video id.
async fn ladder_from_an_upload(app: &TestApp) -> String {
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload(app, &ada, e2e::render_source(dir.path(), 640, 360, 4)).await;
    let s = status_until(app, &ada, &id, "ready").await;
    assert_eq!(s["progress"], 100);
    assert_eq!(s["stage"], "done");
    let names: Vec<&str> = s["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(
                (r["state"].as_str(), r["progress"].as_i64()),
                (Some("done"), Some(100))
            );
            r["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, ["240p", "360p"], "no rung above the 360-line source");
    let scrape = crate::telemetry::parse(&app.state.metrics.render().await);
    for name in names {
        let labels = [("rendition", name), ("outcome", "done")];
        let encoded = crate::telemetry::sample(&scrape, "transcode_rendition_seconds", &labels);
        assert_eq!(encoded, Some(1.0), "{name} timed once");
    }

    let master = text(app, &format!("media/{id}/master.m3u8")).await;
    let variants: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), 2, "{master}");
    for (v, res) in variants.iter().zip(["640x360", "426x240"]) {
        assert!(v.contains("BANDWIDTH="), "{v}");
        assert!(v.contains(&format!("RESOLUTION={res}")), "{v}");
        assert!(v.contains("CODECS=\"avc1.4d401e,mp4a.40.2\""), "{v}");
    }
    for r in ["240p", "360p"] {
        let playlist = text(app, &format!("media/{id}/{r}/index.m3u8")).await;
        assert!(playlist.contains("#EXT-X-ENDLIST"));
        assert!(stored(app, &format!("media/{id}/{r}/seg_000.ts"))
            .await
            .is_some());
    }
    let poster = stored(app, &format!("media/{id}/poster.jpg"))
        .await
        .unwrap();
    assert_eq!(&poster[..2], &[0xff, 0xd8], "a JPEG");
    let scratch = app.state.settings.storage.upload_dir().join("work");
    assert!(
        !scratch.join(&id).exists(),
        "the work folder (and any scratch copy of the source) is gone"
    );
    // The edge may fetch it now, the bytes in the store, and its record says ready with the
    // duration.
    let r = app
        .edge_get(&format!("/internal/media/{id}/360p/seg_000.ts"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "video/mp2t",
        "typed by its name"
    );
    assert_eq!(
        r.bytes().await.unwrap()[..],
        stored(app, &format!("media/{id}/360p/seg_000.ts"))
            .await
            .unwrap()[..]
    );
    let rec = origin::videos::record(&app.state.db, &shared_wasm::VideoId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, shared_wasm::record::VideoState::Ready);
    assert!(
        (3900..=4100).contains(&rec.duration_ms.unwrap()),
        "{:?}",
        rec.duration_ms
    );

    // Deleting the video removes its media and its source from the store.
    let r = app
        .client
        .delete(format!("{}/v1/videos/{id}", app.url))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for key in [
        "master.m3u8",
        "poster.jpg",
        "240p/index.m3u8",
        "360p/seg_000.ts",
    ] {
        assert!(stored(app, &format!("media/{id}/{key}")).await.is_none());
    }
    id
}

#[tokio::test]
async fn a_file_ffprobe_cannot_read_fails_the_video_with_the_reason() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    // Starts as an MP4 does, so the upload takes it; ffprobe finds nothing after the header.
    let file = [
        &b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"[..],
        &b"this is not a video at all".repeat(100),
    ]
    .concat();
    let id = upload(&app, &ada, file).await;
    let s = status_until(&app, &ada, &id, "failed").await;
    assert_eq!(s["stage"], "failed");
    assert_eq!(
        s["error"],
        json!({"code": "unreadable_media", "message": "the file could not be read as a video"}),
    );
    // ffprobe's words and the worker's paths are for the log, not for the creator.
    let shown = s.to_string();
    assert!(!shown.contains("ffprobe") && !shown.contains('/'), "{s}");
    assert!(!Path::new(&app.state.settings.storage.media_dir)
        .join(&id)
        .exists());
    let (attempts,): (i64,) =
        sqlx::query_as("SELECT attempts FROM transcode_jobs WHERE video_id = $1")
            .bind(&id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "an unreadable file is not tried again");
}

/// An ffmpeg that fails when its arguments match `pattern` (a shell `case` pattern over the
/// work paths, which name the rendition or poster and the attempt), as a crashing encoder
/// would, and runs the real one otherwise.
fn flaky_ffmpeg(dir: &Path, pattern: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("ffmpeg");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n  {pattern}) echo 'injected failure' >&2; exit 1 ;;\n\
             esac\nexec ffmpeg \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn rendition<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {s}"))
}

/// The 360p rendition fails twice and the poster (in the finalize stage) once.
#[tokio::test]
async fn a_failed_rendition_is_retried_alone_and_a_failed_stage_again() {
    let tools = tempfile::tempdir().unwrap();
    let ffmpeg = flaky_ffmpeg(tools.path(), "*/.360p-[12]/*|*/.poster-1.jpg*");
    let app = TestApp::spawn_tweaked(|s| {
        s.transcode.ffmpeg = ffmpeg;
        s.transcode.retry_secs = 1;
        // Two workers claiming side by side (on PostgreSQL, past each other's locked rows).
        s.transcode.workers = 2;
    })
    .await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload(&app, &ada, e2e::render_source(dir.path(), 640, 360, 2)).await;
    let s = status_until(&app, &ada, &id, "ready").await;
    let failing = rendition(&s, "360p");
    assert_eq!(
        (failing["state"].as_str(), failing["attempts"].as_i64()),
        (Some("done"), Some(3)),
        "{s}"
    );
    assert_eq!(
        failing["error"]["code"], "encode_failed",
        "the last failure is kept: {s}"
    );
    assert!(
        !s.to_string().contains("injected failure"),
        "ffmpeg's words stay in the log: {s}"
    );
    let other = rendition(&s, "240p");
    assert_eq!(other["attempts"], 1, "not encoded again: {s}");
    assert!(other["error"].is_null(), "{s}");
    let master = text(&app, &format!("media/{id}/master.m3u8")).await;
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2, "{master}");
    assert!(stored(&app, &format!("media/{id}/poster.jpg"))
        .await
        .is_some());
    let (attempts, error): (i64, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM transcode_jobs WHERE video_id = $1")
            .bind(&id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(attempts, 2, "finalize ran twice");
    assert_eq!(
        error.as_deref(),
        Some("poster_failed"),
        "its failure is kept"
    );
}

#[tokio::test]
async fn a_rendition_that_keeps_failing_is_dead_lettered_with_its_error() {
    let tools = tempfile::tempdir().unwrap();
    let ffmpeg = flaky_ffmpeg(tools.path(), "*/.360p-*");
    let app = TestApp::spawn_tweaked(|s| {
        s.transcode.ffmpeg = ffmpeg;
        s.transcode.retry_secs = 1;
    })
    .await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload(&app, &ada, e2e::render_source(dir.path(), 640, 360, 2)).await;
    let s = status_until(&app, &ada, &id, "failed").await;
    assert_eq!(s["stage"], "failed");
    assert_eq!(s["error"]["code"], "encode_failed", "{s}");
    let dead = rendition(&s, "360p");
    assert_eq!(dead["error"]["code"], "encode_failed", "{s}");
    assert_eq!(
        (dead["state"].as_str(), dead["attempts"].as_i64()),
        (Some("dead"), Some(origin::transcode::MAX_ATTEMPTS)),
        "{s}"
    );
    // Nothing of the video is left to serve, not even the rendition that worked.
    for key in ["master.m3u8", "240p/index.m3u8", "360p/index.m3u8"] {
        assert!(stored(&app, &format!("media/{id}/{key}")).await.is_none());
    }
    let rec = origin::videos::record(&app.state.db, &shared_wasm::VideoId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, shared_wasm::record::VideoState::Failed);
}
