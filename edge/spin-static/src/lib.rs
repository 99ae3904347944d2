//! The web app's pages and assets on Spin, beside the edge component (`spin.toml` routes the
//! page paths here and everything else to the edge). What Workers static assets do on
//! Cloudflare, within what the web app needs:
//!
//! - `/` is `index.html`, `/{page}` is `{page}.html`, `/assets/{file}` is that file, all read
//!   from the component's files mount (`files = [{ source = "web/dist", destination = "/" }]`).
//! - Only names of letters, digits, `-` and `_` (and one extension for assets) are looked up,
//!   so no path can climb out of the mount, name a hidden file or `_headers`, or carry an
//!   encoded `..`; and only extensions with a known content type are served.
//! - Every answer, a 404 too, carries the headers the mount's `_headers` file gives its path
//!   (the same file Workers applies: the Content-Security-Policy, `nosniff`, the referrer policy).
//! - A strong `ETag` (a hash of the bytes) and `If-None-Match` → 304; `cache-control` asks
//!   caches to revalidate, as Workers does for assets whose names carry no hash.
//!
//! The logic is plain Rust, tested on the host; [`entry`] wires it to Spin.
#![deny(missing_docs)]

use shared_wasm::static_site::{etag, if_none_match_lists, HeaderRules};

/// Where the files mount is, inside the component.
pub const ROOT: &str = "/";

/// What the component answers.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD and 304).
    pub body: Vec<u8>,
}

/// The file a request path names, relative to the mount, and its content type; `None` for a
/// path that names no servable file.
pub fn resolve(path: &str) -> Option<(String, &'static str)> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(("index.html".into(), HTML));
    }
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [page] if plain_name(page) => Some((format!("{page}.html"), HTML)),
        ["assets", file] => {
            let (stem, ext) = file.split_once('.')?;
            if !plain_name(stem) {
                return None;
            }
            let kind = content_type(ext)?;
            Some((format!("assets/{file}"), kind))
        }
        _ => None,
    }
}

const HTML: &str = "text/html; charset=utf-8";

/// Letters, digits, `-` and `_`, not empty, not starting with `-` or `_` (so never `_headers`).
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// The allow-list of extensions served, with their content types.
fn content_type(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => HTML,
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// The answer to `method path` given the mount's files (`read` takes a path relative to it).
pub fn serve(
    method: &str,
    path: &str,
    if_none_match: Option<&str>,
    read: impl Fn(&str) -> Option<Vec<u8>>,
) -> Answer {
    let rules = read("_headers")
        .and_then(|b| String::from_utf8(b).ok())
        .map(|t| HeaderRules::parse(&t))
        .unwrap_or_default();
    let mut headers = rules.for_path(path);
    let mut answer = |status: u16, mut own: Vec<(String, String)>, body: Vec<u8>| {
        own.append(&mut headers);
        Answer {
            status,
            headers: own,
            body,
        }
    };
    let text = |s: &str| ("content-type".to_owned(), s.to_owned());
    if method != "GET" && method != "HEAD" {
        let allow = ("allow".to_owned(), "GET, HEAD".to_owned());
        return answer(
            405,
            vec![allow, text("text/plain; charset=utf-8")],
            b"Method not allowed\n".to_vec(),
        );
    }
    let found = resolve(path).and_then(|(file, kind)| Some((read(&file)?, kind)));
    let Some((bytes, kind)) = found else {
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            b"Not found\n".to_vec()
        };
        return answer(404, vec![text("text/plain; charset=utf-8")], body);
    };
    let tag = etag(&bytes);
    let mut own = vec![
        text(kind),
        ("etag".to_owned(), tag.clone()),
        (
            "cache-control".to_owned(),
            "public, max-age=0, must-revalidate".to_owned(),
        ),
    ];
    if if_none_match.is_some_and(|v| if_none_match_lists(v, &tag)) {
        own.retain(|(k, _)| k != "content-type");
        return answer(304, own, Vec::new());
    }
    // No content-length of ours: wasi-http checks it against the body written, which for HEAD
    // is none; the host frames the body itself.
    let body = if method == "HEAD" { Vec::new() } else { bytes };
    answer(200, own, body)
}

/// Reads `rel` under [`ROOT`]; `None` for anything but a regular file.
pub fn read_mounted(rel: &str) -> Option<Vec<u8>> {
    let path = std::path::Path::new(ROOT).join(rel);
    if !std::fs::metadata(&path).ok()?.is_file() {
        return None;
    }
    std::fs::read(path).ok()
}

/// The component's entry point. Only the export glue generated by `#[http_component]` is
/// allowed `unsafe`; nothing written by hand here uses it.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod entry {
    use spin_sdk::http::{Request, Response};

    #[spin_sdk::http_component]
    fn handle(req: Request) -> Response {
        let method = req.method().to_string();
        let inm = req.header("if-none-match").and_then(|v| v.as_str());
        let a = super::serve(&method, req.path(), inm, super::read_mounted);
        let mut b = Response::builder();
        b.status(a.status);
        for (k, v) in &a.headers {
            b.header(k.as_str(), v.as_str());
        }
        b.body(a.body).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &str = "# comment\n/*\n  Content-Security-Policy: default-src 'none'\n  \
                           X-Content-Type-Options: nosniff\n/assets/*\n  X-Extra: yes\n";

    fn files(rel: &str) -> Option<Vec<u8>> {
        match rel {
            "_headers" => Some(HEADERS.as_bytes().to_vec()),
            "index.html" => Some(b"<h1>home</h1>".to_vec()),
            "watch.html" => Some(b"<h1>watch</h1>".to_vec()),
            "assets/watch.js" => Some(b"console.log(1)".to_vec()),
            _ => None,
        }
    }

    fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
        a.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn pages_and_assets_resolve_inside_the_mount() {
        assert_eq!(resolve("/"), Some(("index.html".into(), HTML)));
        assert_eq!(resolve("/watch"), Some(("watch.html".into(), HTML)));
        assert_eq!(
            resolve("/assets/app.css").map(|r| r.1),
            Some("text/css; charset=utf-8")
        );
        for bad in [
            "",
            "watch",
            "/..",
            "/../etc/passwd",
            "/assets/../_headers",
            "/assets/%2e%2e/x.js",
            "/_headers",
            "/.hidden",
            "/assets/.x.js",
            "/assets/x.exe",
            "/assets/a/b.js",
            "/watch/",
            "/watch.html/x",
            "/assets/x..js",
            "/a\\b",
        ] {
            assert_eq!(resolve(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_answer_carries_the_headers_file() {
        let a = serve("GET", "/watch", None, files);
        assert_eq!(a.status, 200);
        assert_eq!(a.body, b"<h1>watch</h1>");
        assert_eq!(header(&a, "content-type"), Some(HTML));
        assert_eq!(
            header(&a, "content-security-policy"),
            Some("default-src 'none'")
        );
        assert_eq!(header(&a, "x-extra"), None);
        let js = serve("GET", "/assets/watch.js", None, files);
        assert_eq!(header(&js, "x-extra"), Some("yes"));
        assert_eq!(header(&js, "x-content-type-options"), Some("nosniff"));
        let missing = serve("GET", "/nothing", None, files);
        assert_eq!(missing.status, 404);
        assert!(header(&missing, "content-security-policy").is_some());
        let post = serve("POST", "/", None, files);
        assert_eq!(
            (post.status, header(&post, "allow")),
            (405, Some("GET, HEAD"))
        );
    }

    #[test]
    fn etag_revalidates_and_head_has_no_body() {
        let a = serve("GET", "/", None, files);
        let tag = header(&a, "etag").unwrap().to_owned();
        let again = serve("GET", "/", Some(&tag), files);
        assert_eq!((again.status, again.body.len()), (304, 0));
        assert_eq!(serve("GET", "/", Some("\"other\""), files).status, 200);
        assert_eq!(
            serve("GET", "/", Some(&format!("W/{tag}")), files).status,
            304
        );
        let head = serve("HEAD", "/", None, files);
        assert_eq!((head.status, head.body.len()), (200, 0));
        assert_eq!(header(&head, "etag"), Some(tag.as_str()));
    }
}
