//! Hostile clients, part two: no client can exhaust estuary's memory, descriptors, ingest or storage
//! breaker, or make others wait on a hung backend, and a shutdown loses no request.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use common::client::{fetch_status_and_length, get, send_body};
use common::live_push::{create_channel, push_sample, sample_hls, sample_playlist};
use common::process::Estuary;
use common::{TestServer, test_config, test_config_in};
use estuary::config::ByteSize;
use estuary::storage::local::LocalStorage;
use estuary::storage::{ListedObject, Object, ObjectMeta, Storage, StorageError, StorageKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "hostile-stream-key-0123456789";
const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_shaped_storage_errors_never_open_the_breaker() {
    let mut config = test_config();
    config.cache.bytes = ByteSize(0);
    let s = TestServer::start(config).await;
    let long = "n".repeat(300);
    for i in 0..20 {
        let path = match i % 4 {
            0 => "/static/sample/sample.mp4/x".to_owned(),
            1 => format!("/static/sample/{long}.m4s"),
            2 => format!("/static/{long}/{long}/x.ts"),
            _ => "/vod/sample/sample.mp4/x/y.mp4/master.m3u8".to_owned(),
        };
        let r = get(s.edge, &path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    let real = get(s.edge, "/static/sample/hls/seg_001.m4s").await;
    assert_eq!(real.status, 200, "a real fetch after the bad ones: {}", real.text());
    let stats: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/stats").await.body).unwrap();
    assert_eq!(stats["storage_circuit"], "closed", "{stats}");
    assert_eq!(stats["storage"]["errors"], 0, "{stats}");
}

/// Local storage whose reads of `hang/...` never answer (a hung S3).
struct Hung(LocalStorage);

#[async_trait]
impl Storage for Hung {
    fn backend(&self) -> &'static str {
        "hung"
    }
    async fn probe(&self) -> Result<(), StorageError> {
        self.0.probe().await
    }
    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
        self.get_range(key, 0..u64::MAX).await
    }
    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError> {
        if key.as_str().starts_with("hang/") {
            std::future::pending::<()>().await;
        }
        self.0.get_range(key, range).await
    }
    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        self.0.head(key).await
    }
    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError> {
        self.0.put(key, body).await
    }
    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.0.list(prefix).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_storage_answers_every_waiting_player_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("hang")).unwrap();
    std::fs::write(dir.path().join("hang/seg.m4s"), b"never read").unwrap();
    let mut config = test_config_in(dir.path());
    config.storage.deadline = Duration::from_millis(500);
    config.storage.breaker_threshold = 100;
    let storage: Arc<dyn Storage> = Arc::new(Hung(LocalStorage::new(dir.path()).unwrap()));
    let s = TestServer::start_with(config, Some(storage)).await;
    // The storage never answers; each of these parallel misses still gets its 504.
    let misses =
        (0..8).map(|i| get(s.edge, if i % 2 == 0 { "/static/hang/seg.m4s" } else { "/static/hang/other.m4s" }));
    for r in futures_util::future::join_all(misses).await {
        assert_eq!(r.status, 504, "{}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_holds_nothing_without_bound_and_stalled_bodies_get_408() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_in(dir.path());
    config.ingest.body_timeout = Duration::from_millis(800);
    config.ingest.max_init_bytes = ByteSize(64 * 1024);
    config.ingest.max_channel_bytes = ByteSize(400 * 1024);
    config.ingest.max_total_bytes = ByteSize(MIB);
    let s = TestServer::start(config).await;
    create_channel(s.api, &format!(r#"{{"id":"news","stream_key":"{KEY}","target_duration":"4s","window":"12s"}}"#))
        .await;

    // Stalled bodies: three declare 900 KiB of the 1 MiB budget between them but hold only what they
    // sent, so a fourth is taken; each stalled one gets 408 when it stops sending.
    let mut stalled = Vec::new();
    for i in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(s.ingest).await.unwrap();
        let head = format!(
            "PUT /ingest/news/{KEY}/v0/seg_{i}.m4s HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            300 * 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[0u8; 1000]).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seg = sample_hls("seg_000.m4s");
    let taken = send_body(s.ingest, "PUT", &format!("/ingest/news/{KEY}/v0/seg_9.m4s"), &[], &seg).await;
    assert_eq!(taken.status, 201, "a declared length reserves nothing: {}", taken.text());
    for mut stream in stalled {
        let mut reply = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut reply)).await;
        assert!(read.is_ok(), "a stalled upload was never answered");
        assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&reply));
    }

    let forget = send_body(s.ingest, "DELETE", &format!("/ingest/news/{KEY}/v0/seg_9.m4s"), &[], b"").await;
    assert_eq!(forget.status, 204);

    // Size caps by kind, and a cap on what one channel keeps in memory.
    let put = |path: String, body: Vec<u8>| async move { send_body(s.ingest, "PUT", &path, &[], &body).await.status };
    assert_eq!(put(format!("/ingest/news/{KEY}/v0/init.mp4"), vec![0u8; 65 * 1024]).await, 413);
    assert_eq!(put(format!("/ingest/news/{KEY}/v0/init.mp4"), sample_hls("init.mp4")).await, 201);
    assert_eq!(put(format!("/ingest/news/{KEY}/v0/seg_000.m4s"), seg.clone()).await, 201);
    assert_eq!(put(format!("/ingest/news/{KEY}/v0/seg_001.m4s"), seg).await, 413, "past the channel's memory cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channels_window_counts_towards_the_ingest_total() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_in(dir.path());
    config.ingest.max_total_bytes = ByteSize(700 * 1024);
    let s = TestServer::start(config).await;
    create_channel(s.api, &format!(r#"{{"id":"news","stream_key":"{KEY}","target_duration":"4s","window":"12s"}}"#))
        .await;
    let put = |name: &str, body: Vec<u8>| {
        let path = format!("/ingest/news/{KEY}/v0/{name}");
        async move { send_body(s.ingest, "PUT", &path, &[], &body).await.status }
    };
    assert_eq!(put("init.mp4", sample_hls("init.mp4")).await, 201);
    for (n, listed) in [(0, &["seg_000.m4s"][..]), (1, &["seg_000.m4s", "seg_001.m4s"][..])] {
        assert_eq!(put(&format!("seg_00{n}.m4s"), sample_hls(&format!("seg_00{n}.m4s"))).await, 201);
        assert_eq!(put("index.m3u8", sample_playlist(listed)).await, 201);
    }
    // Two committed segments (~540 KiB) stay in memory as the window: a third body does not fit.
    assert_eq!(put("seg_002.m4s", sample_hls("seg_002.m4s")).await, 413);
}

/// (peak resident KiB, open descriptors) of a process.
fn memory_and_descriptors(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    (hwm, std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count())
}

/// The memory formula from the README, for the settings the test gives the binary: cache (0) +
/// index cache + in-flight budget + ingest budget + 64 MiB + 64 KiB per connection.
fn formula_kib(connections: u64) -> u64 {
    (16 * MIB + 32 * MIB + 16 * MIB + 64 * MIB + connections * 64 * 1024) / 1024
}

#[test]
fn clients_that_stop_reading_are_cut_and_memory_stays_within_the_formula() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 8 * MIB as usize]).unwrap();
    let root = dir.path().to_str().unwrap();
    let estuary = Estuary::spawn(
        &["--storage-root", root, "--cache-bytes", "0"],
        &[
            ("ESTUARY_LIMITS_IN_FLIGHT_BYTES", "32MiB"),
            ("ESTUARY_LIMITS_IN_FLIGHT_WAIT", "1s"),
            ("ESTUARY_LIMITS_SEND_TIMEOUT", "2s"),
            ("ESTUARY_VOD_INDEX_CACHE_BYTES", "16MiB"),
            ("ESTUARY_INGEST_MAX_TOTAL_BYTES", "16MiB"),
            ("ESTUARY_LOG_ACCESS", "false"),
        ],
    );
    let (_, idle_fds) = memory_and_descriptors(estuary.pid());
    // 500 clients ask for an 8 MiB object with the cache off, and never read a byte.
    let request = format!("GET /static/big.bin HTTP/1.1\r\nHost: {}\r\n\r\n", estuary.edge);
    let mut silent = Vec::new();
    for _ in 0..500 {
        let mut stream = TcpStream::connect(estuary.edge).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        silent.push(stream);
    }
    // Within the send timeout (plus the in-flight wait of those that queued) the server has let go
    // of all of them, while the clients still hold their sockets open.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fds = loop {
        std::thread::sleep(Duration::from_millis(500));
        let (_, fds) = memory_and_descriptors(estuary.pid());
        if fds <= idle_fds + 10 || Instant::now() > deadline {
            break fds;
        }
    };
    assert!(fds <= idle_fds + 10, "{fds} descriptors open (idle: {idle_fds}) with 500 silent clients");
    drop(silent);

    // Then 300 well-behaved players fetch it at once, cold: each gets the object or a 503, never more
    // memory than the formula.
    let players: Vec<_> = (0..300)
        .map(|_| {
            let addr = estuary.edge;
            std::thread::spawn(move || fetch_status_and_length(addr, "/static/big.bin"))
        })
        .collect();
    let results: Vec<(u16, usize)> = players.into_iter().map(|p| p.join().unwrap()).collect();
    assert!(results.iter().all(|(status, _)| matches!(status, 200 | 503)), "{results:?}");
    assert!(results.iter().any(|&(status, len)| status == 200 && len == 8 * MIB as usize));
    let (hwm, _) = memory_and_descriptors(estuary.pid());
    let served = results.iter().filter(|(s, _)| *s == 200).count();
    eprintln!(
        "peak RSS {} MiB (formula {} MiB); {served}/300 cold players served",
        hwm / 1024,
        formula_kib(500) / 1024
    );
    assert!(hwm <= formula_kib(500), "peak RSS {hwm} KiB is over the formula's {} KiB", formula_kib(500));
}

#[test]
fn past_the_connection_limit_a_client_gets_a_clear_503() {
    let estuary = Estuary::spawn(&[], &[("ESTUARY_LIMITS_MAX_CONNECTIONS", "20")]);
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(estuary.edge).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = fetch_status_and_length(estuary.edge, "/static/sample/hls/master.m3u8");
    assert_eq!(status, 503);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fetch_status_and_length(estuary.edge, "/static/sample/hls/master.m3u8").0, 200);
}

/// A strict client behind a load balancer: keep-alive, never retries a request; opens a new
/// connection only when told `Connection: close`, and only to a pod that is still ready (the load
/// balancer takes a pod whose `/readyz` fails out of rotation for new connections).
/// Returns (requests answered, requests lost, answers that said close).
fn strict_client(addr: SocketAddr, api: SocketAddr, stop: Arc<std::sync::atomic::AtomicBool>) -> (u32, u32, u32) {
    let (mut answered, mut lost, mut closes) = (0, 0, 0);
    let mut connection: Option<TcpStream> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let stream = match connection.take() {
            Some(s) => s,
            None if fetch_status_and_length(api, "/readyz").0 != 200 => break,
            None => match TcpStream::connect(addr) {
                Ok(s) => s,
                Err(_) => break, // the listener is gone: nothing more was sent, nothing lost
            },
        };
        let mut stream = stream;
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        if write!(stream, "GET /static/sample/hls/master.m3u8 HTTP/1.1\r\nHost: {addr}\r\n\r\n").is_err() {
            lost += 1;
            continue;
        }
        match read_response(&mut stream) {
            Some(close) => {
                answered += 1;
                if close {
                    closes += 1;
                } else {
                    connection = Some(stream);
                }
            }
            None => lost += 1,
        }
    }
    (answered, lost, closes)
}

/// Reads one response with a `Content-Length` body; `Some(connection_close)`, or `None` if the
/// connection ended first.
fn read_response(stream: &mut TcpStream) -> Option<bool> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok())?;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(head.lines().any(|l| l.trim() == "connection: close"))
}

#[test]
fn a_strict_keep_alive_client_loses_no_request_through_sigterm() {
    let mut estuary = Estuary::spawn(&[], &[("ESTUARY_SHUTDOWN_DRAIN_DELAY", "2s"), ("ESTUARY_LOG_ACCESS", "false")]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, api, stop) = (estuary.edge, estuary.api, stop.clone());
            std::thread::spawn(move || strict_client(addr, api, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    estuary.terminate();
    let status = estuary.wait_exit(Duration::from_secs(30)).expect("estuary exits");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(status.success());
    for client in clients {
        let (answered, lost, closes) = client.join().unwrap();
        assert!(answered > 0 && closes > 0, "answered {answered}, told to close {closes}");
        assert_eq!(lost, 0, "{lost} requests lost ({answered} answered)");
    }
}

/// Local storage whose first `failures` writes of live segments fail as an outage would.
struct Flaky {
    inner: LocalStorage,
    failures: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl Storage for Flaky {
    fn backend(&self) -> &'static str {
        "flaky"
    }
    async fn probe(&self) -> Result<(), StorageError> {
        self.inner.probe().await
    }
    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError> {
        self.inner.get_range(key, range).await
    }
    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError> {
        let segment = key.as_str().starts_with("live/") && key.as_str().ends_with(".m4s");
        if segment && self.failures.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return Err(StorageError::Unavailable("injected outage".into()));
        }
        self.inner.put(key, body).await
    }
    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.inner.list(prefix).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_write_through_retries_until_the_segment_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_in(dir.path());
    config.storage.breaker_threshold = 100;
    let flaky = Flaky { inner: LocalStorage::new(dir.path()).unwrap(), failures: 4.into() };
    let s = TestServer::start_with(config, Some(Arc::new(flaky))).await;
    create_channel(s.api, &format!(r#"{{"id":"news","stream_key":"{KEY}","target_duration":"4s","window":"12s"}}"#))
        .await;
    push_sample(s.ingest, &format!("/ingest/news/{KEY}/v0"), &[], 201).await;
    // The segment's first writes fail; it is written all the same, and the metrics say so.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let stored: Vec<String> = common::files_below(&dir.path().join("live/news"))
            .into_iter()
            .filter(|f| f.contains("/v0/") && f.ends_with(".m4s"))
            .collect();
        if !stored.is_empty() || Instant::now() > deadline {
            break stored.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(stored, 1, "the segment never reached storage");
    let metrics = get(s.api, "/metrics").await.text();
    let retries: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("estuary_live_write_retries_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(retries >= 1.0, "{metrics}");
}

/// Packaging on the fly with the cache off: 256 players fetching segments at once never make the
/// process hold their segments (each response streams its samples a chunk at a time), so peak
/// memory grows by at most 48 MiB however many are in flight (built whole, each held its ~3 MiB
/// segment and the reads behind it: about 240 MiB more in the same run). The release build peaks at
/// 36-48 MB in the peer kit at 256 connections.
#[test]
fn packaged_segments_with_the_cache_off_hold_a_chunk_not_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    // 12 s of nearly lossless 640x360 H.264: two 6 s segments of about 3 MB, like the peer kit's.
    let made = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "4", "-g", "50", "-pix_fmt", "yuv420p"])
        .arg(dir.path().join("clip.mp4"))
        .status()
        .expect("ffmpeg is needed (./scripts/test installs it)");
    assert!(made.success());
    let root = dir.path().to_str().unwrap();
    let estuary = Estuary::spawn(&["--storage-root", root, "--cache-bytes", "0"], &[("ESTUARY_LOG_ACCESS", "false")]);
    let paths: Vec<String> = (1..=2).map(|n| format!("/vod/clip.mp4/v0/{n}.m4s")).collect();
    let lengths: Vec<usize> = paths.iter().map(|p| fetch_status_and_length(estuary.edge, p).1).collect();
    assert!(lengths.iter().all(|&l| l > 2 * MIB as usize), "segments of a few MiB: {lengths:?}");
    let (before, _) = memory_and_descriptors(estuary.pid());
    let players: Vec<_> = (0..256)
        .map(|i| {
            let (addr, paths, lengths) = (estuary.edge, paths.clone(), lengths.clone());
            std::thread::spawn(move || {
                (0..4).all(|k| {
                    let j = (i + k) % paths.len();
                    fetch_status_and_length(addr, &paths[j]) == (200, lengths[j])
                })
            })
        })
        .collect();
    let whole = players.into_iter().map(|p| p.join().unwrap()).filter(|&ok| ok).count();
    assert_eq!(whole, 256, "every player got every segment whole");
    let (hwm, _) = memory_and_descriptors(estuary.pid());
    let grew = hwm.saturating_sub(before);
    eprintln!("peak RSS {} MiB ({} MiB before) with 256 players fetching packaged segments", hwm / 1024, before / 1024);
    // 256 responses of one 64 KiB chunk (two while one is being written) and their connections.
    assert!(grew <= 48 * 1024, "peak RSS grew by {grew} KiB for 256 players, over 48 MiB");

    // The source cut short under the streamed segments (its index still the old one): each response
    // ends short of its Content-Length, and the server goes on.
    let clip = dir.path().join("clip.mp4");
    let size = std::fs::metadata(&clip).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&clip).unwrap().set_len(size / 2).unwrap();
    let (status, len) = fetch_status_and_length(estuary.edge, &paths[1]);
    assert!(status != 200 || len < lengths[1], "a segment past the cut came whole: {status} {len}");
    assert_eq!(fetch_status_and_length(estuary.edge, "/healthz").0, 200, "the server went on");
}
