//! Requests from the edge to the origin, signed so the origin can tell them from anyone else's.

use shared_wasm::edge_auth;

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::platform::{Platform, Request, Response};

/// Forwards a client's JSON write (method, body) to `path` at the origin and relays the answer
/// as it is: the origin's 4xx bodies already speak the API's error shape.
pub async fn forward_json<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<Response, EdgeError> {
    let auth = edge_auth::sign(cfg.origin_secret.expose(), method, path, p.now());
    let req = Request {
        method: method.into(),
        url: format!("{}{path}", cfg.origin_url),
        headers: vec![
            (edge_auth::HEADER.into(), auth),
            ("content-type".into(), "application/json".into()),
        ],
        body,
    };
    let resp = p.fetch(req).await?;
    if resp.status >= 500 {
        return Err(EdgeError::Upstream(format!(
            "origin answered {} for {path}",
            resp.status
        )));
    }
    let content_type = resp
        .header("content-type")
        .unwrap_or("application/json")
        .to_owned();
    Ok(Response::new(resp.status, &content_type, resp.body)
        .with_header("cache-control", "no-store"))
}

/// GETs `path` (absolute path plus query) from the origin with edge credentials.
pub async fn get<P: Platform>(p: &P, cfg: &EdgeConfig, path: &str) -> Result<Response, EdgeError> {
    let auth = edge_auth::sign(cfg.origin_secret.expose(), "GET", path, p.now());
    let req = Request {
        method: "GET".into(),
        url: format!("{}{path}", cfg.origin_url),
        headers: vec![(edge_auth::HEADER.into(), auth)],
        body: Vec::new(),
    };
    let resp = p.fetch(req).await?;
    if resp.status >= 500 {
        return Err(EdgeError::Upstream(format!(
            "origin answered {} for {path}",
            resp.status
        )));
    }
    Ok(resp)
}
