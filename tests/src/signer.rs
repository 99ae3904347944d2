//! A stand-in for the edge's origin calls: a loopback proxy that forwards every request to an
//! origin with a fresh edge proof (`x-edge-auth`) for its method and path, as the edge signs
//! the calls it makes. Tests that speak to the origin's API without an edge runtime in front
//! go through it; requests straight to the origin carry no proof and are refused.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use shared_wasm::{edge_auth, UnixTime};

/// Starts the proxy for `origin` (`http://host:port`), signing with `secret`; its base URL.
pub async fn start(origin: &str, secret: &str) -> String {
    let client = reqwest::Client::new();
    let (origin, secret) = (origin.to_owned(), secret.to_owned());
    let app = axum::Router::new()
        .fallback(move |req: Request| forward(client.clone(), origin.clone(), secret.clone(), req));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port for the signer");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn forward(
    client: reqwest::Client,
    origin: String,
    secret: String,
    req: Request,
) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let now = UnixTime(origin::clock::now());
    let proof = edge_auth::sign(secret.as_bytes(), method.as_str(), &path, now);
    let mut headers = req.headers().clone();
    headers.remove(axum::http::header::HOST);
    headers.insert(
        HeaderName::from_static(edge_auth::HEADER),
        proof.parse().expect("a header value"),
    );
    let body = reqwest::Body::wrap_stream(req.into_body().into_data_stream());
    let sent = client
        .request(method, format!("{origin}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) => {
            let mut out = Response::builder().status(r.status());
            // Hop-by-hop fields stay with their hop.
            for (k, v) in r.headers() {
                if k != "transfer-encoding" && k != "connection" {
                    out = out.header(k, v);
                }
            }
            out.body(Body::from_stream(r.bytes_stream()))
                .expect("a response")
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("signer: {e}")).into_response(),
    }
}
