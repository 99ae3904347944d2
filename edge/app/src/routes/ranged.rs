//! Byte ranges of media files (RFC 9110 §14): which `Range` a request asks for, and the part
//! of a whole file it gets.
//!
//! One range per request, as players ask; several, another unit or a syntax error are ignored
//! and the whole file served (§14.2 allows it), so no multipart answer is ever built. Neither the
//! origin nor the edge sends validators (`ETag`, `Last-Modified`) for media, so no `If-Range`
//! can be known to match: a request with one gets the whole file (§13.1.5).

use shared_wasm::range::{self, Spec};

use crate::error::EdgeError;
use crate::platform::{Platform, Request, Response};

/// The range a request asks for, if it is to be honoured (GET only: a HEAD describes the whole
/// file).
pub fn asked(req: &Request) -> Option<Spec> {
    if req.method != "GET" || req.header("if-range").is_some() {
        return None;
    }
    range::parse(req.header("range")?)
}

/// `resp` answering a request for `spec`: a 206 from a cache or origin that cut the part itself
/// passes as it is, their 416 becomes the edge's, and a whole file (200) is cut here.
pub async fn cut<P: Platform>(
    p: &P,
    mut resp: Response,
    spec: Spec,
) -> Result<Response, EdgeError> {
    match resp.status {
        200 => {}
        416 => {
            let len = resp.header("content-range").and_then(range::total_of);
            return Err(EdgeError::RangeNotSatisfiable(len));
        }
        _ => return Ok(resp),
    }
    let body = p.body_bytes(&mut resp).await?;
    let len = body.len() as u64;
    let (first, last) = spec
        .resolve(len)
        .ok_or(EdgeError::RangeNotSatisfiable(Some(len)))?;
    // Both fit in `body`, whose length came from a `usize`.
    let part = body[first as usize..=last as usize].to_vec();
    resp.headers.retain(|(k, _)| k != "content-length");
    resp.headers.push((
        "content-range".into(),
        range::content_range(first, last, len),
    ));
    resp.status = 206;
    resp.body = part;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::{asked, cut};
    use crate::error::EdgeError;
    use crate::platform::{Request, Response};
    use crate::testing::{block_on, MemPlatform};

    fn get(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Request::default()
        }
    }

    fn cut_of(range: &str, status: u16, headers: &[(&str, &str)]) -> Result<Response, EdgeError> {
        let spec = asked(&get(&[("range", range)])).expect("a range");
        let mut whole = Response::new(status, "video/mp2t", b"0123456789".to_vec());
        for (k, v) in headers {
            whole = whole.with_header(k, *v);
        }
        block_on(cut(&MemPlatform::new(|_, _| unreachable!()), whole, spec))
    }

    #[test]
    fn only_a_get_without_if_range_asks_for_a_part() {
        assert!(asked(&get(&[("range", "bytes=0-1")])).is_some());
        assert!(asked(&get(&[("range", "bytes=0-1,4-5")])).is_none());
        assert!(asked(&get(&[("range", "bytes=0-1"), ("if-range", "\"x\"")])).is_none());
        let head = Request {
            method: "HEAD".into(),
            ..get(&[("range", "bytes=0-1")])
        };
        assert!(asked(&head).is_none());
    }

    #[test]
    fn a_whole_file_is_cut_to_the_part_asked_for() {
        let r = cut_of("bytes=2-4", 200, &[("content-length", "10")]).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (206, &b"234"[..]));
        assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
        assert_eq!(
            r.header("content-length"),
            None,
            "the runtime sets the part's"
        );
        let r = cut_of("bytes=-3", 200, &[]).unwrap();
        assert_eq!(r.body, b"789");
        let e = cut_of("bytes=10-", 200, &[]).unwrap_err();
        assert!(
            matches!(e, EdgeError::RangeNotSatisfiable(Some(10))),
            "{e:?}"
        );
        let resp = e.into_response();
        assert_eq!(resp.status, 416);
        assert_eq!(resp.header("content-range"), Some("bytes */10"));
    }

    #[test]
    fn a_part_cut_elsewhere_passes_and_their_416_becomes_ours() {
        let r = cut_of("bytes=0-1", 206, &[("content-range", "bytes 0-1/10")]).unwrap();
        assert_eq!(r.body, b"0123456789", "passed as it is");
        let e = cut_of("bytes=99-", 416, &[("content-range", "bytes */10")]).unwrap_err();
        assert!(
            matches!(e, EdgeError::RangeNotSatisfiable(Some(10))),
            "{e:?}"
        );
    }
}
