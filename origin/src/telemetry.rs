//! Logs and request telemetry: the subscriber (text or JSON), and one middleware around the
//! whole router that gives each request its id, logs it and counts it.
//!
//! What a request's log line holds: its id, method, route template (`/uploads/{ticket}`, never
//! the path: upload tickets and tus ids are credentials, and query strings carry cursors),
//! status and latency. Never headers, query strings or bodies.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use shared_wasm::RequestId;
use tracing::Instrument;

use crate::keys::random_bytes;
use crate::metrics::{Metrics, UNMATCHED};
use crate::settings::LogFormat;

/// Installs the global subscriber: `RUST_LOG` filters (default `info`, sqlx at `warn`), `format`
/// shapes. JSON lines carry the event's fields at the top level and the request's span
/// (`request_id`, `method`) under `span`.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        // Colour codes only for a person at a terminal, never in log files.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// The id the request runs under, for handlers that want it (an extension of every request).
#[derive(Debug, Clone)]
pub struct CurrentRequestId(pub RequestId);

/// Gives the request its id (a valid `x-request-id` it came with, else a new one), runs it in a
/// span that carries the id, then logs one line and counts it, and puts the id on the answer.
///
/// Latency is to the response's headers: a streamed body (media) is not waited for, an upload's
/// body is (the handler reads it before answering).
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let incoming = req
        .headers()
        .get(RequestId::HEADER)
        .and_then(|v| v.to_str().ok());
    let id = RequestId::keep_or(incoming, random_bytes::<16>);
    let method = req.method().clone();
    req.extensions_mut().insert(CurrentRequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %method);
    let mut resp = next.run(req).instrument(span).await;
    let elapsed = start.elapsed();
    let route = resp
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str);
    let status = resp.status().as_u16();
    metrics.observe_request(method.as_str(), route, status, elapsed);
    tracing::info!(
        request_id = %id,
        method = %method,
        route,
        status,
        latency_ms = elapsed.as_micros() as f64 / 1000.0,
        "request"
    );
    resp.headers_mut().insert(
        RequestId::HEADER,
        HeaderValue::from_str(id.as_str()).expect("request ids are header-safe"),
    );
    resp
}

/// Hands the matched route's template to [`observe`] (on the response: [`observe`] runs
/// before routing, when no route is known yet). A `route_layer`, so it runs for matched routes
/// only; the rest are `unmatched`.
pub async fn note_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(route) = route {
        resp.extensions_mut().insert(route);
    }
    resp
}
