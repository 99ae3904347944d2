//! Applying route-class quotas: per client address and, when known, per user; the stricter wins.

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
    let mut keys = vec![format!(
        "{}:{}",
        quota.name,
        client_key(req.client_ip.as_deref())
    )];
    if let Some(u) = user {
        keys.push(format!("{}:user:{u}", quota.name));
    }
    let mut decision: Option<Decision> = None;
    for key in &keys {
        match p.rate_limit(key, quota).await {
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
