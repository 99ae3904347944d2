//! `Stripe-Signature` verification, as Stripe specifies it: the header is `t=<unix seconds>`
//! and one or more `v1=<hex HMAC-SHA256>` (other schemes, `v0` among them, are ignored); the
//! signed payload is `"{t}.{raw body}"` keyed by the whole endpoint secret (`whsec_…` included);
//! any `v1` matching any configured secret is enough (that is how secrets are rolled); a
//! timestamp further than the tolerance from now is refused.

/// Why a signature was refused (the `reason` of the 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No header.
    Missing,
    /// No single integer `t`, an over-long header, or a part that is not `key=value`.
    Malformed,
    /// No `v1` signature.
    NoV1,
    /// `t` too far from now.
    Stale,
    /// No `v1` matches any secret.
    Mismatch,
}

impl Refusal {
    /// The stable code sent to the caller.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed => "malformed_signature",
            Self::NoV1 => "no_v1_signature",
            Self::Stale => "timestamp_outside_tolerance",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

/// Bounds the work an unauthenticated header can cause.
const MAX_HEADER: usize = 4096;
const MAX_V1: usize = 16;

/// Checks `header` over `body` against each of `secrets`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: u64,
    tolerance_secs: u64,
) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Missing)?;
    if header.len() > MAX_HEADER {
        return Err(Refusal::Malformed);
    }
    let mut t: Option<&str> = None;
    let mut v1: Vec<[u8; 32]> = Vec::new();
    let mut v1_parts = 0usize;
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(Refusal::Malformed)?;
        match k {
            "t" if t.is_none() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                t = Some(v)
            }
            "t" => return Err(Refusal::Malformed),
            // A v1 that is not 64 hex digits cannot match; it still counts as present.
            "v1" if v1_parts < MAX_V1 => {
                v1_parts += 1;
                let mut sig = [0u8; 32];
                if hex::decode_to_slice(v, &mut sig).is_ok() {
                    v1.push(sig);
                }
            }
            "v1" => return Err(Refusal::Malformed),
            _ => {} // v0 and future schemes
        }
    }
    let t = t.ok_or(Refusal::Malformed)?;
    if v1_parts == 0 {
        return Err(Refusal::NoV1);
    }
    let stamp: u64 = t.parse().map_err(|_| Refusal::Malformed)?;
    if stamp.abs_diff(now) > tolerance_secs {
        return Err(Refusal::Stale);
    }
    // The timestamp as it was sent: its exact digits are what was signed.
    let signed: [&[u8]; 3] = [t.as_bytes(), b".", body];
    let matched = secrets.iter().any(|secret| {
        v1.iter()
            .any(|sig| shared_wasm::hmac::verify(secret.as_bytes(), &signed, sig))
    });
    if matched {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // HMAC-SHA256("k", "1.abc") as Python's `hmac` computes it.
    const TAG: &str = "8d0fdb7256574f0756ae6d5dd2985576df0ed4f550ac078f32d9b5700c72c734";

    #[test]
    fn the_signed_payload_is_timestamp_dot_raw_body() {
        let header = format!("t=1,v1={TAG}");
        assert_eq!(verify(Some(&header), b"abc", &["k"], 1, 300), Ok(()));
        assert_eq!(
            verify(Some(&header), b"abc ", &["k"], 1, 300),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), b"abc", &["other", "k"], 1, 300),
            Ok(())
        );
        assert_eq!(
            verify(Some(&header), b"abc", &["k"], 302, 300),
            Err(Refusal::Stale)
        );
    }
}
