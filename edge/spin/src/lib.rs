//! Spin adapter: converts `spin-sdk` types to the edge app's and provides the key-value store,
//! variables and outbound HTTP. No business logic lives here.
//!
//! Spin has no HTTP cache API, so the cache is kept in the same key-value store under a
//! `cache:` prefix, expiring like every value written through `kv_put` (Spin stores have no
//! TTL, so an envelope carries it). On Spin's
//! default store (a local SQLite file) that is strongly consistent for the instance. Dead
//! entries are deleted when a read meets them and by a bounded sweep after some responses
//! (`sweep`).
//!
//! With `REDIS_URL` (the Redis that the runtime config gives the key-value store, shared by
//! several instances), the store's Redis does what Spin's interface cannot: rate limits run as
//! one atomic script ([`ratelimit::REDIS_GCRA_SCRIPT`]), and entries written with a TTL get
//! Redis's own expiry, so nothing needs sweeping.
#![cfg(target_arch = "wasm32")]

mod sweep;

use std::time::{SystemTime, UNIX_EPOCH};

use edge_app::routes::hls::MAX_CACHED_BYTES;
use edge_app::{
    ConfigError, EdgeConfig, Platform, PlatformError, Request as AppRequest,
    Response as AppResponse,
};
use futures_util::{SinkExt, StreamExt};
use shared_wasm::geo::Continent;
use shared_wasm::jwk::VerifyingKey;
use shared_wasm::kv_sweep::{self, RATE_LIMIT_PREFIX};
use shared_wasm::range;
use shared_wasm::ratelimit::{self, Decision, Quota};
use shared_wasm::record::{CachedResponse, Chunks, KvEnvelope};
use shared_wasm::{CountryCode, UnixTime};
use spin_sdk::http::{
    IncomingResponse, IntoResponse, Method, OutgoingResponse, Request, Response, ResponseOutparam,
};
use spin_sdk::key_value::Store;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

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
    redis: Option<Redis>,
    /// Work the app defers, finished before answering (as it always was here; only the store
    /// sweep runs after the response, see `entry::handle`).
    deferred: std::cell::RefCell<Vec<edge_app::Deferred>>,
    /// Origin answers whose bodies stream to the client unread (`AppResponse::native_body`):
    /// media too large to keep in the cache. Per request.
    held: std::cell::RefCell<Vec<Option<IncomingResponse>>>,
}

impl Spin {
    /// The entry kept under `key`, or its part `range` (206, or 416 with the length) when its
    /// body is in chunks. A chunk that is missing (expired early, or its write failed) makes
    /// the whole entry a miss.
    async fn cached(
        &self,
        key: &str,
        range: Option<range::Spec>,
    ) -> Result<Option<AppResponse>, PlatformError> {
        let key = format!("cache:{key}");
        let Some(entry) = self
            .kv_get(&key)
            .await?
            .and_then(|b| CachedResponse::from_cbor(&b).ok())
        else {
            return Ok(None);
        };
        let mut resp = AppResponse {
            status: entry.status,
            headers: entry.headers,
            body: entry.body,
            native_body: None,
        };
        let Some(chunks) = entry.chunks else {
            return Ok(Some(resp));
        };
        let (first, last) = match range.map(|spec| spec.resolve(chunks.len)) {
            None => (0, chunks.len.saturating_sub(1)),
            Some(Some(part)) => part,
            Some(None) => {
                let refused = AppResponse::new(416, "text/plain", Vec::new())
                    .with_header("content-range", range::unsatisfied(chunks.len));
                return Ok(Some(refused));
            }
        };
        let (which, skip) = chunks.covering(first, last);
        let mut body = Vec::new();
        for i in which {
            match self.kv_get(&chunks.key(&key, i)).await? {
                Some(part) => body.extend_from_slice(&part),
                None => return Ok(None),
            }
        }
        // Both lie within what was read, whose length came from a `usize`.
        let part = (last - first + 1) as usize;
        body.drain(..skip as usize);
        body.truncate(part);
        if body.len() != part {
            return Ok(None);
        }
        resp.body = body;
        if range.is_some() {
            resp.status = 206;
            resp.headers.retain(|(k, _)| k != "content-length");
            resp.headers.push((
                "content-range".into(),
                range::content_range(first, last, chunks.len),
            ));
        }
        Ok(Some(resp))
    }
}

impl Inner {
    /// The held answer behind a `native_body` handle, once.
    fn take_held(&self, handle: Option<usize>) -> Option<IncomingResponse> {
        handle.and_then(|i| self.held.borrow_mut().get_mut(i).and_then(Option::take))
    }
}

/// The outbound connection to `REDIS_URL`, opened on first use: most requests need none.
struct Redis {
    url: String,
    conn: std::cell::OnceCell<Connection>,
}

/// Where the Redis script keeps rate-limit state: a decimal TAT, not the store's encoding.
const REDIS_RATE_LIMIT_PREFIX: &str = "gcra:";

impl Redis {
    fn execute(
        &self,
        command: &str,
        args: &[RedisParameter],
    ) -> Result<Vec<RedisResult>, spin_sdk::redis::Error> {
        let conn = match self.conn.get() {
            Some(c) => c,
            None => {
                let opened = Connection::open(&self.url)?;
                self.conn.get_or_init(|| opened)
            }
        };
        conn.execute(command, args)
    }
}

/// Milliseconds since the epoch (WASI wall clock).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn kv_err(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::kv(e)
}

/// Where `spin.toml` mounts the web app's built files (`web/dist`) in the edge component.
const ASSETS_MOUNT: &str = "/web";

impl Platform for Spin {
    /// Reads the files mount. The app names the file (never a request's path); a name that
    /// could leave the mount is refused all the same.
    async fn asset(&self, file: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        let plain = !file.is_empty()
            && !file.starts_with('.')
            && file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !file.contains("..");
        if !plain {
            return Err(PlatformError::assets(format_args!(
                "not a file name: {file:?}"
            )));
        }
        match std::fs::read(format!("{ASSETS_MOUNT}/{file}")) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PlatformError::assets(format_args!("{file}: {e}"))),
        }
    }

    /// Values are stored in a [`KvEnvelope`] carrying their expiry; an expired one reads as
    /// absent, and is deleted here, since nothing else would (see `sweep` for the races).
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        let now_ms = now_ms();
        let Some(bytes) = self.store.get(key).map_err(kv_err)? else {
            return Ok(None);
        };
        let value = KvEnvelope::open(&bytes, UnixTime(now_ms / 1000));
        if value.is_none() && kv_sweep::is_dead(key, &bytes, now_ms) {
            // The read's answer stands either way; a failed delete is left to the sweep.
            if let Err(e) = self.store.delete(key) {
                self.log_error(&format!("expired KV entry not deleted: {e}"));
            }
        }
        Ok(value)
    }

    async fn kv_put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), PlatformError> {
        let envelope = KvEnvelope {
            v: 1,
            expires_at: ttl.map(|t| self.now().0.saturating_add(t)),
            value: value.to_vec(),
        };
        self.store.set(key, &envelope.to_cbor()).map_err(kv_err)?;
        if let (Some(redis), Some(at)) = (&self.redis, envelope.expires_at) {
            // Redis drops the entry when its envelope says it is dead (`kv_sweep::is_dead`). A
            // write by another instance in between may get this expiry instead of its own:
            // either way a dead envelope reads as absent, and a live one only goes early.
            let args = [
                RedisParameter::Binary(key.as_bytes().to_vec()),
                RedisParameter::Int64(i64::try_from(at).unwrap_or(i64::MAX)),
            ];
            match redis.execute("EXPIREAT", &args).map_err(kv_err)?.first() {
                Some(RedisResult::Int64(1)) => {}
                // The key the store just wrote is not there: another Redis or database.
                _ => self.log_error(
                    "REDIS_URL is not the key-value store's Redis: entries do not expire",
                ),
            }
        }
        Ok(())
    }

    /// Entries go through [`Platform::kv_put`], whose envelope carries the expiry.
    async fn cache_get(&self, key: &str) -> Result<Option<AppResponse>, PlatformError> {
        self.cached(key, None).await
    }

    /// A body kept in chunks is cut here, from the chunks the range covers; a smaller one is
    /// returned whole, for the app to cut.
    async fn cache_get_range(
        &self,
        key: &str,
        range: &str,
    ) -> Result<Option<AppResponse>, PlatformError> {
        self.cached(key, range::parse(range)).await
    }

    /// A body larger than [`Chunks::SIZE`] is kept in chunks beside the response, written
    /// first: a response that can be read names only chunks already there.
    async fn cache_put(&self, key: &str, r: &AppResponse, ttl: u64) -> Result<(), PlatformError> {
        let key = format!("cache:{key}");
        let mut entry = CachedResponse {
            v: 1,
            status: r.status,
            headers: r.headers.clone(),
            body: Vec::new(),
            chunks: None,
        };
        if r.body.len() > Chunks::SIZE as usize {
            let mut gen = [0; 8];
            self.random_bytes(&mut gen)?;
            let chunks = Chunks {
                len: r.body.len() as u64,
                size: Chunks::SIZE,
                gen: u64::from_le_bytes(gen),
            };
            // A chunk outlives its response by a minute, so a live response never names an
            // expired chunk.
            for (i, part) in (0..).zip(r.body.chunks(Chunks::SIZE as usize)) {
                self.kv_put(&chunks.key(&key, i), part, Some(ttl + 60))
                    .await
                    .map_err(PlatformError::cache)?;
            }
            entry.chunks = Some(chunks);
        } else {
            entry.body.clone_from(&r.body);
        }
        self.kv_put(&key, &entry.to_cbor(), Some(ttl))
            .await
            .map_err(PlatformError::cache)
    }

    /// Bodies are in memory here: the copy is a clone, stored when the app's deferred work runs
    /// (before the response, see `defer`).
    fn cache_put_copy(
        &self,
        key: &str,
        response: &mut AppResponse,
        ttl: u64,
    ) -> Result<edge_app::Storing, PlatformError> {
        let (p, key, copy) = (self.clone(), key.to_owned(), response.clone());
        Ok(Box::pin(async move { p.cache_put(&key, &copy, ttl).await }))
    }

    /// With Redis, one atomic script: exact however many requests and instances race. Without,
    /// a plain read-modify-write on the store: exact for sequential requests; concurrent ones on
    /// the same key may overshoot (Spin's key-value interface has no compare-and-swap).
    async fn rate_limit(&self, key: &str, quota: &Quota) -> Result<Decision, PlatformError> {
        if let Some(redis) = &self.redis {
            return redis_rate_limit(redis, key, quota);
        }
        let err = PlatformError::rate_limit;
        let k = format!("{RATE_LIMIT_PREFIX}{key}");
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
        // (The host's error does not say whether the origin or the allow-list refused: either
        // way the region is not reached, and another may be.)
        let resp: IncomingResponse = spin_sdk::http::send(req)
            .await
            .map_err(PlatformError::unreachable)?;
        let headers: Vec<(String, String)> = resp
            .headers()
            .entries()
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), String::from_utf8(v).ok()?)))
            .collect();
        let status = resp.status();
        // A body the cache could keep is read here; a larger one streams to the client as it
        // comes (the app keeps no copy of it either).
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<u64>().ok());
        if request.pass_through && length.is_none_or(|n| n > MAX_CACHED_BYTES) {
            let mut held = self.held.borrow_mut();
            held.push(Some(resp));
            return Ok(AppResponse {
                status,
                headers,
                body: Vec::new(),
                native_body: Some(held.len() - 1),
            });
        }
        let body = resp
            .into_body()
            .await
            .map_err(|e| PlatformError::unreachable(format_args!("reading the body: {e:?}")))?;
        Ok(AppResponse {
            status,
            headers,
            body,
            native_body: None,
        })
    }

    async fn body_bytes(&self, resp: &mut AppResponse) -> Result<Vec<u8>, PlatformError> {
        match self.take_held(resp.native_body.take()) {
            Some(r) => r
                .into_body()
                .await
                .map_err(|e| PlatformError::unreachable(format_args!("reading the body: {e:?}"))),
            None => Ok(std::mem::take(&mut resp.body)),
        }
    }

    /// Spin has no WebCrypto: Rust's verifiers (ed25519-dalek's `verify_strict`, p256).
    async fn verify_signature(
        &self,
        _kid: &str,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PlatformError> {
        Ok(shared_wasm::jwt::verify_raw(key, message, signature))
    }

    fn defer(&self, task: edge_app::Deferred) {
        self.deferred.borrow_mut().push(task);
    }

    /// Blocks the instance, which serves only this request.
    async fn sleep(&self, ms: u32) {
        wasi::clocks::monotonic_clock::subscribe_duration(u64::from(ms) * 1_000_000).block();
    }

    fn now(&self) -> UnixTime {
        UnixTime(now_ms() / 1000)
    }

    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), PlatformError> {
        let bytes = wasi::random::random::get_random_bytes(buf.len() as u64);
        buf.copy_from_slice(&bytes);
        Ok(())
    }

    fn log_error(&self, message: &str) {
        eprintln!("{message}");
    }
}

fn redis_rate_limit(redis: &Redis, key: &str, quota: &Quota) -> Result<Decision, PlatformError> {
    let [interval_ms, window_ms] = ratelimit::redis_args(quota);
    let int = |n: u64| RedisParameter::Int64(i64::try_from(n).unwrap_or(i64::MAX));
    let args = [
        RedisParameter::Binary(ratelimit::REDIS_GCRA_SCRIPT.as_bytes().to_vec()),
        RedisParameter::Int64(1),
        RedisParameter::Binary(format!("{REDIS_RATE_LIMIT_PREFIX}{key}").into_bytes()),
        int(interval_ms),
        int(window_ms),
    ];
    let reply = redis
        .execute("EVAL", &args)
        .map_err(PlatformError::rate_limit)?;
    let numbers: Option<Vec<i64>> = reply
        .iter()
        .map(|r| match r {
            RedisResult::Int64(n) => Some(*n),
            _ => None,
        })
        .collect();
    numbers
        .and_then(|n| ratelimit::redis_decision(quota, &n))
        .ok_or_else(|| PlatformError::rate_limit("unexpected reply from the Redis script"))
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

/// The settings only this adapter reads (the app's own are in [`EdgeConfig`], read as routes
/// need them). Every request needs these, so a malformed one fails every request.
struct Settings {
    /// `CLIENT_IP_HEADER`, lower case; see [`client_ip`].
    client_ip_header: Option<String>,
    /// `REDIS_URL`: `redis://` or `rediss://`; see the module's documentation.
    redis_url: Option<String>,
    sweep: sweep::Policy,
}

impl Settings {
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let client_ip_header = get("CLIENT_IP_HEADER")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        // A name that could never match fails here, rather than by making every viewer's
        // address unknown.
        if client_ip_header
            .as_deref()
            .is_some_and(|n| !is_header_name(n))
        {
            return Err(ConfigError::Invalid(
                "CLIENT_IP_HEADER",
                "must be a header name".into(),
            ));
        }
        let redis_url = get("REDIS_URL")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        if redis_url
            .as_deref()
            .is_some_and(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
        {
            // Not echoed: the URL may carry a password.
            return Err(ConfigError::Invalid(
                "REDIS_URL",
                "must be a redis:// or rediss:// URL".into(),
            ));
        }
        Ok(Self {
            client_ip_header,
            redis_url,
            sweep: sweep::Policy::from_lookup(&get)?,
        })
    }
}

/// An RFC 9110 token, which every header name is.
fn is_header_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The viewer's address, as rate limits and playback-token binding see it.
///
/// Without `CLIENT_IP_HEADER`: the connection's peer, from `spin-client-addr` (`ip:port`), which
/// Spin sets, replacing any header of that name a client sent.
///
/// With it, the deployment is behind a CDN: the peer is the CDN, and the viewer's address is in
/// the header the CDN sets to exactly one address, replacing any the client sent
/// (`cf-connecting-ip`, `true-client-ip`, `fastly-client-ip`). The value must be one IP address,
/// nothing else: a list (`x-forwarded-for`) or an address with a port is refused, never picked
/// apart, since whatever a client put in such a list would come along. Absent or refused, the
/// address is unknown rather than the peer's: the peer is the CDN, shared by strangers, so keying
/// on it would quietly put them in one rate-limit bucket and bind their tokens to the CDN's
/// network. Unknown fails visibly and closed: those requests share the one `unknown` bucket and
/// a token bound to an address is refused. A refused value is logged, since it means the CDN
/// does not do what the setting says; an absent one is not, since requests that do not come
/// through the CDN (the origin's sync pushes, health checks) have none. (spin-sdk's `Request`
/// keeps one value per header name, so whether a client sent its own copy cannot be seen here:
/// the CDN must overwrite it.)
fn client_ip(p: &Spin, headers: &[(String, String)], trusted: Option<&str>) -> Option<String> {
    let Some(name) = trusted else {
        return headers
            .iter()
            .find(|(k, _)| k == "spin-client-addr")
            .and_then(|(_, a)| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.ip().to_string());
    };
    let value = headers.iter().find(|(k, _)| k == name).map(|(_, v)| v)?;
    let ip = value.parse::<std::net::IpAddr>().ok();
    if ip.is_none() {
        // The header's name only: its value came from whoever sent it.
        p.log_error(&format!(
            "{name} (CLIENT_IP_HEADER) is not one IP address; client address unknown"
        ));
    }
    ip.map(|ip| ip.to_string())
}

/// The component's entry point. Only the export glue generated by `#[http_component]` is
/// allowed `unsafe`; nothing written by hand here uses it.
#[allow(unsafe_code)]
mod entry {
    use super::*;

    /// Answers, then sometimes sweeps the store. The response is handed over and its body
    /// finished before the sweep starts, so the viewer does not wait for it: hosts built on
    /// wasmtime-wasi-http (Spin, spin-host) send a response once its body is finished and let
    /// the handler run on. (The app's deferred work still runs before answering, in `answer`.)
    #[spin_sdk::http_component]
    async fn handle(req: Request, response_out: ResponseOutparam) {
        let settings = Settings::from_lookup(setting);
        let answered = answer(req, settings.as_ref()).await;
        let platform = answered.as_ref().ok().map(|(_, _, p)| p.clone());
        let (resp, held) = match answered {
            Ok((resp, held, _)) => (resp, held),
            Err(e) => (IntoResponse::into_response(Err::<Response, _>(e)), None),
        };
        send(response_out, resp, held).await;
        let (Some(platform), Ok(settings)) = (platform, settings) else {
            return;
        };
        // Under Redis, entries expire by themselves (`kv_put`).
        if settings.redis_url.is_none() && settings.sweep.due() {
            if let Err(e) = sweep::run(&platform.store, &settings.sweep, now_ms()) {
                platform.log_error(&format!("KV sweep stopped: {e}"));
            }
        }
    }

    /// What `#[http_component]` does with a returned response; with `held`, the body is the
    /// origin's, streamed chunk by chunk as it comes. A body cut short on either side ends the
    /// response short of its `content-length`, so the client sees it was cut.
    async fn send(out: ResponseOutparam, mut resp: Response, held: Option<IncomingResponse>) {
        let body = std::mem::take(resp.body_mut());
        let r = match OutgoingResponse::try_from(resp) {
            Ok(r) => r,
            Err(e) => return eprintln!("response not converted: {e}"),
        };
        let Some(held) = held else {
            if let Err(e) = out.set_with_body(r, body).await {
                eprintln!("response not sent: {e}");
            }
            return;
        };
        let mut sink = r.take_body();
        out.set(r);
        let mut chunks = held.take_body_stream();
        while let Some(chunk) = chunks.next().await {
            let sent = match chunk {
                Ok(chunk) => sink.send(chunk).await,
                Err(e) => return eprintln!("origin body cut short: {e:?}"),
            };
            if let Err(e) = sent {
                return eprintln!("response body cut short: {e}");
            }
        }
    }

    async fn answer(
        req: Request,
        settings: Result<&Settings, &ConfigError>,
    ) -> anyhow::Result<(Response, Option<IncomingResponse>, Spin)> {
        let store = Store::open_default()?;
        let redis = settings.ok().and_then(|s| s.redis_url.clone());
        let platform = Spin(std::rc::Rc::new(Inner {
            store,
            redis: redis.map(|url| Redis {
                url,
                conn: Default::default(),
            }),
            deferred: Default::default(),
            held: Default::default(),
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
        let trusted_ip_header = settings.ok().and_then(|s| s.client_ip_header.as_deref());
        let client_ip = client_ip(&platform, &headers, trusted_ip_header);
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
            pass_through: false,
        };
        // Each request runs in a fresh instance, so there is nothing to keep settings in: the
        // app reads the sections its route needs, as it needs them.
        let resp = match settings {
            Ok(_) => edge_app::handle(&platform, &EdgeConfig::new(setting), app_req).await,
            // The adapter's own settings serve every request: broken, every request fails.
            Err(e) => edge_app::refuse(&platform, &app_req, e),
        };
        let deferred = std::mem::take(&mut *platform.deferred.borrow_mut());
        for task in deferred {
            task.await;
        }
        let held = platform.take_held(resp.native_body);
        let mut out = Response::builder();
        out.status(resp.status);
        for (k, v) in resp.headers {
            out.header(k, v);
        }
        Ok((out.body(resp.body).build(), held, platform))
    }
}
