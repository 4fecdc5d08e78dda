//! Writing an HTTP/1.1 response head: the status line, the handler's headers, `Date`, how the body
//! is framed, and whether the connection stays open.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{CONNECTION, CONTENT_LENGTH, DATE};
use http::{HeaderMap, StatusCode};

use crate::http::decimal;
use crate::http::raw::HeadFacts;

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body follows (HEAD, 1xx, 204, 304); the headers stay as the handler set them.
    Empty,
    /// `Content-Length` bytes follow.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 clients, length unknown).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0 clients, length unknown).
    UntilClose,
}

/// What a head says of the connection after its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionAfter {
    /// `Connection: close`: the connection ends after this response.
    Close,
    /// Kept, for an HTTP/1.1 client: persistence is the default, nothing to say.
    Kept,
    /// Kept, for an HTTP/1.0 client: `Connection: keep-alive`, which it needs to hear.
    KeptHttp10,
}

impl ConnectionAfter {
    /// The connection is kept open for the client of `facts`.
    pub fn kept(facts: &HeadFacts) -> ConnectionAfter {
        if facts.http10 { ConnectionAfter::KeptHttp10 } else { ConnectionAfter::Kept }
    }

    pub fn is_kept(self) -> bool {
        self != ConnectionAfter::Close
    }
}

/// The end of a head after its status line and headers ([`end_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadEnd {
    /// Add `Date` (the handler set none).
    pub date: bool,
    /// Add `Content-Length`.
    pub length: Option<u64>,
    pub after: ConnectionAfter,
}

/// The framing for a response to a request of `facts`: none for HEAD and bodiless statuses, its own
/// `Content-Length`, else the body's exact size, else chunked (HTTP/1.1) or until close (HTTP/1.0).
pub fn framing(status: StatusCode, headers: &HeaderMap, exact: Option<u64>, facts: &HeadFacts) -> Framing {
    if facts.head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Framing::Empty;
    }
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    match (declared.or(exact), facts.http10) {
        (Some(len), _) => Framing::Length(len),
        (None, true) => Framing::UntilClose,
        (None, false) => Framing::Chunked,
    }
}

/// Appends the head to `out`, with `Connection` as `after` says. Returns how many of the bytes appended are the
/// status line and the handler's headers (the part that does not change from one request to the
/// next, for [`super::HeadSink`]).
pub fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    after: ConnectionAfter,
) -> usize {
    let start = out.len();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let fixed = out.len() - start;
    let length = match framing {
        Framing::Length(len) if !headers.contains_key(CONTENT_LENGTH) => Some(len),
        _ => None,
    };
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    end_head(out, HeadEnd { date: !headers.contains_key(DATE), length, after });
    fixed
}

/// Ends a head whose status line and headers are in `out`: `Date`, `Content-Length` and
/// `Connection` as `end` says, and the blank line.
pub fn end_head(out: &mut Vec<u8>, end: HeadEnd) {
    if end.date {
        out.extend_from_slice(b"date: ");
        with_date(|date| out.extend_from_slice(date));
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = end.length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(decimal(len, &mut [0; 20]));
        out.extend_from_slice(b"\r\n");
    }
    match end.after {
        ConnectionAfter::Close => out.extend_from_slice(b"connection: close\r\n"),
        ConnectionAfter::KeptHttp10 => out.extend_from_slice(b"connection: keep-alive\r\n"),
        ConnectionAfter::Kept => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// The size line before a chunk of `len` bytes.
pub fn chunk_size_line(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
}

thread_local! {
    /// The `Date` value of the current second, rendered once per second per worker thread.
    static DATE_NOW: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Calls `f` with the current `Date` header value (IMF-fixdate).
fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE_NOW.with_borrow_mut(|(at, value)| {
        if *at != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == value.len() {
                value.copy_from_slice(text.as_bytes());
                *at = second;
            }
        }
        f(value);
    });
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn head(status: StatusCode, headers: &HeaderMap, framing: Framing, after: ConnectionAfter) -> String {
        let mut out = Vec::new();
        write_head(&mut out, status, headers, framing, after);
        String::from_utf8(out).unwrap()
    }

    fn request(head_only: bool, http10: bool) -> HeadFacts {
        HeadFacts { keep_alive: true, has_body: false, http10, head_only }
    }

    #[test]
    fn a_head_has_its_status_headers_date_and_length() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("video/iso.segment"));
        let text = head(StatusCode::OK, &headers, Framing::Length(3_145_728), ConnectionAfter::Kept);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: video/iso.segment\r\ndate: "), "{text}");
        assert!(text.ends_with(" GMT\r\ncontent-length: 3145728\r\n\r\n"), "{text}");
        let date = text.lines().find_map(|l| l.strip_prefix("date: ")).unwrap();
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }

    #[test]
    fn the_handlers_length_is_not_repeated_and_connection_is_ours() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(12u64));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        let text = head(
            StatusCode::NOT_FOUND,
            &headers,
            framing(StatusCode::NOT_FOUND, &headers, None, &request(false, false)),
            ConnectionAfter::Close,
        );
        assert_eq!(text.matches("content-length").count(), 1, "{text}");
        assert!(text.contains("connection: close\r\n") && !text.contains("keep-alive"), "{text}");
        let kept = head(StatusCode::OK, &HeaderMap::new(), Framing::Length(0), ConnectionAfter::KeptHttp10);
        assert!(kept.contains("connection: keep-alive\r\n"), "{kept}");
    }

    #[test]
    fn framing_follows_status_method_length_and_version() {
        let none = HeaderMap::new();
        let get = request(false, false);
        assert_eq!(framing(StatusCode::NOT_MODIFIED, &none, Some(0), &get), Framing::Empty);
        assert_eq!(framing(StatusCode::OK, &none, Some(9), &request(true, false)), Framing::Empty);
        assert_eq!(framing(StatusCode::OK, &none, Some(9), &get), Framing::Length(9));
        assert_eq!(framing(StatusCode::OK, &none, None, &get), Framing::Chunked);
        assert_eq!(framing(StatusCode::OK, &none, None, &request(false, true)), Framing::UntilClose);
        let text = head(StatusCode::OK, &none, Framing::Chunked, ConnectionAfter::Kept);
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 65_536, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
