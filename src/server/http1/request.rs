//! Reading one HTTP/1.x request head from the bytes a connection received: the request line,
//! the headers, and what the head says about the connection (keep-alive, a body).

use std::mem::MaybeUninit;

pub use crate::http::raw::{HeadFacts, RawHead};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

/// Headers a request may carry; more gets 431, as a header block too large does.
const MAX_HEADERS: usize = 96;

/// A request head, complete.
#[derive(Debug)]
pub struct RequestHead {
    pub request: Request<()>,
    pub facts: HeadFacts,
}

/// A parsed head: answered at once by `shortcut`, or a request for the service.
// Moved once per request; boxing the request would cost an allocation each time instead.
#[allow(clippy::large_enum_variant)]
pub enum Parsed<A> {
    Answered(A, HeadFacts),
    Request(RequestHead),
}

/// Why a head was refused; answered with the status, then the connection is closed.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// 431: too many headers (the size cap is the caller's).
    TooLarge,
    /// 400: not HTTP/1.x, or a request line or header that does not parse.
    Malformed(&'static str),
}

/// Parses the head at the start of `buf`: `Ok(None)` when more bytes are needed, else the head
/// and how many bytes of `buf` it took. `shortcut` sees the raw head first; what it answers is
/// returned in place of a `Request`.
pub fn parse<A>(
    buf: &[u8],
    peer: Option<std::net::SocketAddr>,
    shortcut: impl FnOnce(&RawHead<'_, '_>) -> Option<A>,
) -> Result<Option<(Parsed<A>, usize)>, HeadError> {
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut parsed, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("the request head does not parse")),
    };
    let (method, target) = (parsed.method.unwrap_or_default(), parsed.path.unwrap_or_default());
    let http10 = parsed.version == Some(0);
    let facts = facts(parsed.headers, method, http10);
    let raw = RawHead { method, target, headers: parsed.headers, facts, peer: peer.map(|p| p.ip()) };
    if let Some(answer) = shortcut(&raw) {
        return Ok(Some((Parsed::Answered(answer, facts), len)));
    }
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| HeadError::Malformed("the method is not a token"))?;
    let uri: Uri = target.parse().map_err(|_| HeadError::Malformed("the target is not a URI"))?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::Malformed("a header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| HeadError::Malformed("a header value"))?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = if http10 { Version::HTTP_10 } else { Version::HTTP_11 };
    *request.headers_mut() = headers;
    if let Some(peer) = peer {
        request.extensions_mut().insert(crate::http::forwarded::PeerAddr(peer));
    }
    Ok(Some((Parsed::Request(RequestHead { request, facts }), len)))
}

fn facts(headers: &[httparse::Header<'_>], method: &str, http10: bool) -> HeadFacts {
    let (mut close, mut keep, mut has_body) = (false, false, false);
    for h in headers {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            has_body |= h.value != b"0";
        }
    }
    let keep_alive = if http10 { keep } else { !close };
    HeadFacts { keep_alive, has_body, http10, head_only: method == "HEAD" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> (RequestHead, usize) {
        match parse(text.as_bytes(), None, |_| None::<()>).unwrap().unwrap() {
            (Parsed::Request(head), len) => (head, len),
            (Parsed::Answered(..), _) => unreachable!("nothing answers"),
        }
    }

    fn refused(text: &[u8]) -> HeadError {
        match parse(text, None, |_| None::<()>) {
            Err(e) => e,
            Ok(_) => panic!("{} was taken", String::from_utf8_lossy(text)),
        }
    }

    #[test]
    fn a_keep_alive_get_with_its_headers() {
        let text = "GET /vod/a%20b/master.m3u8?x=1 HTTP/1.1\r\nHost: o\r\nAccept-Encoding: gzip\r\n\r\nGET /next";
        let (h, len) = head(text);
        assert_eq!(len, text.find("GET /next").unwrap());
        assert_eq!(h.request.method(), Method::GET);
        assert_eq!(h.request.uri().path(), "/vod/a%20b/master.m3u8");
        assert_eq!(h.request.uri().query(), Some("x=1"));
        assert_eq!(h.request.headers()["accept-encoding"], "gzip");
        assert!(h.facts.keep_alive && !h.facts.has_body);
    }

    #[test]
    fn connection_tokens_and_versions_decide_keep_alive() {
        assert!(!head("GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n").0.facts.keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").0.facts.keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").0.facts.keep_alive);
    }

    #[test]
    fn bodies_are_noticed() {
        assert!(head("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").0.facts.has_body);
        assert!(head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").0.facts.has_body);
        assert!(!head("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0.facts.has_body);
    }

    #[test]
    fn partial_heads_wait_and_bad_ones_are_refused() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: o\r\n", None, |_| None::<()>).unwrap().is_none());
        assert!(parse(b"", None, |_| None::<()>).unwrap().is_none());
        assert!(matches!(refused(b"GET / HTTP/2.0\r\n\r\n"), HeadError::Malformed(_)));
        assert!(matches!(refused(b"\x16\x03\x01\x02\x00\x01\x00"), HeadError::Malformed(_)));
        assert!(matches!(refused(b"GET /a\x7fb HTTP/1.1\r\n\r\n"), HeadError::Malformed(_)));
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), HeadError::TooLarge);
    }

    #[test]
    fn a_shortcut_sees_the_raw_head_and_answers_in_place_of_a_request() {
        let text = b"HEAD /vod/a.mp4/v0.m3u8 HTTP/1.0\r\nAccept-Encoding: br\r\nConnection: Keep-Alive\r\n\r\n";
        let seen = |raw: &RawHead<'_, '_>| {
            (raw.target == "/vod/a.mp4/v0.m3u8" && raw.method == "HEAD").then(|| {
                raw.headers.iter().find(|h| h.name.eq_ignore_ascii_case("accept-encoding")).map(|h| h.value.to_vec())
            })
        };
        match parse(text, None, seen).unwrap().unwrap() {
            (Parsed::Answered(accept, facts), len) => {
                assert_eq!(accept.as_deref(), Some(&b"br"[..]));
                assert!(facts.keep_alive && facts.http10 && facts.head_only && !facts.has_body);
                assert_eq!(len, text.len());
            }
            (Parsed::Request(_), _) => panic!("the shortcut's answer was dropped"),
        }
    }

    #[test]
    fn absolute_form_targets_keep_their_path() {
        let (h, _) = head("GET http://origin.example/static/a.m3u8 HTTP/1.1\r\n\r\n");
        assert_eq!(h.request.uri().path(), "/static/a.m3u8");
    }
}
