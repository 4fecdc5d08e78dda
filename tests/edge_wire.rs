//! The edge's own HTTP/1.1 on the wire: pipelining, keep-alive and HTTP/1.0, requests with bodies,
//! the idle timeout, and bodies sent from memory files and source files byte for byte.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::{get, request};
use common::{TestServer, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MEDIA: &str = "/static/sample/hls/media.m3u8";
const SEGMENT: &str = "/static/sample/hls/seg_000.m4s";

/// One response read off a kept connection: status, lower-cased head, body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response whose body has a `content-length` (or none, for HEAD and 304).
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>, head_only: bool) -> Answer {
    let mut buf = [0u8; 64 * 1024];
    let end = loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a whole head: {}", String::from_utf8_lossy(pending));
        pending.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
    pending.drain(..end);
    let status = head[9..12].parse().unwrap();
    let len: usize = if head_only {
        0
    } else {
        head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |v| v.trim().parse().unwrap())
    };
    while pending.len() < len {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed inside a body");
        pending.extend_from_slice(&buf[..n]);
    }
    let body = pending.drain(..len).collect();
    Answer { status, head, body }
}

/// Whether the server closes `stream` within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut rest = Vec::new();
    matches!(tokio::time::timeout(limit, stream.read_to_end(&mut rest)).await, Ok(Ok(_)))
}

fn on_disk(path: &str) -> Vec<u8> {
    std::fs::read(common::assets_dir().join(path.trim_start_matches("/static/"))).unwrap()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let s = TestServer::start(test_config()).await;
    let segment = on_disk(SEGMENT);
    // Twice: the first round fills the cache (the segment moves into a memory file), the second is
    // sent from it.
    for round in 0..2 {
        let mut stream = connect(s.edge).await;
        let requests = format!(
            "GET {MEDIA} HTTP/1.1\r\nHost: o\r\n\r\nHEAD {SEGMENT} HTTP/1.1\r\nHost: o\r\n\r\n\
             GET {SEGMENT} HTTP/1.1\r\nHost: o\r\nRange: bytes=100000-150000\r\n\r\nGET {SEGMENT} HTTP/1.1\r\nHost: o\r\n\r\n"
        );
        stream.write_all(requests.as_bytes()).await.unwrap();
        let mut pending = Vec::new();
        let media = read_answer(&mut stream, &mut pending, false).await;
        assert_eq!((media.status, media.body), (200, on_disk(MEDIA)), "round {round}");
        let head = read_answer(&mut stream, &mut pending, true).await;
        assert_eq!(head.status, 200);
        assert!(head.head.contains(&format!("content-length: {}\r\n", segment.len())), "{}", head.head);
        let part = read_answer(&mut stream, &mut pending, false).await;
        assert_eq!(part.status, 206, "{}", part.head);
        assert!(part.body == segment[100_000..=150_000], "round {round}: the range's bytes");
        let whole = read_answer(&mut stream, &mut pending, false).await;
        assert_eq!(whole.status, 200);
        assert!(whole.body == segment, "round {round}: the segment's bytes");
        assert!(whole.head.starts_with("http/1.1 200 ok\r\n") && whole.head.contains("\r\ndate: "), "{}", whole.head);
        assert!(pending.is_empty());
    }
}

#[tokio::test]
async fn http_1_0_and_connection_close_end_the_connection_after_the_answer() {
    let s = TestServer::start(test_config()).await;
    for (request, kept) in [
        (format!("GET {MEDIA} HTTP/1.0\r\n\r\n"), false),
        (format!("GET {MEDIA} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), true),
        (format!("GET {MEDIA} HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n"), false),
    ] {
        let mut stream = connect(s.edge).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut pending = Vec::new();
        let answer = read_answer(&mut stream, &mut pending, false).await;
        assert_eq!((answer.status, answer.body.len()), (200, on_disk(MEDIA).len()), "{request}");
        if kept {
            assert!(answer.head.contains("connection: keep-alive\r\n"), "{}", answer.head);
            assert!(!closed_within(&mut stream, Duration::from_millis(300)).await, "{request}");
        } else {
            assert!(answer.head.contains("connection: close\r\n"), "{}", answer.head);
            assert!(closed_within(&mut stream, Duration::from_secs(5)).await, "{request}");
        }
    }
}

#[tokio::test]
async fn a_request_with_a_body_is_answered_then_the_connection_closes() {
    let s = TestServer::start(test_config()).await;
    let mut stream = connect(s.edge).await;
    let body = vec![b'x'; 200_000];
    let head = format!("POST {SEGMENT} HTTP/1.1\r\nHost: o\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    // The edge takes no bodies: whatever of it the client still sends is read and dropped, so the
    // client gets the answer, not a reset.
    let _ = stream.write_all(&body).await;
    let answer = read_answer(&mut stream, &mut Vec::new(), false).await;
    assert_eq!(answer.status, 405, "{}", answer.head);
    assert!(answer.head.contains("connection: close\r\n"), "{}", answer.head);
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    assert_eq!(get(s.edge, MEDIA).await.status, 200, "the server is unaffected");
}

#[tokio::test]
async fn bad_heads_get_400_and_idle_connections_are_closed() {
    let mut config = test_config();
    config.http.idle_timeout = Duration::from_secs(1);
    let s = TestServer::start(config).await;
    for bad in [&b"GET / HTTP/9.9\r\n\r\n"[..], b"\x16\x03\x01\x00\xa5\x01\x00\x00", b"GET /a\x01b HTTP/1.1\r\n\r\n"] {
        let mut stream = connect(s.edge).await;
        stream.write_all(bad).await.unwrap();
        let answer = read_answer(&mut stream, &mut Vec::new(), false).await;
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(bad));
        assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    }
    // A kept connection that sends nothing more is closed after the idle timeout.
    let mut stream = connect(s.edge).await;
    stream.write_all(format!("GET {MEDIA} HTTP/1.1\r\nHost: o\r\n\r\n").as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut stream, &mut Vec::new(), false).await.status, 200);
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await, "the idle connection stayed open");
    // A head that arrives in pieces, within the header timeout, is answered.
    let mut stream = connect(s.edge).await;
    for piece in ["GET /static/sample/hls/", "media.m3u8 HTTP/1.1\r\nHo", "st: o\r\n", "\r\n"] {
        stream.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_answer(&mut stream, &mut Vec::new(), false).await.status, 200);
}

#[tokio::test]
async fn packaged_segments_from_the_source_file_match_the_cached_ones() {
    let cached = TestServer::start(test_config()).await;
    let mut config = test_config();
    config.cache.bytes = estuary::config::ByteSize(0);
    let streamed = TestServer::start(config).await;
    let playlist = get(cached.edge, "/vod/sample/sample.mp4/v0.m3u8").await.text();
    let segments: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert!(segments.len() >= 2, "{playlist}");
    for segment in segments {
        let path = format!("/vod/sample/sample.mp4/{segment}");
        let (a, b) = (get(cached.edge, &path).await, get(streamed.edge, &path).await);
        assert_eq!((a.status, b.status), (200, 200), "{path}");
        assert!(a.body == b.body, "{path}: the bytes sent from the source differ from the built segment");
        assert_eq!(a.header("etag"), b.header("etag"));
        let head = request(streamed.edge, "HEAD", &path, &[]).await;
        assert_eq!(head.header("content-length"), Some(b.body.len().to_string().as_str()));
    }
}
