//! A deliberately raw HTTP/1.1 client: sends request bytes exactly as given (no URL normalisation), reads the reply to EOF.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `raw` as-is on a new connection and parses the response (the request should say `Connection: close`).
pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Reply> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        // A server may answer before the body is all sent (413 on Content-Length) and close: read
        // its answer anyway, as HTTP clients do, and report the write error only when there is none.
        let written = stream.write_all(raw).await;
        let mut buf = Vec::new();
        let read = stream.read_to_end(&mut buf).await;
        match (written, read) {
            (Err(e), _) if parse(&buf).is_err() => Err(e),
            (_, Err(e)) if parse(&buf).is_err() => Err(e),
            _ => parse(&buf),
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply in 30 s"))?
}

/// `method path` with extra headers.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    send_raw(addr, raw.as_bytes()).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[]).await
}

/// A request with a body (e.g. a JSON API call).
pub async fn send_body(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(addr, &bytes).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A GET whose answer is read as it arrives: [`Incoming::first_body_bytes`] returns once the head
/// and the start of the body are in, [`Incoming::finish`] reads the rest.
pub struct Incoming {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Incoming {
    pub async fn get(addr: SocketAddr, path: &str) -> Incoming {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(raw.as_bytes()).await.unwrap();
        Incoming { stream, buf: Vec::new() }
    }

    /// Waits (at most 30 s) until the head and at least `n` bytes after it have arrived.
    pub async fn first_body_bytes(&mut self, n: usize) {
        let read = async {
            loop {
                let head_end = self.buf.windows(4).position(|w| w == b"\r\n\r\n");
                if head_end.is_some_and(|end| self.buf.len() >= end + 4 + n) {
                    return;
                }
                let mut chunk = [0u8; 16 * 1024];
                let got = self.stream.read(&mut chunk).await.unwrap();
                assert!(got > 0, "the connection closed after {} bytes", self.buf.len());
                self.buf.extend_from_slice(&chunk[..got]);
            }
        };
        tokio::time::timeout(TIMEOUT, read).await.expect("no body within 30 s");
    }

    /// Reads the answer to its end.
    pub async fn finish(mut self) -> std::io::Result<Reply> {
        tokio::time::timeout(TIMEOUT, self.stream.read_to_end(&mut self.buf)).await??;
        parse(&self.buf)
    }
}

fn parse(buf: &[u8]) -> std::io::Result<Reply> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no header end"))?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("header not utf-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let rest = &buf[end + 4..];
    let chunked =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest).ok_or_else(|| bad("bad chunked body"))? } else { rest.to_vec() };
    Ok(Reply { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// One blocking `Connection: close` GET read to its end: (status, body length); status 0 when the
/// connection failed. For tests that drive many clients from plain threads.
pub fn fetch_status_and_length(addr: SocketAddr, path: &str) -> (u16, usize) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return (0, 0) };
    stream.set_read_timeout(Some(TIMEOUT)).ok();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let end = reply.windows(4).position(|w| w == b"\r\n\r\n").map_or(reply.len(), |p| p + 4);
    let status = std::str::from_utf8(reply.get(9..12).unwrap_or(b"000")).unwrap_or("0").parse().unwrap_or(0);
    (status, reply.len() - end)
}
