//! Search queries as both sides read them: the edge makes its cache key from a query's words,
//! the origin its full-text query, so the two must agree on what the words are.

use thiserror::Error;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most words used from a query; the rest are ignored.
pub const MAX_TERMS: usize = 8;

/// Why a query cannot be searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Longer than [`MAX_QUERY_CHARS`].
    #[error("q is at most 200 characters")]
    TooLong,
    /// No letter or digit in it.
    #[error("q needs at least one word")]
    NoWords,
}

/// The words of a query: runs of letters and digits (any script), lower-cased, at most
/// [`MAX_TERMS`]. Everything else separates words, so nothing a user types reaches a full-text
/// engine's own query syntax (quotes, operators, column filters, prefixes).
pub fn terms(q: &str) -> Result<Vec<String>, QueryError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_TERMS)
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return Err(QueryError::NoWords);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_words_come_through() {
        assert_eq!(terms("Hello, World!").unwrap(), ["hello", "world"]);
        assert_eq!(
            terms("title:x OR \"a\" NEAR(b) -c * d:* & e | !f").unwrap(),
            ["title", "x", "or", "a", "near", "b", "c", "d"]
        );
        assert_eq!(terms("Ünïcödé 東京").unwrap(), ["ünïcödé", "東京"]);
        assert_eq!(terms("a b c d e f g h i j").unwrap().len(), MAX_TERMS);
        assert_eq!(terms("  ** !! "), Err(QueryError::NoWords));
        assert_eq!(
            terms(&"x".repeat(MAX_QUERY_CHARS + 1)),
            Err(QueryError::TooLong)
        );
        assert!(terms(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
    }
}
