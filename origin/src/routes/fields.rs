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
