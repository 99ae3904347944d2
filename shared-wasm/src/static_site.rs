//! What the edge's own pages and `edge/spin-static` share with Workers static assets, so a page
//! is served alike by all three: the rules of a `_headers` file and the strong `ETag` of the
//! bytes sent.

/// The rules of a `_headers` file (the format Workers static assets read): a path pattern on a
/// line of its own (exact, or ending in `*` for a prefix), then its headers indented as
/// `Name: value`; `#` starts a comment line. Detaching headers (`! Name`) and placeholders are
/// not supported; a line this parser does not understand is skipped. Names come out in lower
/// case.
#[derive(Debug, Default)]
pub struct HeaderRules(Vec<(String, Vec<(String, String)>)>);

impl HeaderRules {
    /// Parses the text of a `_headers` file.
    pub fn parse(text: &str) -> Self {
        let mut rules: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if !line.starts_with([' ', '\t']) {
                rules.push((trimmed.to_owned(), Vec::new()));
            } else if let (Some((_, headers)), Some((name, value))) =
                (rules.last_mut(), trimmed.split_once(':'))
            {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        Self(rules)
    }

    /// Every header of every rule whose pattern matches `path`, in file order.
    pub fn for_path(&self, path: &str) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(pattern, _)| match pattern.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == pattern,
            })
            .flat_map(|(_, headers)| headers.iter().cloned())
            .collect()
    }
}

/// A strong validator for `bytes`: FNV-1a, 64 bits, and the length. A change detector for files
/// we ship ourselves, not a defence against anyone.
pub fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}-{:x}\"", bytes.len())
}

/// Whether an `If-None-Match` value lists `tag` (weakly compared, as RFC 9110 §13.1.2 asks) or
/// is `*`.
pub fn if_none_match_lists(if_none_match: &str, tag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_by_exact_path_or_prefix_in_file_order() {
        let rules = HeaderRules::parse(
            "# comment\n/*\n  Content-Security-Policy: default-src 'none'\n\
             /watch\n\tX-Frame-Options: DENY\nnot a rule line:\n  Odd: kept\n  no colon\n",
        );
        let csp = (
            "content-security-policy".to_owned(),
            "default-src 'none'".to_owned(),
        );
        let frame = ("x-frame-options".to_owned(), "DENY".to_owned());
        assert_eq!(rules.for_path("/watch"), [csp.clone(), frame]);
        assert_eq!(rules.for_path("/watched"), [csp]);
        assert!(HeaderRules::default().for_path("/").is_empty());
    }

    #[test]
    fn etags_change_with_the_bytes_and_match_weakly() {
        let tag = etag(b"<h1>home</h1>");
        assert_ne!(tag, etag(b"<h1>home</h1>\n"));
        assert!(tag.starts_with('"') && tag.ends_with("-d\""), "{tag}");
        assert!(if_none_match_lists(&format!("\"x\", W/{tag}"), &tag));
        assert!(if_none_match_lists("*", &tag));
        assert!(!if_none_match_lists("\"x\"", &tag));
    }
}
