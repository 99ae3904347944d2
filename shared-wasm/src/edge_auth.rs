//! How the edge proves itself to the origin.
//!
//! Media and internal records are served by the origin only to the edge. A static bearer secret
//! would be replayable forever once it leaked into one log line, so each request carries an HMAC
//! over its method, path and a timestamp instead, checked within a short window:
//!
//! ```text
//! x-edge-auth: v1.<unix seconds>.<base64url HMAC-SHA256(secret, DOMAIN ‖ method ‖ \n ‖ path ‖ \n ‖ t)>
//! ```
//!
//! Only idempotent reads use it today, so a replay inside the window gains nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use thiserror::Error;

use crate::{hmac, UnixTime};

/// The request header that carries the proof.
pub const HEADER: &str = "x-edge-auth";
const DOMAIN: &[u8] = b"edge-video/edge-to-origin/v1\0";
/// How far the stamped time may be from the origin's clock, either way.
pub const WINDOW_SECS: u64 = 60;
/// Shortest shared secret accepted.
pub const MIN_SECRET_LEN: usize = 32;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EdgeAuthError {
    /// Header absent.
    #[error("missing edge credentials")]
    Missing,
    /// Not `v1.<t>.<sig>`.
    #[error("malformed edge credentials")]
    Malformed,
    /// Outside the window.
    #[error("stale edge credentials")]
    Stale,
    /// Signature mismatch.
    #[error("bad edge credentials")]
    BadSignature,
}

fn message<'a>(method: &'a str, path: &'a str, t: &'a str) -> [&'a [u8]; 6] {
    [
        DOMAIN,
        method.as_bytes(),
        b"\n",
        path.as_bytes(),
        b"\n",
        t.as_bytes(),
    ]
}

/// The header value for a request of `method` to `path` (path and query as sent).
pub fn sign(secret: &[u8], method: &str, path: &str, now: UnixTime) -> String {
    let t = now.0.to_string();
    let tag = hmac::sign(secret, &message(method, path, &t));
    format!("v1.{}.{}", now.0, URL_SAFE_NO_PAD.encode(tag))
}

/// Checks a header value for `method` and `path` at `now`.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    method: &str,
    path: &str,
    now: UnixTime,
) -> Result<(), EdgeAuthError> {
    let header = header.ok_or(EdgeAuthError::Missing)?;
    let mut parts = header.splitn(3, '.');
    let (Some("v1"), Some(t), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(EdgeAuthError::Malformed);
    };
    let t: u64 = t.parse().map_err(|_| EdgeAuthError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| EdgeAuthError::Malformed)?;
    if t.abs_diff(now.0) > WINDOW_SECS {
        return Err(EdgeAuthError::Stale);
    }
    let t = t.to_string();
    if sig.len() == 32 && hmac::verify(secret, &message(method, path, &t), &sig) {
        Ok(())
    } else {
        Err(EdgeAuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[u8] = &[7u8; 32];

    #[test]
    fn round_trip_and_binding() {
        let h = sign(S, "GET", "/internal/media/a/master.m3u8", UnixTime(1000));
        assert_eq!(
            verify(
                S,
                Some(&h),
                "GET",
                "/internal/media/a/master.m3u8",
                UnixTime(1030)
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                S,
                Some(&h),
                "GET",
                "/internal/media/b/master.m3u8",
                UnixTime(1000)
            ),
            Err(EdgeAuthError::BadSignature)
        );
        assert_eq!(
            verify(
                S,
                Some(&h),
                "POST",
                "/internal/media/a/master.m3u8",
                UnixTime(1000)
            ),
            Err(EdgeAuthError::BadSignature)
        );
        assert_eq!(
            verify(
                &[8u8; 32],
                Some(&h),
                "GET",
                "/internal/media/a/master.m3u8",
                UnixTime(1000)
            ),
            Err(EdgeAuthError::BadSignature)
        );
    }

    #[test]
    fn window_and_shape() {
        let h = sign(S, "GET", "/p", UnixTime(1000));
        assert_eq!(
            verify(S, Some(&h), "GET", "/p", UnixTime(1061)),
            Err(EdgeAuthError::Stale)
        );
        assert_eq!(
            verify(S, Some(&h), "GET", "/p", UnixTime(939)),
            Err(EdgeAuthError::Stale)
        );
        assert_eq!(
            verify(S, None, "GET", "/p", UnixTime(1000)),
            Err(EdgeAuthError::Missing)
        );
        for bad in ["", "v1", "v2.1000.AAAA", "v1.x.AAAA", "v1.1000.***"] {
            assert_eq!(
                verify(S, Some(bad), "GET", "/p", UnixTime(1000)),
                Err(EdgeAuthError::Malformed),
                "{bad}"
            );
        }
    }
}
