//! `GET /hls/{id}/{token}/{file}`: verify the playback token, then serve from cache or origin.

use shared_wasm::media::{parse_hls_path, HlsRequest, MediaPathError};
use shared_wasm::playback::{self, Use, Viewer};

use crate::config::EdgeConfig;
use crate::error::{EdgeError, PlaybackRefusal};
use crate::origin;
use crate::platform::{Platform, Request, Response};
use crate::routes::playback::{load_record, playable};

/// Segments never change once written; playlists of a finished video do not either, but a
/// re-encode rewrites them, so they are kept briefly.
const SEGMENT_CACHE_SECS: u64 = 86_400;
const PLAYLIST_CACHE_SECS: u64 = 60;

/// The cache key leaves the token out, so every viewer's request hits the same entry, and the
/// request's host out too (`EdgeConfig::cache_origin`).
fn cache_key(cfg: &EdgeConfig, canonical_path: &str) -> String {
    format!("{}/__edge-cache{canonical_path}", cfg.cache_origin)
}

fn bad_path(e: MediaPathError) -> EdgeError {
    EdgeError::BadRequest {
        code: "bad_media_path",
        message: e.to_string(),
    }
}

/// Serves one media file.
pub async fn handle<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
) -> Result<Response, EdgeError> {
    let r = parse_hls_path(req.path()).map_err(bad_path)?;
    let now = p.now();
    let path = r.canonical_path();
    let at = Use {
        path: &path,
        now,
        leeway_secs: cfg.playback_leeway_secs,
        viewer: Viewer {
            ip: req.client_ip.as_deref(),
            country: req.country,
        },
    };
    let grant = playback::verify(&cfg.playback_keys, r.token, &at)
        .map_err(|e| EdgeError::Forbidden(PlaybackRefusal::Token(e)))?;
    // A genuine token is not enough: the video may have been taken down, geo-restricted or made
    // private since it was issued. One KV read per request (Workers caches KV reads at the
    // location).
    playable(load_record(p, cfg, req, &r.video).await?, req)?;

    let key = cache_key(cfg, &path);
    let (mut resp, cache) = match p.cache_get(&key).await {
        Ok(Some(hit)) => (hit, "HIT"),
        other => {
            if let Err(e) = other {
                p.log_error(&format!("cache read failed: {e}"));
            }
            (fetch(p, cfg, req, &r, &key).await?, "MISS")
        }
    };
    // The viewer may keep what it fetched for as long as its token lives, no longer.
    let max_age = grant.claims.expires.0.saturating_sub(now.0);
    resp.headers.retain(|(k, _)| k != "cache-control");
    resp.headers.extend([
        (
            "cache-control".into(),
            format!("private, max-age={max_age}"),
        ),
        ("access-control-allow-origin".into(), "*".into()),
        ("x-edge-cache".into(), cache.into()),
    ]);
    Ok(resp)
}

async fn fetch<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    r: &HlsRequest<'_>,
    key: &str,
) -> Result<Response, EdgeError> {
    let path = format!("/internal/media/{}/{}", r.video, r.file.as_str());
    let resp = origin::get(p, cfg, req, &path).await?;
    match resp.status {
        200 => {}
        404 => return Err(EdgeError::NotFound("media file")),
        s => {
            return Err(EdgeError::Upstream(format!(
                "origin answered {s} for {path}"
            )))
        }
    }
    let mut out = Response::new(200, r.file.content_type(), Vec::new());
    let resp_headers = Response {
        headers: resp.headers,
        ..Response::default()
    };
    out.body = resp.body;
    let ttl = if r.file.is_playlist() {
        PLAYLIST_CACHE_SECS
    } else {
        SEGMENT_CACHE_SECS
    };
    if let Err(e) = p.cache_put(key, &out, ttl).await {
        p.log_error(&format!("cache write failed: {e}"));
    }
    // Which region served the miss; cached copies do not carry it.
    origin::copy_route_headers(&resp_headers, &mut out);
    Ok(out)
}
