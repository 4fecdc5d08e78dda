//! The load generator against a real estuary on loopback: its report must add up with what the server
//! counted, show no errors on a healthy server, and count the errors when the server goes away.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::http;
use estuary::config::Config;
use estuary::server::{self, Server, StartOptions};
use estuary_load::{Abr, Pace, RunConfig, Scenario, run};

/// A config on free loopback ports serving `root`, without access logs.
fn config_in(root: PathBuf) -> Config {
    let mut c = Config::default();
    c.edge.addr = "127.0.0.1:0".parse().unwrap();
    c.api.addr = "127.0.0.1:0".parse().unwrap();
    c.ingest.addr = "127.0.0.1:0".parse().unwrap();
    c.storage.root = root;
    c.log.access = false;
    c
}

async fn start(root: PathBuf) -> Server {
    let c = config_in(root);
    c.validate().unwrap();
    server::start(&c, StartOptions::default()).await.unwrap()
}

fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// Edge requests the server counted (all routes, all statuses).
async fn edge_requests(server: &Server) -> f64 {
    let text = http(server.api_addr.unwrap(), "GET", "/metrics", "").await;
    text.lines()
        .filter(|l| l.starts_with("estuary_http_requests_total{") && l.contains("tier=\"edge\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn config(scenario: Scenario, url: String, players: u64, secs: u64) -> RunConfig {
    RunConfig {
        scenario,
        urls: vec![url],
        players,
        duration: Duration::from_secs(secs),
        ramp: Duration::ZERO,
        pace: Pace::Fast,
        abr: Abr::Throughput,
        blocking: false,
        progress: false,
        headers: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vod_and_dash_reports_match_what_the_server_counted() {
    let s = start(assets()).await;
    let edge = s.edge_addr.unwrap();
    for (scenario, url) in [
        (Scenario::Vod, format!("http://{edge}/vod/sample/sample.mp4/master.m3u8")),
        (Scenario::Dash, format!("http://{edge}/vod/sample/sample.mp4/manifest.mpd")),
        (Scenario::Vod, format!("http://{edge}/static/sample/hls/master.m3u8")),
    ] {
        let before = edge_requests(&s).await;
        let report = run(config(scenario, url.clone(), 8, 2)).await;
        let after = edge_requests(&s).await;
        assert_eq!(report.errors, 0, "{url}: {}", report.table());
        assert!(report.requests > 40, "{url}: {}", report.table());
        assert_eq!(report.requests as f64, after - before, "{url}: the generator's count is the server's");
        assert_eq!(report.players_never_started, 0);
        let segments = report.by_kind.iter().find(|k| k.kind == estuary_load::stats::Kind::Segment).unwrap();
        assert!(segments.requests > 20 && segments.mib > 1.0, "{url}");
    }
}

/// `--urls`: players spread across several origins, each counting its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn players_spread_across_several_origins() {
    let (a, b) = (start(assets()).await, start(assets()).await);
    let url = |s: &Server| format!("http://{}/vod/sample/sample.mp4/master.m3u8", s.edge_addr.unwrap());
    let (before_a, before_b) = (edge_requests(&a).await, edge_requests(&b).await);
    let report = run(RunConfig { urls: vec![url(&a), url(&b)], ..config(Scenario::Vod, String::new(), 8, 2) }).await;
    let (served_a, served_b) = (edge_requests(&a).await - before_a, edge_requests(&b).await - before_b);
    assert_eq!(report.errors, 0, "{}", report.table());
    assert_eq!(report.requests as f64, served_a + served_b, "every request reached one of the two");
    // Four players each: about half the requests each (throughput ABR varies a little).
    assert!(
        served_a > report.requests as f64 / 4.0 && served_b > report.requests as f64 / 4.0,
        "{served_a} {served_b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_are_counted_when_the_server_goes_away() {
    let s = start(assets()).await;
    let url = format!("http://{}/vod/sample/sample.mp4/master.m3u8", s.edge_addr.unwrap());
    let load = tokio::spawn(run(config(Scenario::Vod, url, 8, 4)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.shutdown().await;
    let report = load.await.unwrap();
    assert!(report.errors > 0, "{}", report.table());
    assert!(
        report.errors_by_status.contains_key("connect") || report.errors_by_status.contains_key("io"),
        "{:?}",
        report.errors_by_status
    );
    assert!(report.requests > report.errors, "requests before the stop succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_players_with_blocking_reload_see_no_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path().to_owned()).await;
    let token = "load-token-0123456789ab";
    let created = http(
        s.api_addr.unwrap(),
        "POST",
        "/api/v1/channels",
        &format!(r#"{{"id":"load","token":"{token}","target_duration":"2s"}}"#),
    )
    .await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let base = format!("http://{}/ingest/load/{token}", s.ingest_addr.unwrap());
    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-t",
            "16",
        ])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4", "-method", "PUT"])
        .arg(format!("{base}/v0/index.m3u8"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg is needed (./scripts/test installs it)");
    let edge = s.edge_addr.unwrap();
    let playlist = format!("http://{edge}/live/load/v0.m3u8");
    // Wait for the channel to have a few segments.
    for _ in 0..100 {
        if http(edge, "GET", "/live/load/v0.m3u8", "").await.matches("#EXTINF").count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = edge_requests(&s).await;
    let mut cfg = config(Scenario::Live, format!("http://{edge}/live/load/master.m3u8"), 20, 8);
    cfg.blocking = true;
    cfg.abr = Abr::Fixed(0);
    let report = run(cfg).await;
    let after = edge_requests(&s).await;
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    assert_eq!(report.errors, 0, "{}\n{playlist}", report.table());
    assert_eq!(report.stalls, 0, "{}", report.table());
    assert_eq!(report.requests as f64, after - before);
    assert!(report.live_latency_ms.is_some(), "latency measured from EXT-X-PROGRAM-DATE-TIME");
    let playlists = report.by_kind.iter().find(|k| k.kind == estuary_load::stats::Kind::Playlist).unwrap();
    assert!(playlists.requests >= 20 * 3, "each player reloaded its playlist: {}", report.table());
}

/// The binary as an operator runs it: the table on stdout, the same run as JSON in `--json-file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_its_table_and_writes_its_json() {
    let s = start(assets()).await;
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let url = format!("http://{}/vod/sample/sample.mp4/master.m3u8", s.edge_addr.unwrap());
    let before = edge_requests(&s).await;
    let args: Vec<String> =
        ["vod", "--url", &url, "--players", "4", "--duration", "2s", "--pace", "fast", "--threads", "1"]
            .map(String::from)
            .into();
    let out = tokio::task::spawn_blocking({
        let json_path = json_path.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_estuary-load"))
                .args(args)
                .arg("--json-file")
                .arg(&json_path)
                .stderr(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let after = edge_requests(&s).await;
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("vod players=4 ") && table.contains("errors=0"), "{table}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["errors"], 0);
    assert_eq!(report["requests"].as_f64().unwrap(), after - before, "the file reports the run the server saw");
    assert!(table.contains(&format!("requests={} ", report["requests"])), "{table}");
    s.shutdown().await;
}

/// Against an origin locked to its CDN: without the lock's header every request is a 403 and the
/// run exits 2 (over `--max-error-rate`); with `--header` it plays and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_sends_headers_and_fails_a_run_with_errors() {
    let mut c = config_in(assets());
    c.edge.origin_lock_header = "X-Origin-Verify".into();
    c.edge.origin_lock_secret = "from-the-cdn".into();
    let s = server::start(&c, StartOptions::default()).await.unwrap();
    let url = format!("http://{}/vod/sample/sample.mp4/master.m3u8", s.edge_addr.unwrap());
    let run = |extra: &'static [&'static str]| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_estuary-load"))
                .args(["vod", "--url", &url, "--players", "2", "--duration", "1s", "--pace", "fast", "--threads", "1"])
                .args(extra)
                .output()
                .unwrap()
        })
    };
    let locked_out = run(&[]).await.unwrap();
    assert_eq!(locked_out.status.code(), Some(2), "{locked_out:?}");
    assert!(String::from_utf8_lossy(&locked_out.stderr).contains("over --max-error-rate"), "{locked_out:?}");
    let let_in = run(&["--header", "X-Origin-Verify: from-the-cdn"]).await.unwrap();
    assert!(let_in.status.success(), "{let_in:?}");
    assert!(String::from_utf8_lossy(&let_in.stdout).contains("errors=0"), "{let_in:?}");
    let bad = run(&["--header", "no colon"]).await.unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("expected"), "{bad:?}");
    s.shutdown().await;
}
