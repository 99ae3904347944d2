//! Spin adapter: converts `spin-sdk` types to the edge app's and provides the key-value store,
//! variables and outbound HTTP. No business logic lives here.
//!
//! Spin has no HTTP cache API, so the cache is kept in the same key-value store under a
//! `cache:` prefix, expiring like every value written through `kv_put` (Spin stores have no
//! TTL, so an envelope carries it). On Spin's
//! default store (a local SQLite file) that is strongly consistent for the instance.
#![cfg(target_arch = "wasm32")]

use std::time::{SystemTime, UNIX_EPOCH};

use edge_app::{
    EdgeConfig, Platform, PlatformError, Request as AppRequest, Response as AppResponse,
};
use shared_wasm::geo::Continent;
use shared_wasm::ratelimit::{self, Decision, Quota};
use shared_wasm::record::{CachedResponse, KvEnvelope};
use shared_wasm::{CountryCode, UnixTime};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::key_value::Store;

/// The platform for one request; cheap to clone, so deferred work can own a handle to it.
#[derive(Clone)]
struct Spin(std::rc::Rc<Inner>);

impl std::ops::Deref for Spin {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

struct Inner {
    store: Store,
    /// Work to finish before answering: a Spin 5 component ends with its response.
    deferred: std::cell::RefCell<Vec<edge_app::Deferred>>,
}

/// Milliseconds since the epoch (WASI wall clock).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn kv_err(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Kv(e.to_string())
}

impl Platform for Spin {
    /// Values are stored in a [`KvEnvelope`] carrying their expiry; an expired one reads as absent.
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        let now = self.now();
        Ok(self
            .store
            .get(key)
            .map_err(kv_err)?
            .and_then(|bytes| KvEnvelope::open(&bytes, now)))
    }

    async fn kv_put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), PlatformError> {
        let envelope = KvEnvelope {
            v: 1,
            expires_at: ttl.map(|t| self.now().0.saturating_add(t)),
            value: value.to_vec(),
        };
        self.store.set(key, &envelope.to_cbor()).map_err(kv_err)
    }

    /// Entries go through [`Platform::kv_put`], whose envelope carries the expiry.
    async fn cache_get(&self, key: &str) -> Result<Option<AppResponse>, PlatformError> {
        let Some(bytes) = self.kv_get(&format!("cache:{key}")).await? else {
            return Ok(None);
        };
        Ok(CachedResponse::from_cbor(&bytes).ok().map(|c| AppResponse {
            status: c.status,
            headers: c.headers,
            body: c.body,
            native_body: None,
        }))
    }

    async fn cache_put(&self, key: &str, r: &AppResponse, ttl: u64) -> Result<(), PlatformError> {
        let entry = CachedResponse {
            v: 1,
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.clone(),
        };
        self.kv_put(&format!("cache:{key}"), &entry.to_cbor(), Some(ttl))
            .await
            .map_err(|e| PlatformError::Cache(e.to_string()))
    }

    /// A plain read-modify-write on the store: exact for sequential requests; concurrent ones
    /// on the same key may overshoot (Spin's key-value interface has no compare-and-swap).
    async fn rate_limit(&self, key: &str, quota: &Quota) -> Result<Decision, PlatformError> {
        let err = |e: spin_sdk::key_value::Error| PlatformError::RateLimit(e.to_string());
        let k = format!("rl:{key}");
        let stored = self
            .store
            .get(&k)
            .map_err(err)?
            .and_then(|b| ratelimit::decode_tat(&b));
        let (decision, tat) = ratelimit::check(quota, stored, now_ms());
        if decision.allowed {
            self.store
                .set(&k, &ratelimit::encode_tat(tat))
                .map_err(err)?;
        }
        Ok(decision)
    }

    async fn fetch(
        &self,
        request: AppRequest,
        _timeout_ms: u32,
    ) -> Result<AppResponse, PlatformError> {
        // spin-sdk 5 sends without request options, so the host's outbound timeouts apply.
        let method = match request.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        };
        let mut builder = Request::builder();
        builder.method(method).uri(request.url);
        for (k, v) in request.headers {
            builder.header(k, v);
        }
        let req = builder.body(request.body).build();
        let resp: Response = spin_sdk::http::send(req)
            .await
            .map_err(|e| PlatformError::Fetch(e.to_string()))?;
        Ok(AppResponse {
            status: *resp.status(),
            headers: header_pairs(resp.headers()),
            body: resp.into_body(),
            native_body: None,
        })
    }

    fn defer(&self, task: edge_app::Deferred) {
        self.deferred.borrow_mut().push(task);
    }

    fn now(&self) -> UnixTime {
        UnixTime(now_ms() / 1000)
    }

    fn log_error(&self, message: &str) {
        eprintln!("{message}");
    }
}

fn header_pairs<'a>(
    headers: impl Iterator<Item = (&'a str, &'a spin_sdk::http::HeaderValue)>,
) -> Vec<(String, String)> {
    headers
        .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_owned())))
        .collect()
}

/// Spin variable names are lower case; the app asks for upper-case setting names.
fn setting(name: &str) -> Option<String> {
    spin_sdk::variables::get(&name.to_ascii_lowercase()).ok()
}

/// The component's entry point. Only the export glue generated by `#[http_component]` is
/// allowed `unsafe`; nothing written by hand here uses it.
#[allow(unsafe_code)]
mod entry {
    use super::*;

    #[spin_sdk::http_component]
    async fn handle(req: Request) -> anyhow::Result<Response> {
        let store = Store::open_default()?;
        let platform = Spin(std::rc::Rc::new(Inner {
            store,
            deferred: Default::default(),
        }));
        let headers = header_pairs(req.headers());
        let mut url = req.uri().to_owned();
        if url.starts_with('/') {
            let host = req
                .header("host")
                .and_then(|h| h.as_str())
                .unwrap_or("localhost");
            url = format!("http://{host}{url}");
        }
        // Spin sets `spin-client-addr` to the connection's peer (`ip:port`), replacing any
        // header of that name a client sent.
        let client_ip = req
            .header("spin-client-addr")
            .and_then(|h| h.as_str())
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.ip().to_string());
        // Spin has no geolocation of its own: the CDN in front sets headers, named by the
        // `country_header` and `continent_header` variables. Unset, nothing is known (nothing
        // is bound to it, and regions are chosen in table order).
        let trusted = |setting_name: &str| {
            setting(setting_name)
                .filter(|n| !n.is_empty())
                .and_then(|name| {
                    let name = name.to_ascii_lowercase();
                    headers
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, v)| v.clone())
                })
        };
        let country = trusted("COUNTRY_HEADER").and_then(|v| CountryCode::parse(&v).ok());
        let continent = trusted("CONTINENT_HEADER").and_then(|v| Continent::parse(&v));
        let app_req = AppRequest {
            method: req.method().to_string(),
            url,
            headers,
            body: req.into_body(),
            client_ip,
            country,
            continent,
        };
        // Each request runs in a fresh instance, so there is nothing to keep settings in.
        let config = EdgeConfig::from_lookup(setting);
        let resp = edge_app::handle(&platform, config.as_ref(), app_req).await;
        let deferred = std::mem::take(&mut *platform.deferred.borrow_mut());
        for task in deferred {
            task.await;
        }
        let mut out = Response::builder();
        out.status(resp.status);
        for (k, v) in resp.headers {
            out.header(k, v);
        }
        Ok(out.body(resp.body).build())
    }
}
