//! Requests from the edge to the origin, signed so the origin can tell them from anyone else's.

use shared_wasm::edge_auth;

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::platform::{Platform, Request, Response};

async fn send<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    method: &str,
    path: &str,
    mut headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<Response, EdgeError> {
    let auth = edge_auth::sign(cfg.origin_secret.expose(), method, path, p.now());
    headers.push((edge_auth::HEADER.into(), auth));
    let req = Request {
        method: method.into(),
        url: format!("{}{path}", cfg.origin_url),
        headers,
        body,
        client_ip: None,
        country: None,
    };
    let resp = p.fetch(req).await?;
    if resp.status >= 500 {
        return Err(EdgeError::Upstream(format!(
            "origin answered {} for {method} {path}",
            resp.status
        )));
    }
    Ok(resp)
}

/// Forwards a client's JSON request (method, body, and its bearer token when the route takes
/// one) to `path` at the origin and relays the answer as it is: the origin's 4xx bodies already
/// speak the API's error shape.
pub async fn forward_json<P: Platform>(
    p: &P,
    cfg: &EdgeConfig,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> Result<Response, EdgeError> {
    let mut headers = vec![("content-type".into(), "application/json".into())];
    if let Some(a) = authorization {
        headers.push(("authorization".into(), a.to_owned()));
    }
    let resp = send(p, cfg, method, path, headers, body).await?;
    let content_type = resp
        .header("content-type")
        .unwrap_or("application/json")
        .to_owned();
    Ok(Response::new(resp.status, &content_type, resp.body)
        .with_header("cache-control", "no-store"))
}

/// GETs `path` (absolute path plus query) from the origin with edge credentials.
pub async fn get<P: Platform>(p: &P, cfg: &EdgeConfig, path: &str) -> Result<Response, EdgeError> {
    send(p, cfg, "GET", path, Vec::new(), Vec::new()).await
}
