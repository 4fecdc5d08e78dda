//! Hostile clients, round two, on budgets: a full in-flight byte budget is a 503 for the requests
//! that find no room and never a storage outage; one stream key cannot hold ingest's memory with
//! declared lengths, trickles or a CMAF POST that never cuts a segment; and the memory formula holds
//! on what the kernel charges (resident memory plus the memfd files cached bodies live in).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::client::{fetch_status_and_length as fetch, get, send_body};
use common::live_push::{create_channel, sample_hls, sample_playlist};
use common::process::Estuary;
use common::{TestServer, test_config_in};
use estuary::config::ByteSize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "round-two-stream-key-0123456789";
const OTHER_KEY: &str = "round-two-other-key-0123456789";
const MIB: usize = 1024 * 1024;

fn stats(api: SocketAddr) -> serde_json::Value {
    let mut stream = TcpStream::connect(api).unwrap();
    write!(stream, "GET /api/v1/stats HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap()
}

#[test]
fn a_full_byte_budget_is_a_503_for_that_request_never_a_storage_outage() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..8 {
        std::fs::write(dir.path().join(format!("big{i}.bin")), vec![i as u8; 8 * MIB]).unwrap();
    }
    std::fs::write(dir.path().join("small.bin"), vec![9u8; 256 * 1024]).unwrap();
    let root = dir.path().to_str().unwrap();
    // A 24 MiB budget, a 1 s storage deadline and a 3 s wait for room: a wait that counted as storage
    // time would time out as a 504 and count towards the breaker (threshold 3).
    let estuary = Estuary::spawn(
        &["--storage-root", root, "--cache-bytes", "0"],
        &[
            ("ESTUARY_LIMITS_IN_FLIGHT_BYTES", "24MiB"),
            ("ESTUARY_LIMITS_IN_FLIGHT_WAIT", "3s"),
            ("ESTUARY_LIMITS_SEND_TIMEOUT", "4s"),
            ("ESTUARY_STORAGE_DEADLINE", "1s"),
            ("ESTUARY_STORAGE_BREAKER_THRESHOLD", "3"),
            ("ESTUARY_LOG_ACCESS", "false"),
        ],
    );
    // Eight clients each ask for a different cold 8 MiB object and never read: the budget is full.
    let request = |i: usize| format!("GET /static/big{i}.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let silent: Vec<TcpStream> = (0..8)
        .map(|i| {
            let mut s = TcpStream::connect(estuary.edge).unwrap();
            s.write_all(request(i).as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A normal player fetches uncached objects meanwhile, each to its end.
    let (mut statuses, mut circuit_seen) = (Vec::new(), Vec::new());
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        let path = if statuses.len() % 2 == 0 { "/static/small.bin" } else { "/static/big7.bin" };
        let (status, len) = fetch(estuary.edge, path);
        assert!(status != 200 || len == 256 * 1024 || len == 8 * MIB, "{path}: {len} bytes");
        statuses.push(status);
        circuit_seen.push(stats(estuary.api)["storage_circuit"].as_str().unwrap_or("?").to_owned());
    }
    drop(silent);
    let after = stats(estuary.api);
    let served = statuses.iter().filter(|&&s| s == 200).count();
    let count = |status: u16| statuses.iter().filter(|&&s| s == status).count();
    let open = circuit_seen.iter().filter(|c| *c != "closed").count();
    eprintln!(
        "player: {served}/{} served, {} x 503, {} x 504; circuit not closed in {open}/{} looks",
        statuses.len(),
        count(503),
        count(504),
        circuit_seen.len()
    );
    assert!(statuses.iter().all(|&s| s == 200 || s == 503), "only 200, or 503 for want of room: {statuses:?}");
    assert!(circuit_seen.iter().all(|c| c == "closed"), "the breaker never opened: {circuit_seen:?}");
    assert_eq!(after["storage"]["errors"], 0, "no storage error was counted: {after}");
    assert!(served > 0, "once the silent clients are cut (send timeout), the player is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_lengths_and_trickles_hold_no_room_from_other_channels() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_in(dir.path());
    config.ingest.body_timeout = Duration::from_secs(1);
    config.ingest.min_body_rate = ByteSize(1024);
    config.ingest.max_channel_bytes = ByteSize(MIB as u64);
    config.ingest.max_total_bytes = ByteSize(2 * MIB as u64);
    let s = TestServer::start(config).await;
    for (id, key) in [("squat", KEY), ("news", OTHER_KEY)] {
        let json = format!(r#"{{"id":"{id}","stream_key":"{key}","target_duration":"4s","window":"12s"}}"#);
        create_channel(s.api, &json).await;
    }
    // One key opens 40 uploads that each declare 64 MiB and send a byte now and then, under the
    // idle timeout.
    let mut trickles = Vec::new();
    for i in 0..40 {
        let mut stream = tokio::net::TcpStream::connect(s.ingest).await.unwrap();
        let head = format!(
            "PUT /ingest/squat/{KEY}/v0/seg_{i}.m4s HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            64 * MIB
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        trickles.push(stream);
    }
    let feeding = tokio::spawn(async move {
        let mut answers = Vec::new();
        for _ in 0..12 {
            for stream in trickles.iter_mut() {
                let _ = stream.write_all(b"x").await;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        for mut stream in trickles {
            let mut reply = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
            answers.push(String::from_utf8_lossy(&reply).lines().next().unwrap_or("").to_owned());
        }
        answers
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile another channel's encoder pushes as usual: every upload is taken.
    let put = |name: &str, body: Vec<u8>| {
        let path = format!("/ingest/news/{OTHER_KEY}/v0/{name}");
        async move { send_body(s.ingest, "PUT", &path, &[], &body).await.status }
    };
    assert_eq!(put("init.mp4", sample_hls("init.mp4")).await, 201);
    assert_eq!(put("seg_000.m4s", sample_hls("seg_000.m4s")).await, 201);
    assert_eq!(put("index.m3u8", sample_playlist(&["seg_000.m4s"])).await, 201);
    // The trickles fall behind 1 KiB/s once their first second is over: each gets 408.
    let answers = feeding.await.unwrap();
    assert_eq!(answers.len(), 40);
    assert!(answers.iter().all(|a| a.starts_with("HTTP/1.1 408")), "{answers:?}");
    // One key's fast uploads that never end hold at most its channel's share (1 MiB): the third
    // 400 KiB body in flight is refused, and the other channel still has room.
    let mut open = Vec::new();
    for i in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(s.ingest).await.unwrap();
        let head = format!(
            "PUT /ingest/squat/{KEY}/v1/seg_{i}.m4s HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            8 * MIB
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(&vec![0u8; 400 * 1024]).await;
        open.push(stream);
    }
    // Within the 1 s idle timeout, so the first two still hold their bytes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = 0;
    for stream in open.iter_mut() {
        let mut first = [0u8; 12];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut first)).await
            && first[..n].starts_with(b"HTTP/1.1 413")
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 1, "the body past the channel's 1 MiB share is refused");
    assert_eq!(put("seg_001.m4s", sample_hls("seg_001.m4s")).await, 201);
    drop(open);
}

/// The bundled sample as a CMAF ingest stream: its header, then `fragments` of its 4 s fragments.
fn cmaf_stream(fragments: usize) -> Vec<u8> {
    let mut body = sample_hls("init.mp4");
    for n in 0..fragments {
        body.extend(sample_hls(&format!("seg_00{n}.m4s")));
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmaf_post_stays_under_the_upload_and_channel_caps_and_tracks_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_in(dir.path());
    config.ingest.max_init_bytes = ByteSize(1024);
    let s = TestServer::start(config.clone()).await;
    let channel = |id: &str, target: &str| {
        format!(r#"{{"id":"{id}","stream_key":"{KEY}","target_duration":"{target}","window":"12s"}}"#)
    };
    create_channel(s.api, &channel("tracks", "4s")).await;
    // A CMAF header is an init segment: over ingest.max_init_bytes it is refused, as a PUT would be.
    let post = |channel: &'static str, track: String, body: Vec<u8>| async move {
        send_body(s.ingest, "POST", &format!("/ingest/{channel}/{KEY}/Streams({track})"), &[], &body).await
    };
    let big_header = post("tracks", "v".into(), cmaf_stream(1)).await;
    assert_eq!(big_header.status, 413, "{}", big_header.text());
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_in(dir.path());
    config.ingest.max_init_bytes = ByteSize(MIB as u64);
    config.ingest.max_body_bytes = ByteSize(600 * 1024);
    let s = TestServer::start(config).await;
    create_channel(s.api, &channel("tracks", "4s")).await;
    create_channel(s.api, &channel("never", "30s")).await;
    let post = |channel: &'static str, track: String, body: Vec<u8>| async move {
        send_body(s.ingest, "POST", &format!("/ingest/{channel}/{KEY}/Streams({track})"), &[], &body).await
    };
    // Fragments that never cut a segment (a 30 s grid, 12 s of media) grow it only to what one upload may be.
    let endless = post("never", "v".into(), cmaf_stream(3)).await;
    assert_eq!(endless.status, 413, "{}", endless.text());
    // Each POST of a new track makes a variant; past 32 a new one is refused with a reason.
    let mut statuses = Vec::new();
    for t in 0..36 {
        statuses.push(post("tracks", format!("t{t}"), cmaf_stream(2)).await.status);
    }
    assert!(statuses[..32].iter().all(|&s| s == 200), "{statuses:?}");
    assert!(statuses[32..].iter().all(|&s| s == 422), "{statuses:?}");
    let master = get(s.edge, "/live/tracks/master.m3u8").await;
    assert_eq!(master.status, 200);
    let variants = master.text().lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")).count();
    assert!((1..=32).contains(&variants), "{variants} variants:\n{}", master.text());
}

/// What the kernel charges the process for, in KiB: its resident memory plus the memfd files that
/// cached bodies live in (shared memory: in the cgroup's `memory.current`, never in `VmRSS`).
fn charged_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let mut memfd = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
        let is_memfd = std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().starts_with("/memfd:"));
        if is_memfd && let Ok(md) = std::fs::metadata(fd.path()) {
            memfd += md.len() / 1024;
        }
    }
    (rss, memfd)
}

#[test]
fn the_memory_formula_holds_on_resident_memory_plus_cached_bodies_in_memfd() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..48 {
        std::fs::write(dir.path().join(format!("obj{i}.bin")), vec![i as u8; 2 * MIB]).unwrap();
    }
    let root = dir.path().to_str().unwrap();
    let estuary = Estuary::spawn(
        &["--storage-root", root, "--cache-bytes", "64MiB"],
        &[
            ("ESTUARY_CACHE_MAX_OBJECT_BYTES", "4MiB"),
            ("ESTUARY_LIMITS_IN_FLIGHT_BYTES", "32MiB"),
            ("ESTUARY_VOD_INDEX_CACHE_BYTES", "16MiB"),
            ("ESTUARY_INGEST_MAX_TOTAL_BYTES", "16MiB"),
            ("ESTUARY_LOG_ACCESS", "false"),
        ],
    );
    // Sixteen fast players fetch 96 MiB of distinct 2 MiB objects over and over: the cache fills
    // (its bodies in memfd files) and evicts, while bodies in flight come and go.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let players: Vec<_> = (0..16)
        .map(|p| {
            let (addr, stop) = (estuary.edge, stop.clone());
            std::thread::spawn(move || {
                let mut n = p;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, len) = fetch(addr, &format!("/static/obj{}.bin", n % 48));
                    assert!(status == 503 || (status == 200 && len == 2 * MIB), "{status} {len}");
                    n += 7;
                }
            })
        })
        .collect();
    let (mut peak, mut peak_memfd, mut peak_rss) = (0, 0, 0);
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let (rss, memfd) = charged_kib(estuary.pid());
        if rss + memfd > peak {
            (peak, peak_rss, peak_memfd) = (rss + memfd, rss, memfd);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in players {
        p.join().unwrap();
    }
    // cache + index cache + in-flight + ingest + 64 MiB + 64 KiB per connection (README).
    let formula = (64 + 16 + 32 + 16 + 64) * 1024 + 16 * 64;
    eprintln!("peak charged {peak} KiB = RSS {peak_rss} + memfd {peak_memfd}; formula {formula} KiB");
    assert!(peak_memfd > 0, "cached bodies live in memfd files, so the test sees them");
    // memfd bodies are charged to the one budget of cache.bytes + in_flight_bytes (an evicted body
    // lives on while a response still sends it).
    assert!(peak_memfd <= (64 + 32) * 1024, "memfd bodies stay within their budget: {peak_memfd} KiB");
    assert!(peak <= formula, "RSS + memfd peaked at {peak} KiB, over the formula's {formula} KiB");
}
