//! Starts the real processes the end-to-end tests drive: the origin (seeded with the demo
//! content), and the edge under either runtime. Every process gets free loopback ports and a
//! temporary directory, and is stopped (with its whole process group) when dropped.
//!
//! The binaries and Wasm artifacts are built beforehand by `scripts/test.sh`; a missing one is
//! reported with the command that builds it.

pub mod mail;
pub mod signer;
pub mod stripe;
pub mod webhooks;

/// An H.264/AAC MP4 of `secs` seconds at `width`x`height`, rendered by ffmpeg into `dir`: what
/// a creator uploads in the tests.
pub fn render_source(dir: &Path, width: u32, height: u32, secs: u32) -> Vec<u8> {
    let out = dir.join(format!("source-{width}x{height}-{secs}s.mp4"));
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={width}x{height}:rate=24:duration={secs}"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=500:sample_rate=48000:duration={secs}"),
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs")
        .success();
    assert!(ok, "ffmpeg could not render the source");
    std::fs::read(out).unwrap()
}

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The demo account `origin seed-demo` creates.
pub const DEMO_EMAIL: &str = "demo@example.com";
/// Its password.
pub const DEMO_PASSWORD: &str = "demo-password";
/// The playback key id the tests configure.
pub const PLAYBACK_KID: &str = "e2e1";
/// The playback key bytes the tests configure (so they can mint expired tokens themselves).
pub const PLAYBACK_KEY: [u8; 32] = [42u8; 32];
/// The country every test request comes from.
pub const VIEWER_COUNTRY: &str = "DE";
/// On Spin, the trusted header that carries the viewer's country (a CDN would set it).
pub const COUNTRY_HEADER: &str = "x-viewer-country";
/// The viewer's continent (`request.cf.continent` on workerd).
pub const VIEWER_CONTINENT: &str = "EU";
/// On Spin, the trusted header that carries the viewer's continent.
pub const CONTINENT_HEADER: &str = "x-viewer-continent";
/// Logins allowed per client address per 10 minutes in the tests.
pub const LOGIN_LIMIT: u32 = 5;
const EDGE_SECRET: &str = "e2e-edge-origin-shared-secret-0123456789";
/// Signs the origin's pushes to the edge (the tests sign batches of their own with it too).
pub const SYNC_SECRET: &str = "e2e-origin-to-edge-sync-secret-0123456789";
/// The other demo accounts `origin seed-demo` creates (same password): no membership, admin.
pub const VIEWER_EMAIL: &str = "viewer@example.com";
/// See [`VIEWER_EMAIL`].
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// See [`VIEWER_EMAIL`].
pub const MODERATOR_EMAIL: &str = "moderator@example.com";
const ISSUER: &str = "edge-video-origin";
const AUDIENCE: &str = "edge-video";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn artifact(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/test.sh` (it builds every artifact first)",
        p.display()
    );
    p
}

/// A loopback port for a process the test starts, reserved for this test process until it exits.
///
/// Binding port 0 and closing the listener is not a reservation: until the child binds the port,
/// the kernel may hand it to another `bind(0)` or use it as the source port of an outgoing
/// connection. So ports come from below the kernel's ephemeral range (which neither touches),
/// each under an exclusive lock on a file named after it that every harness process takes (two
/// concurrent test processes never pick the same one), are never handed out twice by one process
/// (a restarted process keeps its own), and must be free to bind when picked (no stray server
/// holds them).
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    let high = ephemeral_low().clamp(LOW + 1_000, 32_768);
    let port = reserve("ports", LOW..high, &NEXT, |port| {
        TcpListener::bind(("127.0.0.1", port as u16)).is_ok()
    });
    port.unwrap_or_else(|| panic!("no free loopback port in {LOW}..{high}")) as u16
}

/// The first number in `range`, going round from an offset of this process's, that no other
/// harness process holds (an exclusive lock on a file named after it in the temp folder `kind`)
/// and that `usable` accepts; it stays held until the process exits. `next` counts this
/// process's picks, so it never hands one out twice.
fn reserve(
    kind: &str,
    range: std::ops::Range<u32>,
    next: &AtomicU32,
    usable: impl Fn(u32) -> bool,
) -> Option<u32> {
    use std::sync::Mutex;
    // Held open, and so locked, until the process exits (std opens files close-on-exec, so a
    // child that outlives the tests does not keep a lock either).
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let span = range.end - range.start;
    let dir = std::env::temp_dir().join(format!("edge-video-e2e-{kind}"));
    std::fs::create_dir_all(&dir).expect("a lock folder");
    // Processes start at different offsets, so concurrent ones rarely even contend for a lock.
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    let mut held = HELD.lock().unwrap();
    for _ in 0..span {
        let n = range.start + (start + next.fetch_add(1, Ordering::Relaxed)) % span;
        let lock = std::fs::File::create(dir.join(format!("{n}.lock"))).expect("a lock file");
        if lock.try_lock().is_err() {
            continue; // another test process has it
        }
        if usable(n) {
            held.push(lock);
            return Some(n);
        }
    }
    None
}

/// The Redis server `scripts/test.sh` starts for the Spin edge (`TEST_REDIS_URL`), if any. With
/// one, every edge under `spin up` keeps its state there ([`redis_db`]).
pub fn test_redis() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A database of the test Redis server of its own (empty), as a URL: each edge gets one, so
/// concurrent tests' rate limits and records never meet. Edges given the same URL share state,
/// like instances of one deployment. Panics without [`test_redis`].
pub fn redis_db() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = test_redis().expect("TEST_REDIS_URL (scripts/test.sh starts a Redis server)");
    // scripts/redis.sh starts the server with 4096 databases; 0 is left to people.
    let db = reserve("redis-dbs", 1..4096, &NEXT, |_| true).expect("a free Redis database");
    let url = format!("{server}/{db}");
    // A database another process used before is emptied.
    let mut conn = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .expect("connecting to the test Redis");
    redis::cmd("FLUSHDB")
        .exec(&mut conn)
        .expect("emptying a Redis database");
    url
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A child process in its own process group, killed with that group on drop.
pub struct Proc {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd`, which will listen on `port`, once every earlier process on that port is gone.
    pub fn spawn(name: &'static str, mut cmd: Command, port: u16, log: PathBuf) -> Self {
        wait_port_free(name, port);
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { child, name, log }
    }

    /// The process's combined output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The resident memory, in bytes, of the processes of this one's process group (it and
    /// every process it started) whose command line `counts`, from `/proc`.
    pub fn memory_where(&self, counts: impl Fn(&str) -> bool) -> u64 {
        let group = self.child.id().to_string();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return 0;
        };
        procs
            .flatten()
            .filter_map(|p| {
                // `pid (comm) state ppid pgrp …`; comm may hold spaces, so count from its end.
                let stat = std::fs::read_to_string(p.path().join("stat")).ok()?;
                let after_comm = &stat[stat.rfind(')')? + 1..];
                (after_comm.split_whitespace().nth(2)? == group).then_some(())?;
                let cmdline = std::fs::read(p.path().join("cmdline")).ok()?;
                counts(&String::from_utf8_lossy(&cmdline).replace('\0', " ")).then_some(())?;
                let status = std::fs::read_to_string(p.path().join("status")).ok()?;
                let kb = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()?;
                Some(kb * 1024)
            })
            .sum()
    }

    /// Waits until `url` answers 200, or panics with the process's log.
    pub async fn wait_ready(&mut self, url: &str, limit: Duration) {
        let client = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited early ({status}):\n{}", self.name, self.log());
            }
            if let Ok(r) = client.get(url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "{} not ready at {url} after {limit:?}:\n{}",
            self.name,
            self.log()
        );
    }

    /// SIGKILL to the whole group; returns once every process of it is gone (wrangler's workerd
    /// outlives wrangler for a moment, holding the port), or panics. The next [`Proc::spawn`] on
    /// the port waits for it to be free.
    fn kill_now(&mut self) {
        let pgid = self.child.id();
        signal_group("KILL", pgid);
        let _ = self.child.wait();
        if let Err(left) = wait_group_gone(pgid, Duration::from_secs(30)) {
            panic!(
                "{} (process group {pgid}) still running 30 s after SIGKILL: {left:?}",
                self.name
            );
        }
    }
}

/// Signals the process group led by `pid` (our child, started with `process_group(0)`).
fn signal_group(signal: &str, pid: u32) {
    // `--` so that `-PID` is read as a process group, not as an option.
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// The live (not zombie) processes of group `pgid`, as `pid comm`. A zombie holds no socket, and
/// an orphan's zombie may never be reaped in a container whose init does not reap, so zombies
/// do not count.
fn group_members(pgid: u32) -> Vec<String> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
            let (head, tail) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = tail.split_whitespace().collect();
            let (state, pgrp) = (*fields.first()?, fields.get(2)?.parse::<u32>().ok()?);
            (pgrp == pgid && state != "Z").then(|| head.replacen(" (", " ", 1))
        })
        .collect()
}

/// Waits up to `limit` until no live process is left in group `pgid`; else returns those left.
fn wait_group_gone(pgid: u32, limit: Duration) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + limit;
    loop {
        let left = group_members(pgid);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `port` can be bound on loopback (its last listener is gone), or panics.
fn wait_port_free(name: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
        assert!(
            Instant::now() < deadline,
            "{name}: port {port} still taken after 30 s ({e}): another process listens there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Negative pid: the whole group, so wrangler's workerd children go too. No panics here
        // (a drop may run while a test unwinds): what still lingers is killed, and its port is
        // never handed out again by this process anyway.
        let pgid = self.child.id();
        signal_group("TERM", pgid);
        if wait_group_gone(pgid, Duration::from_secs(5)).is_err() {
            signal_group("KILL", pgid);
        }
        let _ = self.child.wait();
        let _ = wait_group_gone(pgid, Duration::from_secs(5));
    }
}

/// A running origin with the demo content.
pub struct Origin {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Its media folder (to compare served bytes with stored ones).
    pub media_dir: PathBuf,
    /// Its region name (`APP_SERVER__REGION`).
    pub region: String,
    port: u16,
    sync_url: String,
    /// Its database's URL (a SQLite file, or a database of the test PostgreSQL server).
    pub database: String,
    /// Extra settings for its next start ([`Origin::restart`]).
    pub env: Vec<(String, String)>,
    /// The bucket its sources and media are in, when not its folders.
    pub bucket: Option<origin::storage::s3::Bucket>,
    proc: Option<Proc>,
    dir: Arc<tempfile::TempDir>,
}

/// The database of a new origin: a SQLite file in `dir`, or, when `TEST_POSTGRES_URL` names a
/// PostgreSQL server (`scripts/test.sh` starts one), a new database there.
async fn database_url(dir: &Path) -> String {
    use sqlx::migrate::MigrateDatabase;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
        return format!("sqlite://{}", dir.join("origin.db").display());
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let url = format!("{server}/e2e_{}_{n}", std::process::id());
    sqlx::any::install_default_drivers();
    sqlx::Any::create_database(&url)
        .await
        .expect("creating a test database");
    url
}

/// The Stripe settings of an origin that bills against `api_base` (a [`stripe::StandIn`]).
pub fn billing_env(api_base: &str) -> Vec<(String, String)> {
    [
        ("APP_BILLING__API_BASE", api_base),
        ("APP_BILLING__SECRET_KEY", "sk_test_e2e_standin"),
        ("APP_BILLING__PRICE", "price_e2e_members"),
        (
            "APP_BILLING__SUCCESS_URL",
            "https://app.example/billing/done",
        ),
        (
            "APP_BILLING__CANCEL_URL",
            "https://app.example/billing/cancel",
        ),
        ("APP_BILLING__WEBHOOK_SECRETS", WEBHOOK_SECRET),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// The S3-compatible server the test command starts (`TEST_S3_ENDPOINT`). The tests that need
/// it fail without it rather than pass untested.
pub fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").expect(
        "TEST_S3_ENDPOINT is not set: run the tests through scripts/test.sh, which starts an \
         S3-compatible server (or start one with scripts/s3.sh start DIR)",
    )
}

/// The ClickHouse server the test command starts (`TEST_CLICKHOUSE_URL`), as the settings of a
/// new database of its own that the rollup reads a second after the inserts (the least it
/// takes: the tests' inserts have ended before they roll up). The tests that need it fail
/// without it rather than pass untested.
pub fn clickhouse() -> origin::settings::ClickHouseSettings {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let url = std::env::var("TEST_CLICKHOUSE_URL").expect(
        "TEST_CLICKHOUSE_URL is not set: run the tests through scripts/test.sh, which starts a \
         ClickHouse server (or start one with scripts/clickhouse.sh start DIR)",
    );
    let database = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    origin::settings::ClickHouseSettings {
        settle_secs: 1,
        ..origin::settings::ClickHouseSettings::new(&url, &database)
    }
}

/// The keys `scripts/s3.sh` starts its server with.
pub const S3_KEYS: (&str, &str) = ("testaccess", "testsecret-0123456789");

/// The settings of an origin that keeps sources and media in a new bucket at `endpoint`, and
/// that bucket.
pub fn s3_env(endpoint: &str) -> (Vec<(String, String)>, origin::storage::s3::Bucket) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let settings = origin::settings::S3Settings {
        access_key_id: Some(S3_KEYS.0.into()),
        secret_access_key: Some(S3_KEYS.1.into()),
        ..origin::settings::S3Settings::new(endpoint, &name)
    };
    let bucket = origin::storage::s3::Bucket::new(&settings).expect("bucket");
    let env = [
        ("APP_STORAGE__S3__ENDPOINT", endpoint),
        ("APP_STORAGE__S3__BUCKET", &name),
        ("APP_STORAGE__S3__ACCESS_KEY_ID", S3_KEYS.0),
        ("APP_STORAGE__S3__SECRET_ACCESS_KEY", S3_KEYS.1),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    (env, bucket)
}

/// The webhook endpoint secret of [`billing_env`].
pub const WEBHOOK_SECRET: &str = "whsec_e2e_0123456789abcdef";

fn origin_cmd(
    dir: &Path,
    database: &str,
    port: u16,
    region: &str,
    sync_url: &str,
    env: &[(String, String)],
) -> Command {
    let mut cmd = Command::new(artifact("target/debug/origin"));
    // The web app's pages come from the edge the origin syncs to: their browser uploads
    // straight here (CORS). A test's own `env` may name others.
    if let Some(edge) = sync_url.strip_suffix("/internal/sync") {
        cmd.env("APP_WEB__ORIGINS", edge);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.current_dir(root())
        .arg("--config")
        .arg(root().join("origin/config/base.toml"))
        .env("APP_SERVER__PORT", port.to_string())
        .env("APP_SERVER__REGION", region)
        .env("APP_DATABASE__URL", database)
        .env("APP_STORAGE__MEDIA_DIR", dir.join("media"))
        .env("APP_EDGE__SHARED_SECRET", EDGE_SECRET)
        .env("APP_SYNC__EDGES", sync_url)
        .env("APP_SYNC__SECRET", SYNC_SECRET)
        // One JSON line per request (`origin::telemetry`) lets tests see what reached the
        // origin, and under which request id.
        .env("APP_LOG__FORMAT", "json")
        .env("RUST_LOG", "warn,origin::telemetry=info");
    cmd
}

impl Origin {
    /// Seeds the demo (ffmpeg renders the ladder) and starts serving; its outbox pushes to the
    /// edge that will listen on `edge_port`.
    pub async fn start(edge_port: u16) -> Self {
        Self::start_region("local", None, edge_port).await
    }

    /// An origin for `region`. Without `share`, it seeds the demo (whose users are then homed
    /// in `region`); with it, it serves the same database and media as that origin, the way
    /// regions share a replicated catalogue.
    pub async fn start_region(region: &str, share: Option<&Origin>, edge_port: u16) -> Self {
        Self::start_full(region, share, edge_port, Vec::new(), None).await
    }

    /// An origin with extra settings (`APP_…` variables), kept for its restarts.
    pub async fn start_with_env(edge_port: u16, env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::start_full("local", None, edge_port, env, None).await
    }

    /// An origin whose sources and media are in a new bucket of the S3-compatible server at
    /// `endpoint` (its folders hold only partial uploads and scratch work).
    pub async fn start_on_s3(edge_port: u16, endpoint: &str) -> Self {
        let (env, bucket) = s3_env(endpoint);
        Self::start_full("local", None, edge_port, env, Some(bucket)).await
    }

    async fn start_full(
        region: &str,
        share: Option<&Origin>,
        edge_port: u16,
        env: Vec<(String, String)>,
        bucket: Option<origin::storage::s3::Bucket>,
    ) -> Self {
        let (env, bucket) = match share {
            Some(o) => (o.env.clone(), o.bucket.clone()),
            None => (env, bucket),
        };
        let dir = match share {
            Some(o) => o.dir.clone(),
            None => Arc::new(tempfile::tempdir().expect("temp dir")),
        };
        let port = free_port();
        let sync_url = format!("http://127.0.0.1:{edge_port}/internal/sync");
        let database = match share {
            Some(o) => o.database.clone(),
            None => database_url(dir.path()).await,
        };
        if share.is_none() {
            let seed = origin_cmd(dir.path(), &database, port, region, &sync_url, &env)
                .arg("seed-demo")
                .output()
                .expect("running origin seed-demo");
            assert!(
                seed.status.success(),
                "seed-demo failed: {}",
                String::from_utf8_lossy(&seed.stderr)
            );
        }
        let mut origin = Self {
            url: format!("http://127.0.0.1:{port}"),
            media_dir: dir.path().join("media"),
            region: region.to_owned(),
            port,
            sync_url,
            database,
            env,
            bucket,
            proc: None,
            dir,
        };
        origin.restart().await;
        origin
    }

    /// The stored bytes of a video's media file (`{video}/{rendition}/{file}`), from the bucket
    /// or the media folder: what the edge must serve unchanged.
    pub async fn stored(&self, path: &str) -> Vec<u8> {
        use origin::storage::Store;
        match &self.bucket {
            None => std::fs::read(self.media_dir.join(path)).expect("stored media file"),
            Some(b) => b
                .get(&format!("media/{path}"))
                .await
                .expect("reading the bucket")
                .expect("stored media object")
                .bytes()
                .await
                .expect("object body"),
        }
    }

    /// A base URL that reaches this origin's API as the edge does (its proof on every request,
    /// through [`signer`]), for tests with no edge runtime in front. It outlives restarts.
    pub async fn as_edge(&self) -> String {
        signer::start(&self.url, EDGE_SECRET).await
    }

    /// Kills the process at once (SIGKILL to its group), as a crash or a lost machine would.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill_now();
        }
        self.proc = None;
    }

    /// Runs an `origin` subcommand (key rotation, …) against this origin's database.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = origin_cmd(
            self.dir.path(),
            &self.database,
            self.port,
            &self.region,
            &self.sync_url,
            &self.env,
        )
        .args(args)
        .output()
        .expect("running origin");
        assert!(
            out.status.success(),
            "origin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many requests for the route template `route` (`/v1/feeds/home`,
    /// `/internal/videos/{id}`: the origin logs no paths or queries) the running process has
    /// answered since it started.
    pub fn requests_for(&self, route: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["route"] == route)
            .count()
    }

    /// The log lines of the requests with id `request_id` the running process has answered.
    pub fn requests_with_id(&self, request_id: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["request_id"] == request_id)
            .collect()
    }

    /// Every request line of the running process's log (`origin::telemetry`, JSON).
    fn requests(&self) -> Vec<serde_json::Value> {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["message"] == "request")
            .collect()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("origin-{}.log", self.region))
    }

    /// Starts serving again on the same port (after [`Origin::kill`], or the first time).
    pub async fn restart(&mut self) {
        self.kill();
        let mut cmd = origin_cmd(
            self.dir.path(),
            &self.database,
            self.port,
            &self.region,
            &self.sync_url,
            &self.env,
        );
        cmd.arg("serve");
        let mut proc = Proc::spawn("origin", cmd, self.port, self.log_path());
        proc.wait_ready(&format!("{}/healthz", self.url), Duration::from_secs(30))
            .await;
        self.proc = Some(proc);
    }
}

/// Which runtime runs the edge.
#[derive(Debug, Clone, Copy)]
pub enum Runtime {
    /// The built Worker under `wrangler dev` (workerd).
    Wrangler,
    /// The built Spin component under the Wasmtime host.
    Spin,
    /// The built Spin component under the Spin CLI's `spin up`, with the repository's
    /// `spin.toml` ([`spin_cli`]).
    SpinUp,
}

/// The Spin CLI: `$SPIN_BIN`, else `spin` on `PATH`, else `../shared/bin/spin` beside the
/// repository. `None` when there is none; `scripts/test.sh` then skips the `spin up` tests by
/// name and says so, and a test run without it fails with this message rather than passing.
pub fn spin_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPIN_BIN") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("spin"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let beside = root().join("../shared/bin/spin");
        beside.is_file().then_some(beside)
    })
}

/// A running edge. Its key-value state lives in its folder, so it survives [`Edge::restart`].
pub struct Edge {
    /// `http://127.0.0.1:port`.
    pub url: String,
    runtime: Runtime,
    port: u16,
    vars: Vec<(&'static str, String)>,
    /// The country workerd reports for every request (`request.cf.country`); on Spin the
    /// request's own trusted header says it.
    cf_country: Option<String>,
    proc: Option<Proc>,
    dir: tempfile::TempDir,
}

/// The edge settings every test uses, after `upstream` (`ORIGIN_URL` or `REGIONS`, and any
/// overrides).
fn settings(upstream: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut all = upstream;
    let defaults = [
        ("EDGE_ORIGIN_SECRET", EDGE_SECRET.to_owned()),
        ("SYNC_SECRET", SYNC_SECRET.to_owned()),
        (
            "PLAYBACK_KEYS",
            format!("{PLAYBACK_KID}:{}", URL_SAFE_NO_PAD.encode(PLAYBACK_KEY)),
        ),
        ("PLAYBACK_ACTIVE_KID", PLAYBACK_KID.to_owned()),
        ("JWT_ISSUER", ISSUER.to_owned()),
        ("JWT_AUDIENCE", AUDIENCE.to_owned()),
        ("RATE_LIMITS", format!("login={LOGIN_LIMIT}/600")),
        ("PLAYBACK_BIND_IP", "subnet".to_owned()),
        ("PLAYBACK_BIND_COUNTRY", "true".to_owned()),
        ("COUNTRY_HEADER", COUNTRY_HEADER.to_owned()),
        ("CONTINENT_HEADER", CONTINENT_HEADER.to_owned()),
    ];
    // Settings given by the caller win over the defaults.
    for (k, v) in defaults {
        if !all.iter().any(|(have, _)| *have == k) {
            all.push((k, v));
        }
    }
    all
}

/// An origin and an edge in front of it, each knowing the other (requests one way, the sync
/// the other).
pub async fn stack(runtime: Runtime) -> (Origin, Edge) {
    let edge_port = free_port();
    let origin = Origin::start(edge_port).await;
    let edge = Edge::start(runtime, &origin, edge_port).await;
    (origin, edge)
}

impl Edge {
    /// Starts the edge in front of `origin`, on `port`.
    pub async fn start(runtime: Runtime, origin: &Origin, port: u16) -> Self {
        Self::start_with(runtime, origin, port, &[]).await
    }

    /// Like [`Edge::start`], with extra settings (which win over the defaults).
    pub async fn start_with(
        runtime: Runtime,
        origin: &Origin,
        port: u16,
        extra: &[(&'static str, &str)],
    ) -> Self {
        Self::start_in_country(runtime, origin, port, Some(VIEWER_COUNTRY), extra).await
    }

    /// Like [`Edge::start_with`], on workerd with `request.cf.country` set to `country`
    /// (`None`: the runtime knows no country). On Spin requests say their country in
    /// [`COUNTRY_HEADER`].
    pub async fn start_in_country(
        runtime: Runtime,
        origin: &Origin,
        port: u16,
        country: Option<&str>,
        extra: &[(&'static str, &str)],
    ) -> Self {
        let mut upstream = vec![("ORIGIN_URL", origin.url.clone())];
        upstream.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Self::start_upstream(runtime, upstream, port, country).await
    }

    /// Starts the edge in front of several origin regions (`REGIONS`, JSON), on `port`.
    pub async fn start_regions(runtime: Runtime, regions: &serde_json::Value, port: u16) -> Self {
        let upstream = vec![("REGIONS", regions.to_string())];
        Self::start_upstream(runtime, upstream, port, Some(VIEWER_COUNTRY)).await
    }

    async fn start_upstream(
        runtime: Runtime,
        upstream: Vec<(&'static str, String)>,
        port: u16,
        cf_country: Option<&str>,
    ) -> Self {
        let mut vars = settings(upstream);
        // Under `spin up` with a test Redis, the state lives there (see `spin_up_cmd`), in a
        // database of the edge's own unless the caller shares one.
        if matches!(runtime, Runtime::SpinUp)
            && test_redis().is_some()
            && !vars.iter().any(|(k, _)| *k == "REDIS_URL")
        {
            vars.push(("REDIS_URL", redis_db()));
        }
        let mut edge = Self {
            url: format!("http://127.0.0.1:{port}"),
            runtime,
            port,
            vars,
            cf_country: cf_country.map(str::to_owned),
            proc: None,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        edge.restart().await;
        edge
    }

    /// Kills the runtime at once (SIGKILL to its group): the edge is down.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.kill_now();
        }
        self.proc = None;
    }

    /// Starts the runtime again on the same port with the same state folder.
    pub async fn restart(&mut self) {
        self.kill();
        let dir = self.dir.path();
        let cmd = match self.runtime {
            Runtime::Wrangler => wrangler_cmd(
                dir,
                self.port,
                self.vars.clone(),
                self.cf_country.as_deref(),
            ),
            Runtime::Spin => spin_cmd(dir, self.port, self.vars.clone()),
            Runtime::SpinUp => spin_up_cmd(dir, self.port, self.vars.clone()),
        };
        let mut proc = Proc::spawn("edge", cmd, self.port, dir.join("edge.log"));
        proc.wait_ready(&format!("{}/healthz", self.url), Duration::from_secs(240))
            .await;
        self.proc = Some(proc);
    }

    /// The Redis database the edge keeps its state in (`spin up` with a test Redis only).
    pub fn redis_url(&self) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| *k == "REDIS_URL")
            .map(|(_, v)| v.as_str())
    }

    /// Whether concurrent requests meet exact rate limits: on Workers (a Durable Object per
    /// key) and on Spin with Redis (one script per decision), not on Spin's plain store.
    pub fn exact_limits_under_concurrency(&self) -> bool {
        matches!(self.runtime, Runtime::Wrangler) || self.redis_url().is_some()
    }

    /// The runtime's output so far (of the current process).
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log).unwrap_or_default()
    }

    /// The resident memory, in bytes, of the processes that run the edge's code. Under
    /// `wrangler dev` that is the workerd running the Worker (the one with an inspector), not
    /// wrangler's own dev proxy in front of it (node and a second workerd), which production
    /// does not have; under Spin, the host.
    pub fn memory(&self) -> u64 {
        let Some(proc) = &self.proc else { return 0 };
        match self.runtime {
            Runtime::Wrangler => {
                proc.memory_where(|cmd| cmd.contains("workerd") && cmd.contains("--inspector-addr"))
            }
            Runtime::Spin | Runtime::SpinUp => proc.memory_where(|_| true),
        }
    }

    /// Spin only: the keys in the edge's key-value store, as spin-host keeps it on disk
    /// (`--kv-dir`: one file per key, named by the key in hex; `.tmp-…` files are writes under
    /// way and hold no key yet).
    pub fn kv_keys(&self) -> std::collections::BTreeSet<String> {
        assert!(matches!(self.runtime, Runtime::Spin), "kv_keys is for Spin");
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("kv")) else {
            return Default::default();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                String::from_utf8(hex::decode(name).ok()?).ok()
            })
            .collect()
    }

    /// Spin only, with the edge stopped ([`Edge::kill`]): stores `value` under `key` the way
    /// spin-host does; the next [`Edge::restart`] loads it with the rest of the store.
    pub fn kv_insert(&self, key: &str, value: &[u8]) {
        assert!(
            matches!(self.runtime, Runtime::Spin),
            "kv_insert is for Spin"
        );
        assert!(self.proc.is_none(), "kv_insert wants the edge stopped");
        let dir = self.dir.path().join("kv");
        std::fs::create_dir_all(&dir).expect("the edge's kv folder");
        std::fs::write(dir.join(hex::encode(key)), value).expect("writing a kv entry");
    }
}

/// A wrangler config that runs the already built bundle (no build step) with test settings.
fn wrangler_cmd(
    dir: &Path,
    port: u16,
    vars: Vec<(&'static str, String)>,
    country: Option<&str>,
) -> Command {
    let main = artifact("edge/cloudflare/build/index.js");
    // The web app's pages, served by Workers before the Worker as in wrangler.toml, but for the
    // pages the Worker serves itself through the ASSETS binding.
    let assets = artifact("web/dist/index.html");
    let assets = assets.parent().expect("web/dist");
    let mut toml = format!(
        "name = \"edge-video-e2e\"\nmain = \"{}\"\ncompatibility_date = \"2025-09-01\"\n\n\
         [assets]\ndirectory = \"{}\"\nbinding = \"ASSETS\"\nhtml_handling = \"auto-trailing-slash\"\n\
         run_worker_first = [\"/watch\", \"/studio\"]\n\n\
         [[kv_namespaces]]\nbinding = \"EDGE_KV\"\nid = \"e2e\"\n\n\
         [[durable_objects.bindings]]\nname = \"RATE_LIMITER\"\nclass_name = \"RateLimiter\"\n\n\
         [[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"RateLimiter\"]\n\n[vars]\n",
        main.display(),
        assets.display()
    );
    for (k, v) in vars {
        // A literal string: JSON values (REGIONS) keep their quotes.
        assert!(!v.contains('\''), "{k} cannot be a TOML literal string");
        toml.push_str(&format!("{k} = '{v}'\n"));
    }
    let config = dir.join("wrangler.toml");
    std::fs::write(&config, toml).expect("writing wrangler.toml");
    // `request.cf` under wrangler dev comes from this file: a Miniflare (local simulator)
    // setting, so the country can be chosen here and never in a deployment.
    let cf = dir.join("cf.json");
    let mut cf_json = serde_json::json!({"continent": VIEWER_CONTINENT, "colo": "LOCAL"});
    if let Some(c) = country {
        cf_json["country"] = c.into();
    }
    std::fs::write(&cf, cf_json.to_string()).expect("writing cf.json");
    let mut cmd = Command::new(artifact("node_modules/.bin/wrangler"));
    cmd.current_dir(dir)
        .args(["dev", "--config"])
        .arg(&config)
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port().to_string()])
        .arg("--persist-to")
        .arg(dir.join("state"))
        .env("WRANGLER_SEND_METRICS", "false")
        // With a path set (and fresh), Miniflare reads `request.cf` from it and downloads nothing.
        .env_remove("CLOUDFLARE_CF_FETCH_ENABLED")
        .env("CLOUDFLARE_CF_FETCH_PATH", &cf)
        .env("NO_COLOR", "1");
    cmd
}

/// `spin up` with the repository's `spin.toml`, as a user runs it: settings as
/// `SPIN_VARIABLE_*`, and a runtime config that puts the key-value store in the edge's folder
/// (so it survives a restart, and concurrent tests do not share the default `.spin/` one), or,
/// with `REDIS_URL`, in that Redis database, as `runtime-config-redis.toml` does.
fn spin_up_cmd(dir: &Path, port: u16, vars: Vec<(&'static str, String)>) -> Command {
    let spin = spin_cli().expect(
        "no Spin CLI (SPIN_BIN, PATH or ../shared/bin/spin); scripts/test.sh skips these tests \
         when it finds none",
    );
    artifact("target/wasm32-wasip2/release/edge_spin_static.wasm");
    artifact("web/dist/index.html");
    let config = dir.join("runtime-config.toml");
    let store = match vars.iter().find(|(k, _)| *k == "REDIS_URL") {
        Some((_, url)) => format!("type = \"redis\"\nurl = \"{url}\""),
        None => format!(
            "type = \"spin\"\npath = \"{}\"",
            dir.join("kv.db").display()
        ),
    };
    std::fs::write(&config, format!("[key_value_store.default]\n{store}\n"))
        .expect("writing the runtime config");
    let mut cmd = Command::new(spin);
    cmd.arg("up")
        .arg("--from")
        .arg(artifact("spin.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--runtime-config-file")
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.join("state"));
    for (k, v) in vars {
        cmd.env(format!("SPIN_VARIABLE_{k}"), v);
    }
    cmd
}

/// spin-host with the repository's `spin.toml`: the edge component and the web app's static one
/// on their routes, as `spin up` runs them.
fn spin_cmd(dir: &Path, port: u16, vars: Vec<(&'static str, String)>) -> Command {
    // The files the manifest names, checked here so a missing one says how to build it.
    artifact("target/wasm32-wasip2/release/edge_spin.wasm");
    artifact("target/wasm32-wasip2/release/edge_spin_static.wasm");
    artifact("web/dist/index.html");
    let mut cmd = Command::new(artifact("target/debug/spin-host"));
    cmd.arg("--manifest")
        .arg(artifact("spin.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--allow-outbound", "http://127.0.0.1:*"])
        .arg("--kv-dir")
        .arg(dir.join("kv"));
    for (k, v) in vars {
        cmd.arg("--var")
            .arg(format!("{}={v}", k.to_ascii_lowercase()));
    }
    cmd
}

/// A client whose requests come from [`VIEWER_COUNTRY`] on both runtimes: workerd's
/// `request.cf` says so, and on Spin the trusted header this client sends.
pub fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        COUNTRY_HEADER,
        reqwest::header::HeaderValue::from_static(VIEWER_COUNTRY),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

/// Reads the feed-cached `url` until a second read in a row is a cache `HIT`. A fresh edge
/// keys feed pages by feed versions that arrive through the sync after it starts: until the
/// seed's have, a page is stored under a version that is about to change, and the next read
/// misses.
pub async fn until_feed_cached(c: &reqwest::Client, url: &str, edge: &Edge) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        c.get(url).send().await.expect("feed request");
        let r = c.get(url).send().await.expect("feed request");
        if r.headers().get("x-edge-cache").is_some_and(|v| v == "HIT") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: never a cache hit (last answer {}): {}",
            r.status(),
            edge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Logs in through the edge with the demo password; panics unless 200. Returns the JSON body
/// (`access_token`, `refresh_token`, …).
pub async fn login(c: &reqwest::Client, edge: &str, email: &str) -> serde_json::Value {
    let r = c
        .post(format!("{edge}/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": DEMO_PASSWORD}))
        .send()
        .await
        .expect("login request");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "login {email}");
    r.json().await.expect("login JSON")
}

/// A public video's playback through `edge`, as a player starts it: the URL of its first
/// variant and of that variant's segments (asserts the playback answer is 200).
pub async fn play_first_variant(
    c: &reqwest::Client,
    edge: &str,
    video: &str,
) -> (String, Vec<String>) {
    let r = c
        .get(format!("{edge}/v1/videos/{video}/playback"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "playback of {video}");
    let answer: serde_json::Value = r.json().await.unwrap();
    let manifest = answer["manifest_url"].as_str().expect("a manifest URL");
    first_variant(c, manifest).await
}

/// A master playlist's first variant: its URL and the URLs of its segments, in order.
pub async fn first_variant(c: &reqwest::Client, manifest: &str) -> (String, Vec<String>) {
    let uris = |playlist: &str| -> Vec<String> {
        playlist
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let base = manifest
        .strip_suffix("master.m3u8")
        .expect("a master playlist URL");
    let master = c.get(manifest).send().await.unwrap().text().await.unwrap();
    let variant_url = format!("{base}{}", uris(&master)[0]);
    let playlist = c
        .get(&variant_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = variant_url.rsplit_once('/').unwrap().0;
    let segments = uris(&playlist)
        .into_iter()
        .map(|s| format!("{dir}/{s}"))
        .collect();
    (variant_url, segments)
}

/// A new public video of `token`'s creator titled `title`, with `bytes` PUT to its upload URL
/// through the edge at `edge` (transcoding follows); its id.
pub async fn upload_video(
    c: &reqwest::Client,
    edge: &str,
    token: &str,
    title: &str,
    bytes: Vec<u8>,
) -> String {
    let r = c
        .post(format!("{edge}/v1/videos"))
        .bearer_auth(token)
        .json(&serde_json::json!({"title": title, "visibility": "public"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .post(format!("{edge}/v1/videos/{id}/upload"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let ticket: serde_json::Value = r.json().await.unwrap();
    let r = c
        .put(ticket["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    id
}

/// The access token of `email` (the demo password), signed in through the edge at `edge`.
pub async fn token(c: &reqwest::Client, edge: &str, email: &str) -> String {
    login(c, edge, email).await["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// Sends `method url` with `token` and a JSON `body`; returns the status and the JSON answer
/// (`Null` when it is not JSON).
pub async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = c.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("answer body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// GETs `url` with `token` as its bearer; panics unless 200. Returns the JSON body.
pub async fn get_json_as(c: &reqwest::Client, url: &str, token: &str) -> serde_json::Value {
    let r = c
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET request");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "GET {url}");
    r.json().await.expect("JSON answer")
}
