//! `GET /hls/{id}/{token}/{file}`: verify the playback token, then serve from cache or origin.

use shared_wasm::media::{parse_hls_path, HlsRequest, MediaFile, MediaPathError};
use shared_wasm::playback::{self, Use, Viewer};
use shared_wasm::record::Visibility;
use shared_wasm::VideoId;

use crate::config::EdgeConfig;
use crate::error::{EdgeError, PlaybackRefusal};
use crate::platform::{Platform, Request, Response};
use crate::routes::playback::{load_record, playable};
use crate::{limits, origin};

/// Segments never change once written; playlists of a finished video do not either, but a
/// re-encode rewrites them, so they are kept briefly.
const SEGMENT_CACHE_SECS: u64 = 86_400;
const PLAYLIST_CACHE_SECS: u64 = 60;

/// How long anyone (a browser, a shared cache, a link preview) may keep a public poster.
const POSTER_MAX_AGE_SECS: u64 = 300;

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

    // The viewer may keep what it fetched for as long as its token lives, no longer.
    let max_age = grant.claims.expires.0.saturating_sub(now.0);
    serve(p, cfg, req, &r, format!("private, max-age={max_age}")).await
}

/// The file from the edge cache, or from the origin (and then cached), with `cache_control`,
/// open to pages of any origin (media and posters are fetched by players and `<img>`).
async fn serve<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    r: &HlsRequest<'_>,
    cache_control: String,
) -> Result<Response, EdgeError> {
    let key = cache_key(cfg, &r.canonical_path());
    let (mut resp, cache) = match p.cache_get(&key).await {
        Ok(Some(hit)) => (hit, "HIT"),
        other => {
            if let Err(e) = other {
                p.log_error(&format!("cache read failed: {e}"));
            }
            (fetch(p, cfg, req, r, &key).await?, "MISS")
        }
    };
    resp.headers.retain(|(k, _)| k != "cache-control");
    resp.headers.extend([
        ("cache-control".into(), cache_control),
        ("access-control-allow-origin".into(), "*".into()),
        ("x-edge-cache".into(), cache.into()),
    ]);
    Ok(resp)
}

/// `GET /posters/{id}.jpg`: a public video's poster, for anyone and any shared cache (pages,
/// link previews). A members or private video's poster is media like its segments: it goes
/// through `/hls/{id}/{token}/poster.jpg`, with a playback token.
pub async fn poster<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    req: &Request,
    file: &str,
) -> Result<Response, EdgeError> {
    let video = file
        .strip_suffix(".jpg")
        .and_then(|id| VideoId::parse(id).ok())
        .ok_or(EdgeError::NotFound("poster"))?;
    let allowed = limits::enforce(p, &cfg.rate_limits.playback, req, None).await?;
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
    Ok(allowed.annotate(serve(p, cfg, req, &r, cache_control).await?))
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
}
