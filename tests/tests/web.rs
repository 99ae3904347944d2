//! The web app in Chromium, once per edge runtime: the pages come from the edge (Workers static
//! assets under `wrangler dev`; the static component beside the edge under spin-host and
//! `spin up`), and a viewer walks them (`tests/browser/viewer.mjs`, playwright-core): home and
//! its tabs, search, a video that plays for 3 s and more, its quality and speed menus, resume
//! after a reload, the channel page, a members video's invitation, a taken-down and a blocked
//! video's reasons, a comment holding markup shown as text, the security headers on every page
//! and asset, axe-core on each page type. Screenshots of each page type go to
//! `target/screenshots/`.
//!
//! Needs `node` and Chromium (`/usr/bin/chromium`, or `$CHROMIUM`; `scripts/setup.sh` installs
//! it). Without them the test fails and says what is missing: it never passes unrun.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use e2e::{Runtime, COUNTRY_HEADER, DEMO_EMAIL, VIEWER_COUNTRY};
use reqwest::StatusCode;
use serde_json::json;

/// A comment whose every part would do something if it were parsed as HTML.
const MARKUP: &str =
    "<img src=x onerror=\"window.__xss=1\"><b>bold?</b><script>window.__xss=2</script> & &amp;";

/// The longest a viewer's walk may take (it takes well under a minute).
const WALK_LIMIT: Duration = Duration::from_secs(240);

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails the test, saying what to install, unless node and Chromium are here: without them
/// the walk cannot run, and a walk not run must not count as passed.
fn require_browser() {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing: Vec<&str> = [
        (!node).then_some("node"),
        (!chromium().is_file()).then_some("Chromium (apt-get install chromium, or set CHROMIUM)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        missing.is_empty(),
        "the web test needs {} (scripts/setup.sh installs them)",
        missing.join(" and ")
    );
}

async fn walk(runtime: Runtime, name: &str) {
    require_browser();
    let (_origin, edge) = e2e::stack(runtime).await;
    let e = edge.url.as_str();
    let c = e2e::client();

    // A comment with markup, posted through the API as any viewer could.
    let tokens = e2e::login(&c, e, DEMO_EMAIL).await;
    let token = tokens["access_token"].as_str().unwrap();
    let r = c
        .post(format!("{e}/v1/videos/demo-free/comments"))
        .bearer_auth(token)
        .json(&json!({ "body": MARKUP }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", edge.log());

    let root = e2e::root();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("tests/browser/viewer.mjs"))
        .current_dir(&root)
        .env("EDGE_URL", e)
        .env("RUNTIME", name)
        .env("SCREENSHOT_DIR", root.join("target/screenshots"))
        .env("MARKUP_COMMENT", MARKUP)
        .env("COUNTRY_HEADER", COUNTRY_HEADER)
        .env("COUNTRY", VIEWER_COUNTRY)
        .env("CHROMIUM", chromium())
        .kill_on_drop(true);
    let out = tokio::time::timeout(WALK_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the viewer's walk on {name} took over {WALK_LIMIT:?}"))
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("VIEWER OK"),
        "the viewer's walk failed on {name}:\n{stdout}\n{stderr}\nedge log:\n{}",
        edge.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn web_app_on_workerd_via_wrangler_dev() {
    walk(Runtime::Wrangler, "wrangler").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_app_on_spin_component_in_wasmtime() {
    walk(Runtime::Spin, "spin").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_app_under_spin_up() {
    walk(Runtime::SpinUp, "spin-up").await;
}

/// `bench/web/run.sh`: the time from navigation to the first `playing` event on one runtime
/// (`bench/web/first-play.mjs`); prints its JSON line. Not a test: ignored in normal runs.
async fn bench_first_play(runtime: Runtime, name: &str) {
    require_browser();
    let (_origin, edge) = e2e::stack(runtime).await;
    let root = e2e::root();
    let out = tokio::process::Command::new("node")
        .arg(root.join("bench/web/first-play.mjs"))
        .current_dir(&root)
        .env("EDGE_URL", &edge.url)
        .env("RUNTIME", name)
        .env("COUNTRY_HEADER", COUNTRY_HEADER)
        .env("COUNTRY", VIEWER_COUNTRY)
        .env("CHROMIUM", chromium())
        .kill_on_drop(true)
        .output()
        .await
        .expect("running node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: bench/web/run.sh"]
async fn bench_first_play_on_workerd_via_wrangler_dev() {
    bench_first_play(Runtime::Wrangler, "wrangler dev").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: bench/web/run.sh"]
async fn bench_first_play_on_spin_component_in_wasmtime() {
    bench_first_play(Runtime::Spin, "spin-host").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: bench/web/run.sh"]
async fn bench_first_play_under_spin_up() {
    bench_first_play(Runtime::SpinUp, "spin up").await;
}
