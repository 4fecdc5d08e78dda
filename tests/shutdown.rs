//! Graceful shutdown of the real binary: SIGTERM turns readiness false, an in-flight response completes, the process exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::process::Estuary;

/// A blocking GET that returns the stream after the response headers.
fn start_download(addr: std::net::SocketAddr, path: &str) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    (s, head)
}

fn status_of(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    std::str::from_utf8(buf.get(9..12)?).ok()?.parse().ok()
}

#[test]
fn sigterm_drains_in_flight_responses_and_exits_zero() {
    // A 48 MiB object, larger than the cache's object limit, is streamed from
    // storage as the client reads: a response that is truly in flight.
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..48u32 * 1024 * 1024).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.path().join("big.mp4"), &body).unwrap();

    let root = dir.path().to_str().unwrap();
    let mut estuary = Estuary::spawn(
        &["--storage-root", root],
        &[
            ("ESTUARY_CACHE_MAX_OBJECT_BYTES", "1MiB"),
            ("ESTUARY_SHUTDOWN_DRAIN_DELAY", "1s"),
            ("ESTUARY_SHUTDOWN_GRACE_PERIOD", "30s"),
        ],
    );
    assert_eq!(status_of(estuary.api, "/readyz"), Some(200));
    assert_eq!(status_of(estuary.edge, "/healthz"), Some(200));

    let (mut download, head) = start_download(estuary.edge, "/static/big.mp4");
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"));
    let mut received = vec![0u8; 1 << 20];
    download.read_exact(&mut received).unwrap();

    estuary.terminate();
    // Readiness flips at once, while the listeners still answer during the drain delay.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut flipped = false;
    while Instant::now() < deadline {
        if status_of(estuary.api, "/readyz") == Some(503) {
            flipped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(flipped, "/readyz did not turn 503 after SIGTERM");
    assert_eq!(status_of(estuary.edge, "/healthz"), Some(503), "the edge probe reports draining too");

    // After the drain delay no new connection is served...
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status_of(estuary.edge, "/healthz"), None, "listener still accepting after the drain delay");

    // ...but the response that was in flight completes, byte for byte.
    download.read_to_end(&mut received).unwrap();
    assert_eq!(received.len(), body.len());
    assert!(received == body, "the in-flight body arrived intact");

    let status = estuary.wait_exit(Duration::from_secs(30)).expect("estuary exited");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn bad_config_is_refused_with_the_field_named() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_estuary"))
        .args(["check-config", "--storage-root", "/no/such/folder"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("storage.root"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_estuary"))
        .args(["check-config"])
        .env("ESTUARY_CACHE_BYTES", "lots")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ESTUARY_CACHE_BYTES"));

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/estuary.example.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_estuary"))
        .args(["check-config", "--config", example, "--cache-bytes", "1GiB"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bytes = 1073741824"));
}
