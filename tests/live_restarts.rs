//! Restarts: an encoder that stops and starts again gives a discontinuity (never a sequence reset), and
//! estuary restarted mid-stream keeps counting where it stopped. Real ffmpeg, the real binary.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{get, send_body};
use common::encoder::{Encoder, Push};
use common::process::Estuary;
use estuary::packaging::fmp4::parse::{parse_init, parse_segment};

const TOKEN: &str = "restart-token-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn media(text: &str) -> m3u8_rs::MediaPlaylist {
    m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}: {text}"))
}

fn last_msn(p: &m3u8_rs::MediaPlaylist) -> u64 {
    p.media_sequence + p.segments.len() as u64 - 1
}

/// Polls the v0 playlist until `ready`.
async fn wait_playlist(
    edge: SocketAddr,
    limit: Duration,
    ready: impl Fn(&m3u8_rs::MediaPlaylist) -> bool,
) -> m3u8_rs::MediaPlaylist {
    let deadline = Instant::now() + limit;
    loop {
        let r = get(edge, "/live/news/v0.m3u8").await;
        if r.status == 200 {
            let p = media(&r.text());
            if ready(&p) {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "playlist not ready in {limit:?}: {} {}", r.status, r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_of_the_encoder_and_of_estuary_never_reset_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    let ingest_port = free_port().to_string();
    let ingest_addr = format!("127.0.0.1:{ingest_port}");
    let args = ["--storage-root", root.as_str(), "--ingest-addr", ingest_addr.as_str()];
    let mut estuary = Estuary::spawn(&args, &[]);
    let ingest: SocketAddr = ingest_addr.parse().unwrap();
    let body =
        format!(r#"{{"id":"news","token":"{TOKEN}","target_duration":"2s","window":"12s","idle_timeout":"5m"}}"#);
    let created =
        send_body(estuary.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body.as_bytes())
            .await;
    assert_eq!(created.status, 201, "{}", created.text());

    // Session 1, then the encoder stops (ffmpeg closes its playlists)...
    let push = Push { preemptive_auth: true, ..Push::default() };
    let first = Encoder::start(ingest, "news", TOKEN, Push { seconds: 7, tone: 440, ..push });
    tokio::task::spawn_blocking(move || first.wait()).await.unwrap();
    let before = wait_playlist(estuary.edge, Duration::from_secs(10), |p| p.segments.len() >= 3).await;
    let end_of_first = last_msn(&before);
    let first_epoch = before.segments[0].uri.split('/').nth(1).unwrap().to_owned();

    // ...and starts again from its own sequence 0 with new content.
    let second = Encoder::start(ingest, "news", TOKEN, Push { seconds: 30, tone: 880, ..push });
    let after = wait_playlist(estuary.edge, Duration::from_secs(20), |p| last_msn(p) >= end_of_first + 2).await;
    assert!(after.media_sequence >= before.media_sequence, "the media sequence never goes back");
    let restarted =
        after.segments.iter().position(|s| s.discontinuity).expect("a discontinuity where the encoder restarted");
    // Counting continues right after the old session's last segment (which may have been
    // committed just after we looked at `before`): no reset, no hole.
    let first_new = after.media_sequence + restarted as u64;
    assert!(restarted >= 1, "the old session's last segment is still in the window, just before the new one");
    assert!(
        (end_of_first + 1..=end_of_first + 2).contains(&first_new),
        "new session starts at {first_new}, old ended at {end_of_first}"
    );
    let new_epoch = after.segments[restarted].uri.split('/').nth(1).unwrap().to_owned();
    assert_ne!(new_epoch, first_epoch, "new segment URLs: the CDN never serves an old one");
    let maps = after.segments.iter().filter(|s| s.map.is_some()).count();
    assert_eq!(
        maps,
        2,
        "a new EXT-X-MAP after the discontinuity: {}",
        get(estuary.edge, "/live/news/v0.m3u8").await.text()
    );

    // Decode times go on across the restart, though the new session's tfdt started at 0 again.
    let decode_secs = |init: &[u8], segment: &[u8]| {
        let init = parse_init(init).unwrap();
        let runs = parse_segment(&bytes::Bytes::copy_from_slice(segment), &init).unwrap();
        let timescale = f64::from(init.tracks[0].timescale);
        (
            runs[0].base_decode_time as f64 / timescale,
            (runs[0].base_decode_time + runs[0].duration()) as f64 / timescale,
        )
    };
    let fetch = |uri: String| async move { get(estuary.edge, &format!("/live/news/{uri}")).await.body };
    let map_of = |i: usize| after.segments[..=i].iter().rev().find_map(|s| s.map.as_ref()).unwrap().uri.clone();
    let last_old =
        decode_secs(&fetch(map_of(restarted - 1)).await, &fetch(after.segments[restarted - 1].uri.clone()).await);
    let first_new = decode_secs(&fetch(map_of(restarted)).await, &fetch(after.segments[restarted].uri.clone()).await);
    assert!(
        first_new.0 >= last_old.1 - 0.001,
        "decode times continue: old ended at {last_old:?}, new starts {first_new:?}"
    );

    // Estuary restarts under the running encoder (which keeps pushing and ignores the failures).
    let served_before = wait_playlist(estuary.edge, Duration::from_secs(10), |p| last_msn(p) >= end_of_first + 3).await;
    let old_segment = served_before.segments.last().unwrap().uri.clone();
    let before_restart = last_msn(&served_before);
    estuary.terminate();
    assert!(estuary.wait_exit(Duration::from_secs(30)).unwrap().success());
    let estuary = Estuary::spawn(&args, &[]);
    let resumed = wait_playlist(estuary.edge, Duration::from_secs(20), |p| last_msn(p) >= before_restart + 2).await;
    assert!(
        resumed.media_sequence >= served_before.media_sequence,
        "counting resumed, no reset: {} < {}",
        resumed.media_sequence,
        served_before.media_sequence
    );
    let resumed_dsn = resumed.discontinuity_sequence;
    assert!(resumed_dsn >= served_before.discontinuity_sequence);
    // Segments from before the restart come back from storage.
    let old = get(estuary.edge, &format!("/live/news/{old_segment}")).await;
    assert_eq!(old.status, 200, "{old_segment}");
    drop(second);
}

/// Two processes on one storage root: the second loaded the channel before the first took its
/// stream, so it holds a stale copy (and ends it as idle). Neither its periodic writes nor its last
/// one at shutdown may turn the stored timeline back.
#[tokio::test(flavor = "multi_thread")]
async fn a_process_with_a_stale_copy_never_overwrites_a_newer_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    let ingest_addr = format!("127.0.0.1:{}", free_port());
    let writer = Estuary::spawn(&["--storage-root", root.as_str(), "--ingest-addr", ingest_addr.as_str()], &[]);
    let body =
        format!(r#"{{"id":"news","token":"{TOKEN}","target_duration":"2s","window":"12s","idle_timeout":"2s"}}"#);
    let created =
        send_body(writer.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body.as_bytes())
            .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let other_ingest = format!("127.0.0.1:{}", free_port());
    let mut stale = Estuary::spawn(&["--storage-root", root.as_str(), "--ingest-addr", other_ingest.as_str()], &[]);

    let push = Push { preemptive_auth: true, seconds: 9, ..Push::default() };
    let encoder = Encoder::start(ingest_addr.parse().unwrap(), "news", TOKEN, push);
    tokio::task::spawn_blocking(move || encoder.wait()).await.unwrap();
    let served = wait_playlist(writer.edge, Duration::from_secs(10), |p| p.segments.len() >= 4).await;
    let next_msn = last_msn(&served) + 1;
    // The stale process ends the channel as idle (2 s) and would persist that; then it shuts down.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stale.terminate();
    assert!(stale.wait_exit(Duration::from_secs(30)).unwrap().success());

    let stored = std::fs::read(dir.path().join(".estuary/live/news/timeline.json")).unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert!(
        stored["next_msn"].as_u64().unwrap() >= next_msn,
        "the stored timeline went back to {} (the writer had reached {next_msn})",
        stored["next_msn"]
    );
}
