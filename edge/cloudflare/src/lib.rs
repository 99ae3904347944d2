//! Cloudflare Workers adapter: converts `worker` types to the edge app's and provides KV (the
//! `EDGE_KV` namespace), the Cache API, `fetch` and the clock. No business logic lives here.
#![cfg(target_arch = "wasm32")]

mod rate_limiter;
mod webcrypto;

use std::cell::{OnceCell, RefCell};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{select, Either};

use edge_app::{
    ConfigError, EdgeConfig, Platform, PlatformError, Request as AppRequest,
    Response as AppResponse,
};
use shared_wasm::geo::Continent;
use shared_wasm::jwk::VerifyingKey;
use shared_wasm::ratelimit::{Decision, Quota};
use shared_wasm::{CountryCode, UnixTime};
use worker::{
    console_error, event, AbortController, Cache, Context, Date, Delay, Env, Fetch, Headers,
    Method, Request, RequestInit, Response, ResponseBody, Result,
};

const KV_BINDING: &str = "EDGE_KV";
const RATE_LIMITER_BINDING: &str = "RATE_LIMITER";
/// The web app's built files (wrangler.toml's `[assets]`), for the pages the edge serves itself
/// (`run_worker_first` names them).
const ASSETS_BINDING: &str = "ASSETS";
/// The largest body any route accepts (a sync batch), so anything declaring more is refused
/// unread.
const MAX_REQUEST_BODY: usize = shared_wasm::sync::MAX_BATCH_BYTES;
/// Workers KV refuses TTLs under 60 s.
const KV_MIN_TTL: u64 = 60;

/// The platform for one request; cheap to clone, so deferred work can own a handle to it.
#[derive(Clone)]
struct Cloudflare(Rc<Inner>);

impl std::ops::Deref for Cloudflare {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

struct Inner {
    ctx: Context,
    bindings: Rc<Bindings>,
    /// For the bindings only some requests need (`ASSETS`), looked up when they do.
    env: Env,
    /// Bodies of cache hits, handed to the app by index (`AppResponse::native_body`) and sent
    /// to the client without being read into Wasm memory. Per request: dropped with it.
    bodies: RefCell<Vec<Option<Response>>>,
}

/// The handles every request uses, looked up once per isolate: each lookup reads several
/// properties across the JS boundary, and the objects are the isolate's, not a request's.
struct Bindings {
    kv: worker::kv::KvStore,
    cache: Cache,
    limiter: worker::ObjectNamespace,
}

impl Bindings {
    fn of(env: &Env) -> Result<Rc<Self>> {
        if let Some(b) = BINDINGS.with(|b| b.get().cloned()) {
            return Ok(b);
        }
        let b = Rc::new(Self {
            kv: env.kv(KV_BINDING)?,
            cache: Cache::default(),
            limiter: env.durable_object(RATE_LIMITER_BINDING)?,
        });
        BINDINGS.with(|cell| cell.set(b.clone()).ok());
        Ok(b)
    }
}

// Header lists cross the JS boundary as one JSON string each way: read or written one by one,
// each header costs about a dozen crossings and two string conversions.

/// `pairs` as runtime headers.
fn to_headers(pairs: &[(String, String)]) -> Result<Headers> {
    let list = js_sys::JSON::parse(&serde_json::to_string(pairs)?)?;
    Ok(Headers(web_sys::Headers::new_with_str_sequence_sequence(
        &list,
    )?))
}

/// The runtime's headers as pairs, lower-case names in order.
fn from_headers(h: &Headers) -> Vec<(String, String)> {
    js_sys::JSON::stringify(&js_sys::Array::from(&h.0))
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        // Strings taken from `Headers` always make such a JSON array; this is a safety net.
        .unwrap_or_else(|| h.entries().collect())
}

/// The whole body in one `arrayBuffer()` call: workers-rs's `bytes()` reads a streamed body
/// through a reader, chunk by chunk, several boundary crossings each (5 % of a JWT request's
/// time in the profile was the reader's `releaseLock` alone). The stream is wrapped in a bare
/// `Response` (no status or headers to copy) only to read it.
async fn read_all(resp: Response) -> Result<Vec<u8>> {
    let stream = match resp.body() {
        ResponseBody::Empty => return Ok(Vec::new()),
        ResponseBody::Body(bytes) => return Ok(bytes.clone()),
        ResponseBody::Stream(stream) => stream,
    };
    let reader = web_sys::Response::new_with_opt_readable_stream(Some(stream))?;
    let buffer = wasm_bindgen_futures::JsFuture::from(reader.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

async fn from_worker_response(resp: Response) -> Result<AppResponse> {
    Ok(AppResponse {
        status: resp.status_code(),
        headers: from_headers(resp.headers()),
        body: read_all(resp).await?,
        native_body: None,
    })
}

fn to_worker_response(resp: &AppResponse) -> Result<Response> {
    Ok(Response::from_bytes(resp.body.clone())?
        .with_status(resp.status)
        .with_headers(to_headers(&resp.headers)?))
}

/// A response as the Cache API stores it: it keeps only what `cache-control` allows, and the
/// entry carries its own TTL.
fn for_cache(response: &AppResponse, ttl_secs: u64) -> AppResponse {
    let mut stored = AppResponse {
        status: response.status,
        headers: response.headers.clone(),
        body: response.body.clone(),
        native_body: None,
    };
    stored.headers.retain(|(k, _)| k != "cache-control");
    stored.headers.push((
        "cache-control".into(),
        format!("public, max-age={ttl_secs}"),
    ));
    stored
}

impl Cloudflare {
    /// The app's view of `r`: its status and headers, its body left with the runtime behind a
    /// `native_body` handle.
    fn hold(&self, r: Response) -> AppResponse {
        let (status, headers) = (r.status_code(), from_headers(r.headers()));
        let mut bodies = self.bodies.borrow_mut();
        bodies.push(Some(r));
        AppResponse {
            status,
            headers,
            body: Vec::new(),
            native_body: Some(bodies.len() - 1),
        }
    }

    /// The runtime-held response behind a `native_body` handle, once.
    fn take_native(&self, handle: Option<usize>) -> Option<Response> {
        handle.and_then(|i| self.bodies.borrow_mut().get_mut(i).and_then(Option::take))
    }

    /// The response to send: the app's status and headers, with a passed-through body if the
    /// app kept one.
    fn finish(&self, resp: &AppResponse) -> Result<Response> {
        match self.take_native(resp.native_body) {
            Some(r) => Ok(r
                .with_status(resp.status)
                .with_headers(to_headers(&resp.headers)?)),
            None => to_worker_response(resp),
        }
    }
}

impl Platform for Cloudflare {
    async fn kv_get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, PlatformError> {
        self.bindings
            .kv
            .get(key)
            .bytes()
            .await
            .map_err(PlatformError::kv)
    }

    async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        ttl_secs: Option<u64>,
    ) -> std::result::Result<(), PlatformError> {
        let mut put = self
            .bindings
            .kv
            .put_bytes(key, value)
            .map_err(PlatformError::kv)?;
        if let Some(ttl) = ttl_secs {
            put = put.expiration_ttl(ttl.max(KV_MIN_TTL));
        }
        put.execute().await.map_err(PlatformError::kv)
    }

    async fn cache_get(
        &self,
        key: &str,
    ) -> std::result::Result<Option<AppResponse>, PlatformError> {
        let hit = self
            .bindings
            .cache
            .get(key, false)
            .await
            .map_err(PlatformError::cache)?;
        Ok(hit.map(|r| self.hold(r)))
    }

    /// The Cache API answers the range itself (206, or 416), streaming the part from the
    /// entry.
    async fn cache_get_range(
        &self,
        key: &str,
        range: &str,
    ) -> std::result::Result<Option<AppResponse>, PlatformError> {
        let err = PlatformError::cache;
        let mut init = RequestInit::new();
        init.with_headers(to_headers(&[("range".into(), range.into())]).map_err(err)?);
        let req = Request::new_with_init(key, &init).map_err(err)?;
        let hit = self.bindings.cache.get(&req, false).await.map_err(err)?;
        Ok(hit.map(|r| self.hold(r)))
    }

    async fn cache_put(
        &self,
        key: &str,
        response: &AppResponse,
        ttl_secs: u64,
    ) -> std::result::Result<(), PlatformError> {
        let err = PlatformError::cache;
        self.bindings
            .cache
            .put(
                key,
                to_worker_response(&for_cache(response, ttl_secs)).map_err(err)?,
            )
            .await
            .map_err(err)
    }

    /// A body the runtime holds is teed (`Response.clone()`): one branch goes to the client,
    /// the other into the cache as it is read, never through Wasm.
    fn cache_put_copy(
        &self,
        key: &str,
        response: &mut AppResponse,
        ttl_secs: u64,
    ) -> std::result::Result<edge_app::Storing, PlatformError> {
        let err = PlatformError::cache;
        let stored = for_cache(response, ttl_secs);
        let copy = match response.native_body {
            Some(i) => {
                let mut bodies = self.bodies.borrow_mut();
                let held = bodies
                    .get_mut(i)
                    .and_then(Option::as_mut)
                    .ok_or_else(|| PlatformError::cache("no body behind the handle"))?;
                held.cloned()
                    .map_err(err)?
                    .with_status(stored.status)
                    .with_headers(to_headers(&stored.headers).map_err(err)?)
            }
            None => to_worker_response(&stored).map_err(err)?,
        };
        let key = key.to_owned();
        let bindings = self.bindings.clone();
        Ok(Box::pin(async move {
            bindings.cache.put(key, copy).await.map_err(err)
        }))
    }

    async fn rate_limit(
        &self,
        key: &str,
        quota: &Quota,
    ) -> std::result::Result<Decision, PlatformError> {
        let err = PlatformError::rate_limit;
        let stub = self
            .bindings
            .limiter
            .id_from_name(key)
            .and_then(|id| id.get_stub())
            .map_err(err)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(
            serde_json::to_string(quota)
                .expect("a quota serializes")
                .into(),
        ));
        let req = Request::new_with_init("https://rate-limiter/check", &init).map_err(err)?;
        let resp = stub.fetch_with_request(req).await.map_err(err)?;
        serde_json::from_slice(&read_all(resp).await.map_err(err)?)
            .map_err(PlatformError::rate_limit)
    }

    async fn fetch(
        &self,
        request: AppRequest,
        timeout_ms: u32,
    ) -> std::result::Result<AppResponse, PlatformError> {
        // Building the request fails only on what this code put in it; sending it, on the
        // origin or the way there.
        let built = PlatformError::bad_request;
        let method = Method::from(request.method.clone());
        let mut init = RequestInit::new();
        init.with_method(method)
            .with_headers(to_headers(&request.headers).map_err(built)?);
        if !request.body.is_empty() {
            init.with_body(Some(
                js_sys::Uint8Array::from(request.body.as_slice()).into(),
            ));
        }
        let req = Request::new_with_init(&request.url, &init).map_err(built)?;
        // The exchange races a timer, and the loser is aborted: a hung origin costs at most
        // `timeout_ms` and counts as a failed region. The race covers the body too, unless it
        // is passed through: then it ends with the headers, and the body streams to the client
        // at the client's pace.
        let controller = AbortController::default();
        let signal = controller.signal();
        let pass_through = request.pass_through;
        let exchange = async {
            let resp = Fetch::Request(req).send_with_signal(&signal).await?;
            if pass_through {
                Ok(self.hold(resp))
            } else {
                from_worker_response(resp).await
            }
        };
        let timer = Delay::from(Duration::from_millis(u64::from(timeout_ms)));
        let exchange = pin!(exchange);
        let outcome = select(exchange, timer).await;
        match outcome {
            Either::Left((result, _)) => result.map_err(PlatformError::unreachable),
            Either::Right(((), _)) => {
                controller.abort();
                Err(PlatformError::unreachable(format_args!(
                    "timed out after {timeout_ms} ms"
                )))
            }
        }
    }

    async fn body_bytes(
        &self,
        resp: &mut AppResponse,
    ) -> std::result::Result<Vec<u8>, PlatformError> {
        match self.take_native(resp.native_body.take()) {
            Some(r) => read_all(r).await.map_err(PlatformError::cache),
            None => Ok(std::mem::take(&mut resp.body)),
        }
    }

    async fn asset(&self, file: &str) -> std::result::Result<Option<Vec<u8>>, PlatformError> {
        let err = PlatformError::assets;
        // A deployment without the binding: the edge's pages answer 500, and the log says why.
        let assets = self.env.assets(ASSETS_BINDING).map_err(err)?;
        // Workers serve `x.html` at `/x` (`html_handling`; `/x.html` answers a redirect there).
        let path = match file.strip_suffix(".html") {
            Some("index") => "",
            Some(page) => page,
            None => file,
        };
        // The binding reads the URL's path only; the host is a placeholder.
        let resp = assets
            .fetch(format!("https://assets.invalid/{path}"), None)
            .await
            .map_err(err)?;
        match resp.status_code() {
            200 => read_all(resp).await.map(Some).map_err(err),
            404 => Ok(None),
            s => Err(PlatformError::assets(format_args!(
                "{ASSETS_BINDING} answered {s} for {file}"
            ))),
        }
    }

    fn defer(&self, task: edge_app::Deferred) {
        self.ctx.wait_until(task);
    }

    async fn verify_signature(
        &self,
        kid: &str,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> std::result::Result<bool, PlatformError> {
        webcrypto::verify(kid, key, message, signature).await
    }

    async fn sleep(&self, ms: u32) {
        Delay::from(Duration::from_millis(u64::from(ms))).await;
    }

    fn now(&self) -> UnixTime {
        UnixTime(Date::now().as_millis() / 1000)
    }

    fn random_bytes(&self, buf: &mut [u8]) -> std::result::Result<(), PlatformError> {
        get_random_values(buf).map_err(|e| PlatformError::random(format_args!("{e:?}")))
    }

    fn log_error(&self, message: &str) {
        console_error!("{message}");
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// Web Crypto's `crypto.getRandomValues`, which workerd provides to every Worker.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> std::result::Result<(), wasm_bindgen::JsValue>;
}

fn setting(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
}

thread_local! {
    /// Settings, read once per isolate: an isolate serves one deployment version, whose vars and
    /// secrets do not change under it, and parsing them (keys included) on every request is
    /// wasted work on the hot path.
    static CONFIG: OnceCell<Rc<Result<EdgeConfig, ConfigError>>> = const { OnceCell::new() };
    static BINDINGS: OnceCell<Rc<Bindings>> = const { OnceCell::new() };
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    let platform = Cloudflare(Rc::new(Inner {
        ctx,
        bindings: Bindings::of(&env)?,
        env: env.clone(),
        bodies: RefCell::new(Vec::new()),
    }));
    // Every JS call costs a boundary crossing on every request: each value is read once, and a
    // GET or HEAD has no body to wait for.
    let method = req.method();
    let headers = from_headers(req.headers());
    // A declared body larger than any route takes is refused before it is read into memory
    // (the app's own per-route caps apply to what is read).
    let declared = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY) {
        return to_worker_response(&edge_app::EdgeError::PayloadTooLarge.into_response());
    }
    let body = if matches!(method, Method::Get | Method::Head) {
        Vec::new()
    } else {
        req.bytes().await.unwrap_or_default()
    };
    // Set by Cloudflare's edge for every request; a client cannot supply its own.
    let client_ip = headers
        .iter()
        .find(|(k, _)| k == "cf-connecting-ip")
        .map(|(_, v)| v.clone());
    // `request.cf` is Cloudflare's own geolocation. Under `wrangler dev` it is a local stand-in
    // that only a developer's environment (Miniflare) can set.
    let cf = req.cf();
    let app_req = AppRequest {
        method: method.to_string(),
        url: req.inner().url(),
        headers,
        body,
        client_ip,
        country: cf
            .as_ref()
            .and_then(|cf| cf.country())
            .and_then(|c| CountryCode::parse(&c).ok()),
        continent: cf
            .as_ref()
            .and_then(|cf| cf.continent())
            .and_then(|c| Continent::parse(&c)),
        pass_through: false,
    };
    let config = CONFIG.with(|c| {
        c.get_or_init(|| Rc::new(EdgeConfig::from_lookup(|name| setting(&env, name))))
            .clone()
    });
    let resp = edge_app::handle(&platform, config.as_ref().as_ref(), app_req).await;
    platform.finish(&resp)
}
