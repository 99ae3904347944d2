//! Values decoded from KV bytes, kept by those bytes where an instance serves many requests (a
//! Worker's isolate). Every segment of a popular video reads the same video record: comparing
//! its bytes costs far less than decoding its CBOR again. The key is the bytes themselves, so
//! a record that changed in KV is decoded afresh at once: the memo never answers with anything
//! KV does not hold now.

use std::cell::RefCell;
use std::collections::HashMap;
use std::thread::LocalKey;

/// Records larger than this are decoded each time (records are a few hundred bytes).
pub const MAX_KEPT_BYTES: usize = 4096;
/// Entries kept per kind of value: with [`MAX_KEPT_BYTES`], at most 1 MiB of bytes each.
pub const MAX_ENTRIES: usize = 256;

/// Decoded values by the bytes they were decoded from.
pub struct Memo<T>(HashMap<Vec<u8>, T>);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<T: Clone> Memo<T> {
    /// What `decode` makes of `bytes`: kept from an earlier call with the same bytes, or
    /// decoded now (and kept, if it decoded and is small enough). When full, the memo starts
    /// afresh: churn through many records costs their decoding, as without a memo, and the
    /// popular ones are kept again at their next read.
    pub fn decoded(&mut self, bytes: &[u8], decode: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
        if let Some(value) = self.0.get(bytes) {
            return Some(value.clone());
        }
        let value = decode(bytes)?;
        if bytes.len() <= MAX_KEPT_BYTES {
            if self.0.len() >= MAX_ENTRIES {
                self.0.clear();
            }
            self.0.insert(bytes.to_vec(), value.clone());
        }
        Some(value)
    }
}

/// [`Memo::decoded`] through a thread-local memo when `serves_many` (the instance outlives the
/// request); a plain decode otherwise (a Spin instance serves one request: nothing to reuse).
pub fn decoded<T: Clone + 'static>(
    memo: &'static LocalKey<RefCell<Memo<T>>>,
    serves_many: bool,
    bytes: &[u8],
    decode: impl FnOnce(&[u8]) -> Option<T>,
) -> Option<T> {
    if serves_many {
        memo.with(|m| m.borrow_mut().decoded(bytes, decode))
    } else {
        decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn the_same_bytes_decode_once_and_changed_bytes_decode_afresh() {
        let mut memo = Memo::default();
        let calls = Cell::new(0);
        let decode = |b: &[u8]| {
            calls.set(calls.get() + 1);
            Some(b.len())
        };
        assert_eq!(memo.decoded(b"abc", decode), Some(3));
        assert_eq!(memo.decoded(b"abc", decode), Some(3));
        assert_eq!(calls.get(), 1);
        assert_eq!(memo.decoded(b"abcd", decode), Some(4));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn failures_and_large_values_are_not_kept_and_the_size_is_bounded() {
        let mut memo: Memo<usize> = Memo::default();
        let calls = Cell::new(0);
        let refuse = |_: &[u8]| {
            calls.set(calls.get() + 1);
            None
        };
        assert_eq!(memo.decoded(b"bad", refuse), None);
        assert_eq!(memo.decoded(b"bad", refuse), None);
        assert_eq!(calls.get(), 2, "a failed decode is tried again");
        let big = vec![7; MAX_KEPT_BYTES + 1];
        assert_eq!(memo.decoded(&big, |b| Some(b.len())), Some(big.len()));
        assert!(memo.0.is_empty());
        for i in 0..MAX_ENTRIES + 10 {
            let bytes = i.to_le_bytes();
            assert_eq!(memo.decoded(&bytes, |_| Some(i)), Some(i));
        }
        assert!(memo.0.len() <= MAX_ENTRIES);
    }
}
