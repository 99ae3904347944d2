//! Shared feeds (`/v1/feeds/home`, `/v1/feeds/channel/{user}`), cached at the edge.
//!
//! The cache key carries the feed's version from KV (`feedver:{feed}`, bumped by the origin with
//! every write that changes the feed), so a write shows on the next read without any purge.
//! Within one version the edge applies its own windows (`FeedCaching`), which the Workers Cache
//! API does not do for it:
//! - fresh: served from the cache (`x-edge-cache: HIT`);
//! - then stale-while-revalidate: served at once (`STALE`) while a deferred fetch refreshes it;
//! - then fetched inline; if the origin fails, stale-if-error serves the old entry, or the last
//!   good page of an older version (`STALE-IF-ERROR`).
//!
//! Entries carry `x-edge-stored-at` and a content `ETag`; `If-None-Match` gets a 304.

use sha2::{Digest, Sha256};
use shared_wasm::record::FeedVersion;

use crate::config::{EdgeConfig, FeedCaching};
use crate::error::EdgeError;
use crate::platform::{Platform, Request, Response};
use crate::{limits, origin};

const STORED_AT: &str = "x-edge-stored-at";

/// `?cursor=…&limit=…` in one canonical order; anything else is refused, so cache keys stay
/// bounded and one page has one key. A cursor must be one the origin sealed: a forged one is
/// refused here, before it can become a cache key or an origin query.
pub fn canonical_query(cfg: &EdgeConfig, req: &Request) -> Result<String, EdgeError> {
    canonical(cfg, req, false)
}

/// [`canonical_query`] for search, led by `q=`, which is required: the query's words as the
/// origin will search for them (`shared_wasm::search::terms`), so queries that differ only in
/// case, punctuation or spacing share one cache entry.
pub fn search_query(cfg: &EdgeConfig, req: &Request) -> Result<String, EdgeError> {
    canonical(cfg, req, true)
}

fn canonical(cfg: &EdgeConfig, req: &Request, search: bool) -> Result<String, EdgeError> {
    let bad = |message: &str| EdgeError::BadRequest {
        code: "invalid_query",
        message: message.into(),
    };
    let query = req.url.split_once('?').map_or("", |(_, q)| q);
    let (mut q, mut cursor, mut limit) = (None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("q", _)) if search => {
                let text = form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let words = shared_wasm::search::terms(&text).map_err(|e| bad(&e.to_string()))?;
                q = Some(form_urlencoded::byte_serialize(words.join(" ").as_bytes()).collect());
            }
            Some(("cursor", c)) => match cfg.cursors()?.open(c) {
                Some(_) => cursor = Some(c),
                None => {
                    return Err(EdgeError::BadRequest {
                        code: "invalid_cursor",
                        message: "cursor is not one this API returned".into(),
                    })
                }
            },
            Some(("limit", l)) => match l.parse::<u32>() {
                Ok(n @ 1..=50) => limit = Some(n),
                _ => return Err(bad("limit is 1 to 50")),
            },
            _ if search => return Err(bad("only q, cursor (as returned) and limit are accepted")),
            _ => return Err(bad("only cursor (as returned) and limit are accepted")),
        }
    }
    if search && q.is_none() {
        return Err(bad("q needs at least one word"));
    }
    let mut out = String::new();
    for (k, v) in [
        ("q", q),
        ("cursor", cursor.map(str::to_owned)),
        ("limit", limit.map(|n| n.to_string())),
    ] {
        if let Some(v) = v {
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(&format!("{k}={v}"));
        }
    }
    Ok(out)
}

async fn feed_version<P: Platform>(p: &P, feed: &str) -> u64 {
    match p.kv_get(&FeedVersion::key(feed)).await {
        Ok(Some(bytes)) => FeedVersion::from_cbor(&bytes).map_or(0, |f| f.version),
        Ok(None) => 0,
        Err(e) => {
            p.log_error(&format!("feed version unreadable, using 0: {e}"));
            0
        }
    }
}

fn stored_at(entry: &Response) -> u64 {
    entry
        .header(STORED_AT)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// The origin's page as a cache entry, or its 4xx as is (`Err` for the caller to return).
async fn fetch_entry<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    path: &str,
) -> Result<Result<Response, Response>, EdgeError> {
    let resp = origin::get(p, cfg, req, path).await?;
    if resp.status != 200 {
        let mut out = Response::new(resp.status, "application/json", Vec::new())
            .with_header("cache-control", "no-store");
        out.body = resp.body;
        return Ok(Err(out));
    }
    let digest = Sha256::digest(&resp.body);
    let etag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut entry = Response::new(200, "application/json", Vec::new())
        .with_header("etag", format!("\"{etag}\""))
        .with_header(STORED_AT, p.now().0.to_string());
    origin::copy_route_headers(&resp, &mut entry);
    entry.body = resp.body;
    Ok(Ok(entry))
}

async fn store<P: Platform>(p: &P, f: &FeedCaching, keys: &[&str], entry: &Response) {
    let ttl = f.fresh_secs + f.stale_while_revalidate_secs.max(f.stale_if_error_secs);
    for key in keys {
        if let Err(e) = p.cache_put(key, entry, ttl).await {
            p.log_error(&format!("feed cache write failed: {e}"));
        }
    }
}

fn serve(mut entry: Response, req: &Request, f: &FeedCaching, status: &str) -> Response {
    entry
        .headers
        .retain(|(k, _)| k != "cache-control" && k != "x-edge-cache");
    entry.headers.extend([
        ("x-edge-cache".into(), status.into()),
        // Clients may keep it briefly, then revalidate with If-None-Match.
        (
            "cache-control".into(),
            format!("public, max-age={}", f.fresh_secs.min(10)),
        ),
    ]);
    let etag = entry.header("etag").map(str::to_owned);
    if etag.is_some() && req.header("if-none-match") == etag.as_deref() {
        entry.status = 304;
        entry.body.clear();
        entry.native_body = None;
        entry
            .headers
            .retain(|(k, _)| k != "content-type" && k != "content-length");
    }
    entry
}

/// Serves feed `feed` (origin path `path`).
pub async fn handle<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    feed: String,
    path: String,
) -> Result<Response, EdgeError> {
    let allowed = enforce(p, cfg, req).await?;
    let query = canonical_query(cfg, req)?;
    serve_shared(p, cfg, req, &feed, &path, &query, allowed).await
}

/// Serves search results (`/v1/search`) like a feed. Which public videos exist and what they
/// say changes only with writes that bump the home feed (every public video is in it), so its
/// version keys search pages too.
pub async fn search<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let allowed = enforce(p, cfg, req).await?;
    let query = search_query(cfg, req)?;
    serve_shared(p, cfg, req, "home", "/v1/search", &query, allowed).await
}

/// The API quota, after the sections every feed request reads (a broken one refuses the request
/// before it spends a slot; a cursor's key is read when the query has one).
async fn enforce<'a, P: Platform>(
    p: &P,
    cfg: &'a EdgeConfig,
    req: &Request,
) -> Result<limits::Allowed<'a>, EdgeError> {
    cfg.feeds()?;
    cfg.site()?;
    limits::enforce(p, &cfg.rate_limits()?.api, req, None).await
}

async fn serve_shared<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    feed: &str,
    path: &str,
    query: &str,
    allowed: limits::Allowed<'_>,
) -> Result<Response, EdgeError> {
    Ok(
        allowed.annotate(match lookup(p, cfg, req, feed, path, query).await? {
            Lookup::Entry(entry, status) => serve(entry, req, cfg.feeds()?, status),
            Lookup::ClientError(resp) => resp,
        }),
    )
}

/// What a feed lookup found.
pub enum Lookup {
    /// A page (cache entry, maybe stale) and how it was obtained (`HIT`, `MISS`, …).
    Entry(Response, &'static str),
    /// The origin's 4xx for this query, to relay.
    ClientError(Response),
}

/// The page of `feed` for the canonical `query`, through the cache windows described above.
pub async fn lookup<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    feed: &str,
    path: &str,
    query: &str,
) -> Result<Lookup, EdgeError> {
    let version = feed_version(p, feed).await;
    // The path too: several routes (a feed, search, categories) read one feed's version.
    let site = &cfg.site()?.cache_origin;
    let key = format!("{site}/__edge-feed/{feed}/v{version}{path}{query}");
    let last_good = format!("{site}/__edge-feed/{feed}/last{path}{query}");
    let origin_path = format!("{path}{query}");
    let f = cfg.feeds()?;
    let now = p.now().0;

    let cached = p.cache_get(&key).await.unwrap_or_else(|e| {
        p.log_error(&format!("feed cache read failed: {e}"));
        None
    });
    if let Some(entry) = cached {
        let age = now.saturating_sub(stored_at(&entry));
        if age < f.fresh_secs {
            return Ok(Lookup::Entry(entry, "HIT"));
        }
        if age < f.fresh_secs + f.stale_while_revalidate_secs {
            let (p2, cfg2, req2) = (p.clone(), cfg.clone(), req.clone());
            p.defer(Box::pin(async move {
                match refetch(&p2, &cfg2, &req2, &origin_path, &[&key, &last_good]).await {
                    Ok(Lookup::Entry(..)) => {}
                    Ok(Lookup::ClientError(r)) => {
                        p2.log_error(&format!("feed revalidation got {}", r.status))
                    }
                    Err(e) => p2.log_error(&format!("feed revalidation failed: {e}")),
                }
            }));
            return Ok(Lookup::Entry(entry, "STALE"));
        }
        return match refetch(p, cfg, req, &origin_path, &[&key, &last_good]).await {
            Err(e) if age < f.fresh_secs + f.stale_if_error_secs => {
                p.log_error(&format!("feed {feed}: origin failed, serving stale: {e}"));
                Ok(Lookup::Entry(entry, "STALE-IF-ERROR"))
            }
            other => other,
        };
    }
    match refetch(p, cfg, req, &origin_path, &[&key, &last_good]).await {
        Err(e) => {
            // A newer version we never fetched, and the origin is down: the last good page
            // (of an older version) beats an error.
            let last = p.cache_get(&last_good).await.ok().flatten();
            match last {
                Some(entry)
                    if now.saturating_sub(stored_at(&entry))
                        < f.fresh_secs + f.stale_if_error_secs =>
                {
                    p.log_error(&format!(
                        "feed {feed}: origin failed, serving last good: {e}"
                    ));
                    Ok(Lookup::Entry(entry, "STALE-IF-ERROR"))
                }
                _ => Err(e),
            }
        }
        other => other,
    }
}

/// Fetches the page from the origin and, if it is one, stores it under `keys`.
async fn refetch<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    origin_path: &str,
    keys: &[&str],
) -> Result<Lookup, EdgeError> {
    Ok(match fetch_entry(p, cfg, req, origin_path).await? {
        Ok(fresh) => {
            store(p, cfg.feeds()?, keys, &fresh).await;
            Lookup::Entry(fresh, "MISS")
        }
        Err(client_error) => Lookup::ClientError(client_error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    fn get(url: &str) -> Request {
        Request {
            method: "GET".into(),
            url: format!("http://edge.test{url}"),
            ..Default::default()
        }
    }

    fn code(e: EdgeError) -> &'static str {
        match e {
            EdgeError::BadRequest { code, .. } => code,
            other => panic!("not a 400: {other:?}"),
        }
    }

    #[test]
    fn a_search_is_keyed_by_its_words() {
        let cfg = config();
        for (url, canonical) in [
            (
                "/v1/search?q=Hello%2C+World!&limit=5",
                "?q=hello+world&limit=5",
            ),
            (
                "/v1/search?limit=5&q=HELLO%20%20world",
                "?q=hello+world&limit=5",
            ),
            ("/v1/search?q=%E6%9D%B1%E4%BA%AC", "?q=%E6%9D%B1%E4%BA%AC"),
            ("/v1/search?q=title%3Ax+OR+%22y%22", "?q=title+x+or+y"),
        ] {
            assert_eq!(search_query(&cfg, &get(url)).unwrap(), canonical, "{url}");
        }
        let cursor = cfg.cursors().unwrap().seal("search:20");
        assert_eq!(
            search_query(&cfg, &get(&format!("/v1/search?cursor={cursor}&q=a"))).unwrap(),
            format!("?q=a&cursor={cursor}")
        );
        for url in [
            "/v1/search",
            "/v1/search?q=",
            "/v1/search?q=%2A%2A",
            "/v1/search?q=a&sort=new",
            "/v1/search?q=a&limit=51",
        ] {
            assert_eq!(
                code(search_query(&cfg, &get(url)).unwrap_err()),
                "invalid_query",
                "{url}"
            );
        }
        let long = format!("/v1/search?q={}", "x".repeat(201));
        assert_eq!(
            code(search_query(&cfg, &get(&long)).unwrap_err()),
            "invalid_query"
        );
        let forged = "/v1/search?q=a&cursor=c2VhcmNoOjIw";
        assert_eq!(
            code(search_query(&cfg, &get(forged)).unwrap_err()),
            "invalid_cursor"
        );
        // Feeds take no query words.
        let feed = get("/v1/feeds/home?q=a");
        assert_eq!(
            code(canonical_query(&cfg, &feed).unwrap_err()),
            "invalid_query"
        );
    }
}
