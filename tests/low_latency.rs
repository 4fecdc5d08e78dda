//! Low-latency live (issue 13). So far: the low-latency encoder itself, and delta playlists.
//! ffmpeg's DASH muxer in streaming mode (0.5 s CMAF chunks, each segment uploaded with chunked
//! transfer while it is encoded, HLS playlists beside the MPD) feeds a channel that players read as
//! whole segments. Parts published while a segment uploads come with the ingest that reads chunks
//! as they arrive.

mod common;

use std::time::{Duration, Instant};

use common::client::{get, send_body};
use common::encoder::Encoder;
use common::tools::probe_live;
use common::{TestServer, test_config};
use estuary::packaging::manifest::rules::media_playlist_problems;

const TOKEN: &str = "test-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_latency_dash_push_plays_as_hls_and_dash() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    let s = TestServer::start(config).await;
    let body = format!(r#"{{"id":"final","token":"{TOKEN}","target_duration":"2s","window":"10s"}}"#);
    let r =
        send_body(s.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body.as_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let _encoder = Encoder::start_low_latency(s.ingest, "final", TOKEN, 12);

    let deadline = Instant::now() + Duration::from_secs(30);
    let (video, audio) = loop {
        let master = get(s.edge, "/live/final/master.m3u8").await.text();
        let playlist = |id: &str| format!("/live/final/{id}.m3u8");
        let (v0, a0) = (get(s.edge, &playlist("v0")).await, get(s.edge, &playlist("a0")).await);
        let segments = |text: &str| text.matches("#EXTINF").count();
        if master.contains("#EXT-X-STREAM-INF") && segments(&v0.text()) >= 2 && segments(&a0.text()) >= 2 {
            break (v0.text(), a0.text());
        }
        assert!(Instant::now() < deadline, "no two segments in 30 s:\n{master}\n{}\n{}", v0.text(), a0.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for text in [&video, &audio] {
        assert_eq!(media_playlist_problems(text), Vec::<String>::new(), "{text}");
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert!(parsed.segments.iter().all(|seg| (seg.duration - 2.0).abs() < 0.1), "2 s segments: {text}");
        let first = &parsed.segments[0].uri;
        let segment = get(s.edge, &format!("/live/final/{first}")).await;
        assert_eq!((segment.status, segment.header("content-type")), (200, Some("video/iso.segment")));
    }
    // Delta playlists are offered; this 10 s window is shorter than their 12 s skip boundary, so
    // a delta request gets the whole playlist (the unit tests skip for real).
    assert!(video.contains("CAN-SKIP-UNTIL=12.000"), "{video}");
    let delta = get(s.edge, "/live/final/v0.m3u8?_HLS_skip=YES").await;
    assert_eq!(delta.status, 200);
    assert_eq!(media_playlist_problems(&delta.text()), Vec::<String>::new(), "{}", delta.text());
    for bad in ["_HLS_part=1", "_HLS_skip=no", "_HLS_msn=1&_HLS_part=x"] {
        assert_eq!(get(s.edge, &format!("/live/final/v0.m3u8?{bad}")).await.status, 400, "{bad}");
    }
    let mpd = get(s.edge, "/live/final/manifest.mpd").await;
    assert_eq!(mpd.status, 200);
    assert!(mpd.text().contains("type=\"dynamic\""), "{}", mpd.text());
    let url = format!("http://{}/live/final/master.m3u8", s.edge);
    let streams = tokio::task::spawn_blocking(move || probe_live(&url)).await.unwrap();
    let kinds: Vec<_> = streams["streams"].as_array().unwrap().iter().map(|s| s["codec_type"].clone()).collect();
    assert!(kinds.contains(&"video".into()) && kinds.contains(&"audio".into()), "{streams}");
}
