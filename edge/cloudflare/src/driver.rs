//! The driven entry: the edge app runs against [`Platform`] as everywhere, but each I/O call
//! becomes a command that the Worker's JS shell (`edge/cloudflare/shell.js`) carries out and
//! answers. A request crosses the JS↔Wasm boundary once to begin, once per answered command,
//! and not at all per header: commands leave as one JSON string per step, their bytes as one
//! buffer, and each answer comes back in one call.
//!
//! An exchange is one request: its main future (the app's `handle`), the futures it deferred
//! (`ctx.waitUntil` work such as cache writes) and the commands in flight. Every leaf future is
//! a [`Reply`] waiting for its command's answer, so stepping means polling the exchange's
//! futures after each answer; no waker or JS promise is involved. The shell holds no policy:
//! routing, token checks, rules, cache keys and header composition are all decided here or in
//! the app, and the shell only performs what a command says.
//!
//! Nothing here touches JS, so the protocol is tested natively (`tests` below) with a scripted
//! shell; `exports.rs` binds it to wasm-bindgen on Workers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use edge_app::{EdgeConfig, EdgeError, Platform, PlatformError, Request, Response};
use serde::Serialize;
use shared_wasm::geo::Continent;
use shared_wasm::jwk::{PublicKey, VerifyingKey};
use shared_wasm::ratelimit::{Decision, Quota};
use shared_wasm::{CountryCode, UnixTime};

/// The largest body any route accepts (a sync batch): a request declaring more is refused
/// before its body is read.
const MAX_REQUEST_BODY: usize = shared_wasm::sync::MAX_BATCH_BYTES;
/// Workers KV refuses TTLs under 60 s.
const KV_MIN_TTL: u64 = 60;
/// A `fetch` answer's number when the runtime refused to build the request (shell.js has the
/// same constants).
const FETCH_NOT_SENT: f64 = -2.0;
/// A `fetch` answer's number when the timeout aborted the exchange.
const FETCH_TIMED_OUT: f64 = -3.0;
/// A `body` answer's number when the body is larger than the command allowed.
const BODY_TOO_LARGE: f64 = -4.0;
/// An exchange older than this is abandoned: workerd cancelled its request (the viewer went
/// away, or a limit was reached) and will never answer its commands. Above any real lifetime:
/// the origin's timeouts while the response is made, then `waitUntil`'s 30 s after it.
pub const ABANDONED_AFTER_MS: f64 = 120_000.0;

/// What the runtime gives synchronously: the clock, randomness and the log (plain calls, no
/// command needed).
pub struct Sys {
    /// Milliseconds since the epoch.
    pub now_ms: fn() -> f64,
    /// Fills a buffer from the runtime's cryptographic random source.
    pub random: fn(&mut [u8]) -> Result<(), String>,
    /// Writes a line to the runtime's log.
    pub log: fn(&str),
}

/// Random bytes fetched from the runtime at a time: one call out of Wasm serves many requests'
/// ids and tokens instead of one call each.
pub const RANDOM_POOL: usize = 1024;

/// Fills `buf` from `pool`, refilling it with `fill` (the runtime's cryptographic source) when
/// it runs short. Each byte is handed out once and zeroed in the pool; a request larger than
/// [`RANDOM_POOL`] goes to `fill` directly.
pub fn draw(
    pool: &mut Vec<u8>,
    buf: &mut [u8],
    fill: impl FnOnce(&mut [u8]) -> Result<(), String>,
) -> Result<(), String> {
    if buf.len() > RANDOM_POOL {
        return fill(buf);
    }
    if pool.len() < buf.len() {
        let mut fresh = vec![0; RANDOM_POOL];
        fill(&mut fresh)?;
        pool.fill(0);
        *pool = fresh;
    }
    let rest = pool.len() - buf.len();
    buf.copy_from_slice(&pool[rest..]);
    pool[rest..].fill(0);
    pool.truncate(rest);
    Ok(())
}

/// One command for the shell. `t` is the tag its answer comes back with; byte payloads are
/// `[offset, length]` ranges in the step's payload buffer ([`Step::payload`]).
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "c", rename_all = "snake_case")]
pub enum Command {
    /// The request's body, read as it streams in: answers its bytes, or [`BODY_TOO_LARGE`] as
    /// soon as more than `max` bytes came (a body sent without a length is never held whole).
    Body { t: u32, max: usize },
    /// KV read: answers the bytes, or none when absent.
    KvGet { t: u32, key: String },
    /// KV write with an optional TTL (seconds).
    KvPut {
        t: u32,
        key: String,
        b: [usize; 2],
        ttl: Option<u64>,
    },
    /// Cache API match of `key`, as a request with `headers` when there are any (a `Range`):
    /// answers the number of a held response (its head as text), or -1 on a miss.
    CacheMatch {
        t: u32,
        key: String,
        headers: Vec<(String, String)>,
    },
    /// Cache API put of a response built from `status`, `headers` and either a copy of held
    /// response `h` (taken when the command is started) or the bytes `b`.
    CachePut {
        t: u32,
        key: String,
        status: u16,
        #[serde(serialize_with = "header_list")]
        headers: Vec<(String, String)>,
        h: Option<usize>,
        b: Option<[usize; 2]>,
    },
    /// The rate-limiter Durable Object for `key`, asked with the quota `q` (its limit and its
    /// window in seconds): answers the decision as bytes ([`limiter_answer`]).
    Limit { t: u32, key: String, q: [u32; 2] },
    /// An outbound request, aborted after `ms` milliseconds (until its headers when `pass`,
    /// until its whole body otherwise): answers its head as text and either its body's bytes
    /// or, when `pass`, the number of the held response; or [`FETCH_NOT_SENT`] (the runtime
    /// would not build it) or [`FETCH_TIMED_OUT`].
    Fetch {
        t: u32,
        url: String,
        method: String,
        #[serde(serialize_with = "header_list")]
        headers: Vec<(String, String)>,
        b: Option<[usize; 2]>,
        ms: u32,
        pass: bool,
    },
    /// The whole body of held response `h`.
    Read { t: u32, h: usize },
    /// A file of the static assets binding (which reads the URL's path only): answers its
    /// status and bytes.
    Asset { t: u32, url: String },
    /// WebCrypto `importKey(format, b, alg, false, usages)`: answers the key's number.
    ImportKey {
        t: u32,
        format: &'static str,
        alg: WebCryptoAlg,
        usages: [&'static str; 1],
        b: [usize; 2],
    },
    /// WebCrypto `verify` with key `k`: answers 1 or 0.
    Verify {
        t: u32,
        alg: WebCryptoAlg,
        k: u32,
        sig: [usize; 2],
        msg: [usize; 2],
    },
    /// A timer.
    Sleep { t: u32, ms: u32 },
    /// The response to send: `status`, `headers` and the body of held response `h`, or the
    /// text `s` (a small UTF-8 body, see [`INLINE_BODY`]), or the bytes `b`, or none.
    Respond {
        status: u16,
        #[serde(serialize_with = "header_list")]
        headers: Vec<(String, String)>,
        h: Option<usize>,
        s: Option<String>,
        b: Option<[usize; 2]>,
    },
    /// The exchange is over: no command of it is outstanding.
    End,
}

/// Headers as the runtime's `Headers` constructor takes them: a plain object when every name
/// is unique (the common case, and cheaper to build from than a list of pairs), the list of
/// pairs otherwise (`set-cookie` may repeat).
fn header_list<S: serde::Serializer>(
    headers: &[(String, String)],
    out: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let repeats = headers.iter().enumerate().any(|(i, (k, _))| {
        headers[..i]
            .iter()
            .any(|(seen, _)| seen.eq_ignore_ascii_case(k))
    });
    if repeats {
        return headers.serialize(out);
    }
    let mut map = out.serialize_map(Some(headers.len()))?;
    for (k, v) in headers {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// A command's answer from the shell.
#[derive(Debug, Default)]
pub struct Answer {
    /// False: the runtime call failed, and `text` says how (for the log only).
    pub ok: bool,
    /// A number: a held response or key, a status, a boolean as 1/0, or -1 for none.
    pub num: f64,
    /// A response's head (`[status, [[name, value], …]]`), a decision, an error.
    pub text: Option<String>,
    /// Bytes: a body, a KV value.
    pub bytes: Option<Vec<u8>>,
}

/// What one step hands the shell: the commands to start, in order, and the bytes they name.
#[derive(Debug, Default)]
pub struct Step {
    /// The commands as a JSON array.
    pub commands: String,
    /// The bytes the commands' ranges point into.
    pub payload: Vec<u8>,
    /// The exchange is over (the last command is [`Command::End`]).
    pub ended: bool,
}

/// Per exchange: what its futures share with the driver.
#[derive(Default)]
struct Shared {
    next_tag: Cell<u32>,
    /// Commands issued since the last step, and the bytes they point into.
    outbox: RefCell<Vec<Command>>,
    payload: RefCell<Vec<u8>>,
    /// Answers not yet taken by their futures.
    answers: RefCell<HashMap<u32, Answer>>,
    /// Commands started and not answered.
    outstanding: Cell<usize>,
    /// Futures deferred since the last poll.
    spawned: RefCell<Vec<edge_app::Deferred>>,
}

impl Shared {
    fn ask(self: &Rc<Self>, command: impl FnOnce(u32) -> Command) -> Reply {
        let tag = self.next_tag.get();
        self.next_tag.set(tag.wrapping_add(1));
        self.outbox.borrow_mut().push(command(tag));
        self.outstanding.set(self.outstanding.get() + 1);
        Reply {
            shared: self.clone(),
            tag,
        }
    }

    /// Puts `bytes` into the step's payload and returns their range.
    fn stash(&self, bytes: &[u8]) -> [usize; 2] {
        let mut payload = self.payload.borrow_mut();
        payload.extend_from_slice(bytes);
        [payload.len() - bytes.len(), bytes.len()]
    }
}

/// The answer to one command, once the shell has given it.
struct Reply {
    shared: Rc<Shared>,
    tag: u32,
}

impl Future for Reply {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer> {
        match self.shared.answers.borrow_mut().remove(&self.tag) {
            Some(answer) => Poll::Ready(answer),
            None => Poll::Pending,
        }
    }
}

impl Answer {
    /// The answer if the runtime call succeeded; its error, attributed by `err`, if not.
    fn ok(self, err: fn(String) -> PlatformError) -> Result<Self, PlatformError> {
        if self.ok {
            Ok(self)
        } else {
            Err(err(self.text.unwrap_or_default()))
        }
    }

    /// The held response (`num`) or the body bytes this answer carries, with its head.
    fn response(self, err: fn(String) -> PlatformError) -> Result<Response, PlatformError> {
        let (status, headers): (u16, Vec<(String, String)>) =
            serde_json::from_str(self.text.as_deref().unwrap_or_default())
                .map_err(|e| err(format!("response head: {e}")))?;
        Ok(Response {
            status,
            headers,
            body: self.bytes.unwrap_or_default(),
            native_body: handle(self.num),
        })
    }
}

/// What the limiter's Durable Object gives back (from Wasm, `exports::limit`, through the shell
/// unread): the new theoretical arrival time in ms to store (NaN: keep the stored one), then the
/// decision's four fields, as five f64 (a `Float64Array`; the shell hands its bytes on). Numbers,
/// not JSON: the limiter is asked twice per signed-in playback request.
pub fn limiter_answer(decision: &Decision, new_tat_ms: Option<u64>) -> Vec<f64> {
    vec![
        new_tat_ms.map_or(f64::NAN, |t| t as f64),
        f64::from(u8::from(decision.allowed)),
        f64::from(decision.remaining),
        decision.reset_secs as f64,
        decision.retry_after_secs as f64,
    ]
}

/// The decision in a [`limiter_answer`]'s bytes (native byte order: little-endian in Wasm and
/// in every runtime's typed arrays this runs on).
fn decision_of(bytes: &[u8]) -> Result<Decision, String> {
    if bytes.len() != 40 {
        return Err(format!(
            "the limiter answered {} bytes, not 40",
            bytes.len()
        ));
    }
    let n = |i: usize| f64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (allowed, remaining, reset, retry) = (n(1), n(2), n(3), n(4));
    let whole = |x: f64| (x.is_finite() && x >= 0.0 && x.fract() == 0.0).then_some(x);
    match (whole(allowed), whole(remaining), whole(reset), whole(retry)) {
        (Some(a @ (0.0 | 1.0)), Some(remaining), Some(reset), Some(retry))
            if remaining <= f64::from(u32::MAX) =>
        {
            Ok(Decision {
                allowed: a == 1.0,
                remaining: remaining as u32,
                reset_secs: reset as u64,
                retry_after_secs: retry as u64,
            })
        }
        _ => Err(format!(
            "the limiter answered {allowed}, {remaining}, {reset}, {retry}"
        )),
    }
}

/// A number the shell gave for a held object; negative (or not a whole number) means none.
fn handle(num: f64) -> Option<usize> {
    (num >= 0.0 && num.fract() == 0.0).then_some(num as usize)
}

/// The platform one request's app sees.
#[derive(Clone)]
struct Driven {
    shared: Rc<Shared>,
    sys: &'static Sys,
}

/// A response as the Cache API stores it: it keeps only what `cache-control` allows, and the
/// entry carries its own TTL.
fn for_cache(response: &Response, ttl_secs: u64) -> Vec<(String, String)> {
    let mut headers = response.headers.clone();
    headers.retain(|(k, _)| k != "cache-control");
    headers.push((
        "cache-control".into(),
        format!("public, max-age={ttl_secs}"),
    ));
    headers
}

/// A WebCrypto algorithm object (`{name, namedCurve?, hash?}`), made of constants: nothing
/// is built per request.
#[derive(Debug, Serialize, PartialEq)]
pub struct WebCryptoAlg {
    name: &'static str,
    #[serde(rename = "namedCurve", skip_serializing_if = "Option::is_none")]
    named_curve: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash: Option<&'static str>,
}

pub const ED25519: WebCryptoAlg = WebCryptoAlg {
    name: "Ed25519",
    named_curve: None,
    hash: None,
};

/// The WebCrypto algorithm objects for importing and for verifying with `key`.
fn algorithms(key: &PublicKey) -> (WebCryptoAlg, WebCryptoAlg) {
    match key {
        PublicKey::Ed25519(_) => (ED25519, ED25519),
        PublicKey::P256(_) => (
            WebCryptoAlg {
                name: "ECDSA",
                named_curve: Some("P-256"),
                hash: None,
            },
            WebCryptoAlg {
                name: "ECDSA",
                named_curve: None,
                hash: Some("SHA-256"),
            },
        ),
    }
}

struct ImportedKey {
    kid: String,
    key: PublicKey,
    /// The shell's number for the imported `CryptoKey`.
    handle: u32,
}

thread_local! {
    /// Keys imported into WebCrypto, once per isolate, by `kid` and bytes (a key rotated under
    /// the same `kid` is imported afresh): as many as the JWKS has keys.
    static KEYS: RefCell<Vec<ImportedKey>> = const { RefCell::new(Vec::new()) };
}

impl Platform for Driven {
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        let key = key.to_owned();
        let answer = self.shared.ask(|t| Command::KvGet { t, key }).await;
        Ok(answer.ok(PlatformError::kv)?.bytes)
    }

    async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        ttl_secs: Option<u64>,
    ) -> Result<(), PlatformError> {
        let (key, b) = (key.to_owned(), self.shared.stash(value));
        let ttl = ttl_secs.map(|s| s.max(KV_MIN_TTL));
        let answer = self.shared.ask(|t| Command::KvPut { t, key, b, ttl }).await;
        answer.ok(PlatformError::kv).map(drop)
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Response>, PlatformError> {
        self.cache_match(key, Vec::new()).await
    }

    /// The Cache API answers the range itself (206, or 416), streaming the part from the entry.
    async fn cache_get_range(
        &self,
        key: &str,
        range: &str,
    ) -> Result<Option<Response>, PlatformError> {
        self.cache_match(key, vec![("range".into(), range.to_owned())])
            .await
    }

    async fn cache_put(
        &self,
        key: &str,
        response: &Response,
        ttl_secs: u64,
    ) -> Result<(), PlatformError> {
        let reply = self.put(key, response, ttl_secs);
        reply.await.ok(PlatformError::cache).map(drop)
    }

    /// A held body is teed by the shell (`Response.clone()`) when it starts the command, before
    /// the response that passes it on: one branch goes to the client, the other into the cache
    /// as it is read, never through Wasm.
    fn cache_put_copy(
        &self,
        key: &str,
        response: &mut Response,
        ttl_secs: u64,
    ) -> Result<edge_app::Storing, PlatformError> {
        let reply = self.put(key, response, ttl_secs);
        Ok(Box::pin(async move {
            reply.await.ok(PlatformError::cache).map(drop)
        }))
    }

    async fn rate_limit(&self, key: &str, quota: &Quota) -> Result<Decision, PlatformError> {
        let (key, q) = (key.to_owned(), [quota.limit, quota.window_secs]);
        let answer = self.shared.ask(|t| Command::Limit { t, key, q }).await;
        let bytes = answer.ok(PlatformError::rate_limit)?.bytes;
        decision_of(&bytes.unwrap_or_default()).map_err(PlatformError::rate_limit)
    }

    async fn fetch(&self, request: Request, timeout_ms: u32) -> Result<Response, PlatformError> {
        let b = (!request.body.is_empty()).then(|| self.shared.stash(&request.body));
        let answer = self
            .shared
            .ask(|t| Command::Fetch {
                t,
                url: request.url,
                method: request.method,
                headers: request.headers,
                b,
                ms: timeout_ms,
                pass: request.pass_through,
            })
            .await;
        let answer = answer.ok(PlatformError::unreachable)?;
        // A request the runtime would not build is this code's fault, not the origin's: no
        // region is blamed for it (`origin::attempt`).
        if answer.num == FETCH_NOT_SENT {
            return Err(PlatformError::bad_request(answer.text.unwrap_or_default()));
        }
        if answer.num == FETCH_TIMED_OUT {
            return Err(PlatformError::unreachable(format_args!(
                "timed out after {timeout_ms} ms"
            )));
        }
        answer.response(PlatformError::unreachable)
    }

    async fn body_bytes(&self, resp: &mut Response) -> Result<Vec<u8>, PlatformError> {
        match resp.native_body.take() {
            Some(h) => {
                let answer = self.shared.ask(|t| Command::Read { t, h }).await;
                Ok(answer.ok(PlatformError::cache)?.bytes.unwrap_or_default())
            }
            None => Ok(std::mem::take(&mut resp.body)),
        }
    }

    async fn asset(&self, file: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        // Workers serve `x.html` at `/x` (`html_handling`; `/x.html` answers a redirect there).
        let path = match file.strip_suffix(".html") {
            Some("index") => "",
            Some(page) => page,
            None => file,
        };
        // The binding reads the URL's path only; the host is a placeholder.
        let url = format!("https://assets.invalid/{path}");
        let answer = self.shared.ask(|t| Command::Asset { t, url }).await;
        let answer = answer.ok(PlatformError::assets)?;
        match answer.num as u16 {
            200 => Ok(Some(answer.bytes.unwrap_or_default())),
            404 => Ok(None),
            s => Err(PlatformError::assets(format_args!(
                "the assets binding answered {s} for {file}"
            ))),
        }
    }

    fn defer(&self, task: edge_app::Deferred) {
        self.shared.spawned.borrow_mut().push(task);
    }

    /// The Wasm instance lives as long as its isolate, which serves many requests.
    fn serves_many(&self) -> bool {
        true
    }

    async fn verify_signature(
        &self,
        kid: &str,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PlatformError> {
        let Some(public) = key.public_key() else {
            // HS256 is checked in Rust and never reaches the platform.
            return Ok(false);
        };
        // Both JWS encodings are exactly 64 bytes (Ed25519's R‖S, ES256's r‖s); anything else
        // is a refusal, not a question for WebCrypto.
        if signature.len() != 64 {
            return Ok(false);
        }
        let (import_alg, verify_alg) = algorithms(&public);
        let k = match imported(kid, &public) {
            Some(k) => k,
            None => {
                let b = self.shared.stash(public.as_bytes());
                let answer = self
                    .shared
                    .ask(|t| Command::ImportKey {
                        t,
                        format: "raw",
                        alg: import_alg,
                        usages: ["verify"],
                        b,
                    })
                    .await
                    .ok(PlatformError::crypto)?;
                let k = handle(answer.num)
                    .and_then(|k| u32::try_from(k).ok())
                    .ok_or_else(|| PlatformError::crypto("importKey gave no key"))?;
                remember(kid, public, k);
                k
            }
        };
        let sig = self.shared.stash(signature);
        let msg = self.shared.stash(message);
        let answer = self
            .shared
            .ask(|t| Command::Verify {
                t,
                alg: verify_alg,
                k,
                sig,
                msg,
            })
            .await
            .ok(PlatformError::crypto)?;
        Ok(answer.num == 1.0)
    }

    async fn sleep(&self, ms: u32) {
        // A timer cannot fail; an answer that says it did still ends the wait.
        let _ = self.shared.ask(|t| Command::Sleep { t, ms }).await;
    }

    fn now(&self) -> UnixTime {
        UnixTime(((self.sys.now_ms)() / 1000.0) as u64)
    }

    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), PlatformError> {
        (self.sys.random)(buf).map_err(PlatformError::random)
    }

    fn log_error(&self, message: &str) {
        (self.sys.log)(message);
    }
}

impl Driven {
    /// Issues the cache put of `response` now (its body stashed, or its held body named).
    fn put(&self, key: &str, response: &Response, ttl_secs: u64) -> Reply {
        let (key, status) = (key.to_owned(), response.status);
        let headers = for_cache(response, ttl_secs);
        let h = response.native_body;
        let b = h.is_none().then(|| self.shared.stash(&response.body));
        self.shared.ask(|t| Command::CachePut {
            t,
            key,
            status,
            headers,
            h,
            b,
        })
    }

    async fn cache_match(
        &self,
        key: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Option<Response>, PlatformError> {
        let key = key.to_owned();
        let answer = self
            .shared
            .ask(|t| Command::CacheMatch { t, key, headers })
            .await
            .ok(PlatformError::cache)?;
        if handle(answer.num).is_none() {
            return Ok(None);
        }
        answer.response(PlatformError::cache).map(Some)
    }
}

fn imported(kid: &str, key: &PublicKey) -> Option<u32> {
    KEYS.with(|keys| {
        keys.borrow()
            .iter()
            .find(|c| c.kid == kid && c.key == *key)
            .map(|c| c.handle)
    })
}

fn remember(kid: &str, key: PublicKey, handle: u32) {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        keys.retain(|c| c.kid != kid);
        keys.push(ImportedKey {
            kid: kid.to_owned(),
            key,
            handle,
        });
    });
}

type Main = Pin<Box<dyn Future<Output = Response>>>;

/// One request in flight.
pub struct Exchange {
    shared: Rc<Shared>,
    sys: &'static Sys,
    /// When it began (ms since the epoch).
    began_ms: f64,
    main: Option<Main>,
    deferred: Vec<edge_app::Deferred>,
}

/// The request as the shell reads it: method, URL, headers, `cf.country`, `cf.continent`.
type Head = (
    String,
    String,
    Vec<(String, String)>,
    Option<String>,
    Option<String>,
);

impl Exchange {
    /// Starts the app on a request whose head the shell gave as JSON ([`Head`]).
    pub fn begin(head: &str, config: EdgeConfig, sys: &'static Sys) -> Self {
        let shared = Rc::new(Shared::default());
        let platform = Driven {
            shared: shared.clone(),
            sys,
        };
        let head = serde_json::from_str::<Head>(head);
        let main: Main = Box::pin(async move {
            let Ok((method, url, headers, country, continent)) = head else {
                return EdgeError::Internal(
                    "the shell gave a request head that does not parse".into(),
                )
                .into_response();
            };
            // Anything declaring a larger body than a route takes is refused unread (the app's
            // own per-route caps apply to what is read).
            let declared = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > MAX_REQUEST_BODY) {
                return EdgeError::PayloadTooLarge.into_response();
            }
            let body = if method == "GET" || method == "HEAD" {
                Vec::new()
            } else {
                let max = MAX_REQUEST_BODY;
                let answer = platform.shared.ask(|t| Command::Body { t, max }).await;
                if answer.num == BODY_TOO_LARGE {
                    return EdgeError::PayloadTooLarge.into_response();
                }
                answer.bytes.unwrap_or_default()
            };
            let request = Request {
                // Set by Cloudflare's edge for every request; a client cannot supply its own.
                client_ip: headers
                    .iter()
                    .find(|(k, _)| k == "cf-connecting-ip")
                    .map(|(_, v)| v.clone()),
                // `request.cf` is Cloudflare's own geolocation. Under `wrangler dev` it is a
                // local stand-in that only a developer's environment (Miniflare) can set.
                country: country.and_then(|c| CountryCode::parse(&c).ok()),
                continent: continent.and_then(|c| Continent::parse(&c)),
                method,
                url,
                headers,
                body,
                pass_through: false,
            };
            edge_app::handle(&platform, &config, request).await
        });
        Self {
            shared,
            sys,
            began_ms: (sys.now_ms)(),
            main: Some(main),
            deferred: Vec::new(),
        }
    }

    /// Whether the exchange has outlived [`ABANDONED_AFTER_MS`] at `now_ms`. Dropping it drops
    /// its futures, and with them what they hold for other requests (an in-flight origin
    /// fetch's lead, so misses of the same object stop waiting for it).
    pub fn abandoned(&self, now_ms: f64) -> bool {
        now_ms - self.began_ms > ABANDONED_AFTER_MS
    }

    /// Takes the shell's answer to command `tag`.
    pub fn answer(&mut self, tag: u32, answer: Answer) {
        self.shared.answers.borrow_mut().insert(tag, answer);
        self.shared
            .outstanding
            .set(self.shared.outstanding.get().saturating_sub(1));
    }

    /// Runs the exchange's futures as far as their answers allow, and returns the commands
    /// they issued; the last is [`Command::End`] when nothing is left to do.
    pub fn step(&mut self) -> Step {
        let mut cx = Context::from_waker(Waker::noop());
        if let Some(main) = self.main.as_mut() {
            if let Poll::Ready(response) = main.as_mut().poll(&mut cx) {
                self.main = None;
                self.respond(response);
            }
        }
        // A deferred future may defer more; each is polled once it is known.
        let mut i = 0;
        loop {
            self.deferred
                .extend(self.shared.spawned.borrow_mut().drain(..));
            if i >= self.deferred.len() {
                break;
            }
            if self.deferred[i].as_mut().poll(&mut cx).is_ready() {
                drop(self.deferred.swap_remove(i));
            } else {
                i += 1;
            }
        }
        // Every pending future waits on a command; with none outstanding, nothing will ever
        // wake them. That is a bug here, not the request's: answer it and end.
        let stuck = self.shared.outstanding.get() == 0;
        if stuck && (self.main.is_some() || !self.deferred.is_empty()) {
            (self.sys.log)(
                "edge driver: futures wait with no command outstanding; ending the exchange",
            );
            if self.main.take().is_some() {
                self.respond(EdgeError::Internal("stalled exchange".into()).into_response());
            }
            self.deferred.clear();
        }
        let ended = self.main.is_none() && self.deferred.is_empty();
        if ended {
            self.shared.outbox.borrow_mut().push(Command::End);
        }
        let commands = std::mem::take(&mut *self.shared.outbox.borrow_mut());
        Step {
            commands: serde_json::to_string(&commands).expect("commands serialize"),
            payload: std::mem::take(&mut *self.shared.payload.borrow_mut()),
            ended,
        }
    }

    fn respond(&self, response: Response) {
        let command = respond(&self.shared, response);
        self.shared.outbox.borrow_mut().push(command);
    }
}

/// Bodies up to this size that are UTF-8 and have a `content-type` go in the respond command as
/// text: the shell then makes no further call into Wasm for them (most API answers, errors).
/// (Without a `content-type`, the runtime would give a text body one of its own.)
pub const INLINE_BODY: usize = 4096;

/// The command that sends `response`: its held body, or its body as text or as stashed bytes.
fn respond(shared: &Shared, response: Response) -> Command {
    let h = response.native_body;
    let (mut s, mut b) = (None, None);
    if h.is_none() && !response.body.is_empty() {
        let inline =
            response.body.len() <= INLINE_BODY && response.header("content-type").is_some();
        // Only a body that may go inline is checked for UTF-8.
        if !inline {
            b = Some(shared.stash(&response.body));
        } else {
            match String::from_utf8(response.body) {
                Ok(text) => s = Some(text),
                Err(e) => b = Some(shared.stash(e.as_bytes())),
            }
        }
    }
    Command::Respond {
        status: response.status,
        headers: response.headers,
        h,
        s,
        b,
    }
}

/// The driver's answer when a step fails in a way the shell must be told of: a 500 from the
/// app's own error type, then the end.
pub fn failure() -> Step {
    let shared = Shared::default();
    let response = EdgeError::Internal("the Wasm instance failed".into()).into_response();
    let commands = vec![respond(&shared, response), Command::End];
    Step {
        commands: serde_json::to_string(&commands).expect("commands serialize"),
        payload: shared.payload.take(),
        ended: true,
    }
}

#[cfg(test)]
mod tests;
