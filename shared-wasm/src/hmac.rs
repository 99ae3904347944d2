//! The HMAC-SHA256 layer under playback tokens and edge-to-origin request signatures.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest tag [`verify`] accepts: 128 bits, the truncation floor of RFC 2104 §5 and NIST
/// SP 800-107. Shorter tags are refused rather than compared.
pub const MIN_TAG_LEN: usize = 16;

/// HMAC-SHA256 of `parts` concatenated, under `key`.
pub fn sign(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Checks `tag` against HMAC-SHA256 of `parts` in constant time. A tag shorter than 32 bytes is
/// compared against the leftmost bytes of the MAC (RFC 2104 truncation); below [`MIN_TAG_LEN`]
/// or above 32 bytes it is refused outright.
pub fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    if tag.len() < MIN_TAG_LEN || tag.len() > 32 {
        return false;
    }
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        mac.update(p);
    }
    // `verify_truncated_left` compares with `subtle`, in time independent of where bytes differ.
    mac.verify_truncated_left(tag).is_ok()
}
