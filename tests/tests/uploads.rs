//! A creator uploads a generated video file, by PUT and by tus, through URLs the edge hands
//! out; the origin transcodes it and it plays through the edge (manifest, variant, segment) on
//! both runtimes. And a transcode survives its origin being killed mid-way.

use std::time::{Duration, Instant};

use e2e::{free_port, stack, Edge, Origin, Runtime, DEMO_EMAIL};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// A new video of the caller's, and its upload ticket, both asked of `api` (the edge or the
/// origin).
async fn new_upload(c: &Client, api: &str, token: &str) -> (String, Value) {
    let r = c
        .post(format!("{api}/v1/videos"))
        .bearer_auth(token)
        .json(&json!({"title": "Uploaded", "visibility": "public"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .post(format!("{api}/v1/videos/{id}/upload"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    (id, r.json().await.unwrap())
}

/// The creator's view of the video's transcoding.
async fn transcode_status(c: &Client, api: &str, token: &str, id: &str) -> Value {
    let r = c
        .get(format!("{api}/v1/videos/{id}/transcode"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

async fn wait_state(c: &Client, api: &str, token: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = transcode_status(c, api, token, id).await;
        if s["state"] == want {
            return s;
        }
        assert!(Instant::now() < deadline, "still {s}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Plays `id` through the edge: manifest, each variant playlist, and a segment byte-identical
/// to the origin's file. Returns the variant names.
async fn play(c: &Client, edge: &str, origin: &Origin, id: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let manifest = loop {
        // The ready record reaches the edge through the sync.
        let r = c
            .get(format!("{edge}/v1/videos/{id}/playback"))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        if let Some(m) = v["manifest_url"].as_str() {
            break m.to_owned();
        }
        assert!(Instant::now() < deadline, "no playback: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let master = c.get(&manifest).send().await.unwrap().text().await.unwrap();
    let variants: Vec<String> = master
        .lines()
        .filter(|l| l.ends_with("/index.m3u8"))
        .map(|l| l.trim_end_matches("/index.m3u8").to_owned())
        .collect();
    assert!(master.contains("CODECS=\"avc1."), "{master}");
    let base = manifest.strip_suffix("master.m3u8").unwrap();
    for v in &variants {
        let playlist = c.get(format!("{base}{v}/index.m3u8")).send().await.unwrap();
        assert_eq!(playlist.status(), StatusCode::OK);
        let text = playlist.text().await.unwrap();
        let first = text
            .lines()
            .find(|l| l.ends_with(".ts"))
            .expect("a segment");
        let seg = c.get(format!("{base}{v}/{first}")).send().await.unwrap();
        assert_eq!(seg.status(), StatusCode::OK);
        let bytes = seg.bytes().await.unwrap();
        let stored = origin.stored(&format!("{id}/{v}/{first}")).await;
        assert!(
            bytes[..] == stored[..],
            "{v}/{first} differs from what the origin stored"
        );
    }
    variants
}

async fn flow(runtime: Runtime) {
    let (origin, edge) = stack(runtime).await;
    upload_both_ways_and_play(&origin, &edge).await;
}

/// Uploads by PUT and by tus through the URLs `edge` hands out, and plays both.
async fn upload_both_ways_and_play(origin: &Origin, edge: &Edge) -> [String; 2] {
    let c = e2e::client();
    let e = edge.url.as_str();
    let token = e2e::login(&c, e, DEMO_EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = e2e::render_source(dir.path(), 854, 480, 4);

    // By PUT, to the URL the edge handed out (it points at the origin).
    let (put_id, t) = new_upload(&c, e, &token).await;
    assert!(t["upload_url"].as_str().unwrap().starts_with(&origin.url));
    let r = c
        .put(t["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // By tus, in two PATCHes.
    let (tus_id, t) = new_upload(&c, e, &token).await;
    let r = c
        .post(t["tus_url"].as_str().unwrap())
        .header("tus-resumable", "1.0.0")
        .header("upload-length", file.len().to_string())
        .header("upload-metadata", "filetype dmlkZW8vbXA0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let half = file.len() / 2;
    for (offset, part) in [(0, &file[..half]), (half, &file[half..])] {
        let r = c
            .patch(&location)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(part.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    for id in [&put_id, &tus_id] {
        let s = wait_state(&c, e, &token, id, "ready").await;
        assert_eq!(s["progress"], 100);
        let variants = play(&c, e, origin, id).await;
        assert_eq!(
            variants,
            ["480p", "360p", "240p"],
            "highest first, none above 480"
        );
    }
    [put_id, tus_id]
}

#[tokio::test]
async fn upload_transcode_play_on_workerd_via_wrangler_dev() {
    flow(Runtime::Wrangler).await;
}

#[tokio::test]
async fn upload_transcode_play_on_spin_component_in_wasmtime() {
    flow(Runtime::Spin).await;
}

#[tokio::test]
async fn upload_transcode_play_under_spin_up() {
    flow(Runtime::SpinUp).await;
}

/// The origin keeps sources and media in an S3-compatible bucket (a real server on loopback,
/// which `scripts/test.sh` starts): the demo and both uploads play through the edge, their
/// bytes the bucket's, and nothing of them is on the origin's disk.
#[tokio::test]
async fn upload_transcode_play_with_media_in_an_s3_bucket() {
    let endpoint = e2e::s3_endpoint();
    let edge_port = free_port();
    let origin = Origin::start_on_s3(edge_port, &endpoint).await;
    let edge = Edge::start(Runtime::Wrangler, &origin, edge_port).await;
    let c = Client::new();
    let demo = play(&c, &edge.url, &origin, "demo-free").await;
    assert_eq!(demo, ["480p", "240p"]);
    for id in upload_both_ways_and_play(&origin, &edge).await {
        assert!(!origin.media_dir.join(&id).exists(), "{id} on disk");
    }
    assert!(
        !origin.media_dir.join("demo-free").exists(),
        "the demo went to the bucket"
    );
}

/// SIGKILL in the middle of a transcode: after a restart the job finishes, with every
/// rendition whole and no leftovers of the attempt that died.
#[tokio::test]
async fn a_transcode_survives_its_origin_being_killed() {
    let mut origin = Origin::start(free_port()).await;
    // Short leases, so the dead worker's task is taken again soon after the restart.
    origin.env = vec![("APP_TRANSCODE__LEASE_SECS".into(), "4".into())];
    origin.restart().await;
    let c = Client::new();
    // No edge runtime here: the API is reached as the edge reaches it.
    let o = origin.as_edge().await;
    let token = e2e::login(&c, &o, DEMO_EMAIL).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (id, t) = new_upload(&c, &o, &token).await;
    let r = c
        .put(t["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(e2e::render_source(dir.path(), 1280, 720, 12))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Wait until a rendition is being encoded, then kill the origin (and its ffmpeg) at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = transcode_status(&c, &o, &token, &id).await;
        let running = s["renditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["state"] == "running");
        if running {
            break;
        }
        assert_ne!(
            s["state"], "ready",
            "finished before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "never started: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    origin.kill();
    origin.restart().await;
    let s = wait_state(&c, &o, &token, &id, "ready").await;
    let retried = s["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["attempts"].as_i64() > Some(1));
    assert!(retried, "the interrupted rendition ran again: {s}");

    // Every rendition whole: its playlist lists exactly the segments on disk, and nothing else
    // (no temp folders of the attempt that died) is left anywhere.
    let media = origin.media_dir.join(&id);
    for r in ["240p", "360p", "480p", "720p"] {
        let playlist = std::fs::read_to_string(media.join(r).join("index.m3u8")).unwrap();
        assert!(playlist.contains("#EXT-X-ENDLIST"));
        let mut listed: Vec<String> = playlist
            .lines()
            .filter(|l| l.ends_with(".ts"))
            .map(str::to_owned)
            .collect();
        let mut on_disk: Vec<String> = std::fs::read_dir(media.join(r))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "index.m3u8")
            .collect();
        listed.sort();
        on_disk.sort();
        assert_eq!(listed, on_disk, "{r}");
    }
    let hidden: Vec<_> = std::fs::read_dir(&origin.media_dir)
        .unwrap()
        .chain(std::fs::read_dir(&media).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    let master = std::fs::read_to_string(media.join("master.m3u8")).unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 4, "{master}");
}
