//! Control characters in request text are refused before any handler or query sees them.
//!
//! PostgreSQL cannot store NUL in text at all (the query fails, a 500), and the other C0
//! controls make no sense in a title, an email, a cursor or a comment. Letting them through
//! would let any client turn its own bad input into server errors, which the edge takes as a
//! failing region. So every request target (path and query, percent-decoded) and every string
//! of a JSON body is checked here, on both databases alike: tab, line feed and carriage return
//! are allowed in bodies (comments and descriptions have lines), nothing below U+0020 nor DEL
//! anywhere else.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use crate::error::ApiError;

fn refused(what: &str) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_text",
        message: format!("{what} holds a control character"),
    }
}

/// Refuses a request whose path or query, percent-decoded, holds a control character.
pub async fn refuse_control_in_target(req: Request, next: Next) -> Result<Response, ApiError> {
    let target = req.uri().path_and_query().map_or("", |p| p.as_str());
    let decoded = percent_encoding::percent_decode_str(target);
    if decoded.into_iter().any(|b| b < 0x20 || b == 0x7f) {
        return Err(refused("the request's path or query"));
    }
    Ok(next.run(req).await)
}

/// The first top-level field of a JSON body (or `body`, if it is not an object) whose text
/// holds a control character other than tab, line feed and carriage return.
pub fn control_in_body(v: &Value) -> Result<(), ApiError> {
    match v {
        Value::Object(fields) => fields
            .iter()
            .find(|(k, v)| has_control(k) || holds_control(v))
            .map_or(Ok(()), |(k, _)| {
                Err(refused(&format!("`{}`", k.escape_debug())))
            }),
        other if holds_control(other) => Err(refused("the body")),
        _ => Ok(()),
    }
}

fn holds_control(v: &Value) -> bool {
    match v {
        Value::String(s) => has_control(s),
        Value::Array(items) => items.iter().any(holds_control),
        Value::Object(fields) => fields
            .iter()
            .any(|(k, v)| has_control(k) || holds_control(v)),
        _ => false,
    }
}

fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_found_wherever_they_are() {
        assert!(control_in_body(&json!({"body": "two\nlines\tand\r\n"})).is_ok());
        assert!(control_in_body(&json!({"title": "café ☕", "n": 1, "ok": true})).is_ok());
        for bad in [
            json!({"email": "a\u{0}@example.com"}),
            json!({"password": {"current": "x", "new": "y\u{1b}[2J"}}),
            json!({"tags": ["fine", "bell\u{7}"]}),
            json!({"k\u{0}": "key"}),
            json!("top\u{0}level"),
            json!({"t": "del\u{7f}"}),
        ] {
            assert!(control_in_body(&bad).is_err(), "{bad}");
        }
        let e = control_in_body(&json!({"ok": "x", "email": "\u{0}"})).unwrap_err();
        assert!(e.to_string().contains("`email`"), "{e}");
    }
}
