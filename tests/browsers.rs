//! Real browser players: headless Chromium runs hls.js and dash.js from a page on another origin,
//! against the edge, and plays the sample packaged on the fly (HLS and DASH) for several seconds:
//! the MSE codecs strings, the fMP4 boxes, CORS and the timestamps all have to be right for that.

mod common;

use std::time::Duration;

use common::browser::{Browser, PageServer};
use common::client::{get, send_body};
use common::encoder::{Encoder, Push};
use common::{TestServer, test_config};

/// Plays `src` with `player` until the media clock passes `until` seconds; the page's report.
fn play(page: &PageServer, player: &str, src: &str, until: u32) -> serde_json::Value {
    let url = format!("http://{}/player.html?player={player}&until={until}&src={src}", page.addr);
    let _browser = Browser::open(&url);
    page.report(Duration::from_secs(90)).unwrap_or_else(|| panic!("{player}: no report from the page within 90 s"))
}

fn assert_played(report: &serde_json::Value, label: &str, until: f64, sizes: &[(u64, u64)]) {
    assert_eq!(report["ok"], true, "{label}: {report}");
    assert!(report["played"].as_str().unwrap().parse::<f64>().unwrap() >= until, "{label}: {report}");
    let size = (report["width"].as_u64().unwrap(), report["height"].as_u64().unwrap());
    assert!(sizes.contains(&size), "{label}: {report}");
    // 25 fps: at least the frames of the seconds played were decoded, and audio was decoded too.
    assert!(report["frames"].as_u64().unwrap() >= 25 * until as u64 - 25, "{label}: {report}");
    assert!(report["audio_bytes"].as_u64().unwrap() > 0, "{label}: {report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_js_and_dash_js_play_vod_packaged_on_the_fly() {
    let s = TestServer::start(test_config()).await;
    let page = PageServer::start();
    let base = format!("http://{}/vod/sample/sample.mp4", s.edge);
    for (player, src) in [("hls", format!("{base}/master.m3u8")), ("dash", format!("{base}/manifest.mpd"))] {
        let report = tokio::task::block_in_place(|| play(&page, player, &src, 6));
        eprintln!("{player}: {report}");
        assert_played(&report, player, 6.0, &[(640, 360)]);
    }
    // The page does report failure: a missing asset is a fatal error for each player, not a pass.
    for (player, src) in [("hls", format!("{base}/../nothing.mp4/master.m3u8")), ("dash", format!("{base}/x.mpd"))] {
        let report = tokio::task::block_in_place(|| play(&page, player, &src, 6));
        eprintln!("{player} on a missing asset: {report}");
        assert_eq!(report["ok"], false, "{player}: {report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_js_and_dash_js_play_a_live_channel() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    let s = TestServer::start(config).await;
    let body = br#"{"id":"cup","target_duration":"2s","window":"12s"}"#;
    let r = send_body(s.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    // ffmpeg pushes to the ingest URL the API handed out (the generated key in its path), with no
    // -http_persistent and no credentials anywhere else; dash.js resolves the MPD's relative UTCTiming.
    let created: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let key = created["stream_key"].as_str().unwrap();
    assert_eq!(created["ingest_url"], format!("http://127.0.0.1:{}/ingest/cup/{key}/", s.ingest.port()));
    let _encoder = Encoder::start(s.ingest, "cup", key, Push { seconds: 60, ..Push::default() });
    // Players join once the live window holds a few segments, as after a stream is announced.
    let mut segments = 0;
    for _ in 0..100 {
        segments = get(s.edge, "/live/cup/v0.m3u8").await.text().matches("#EXTINF").count();
        if segments >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(segments >= 3, "the channel never went live");
    let page = PageServer::start();
    let base = format!("http://{}/live/cup", s.edge);
    for (player, src) in [("hls", format!("{base}/master.m3u8")), ("dash", format!("{base}/manifest.mpd"))] {
        let report = tokio::task::block_in_place(|| play(&page, player, &src, 6));
        eprintln!("{player} live: {report}");
        // The encoder's two variants: the player's ABR may pick either.
        assert_played(&report, player, 6.0, &[(320, 180), (160, 90)]);
    }
}
