//! Hostile clients, round two, on the control plane and the listeners: a web page cannot drive the
//! API through the operator's browser, the preview page cannot be framed or fed script, the
//! connection gauge counts each connection once however many edge workers there are, and a drain
//! never refuses a connection for want of slots.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::client::{get, request, send_body};
use common::live_push::create_channel;
use common::process::Estuary;
use common::{TestServer, test_config_in};

const KEY: &str = "control-stream-key-0123456789";

/// A call a page might make: method, path, the headers its browser adds, body, the status expected.
type Attempt<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [u8], u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_site_cannot_stop_or_rekey_a_channel() {
    let dir = tempfile::tempdir().unwrap();
    // The default API: loopback, no token.
    let s = TestServer::start(test_config_in(dir.path())).await;
    create_channel(s.api, &format!(r#"{{"id":"news","stream_key":"{KEY}"}}"#)).await;
    let evil = "http://evil.example";
    // What Chromium sends for a cross-site form POST, a no-cors fetch, and one with text/plain.
    let attempts: [Attempt; 5] = [
        (
            "POST",
            "/api/v1/channels/news/stop",
            vec![
                ("Origin", evil),
                ("Sec-Fetch-Site", "cross-site"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"a=b",
            403,
        ),
        (
            "POST",
            "/api/v1/channels/news/rotate-key",
            vec![("Origin", evil), ("Sec-Fetch-Site", "cross-site")],
            b"",
            403,
        ),
        ("POST", "/api/v1/channels/news/stop", vec![("Origin", "null")], b"", 403),
        ("DELETE", "/api/v1/channels/news", vec![("Sec-Fetch-Site", "same-site")], b"", 403),
        // A browser that sends neither header still cannot send a form's body.
        ("POST", "/api/v1/channels/news/rotate-key", vec![("Content-Type", "text/plain;charset=UTF-8")], b"{}", 415),
    ];
    for (method, path, headers, body, status) in attempts {
        let r = send_body(s.api, method, path, &headers, body).await;
        assert_eq!(r.status, status, "{method} {path} {headers:?}: {}", r.text());
        assert!(r.text().contains("refused"), "{}", r.text());
    }
    let channel: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/channels/news").await.body).unwrap();
    assert_eq!(channel["accepting_uploads"], true, "nothing changed: {channel}");
    // The channel's stream key still works: it was not rotated.
    let upload = send_body(s.ingest, "PUT", &format!("/ingest/news/{KEY}/v0/index.m3u8"), &[], b"#EXTM3U\n").await;
    assert_ne!(upload.status, 401, "{}", upload.text());
    // Tools (curl) and the API's own page (same-origin) still work.
    let own = format!("http://{}", s.api);
    let same =
        request(s.api, "POST", "/api/v1/channels/news/stop", &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")])
            .await;
    assert_eq!(same.status, 200, "{}", same.text());
    let curl = send_body(s.api, "POST", "/api/v1/channels/news/start", &[], b"").await;
    assert_eq!(curl.status, 200, "{}", curl.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_page_cannot_be_framed_and_runs_only_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    for path in ["/ui", "/ui/app.js", "/ui/app.css", "/ui/hls.min.js"] {
        let r = get(s.api, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        for rule in
            ["script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src", "default-src 'none'"]
        {
            assert!(csp.contains(rule) || rule == "object-src", "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    }
    let page = get(s.api, "/ui").await.text();
    assert!(!page.contains("<script>") && !page.contains("<style>") && !page.contains("style=\""), "no inline code");
    // A prefix that is no storage key is the caller's mistake: 400, not a storage outage.
    for bad in ["a//b", "%01x", "dir/./x"] {
        let r = get(s.api, &format!("/api/v1/assets?prefix={bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}

/// `estuary_http_connections_open{tier="edge"}` from a scrape.
fn edge_connections(api: SocketAddr) -> Option<u64> {
    let mut stream = TcpStream::connect(api).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let line = text.lines().find(|l| l.starts_with("estuary_http_connections_open{tier=\"edge\"}"))?;
    line.rsplit(' ').next()?.parse::<f64>().ok().map(|v| v as u64)
}

#[test]
fn the_connection_gauge_counts_each_connection_once_with_many_edge_workers() {
    let estuary = Estuary::spawn(&[], &[("ESTUARY_EDGE_WORKERS", "4"), ("ESTUARY_LOG_ACCESS", "false")]);
    let held: Vec<TcpStream> = (0..60).map(|_| TcpStream::connect(estuary.edge).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = edge_connections(estuary.api);
    while seen != Some(60) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = edge_connections(estuary.api);
    }
    assert_eq!(seen, Some(60), "60 open connections, 4 edge workers");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while edge_connections(estuary.api) != Some(0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(edge_connections(estuary.api), Some(0));
}

/// A client that opens a new connection for every request until the listener is gone; returns the
/// statuses it got.
fn eager_client(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<u16> {
    let mut statuses = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(addr) else { break };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if write!(stream, "GET /static/sample/hls/master.m3u8 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            continue;
        }
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        if let Some(status) = std::str::from_utf8(reply.get(9..12).unwrap_or(b"")).ok().and_then(|s| s.parse().ok()) {
            statuses.push(status);
        }
    }
    statuses
}

#[test]
fn a_drain_with_per_core_listeners_refuses_no_connection_for_want_of_slots() {
    // Six drains by default; HOSTILE_DRAIN_RUNS=20 for the issue's count.
    let runs: usize = std::env::var("HOSTILE_DRAIN_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let mut refused = 0;
    let mut answered = 0;
    for _ in 0..runs {
        let mut estuary = Estuary::spawn(
            &[],
            &[
                ("ESTUARY_EDGE_WORKERS", "4"),
                ("ESTUARY_SHUTDOWN_DRAIN_DELAY", "500ms"),
                ("ESTUARY_LOG_ACCESS", "false"),
            ],
        );
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..32)
            .map(|_| {
                let (addr, stop) = (estuary.edge, stop.clone());
                std::thread::spawn(move || eager_client(addr, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        estuary.terminate();
        let status = estuary.wait_exit(Duration::from_secs(30)).expect("estuary exits");
        stop.store(true, Ordering::Relaxed);
        assert!(status.success());
        for client in clients {
            let statuses = client.join().unwrap();
            answered += statuses.iter().filter(|&&s| s == 200).count();
            refused += statuses.iter().filter(|&&s| s == 503).count();
        }
    }
    eprintln!("{runs} drains: {answered} answered, {refused} refused");
    assert!(answered > 0);
    assert_eq!(refused, 0, "no connection was refused at the connection limit while draining");
}
