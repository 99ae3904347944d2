//! Checks of free-text fields shared by the handlers: a failure names the field (422).

use crate::error::ApiError;

/// A required line of text, trimmed: 1 to `max` characters.
pub fn line(field: &'static str, s: &str, max: usize) -> Result<String, ApiError> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max {
        return Err(ApiError::InvalidField {
            field,
            message: format!("1 to {max} characters"),
        });
    }
    Ok(s.to_owned())
}

/// Optional text, kept as written: at most `max` characters.
pub fn text(field: &'static str, s: &str, max: usize) -> Result<String, ApiError> {
    if s.chars().count() > max {
        return Err(ApiError::InvalidField {
            field,
            message: format!("at most {max} characters"),
        });
    }
    Ok(s.to_owned())
}

/// A slug (categories, tags): 1 to 32 of a-z, 0-9 and '-'.
pub fn slug(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
