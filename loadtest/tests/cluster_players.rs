//! Players on one pod of a cluster while the channel's owner goes away: a real Redis, three estuary
//! servers on one storage folder, two ffmpeg encoders pushing the same channel into pods A and B
//! (B stands by), `estuary-load live` players with blocking reload on pod C. Pod A crashes mid-run
//! (its runtime is dropped at once, as `kill -9` would: no lease released, nothing flushed); B takes
//! the channel over when A's lease lapses; the players on C see no errors.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http;
use estuary::config::Config;
use estuary::server::{self, Server, StartOptions};
use estuary_load::{Abr, Pace, RunConfig, Scenario, run};

const KEY: &str = "cluster-load-key-0123456789";

/// A process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> (Killed, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is needed (./scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Killed(child), port)
}

async fn pod(root: &Path, redis_port: u16) -> Server {
    let mut c = Config::default();
    c.edge.addr = "127.0.0.1:0".parse().unwrap();
    c.api.addr = "127.0.0.1:0".parse().unwrap();
    c.ingest.addr = "127.0.0.1:0".parse().unwrap();
    c.storage.root = root.to_owned();
    c.cluster.redis_url = format!("redis://127.0.0.1:{redis_port}/");
    c.cluster.internal_addr = "127.0.0.1:0".parse().unwrap();
    c.log.access = false;
    c.validate().unwrap();
    server::start(&c, StartOptions::default()).await.unwrap()
}

/// A pod on a runtime of its own, so that it can crash.
struct CrashablePod {
    runtime: tokio::runtime::Runtime,
    server: Server,
}

impl CrashablePod {
    async fn start(root: &Path, redis_port: u16) -> CrashablePod {
        let root = root.to_owned();
        let started = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let server = runtime.block_on(pod(&root, redis_port));
            CrashablePod { runtime, server }
        });
        started.await.unwrap()
    }

    /// Every task of the pod stops where it is, its sockets close: what the other pods see of a
    /// `kill -9`.
    fn crash(self) {
        self.runtime.shutdown_background();
        std::mem::forget(self.server);
    }
}

/// ffmpeg pushing 40 s of 2 s fMP4 segments of channel `load` into `ingest`.
fn encoder(ingest: SocketAddr, tone: u32) -> Killed {
    let base = format!("http://{ingest}/ingest/load/{KEY}");
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", &format!("sine=frequency={tone}:sample_rate=48000"), "-t", "40"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4"])
        .args(["-method", "PUT", "-ignore_io_errors", "1"])
        .arg(format!("{base}/v0/index.m3u8"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg is needed (./scripts/test installs it)");
    Killed(child)
}

fn last_msn(playlist: &str) -> u64 {
    let sequence: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    sequence + playlist.matches("#EXTINF").count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn players_on_a_third_pod_see_no_errors_when_the_owner_dies() {
    let (_redis, port) = redis();
    let dir = tempfile::tempdir().unwrap();
    let a = CrashablePod::start(dir.path(), port).await;
    let (b, c) = (pod(dir.path(), port).await, pod(dir.path(), port).await);
    let a_api = a.server.api_addr.unwrap();
    let body = format!(r#"{{"id":"load","token":"{KEY}","target_duration":"2s","window":"20s"}}"#);
    let created = http(a_api, "POST", "/api/v1/channels", &body).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let _first = encoder(a.server.ingest_addr.unwrap(), 440);
    let edge = c.edge_addr.unwrap();
    for _ in 0..100 {
        if http(edge, "GET", "/live/load/v0.m3u8", "").await.matches("#EXTINF").count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _second = encoder(b.ingest_addr.unwrap(), 880);

    let players = RunConfig {
        scenario: Scenario::Live,
        urls: vec![format!("http://{edge}/live/load/master.m3u8")],
        players: 20,
        duration: Duration::from_secs(24),
        ramp: Duration::ZERO,
        pace: Pace::Realtime,
        abr: Abr::Fixed(0),
        blocking: true,
        progress: false,
        headers: Vec::new(),
    };
    let load = tokio::spawn(run(players));
    tokio::time::sleep(Duration::from_secs(8)).await;
    let before = last_msn(&http(edge, "GET", "/live/load/v0.m3u8", "").await);
    a.crash();
    let report = load.await.unwrap();
    let after = last_msn(&http(edge, "GET", "/live/load/v0.m3u8", "").await);
    eprintln!("{}", report.table());
    assert!(after > before + 2, "pod B went on with the channel: {before} -> {after}");
    assert_eq!(report.errors, 0, "{}", report.table());
    assert_eq!(report.players_never_started, 0, "{}", report.table());

    // The follow delay on pod C (owner's upload to C's playlist), as its histogram has it.
    let metrics = http(c.api_addr.unwrap(), "GET", "/metrics", "").await;
    let buckets: Vec<(String, f64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("estuary_cluster_follow_delay_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (bound, rest) = l.split_once("\"}")?;
            Some((bound.to_owned(), rest.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    assert!(total >= 5.0, "pod C published the segments it followed: {buckets:?}");
    let quantile = |q: f64| buckets.iter().find(|(_, n)| *n >= q * total).map(|(b, _)| b.clone()).unwrap_or_default();
    eprintln!("follow delay on pod C over {total} segments: p50 <= {} s, p99 <= {} s", quantile(0.5), quantile(0.99));
    b.shutdown().await;
    c.shutdown().await;
}
