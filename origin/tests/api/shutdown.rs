//! SIGTERM to the real `origin` binary: during a transcode (the process exits 0 within its
//! bounds, ffmpeg is killed, no job is left leased, and a restart finishes the video), during a
//! plain upload (the request completes while new connections are refused), and during a tus
//! upload outlasting the drain (cut at the bound, resumed after a restart).

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared_wasm::jwt::Role;
use sqlx::AnyPool;
use tokio::process::{Child, Command};

use crate::helpers::{database_url, EDGE_SECRET, PW};

/// An origin process on a database and folders that outlive its restarts.
struct Binary {
    dir: tempfile::TempDir,
    database: String,
    port: u16,
    env: Vec<(&'static str, String)>,
    child: Option<Child>,
    starts: u32,
    /// The process as the edge calls it (a signing proxy that outlives restarts).
    edge: String,
    client: reqwest::Client,
    db: AnyPool,
}

impl Binary {
    async fn start(env: &[(&'static str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = database_url(dir.path()).await;
        let port = e2e::free_port();
        let origin = format!("http://127.0.0.1:{port}");
        let mut b = Self {
            database: database.clone(),
            port,
            env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            child: None,
            starts: 0,
            edge: e2e::signer::start(&origin, EDGE_SECRET).await,
            client: reqwest::Client::new(),
            db: origin::db::connect(&database).await.unwrap(),
            dir,
        };
        b.restart().await;
        b
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join(format!("origin-{}.log", self.starts))
    }

    /// Starts the process (again) and waits until it answers.
    async fn restart(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log()).unwrap();
        let dir = self.dir.path();
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/base.toml");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_origin"));
        cmd.current_dir(dir)
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("APP_SERVER__PORT", self.port.to_string())
            .env("APP_SERVER__REGION", "test")
            .env("APP_DATABASE__URL", &self.database)
            .env("APP_STORAGE__MEDIA_DIR", dir.join("media"))
            .env("APP_STORAGE__UPLOAD_DIR", dir.join("uploads"))
            .env("APP_STORAGE__MIN_FREE_BYTES", "0")
            .env("APP_EDGE__SHARED_SECRET", EDGE_SECRET)
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("starting the origin binary"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = self.client.get(format!("{}/healthz", self.url())).send();
            if matches!(up.await, Ok(r) if r.status().is_success()) {
                return;
            }
            let child = self.child.as_mut().unwrap();
            if let Ok(Some(status)) = child.try_wait() {
                panic!("origin exited ({status}): {}", self.output());
            }
            assert!(Instant::now() < deadline, "origin never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Sends SIGTERM, as a service manager or an orchestrator does.
    fn terminate(&self) {
        let pid = self.child.as_ref().unwrap().id().unwrap();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit, at most `limit`.
    async fn exited(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let status = tokio::time::timeout(limit, child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after {limit:?}: {}", self.output()))
            .unwrap();
        self.child = None;
        status
    }

    /// A creator, a new video of theirs, its upload URLs and a 2 s source to send.
    async fn upload(&self) -> Upload {
        let email = "ada@example.com";
        origin::users::ensure_user(&self.db, email, PW, Role::Creator, "test")
            .await
            .unwrap();
        let login = json!({"email": email, "password": PW});
        let token = self.call("/v1/auth/login", None, Some(login)).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let video = json!({"title": "Clip", "visibility": "public"});
        let id = self.call("/v1/videos", Some(&token), Some(video)).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let upload = format!("/v1/videos/{id}/upload");
        let ticket = self.call(&upload, Some(&token), Some(json!({}))).await;
        let dir = tempfile::tempdir().unwrap();
        Upload {
            source: e2e::render_source(dir.path(), 426, 240, 2),
            token,
            id,
            ticket,
            _dir: dir,
        }
    }

    /// The API as the edge calls it: POST with a body, GET without; the JSON answer.
    async fn call(&self, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.edge);
        let mut req = match body {
            Some(body) => self.client.post(url).json(&body),
            None => self.client.get(url),
        };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn status(&self, token: &str, id: &str) -> Value {
        let path = format!("/v1/videos/{id}/transcode");
        self.call(&path, Some(token), None).await
    }

    /// Polls the transcode status until `done` holds of it.
    async fn status_until(&self, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = self.status(token, id).await;
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "still {s}: {}", self.output());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Jobs still leased, or still marked running: none once a process has stopped.
    async fn leased(&self) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT kind, key FROM jobs WHERE state = 'running' OR lease_until > 0 ORDER BY id",
        )
        .fetch_all(&self.db)
        .await
        .unwrap()
    }

    fn refuses_connections(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
    }
}

/// What a test uploads, and where to.
struct Upload {
    token: String,
    id: String,
    ticket: Value,
    source: Vec<u8>,
    _dir: tempfile::TempDir,
}

/// A PUT or PATCH body the test feeds chunk by chunk; dropping the sender ends it.
fn fed_body() -> (tokio::sync::mpsc::Sender<Vec<u8>>, reqwest::Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), rx))
    });
    (tx, reqwest::Body::wrap_stream(chunks))
}

/// An ffmpeg whose first 240p encode never ends (it records its pid in `marker`, then becomes
/// `sleep`), and the real one otherwise.
fn stalling_ffmpeg(dir: &Path, marker: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("ffmpeg");
    let m = marker.display();
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n  */.240p-*) if [ ! -e '{m}' ]; then echo $$ > '{m}'; \
             exec sleep 120; fi ;;\nesac\nexec ffmpeg \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Whether process `pid` has ended (gone, or a zombie waiting for its new parent).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn sigterm_during_a_transcode_releases_it_and_a_restart_finishes_it() {
    let tools = tempfile::tempdir().unwrap();
    let marker = tools.path().join("stalled");
    let ffmpeg = stalling_ffmpeg(tools.path(), &marker);
    let mut origin = Binary::start(&[
        ("APP_TRANSCODE__FFMPEG", &ffmpeg),
        // A restart must not wait for a lease to run out.
        ("APP_TRANSCODE__LEASE_SECS", "60"),
        ("APP_SERVER__DRAIN_SECS", "5"),
    ])
    .await;
    let up = origin.upload().await;
    let r = origin
        .client
        .put(up.ticket["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(up.source)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let s = origin
        .status_until(&up.token, &up.id, |s| {
            s["renditions"][0]["state"] == "running" && marker.exists()
        })
        .await;
    assert_eq!(s["renditions"][0]["name"], "240p");
    let encoder: u32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!ended(encoder));

    let asked = Instant::now();
    origin.terminate();
    let status = origin.exited(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", origin.output());
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "nothing was in flight to drain: {:?}",
        asked.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ended(encoder) {
        assert!(Instant::now() < deadline, "ffmpeg outlived its worker");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.leased().await, [], "no lease left held");
    let (state, attempts): (String, i64) =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE key = $1")
            .bind(format!("{}:240p", up.id))
            .fetch_one(&origin.db)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), attempts),
        ("queued", 0),
        "released, its attempt given back"
    );

    let restarted = Instant::now();
    origin.restart().await;
    let s = origin
        .status_until(&up.token, &up.id, |s| s["state"] == "ready")
        .await;
    assert!(
        restarted.elapsed() < Duration::from_secs(40),
        "taken at once, not after its 60 s lease"
    );
    assert_eq!(s["renditions"][0]["attempts"], 1, "{s}");
    let media = origin.dir.path().join("media").join(&up.id);
    assert!(media.join("240p/index.m3u8").exists() && media.join("master.m3u8").exists());
    origin.terminate();
    assert_eq!(origin.exited(Duration::from_secs(15)).await.code(), Some(0));
    assert_eq!(origin.leased().await, []);
}

#[tokio::test]
async fn sigterm_during_an_upload_lets_the_request_finish() {
    let mut origin = Binary::start(&[("APP_SERVER__DRAIN_SECS", "20")]).await;
    let up = origin.upload().await;
    let (feed, body) = fed_body();
    let put = origin
        .client
        .put(up.ticket["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(body)
        .send();
    let put = tokio::spawn(put);
    let half = up.source.len() / 2;
    feed.send(up.source[..half].to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    origin.terminate();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !origin.refuses_connections() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The request in flight goes on: the rest of the body, then its answer.
    feed.send(up.source[half..].to_vec()).await.unwrap();
    drop(feed);
    let r = put.await.unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", origin.output());
    let status = origin.exited(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", origin.output());
    // Its transcoding was queued with it, and waits for a worker, unleased.
    assert_eq!(origin.leased().await, []);
    let (state,): (String,) = sqlx::query_as("SELECT state FROM jobs WHERE key = $1")
        .bind(&up.id)
        .fetch_one(&origin.db)
        .await
        .unwrap();
    assert_eq!(state, "queued");

    origin.restart().await;
    origin
        .status_until(&up.token, &up.id, |s| s["state"] == "ready")
        .await;
}

#[tokio::test]
async fn a_tus_upload_cut_at_the_drain_bound_resumes_after_a_restart() {
    use base64::Engine;
    let mut origin = Binary::start(&[("APP_SERVER__DRAIN_SECS", "2")]).await;
    let up = origin.upload().await;
    let client = origin.client.clone();
    let tus = |method: reqwest::Method, url: &str| {
        client.request(method, url).header("tus-resumable", "1.0.0")
    };
    let meta = format!(
        "filetype {}",
        base64::engine::general_purpose::STANDARD.encode("video/mp4")
    );
    let r = tus(
        reqwest::Method::POST,
        up.ticket["tus_url"].as_str().unwrap(),
    )
    .header("upload-length", up.source.len().to_string())
    .header("upload-metadata", meta)
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let upload = r.headers()["location"].to_str().unwrap().to_owned();
    let patch = |offset: usize, body: reqwest::Body| {
        tus(reqwest::Method::PATCH, &upload)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body)
            .send()
    };
    let first = up.source.len() / 3;
    let r = patch(0, up.source[..first].to_vec().into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // A second PATCH sends a little more, then stalls past the drain.
    let (feed, body) = fed_body();
    let stalled = tokio::spawn(patch(first, body));
    feed.send(up.source[first..first + 4096].to_vec())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let asked = Instant::now();
    origin.terminate();
    let status = origin.exited(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", origin.output());
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "cut at the 2 s drain: {took:?}"
    );
    drop(feed);
    let _ = stalled.await;

    origin.restart().await;
    let r = tus(reqwest::Method::HEAD, &upload).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let offset: usize = r.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (first..=first + 4096).contains(&offset),
        "what reached the disk counts: {offset}"
    );
    let r = patch(offset, up.source[offset..].to_vec().into())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", origin.output());
    origin
        .status_until(&up.token, &up.id, |s| s["state"] == "ready")
        .await;
}
