//! The edge's own HTTP/1.1 connection: reads request heads, calls the edge service, and writes its
//! answers itself, so that a body in a file (a cached object's memory file, a VOD source) goes out
//! with `sendfile` and a body in memory with one gathered write together with its head. hyper, which
//! the other tiers keep, can only write bodies from user memory.
//!
//! The edge takes no request bodies but one: a ClearKey licence request (a POST to `/keys/`, at
//! most 8 KiB, read whole within the header timeout). Any other request that announces a body is
//! answered, then the connection is closed. Limits as on every tier: the header read timeout from
//! the first byte of a head (from the accept for the first), the header size cap (431), the send
//! timeout per wait for room, an idle keep-alive timeout, and `Connection: close` once the pod
//! drains or answers 503.

pub mod request;
pub mod response;
mod send;

use std::convert::Infallible;
use std::io::IoSlice;
use std::time::Duration;

use axum::response::Response;
use bytes::{Buf, BytesMut};
use http::{Request, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::health::Health;
use crate::http::file_body::FileBody;
pub use crate::http::raw::{AnswerBody, HeadSink, Shortcut};
use request::{HeadError, HeadFacts, Parsed, RequestHead};
use response::{ConnectionAfter, Framing, HeadEnd};
use send::Socket;

/// What one connection is held to.
#[derive(Clone)]
pub struct Http1Limits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub send_timeout: Duration,
    /// An open connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    pub health: Option<Health>,
}

/// How long a closing connection keeps reading what the client still sends (a body it announced),
/// so that the client reads the answer instead of a reset.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

/// Serves requests on `stream` until the client closes, a limit cuts it, or `drain` turns true
/// while it is idle.
pub async fn serve_connection<S>(
    stream: TcpStream,
    mut service: S,
    limits: &Http1Limits,
    mut drain: watch::Receiver<bool>,
) where
    S: Service<Request<()>, Response = Response, Error = Infallible> + Shortcut + Send + Sync,
    S::Future: Send,
{
    let peer = stream.peer_addr().ok();
    let socket = match stream.into_std().map(send::register) {
        Ok(Ok(socket)) => socket,
        Ok(Err(e)) | Err(e) => {
            tracing::debug!(error = %e, "edge connection could not be registered");
            return;
        }
    };
    let stream = &socket;
    let mut input = BytesMut::with_capacity(4096);
    let mut out = Vec::with_capacity(1024);
    let mut copied = Vec::new();
    let mut deadline = Some(Instant::now() + limits.header_read_timeout);
    loop {
        out.clear();
        copied.clear();
        let buffers = (&mut out, &mut copied);
        let head = match read_head(stream, &mut input, limits, (deadline, peer), &mut drain, &service, buffers).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refusal) => {
                let (status, reason) = match refusal {
                    HeadError::TooLarge => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "request header too large\n"),
                    HeadError::Malformed(why) => (StatusCode::BAD_REQUEST, why),
                };
                let _ = refuse(stream, status, reason, limits.send_timeout).await;
                return linger(socket).await;
            }
        };
        deadline = None;
        let draining = || *drain.borrow() || limits.health.as_ref().is_some_and(Health::is_draining);
        let sent = match head {
            Parsed::Answered(body, facts) => {
                let keep = facts.keep_alive && !facts.has_body && !draining();
                let after = if keep { ConnectionAfter::kept(&facts) } else { ConnectionAfter::Close };
                response::end_head(&mut out, HeadEnd { date: true, length: None, after });
                let body = match &body {
                    _ if facts.head_only => &[][..],
                    AnswerBody::Copied => &copied[..],
                    AnswerBody::Shared(bytes) => &bytes[..],
                };
                send::write_all(stream, &mut [IoSlice::new(&out), IoSlice::new(body)], limits.send_timeout)
                    .await
                    .map(|()| keep)
            }
            Parsed::Request(RequestHead { mut request, mut facts }) => {
                // The one body the edge reads: a small one, whole, before the request is handled.
                if facts.has_body && crate::http::raw::reads_body(request.method(), request.uri().path()) {
                    match read_small_body(stream, &mut input, request.headers(), limits).await {
                        Ok(Some(body)) => {
                            request.extensions_mut().insert(crate::http::raw::SmallBody(body));
                            facts.has_body = false;
                        }
                        Ok(None) => return,
                        Err((status, reason)) => {
                            let _ = refuse(stream, status, reason, limits.send_timeout).await;
                            return linger(socket).await;
                        }
                    }
                }
                let Ok(ready) = service.ready().await;
                let Ok(response) = ready.call(request).await;
                // A 503 (out of memory budget, storage down) also closes: a pod out of room sheds
                // the connection, and the client's retry may land on another pod.
                let keep = facts.keep_alive
                    && !facts.has_body
                    && !draining()
                    && response.status() != StatusCode::SERVICE_UNAVAILABLE;
                let after = if keep { ConnectionAfter::kept(&facts) } else { ConnectionAfter::Close };
                write_response(stream, response, &mut out, after, facts, limits.send_timeout).await
            }
        };
        match sent {
            Ok(true) => continue,
            // Unread bytes (a body, pipelined requests) would turn the close into a reset that can
            // destroy the answer before the client reads it.
            Ok(false) => return linger(socket).await,
            Err(e) => {
                tracing::debug!(error = %e, "edge connection ended while sending");
                return;
            }
        }
    }
}

/// Reads until `input` starts with a whole head. `Ok(None)`: the client closed, went idle too long,
/// or the pod drains while the connection is idle. `deadline`: for the first head, counted from
/// the accept; later ones get theirs at their first byte.
#[allow(clippy::too_many_arguments)]
async fn read_head<S: Shortcut>(
    stream: &Socket,
    input: &mut BytesMut,
    limits: &Http1Limits,
    (mut deadline, peer): (Option<Instant>, Option<std::net::SocketAddr>),
    drain: &mut watch::Receiver<bool>,
    shortcut: &S,
    (head, body): (&mut Vec<u8>, &mut Vec<u8>),
) -> Result<Option<Parsed<AnswerBody>>, HeadError> {
    loop {
        if !input.is_empty() {
            if let Some((head, len)) = request::parse(input, peer, |raw| shortcut.answer(raw, head, body))? {
                input.advance(len);
                return Ok(Some(head));
            }
            if input.len() >= limits.max_header_bytes {
                return Err(HeadError::TooLarge);
            }
            deadline.get_or_insert_with(|| Instant::now() + limits.header_read_timeout);
        }
        let idle = input.is_empty();
        let until = deadline.unwrap_or_else(|| Instant::now() + limits.idle_timeout);
        if input.capacity() - input.len() < 1024 {
            input.reserve(4096);
        }
        let read = tokio::select! {
            r = tokio::time::timeout_at(until, send::read_more(stream, input)) => r,
            _ = async { drop(drain.wait_for(|d| *d).await) }, if idle => return Ok(None),
        };
        match read {
            Ok(Ok(Some(0))) | Ok(Err(_)) | Err(_) => return Ok(None),
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads a request body of at most [`crate::http::raw::SMALL_BODY_LIMIT`] bytes, announced by its
/// `Content-Length`, within the header read timeout. `Ok(None)`: the client went away; `Err`: the
/// status to refuse it with (411 without a length, 413 when too large).
async fn read_small_body(
    stream: &Socket,
    input: &mut BytesMut,
    headers: &http::HeaderMap,
    limits: &Http1Limits,
) -> Result<Option<bytes::Bytes>, (StatusCode, &'static str)> {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Err((StatusCode::LENGTH_REQUIRED, "a body needs a Content-Length here\n"));
    }
    let len = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or((StatusCode::BAD_REQUEST, "bad Content-Length\n"))?;
    if len > crate::http::raw::SMALL_BODY_LIMIT {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"));
    }
    let deadline = Instant::now() + limits.header_read_timeout;
    while input.len() < len {
        input.reserve(len - input.len());
        match tokio::time::timeout_at(deadline, send::read_more(stream, input)).await {
            Ok(Ok(Some(n))) if n > 0 => {}
            _ => return Ok(None),
        }
    }
    Ok(Some(input.split_to(len).freeze()))
}

/// Writes `response`; `Ok(false)` when its framing needs the connection closed after it.
async fn write_response(
    stream: &Socket,
    response: Response,
    out: &mut Vec<u8>,
    after: ConnectionAfter,
    facts: HeadFacts,
    timeout: Duration,
) -> std::io::Result<bool> {
    let (mut parts, mut body) = response.into_parts();
    let file = parts.extensions.remove::<FileBody>();
    let exact = file.as_ref().map(FileBody::len).or_else(|| body.size_hint().exact());
    let framing = response::framing(parts.status, &parts.headers, exact, &facts);
    let after = if framing == Framing::UntilClose { ConnectionAfter::Close } else { after };
    let keep = after.is_kept();
    out.clear();
    let sink = parts.extensions.remove::<HeadSink>();
    // A head kept for hot answers is shared by every later request: this one's id is not in it.
    let request_id = sink.as_ref().and_then(|_| parts.headers.remove(crate::telemetry::access::REQUEST_ID));
    let fixed = response::write_head(out, parts.status, &parts.headers, framing, after);
    if let Some(HeadSink(sink)) = sink {
        sink(&out[..fixed]);
    }
    if let Some(id) = request_id {
        let line = [b"x-request-id: ", id.as_bytes(), b"\r\n"].concat();
        out.splice(fixed..fixed, line);
    }
    if framing == Framing::Empty {
        send::write_all(stream, &mut [IoSlice::new(out)], timeout).await?;
        return Ok(keep);
    }
    if let Some(file) = file.filter(|f| framing == Framing::Length(f.len())) {
        send::write_all(stream, &mut [IoSlice::new(out), IoSlice::new(&file.prefix)], timeout).await?;
        for span in file.spans.iter() {
            send::send_file(stream, &file.file, span.clone(), timeout).await?;
        }
        return Ok(keep);
    }
    let mut head_sent = false;
    let mut sent = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        if let Framing::Length(len) = framing
            && sent > len
        {
            return Err(std::io::Error::other("the body is longer than its Content-Length"));
        }
        let mut chunk_line = Vec::new();
        if framing == Framing::Chunked {
            response::chunk_size_line(data.len(), &mut chunk_line);
        }
        let head: &[u8] = if head_sent { &[] } else { out };
        let trailer: &[u8] = if framing == Framing::Chunked { b"\r\n" } else { b"" };
        let mut bufs = [IoSlice::new(head), IoSlice::new(&chunk_line), IoSlice::new(&data), IoSlice::new(trailer)];
        send::write_all(stream, &mut bufs, timeout).await?;
        head_sent = true;
    }
    let end: &[u8] = if framing == Framing::Chunked { b"0\r\n\r\n" } else { b"" };
    let head: &[u8] = if head_sent { &[] } else { out };
    send::write_all(stream, &mut [IoSlice::new(head), IoSlice::new(end)], timeout).await?;
    match framing {
        Framing::Length(len) if sent != len => {
            Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the body ended short of its length"))
        }
        _ => Ok(keep),
    }
}

/// A short plain-text refusal of a request that could not be read, then the connection closes.
async fn refuse(stream: &Socket, status: StatusCode, reason: &str, timeout: Duration) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{reason}",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        reason.len(),
    );
    send::write_all(stream, &mut [IoSlice::new(text.as_bytes())], timeout).await
}

/// Closes after the last answer: stops writing, then reads and drops what the client still sends
/// (a body, requests it pipelined) for a moment, so the close is not a reset that loses the answer.
async fn linger(socket: Socket) {
    let _ = socket.get_ref().shutdown(std::net::Shutdown::Write);
    let mut dropped = 0;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let until = Instant::now() + LINGER;
    while dropped < LINGER_BYTES {
        buf.clear();
        match tokio::time::timeout_at(until, send::read_more(&socket, &mut buf)).await {
            Ok(Ok(Some(0))) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(Some(n))) => dropped += n,
            Ok(Ok(None)) => {}
        }
    }
}
