//! Uploads are read as the media container they claim and as nothing else. Files that ffmpeg
//! would open as an HLS playlist, a DASH manifest or an ffconcat list, naming another video's
//! media by absolute and relative path and a loopback URL, are refused when sent as videos (by
//! PUT and by tus, small and large) and leave nothing behind; a manifest behind a header that
//! passes as a container is opened as that container only; a source that reaches the transcoder
//! some other way is never opened; and every ffmpeg or ffprobe run names its demuxer and allows
//! only the one file. A loopback listener stands for the internal address the file names: it
//! must never see a connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;

use crate::helpers::TestApp;
use crate::transcode::{status_until, upload};
use crate::uploads::{create, header, offset, partial_files, patch, put, source, state_of, ticket};

/// A loopback listener that counts the connections it accepts.
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = l.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        Self { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Files ffmpeg opens as lists of other resources: a loopback URL, another video's segment by
/// absolute path, and the same by a path relative to the upload folder.
fn hostile(app: &TestApp, port: u16) -> Vec<(&'static str, Vec<u8>)> {
    let media = std::path::Path::new(&app.state.settings.storage.media_dir);
    let other = media.join("other-video/240p");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("seg_000.ts"), b"members-only segment").unwrap();
    let abs = other.join("seg_000.ts").display().to_string();
    let rel = "../../media/other-video/240p/seg_000.ts";
    let url = format!("http://127.0.0.1:{port}");
    vec![
        (
            "hls",
            format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n{url}/seg.ts\n\
                 #EXTINF:4.0,\n{abs}\n#EXTINF:4.0,\n{rel}\n#EXT-X-ENDLIST\n"
            )
            .into_bytes(),
        ),
        ("dash", mpd(&url).into_bytes()),
        (
            "ffconcat",
            format!("ffconcat version 1.0\nfile '{url}/a.ts'\nfile '{abs}'\nfile '{rel}'\n")
                .into_bytes(),
        ),
    ]
}

/// A DASH manifest whose media is at `url`.
fn mpd(url: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" \
         mediaPresentationDuration=\"PT4S\" minBufferTime=\"PT2S\" \
         profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\"><Period>\
         <AdaptationSet mimeType=\"video/mp4\"><Representation id=\"1\" bandwidth=\"1000\">\
         <BaseURL>{url}/v.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
    )
}

/// What a refused upload must not leave: a partial file, a stored source, a job, a state change.
async fn nothing_left(app: &TestApp, id: &str, what: &str) {
    assert_eq!(partial_files(app), 0, "{what}: a partial file is left");
    assert!(
        source(app, id).await.is_none(),
        "{what}: a source is stored"
    );
    assert_eq!(state_of(app, id).await, "uploading", "{what}");
}

fn refused_as_not_media(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(
        (status, body["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media")
        ),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn playlists_manifests_and_lists_sent_as_videos_are_refused_and_never_read() {
    let app = TestApp::spawn().await;
    let listener = Listener::start().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let types = ["video/mp4", "video/mp2t", "video/x-matroska", "video/webm"];
    for (kind, file) in hostile(&app, listener.port) {
        for ct in types {
            let what = format!("{kind} as {ct}");
            // By PUT.
            let (id, t) = ticket(&app, &ada).await;
            let (s, body) = put(&app, t["upload_url"].as_str().unwrap(), ct, file.clone()).await;
            refused_as_not_media(s, &body, &format!("PUT {what}"));
            nothing_left(&app, &id, &what).await;

            // By tus, the whole file in one PATCH: refused when it completes.
            let (id, t) = ticket(&app, &ada).await;
            let r = create(&app, t["tus_url"].as_str().unwrap(), file.len(), ct).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            let upload = header(&r, "location");
            let r = patch(&app, &upload, 0, file.clone().into()).await;
            let s = r.status();
            refused_as_not_media(s, &r.json().await.unwrap(), &format!("tus {what}"));
            assert_eq!(offset(&app, &upload).await.0, StatusCode::NOT_FOUND);
            nothing_left(&app, &id, &what).await;
        }
        // A large one: refused as soon as its first KiB is in, not after the whole was sent.
        let (id, t) = ticket(&app, &ada).await;
        let r = create(&app, t["tus_url"].as_str().unwrap(), 1 << 20, "video/mp4").await;
        let upload = header(&r, "location");
        let mut first = file.clone();
        first.resize(4096, b'\n');
        let r = patch(&app, &upload, 0, first.into()).await;
        let s = r.status();
        refused_as_not_media(s, &r.json().await.unwrap(), &format!("large tus {kind}"));
        assert_eq!(offset(&app, &upload).await.0, StatusCode::NOT_FOUND);
        nothing_left(&app, &id, kind).await;
    }
    // A real container's header under another type's name is refused too.
    let (id, t) = ticket(&app, &ada).await;
    let mp4 = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2 and the rest".to_vec();
    let (s, body) = put(&app, t["upload_url"].as_str().unwrap(), "video/webm", mp4).await;
    refused_as_not_media(s, &body, "an MP4 sent as WebM");
    nothing_left(&app, &id, "an MP4 sent as WebM").await;

    let (jobs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM transcode_jobs")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "no refused file reached the transcoder");
    assert_eq!(listener.hits(), 0, "nothing fetched the loopback URL");
}

/// A DASH manifest behind a QuickTime `free` atom passes as a container. Which demuxer a probe
/// picks for such a file is a ranking of scores (the one installed here happens to rank mov
/// above dash); with the demuxer named, it is opened as the container its first bytes are and
/// is just an unreadable file, whatever the ranking.
#[tokio::test]
async fn a_manifest_behind_a_container_header_is_opened_as_that_container_only() {
    let app = TestApp::spawn().await;
    let listener = Listener::start().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let file = [
        &b"\0\0\0\x08free"[..],
        mpd(&format!("http://127.0.0.1:{}", listener.port)).as_bytes(),
    ]
    .concat();
    let id = upload(&app, &ada, file).await;
    let s = status_until(&app, &ada, &id, "failed").await;
    assert_eq!(s["error"]["code"], "unreadable_media", "{s}");
    assert_eq!(listener.hits(), 0, "the manifest's URL was fetched");
}

/// A source that reaches the transcoder without the upload's checks (put into the store by
/// other means) is sniffed again there and never opened.
#[tokio::test]
async fn a_hostile_source_that_reaches_the_transcoder_is_never_opened() {
    let tools = tempfile::tempdir().unwrap();
    let calls = tools.path().join("calls");
    let ffprobe = recording(tools.path(), "ffprobe", &calls);
    let app = TestApp::spawn_tweaked(|s| s.transcode.ffprobe = ffprobe).await;
    let listener = Listener::start().await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let (id, _) = ticket(&app, &ada).await;
    let (_, playlist) = hostile(&app, listener.port).remove(0);
    let file = tools.path().join("playlist");
    std::fs::write(&file, playlist).unwrap();
    let key = format!("sources/{id}.planted");
    app.state.store.put_file(&key, &file).await.unwrap();
    sqlx::query("UPDATE videos SET state = 'processing' WHERE id = $1")
        .bind(&id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let mut tx = origin::db::begin_write(&app.state.db).await.unwrap();
    let video = shared_wasm::VideoId::parse(&id).unwrap();
    origin::transcode::queue(&mut tx, &video, &key)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let s = status_until(&app, &ada, &id, "failed").await;
    assert_eq!(
        s["error"],
        json!({"code": "unsupported_media",
               "message": "the file is not an MP4, QuickTime, Matroska, WebM or MPEG-TS video"})
    );
    assert!(!calls.exists(), "ffprobe ran on it");
    assert_eq!(listener.hits(), 0);
}

/// Every ffmpeg and ffprobe run that reads a source (probe, each rendition, the poster) names
/// the demuxer its bytes were found to be and allows only the `file` protocol.
#[tokio::test]
async fn every_run_on_a_source_names_its_demuxer_and_allows_only_the_file() {
    let tools = tempfile::tempdir().unwrap();
    let calls = tools.path().join("calls");
    let ffprobe = recording(tools.path(), "ffprobe", &calls);
    let ffmpeg = recording(tools.path(), "ffmpeg", &calls);
    let app = TestApp::spawn_tweaked(|s| {
        s.transcode.ffprobe = ffprobe;
        s.transcode.ffmpeg = ffmpeg;
    })
    .await;
    let (_, ada) = app.user("ada@example.com", Role::Creator).await;
    let dir = tempfile::tempdir().unwrap();
    let id = upload(&app, &ada, e2e::render_source(dir.path(), 426, 240, 2)).await;
    status_until(&app, &ada, &id, "ready").await;
    let calls = std::fs::read_to_string(&calls).unwrap();
    let runs: Vec<&str> = calls.lines().collect();
    // ffprobe once, one rendition (240p), the poster.
    assert_eq!(runs.len(), 3, "{calls}");
    for run in runs {
        let args: Vec<&str> = run.split(' ').collect();
        let i = args.iter().position(|a| *a == "-i").expect("an input");
        assert_eq!(
            args[i - 4..i],
            ["-protocol_whitelist", "file", "-f", "mov"],
            "{run}"
        );
        assert!(args[i + 1].starts_with("file:/"), "{run}");
    }
}

/// A wrapper for `tool` that appends its arguments to `log` (one line a run), then runs it.
fn recording(dir: &std::path::Path, tool: &str, log: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(tool);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec {tool} \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}
