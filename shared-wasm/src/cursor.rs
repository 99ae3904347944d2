//! Page cursors, sealed by the origin and checked by the edge before anything else: a forged
//! cursor is a 400 at the edge, never a new cache key or an origin query.
//!
//! A cursor is `base64url(tag ‖ position)`: `tag` is the first 16 bytes of HMAC-SHA256 of the
//! position under a key derived from the edge↔origin secret (both sides hold it; deriving keeps
//! the request-signing key itself out of this use). The position stays readable (it is only
//! where a page ends); the tag is what makes it ours.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::hmac;

/// Longest cursor accepted, before decoding.
pub const MAX_CURSOR_LEN: usize = 200;
const TAG_LEN: usize = 16;

/// The key cursors are sealed with, derived from the edge↔origin secret.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl CursorKey {
    /// Derives the cursor key from the shared edge↔origin secret.
    pub fn derive(edge_secret: &[u8]) -> Self {
        Self(hmac::sign(edge_secret, &[b"edge-video page cursor v1"]))
    }

    /// A cursor for `position`.
    pub fn seal(&self, position: &str) -> String {
        let tag = hmac::sign(&self.0, &[position.as_bytes()]);
        let mut raw = tag[..TAG_LEN].to_vec();
        raw.extend_from_slice(position.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The position in `cursor`, if this key sealed it (compared in constant time).
    pub fn open(&self, cursor: &str) -> Option<String> {
        if cursor.len() > MAX_CURSOR_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let (tag, position) = raw.split_at_checked(TAG_LEN)?;
        if !hmac::verify(&self.0, &[position], tag) {
            return None;
        }
        String::from_utf8(position.to_vec()).ok()
    }
}

impl core::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_cursor_opens_and_nothing_else_does() {
        let key = CursorKey::derive(b"an edge secret of some length...");
        let c = key.seal("1700000000:v_abc");
        assert_eq!(key.open(&c).as_deref(), Some("1700000000:v_abc"));
        // Another key, a changed position, a cut tag, the unsealed form of old cursors, junk.
        let other = CursorKey::derive(b"another edge secret of some len.");
        assert_eq!(other.open(&c), None);
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(&URL_SAFE_NO_PAD.encode(&raw)), None);
        assert_eq!(key.open(&c[..20]), None);
        assert_eq!(key.open(&URL_SAFE_NO_PAD.encode("1700000000:v_abc")), None);
        for junk in ["", "!!", &"A".repeat(MAX_CURSOR_LEN + 1)] {
            assert_eq!(key.open(junk), None, "{junk:?}");
        }
    }
}
