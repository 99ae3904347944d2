//! CORS on the upload routes. The creator studio's page comes from the edge's origin and sends
//! the file straight to this one (`tus_url`, `upload_url`), which its browser allows only when
//! this origin names the page's origin in its answer.
//!
//! Written here rather than taken from tower-http's `CorsLayer`, which answers every `OPTIONS`
//! itself: it would swallow tus's own `OPTIONS` and answer an unknown origin's preflight with
//! the allowed methods and headers. Here an origin not in `web.origins` gets no CORS header at
//! all, and nothing about the route changes for clients without `Origin` (curl, tus clients).
//! No `Access-Control-Allow-Credentials`: the upload URL's ticket is its credential, so the
//! browser sends no cookie and reads no answer made with one.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What a preflight allows: the tus requests (create, offset, append, terminate) and the
/// single `PUT`.
const METHODS: &str = "POST, HEAD, PATCH, DELETE, PUT";
/// The request headers tus-js-client sends, and a `PUT`'s type.
const HEADERS: &str = "tus-resumable, upload-length, upload-metadata, upload-offset, content-type";
/// The answer headers a tus client reads (a cross-origin page sees only the safelisted ones
/// otherwise): where the upload is, how much of it arrived, what the server speaks.
const EXPOSED: &str = "location, upload-offset, upload-length, upload-expires, tus-resumable, \
                       tus-version, tus-extension, tus-max-size";
/// How long a browser may reuse a preflight's answer: one upload's worth of chunks.
const MAX_AGE_SECS: &str = "600";

/// The origins whose pages may upload (`web.origins`, validated at start).
#[derive(Clone, Debug)]
pub struct WebOrigins(Arc<[HeaderValue]>);

impl WebOrigins {
    /// From the validated list of `web.origins`.
    pub fn new(origins: &[String]) -> anyhow::Result<Self> {
        let values = origins
            .iter()
            .map(|o| HeaderValue::from_str(o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(values.into()))
    }

    /// The request's `Origin`, if it is one of these (compared byte for byte: browsers send it
    /// in the form the settings keep).
    fn allowed<'a>(&self, req: &'a Request) -> Option<&'a HeaderValue> {
        req.headers()
            .get(ORIGIN)
            .filter(|o| self.0.iter().any(|a| a == *o))
    }
}

/// The middleware on the upload routes.
pub async fn uploads(State(web): State<WebOrigins>, req: Request, next: Next) -> Response {
    let origin = web.allowed(&req).cloned();
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let mut r = match (&origin, preflight) {
        (Some(_), true) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            h.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(HEADERS),
            );
            h.insert(
                ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE_SECS),
            );
            r
        }
        _ => next.run(req).await,
    };
    let h = r.headers_mut();
    if let Some(origin) = origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if !preflight {
            h.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
        }
    }
    // The answer depends on `Origin`: a cache between the browser and here must not hand one
    // page's answer to another.
    h.append(VARY, HeaderValue::from_static("origin"));
    r
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::patch;
    use axum::{middleware, Router};
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        let web = WebOrigins::new(&["https://app.example".into()]).unwrap();
        Router::new()
            .route(
                "/up",
                patch(|| async { (StatusCode::NO_CONTENT, [("upload-offset", "7")]) }),
            )
            .layer(middleware::from_fn_with_state(web, uploads))
    }

    async fn send(method: &str, origin: Option<&str>, preflight: bool) -> Response {
        let mut req = Request::builder().method(method).uri("/up");
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        if preflight {
            req = req.header(ACCESS_CONTROL_REQUEST_METHOD, "PATCH").header(
                "access-control-request-headers",
                "tus-resumable, upload-offset",
            );
        }
        app()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn an_allowed_origin_gets_its_preflight_and_reads_the_tus_headers() {
        let r = send("OPTIONS", Some("https://app.example"), true).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert!(header(&r, "access-control-allow-methods")
            .unwrap()
            .contains("PATCH"));
        let allowed = header(&r, "access-control-allow-headers").unwrap();
        assert!(allowed.contains("tus-resumable") && allowed.contains("upload-offset"));
        assert_eq!(header(&r, "access-control-allow-credentials"), None);

        let r = send("PATCH", Some("https://app.example"), false).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            Some("https://app.example")
        );
        let exposed = header(&r, "access-control-expose-headers").unwrap();
        for h in ["location", "upload-offset", "tus-resumable"] {
            assert!(exposed.contains(h), "{h} not exposed");
        }
        assert_eq!(header(&r, "access-control-allow-credentials"), None);
        assert_eq!(header(&r, "vary"), Some("origin"));
    }

    #[tokio::test]
    async fn any_other_origin_gets_no_cors_header_at_all() {
        for origin in [
            Some("https://evil.example"),
            Some("https://app.example.evil.example"),
            Some("http://app.example"),
            Some("null"),
            None,
        ] {
            // Its preflight reaches the route (here: no OPTIONS, so 405), not a CORS answer.
            let r = send("OPTIONS", origin, true).await;
            assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{origin:?}");
            let r2 = send("PATCH", origin, false).await;
            assert_eq!(r2.status(), StatusCode::NO_CONTENT, "{origin:?}");
            for r in [&r, &r2] {
                let cors: Vec<_> = r
                    .headers()
                    .keys()
                    .filter(|k| k.as_str().starts_with("access-control-"))
                    .collect();
                assert!(cors.is_empty(), "{origin:?} got {cors:?}");
            }
            assert_eq!(
                header(&r2, "upload-offset"),
                Some("7"),
                "the route still answers"
            );
        }
    }
}
