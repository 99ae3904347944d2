//! Applying route-class quotas: per client address and, when known, per user; the stricter wins.

use futures_util::future::{join, OptionFuture};
use shared_wasm::ratelimit::{client_key, Decision, Quota};

use crate::error::EdgeError;
use crate::platform::{Platform, Request, Response};

/// A passed check, to be reported on the response.
pub struct Allowed<'a> {
    quota: &'a Quota,
    decision: Option<Decision>,
}

impl Allowed<'_> {
    /// Adds `RateLimit-Policy` and `RateLimit` to a successful response.
    pub fn annotate(&self, mut resp: Response) -> Response {
        if let Some(d) = self.decision {
            resp.headers
                .push(("ratelimit-policy".into(), self.quota.policy_header()));
            resp.headers
                .push(("ratelimit".into(), d.header(self.quota)));
        }
        resp
    }
}

/// Checks `quota` for the request's client address and for `user` if given.
///
/// A limiter that cannot be reached lets the request through (and logs): an outage of the
/// limiter's storage must not take playback down with it.
pub async fn enforce<'a, P: Platform>(
    p: &P,
    quota: &'a Quota,
    req: &Request,
    user: Option<&str>,
) -> Result<Allowed<'a>, EdgeError> {
    let address = format!("{}:{}", quota.name, client_key(req.client_ip.as_deref()));
    let user = user.map(|u| format!("{}:user:{u}", quota.name));
    // Both limiters are asked at once: on Workers each key is its own Durable Object, maybe
    // in another location, so a signed-in request waits for one round trip, not two. Both
    // count the request whatever the other decides, as before.
    let (by_address, by_user) = join(
        p.rate_limit(&address, quota),
        OptionFuture::from(user.as_ref().map(|key| p.rate_limit(key, quota))),
    )
    .await;
    let mut decision: Option<Decision> = None;
    for answer in std::iter::once(by_address).chain(by_user) {
        match answer {
            Ok(d) => decision = Some(decision.map_or(d, |prev| prev.stricter(d))),
            Err(e) => p.log_error(&format!("rate limiter unavailable, allowing: {e}")),
        }
    }
    match decision {
        Some(d) if !d.allowed => Err(EdgeError::RateLimited {
            quota: quota.clone(),
            decision: d,
        }),
        _ => Ok(Allowed { quota, decision }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{block_on, MemPlatform};

    fn from(ip: &str) -> Request {
        Request {
            client_ip: Some(ip.into()),
            ..Request::default()
        }
    }

    #[test]
    fn the_address_and_the_user_both_count_and_the_stricter_decides() {
        let p = MemPlatform::new(|_, _| unreachable!("no origin")).with_limiter();
        let quota = Quota::new("playback", 2, 60).unwrap();
        let remaining = |r: Result<Allowed, EdgeError>| match r {
            Ok(a) => a.decision.map(|d| d.remaining),
            Err(e) => panic!("refused: {e:?}"),
        };
        let enforce = |ip: &str, user: Option<&str>| block_on(enforce(&p, &quota, &from(ip), user));

        assert_eq!(remaining(enforce("192.0.2.1", Some("u1"))), Some(1));
        // A fresh address, the user's second request: the user's quota is the stricter.
        assert_eq!(remaining(enforce("192.0.2.2", Some("u1"))), Some(0));
        // The user's third is refused though its address is fresh, and the address counts it.
        assert!(matches!(
            enforce("192.0.2.3", Some("u1")),
            Err(EdgeError::RateLimited { .. })
        ));
        assert_eq!(remaining(enforce("192.0.2.3", None)), Some(0));
        // Another user from the first address: one left there.
        assert_eq!(remaining(enforce("192.0.2.1", Some("u2"))), Some(0));
        assert!(p.logs.borrow().is_empty(), "{:?}", p.logs.borrow());
    }

    #[test]
    fn an_unreachable_limiter_lets_the_request_through_and_says_so() {
        let p = MemPlatform::new(|_, _| unreachable!("no origin"));
        let quota = Quota::new("api", 1, 60).unwrap();
        for _ in 0..3 {
            let allowed = block_on(enforce(&p, &quota, &from("192.0.2.1"), Some("u1"))).unwrap();
            assert!(allowed.decision.is_none());
        }
        assert_eq!(p.logs.borrow().len(), 6, "each of the two calls is logged");
    }
}
