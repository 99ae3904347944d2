//! Each request's id (`x-request-id`): kept from the client when valid, else made from the
//! runtime's randomness; sent to the origin on every call made for the request, written in
//! every log line of it, and returned on the response.
//!
//! The id travels with the platform handle ([`Traced`]) rather than through every handler's
//! arguments: every origin call goes through [`Platform::fetch`] and every log line through
//! [`Platform::log_error`], deferred work (a feed's revalidation) included.

use std::rc::Rc;

use shared_wasm::jwk::VerifyingKey;
use shared_wasm::ratelimit::{Decision, Quota};
use shared_wasm::{RequestId, UnixTime};

use crate::platform::{Deferred, Platform, PlatformError, Request, Response, Storing};

/// The id for `req`: its own `x-request-id` when valid, else a fresh one.
pub fn assign<P: Platform>(p: &P, req: &Request) -> RequestId {
    RequestId::keep_or(req.header(RequestId::HEADER), || {
        let mut bytes = [0u8; 16];
        if let Err(e) = p.random_bytes(&mut bytes) {
            // Never seen; the request is still served, under an id that says what happened.
            p.log_error(&format!("no randomness for a request id: {e}"));
        }
        bytes
    })
}

/// A platform handle for one request: its origin calls carry the request's id, and its log
/// lines start with it. Everything else is the runtime's own.
#[derive(Clone)]
pub struct Traced<P> {
    inner: P,
    id: Rc<str>,
}

impl<P> Traced<P> {
    /// Wraps `inner` for the request `id`.
    pub fn new(inner: P, id: &RequestId) -> Self {
        Self {
            inner,
            id: id.as_str().into(),
        }
    }
}

impl<P: Platform> Platform for Traced<P> {
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        self.inner.kv_get(key).await
    }

    async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        ttl_secs: Option<u64>,
    ) -> Result<(), PlatformError> {
        self.inner.kv_put(key, value, ttl_secs).await
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Response>, PlatformError> {
        self.inner.cache_get(key).await
    }

    async fn cache_get_range(
        &self,
        key: &str,
        range: &str,
    ) -> Result<Option<Response>, PlatformError> {
        self.inner.cache_get_range(key, range).await
    }

    async fn body_bytes(&self, resp: &mut Response) -> Result<Vec<u8>, PlatformError> {
        self.inner.body_bytes(resp).await
    }

    fn cache_put_copy(
        &self,
        key: &str,
        response: &mut Response,
        ttl_secs: u64,
    ) -> Result<Storing, PlatformError> {
        self.inner.cache_put_copy(key, response, ttl_secs)
    }

    async fn cache_put(
        &self,
        key: &str,
        response: &Response,
        ttl_secs: u64,
    ) -> Result<(), PlatformError> {
        self.inner.cache_put(key, response, ttl_secs).await
    }

    async fn rate_limit(&self, key: &str, quota: &Quota) -> Result<Decision, PlatformError> {
        self.inner.rate_limit(key, quota).await
    }

    async fn asset(&self, file: &str) -> Result<Option<Vec<u8>>, PlatformError> {
        self.inner.asset(file).await
    }

    async fn verify_signature(
        &self,
        kid: &str,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, PlatformError> {
        self.inner
            .verify_signature(kid, key, message, signature)
            .await
    }

    /// Every outbound request is to an origin, and carries the id.
    async fn fetch(
        &self,
        mut request: Request,
        timeout_ms: u32,
    ) -> Result<Response, PlatformError> {
        request
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(RequestId::HEADER));
        request
            .headers
            .push((RequestId::HEADER.into(), self.id.to_string()));
        self.inner.fetch(request, timeout_ms).await
    }

    fn defer(&self, task: Deferred) {
        self.inner.defer(task);
    }

    fn serves_many(&self) -> bool {
        self.inner.serves_many()
    }

    async fn sleep(&self, ms: u32) {
        self.inner.sleep(ms).await;
    }

    fn now(&self) -> UnixTime {
        self.inner.now()
    }

    fn random_bytes(&self, buf: &mut [u8]) -> Result<(), PlatformError> {
        self.inner.random_bytes(buf)
    }

    fn log_error(&self, message: &str) {
        self.inner
            .log_error(&format!("request_id={} {message}", self.id));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use shared_wasm::RequestId;

    use crate::platform::{Request, Response};
    use crate::testing::{block_on, config, MemPlatform, RANDOM_BYTE};

    /// A login through the edge to an origin that notes the id it was sent and answers with
    /// one of its own; the response and the origin's note.
    fn login(incoming: Option<&str>) -> (Response, Option<String>, Vec<String>) {
        let seen = Rc::new(RefCell::new(None));
        let noted = seen.clone();
        let p = MemPlatform::new(move |_, req| {
            *noted.borrow_mut() = req.header(RequestId::HEADER).map(str::to_owned);
            Response::new(200, "application/json", b"{}".to_vec())
                .with_header(RequestId::HEADER, "the-origin-s-own")
        });
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(id) = incoming {
            headers.push((RequestId::HEADER.to_owned(), id.to_owned()));
        }
        let req = Request {
            method: "POST".into(),
            url: "https://edge.example/v1/auth/login".into(),
            headers,
            body: br#"{"email":"a@example.com","password":"pw"}"#.to_vec(),
            ..Request::default()
        };
        let cfg = config();
        let resp = block_on(crate::handle(&p, &cfg, req));
        let logs = p.logs.borrow().clone();
        let seen = seen.borrow().clone();
        (resp, seen, logs)
    }

    fn ids_on(resp: &Response) -> Vec<&str> {
        resp.headers
            .iter()
            .filter(|(k, _)| k == RequestId::HEADER)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn a_fresh_id_goes_to_the_origin_the_log_and_the_response() {
        let (resp, seen, logs) = login(None);
        let made = RequestId::from_random([RANDOM_BYTE; 16]);
        assert_eq!(resp.status, 200);
        assert_eq!(ids_on(&resp), [made.as_str()], "one id, the edge's");
        assert_eq!(seen.as_deref(), Some(made.as_str()));
        // The in-memory platform has no rate limiter: that failure is logged, with the id.
        assert!(!logs.is_empty());
        for line in logs {
            assert!(line.starts_with(&format!("request_id={made} ")), "{line}");
        }
    }

    #[test]
    fn a_valid_incoming_id_is_kept_and_any_other_replaced() {
        let theirs = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let (resp, seen, _) = login(Some(theirs));
        assert_eq!(
            (ids_on(&resp), seen.as_deref()),
            (vec![theirs], Some(theirs))
        );
        let made = RequestId::from_random([RANDOM_BYTE; 16]);
        for forged in ["x\r\nset-cookie: a=b", "a b", &"a".repeat(65)] {
            let (resp, seen, _) = login(Some(forged));
            assert_eq!(ids_on(&resp), [made.as_str()], "{forged:?}");
            assert_eq!(seen.as_deref(), Some(made.as_str()), "{forged:?}");
        }
    }

    #[test]
    fn a_refusal_carries_the_id_too() {
        let p = MemPlatform::new(|_, _| unreachable!("nothing is forwarded"));
        let req = Request {
            method: "GET".into(),
            url: "https://edge.example/no/such/route".into(),
            headers: vec![(RequestId::HEADER.into(), "abc".into())],
            ..Request::default()
        };
        let cfg = config();
        let resp = block_on(crate::handle(&p, &cfg, req));
        assert_eq!((resp.status, ids_on(&resp)), (404, vec!["abc"]));
    }
}
