//! Text written into HTML or XML.

/// `s` safe in HTML or XML text and in a double- or single-quoted attribute value: the five
/// characters markup gives meaning to become references, and control characters (which have no
/// business in a title, and most of which XML 1.0 forbids outright) become spaces.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
