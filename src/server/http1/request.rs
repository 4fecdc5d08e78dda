//! Reading one HTTP/1.x request head from the bytes a connection received: the request line,
//! the headers, and what the head says about the connection (keep-alive, a body).

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

/// Headers a request may carry; more gets 431, as a header block too large does.
const MAX_HEADERS: usize = 96;

/// A request head, complete.
#[derive(Debug)]
pub struct RequestHead {
    pub request: Request<()>,
    /// The client wants the connection kept open after this answer.
    pub keep_alive: bool,
    /// The request announced a body. The edge reads none: it answers and closes the connection.
    pub has_body: bool,
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
/// and how many bytes of `buf` it took.
pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("the request head does not parse")),
    };
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("the method is not a token"))?;
    let uri: Uri =
        parsed.path.unwrap_or_default().parse().map_err(|_| HeadError::Malformed("the target is not a URI"))?;
    let version = if parsed.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::Malformed("a header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| HeadError::Malformed("a header value"))?;
        headers.append(name, value);
    }
    let keep_alive = match version {
        Version::HTTP_10 => has_token(&headers, "keep-alive"),
        _ => !has_token(&headers, "close"),
    };
    let has_body =
        headers.contains_key(TRANSFER_ENCODING) || headers.get_all(CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0");
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some((RequestHead { request, keep_alive, has_body }, len)))
}

/// `Connection` lists `token` (case-insensitive, comma-separated).
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> (RequestHead, usize) {
        parse(text.as_bytes()).unwrap().unwrap()
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
        assert!(h.keep_alive && !h.has_body);
    }

    #[test]
    fn connection_tokens_and_versions_decide_keep_alive() {
        assert!(!head("GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n").0.keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").0.keep_alive);
    }

    #[test]
    fn bodies_are_noticed() {
        assert!(head("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").0.has_body);
        assert!(head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").0.has_body);
        assert!(!head("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").0.has_body);
    }

    #[test]
    fn partial_heads_wait_and_bad_ones_are_refused() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: o\r\n").unwrap().is_none());
        assert!(parse(b"").unwrap().is_none());
        assert!(matches!(parse(b"GET / HTTP/2.0\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(parse(b"\x16\x03\x01\x02\x00\x01\x00"), Err(HeadError::Malformed(_))));
        assert!(matches!(parse(b"GET /a\x7fb HTTP/1.1\r\n\r\n"), Err(HeadError::Malformed(_))));
        let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn absolute_form_targets_keep_their_path() {
        let (h, _) = head("GET http://origin.example/static/a.m3u8 HTTP/1.1\r\n\r\n");
        assert_eq!(h.request.uri().path(), "/static/a.m3u8");
    }
}
