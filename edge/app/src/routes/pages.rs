//! The web app's pages that need something only the edge can give each request; every other
//! page is a static file (Workers static assets, `edge/spin-static` on Spin).
//!
//! - `/watch?v=ID`: the built `watch.html` with the video's title in `<title>` and its Open
//!   Graph and Twitter card tags, so a shared link previews. Only a public, ready video that
//!   is not taken down and whose country rule admits the requester previews; any other (members,
//!   private, unknown, taken down, blocked, or one the edge cannot look up just now) gets the
//!   page as built, which names no video.
//! - `/studio`: the built `studio.html` under the `_headers` Content-Security-Policy with the
//!   origins' upload bases added to `connect-src` (uploads go from the browser straight to the
//!   creator's home region by tus).
//!
//! The built page comes from the runtime ([`Platform::asset`]: the `ASSETS` binding on Workers,
//! the component's files mount on Spin). Its security headers come from the same `_headers`
//! file the static pages are served with (`web/static/_headers`, built into the edge), so
//! these pages differ from a static one only where said here. Caching is the static pages':
//! `cache-control: public, max-age=0, must-revalidate` with a strong `ETag` of the bytes sent,
//! so a cache revalidates every time and the edge decides afresh (a takedown ends a preview
//! at once).
//!
//! Everything placed in the HTML is escaped for both text and attribute context
//! ([`escape_html`]); the ids are also checked against the id grammar first.

use shared_wasm::record::{VideoRecord, VideoState, Visibility};
use shared_wasm::static_site::{etag, if_none_match_lists, HeaderRules};
use shared_wasm::VideoId;

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::platform::{Platform, Request, Response};
use crate::routes::playback::{cached_record, load_record, playable};
use crate::{limits, origin};

/// The `_headers` file the static pages are served with: the same rules apply to these.
pub const HEADERS_FILE: &str = include_str!("../../../../web/static/_headers");

/// What every page answer carries besides the `_headers` rules (as Workers and spin-static
/// serve the static pages).
pub const CACHE_CONTROL: &str = "public, max-age=0, must-revalidate";

const HTML: &str = "text/html; charset=utf-8";

/// The site's name, after a video's title in `<title>`, as the static pages write it.
const SITE: &str = "edge-video";

/// How long the description read from the origin for a preview is kept in the edge cache.
const DESCRIPTION_CACHE_SECS: u64 = 60;

/// The longest `og:description`, in characters (previewers cut near 200).
const DESCRIPTION_MAX_CHARS: usize = 200;

/// `s` safe in HTML text and in a quoted attribute value ([`shared_wasm::markup::escape`]).
pub use shared_wasm::markup::escape as escape_html;

/// The `scheme://host[:port]` of an http(s) URL as a CSP source expression, or `None` when
/// the URL is not one whose origin can be written there safely (anything but letters, digits,
/// `.`, `-`, `:`, `[`, `]` in the authority: no spaces, `;`, `,`, quotes or userinfo).
pub fn csp_source(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let ok = !authority.is_empty()
        && authority.len() <= 262
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// `csp` with `sources` added to `connect-src` (those not already there, in order). Without a
/// `connect-src`, one is added that starts from what `default-src` allowed (its fallback), so
/// adding sources never takes any away.
pub fn with_connect_sources(csp: &str, sources: &[String]) -> String {
    let mut directives: Vec<String> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    let name_of = |d: &str| {
        d.split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let at = match directives.iter().position(|d| name_of(d) == "connect-src") {
        Some(i) => i,
        None => {
            let fallback = directives
                .iter()
                .find(|d| name_of(d) == "default-src")
                .map(|d| d.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| "*".into());
            directives.push(format!("connect-src {fallback}"));
            directives.len() - 1
        }
    };
    let mut parts: Vec<String> = directives[at]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // 'none' allows nothing and may not be combined with any source.
    parts.retain(|p| !p.eq_ignore_ascii_case("'none'"));
    for s in sources {
        if !parts.iter().skip(1).any(|p| p.eq_ignore_ascii_case(s)) {
            parts.push(s.clone());
        }
    }
    if parts.len() == 1 {
        parts.push("'none'".into());
    }
    directives[at] = parts.join(" ");
    directives.join("; ")
}

/// The first value of query parameter `name` in `url`, as sent (not percent-decoded: an id
/// never needs decoding, and one that does is not an id).
pub fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1.split('#').next()?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What a watch page's preview says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The video.
    pub id: VideoId,
    /// Its title.
    pub title: String,
    /// Its description (may be empty).
    pub description: String,
}

/// Whether this record may be described to anyone who asks, here: public, ready, not taken
/// down, and admitted by its country rule for this request.
pub fn previewable(record: Option<VideoRecord>, req: &Request) -> Option<VideoRecord> {
    let r = playable(record, req).ok()?;
    (r.visibility == Visibility::Public && r.state == VideoState::Ready).then_some(r)
}

/// `text` cut to `max` characters, on whitespace where there is some near the end, with `…`.
fn shorten(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > cut.len() / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

/// The built watch page with `preview`'s title and tags; `base` is the site's origin
/// (`https://host`) for the absolute URLs. `None` if the page has no `<title>` to replace
/// (then it is served as built).
pub fn render_watch(html: &str, preview: &Preview, base: &str) -> Option<String> {
    let start = html.find("<title>")?;
    let end = start + html[start..].find("</title>")? + "</title>".len();
    let title = escape_html(&preview.title);
    let description = if preview.description.trim().is_empty() {
        format!("Watch {} on {SITE}.", preview.title)
    } else {
        shorten(&preview.description, DESCRIPTION_MAX_CHARS)
    };
    let description = escape_html(&description);
    let id = escape_html(preview.id.as_str());
    let base = escape_html(base);
    let url = format!("{base}/watch?v={id}");
    let image = format!("{base}/posters/{id}.jpg");
    let tags = [
        format!("<title>{title} – {SITE}</title>"),
        format!("<meta name=\"description\" content=\"{description}\">"),
        format!("<link rel=\"canonical\" href=\"{url}\">"),
        "<meta property=\"og:type\" content=\"video.other\">".to_owned(),
        format!("<meta property=\"og:site_name\" content=\"{SITE}\">"),
        format!("<meta property=\"og:title\" content=\"{title}\">"),
        format!("<meta property=\"og:description\" content=\"{description}\">"),
        format!("<meta property=\"og:image\" content=\"{image}\">"),
        format!("<meta property=\"og:url\" content=\"{url}\">"),
        "<meta name=\"twitter:card\" content=\"summary_large_image\">".to_owned(),
        format!("<meta name=\"twitter:title\" content=\"{title}\">"),
        format!("<meta name=\"twitter:description\" content=\"{description}\">"),
        format!("<meta name=\"twitter:image\" content=\"{image}\">"),
    ];
    Some(format!(
        "{}{}{}",
        &html[..start],
        tags.join("\n"),
        &html[end..]
    ))
}

/// The answer for page `path` with `body`: the `_headers` rules for the path (the CSP replaced
/// by `csp` when given), the cache policy and the `ETag`, or a 304 when the request already
/// has these bytes.
pub fn page_response(req: &Request, path: &str, body: Vec<u8>, csp: Option<String>) -> Response {
    let mut headers = HeaderRules::parse(HEADERS_FILE).for_path(path);
    if let Some(csp) = csp {
        headers.retain(|(k, _)| k != "content-security-policy");
        headers.push(("content-security-policy".into(), csp));
    }
    let tag = etag(&body);
    let mut resp = Response::new(200, HTML, body)
        .with_header("cache-control", CACHE_CONTROL)
        .with_header("etag", tag.clone());
    if req
        .header("if-none-match")
        .is_some_and(|v| if_none_match_lists(v, &tag))
    {
        resp.status = 304;
        resp.body.clear();
        resp.headers.retain(|(k, _)| k != "content-type");
    }
    resp.headers.extend(headers);
    resp
}

/// The built page `file` (in `web/dist`), or 404 when this deployment has none.
async fn built<P: Platform>(p: &P, file: &str) -> Result<String, EdgeError> {
    let bytes = p.asset(file).await?.ok_or(EdgeError::NotFound("page"))?;
    String::from_utf8(bytes).map_err(|_| EdgeError::Internal(format!("{file} is not UTF-8")))
}

/// `GET /watch?v=ID`.
pub async fn watch<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let html = built(p, "watch.html").await?;
    let preview = match query_param(&req.url, "v").and_then(|v| VideoId::parse(v).ok()) {
        Some(id) => preview(p, cfg, req, id).await.unwrap_or_else(|e| {
            // The page is still the page: a lookup that failed only costs the preview.
            if e.is_server_fault() {
                p.log_error(&format!("watch page preview: {e}"));
            }
            None
        }),
        None => None,
    };
    let base = cfg
        .site()?
        .site_origin
        .as_deref()
        .unwrap_or_else(|| req.origin());
    let body = match preview.and_then(|pv| render_watch(&html, &pv, base)) {
        Some(page) => page,
        None => html,
    };
    Ok(page_response(req, "/watch", body.into_bytes(), None))
}

/// The preview of video `id` for this request, if it may have one. The record is the edge's
/// own (KV, synced by the origin); an id KV does not know is looked up at the origin only
/// within the playback quota, so made-up ids cannot turn page views into origin traffic.
async fn preview<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    id: VideoId,
) -> Result<Option<Preview>, EdgeError> {
    let record = match cached_record(p, &id).await? {
        Some(r) => Some(r),
        None => {
            cfg.origin()?;
            limits::enforce(p, &cfg.rate_limits()?.playback, req, None).await?;
            load_record(p, cfg, req, &id).await?
        }
    };
    let Some(record) = previewable(record, req) else {
        return Ok(None);
    };
    let description = match description(p, cfg, req, &id).await {
        Ok(Some(d)) => d,
        // The origin says what the edge's record does not know yet: no preview.
        Ok(None) => return Ok(None),
        Err(e) => {
            p.log_error(&format!("watch page description of {id}: {e}"));
            String::new()
        }
    };
    Ok(Some(Preview {
        id,
        title: record.title,
        description,
    }))
}

/// The video's description, as the origin tells anyone (`GET /v1/videos/{id}` without a
/// token), kept in the edge cache a minute. `None` when the origin will not describe it.
async fn description<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    id: &VideoId,
) -> Result<Option<String>, EdgeError> {
    let key = format!("{}/__edge-cache/og/{id}", cfg.site()?.cache_origin);
    let read = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| v.get("description")?.as_str().map(str::to_owned))
    };
    match p.cache_get(&key).await {
        Ok(Some(mut hit)) => {
            if let Some(d) = read(&p.body_bytes(&mut hit).await?) {
                return Ok(Some(d));
            }
        }
        Ok(None) => {}
        Err(e) => p.log_error(&format!("cache read failed: {e}")),
    }
    let resp = origin::get(p, cfg, req, &format!("/v1/videos/{id}")).await?;
    match resp.status {
        200 => {}
        404 | 451 => return Ok(None),
        s => {
            return Err(EdgeError::Upstream(format!(
                "origin answered {s} for the details of {id}"
            )))
        }
    }
    let d = read(&resp.body)
        .ok_or_else(|| EdgeError::Upstream(format!("origin details of {id} lack a description")))?;
    let kept = serde_json::json!({ "description": d })
        .to_string()
        .into_bytes();
    let entry = Response::new(200, "application/json", kept);
    if let Err(e) = p.cache_put(&key, &entry, DESCRIPTION_CACHE_SECS).await {
        p.log_error(&format!("cache write failed: {e}"));
    }
    Ok(Some(d))
}

/// `GET /studio`: the built page, its CSP's `connect-src` opened to the upload origins.
pub async fn studio<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let html = built(p, "studio.html").await?;
    let upload_origins = cfg.upload_origins()?;
    let csp = HeaderRules::parse(HEADERS_FILE)
        .for_path("/studio")
        .into_iter()
        .find(|(k, _)| k == "content-security-policy")
        .map(|(_, v)| with_connect_sources(&v, upload_origins))
        .ok_or_else(|| EdgeError::Internal("_headers gives /studio no CSP".into()))?;
    Ok(page_response(req, "/studio", html.into_bytes(), Some(csp)))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use shared_wasm::record::{CountryMode, CountryRule, VideoRecord, VideoState, Visibility};
    use shared_wasm::CountryCode;

    use super::*;
    use crate::platform::{PlatformError, Response};
    use crate::testing::{block_on, config, config_with, MemPlatform};

    const PAGE: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
                        <title>Watch – edge-video</title>\n<link rel=\"stylesheet\" \
                        href=\"/assets/app.css\">\n</head>\n<body><h1 id=\"title\">Loading…</h1>\
                        </body>\n</html>\n";
    const HOSTILE: &str = "\"><script>alert(1)</script> & <b>'x'</b>";

    fn record(id: &str, visibility: Visibility, taken_down: bool) -> VideoRecord {
        VideoRecord {
            title: HOSTILE.into(),
            visibility,
            taken_down,
            ..crate::testing::video_record(id)
        }
    }

    /// An edge whose KV holds `records`, whose built pages are [`PAGE`] and a studio page, in
    /// front of an origin that describes every video with `description` (and counts asks).
    fn edge(records: &[VideoRecord], description: &'static str) -> (MemPlatform, Rc<RefCell<u32>>) {
        let asked = Rc::new(RefCell::new(0));
        let seen = asked.clone();
        let p = MemPlatform::fallible(move |_, req| {
            *seen.borrow_mut() += 1;
            if req.url.contains("/internal/videos/") {
                return Ok(Response::new(404, "application/json", b"{}".to_vec()));
            }
            assert!(req.url.contains("/v1/videos/"), "{}", req.url);
            assert!(req.header("authorization").is_none(), "asked anonymously");
            let body = serde_json::json!({ "description": description }).to_string();
            Ok(Response::new(200, "application/json", body.into_bytes()))
        });
        for r in records {
            p.kv.borrow_mut()
                .insert(VideoRecord::key(&r.id), r.to_cbor());
        }
        p.assets
            .borrow_mut()
            .insert("watch.html".into(), PAGE.into());
        p.assets
            .borrow_mut()
            .insert("studio.html".into(), "<title>Studio</title>".into());
        (p, asked)
    }

    fn get(url: &str) -> Request {
        Request {
            method: "GET".into(),
            url: url.into(),
            ..Request::default()
        }
    }

    fn body(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn escaping_covers_text_and_both_attribute_quotes() {
        assert_eq!(
            escape_html(HOSTILE),
            "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;&#39;x&#39;&lt;/b&gt;"
        );
        assert_eq!(escape_html("a\u{0}b\nc"), "a b c");
        assert_eq!(escape_html("café – ok"), "café – ok");
    }

    #[test]
    fn a_public_video_previews_with_every_value_escaped() {
        let (p, _) = edge(&[record("v1", Visibility::Public, false)], "Fish & <chips>");
        let r = block_on(watch(&p, &config(), &get("http://edge.test/watch?v=v1"))).unwrap();
        assert_eq!(r.status, 200);
        let html = body(&r);
        let t =
            "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;&#39;x&#39;&lt;/b&gt;";
        assert!(
            html.contains(&format!("<title>{t} – edge-video</title>")),
            "{html}"
        );
        assert!(html.contains(&format!("<meta property=\"og:title\" content=\"{t}\">")));
        assert!(html
            .contains("<meta property=\"og:description\" content=\"Fish &amp; &lt;chips&gt;\">"));
        assert!(html
            .contains("<meta property=\"og:image\" content=\"http://edge.test/posters/v1.jpg\">"));
        assert!(html.contains("<meta property=\"og:url\" content=\"http://edge.test/watch?v=v1\">"));
        assert!(html.contains("<meta property=\"og:type\" content=\"video.other\">"));
        assert!(html.contains("<meta name=\"twitter:card\" content=\"summary_large_image\">"));
        assert!(!html.contains("<script>"), "{html}");
        assert_eq!(html.matches("<title>").count(), 1);
        assert!(html.ends_with("</body>\n</html>\n"), "the rest as built");
    }

    #[test]
    fn the_configured_host_wins_over_the_requests_own() {
        let (p, _) = edge(&[record("v1", Visibility::Public, false)], "");
        let cfg = config_with(&[("CACHE_HOST", "video.example")]);
        let r = block_on(watch(&p, &cfg, &get("http://evil.test/watch?v=v1"))).unwrap();
        let html = body(&r);
        assert!(
            html.contains("content=\"https://video.example/posters/v1.jpg\""),
            "{html}"
        );
        assert!(!html.contains("evil.test"));
        // An empty description says what the video is instead.
        assert!(html.contains("og:description\" content=\"Watch &quot;&gt;&lt;script&gt;"));
    }

    #[test]
    fn members_private_unknown_taken_down_and_blocked_videos_get_the_page_as_built() {
        let mut blocked = record("geo", Visibility::Public, false);
        blocked.countries = Some(CountryRule {
            mode: CountryMode::Allow,
            list: vec![CountryCode::parse("FR").unwrap()],
        });
        let mut unfinished = record("wip", Visibility::Public, false);
        unfinished.state = VideoState::Processing;
        let records = [
            record("members", Visibility::Members, false),
            record("private", Visibility::Private, false),
            record("down", Visibility::Public, true),
            blocked,
            unfinished,
        ];
        let (p, _) = edge(&records, "secret description");
        let cfg = config();
        let mut gb = get("");
        gb.country = Some(CountryCode::parse("GB").unwrap());
        for id in [
            "members", "private", "down", "geo", "wip", "unknown", "bad%20id", "..", "",
        ] {
            gb.url = format!("http://edge.test/watch?v={id}");
            let r = block_on(watch(&p, &cfg, &gb)).unwrap();
            assert_eq!((r.status, body(&r).as_str()), (200, PAGE), "{id}");
        }
        let r = block_on(watch(&p, &cfg, &get("http://edge.test/watch"))).unwrap();
        assert_eq!(body(&r), PAGE);
        // In its country, the geo video previews.
        let mut fr = get("http://edge.test/watch?x=1&v=geo");
        fr.country = Some(CountryCode::parse("FR").unwrap());
        assert!(body(&block_on(watch(&p, &cfg, &fr)).unwrap()).contains("og:title"));
    }

    #[test]
    fn an_origin_that_refuses_the_details_ends_the_preview_and_one_that_fails_only_its_description()
    {
        let rec = record("v1", Visibility::Public, false);
        for (status, previews) in [(451, false), (404, false), (500, true)] {
            let p = MemPlatform::new(move |_, _| {
                Response::new(status, "application/json", b"{}".to_vec())
            });
            p.kv.borrow_mut()
                .insert(VideoRecord::key(&rec.id), rec.to_cbor());
            p.assets
                .borrow_mut()
                .insert("watch.html".into(), PAGE.into());
            let r = block_on(watch(&p, &config(), &get("http://e.test/watch?v=v1"))).unwrap();
            assert_eq!(body(&r).contains("og:title"), previews, "{status}");
        }
        // An id KV does not know, and no origin to ask: the page as built, the failure logged.
        let p = MemPlatform::fallible(|_, _| Err(PlatformError::unreachable("down")));
        p.assets
            .borrow_mut()
            .insert("watch.html".into(), PAGE.into());
        let r = block_on(watch(&p, &config(), &get("http://e.test/watch?v=v1"))).unwrap();
        assert_eq!((r.status, body(&r).as_str()), (200, PAGE));
        assert!(!p.logs.borrow().is_empty());
    }

    #[test]
    fn page_headers_are_the_headers_files_with_validators() {
        let (p, _) = edge(&[record("v1", Visibility::Public, false)], "d");
        let cfg = config();
        let r = block_on(watch(&p, &cfg, &get("http://e.test/watch?v=v1"))).unwrap();
        let stat = HeaderRules::parse(HEADERS_FILE).for_path("/watch");
        assert!(stat.iter().any(|(k, _)| k == "content-security-policy"));
        for (k, v) in &stat {
            assert_eq!(r.header(k), Some(v.as_str()), "{k}");
        }
        assert_eq!(r.header("content-type"), Some(HTML));
        assert_eq!(r.header("cache-control"), Some(CACHE_CONTROL));
        let tag = r.header("etag").unwrap().to_owned();
        assert_eq!(tag, etag(&r.body));
        let mut again = get("http://e.test/watch?v=v1");
        again.headers.push(("if-none-match".into(), tag.clone()));
        let r304 = block_on(watch(&p, &cfg, &again)).unwrap();
        assert_eq!((r304.status, r304.body.len()), (304, 0));
        assert_eq!(r304.header("etag"), Some(tag.as_str()));
        assert!(r304.header("content-security-policy").is_some());
        // Another video's page is other bytes: no 304 for it.
        again.url = "http://e.test/watch?v=other".into();
        assert_eq!(block_on(watch(&p, &cfg, &again)).unwrap().status, 200);
    }

    #[test]
    fn only_ids_kv_does_not_know_are_looked_up_at_the_origin() {
        let (p, asked) = edge(&[record("v1", Visibility::Members, false)], "d");
        let cfg = config();
        block_on(watch(&p, &cfg, &get("http://e.test/watch?v=v1"))).unwrap();
        assert_eq!(
            *asked.borrow(),
            0,
            "a members video: nothing asked of the origin"
        );
        block_on(watch(&p, &cfg, &get("http://e.test/watch?v=nope"))).unwrap();
        assert_eq!(
            *asked.borrow(),
            1,
            "an unknown id: the record, read through"
        );
    }

    #[test]
    fn the_router_answers_head_without_a_body_and_refuses_other_methods() {
        let (p, _) = edge(&[record("v1", Visibility::Public, false)], "d");
        let cfg = config();
        let full = block_on(crate::handle(&p, &cfg, get("http://e.test/watch?v=v1")));
        let mut head = get("http://e.test/watch?v=v1");
        head.method = "HEAD".into();
        let r = block_on(crate::handle(&p, &cfg, head.clone()));
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(
            r.header("content-length"),
            Some(full.body.len().to_string().as_str())
        );
        assert_eq!(r.header("etag"), full.header("etag"));
        head.headers.push((
            "if-none-match".into(),
            full.header("etag").unwrap().to_owned(),
        ));
        let r = block_on(crate::handle(&p, &cfg, head));
        assert_eq!((r.status, r.header("content-length")), (304, None));
        for m in ["POST", "PUT", "DELETE"] {
            let mut req = get("http://e.test/studio");
            req.method = m.into();
            assert_eq!(block_on(crate::handle(&p, &cfg, req)).status, 405, "{m}");
        }
    }

    #[test]
    fn csp_sources_are_origins_and_nothing_else() {
        assert_eq!(
            csp_source("https://EU.example.com/"),
            Some("https://eu.example.com".into())
        );
        assert_eq!(
            csp_source("http://127.0.0.1:8700"),
            Some("http://127.0.0.1:8700".into())
        );
        assert_eq!(
            csp_source("http://[::1]:80/x?y"),
            Some("http://[::1]:80".into())
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://a b",
            "https://a;script-src *",
            "https://a,b",
            "https://'unsafe-inline'",
            "https://user@host",
            "javascript:alert(1)",
            "host.example",
        ] {
            assert_eq!(csp_source(bad), None, "{bad}");
        }
    }

    #[test]
    fn connect_sources_are_added_to_the_csp_and_nothing_else_changes() {
        let csp =
            "default-src 'none'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
        let origins = vec![
            "https://eu.example".to_owned(),
            "https://us.example".to_owned(),
        ];
        assert_eq!(
            with_connect_sources(csp, &origins),
            "default-src 'none'; script-src 'self'; connect-src 'self' https://eu.example \
             https://us.example; frame-ancestors 'none'"
        );
        assert_eq!(
            with_connect_sources("connect-src 'self' https://eu.example", &origins),
            "connect-src 'self' https://eu.example https://us.example"
        );
        assert_eq!(
            with_connect_sources("default-src 'self'; img-src *", &origins),
            "default-src 'self'; img-src *; connect-src 'self' https://eu.example https://us.example"
        );
        assert_eq!(
            with_connect_sources("connect-src 'none'", &origins[..1]),
            "connect-src https://eu.example"
        );
        assert_eq!(
            with_connect_sources("connect-src 'none'", &[]),
            "connect-src 'none'"
        );
    }

    #[test]
    fn the_studio_csp_is_the_headers_files_with_the_upload_origins() {
        let (p, _) = edge(&[], "");
        let cfg = config_with(&[("UPLOAD_ORIGINS", "https://eu.example")]);
        let r = block_on(studio(&p, &cfg, &get("http://e.test/studio"))).unwrap();
        let csp = r.header("content-security-policy").unwrap();
        let file = HeaderRules::parse(HEADERS_FILE)
            .for_path("/studio")
            .into_iter()
            .find(|(k, _)| k == "content-security-policy")
            .unwrap()
            .1;
        assert_eq!(
            csp,
            with_connect_sources(&file, cfg.upload_origins().unwrap())
        );
        assert!(
            csp.contains("connect-src 'self' https://eu.example"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k == "content-security-policy")
                .count(),
            1
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        // A deployment without the page: 404.
        p.assets.borrow_mut().clear();
        assert!(matches!(
            block_on(studio(&p, &cfg, &get("http://e.test/studio"))),
            Err(EdgeError::NotFound("page"))
        ));
    }

    #[test]
    fn query_parameters_are_read_as_sent() {
        assert_eq!(query_param("http://h/watch?v=a", "v"), Some("a"));
        assert_eq!(query_param("http://h/watch?t=1&v=a&v=b#x", "v"), Some("a"));
        assert_eq!(query_param("http://h/watch?vv=a", "v"), None);
        assert_eq!(query_param("http://h/watch?v", "v"), Some(""));
        assert_eq!(query_param("http://h/watch", "v"), None);
    }

    #[test]
    fn long_descriptions_are_cut_on_a_word() {
        let long = "word ".repeat(100);
        let s = shorten(&long, 20);
        assert!(s.chars().count() <= 20 && s.ends_with("word…"), "{s}");
        assert_eq!(shorten("  a \n b  ", 20), "a b");
        let one = "x".repeat(300);
        assert_eq!(shorten(&one, 10).chars().count(), 10);
    }

    #[test]
    fn the_real_headers_file_gives_pages_a_strict_csp() {
        let rules = HeaderRules::parse(HEADERS_FILE);
        for path in ["/watch", "/studio"] {
            let h = rules.for_path(path);
            let csp = &h
                .iter()
                .find(|(k, _)| k == "content-security-policy")
                .unwrap()
                .1;
            assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
            assert!(h
                .iter()
                .any(|(k, v)| k == "x-content-type-options" && v == "nosniff"));
        }
    }
}
