//! HTTP byte ranges (RFC 9110 §14): a `Range` header read as one byte range, resolved against
//! a representation's length once the server knows it. Media players ask for one range at a
//! time; a header with several ranges (or a syntax error, or another unit) is ignored and the
//! whole representation served, which RFC 9110 §14.2 allows, so no multipart answer is ever
//! built.

/// One range as asked for, before the length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `bytes=start-` or `bytes=start-end` (`end` inclusive).
    From {
        /// First byte.
        start: u64,
        /// Last byte, if given.
        end: Option<u64>,
    },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// The single byte range `header` asks for; `None` when the header is to be ignored (another
/// unit, several ranges, or not the grammar of RFC 9110 §14.1.1).
pub fn parse(header: &str) -> Option<Spec> {
    let (unit, set) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (first, last) = set.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let start = digits(first)?;
    let end = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    if end.is_some_and(|e| e < start) {
        return None;
    }
    Some(Spec::From { start, end })
}

/// A run of ASCII digits that fits in a `u64` (no sign, no hex, no spaces inside).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Spec {
    /// The bytes `(first, last)` (inclusive) of a representation of `len` bytes; `None` when
    /// the range does not overlap it (answer 416 with `Content-Range: bytes */{len}`).
    pub fn resolve(self, len: u64) -> Option<(u64, u64)> {
        if len == 0 {
            return None;
        }
        match self {
            Spec::From { start, .. } if start >= len => None,
            Spec::From { start, end } => Some((start, end.map_or(len - 1, |e| e.min(len - 1)))),
            Spec::Suffix(0) => None,
            Spec::Suffix(n) => Some((len - n.min(len), len - 1)),
        }
    }
}

impl std::fmt::Display for Spec {
    /// The `Range` header value that asks for this range (`bytes=0-499`, `bytes=500-`,
    /// `bytes=-500`): what an intermediary sends on, in one spelling whatever the client's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spec::From { start, end: None } => write!(f, "bytes={start}-"),
            Spec::From {
                start,
                end: Some(end),
            } => write!(f, "bytes={start}-{end}"),
            Spec::Suffix(n) => write!(f, "bytes=-{n}"),
        }
    }
}

/// The representation's length in a `Content-Range` (`bytes 0-499/10000` or `bytes */10000`);
/// `None` when it is unknown (`/*`) or the header is not of that grammar.
pub fn total_of(content_range: &str) -> Option<u64> {
    let rest = content_range.trim().strip_prefix("bytes ")?;
    let (part, total) = rest.split_once('/')?;
    if part != "*"
        && !part
            .split_once('-')
            .is_some_and(|(a, b)| digits(a).is_some() && digits(b).is_some())
    {
        return None;
    }
    digits(total)
}

/// `Content-Range` of a 206: `bytes first-last/len`.
pub fn content_range(first: u64, last: u64, len: u64) -> String {
    format!("bytes {first}-{last}/{len}")
}

/// `Content-Range` of a 416: `bytes */len`.
pub fn unsatisfied(len: u64) -> String {
    format!("bytes */{len}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_is_read_and_resolved() {
        let r = |h: &str, len| parse(h).and_then(|s| s.resolve(len));
        assert_eq!(r("bytes=0-499", 10_000), Some((0, 499)));
        assert_eq!(r("BYTES=9500-", 10_000), Some((9500, 9999)));
        assert_eq!(r("bytes=-500", 10_000), Some((9500, 9999)));
        assert_eq!(r("bytes=-20000", 10_000), Some((0, 9999)));
        assert_eq!(r("bytes=0-99999", 10_000), Some((0, 9999)));
        assert_eq!(parse("bytes=10000-").unwrap().resolve(10_000), None);
        assert_eq!(parse("bytes=-0").unwrap().resolve(10_000), None);
        assert_eq!(parse("bytes=0-").unwrap().resolve(0), None);
        assert_eq!(parse("bytes=18446744073709551616-"), None, "past u64");
        assert_eq!(parse("bytes=+1-2"), None);
        assert_eq!(parse("items=0-1"), None);
        assert_eq!(content_range(0, 499, 10_000), "bytes 0-499/10000");
        assert_eq!(unsatisfied(10_000), "bytes */10000");
        assert_eq!(total_of("bytes 0-499/10000"), Some(10_000));
        assert_eq!(total_of("bytes */10000"), Some(10_000));
        assert_eq!(total_of("bytes 0-499/*"), None);
        assert_eq!(total_of("bytes x-1/10"), None);
        assert_eq!(total_of("items 0-1/10"), None);
    }

    #[test]
    fn a_range_is_sent_on_in_one_spelling() {
        for h in ["bytes=0-499", "bytes=9500-", "bytes=-500"] {
            assert_eq!(parse(h).unwrap().to_string(), h);
        }
        assert_eq!(parse(" BYTES = 7 - 9 ").unwrap().to_string(), "bytes=7-9");
    }
}
