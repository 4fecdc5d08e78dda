//! The LL-HLS player against a real estuary on loopback, fed by ffmpeg's DASH muxer in streaming mode
//! (0.5 s CMAF chunks uploaded as they are encoded): every player follows the parts through preload
//! hints and blocking reloads, with no errors or stalls, and reports its latency; its requests add up
//! with what the server counted.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::http;
use estuary::config::Config;
use estuary::server::{self, StartOptions};
use estuary_load::stats::Kind;
use estuary_load::{Abr, Pace, RunConfig, Scenario, run};

const TOKEN: &str = "ll-load-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ll_hls_players_follow_the_parts_without_errors_or_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.edge.addr = "127.0.0.1:0".parse().unwrap();
    c.api.addr = "127.0.0.1:0".parse().unwrap();
    c.ingest.addr = "127.0.0.1:0".parse().unwrap();
    c.storage.root = dir.path().to_owned();
    c.log.access = false;
    c.validate().unwrap();
    let s = server::start(&c, StartOptions::default()).await.unwrap();
    let (api, edge) = (s.api_addr.unwrap(), s.edge_addr.unwrap());
    let body = format!(r#"{{"id":"ll","token":"{TOKEN}","target_duration":"2s","window":"12s"}}"#);
    let created = http(api, "POST", "/api/v1/channels", &body).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let manifest = format!("http://{}/ingest/ll/{TOKEN}/manifest.mpd", s.ingest_addr.unwrap());
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "24"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "dash", "-streaming", "1", "-ldash", "1", "-seg_duration", "2"])
        .args(["-frag_type", "duration", "-frag_duration", "0.5", "-use_timeline", "0", "-method", "PUT"])
        .args(["-http_persistent", "1", "-hls_playlist", "1", &manifest])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg is needed (./scripts/test installs it)");
    for _ in 0..150 {
        let text = http(edge, "GET", "/live/ll/v0.m3u8", "").await;
        if text.matches("#EXTINF").count() >= 2 && text.contains("#EXT-X-PART:") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let requests = |text: String| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("estuary_http_requests_total{") && l.contains("tier=\"edge\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = requests(http(api, "GET", "/metrics", "").await);
    let players = 40;
    let report = run(RunConfig {
        scenario: Scenario::LlHls,
        urls: vec![format!("http://{edge}/live/ll/master.m3u8")],
        players,
        duration: Duration::from_secs(10),
        ramp: Duration::from_secs(1),
        pace: Pace::Realtime,
        abr: Abr::Fixed(0),
        blocking: true,
        progress: false,
        headers: Vec::new(),
    })
    .await;
    let after = requests(http(api, "GET", "/metrics", "").await);
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    assert_eq!(report.errors, 0, "{}", report.table());
    assert_eq!(report.stalls, 0, "{}", report.table());
    assert_eq!(report.players_never_started, 0, "{}", report.table());
    assert_eq!(report.requests as f64, after - before, "{}", report.table());
    // About 9 s of 0.52 s parts, video and audio, for every player.
    let parts = report.by_kind.iter().find(|k| k.kind == Kind::Part).expect("parts fetched");
    assert!(parts.requests >= players * 2 * 12, "{}", report.table());
    let latency = report.live_latency_ms.as_ref().expect("latency behind the clock");
    eprintln!("{}", report.table());
    assert!(latency.p50 > 0.0 && latency.p50 <= latency.p99, "{}", report.table());
}
