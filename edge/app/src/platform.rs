//! The one seam between the edge application and its runtime (Workers or Spin).
//!
//! Adapters implement [`Platform`] and translate their native request/response types to the
//! small ones here; they hold no business logic. Futures are not `Send`: the Workers driver's
//! are not, and neither runtime runs a request on more than one thread.

use std::future::Future;
use std::pin::Pin;

use shared_wasm::geo::Continent;
use shared_wasm::jwk::VerifyingKey;
use shared_wasm::ratelimit::{Decision, Quota};
use shared_wasm::{CountryCode, UnixTime};
use thiserror::Error;

/// An HTTP request as the edge app sees it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Upper-case method.
    pub method: String,
    /// The absolute URL as received (`scheme://host/path?query`).
    pub url: String,
    /// Header names are lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address as the runtime reports it (Workers: `CF-Connecting-IP`; Spin: the
    /// connection's peer), never a header a client could set on its own.
    pub client_ip: Option<String>,
    /// The client's country code (ISO, or T1, XX …) as the runtime reports it (Workers:
    /// `request.cf.country`; Spin: the trusted header named by `COUNTRY_HEADER`).
    pub country: Option<CountryCode>,
    /// The client's continent, from the same source as the country (Workers:
    /// `request.cf.continent`; Spin: the trusted header named by `CONTINENT_HEADER`).
    pub continent: Option<Continent>,
    /// For an outbound request: the app only passes the answer's body on (media), never reads
    /// it. A runtime that can (Workers) then hands it over as a [`Response::native_body`]
    /// without reading it into Wasm memory, and bounds the exchange's time up to the answer's
    /// headers only: a large body takes as long as the viewer takes to read it.
    pub pass_through: bool,
}

impl Request {
    /// First value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `scheme://host` of the URL.
    pub fn origin(&self) -> &str {
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        match self.url[after_scheme..].find('/') {
            Some(i) => &self.url[..after_scheme + i],
            None => &self.url,
        }
    }

    /// The path, without the query, still percent-encoded as received.
    pub fn path(&self) -> &str {
        let rest = &self.url[self.origin().len()..];
        // A byte search: a media URL carries a long token, and the path is asked for often.
        let end = rest.bytes().position(|b| b == b'?' || b == b'#');
        let path = end.map_or(rest, |end| &rest[..end]);
        if path.is_empty() {
            "/"
        } else {
            path
        }
    }
}

/// An HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names are lower-case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// A body the runtime holds and the app only passes on (a cache hit on Workers), so large
    /// media never crosses into Wasm memory; `body` is then empty. The number is the adapter's
    /// handle, valid for the current request only.
    pub native_body: Option<usize>,
}

impl Response {
    /// A response with a body and a content type.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
            native_body: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// First value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A failure of the runtime underneath (KV, cache, network, randomness), not of the request:
/// which facility failed, where the failure came from and whether trying again may help
/// (pingora's `ErrorSource` and `RetryType`), so callers decide by fields, not by text. The
/// message is for the log only.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{facility}: {message}")]
pub struct PlatformError {
    /// What failed.
    pub facility: Facility,
    /// Where the failure came from.
    pub from: ErrorSource,
    /// Whether the same operation may succeed if tried again (or, for an origin call, at
    /// another region).
    pub retry: Retry,
    /// What the runtime said.
    pub message: String,
}

/// The runtime facility that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Facility {
    /// The key-value store.
    Kv,
    /// The cache.
    Cache,
    /// The rate limiter's storage.
    RateLimit,
    /// An outbound request.
    Fetch,
    /// The random source.
    Random,
    /// The runtime's signature verifier (WebCrypto on Workers).
    Crypto,
    /// The web app's built files (the `ASSETS` binding on Workers, the files mount on Spin).
    Assets,
}

impl std::fmt::Display for Facility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kv => "kv",
            Self::Cache => "cache",
            Self::RateLimit => "rate limit",
            Self::Fetch => "fetch",
            Self::Random => "random",
            Self::Crypto => "crypto",
            Self::Assets => "assets",
        })
    }
}

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorSource {
    /// The origin or the network on the way to it: no connection, a reset, a timeout. Says
    /// something about that region.
    Upstream,
    /// One of the runtime's own services (KV, the cache, the rate limiter, the random source).
    Runtime,
    /// This code: something it built (a request, a header) that the runtime refused. A bug;
    /// says nothing about any region.
    Internal,
}

/// Whether trying again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A transient failure: a later attempt, or another region, may succeed.
    MayHelp,
    /// The same attempt would fail the same way.
    Pointless,
}

impl PlatformError {
    fn new(facility: Facility, from: ErrorSource, retry: Retry, e: impl std::fmt::Display) -> Self {
        Self {
            facility,
            from,
            retry,
            message: e.to_string(),
        }
    }

    /// The key-value store failed.
    pub fn kv(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::Kv, ErrorSource::Runtime, Retry::MayHelp, e)
    }

    /// The cache failed.
    pub fn cache(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::Cache, ErrorSource::Runtime, Retry::MayHelp, e)
    }

    /// The rate limiter's storage failed.
    pub fn rate_limit(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::RateLimit, ErrorSource::Runtime, Retry::MayHelp, e)
    }

    /// An outbound request got no answer: no connection, a reset, a timeout, a body cut short.
    pub fn unreachable(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::Fetch, ErrorSource::Upstream, Retry::MayHelp, e)
    }

    /// An outbound request could not be made at all: the runtime refused what this code built.
    pub fn bad_request(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::Fetch, ErrorSource::Internal, Retry::Pointless, e)
    }

    /// The signature verifier failed (a key it would not import, a call it refused): not an
    /// answer about the signature.
    pub fn crypto(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::Crypto, ErrorSource::Runtime, Retry::Pointless, e)
    }

    /// The web app's built files could not be read.
    pub fn assets(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::Assets, ErrorSource::Runtime, Retry::Pointless, e)
    }

    /// The random source failed.
    pub fn random(e: impl std::fmt::Display) -> Self {
        Self::new(Facility::Random, ErrorSource::Runtime, Retry::Pointless, e)
    }
}

/// Work the app hands back to the runtime to finish after the response (see
/// [`Platform::defer`]).
pub type Deferred = Pin<Box<dyn Future<Output = ()>>>;

/// The storing of a copy of a response in the cache (see [`Platform::cache_put_copy`]).
pub type Storing = Pin<Box<dyn Future<Output = Result<(), PlatformError>>>>;

/// What a runtime gives the edge app.
///
/// Consistency: on Workers, KV is eventually consistent (a write may take ~60 s to be seen in
/// other locations, and a key takes about one write per second), so it holds only records that
/// tolerate that: video records, cached JWKS. On Spin the default store is a local SQLite file,
/// strongly consistent for one instance. The cache is best effort on both: a miss is always
/// allowed.
#[allow(async_fn_in_trait)]
pub trait Platform {
    /// Reads a KV value.
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, PlatformError>;
    /// Writes a KV value that reads as absent after `ttl_secs` (Workers: KV's own expiry, at
    /// least 60 s; Spin: an envelope with the expiry, since Spin stores have none).
    async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        ttl_secs: Option<u64>,
    ) -> Result<(), PlatformError>;
    /// Reads a cached response by key.
    async fn cache_get(&self, key: &str) -> Result<Option<Response>, PlatformError>;
    /// Reads a cached response by key for a request with `range` (one range, as
    /// `shared_wasm::range::Spec` writes it). A runtime whose cache answers ranges itself
    /// (Workers) returns its 206 or 416 without reading the entry into Wasm memory; the others
    /// return the whole entry (200), which the app cuts.
    async fn cache_get_range(
        &self,
        key: &str,
        range: &str,
    ) -> Result<Option<Response>, PlatformError> {
        let _ = range;
        self.cache_get(key).await
    }
    /// The bytes of a response's body, reading a body the runtime holds (`native_body`) when
    /// the app needs its content after all (composing feeds).
    async fn body_bytes(&self, resp: &mut Response) -> Result<Vec<u8>, PlatformError> {
        Ok(std::mem::take(&mut resp.body))
    }
    /// Caches a response for `ttl_secs`.
    async fn cache_put(
        &self,
        key: &str,
        response: &Response,
        ttl_secs: u64,
    ) -> Result<(), PlatformError>;
    /// Takes a copy of `response` now (a body the runtime holds is teed, so the original still
    /// streams to the client) and returns the work that stores it under `key` for `ttl_secs`,
    /// for the app to hand to [`Platform::defer`]: a large body is stored while it streams,
    /// not before the response starts.
    fn cache_put_copy(
        &self,
        key: &str,
        response: &mut Response,
        ttl_secs: u64,
    ) -> Result<Storing, PlatformError>;
    /// Applies one request to the GCRA state of `key` under `quota`
    /// (`shared_wasm::ratelimit::check`) and stores the result.
    ///
    /// Consistency differs by runtime: on Workers each key is a Durable Object, so concurrent
    /// requests are serialised and exactly `limit` of a burst pass. On Spin the state sits in the
    /// key-value store with a plain read-modify-write: exact for sequential requests, but
    /// concurrent requests on the same key may each read the same state and overshoot.
    async fn rate_limit(&self, key: &str, quota: &Quota) -> Result<Decision, PlatformError>;
    /// Sends a request to an origin (absolute URL in `request.url`), giving up after
    /// `timeout_ms` where the runtime lets the guest bound it (Workers); on Spin the host's
    /// outbound timeouts apply.
    async fn fetch(&self, request: Request, timeout_ms: u32) -> Result<Response, PlatformError>;
    /// Runs `task` after the response has gone out where the runtime allows it (Workers:
    /// `ctx.waitUntil`); a runtime that cannot (Spin 5 components end with their response)
    /// runs it before answering.
    fn defer(&self, task: Deferred);
    /// Whether this instance's memory outlives the request and serves later ones, so that
    /// work may be gathered across requests (Workers: an isolate serves many; Spin: an
    /// instance per request).
    fn serves_many(&self) -> bool {
        false
    }
    /// The current time.
    fn now(&self) -> UnixTime;
    /// Waits `ms` milliseconds (Workers: a timer, which also tells workerd the request is still
    /// doing work; Spin: WASI's monotonic clock).
    async fn sleep(&self, ms: u32);
    /// Does `signature` (JWS encoding) verify `message` under the EdDSA or ES256 `key` that the
    /// token's `kid` names? Only the signature: the policy (algorithm allow-list, `kid`, sizes)
    /// has been applied before, and the claims are read after (`shared_wasm::jwt`). Workers
    /// ask WebCrypto (`crypto.subtle.verify`, the key imported once per isolate and kept by
    /// `kid` and bytes); Spin runs Rust's verifier (`shared_wasm::jwt::verify_raw`). HS256 never
    /// comes here: its secret stays in Rust. `Ok(false)` is a refusal; an error means the
    /// verifier could not answer.
    async fn verify_signature(
        &self,
        kid: &str,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PlatformError>;
    /// The bytes of `file`, one of the web app's built files (`web/dist`, named as there:
    /// `watch.html`), for the pages the edge serves itself (`routes::pages`); `Ok(None)` when
    /// the deployment has no such file. Workers ask the `ASSETS` binding (which serves
    /// `x.html` at `/x`); Spin reads the edge component's files mount (`spin.toml`). Only names
    /// the app itself chooses come here, never a request's path.
    async fn asset(&self, file: &str) -> Result<Option<Vec<u8>>, PlatformError>;
    /// Fills `buf` from the runtime's cryptographic random source (Workers:
    /// `crypto.getRandomValues`; Spin: WASI's `random`).
    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), PlatformError>;
    /// Writes a line to the runtime's log (server faults only; never secrets or tokens).
    fn log_error(&self, message: &str);
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn the_path_stops_at_the_query_or_the_fragment() {
        let path = |url: &str| {
            let req = Request {
                url: url.into(),
                ..Request::default()
            };
            req.path().to_owned()
        };
        assert_eq!(
            path("https://e.example/hls/a/t/x.ts?q=1#f"),
            "/hls/a/t/x.ts"
        );
        assert_eq!(path("https://e.example/a#f?q"), "/a");
        assert_eq!(path("https://e.example/a%3Fb"), "/a%3Fb");
        assert_eq!(path("https://e.example"), "/");
        assert_eq!(path("https://e.example?q=1"), "/");
    }
}
