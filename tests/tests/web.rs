//! The web app in Chromium, once per edge runtime: the pages come from the edge (Workers static
//! assets under `wrangler dev`; the static component beside the edge under spin-host and
//! `spin up`; `/watch` and `/studio` from the edge itself), and these walks run in them
//! (playwright-core, helpers shared in `tests/browser/walk.mjs`):
//!
//! - a signed-out viewer (`viewer.mjs`): home and its tabs, search, a video that plays for 3 s
//!   and more, its quality and speed menus, resume after a reload, the channel page, a members
//!   video's invitation, a taken-down and a blocked video's reasons, a comment holding markup
//!   shown as text, every control inviting sign-in;
//! - a viewer who signs up (`social.mjs`): finds and plays the public demo, switches quality and
//!   speed, likes it, subscribes to its channel, comments (errors said plainly; markup inert;
//!   edits one, deletes another), and sees the like, the subscription and the comment after a
//!   reload; then another user's two replies (through the API) reach the header's bell without
//!   a reload, one is opened and the rest marked read, the viewer replies to a reply, and a
//!   notification setting is saved on the account page;
//! - a viewer's account (`account.mjs`): sign-up from a members video's invitation, the refresh
//!   cookie's attributes, a cross-site refresh refused, the session across a reload, checkout
//!   through Stripe's stand-in and its webhooks, the members video playing, the account page,
//!   sign out and in;
//! - a creator and an admin (`studio.mjs`, `admin.mjs`, several users at once through
//!   `users.mjs`): the studio refused to a visitor and a viewer; a video created, its file sent
//!   by tus straight to the origin (through the origin's CORS and the page's CSP), paused,
//!   resumed from the origin's offset, the page reloaded and the same file continuing, the
//!   transcoding followed to ready, every field edited, the video playing; a video and a channel
//!   deleted; a webhook endpoint added, its delivery log showing the upload's events delivered to
//!   a receiver on loopback, one sent again, its secret rotated, the endpoint deleted; then the admin page refused to a viewer, users found, a role changed, sessions
//!   ended, and a video taken down while a viewer's watch page plays it: the page stops at its
//!   next segment and says why; restored; a viewer reports it from its watch page, a moderator
//!   dismisses the report from the review queue, the admin finds that in the audit log and
//!   suspends and reinstates the viewer.
//!
//! - pre-roll ads (`ads.mjs`): a signed-out viewer sees the campaign's ad (skippable only after
//!   5 s) to its end and then the video, a member sees none, the second ad is skipped, and the
//!   daily cap then stops the campaign; the origin's figures equal the tracking the player sent,
//!   each event once per ad view, and a repeated impression changes nothing.
//!
//! All check the security headers on every page and asset, run axe-core on each page type, and
//! write screenshots to `target/screenshots/`. Then the raw HTML as a link previewer reads it:
//! the Open Graph tags of a public video (escaped, checked with a title full of markup), none for
//! a members, taken-down or unknown one, the same security headers as the static pages, `ETag`
//! and 304, HEAD; and the studio page's CSP with the upload origin.
//!
//! Needs `node` and Chromium (`/usr/bin/chromium`, or `$CHROMIUM`; `scripts/setup.sh` installs
//! it). Without them the test fails and says what is missing: it never passes unrun.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use e2e::stripe::{deliver, event, StandIn};
use e2e::webhooks::Receiver;
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

/// `node tests/browser/{script}` against `edge`, with the settings every walk reads
/// (tests/browser/walk.mjs) and `extra`.
fn node_command(
    script: &str,
    edge: &e2e::Edge,
    name: &str,
    extra: &[(&str, &str)],
) -> tokio::process::Command {
    let root = e2e::root();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("tests/browser").join(script))
        .current_dir(&root)
        .env("EDGE_URL", &edge.url)
        .env("RUNTIME", name)
        .env("SCREENSHOT_DIR", root.join("target/screenshots"))
        .env("COUNTRY_HEADER", COUNTRY_HEADER)
        .env("COUNTRY", VIEWER_COUNTRY)
        .env("CHROMIUM", chromium())
        .envs(extra.iter().copied())
        .kill_on_drop(true);
    cmd
}

/// Runs `tests/browser/{script}` against `edge`; fails unless it ends with `{marker}`.
async fn node_walk(
    script: &str,
    marker: &str,
    edge: &e2e::Edge,
    name: &str,
    extra: &[(&str, &str)],
) {
    let mut cmd = node_command(script, edge, name, extra);
    let out = tokio::time::timeout(WALK_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{script} on {name} took over {WALK_LIMIT:?}"))
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(marker),
        "{script} failed on {name}:\n{stdout}\n{stderr}\nedge log:\n{}",
        edge.log()
    );
}

/// Every page load restores the session (a refresh and a profile read) beside the page's own
/// calls: the walks make more than the default 60 API calls a minute from one address.
const WALK_LIMITS: [(&str, &str); 1] = [("RATE_LIMITS", "api=1000/60")];

async fn walk(runtime: Runtime, name: &str) {
    require_browser();
    let edge_port = e2e::free_port();
    let origin = Origin::start(edge_port).await;
    let edge = Edge::start_with(runtime, &origin, edge_port, &WALK_LIMITS).await;
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

    node_walk(
        "viewer.mjs",
        "VIEWER OK",
        &edge,
        name,
        &[("MARKUP_COMMENT", MARKUP)],
    )
    .await;
    // The seeded viewer answers the walk's new user (the walk logs in through the API).
    node_walk(
        "social.mjs",
        "SOCIAL OK",
        &edge,
        name,
        &[
            ("PASSWORD", e2e::DEMO_PASSWORD),
            ("REPLIER_EMAIL", e2e::VIEWER_EMAIL),
        ],
    )
    .await;
    ads_walk(&c, &edge, name).await;
    previews(&c, &edge, token).await;
    studio_csp(&c, &edge, &origin).await;
}

/// The pre-roll (`tests/browser/ads.mjs`): a campaign started through the edge by an admin,
/// with the public 8 s demo as its creative and a daily cap of two impressions.
async fn ads_walk(c: &reqwest::Client, edge: &e2e::Edge, name: &str) {
    let e = edge.url.as_str();
    let tokens = e2e::login(c, e, e2e::ADMIN_EMAIL).await;
    let admin = tokens["access_token"].as_str().unwrap();
    let ends_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    let r = c
        .post(format!("{e}/v1/ads/campaigns"))
        .bearer_auth(admin)
        .json(&json!({
            "name": "Spring sale",
            "creative": "demo-embed",
            "click_url": "https://advertiser.example/spring",
            "ends_at": ends_at,
            "daily_cap": 2,
            // No third ad for the walk's viewer, should the capped catalog reach the edge late.
            "frequency_cap": 2,
            "cpm_minor": 2500,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", edge.log());
    let campaign: serde_json::Value = r.json().await.unwrap();
    // The catalog reaches the edge through the outbox: wait until the edge serves the ad (to
    // this client, a viewer of its own, so the browser's frequency cap is untouched).
    let vast = format!("{e}/v1/ads/vast?video=demo-free");
    let mut last = String::new();
    for _ in 0..100 {
        let r = c
            .get(&vast)
            .header(COUNTRY_HEADER, VIEWER_COUNTRY)
            .send()
            .await
            .unwrap();
        last = r.text().await.unwrap();
        if last.contains("<Ad ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        last.contains("<Ad "),
        "the edge serves no ad: {last}\n{}",
        edge.log()
    );
    node_walk(
        "ads.mjs",
        "ADS OK",
        edge,
        name,
        &[
            ("CAMPAIGN", campaign["id"].as_str().unwrap()),
            ("ADMIN_TOKEN", admin),
            ("MEMBER_EMAIL", DEMO_EMAIL),
            ("PASSWORD", e2e::DEMO_PASSWORD),
        ],
    )
    .await;
}

/// The headers a static page of the web app is served with (`/`), to compare the edge's pages'
/// with: the `_headers` file's, on every runtime.
const SECURITY_HEADERS: [&str; 5] = [
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "permissions-policy",
];

async fn text_of(c: &reqwest::Client, url: &str) -> (reqwest::header::HeaderMap, String) {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    let headers = r.headers().clone();
    (headers, r.text().await.unwrap())
}

/// The watch page's raw HTML, as a link previewer reads it (no script runs).
async fn previews(c: &reqwest::Client, edge: &e2e::Edge, creator_token: &str) {
    let e = edge.url.as_str();
    let (home, _) = text_of(c, &format!("{e}/")).await;
    let (generic_headers, generic) = text_of(c, &format!("{e}/watch")).await;
    assert!(
        generic.contains("<title>Watch – edge-video</title>"),
        "{generic}"
    );
    assert!(!generic.contains("og:"), "the page as built names no video");

    // A public video: its tags, with absolute URLs, and the same headers as the static pages.
    let (headers, html) = text_of(c, &format!("{e}/watch?v=demo-free")).await;
    for tag in [
        "<title>Test pattern (public) – edge-video</title>".to_owned(),
        "<meta property=\"og:title\" content=\"Test pattern (public)\">".to_owned(),
        "<meta property=\"og:type\" content=\"video.other\">".to_owned(),
        format!("<meta property=\"og:image\" content=\"{e}/posters/demo-free.jpg\">"),
        format!("<meta property=\"og:url\" content=\"{e}/watch?v=demo-free\">"),
        "<meta property=\"og:description\" content=\"".to_owned(),
        "<meta name=\"twitter:card\" content=\"summary_large_image\">".to_owned(),
    ] {
        assert!(html.contains(&tag), "{tag} missing from:\n{html}");
    }
    for h in SECURITY_HEADERS {
        assert!(home.get(h).is_some(), "/ lacks {h}");
        assert_eq!(headers.get(h), home.get(h), "/watch's {h} differs from /'s");
        assert_eq!(
            generic_headers.get(h),
            home.get(h),
            "/watch's {h} differs from /'s"
        );
    }
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=0, must-revalidate"
    );
    let poster = c
        .get(format!("{e}/posters/demo-free.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            poster.status(),
            poster.headers()["content-type"].to_str().unwrap()
        ),
        (StatusCode::OK, "image/jpeg"),
        "og:image is the public poster"
    );

    // Revalidation and HEAD.
    let tag = headers["etag"].to_str().unwrap();
    let again = c
        .get(format!("{e}/watch?v=demo-free"))
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.headers().get("content-security-policy").is_some());
    let head = c
        .head(format!("{e}/watch?v=demo-free"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["etag"].to_str().unwrap(), tag);
    assert!(head.bytes().await.unwrap().is_empty());
    let post = c.post(format!("{e}/watch")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Members, taken down, unknown, malformed: the page as built, nothing about the video.
    for id in [
        "demo-members",
        "demo-taken",
        "no-such-video",
        "%3Cscript%3E",
    ] {
        let (_, html) = text_of(c, &format!("{e}/watch?v={id}")).await;
        assert_eq!(html, generic, "{id} must get the page as built");
    }

    // A title full of markup is escaped everywhere it goes (the edge learns it by the sync).
    let title = "\"><script>alert(1)</script> & co";
    let r = c
        .patch(format!("{e}/v1/videos/demo-embed"))
        .bearer_auth(creator_token)
        .json(&json!({ "title": title }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let escaped = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; co";
    let mut html = String::new();
    for _ in 0..60 {
        html = text_of(c, &format!("{e}/watch?v=demo-embed")).await.1;
        if html.contains(escaped) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        html.contains(&format!(
            "<meta property=\"og:title\" content=\"{escaped}\">"
        )) && html.contains(&format!("<title>{escaped} – edge-video</title>")),
        "the new title, escaped, never reached the page:\n{html}"
    );
    assert!(!html.contains("<script>alert"), "{html}");
}

/// The studio page's CSP lets the browser upload to the origin (its `connect-src`), and is
/// otherwise the static pages'. The page itself is the creator studio's (`web/pages/studio.html`);
/// a build without it has no page to check.
async fn studio_csp(c: &reqwest::Client, edge: &e2e::Edge, origin: &e2e::Origin) {
    let e = edge.url.as_str();
    if !e2e::root().join("web/dist/studio.html").is_file() {
        println!("no web/dist/studio.html in this build: the studio page's CSP is not checked");
        return;
    }
    let (home, _) = text_of(c, &format!("{e}/")).await;
    let (headers, _) = text_of(c, &format!("{e}/studio")).await;
    let csp = headers["content-security-policy"].to_str().unwrap();
    let static_csp = home["content-security-policy"].to_str().unwrap();
    let want = static_csp.replace(
        "connect-src 'self'",
        &format!("connect-src 'self' {}", origin.url),
    );
    assert_ne!(want, static_csp, "the static CSP has connect-src 'self'");
    assert_eq!(csp, want);
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
    let edge = Edge::start_with(runtime, &origin, edge_port, &WALK_LIMITS).await;
    let mut child = node_command("account.mjs", &edge, name, &[("STRIPE_URL", &stripe.url)])
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

// The creator studio and the admin page (`tests/browser/studio.mjs`, `tests/browser/admin.mjs`).

/// What the creator uploads: 3 s of 640x360 noise (so the ladder has two renditions, 240p and
/// 360p), encoded losslessly so that the file (about 13 MB) spans two of the studio's 8 MiB tus
/// chunks and an upload can be interrupted between them.
fn noise_source(dir: &std::path::Path) -> PathBuf {
    let out = dir.join("studio-upload.mp4");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=640x360:r=12:d=3,geq=lum='random(1)*255':cb=128:cr=128",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=500:sample_rate=48000:duration=3",
        ])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs")
        .success();
    assert!(ok, "ffmpeg could not render the upload");
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(
        size > 9 << 20,
        "the upload is {size} bytes: too small to span two tus chunks"
    );
    out
}

/// The month before last for the demo creator, closed by the admin through the edge: `(month,
/// total in minor units)`. (Not last month: the origin's own job closes that one a few days into
/// this month, maybe before the inputs below are written.) A month of history cannot be played in a test, so its inputs are written into
/// the origin's database as the billing webhooks and the players' reports would have left them:
/// two memberships of 9.99 paid, ten minutes of members' watch time on `demo-members`, and four
/// ad impressions at 25.00 per thousand on `demo-free`. With the platform's 30 %: 1,998 → 600
/// and a pool of 1,398, all the demo creator's (the only members' watch time); ads 10 → 3 and 7.
async fn last_months_earnings(edge: &e2e::Edge, origin: &Origin) -> (String, String) {
    let month = origin::earnings::Month::of(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .previous()
    .previous();
    let at = (month.start() + 86_400) as i64;
    let db = origin::db::connect(&origin.database).await.unwrap();
    for (i, q) in [
        "INSERT INTO billing_invoices VALUES ('in_web_1', 'u', 'sub', 999, 'eur', $1)",
        "INSERT INTO billing_invoices VALUES ('in_web_2', 'u', 'sub', 999, 'eur', $1)",
        "INSERT INTO playback_views (view_id, video_id, viewer, country, device, hour, issued_at,
                                     watched_ms, retention, rebuffers, rebuffer_ms, switches,
                                     errors, members)
         VALUES ('w_web', 'demo-members', 'u:m', 'DE', 'desktop', $1, $1, 600000, 0, 0, 0, 0, 0, 1)",
    ]
    .into_iter()
    .enumerate()
    {
        let q = sqlx::query(q).bind(at);
        q.execute(&db)
            .await
            .unwrap_or_else(|e| panic!("row {i}: {e}"));
    }
    for n in 0..4 {
        sqlx::query(
            "INSERT INTO ad_events VALUES ($1, 'impression', 'ad_web', 'demo-free', 'a:v', 'DE',
                 2500, $2, $3, $3)",
        )
        .bind(format!("x_web_{n}"))
        .bind(at / 86_400)
        .bind(at)
        .execute(&db)
        .await
        .unwrap();
    }
    let c = e2e::client();
    let e = edge.url.as_str();
    let tokens = e2e::login(&c, e, e2e::ADMIN_EMAIL).await;
    let r = c
        .post(format!("{e}/v1/admin/earnings/{month}/close"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", edge.log());
    (month.to_string(), "1405".into())
}

/// A creator uploads through the studio (tus, paused, resumed, the page reloaded and the file
/// chosen again), watches the transcoding reach ready, edits every field and plays the video;
/// then an admin finds users, changes a role, ends sessions and takes a video down while a
/// viewer's watch page plays it, which stops at its next segment and says why.
async fn studio_and_admin(runtime: Runtime, name: &str) {
    require_browser();
    let receiver = Receiver::start().await;
    let edge_port = e2e::free_port();
    // The webhook receiver is on loopback, which production endpoints may not be.
    let origin =
        Origin::start_with_env(edge_port, &[("APP_WEBHOOKS__ALLOW_PRIVATE", "true")]).await;
    // Besides: every user of these walks (a visitor, the creator, the admin, viewers) calls from
    // this one address.
    let edge = Edge::start_with(runtime, &origin, edge_port, &WALK_LIMITS).await;
    let dir = tempfile::tempdir().unwrap();
    let file = noise_source(dir.path());
    let file = file.to_str().unwrap();
    let total = last_months_earnings(&edge, &origin).await;
    node_walk(
        "studio.mjs",
        "STUDIO OK",
        &edge,
        name,
        &[
            ("PASSWORD", e2e::DEMO_PASSWORD),
            ("CREATOR_EMAIL", DEMO_EMAIL),
            ("VIEWER_EMAIL", e2e::VIEWER_EMAIL),
            ("UPLOAD_FILE", file),
            ("EARNINGS_MONTH", &total.0),
            ("EARNINGS_TOTAL", &total.1),
            ("WEBHOOK_URL", &receiver.url),
            (
                "WEBHOOK_SECRETS_FILE",
                receiver.secrets_file().to_str().unwrap(),
            ),
        ],
    )
    .await;
    // What the page showed is what the API says: the uploaded video, edited, plays.
    let c = e2e::client();
    let tokens = e2e::login(&c, &edge.url, DEMO_EMAIL).await;
    let token = tokens["access_token"].as_str().unwrap();
    let list = e2e::get_json_as(&c, &format!("{}/v1/creator/videos", edge.url), token).await;
    let title = format!("Studio upload ({name}), edited");
    let uploaded = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["title"] == title.as_str())
        .unwrap_or_else(|| panic!("no video titled {title:?} in {list}"));
    assert_eq!(uploaded["state"], "ready");
    assert_eq!(uploaded["tags"], json!(["test", "edited"]));
    assert_eq!(
        uploaded["countries"],
        json!({"mode": "deny", "list": ["FR", "BE"]})
    );
    let r = c
        .get(format!(
            "{}/v1/videos/{}/playback",
            edge.url,
            uploaded["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The endpoint the creator added in the studio heard the upload, genuinely signed, in
    // order, and the event sent again arrived a second time under its id.
    let video = uploaded["id"].as_str().unwrap();
    let heard: Vec<_> = receiver
        .accepted()
        .into_iter()
        .filter(|l| l["video"] == video)
        .collect();
    let kinds: Vec<&str> = heard.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["upload.completed", "video.ready", "video.ready"]);
    assert_eq!(heard[1]["id"], heard[2]["id"]);
    assert!(receiver.log().iter().all(|l| l["signature_ok"] == true));

    node_walk(
        "admin.mjs",
        "ADMIN OK",
        &edge,
        name,
        &[
            ("PASSWORD", e2e::DEMO_PASSWORD),
            ("ADMIN_EMAIL", e2e::ADMIN_EMAIL),
            ("MODERATOR_EMAIL", e2e::MODERATOR_EMAIL),
            ("VIEWER_EMAIL", e2e::VIEWER_EMAIL),
        ],
    )
    .await;
    // The admin restored what they took down: it plays again.
    let r = c
        .get(format!("{}/v1/videos/demo-free/playback", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn studio_and_admin_on_workerd_via_wrangler_dev() {
    studio_and_admin(Runtime::Wrangler, "wrangler").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn studio_and_admin_on_spin_component_in_wasmtime() {
    studio_and_admin(Runtime::Spin, "spin").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn studio_and_admin_under_spin_up() {
    studio_and_admin(Runtime::SpinUp, "spin-up").await;
}
