//! An in-memory [`Platform`] for unit tests of logic that spans KV and the origin: KV is a map,
//! and the origin is a function that may also change KV while "in flight" (a sync landing
//! during a read-through). Every future is ready at once, so [`block_on`] needs no runtime.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use shared_wasm::jwk::VerifyingKey;
use shared_wasm::ratelimit::{self, Decision, Quota};
use shared_wasm::UnixTime;

use crate::platform::{Deferred, Platform, PlatformError, Request, Response, Storing};

type Origin = Rc<dyn Fn(&MemPlatform, &Request) -> Result<Response, PlatformError>>;

/// KV in a map, a fixed clock, fixed "random" bytes, log lines kept, and an origin answered by
/// a closure. Clones share everything.
#[derive(Clone)]
pub struct MemPlatform {
    pub kv: Rc<RefCell<HashMap<String, Vec<u8>>>>,
    pub logs: Rc<RefCell<Vec<String>>>,
    /// How many signatures [`Platform::verify_signature`] was asked to check.
    pub signature_checks: Rc<std::cell::Cell<usize>>,
    /// The web app's built files, by name.
    pub assets: Rc<RefCell<HashMap<String, String>>>,
    /// The cache, when a test gives it one ([`MemPlatform::with_cache`]); without, every read
    /// misses and every write is dropped.
    pub cache: Option<Rc<RefCell<HashMap<String, Response>>>>,
    /// Work handed to [`Platform::defer`], run by [`MemPlatform::run_deferred`].
    pub deferred: Rc<RefCell<Vec<Deferred>>>,
    /// Each key's GCRA theoretical arrival time, when a test gives the platform a limiter
    /// ([`MemPlatform::with_limiter`]); without, every limiter call fails.
    pub limiter: Option<Rc<RefCell<HashMap<String, u64>>>>,
    /// What [`Platform::serves_many`] answers (false, as on Spin, unless a test says).
    pub serves_many: Rc<std::cell::Cell<bool>>,
    origin: Origin,
}

/// What [`MemPlatform::random_bytes`] fills every byte with.
pub const RANDOM_BYTE: u8 = 0x5a;

impl MemPlatform {
    pub fn new(origin: impl Fn(&MemPlatform, &Request) -> Response + 'static) -> Self {
        Self::fallible(move |p, req| Ok(origin(p, req)))
    }

    /// A platform whose outbound requests may fail as the runtime's would.
    pub fn fallible(
        origin: impl Fn(&MemPlatform, &Request) -> Result<Response, PlatformError> + 'static,
    ) -> Self {
        Self {
            kv: Rc::default(),
            logs: Rc::default(),
            signature_checks: Rc::default(),
            assets: Rc::default(),
            cache: None,
            deferred: Rc::default(),
            limiter: None,
            serves_many: Rc::default(),
            origin: Rc::new(origin),
        }
    }

    /// This platform with a cache that keeps what is put.
    pub fn with_cache(mut self) -> Self {
        self.cache = Some(Rc::default());
        self
    }

    /// This platform with a rate limiter that keeps its state (the shared GCRA).
    pub fn with_limiter(mut self) -> Self {
        self.limiter = Some(Rc::default());
        self
    }

    /// Runs the deferred work, as a runtime does after the response.
    pub fn run_deferred(&self) {
        let tasks = std::mem::take(&mut *self.deferred.borrow_mut());
        for task in tasks {
            block_on(task);
        }
    }
}

impl Platform for MemPlatform {
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        Ok(self.kv.borrow().get(key).cloned())
    }
    async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        _ttl: Option<u64>,
    ) -> Result<(), PlatformError> {
        self.kv.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    async fn cache_get(&self, key: &str) -> Result<Option<Response>, PlatformError> {
        Ok(self
            .cache
            .as_ref()
            .and_then(|c| c.borrow().get(key).cloned()))
    }
    async fn cache_put(&self, key: &str, r: &Response, _: u64) -> Result<(), PlatformError> {
        if let Some(c) = &self.cache {
            c.borrow_mut().insert(key.to_owned(), r.clone());
        }
        Ok(())
    }
    fn cache_put_copy(
        &self,
        key: &str,
        response: &mut Response,
        ttl_secs: u64,
    ) -> Result<Storing, PlatformError> {
        let (p, key, copy) = (self.clone(), key.to_owned(), response.clone());
        Ok(Box::pin(
            async move { p.cache_put(&key, &copy, ttl_secs).await },
        ))
    }
    async fn rate_limit(&self, key: &str, quota: &Quota) -> Result<Decision, PlatformError> {
        let Some(limiter) = &self.limiter else {
            return Err(PlatformError::rate_limit("not in these tests"));
        };
        let mut tats = limiter.borrow_mut();
        let (decision, tat) = ratelimit::check(quota, tats.get(key).copied(), self.now().0 * 1000);
        tats.insert(key.to_owned(), tat);
        Ok(decision)
    }
    async fn fetch(&self, request: Request, _timeout_ms: u32) -> Result<Response, PlatformError> {
        (self.origin)(self, &request)
    }
    async fn verify_signature(
        &self,
        _kid: &str,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PlatformError> {
        self.signature_checks.set(self.signature_checks.get() + 1);
        Ok(shared_wasm::jwt::verify_raw(key, message, signature))
    }
    async fn asset(&self, file: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        Ok(self
            .assets
            .borrow()
            .get(file)
            .map(|s| s.clone().into_bytes()))
    }
    fn defer(&self, task: Deferred) {
        self.deferred.borrow_mut().push(task);
    }
    fn serves_many(&self) -> bool {
        self.serves_many.get()
    }
    async fn sleep(&self, _ms: u32) {}
    fn now(&self) -> UnixTime {
        UnixTime(1_800_000_000)
    }
    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), PlatformError> {
        buf.fill(RANDOM_BYTE);
        Ok(())
    }
    fn log_error(&self, message: &str) {
        self.logs.borrow_mut().push(message.to_owned());
    }
}

/// Runs a future whose every await is ready at once (all of [`MemPlatform`]'s are).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a MemPlatform future was not ready"),
    }
}

/// A complete configuration with one origin region and test secrets.
pub fn config() -> crate::EdgeConfig {
    let cfg = config_with(&[]);
    cfg.check().expect("test config");
    cfg
}

/// What a segment served from the cache reads, in order: the playback section and the site's.
pub const SEGMENT_SETTINGS: [&str; 7] = [
    "PLAYBACK_KEYS",
    "PLAYBACK_ACTIVE_KID",
    "PLAYBACK_TOKEN_TTL_SECS",
    "PLAYBACK_LEEWAY_SECS",
    "PLAYBACK_BIND_IP",
    "PLAYBACK_BIND_COUNTRY",
    "CACHE_HOST",
];

/// The playback keys of [`config`].
pub fn playback_keys() -> shared_wasm::playback::PlaybackKeys {
    config().playback().expect("test config").keys.clone()
}

/// [`config`] with some settings given other values (an empty one reads as unset), not checked:
/// a test may break a setting on purpose.
pub fn config_with(changed: &[(&'static str, &str)]) -> crate::EdgeConfig {
    config_asked(changed).0
}

/// [`config_with`], and the names of the settings it is asked for, in order.
pub fn config_asked(
    changed: &[(&'static str, &str)],
) -> (crate::EdgeConfig, Rc<RefCell<Vec<String>>>) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let key = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let mut settings: HashMap<&str, String> = [
        ("ORIGIN_URL", "http://127.0.0.1:1".to_owned()),
        ("EDGE_ORIGIN_SECRET", "s".repeat(32)),
        ("SYNC_SECRET", "y".repeat(32)),
        ("PLAYBACK_KEYS", format!("k1:{key}")),
        ("PLAYBACK_ACTIVE_KID", "k1".to_owned()),
        ("JWT_ISSUER", "iss".to_owned()),
        ("JWT_AUDIENCE", "aud".to_owned()),
    ]
    .into();
    settings.extend(changed.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let asked = Rc::new(RefCell::new(Vec::new()));
    let noted = asked.clone();
    let cfg = crate::EdgeConfig::new(move |k| {
        noted.borrow_mut().push(k.to_owned());
        settings.get(k).cloned()
    });
    (cfg, asked)
}

/// A ready, public, unrestricted video record `id` at version 1; tests set what they vary with
/// struct update syntax.
pub fn video_record(id: &str) -> shared_wasm::record::VideoRecord {
    use shared_wasm::record::{VideoRecord, VideoState, Visibility};
    VideoRecord {
        v: 1,
        id: shared_wasm::VideoId::parse(id).unwrap(),
        title: "t".into(),
        visibility: Visibility::Public,
        state: VideoState::Ready,
        duration_ms: None,
        countries: None,
        taken_down: false,
        binding: None,
        category: None,
        updated_at: 0,
        version: 1,
    }
}

/// The test origin's Ed25519 signing key, `ed-1` in its JWKS.
pub fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
}

/// The test origin's `/.well-known/jwks.json` answer: the key `ed-1`.
pub fn jwks_response() -> Response {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let x = URL_SAFE_NO_PAD.encode(signing_key().verifying_key().as_bytes());
    let jwks = format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"ed-1","x":"{x}"}}]}}"#
    );
    Response::new(200, "application/json", jwks.into_bytes())
}

/// A token with `header` for user `sub` (role `user`, issued 10 s before the platform's clock,
/// for 10 minutes), signed with [`signing_key`] whatever the header says.
pub fn access_token(header: &str, sub: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::Signer;
    let now = 1_800_000_000u64;
    let claims = format!(
        r#"{{"sub":"{sub}","role":"user","iss":"iss","aud":"aud","exp":{},"iat":{}}}"#,
        now + 600,
        now - 10
    );
    let b64 = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = signing_key().sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}
