//! What the edge's HTTP/1.1 connection and the service behind it share for answers made from a
//! request's raw head: the head as parsed ([`RawHead`]), the [`Shortcut`] the connection asks
//! first, and the [`HeadSink`] through which a response's rendered head comes back to the service.

use bytes::Bytes;

/// What a head says about its connection.
#[derive(Debug, Clone, Copy)]
pub struct HeadFacts {
    /// The client wants the connection kept open after this answer.
    pub keep_alive: bool,
    /// The request announced a body. The edge reads none: it answers and closes the connection.
    pub has_body: bool,
    pub http10: bool,
    pub head_only: bool,
}

/// A head as the bytes hold it, before any `Request` is built: what a [`Shortcut`] reads.
pub struct RawHead<'h, 'b> {
    pub method: &'b str,
    /// The request target as sent (origin form: the path and query, still percent-encoded).
    pub target: &'b str,
    pub headers: &'h [httparse::Header<'b>],
    pub facts: HeadFacts,
    /// The connection's peer, when known.
    pub peer: Option<std::net::IpAddr>,
}

/// Requests a service answers from the raw head alone, before a `Request` is built: the edge's
/// hot answers. Called for every head, so it must be cheap and never wait.
pub trait Shortcut {
    /// Appends the answer's status line and headers to `head` (not `Date`, `Connection` or the
    /// blank line, which the connection adds) and gives its body; `None` leaves both buffers as
    /// they were and the request takes the service's full path.
    fn answer(&self, request: &RawHead<'_, '_>, head: &mut Vec<u8>, body: &mut Vec<u8>) -> Option<AnswerBody>;
}

/// Where a [`Shortcut`]'s answer has its body.
#[derive(Debug)]
pub enum AnswerBody {
    /// Appended to the `body` buffer (a small body: copying it costs less than sharing it).
    Copied,
    Shared(Bytes),
}

/// Put in a response's extensions: called with the status line and headers as the connection
/// wrote them (everything before `Date`), so the service can answer the same request again
/// through its [`Shortcut`] with exactly these bytes.
#[derive(Clone)]
pub struct HeadSink(pub std::sync::Arc<TakeHead>);

/// What a [`HeadSink`] calls.
pub type TakeHead = dyn Fn(&[u8]) + Send + Sync;

/// The body of one of the few requests the edge reads a body for (a ClearKey licence request at
/// `/keys/`): at most [`SMALL_BODY_LIMIT`] bytes, read whole before the request is handed on, as a
/// request extension.
#[derive(Debug, Clone)]
pub struct SmallBody(pub bytes::Bytes);

/// Largest body the edge reads ([`SmallBody`]); a larger one is answered 413.
pub const SMALL_BODY_LIMIT: usize = 8 * 1024;

/// Whether the edge reads the body of a request for `path` with `method`: a POST to `/keys/`.
pub fn reads_body(method: &http::Method, path: &str) -> bool {
    method == http::Method::POST && path.starts_with("/keys/")
}
