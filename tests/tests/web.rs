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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use e2e::stripe::{deliver, event, StandIn};
use e2e::{Edge, Origin, Runtime, COUNTRY_HEADER, DEMO_EMAIL, VIEWER_COUNTRY};
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

/// `node tests/browser/{script}` against `edge_url`, with the settings every walk reads
/// (tests/browser/common.mjs).
fn node_walk(script: &str, edge_url: &str, name: &str) -> tokio::process::Command {
    let root = e2e::root();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("tests/browser").join(script))
        .current_dir(&root)
        .env("EDGE_URL", edge_url)
        .env("RUNTIME", name)
        .env("SCREENSHOT_DIR", root.join("target/screenshots"))
        .env("COUNTRY_HEADER", COUNTRY_HEADER)
        .env("COUNTRY", VIEWER_COUNTRY)
        .env("CHROMIUM", chromium())
        .kill_on_drop(true);
    cmd
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

    let mut cmd = node_walk("viewer.mjs", e, name);
    cmd.env("MARKUP_COMMENT", MARKUP);
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

/// The account walk (`tests/browser/account.mjs`): sign-up from a members video, the refresh
/// cookie, checkout, and the members video playing once Stripe's (stand-in's) webhooks arrive.
/// The walk prints `CHECKOUT {email}` on Stripe's page; this side then delivers the events for
/// the Checkout session the origin opened and answers `PAID` on the walk's stdin.
async fn account_walk(runtime: Runtime, name: &str) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    require_browser();
    let stripe = StandIn::start().await;
    let edge_port = e2e::free_port();
    let mut origin = Origin::start(edge_port).await;
    origin.env = e2e::billing_env(&stripe.url);
    origin.restart().await;
    // Every page load restores the session (a refresh and a profile read) beside the page's own
    // calls: more than the default 60 API calls a minute from this one address.
    let limits = [("RATE_LIMITS", "api=1000/60")];
    let edge = Edge::start_with(runtime, &origin, edge_port, &limits).await;
    let mut child = node_walk("account.mjs", &edge.url, name)
        .env("STRIPE_URL", &stripe.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running node");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let walk = async {
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.expect("reading the walk's output") {
            println!("{line}");
            if line.starts_with("CHECKOUT ") {
                pay(&stripe, &origin.url).await;
                stdin.write_all(b"PAID\n").await.unwrap();
            }
            seen.push(line);
        }
        seen
    };
    let seen = tokio::time::timeout(WALK_LIMIT, walk)
        .await
        .unwrap_or_else(|_| panic!("the account walk on {name} took over {WALK_LIMIT:?}"));
    let status = child.wait().await.unwrap();
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err)
        .await
        .unwrap();
    assert!(
        status.success() && seen.iter().any(|l| l == "ACCOUNT OK"),
        "the account walk failed on {name}:\n{err}\nedge log:\n{}",
        edge.log()
    );
}

/// Stripe's side of a paid Checkout: the session completed, then the subscription created, for
/// the session the origin opened last.
async fn pay(stripe: &StandIn, origin: &str) {
    let calls = stripe.calls();
    let user = calls
        .iter()
        .rev()
        .find_map(|c| c.field("metadata[user_id]"))
        .expect("the origin opened a Checkout session")
        .to_owned();
    let customer = calls
        .iter()
        .rev()
        .find_map(|c| c.field("customer"))
        .expect("the Checkout session names its customer")
        .to_owned();
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let c = e2e::client();
    let session = json!({
        "id": "cs_web", "object": "checkout.session", "mode": "subscription",
        "client_reference_id": user, "customer": customer, "subscription": "sub_web",
    });
    let sub = json!({
        "id": "sub_web", "object": "subscription", "customer": customer, "status": "active",
        "items": {"data": [{"id": "si_web", "current_period_end": t + 30 * 24 * 3600}]},
    });
    let completed = event("evt_web_checkout", "checkout.session.completed", t, session);
    deliver(&c, origin, completed).await;
    let created = event("evt_web_created", "customer.subscription.created", t, sub);
    deliver(&c, origin, created).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_on_workerd_via_wrangler_dev() {
    account_walk(Runtime::Wrangler, "wrangler").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_on_spin_component_in_wasmtime() {
    account_walk(Runtime::Spin, "spin").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_under_spin_up() {
    account_walk(Runtime::SpinUp, "spin-up").await;
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
