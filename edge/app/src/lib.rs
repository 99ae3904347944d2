//! The edge application: one router and its handlers, written once against [`Platform`].
//!
//! The Cloudflare Workers adapter (`edge/cloudflare`) and the Spin adapter (`edge/spin`) only
//! convert requests and provide storage, cache, outbound HTTP and the clock.

pub mod auth;
pub mod config;
pub mod error;
pub mod limits;
pub mod origin;
pub mod platform;
pub mod routes;

pub use config::{ConfigError, EdgeConfig};
pub use error::EdgeError;
pub use platform::{Platform, PlatformError, Request, Response};

/// Handles one request. `config` is the adapter's attempt at reading settings (adapters may
/// keep it for the life of an instance): a broken deployment answers 500 (and logs which
/// setting is wrong) rather than guessing.
pub async fn handle<P: Platform>(
    p: &P,
    config: Result<&EdgeConfig, &ConfigError>,
    req: Request,
) -> Response {
    let result = match config {
        Ok(cfg) => route(p, cfg, &req).await,
        Err(e) => Err(EdgeError::Internal(format!("configuration: {e}"))),
    };
    result.unwrap_or_else(|e| {
        if e.is_server_fault() {
            p.log_error(&format!("{} {}: {e}", req.method, req.path()));
        }
        e.into_response()
    })
}

/// Largest request body the edge forwards (JSON writes such as login).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

async fn route<P: Platform>(p: &P, cfg: &EdgeConfig, req: &Request) -> Result<Response, EdgeError> {
    let segs: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    let read = req.method == "GET" || req.method == "HEAD";
    let mut resp = match (segs.as_slice(), read) {
        (["v1", "auth", "login"], _) if req.method == "POST" => return login(p, cfg, req).await,
        (["healthz"], true) => {
            Response::new(200, "application/json", br#"{"status":"ok"}"#.to_vec())
                .with_header("cache-control", "no-store")
        }
        (["v1", "videos", id, "playback"], true) => {
            routes::playback::handle(p, cfg, req, id).await?
        }
        (["hls", ..], true) => routes::hls::handle(p, cfg, req).await?,
        (
            ["v1", "auth", "login"] | ["healthz"] | ["v1", "videos", _, "playback"] | ["hls", ..],
            _,
        ) => return Err(EdgeError::MethodNotAllowed),
        _ => return Err(EdgeError::NotFound("route")),
    };
    if req.method == "HEAD" {
        resp.headers
            .push(("content-length".into(), resp.body.len().to_string()));
        resp.body.clear();
    }
    Ok(resp)
}

async fn login<P: Platform>(p: &P, cfg: &EdgeConfig, req: &Request) -> Result<Response, EdgeError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(EdgeError::PayloadTooLarge);
    }
    let allowed = limits::enforce(p, &cfg.rate_limits.login, req, None).await?;
    let resp = origin::forward_json(p, cfg, "POST", "/v1/auth/login", req.body.clone()).await?;
    Ok(allowed.annotate(resp))
}
