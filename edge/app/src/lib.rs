//! The edge application: one router and its handlers, written once against [`Platform`].
//!
//! The Cloudflare Workers adapter (`edge/cloudflare`) and the Spin adapter (`edge/spin`) only
//! convert requests and provide storage, cache, outbound HTTP and the clock.

pub mod auth;
pub mod config;
pub mod error;
mod inflight;
pub mod limits;
mod memo;
pub mod origin;
pub mod platform;
pub mod request_id;
pub mod routes;
#[cfg(test)]
mod testing;

pub use config::{ConfigError, EdgeConfig};
pub use error::EdgeError;
pub use platform::{Deferred, Platform, PlatformError, Request, Response, Storing};
use shared_wasm::RequestId;

/// Handles one request with the adapter's settings (adapters may keep them for the life of an
/// instance). A route whose settings are broken answers 500 (and logs which setting is wrong)
/// rather than guessing; see [`EdgeConfig`] for which routes read which settings.
///
/// Every response carries the request's id (`x-request-id`, see [`request_id`]), which its log
/// lines and its calls to the origin carry too.
pub async fn handle<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: Request,
) -> Response {
    let id = request_id::assign(p, &req);
    let p = &request_id::Traced::new(p.clone(), &id);
    let result = route(p, cfg, &req).await;
    finish(p, &id, &req, result)
}

/// Answers a request that an adapter cannot serve because its own settings are broken, as
/// [`handle`] answers any request that fails: a 500 with the request's id, logged.
pub fn refuse<P: Platform + Clone + 'static>(p: &P, req: &Request, e: &ConfigError) -> Response {
    let id = request_id::assign(p, req);
    let p = &request_id::Traced::new(p.clone(), &id);
    finish(p, &id, req, Err(e.into()))
}

fn finish<P: Platform>(
    p: &P,
    id: &RequestId,
    req: &Request,
    result: Result<Response, EdgeError>,
) -> Response {
    let mut resp = result.unwrap_or_else(|e| {
        if e.is_server_fault() {
            p.log_error(&format!("{} {}: {e}", req.method, loggable(req.path())));
        }
        let mut resp = e.into_response();
        if routes::hls::is_media(req.path()) {
            let (k, v) = routes::hls::OPEN_TO_ANY_PAGE;
            resp.headers.push((k.into(), v.into()));
        }
        resp
    });
    // One id: not the one an origin answer or a cached entry may have brought along.
    resp.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case(RequestId::HEADER));
    resp.headers
        .push((RequestId::HEADER.into(), id.as_str().to_owned()));
    resp
}

async fn route<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    use routes::api::{forward, id_segment, Class};

    let segs: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    let m = req.method.as_str();
    let mut resp = match (segs.as_slice(), m) {
        // A health check reads every setting: a broken one fails it, not only its own routes.
        (["healthz"], "GET" | "HEAD") => {
            cfg.check()?;
            Response::new(200, "application/json", br#"{"status":"ok"}"#.to_vec())
                .with_header("cache-control", "no-store")
        }
        (["v1", "videos", id, "playback"], "GET" | "HEAD") => {
            routes::playback::handle(p, cfg, req, id).await?
        }
        (["hls", ..], "GET" | "HEAD") => routes::hls::handle(p, cfg, req).await?,
        (["posters", file], "GET" | "HEAD") => routes::hls::poster(p, cfg, req, file).await?,
        (["v1", "feeds", "home"], "GET" | "HEAD") => {
            routes::feeds::handle(p, cfg, req, "home".into(), "/v1/feeds/home".into()).await?
        }
        (["v1", "feeds", "subscriptions"], "GET") => {
            routes::subscriptions::handle(p, cfg, req).await?
        }
        // Trending has no version: it moves with likes and time, so only the windows apply.
        (["v1", "feeds", "trending"], "GET" | "HEAD") => {
            let path = "/v1/feeds/trending".into();
            routes::feeds::handle(p, cfg, req, "trending".into(), path).await?
        }
        (["v1", "feeds", "category", category], "GET" | "HEAD") => {
            let category = id_segment(category)?;
            let (feed, path) = (
                format!("category:{category}"),
                format!("/v1/feeds/category/{category}"),
            );
            routes::feeds::handle(p, cfg, req, feed, path).await?
        }
        (["v1", "feeds", "channel", channel], "GET" | "HEAD") => {
            let channel = id_segment(channel)?;
            let (feed, path) = (
                format!("channel:{channel}"),
                format!("/v1/feeds/channel/{channel}"),
            );
            routes::feeds::handle(p, cfg, req, feed, path).await?
        }
        (["v1", "search"], "GET" | "HEAD") => routes::feeds::search(p, cfg, req).await?,
        // The categories in use change with public videos, like search.
        (["v1", "categories"], "GET" | "HEAD") => {
            let path = "/v1/categories".into();
            routes::feeds::handle(p, cfg, req, "home".into(), path).await?
        }
        (["internal", "sync"], "POST") => return routes::sync::handle(p, cfg, req).await,
        (["v1", "beacons"], "POST") => return routes::beacons::handle(p, cfg, req).await,
        (["v1", "ads", "vast"], "GET") => return routes::ads::vast(p, cfg, req).await,
        (["v1", "ads", "track"], "GET") => return routes::ads::track(p, cfg, req).await,
        // The pages that carry something per request (the others are static files).
        (["watch"], "GET" | "HEAD") => routes::pages::watch(p, cfg, req).await?,
        (["studio"], "GET" | "HEAD") => routes::pages::studio(p, cfg, req).await?,
        (
            ["healthz"]
            | ["v1", "videos", _, "playback"]
            | ["hls", ..]
            | ["posters", _]
            | ["v1", "feeds", "home"]
            | ["v1", "feeds", "channel", _]
            | ["v1", "feeds", "subscriptions" | "trending"]
            | ["v1", "feeds", "category", _]
            | ["v1", "search" | "categories"]
            | ["internal", "sync"]
            | ["v1", "beacons"]
            | ["v1", "ads", "vast" | "track"]
            | ["watch" | "studio"],
            _,
        ) => return Err(EdgeError::MethodNotAllowed),
        (["v1", "auth", name], _) if routes::session::wants_cookie(req) => {
            // The web app's sessions: the refresh token in an HttpOnly cookie.
            let Some(action) = routes::session::Action::from_path(name) else {
                return Err(EdgeError::NotFound("route"));
            };
            // A password is guessed at login and signup; a refresh presents a random token and
            // runs on every page load, so it counts as an ordinary call.
            let limits = cfg.rate_limits()?;
            let quota = match action {
                routes::session::Action::Login | routes::session::Action::Signup => &limits.login,
                routes::session::Action::Refresh | routes::session::Action::Logout => &limits.api,
            };
            return routes::session::handle(p, cfg, req, action, quota).await;
        }
        _ => {
            // The JSON API the edge forwards to the origin after its own checks.
            return match routes::api::resolve(cfg, req, &segs) {
                Some(Ok(f)) => {
                    let limits = cfg.rate_limits()?;
                    let quota = match f.class {
                        Class::Login => &limits.login,
                        Class::Api => &limits.api,
                    };
                    forward(p, cfg, req, &f.path, f.access, quota).await
                }
                Some(Err(e)) => Err(e),
                None => Err(EdgeError::NotFound("route")),
            };
        }
    };
    if req.method == "HEAD" {
        // A passed-through body keeps the length header it was stored with; a 304 has none.
        if resp.native_body.take().is_none() && resp.status != 304 {
            resp.headers
                .push(("content-length".into(), resp.body.len().to_string()));
        }
        resp.body.clear();
    }
    Ok(resp)
}

/// A request path fit for a log line: the playback token of `/hls/{id}/{token}/…` is a bearer
/// credential (anyone holding it plays the video until it expires), so it is left out.
fn loggable(path: &str) -> std::borrow::Cow<'_, str> {
    let mut segs = path.splitn(5, '/');
    match (segs.next(), segs.next(), segs.next(), segs.next()) {
        (Some(""), Some("hls"), Some(id), Some(_token)) => {
            let rest = segs.next().map_or(String::new(), |r| format!("/{r}"));
            format!("/hls/{id}/[token]{rest}").into()
        }
        _ => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::platform::{Request, Response};
    use crate::testing::{block_on, config, MemPlatform};

    #[test]
    fn a_broken_setting_fails_its_routes_and_the_health_check_only() {
        use shared_wasm::record::VideoRecord;

        use crate::platform::Platform;
        use crate::testing::config_asked;

        let p = MemPlatform::new(|_, req| {
            assert!(
                req.url.ends_with("/internal/media/v1/360p/seg_001.ts"),
                "{}",
                req.url
            );
            Response::new(200, "video/mp2t", b"TS".to_vec())
        })
        .with_cache();
        let record = crate::testing::video_record("v1");
        p.kv.borrow_mut()
            .insert(VideoRecord::key(&record.id), record.to_cbor());
        let get = |cfg: &crate::EdgeConfig, url: &str, headers: &[(&str, &str)]| {
            let req = Request {
                method: "GET".into(),
                url: url.into(),
                headers: headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..Request::default()
            };
            let resp = block_on(super::handle(&p, cfg, req));
            p.run_deferred();
            resp
        };
        let now = p.now();
        let master = crate::routes::playback::manifest_url(
            &config(),
            &Request::default(),
            &record,
            now,
            now.plus(60),
        )
        .unwrap();
        let segment = master.replace("master.m3u8", "360p/seg_001.ts");
        let first = get(&config(), &segment, &[]);
        assert_eq!(
            (first.status, first.header("x-edge-cache")),
            (200, Some("MISS"))
        );

        // No JWT policy and no origin: a segment in the cache needs neither.
        let (cfg, asked) = config_asked(&[("JWT_ISSUER", ""), ("REGIONS", "not a table")]);
        let hit = get(&cfg, &segment, &[]);
        assert_eq!((hit.status, hit.header("x-edge-cache")), (200, Some("HIT")));
        assert_eq!(hit.body, b"TS");
        assert!(p.logs.borrow().is_empty(), "{:?}", p.logs.borrow());
        assert_eq!(
            *asked.borrow(),
            crate::testing::SEGMENT_SETTINGS,
            "a cached segment reads its playback and cache settings, nothing else"
        );
        for resp in [
            get(&cfg, "https://edge.example/healthz", &[]),
            get(
                &cfg,
                "https://edge.example/v1/feeds/subscriptions",
                &[("authorization", "Bearer a.b.c")],
            ),
        ] {
            assert_eq!(resp.status, 500);
            let body = String::from_utf8(resp.body).unwrap();
            assert!(!body.contains("REGIONS") && !body.contains("JWT"), "{body}");
        }
        let logs = p.logs.borrow();
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert!(logs[0].contains("setting REGIONS is invalid"), "{logs:?}");
        assert!(
            logs[1].contains("setting JWT_ISSUER is missing"),
            "{logs:?}"
        );
    }

    #[test]
    fn a_broken_setting_refuses_before_the_quota_is_spent() {
        use crate::testing::config_with;

        let p = MemPlatform::new(|_, req| panic!("no origin request: {}", req.url))
            .with_cache()
            .with_limiter();
        for (broken, method, path) in [
            (("FEED_FRESH_SECS", "soon"), "GET", "/v1/feeds/home"),
            (("FEED_FRESH_SECS", "soon"), "GET", "/v1/categories"),
            (("CACHE_HOST", "no/host"), "GET", "/v1/search?q=a"),
            (("REGIONS", "not a table"), "POST", "/v1/auth/login"),
            (("REGIONS", "not a table"), "GET", "/v1/videos/v1"),
        ] {
            let req = Request {
                method: method.into(),
                url: format!("https://edge.example{path}"),
                body: br#"{"email":"a@b.example","password":"pw"}"#.to_vec(),
                ..Request::default()
            };
            let resp = block_on(super::handle(&p, &config_with(&[broken]), req));
            assert_eq!(resp.status, 500, "{path}");
            let logs = p.logs.borrow();
            assert!(
                logs.last().is_some_and(|l| l.contains(broken.0)),
                "{logs:?}"
            );
        }
        let spent = p.limiter.as_ref().unwrap().borrow();
        assert!(spent.is_empty(), "no slot spent: {spent:?}");
    }

    #[test]
    fn media_refusals_are_readable_by_pages_of_any_origin() {
        let p = MemPlatform::new(|_, _| Response::new(404, "application/json", b"{}".to_vec()));
        let cfg = config();
        let get = |path: &str| {
            let req = Request {
                method: "GET".into(),
                url: format!("https://edge.example{path}"),
                ..Request::default()
            };
            let resp = block_on(super::handle(&p, &cfg, req));
            let open = resp
                .header("access-control-allow-origin")
                .map(str::to_owned);
            (resp.status, open)
        };
        let open = Some("*".to_owned());
        assert_eq!(
            get("/hls/v1/not-a-token/360p/seg_001.ts"),
            (403, open.clone())
        );
        assert_eq!(get("/hls/v1"), (400, open.clone()));
        assert_eq!(get("/posters/v1.jpg"), (404, open));
        // The API keeps its own CORS policy (the origin's, for the web app's origins).
        assert_eq!(get("/v1/nope"), (404, None));
    }

    #[test]
    fn logged_paths_carry_no_playback_token() {
        use super::loggable;
        assert_eq!(
            loggable("/hls/demo-free/AQAAAGVkZ2UxLWtleQ/360p/seg_001.ts"),
            "/hls/demo-free/[token]/360p/seg_001.ts"
        );
        assert_eq!(loggable("/hls/v/tok"), "/hls/v/[token]");
        assert_eq!(loggable("/hls/v"), "/hls/v");
        assert_eq!(loggable("/v1/videos/v/playback"), "/v1/videos/v/playback");
    }
}
