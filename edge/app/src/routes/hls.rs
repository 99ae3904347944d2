//! `GET /hls/{id}/{token}/{file}`: verify the playback token, then serve from cache or origin.

use futures_util::future::join;
use shared_wasm::media::{parse_hls_path, HlsRequest, MediaFile, MediaPathError};
use shared_wasm::playback::{self, Use, Viewer};
use shared_wasm::range::Spec;
use shared_wasm::record::Visibility;
use shared_wasm::VideoId;

use crate::config::{EdgeConfig, SiteSettings};
use crate::error::{EdgeError, PlaybackRefusal};
use crate::inflight::{self, Joined};
use crate::platform::{Platform, Request, Response};
use crate::routes::playback::{load_record, playable};
use crate::routes::ranged;
use crate::{limits, origin};

/// Segments never change once written; playlists of a finished video do not either, but a
/// re-encode rewrites them, so they are kept briefly.
const SEGMENT_CACHE_SECS: u64 = 86_400;
const PLAYLIST_CACHE_SECS: u64 = 60;

/// Files up to this size are kept in the edge cache; larger ones (a long MP4) stream from the
/// origin each time, their ranges fetched as asked. On Workers the cached copy is teed from the
/// stream to the viewer, and a tee holds what one branch has read ahead of the other, so this
/// also bounds what one request can hold in memory.
pub const MAX_CACHED_BYTES: u64 = 64 << 20;

/// How often a miss that follows another's fetch of the same file looks whether it has landed.
const FOLLOW_POLL_MS: u32 = 10;

/// How long anyone (a browser, a shared cache, a link preview) may keep a public poster.
const POSTER_MAX_AGE_SECS: u64 = 300;

/// Media and posters are fetched by players and `<img>` on pages of any origin, and so are their
/// refusals: a player must be able to read why (an expired token: ask for a new URL), where a
/// refusal without this header is only a failed fetch to it.
pub const OPEN_TO_ANY_PAGE: (&str, &str) = ("access-control-allow-origin", "*");

/// Whether `path` is media or a poster (answered with [`OPEN_TO_ANY_PAGE`], refusals too).
pub fn is_media(path: &str) -> bool {
    path.starts_with("/hls/") || path.starts_with("/posters/")
}

/// The cache key leaves the token out, so every viewer's request hits the same entry, and the
/// request's host out too (`SiteSettings::cache_origin`).
fn cache_key(site: &SiteSettings, canonical_path: &str) -> String {
    format!("{}/__edge-cache{canonical_path}", site.cache_origin)
}

fn bad_path(e: MediaPathError) -> EdgeError {
    EdgeError::BadRequest {
        code: "bad_media_path",
        message: e.to_string(),
    }
}

/// Serves one media file.
pub async fn handle<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let r = parse_hls_path(req.path()).map_err(bad_path)?;
    // Every setting this route needs on a cache hit, before it does any work.
    let (tokens, site) = (cfg.playback()?, cfg.site()?);
    let now = p.now();
    let path = r.canonical_path();
    let at = Use {
        path: &path,
        now,
        leeway_secs: tokens.leeway_secs,
        viewer: Viewer {
            ip: req.client_ip.as_deref(),
            country: req.country,
        },
    };
    let grant = playback::verify(&tokens.keys, r.token, &at)
        .map_err(|e| EdgeError::Forbidden(PlaybackRefusal::Token(e)))?;
    // A genuine token is not enough: the video may have been taken down, geo-restricted or made
    // private since it was issued. One KV read per request (Workers caches KV reads at the
    // location), made at the same time as the cache lookup: a genuine token almost always
    // ends in a playable video, so the viewer waits for one round of reads, not two. A refusal
    // drops what the cache found unread.
    let (record, look) = join(load_record(p, cfg, req, &r.video), lookup(p, site, req, &r)).await;
    playable(record?, req)?;

    // The viewer may keep what it fetched for as long as its token lives, no longer.
    let max_age = grant.claims.expires.0.saturating_sub(now.0);
    serve(p, cfg, req, &r, look, format!("private, max-age={max_age}")).await
}

/// A cache lookup for a media request: its entry's key, the range asked, and what was found.
struct Lookup {
    key: String,
    range: Option<Spec>,
    hit: Option<Response>,
}

async fn lookup<P: Platform>(
    p: &P,
    site: &SiteSettings,
    req: &Request,
    r: &HlsRequest<'_>,
) -> Lookup {
    let key = cache_key(site, &r.canonical_path());
    let range = ranged::asked(req);
    let hit = cached(p, &key, range).await;
    Lookup { key, range, hit }
}

/// The file from the edge cache (`look`), or from the origin (and then cached), with
/// `cache_control`, open to pages of any origin. A `Range` is answered with its part (206) or
/// 416 (`routes::ranged`).
async fn serve<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    r: &HlsRequest<'_>,
    look: Lookup,
    cache_control: String,
) -> Result<Response, EdgeError> {
    let Lookup { key, range, hit } = look;
    let (resp, cache) = match hit {
        Some(hit) => (hit, "HIT"),
        // A part is fetched as asked and not kept: the whole file is kept when it is asked for.
        None if range.is_some() => (from_origin(p, cfg, req, r, range).await?, "MISS"),
        None => match inflight::join(&key) {
            Joined::Leader(lead) => (fetch_and_keep(p, cfg, req, r, &key, lead).await?, "MISS"),
            Joined::Follower(landing) => {
                // Bounded like an origin fetch: a leader that takes longer is not waited for.
                let (timeout_ms, mut waited) = (cfg.origin()?.timeout_ms, 0);
                while !landing.landed() && waited < timeout_ms {
                    p.sleep(FOLLOW_POLL_MS).await;
                    waited += FOLLOW_POLL_MS;
                }
                match cached(p, &key, None).await {
                    Some(hit) => (hit, "HIT"),
                    // Not kept (too large, or the store failed): fetched like a part.
                    None => (from_origin(p, cfg, req, r, None).await?, "MISS"),
                }
            }
        },
    };
    let mut resp = match range {
        Some(spec) => ranged::cut(p, resp, spec).await?,
        None => resp,
    };
    resp.headers.retain(|(k, _)| k != "cache-control");
    resp.headers.extend([
        ("cache-control".into(), cache_control),
        ("accept-ranges".into(), "bytes".into()),
        (OPEN_TO_ANY_PAGE.0.into(), OPEN_TO_ANY_PAGE.1.into()),
        ("x-edge-cache".into(), cache.into()),
    ]);
    Ok(resp)
}

/// The cached entry for `key`, or its part `range`; a failed read is logged and counts as a
/// miss.
async fn cached<P: Platform>(p: &P, key: &str, range: Option<Spec>) -> Option<Response> {
    let got = match range {
        Some(spec) => p.cache_get_range(key, &spec.to_string()).await,
        None => p.cache_get(key).await,
    };
    got.unwrap_or_else(|e| {
        p.log_error(&format!("cache read failed: {e}"));
        None
    })
}

/// `GET /posters/{id}.jpg`: a public video's poster, for anyone and any shared cache (pages,
/// link previews). A members or private video's poster is media like its segments: it goes
/// through `/hls/{id}/{token}/poster.jpg`, with a playback token.
pub async fn poster<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    file: &str,
) -> Result<Response, EdgeError> {
    let video = file
        .strip_suffix(".jpg")
        .and_then(|id| VideoId::parse(id).ok())
        .ok_or(EdgeError::NotFound("poster"))?;
    let (site, quota) = (cfg.site()?, &cfg.rate_limits()?.playback);
    let allowed = limits::enforce(p, quota, req, None).await?;
    let record = playable(load_record(p, cfg, req, &video).await?, req)?;
    if record.visibility != Visibility::Public {
        return Err(EdgeError::Forbidden(PlaybackRefusal::TokenRequired));
    }
    let r = HlsRequest {
        video,
        token: "",
        file: MediaFile::parse("poster.jpg").map_err(bad_path)?,
    };
    // The same cache entry as the tokened path's.
    let cache_control = format!("public, max-age={POSTER_MAX_AGE_SECS}");
    let look = lookup(p, site, req, &r).await;
    Ok(allowed.annotate(serve(p, cfg, req, &r, look, cache_control).await?))
}

/// The whole file from the origin, a copy of it stored in the cache while it streams to the
/// viewer (when its size allows), and the flight `lead` held until the copy is stored.
async fn fetch_and_keep<P: Platform + Clone + 'static>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    r: &HlsRequest<'_>,
    key: &str,
    lead: inflight::Lead,
) -> Result<Response, EdgeError> {
    let (mut out, route) = fetch(p, cfg, req, r, None).await?;
    let size = match out.native_body {
        Some(_) => out.header("content-length").and_then(|n| n.parse().ok()),
        None => Some(out.body.len() as u64),
    };
    if out.status == 200 && size.is_some_and(|n| n <= MAX_CACHED_BYTES) {
        let ttl = if r.file.is_playlist() {
            PLAYLIST_CACHE_SECS
        } else {
            SEGMENT_CACHE_SECS
        };
        match p.cache_put_copy(key, &mut out, ttl) {
            Ok(storing) => {
                let log = p.clone();
                p.defer(Box::pin(async move {
                    if let Err(e) = storing.await {
                        log.log_error(&format!("cache write failed: {e}"));
                    }
                    drop(lead);
                }));
            }
            Err(e) => p.log_error(&format!("cache write failed: {e}")),
        }
    }
    out.headers.extend(route);
    Ok(out)
}

/// The file, or its part `range`, from the origin, with the routing headers.
async fn from_origin<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    r: &HlsRequest<'_>,
    range: Option<Spec>,
) -> Result<Response, EdgeError> {
    let (mut out, route) = fetch(p, cfg, req, r, range).await?;
    out.headers.extend(route);
    Ok(out)
}

/// The origin's answer for the file (or its part `range`), its body passed through, and apart
/// the headers that say which region answered (a cached copy must not carry them).
async fn fetch<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    r: &HlsRequest<'_>,
    range: Option<Spec>,
) -> Result<(Response, Vec<(String, String)>), EdgeError> {
    let path = format!("/internal/media/{}/{}", r.video, r.file.as_str());
    let asked = range.map(|s| ("range".to_owned(), s.to_string()));
    let resp = origin::get_with(p, cfg, req, &path, asked.into_iter().collect(), true).await?;
    match resp.status {
        200 | 206 | 416 => {}
        404 => return Err(EdgeError::NotFound("media file")),
        s => {
            return Err(EdgeError::Upstream(format!(
                "origin answered {s} for {path}"
            )))
        }
    }
    let mut out = Response::new(resp.status, r.file.content_type(), Vec::new());
    // A body held by the runtime keeps the origin's length; one in memory gets its own.
    let kept: &[&str] = match resp.native_body {
        Some(_) => &["content-range", "content-length"],
        None => &["content-range"],
    };
    for name in kept {
        if let Some(v) = resp.header(name) {
            out.headers.push(((*name).into(), v.to_owned()));
        }
    }
    let mut route = Response::default();
    origin::copy_route_headers(&resp, &mut route);
    out.body = resp.body;
    out.native_body = resp.native_body;
    Ok((out, route.headers))
}

#[cfg(test)]
mod tests {
    use shared_wasm::record::{VideoRecord, Visibility};

    use super::poster;
    use crate::error::{EdgeError, LegalReason, PlaybackRefusal};
    use crate::platform::{Request, Response};
    use crate::testing::{block_on, config, MemPlatform};

    /// An edge whose store holds `v1` as `visibility` (taken down or not), in front of an
    /// origin that has its poster.
    fn edge(visibility: Visibility, taken_down: bool) -> MemPlatform {
        let p = MemPlatform::new(|_, req| {
            assert!(
                req.url.ends_with("/internal/media/v1/poster.jpg"),
                "{}",
                req.url
            );
            Response::new(200, "image/jpeg", b"JPEG".to_vec())
        });
        let record = VideoRecord {
            visibility,
            taken_down,
            ..crate::testing::video_record("v1")
        };
        p.kv.borrow_mut()
            .insert(VideoRecord::key(&record.id), record.to_cbor());
        p
    }

    fn get(p: &MemPlatform, file: &str) -> Result<Response, EdgeError> {
        block_on(poster(p, &config(), &Request::default(), file))
    }

    #[test]
    fn a_public_poster_is_anyones_and_others_need_a_token() {
        let r = get(&edge(Visibility::Public, false), "v1.jpg").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"JPEG"[..]));
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert_eq!(r.header("cache-control"), Some("public, max-age=300"));

        let members = get(&edge(Visibility::Members, false), "v1.jpg").unwrap_err();
        assert!(matches!(
            members,
            EdgeError::Forbidden(PlaybackRefusal::TokenRequired)
        ));
        let private = get(&edge(Visibility::Private, false), "v1.jpg").unwrap_err();
        assert!(matches!(private, EdgeError::NotFound(_)), "{private:?}");
        let down = get(&edge(Visibility::Public, true), "v1.jpg").unwrap_err();
        assert!(matches!(
            down,
            EdgeError::Unavailable(LegalReason::TakenDown)
        ));
        for bad in ["v1.png", "v1", "..%2Fx.jpg", ".jpg"] {
            let e = get(&edge(Visibility::Public, false), bad).unwrap_err();
            assert!(matches!(e, EdgeError::NotFound("poster")), "{bad}: {e:?}");
        }
    }

    #[test]
    fn a_part_is_fetched_as_asked_and_a_kept_whole_file_is_cut_here() {
        use std::cell::RefCell;
        use std::rc::Rc;

        let seen = Rc::new(RefCell::new(Vec::new()));
        let noted = seen.clone();
        let p = MemPlatform::new(move |_, req| {
            let range = req.header("range").map(str::to_owned);
            noted.borrow_mut().push(range.clone());
            match range.as_deref() {
                None => Response::new(200, "image/jpeg", b"JPEG".to_vec()),
                Some("bytes=1-2") => Response::new(206, "image/jpeg", b"PE".to_vec())
                    .with_header("content-range", "bytes 1-2/4"),
                Some(_) => Response::new(416, "text/plain", Vec::new())
                    .with_header("content-range", "bytes */4"),
            }
        })
        .with_cache();
        let record = crate::testing::video_record("v1");
        p.kv.borrow_mut()
            .insert(VideoRecord::key(&record.id), record.to_cbor());
        let get = |range: Option<&str>| {
            let req = Request {
                method: "GET".into(),
                headers: range
                    .map(|r| ("range".into(), r.into()))
                    .into_iter()
                    .collect(),
                ..Request::default()
            };
            let out = block_on(poster(&p, &config(), &req, "v1.jpg"));
            p.run_deferred();
            out
        };

        let part = get(Some("bytes=1-2")).unwrap();
        assert_eq!((part.status, part.body.as_slice()), (206, &b"PE"[..]));
        assert_eq!(part.header("content-range"), Some("bytes 1-2/4"));
        assert_eq!(part.header("x-edge-cache"), Some("MISS"));
        assert!(
            p.cache.as_ref().unwrap().borrow().is_empty(),
            "a part is not kept"
        );
        let e = get(Some("bytes=9-")).unwrap_err();
        assert!(
            matches!(e, EdgeError::RangeNotSatisfiable(Some(4))),
            "{e:?}"
        );

        let whole = get(None).unwrap();
        assert_eq!((whole.status, whole.body.as_slice()), (200, &b"JPEG"[..]));
        assert_eq!(whole.header("accept-ranges"), Some("bytes"));
        let tail = get(Some("bytes=-3")).unwrap();
        assert_eq!((tail.status, tail.body.as_slice()), (206, &b"PEG"[..]));
        assert_eq!(tail.header("content-range"), Some("bytes 1-3/4"));
        assert_eq!(tail.header("x-edge-cache"), Some("HIT"));
        let e = get(Some("bytes=4-")).unwrap_err();
        assert!(
            matches!(e, EdgeError::RangeNotSatisfiable(Some(4))),
            "{e:?}"
        );
        assert_eq!(
            *seen.borrow(),
            [Some("bytes=1-2".into()), Some("bytes=9-".into()), None],
            "the origin saw the parts asked for and the whole file once"
        );
    }
}
