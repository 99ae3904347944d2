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
    let r = app
        .post(
            "/v1/videos",
            Some(token),
            json!({"title": "Clip", "visibility": "public"}),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
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

async fn status_until(app: &TestApp, token: &str, id: &str, want: &str) -> Value {
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

#[tokio::test]
async fn an_upload_becomes_a_ladder_no_higher_than_its_source() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload(&app, &ada, e2e::render_source(dir.path(), 640, 360, 4)).await;
    let s = status_until(&app, &ada, &id, "ready").await;
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

    let media = Path::new(&app.state.settings.storage.media_dir).join(&id);
    let master = std::fs::read_to_string(media.join("master.m3u8")).unwrap();
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
        let playlist = std::fs::read_to_string(media.join(r).join("index.m3u8")).unwrap();
        assert!(playlist.contains("#EXT-X-ENDLIST"));
        assert!(media.join(r).join("seg_000.ts").is_file());
    }
    let poster = std::fs::read(media.join("poster.jpg")).unwrap();
    assert_eq!(&poster[..2], &[0xff, 0xd8], "a JPEG");
    let leftovers: Vec<_> = std::fs::read_dir(&app.state.settings.storage.media_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "work folders left: {leftovers:?}");
    // The edge may fetch it now, and its record says ready with the duration.
    assert_eq!(
        app.edge_get(&format!("/internal/media/{id}/master.m3u8"))
            .await
            .status(),
        200
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
}

#[tokio::test]
async fn a_file_ffprobe_cannot_read_fails_the_video_with_the_reason() {
    let app = TestApp::spawn().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let id = upload(&app, &ada, b"this is not a video at all".repeat(100)).await;
    let s = status_until(&app, &ada, &id, "failed").await;
    assert_eq!(s["stage"], "failed");
    assert!(s["error"].as_str().unwrap().contains("ffprobe"), "{s}");
    assert!(!Path::new(&app.state.settings.storage.media_dir)
        .join(&id)
        .exists());
}
