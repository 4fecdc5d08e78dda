//! Real browser players: headless Chromium runs hls.js and dash.js from a page on another origin,
//! against the edge, and plays the sample packaged on the fly (HLS and DASH) for several seconds:
//! the MSE codecs strings, the fMP4 boxes, CORS and the timestamps all have to be right for that.

mod common;

use std::time::Duration;

use common::browser::{Browser, PageServer};
use common::client::{get, send_body};
use common::encoder::{Encoder, Push};
use common::live_push::create_channel;
use common::{TestServer, test_config, test_config_in};

/// Plays `src` with `player` until the media clock passes `until` seconds; the page's report.
fn play(page: &PageServer, player: &str, src: &str, until: u32) -> serde_json::Value {
    play_with(page, player, src, until, false)
}

/// [`play`], with hls.js's low-latency mode on or off.
fn play_with(page: &PageServer, player: &str, src: &str, until: u32, low_latency: bool) -> serde_json::Value {
    play_page(page, &format!("player={player}&until={until}&ll={}&src={src}", u8::from(low_latency)))
}

/// Opens the player page with `query`; the page's report.
fn play_page(page: &PageServer, query: &str) -> serde_json::Value {
    page.play(query)
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
    // hls.js plays the MPEG-TS variant through its transmuxer.
    let sources = [
        ("hls", format!("{base}/master.m3u8")),
        ("dash", format!("{base}/manifest.mpd")),
        ("hls", format!("{base}/ts/master.m3u8")),
    ];
    for (player, src) in sources {
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

/// The sample's English subtitles (`assets/sample/subtitled.json`): hls.js (with fMP4 and with
/// MPEG-TS variants, each timed by its own `X-TIMESTAMP-MAP`) and dash.js (one `text/vtt` file)
/// switch to the track, and its cues land on the video's timeline where the WebVTT file puts them.
#[tokio::test(flavor = "multi_thread")]
async fn hls_js_and_dash_js_show_subtitles_on_the_video_timeline() {
    let s = TestServer::start(test_config()).await;
    let page = PageServer::start();
    let base = format!("http://{}/vod/sample/subtitled.json", s.edge);
    let sources = [
        ("hls", format!("{base}/master.m3u8")),
        ("hls", format!("{base}/ts/master.m3u8")),
        ("dash", format!("{base}/manifest.mpd")),
    ];
    for (player, src) in sources {
        let query = format!("player={player}&until=12&subs=1&src={src}");
        let report = tokio::task::block_in_place(|| play_page(&page, &query));
        eprintln!("{player} {src}: {report}");
        assert_played(&report, player, 12.0, &[(640, 360)]);
        let tracks = report["text_tracks"].as_array().unwrap();
        let english = tracks
            .iter()
            .find(|t| t["language"] == "en" && t["mode"] == "showing")
            .unwrap_or_else(|| panic!("{src}: no English track showing: {report}"));
        if player == "hls" {
            // dash.js labels the element's track with the adaptation set's id, whatever its `Label`.
            assert_eq!(english["label"], "English", "{src}");
        }
        let cues = english["cues"].as_array().unwrap();
        // The cues of the 12 s played, each once (the one across a segment bound too), at the times
        // en.vtt gives, within a frame, from where the media starts on the element's timeline (hls.js
        // puts MPEG-TS's first decode time at 0, so its first picture, 0.08 s later, is there).
        let zero = report["media_start"].as_f64().unwrap();
        assert!(zero < 0.2, "{src}: the media starts at {zero}");
        for (start, end, text) in [
            (0.5, 3.0, "The test pattern starts."),
            (4.0, 7.5, "A cue across the first segment bound."),
            (9.0, 11.0, "<i>Beep</i> &amp; colour bars."),
        ] {
            let found: Vec<_> = cues.iter().filter(|c| c["text"] == text).collect();
            assert_eq!(found.len(), 1, "{src}: cue {text:?} in {cues:?}");
            let (s, e) = (found[0]["start"].as_f64().unwrap() - zero, found[0]["end"].as_f64().unwrap() - zero);
            assert!(
                (s - start).abs() < 0.04 && (e - end).abs() < 0.04,
                "{src}: {text:?} at {s}..{e}, not {start}..{end}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_js_and_dash_js_play_a_live_channel() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    // ffmpeg pushes to the ingest URL the API handed out (the generated key in its path), with no
    // -http_persistent and no credentials anywhere else; dash.js resolves the MPD's relative UTCTiming.
    let created = create_channel(s.api, r#"{"id":"cup","target_duration":"2s","window":"12s"}"#).await;
    let key = created["stream_key"].as_str().unwrap();
    assert_eq!(created["ingest_url"], format!("http://127.0.0.1:{}/ingest/cup/{key}/", s.ingest.port()));
    let _encoder = Encoder::start(s.ingest, "cup", key, Push { seconds: 60, ..Push::default() });
    play_live_channel(s.edge, "live").await;
}

/// Once `edge` lists a few segments of channel `cup` (as players join after a stream is announced),
/// hls.js and dash.js play it for 6 s.
async fn play_live_channel(edge: std::net::SocketAddr, label: &str) {
    let mut segments = 0;
    for _ in 0..100 {
        segments = get(edge, "/live/cup/v0.m3u8").await.text().matches("#EXTINF").count();
        if segments >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(segments >= 3, "{label}: the channel never went live");
    let page = PageServer::start();
    let base = format!("http://{edge}/live/cup");
    for (player, src) in [("hls", format!("{base}/master.m3u8")), ("dash", format!("{base}/manifest.mpd"))] {
        let report = tokio::task::block_in_place(|| play(&page, player, &src, 6));
        eprintln!("{player} {label}: {report}");
        // The encoder's two variants: the player's ABR may pick either.
        assert_played(&report, player, 6.0, &[(320, 180), (160, 90)]);
    }
}

/// The program date-times of a media playlist's segments, in order.
fn program_date_times(playlist: &str) -> Vec<chrono::DateTime<chrono::FixedOffset>> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
        .collect()
}

/// The two static MPDs live writes: a DVR range that starts mid-Period (its Period and
/// `presentationTimeOffset` must be measured from the range's first segment, or its timeline lies past
/// its end), and the recording of a channel with an encoder outage (its duration must reach the end
/// of the last Period, not just sum the segments).
#[tokio::test(flavor = "multi_thread")]
async fn dash_js_plays_a_dvr_range_and_a_recording_with_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    let created =
        create_channel(s.api, r#"{"id":"final","target_duration":"2s","window":"12s","idle_timeout":"120s"}"#).await;
    let key = created["stream_key"].as_str().unwrap().to_owned();
    // Two encoder sessions with an outage between them.
    tokio::task::block_in_place(|| {
        Encoder::start(s.ingest, "final", &key, Push { seconds: 12, ..Push::default() }).wait()
    });
    tokio::time::sleep(Duration::from_secs(6)).await;
    let second = Push { seconds: 10, tone: 880, ..Push::default() };
    tokio::task::block_in_place(|| Encoder::start(s.ingest, "final", &key, second).wait());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = send_body(s.api, "POST", "/api/v1/channels/final/stop", &[], b"").await;
    assert!(r.status < 300, "{}", r.text());

    let recording = get(s.edge, "/live/final/v0.m3u8?start=0").await.text();
    let pdts = program_date_times(&recording);
    assert!(pdts.len() >= 10 && recording.contains("#EXT-X-DISCONTINUITY\n"), "{recording}");
    let page = PageServer::start();
    let base = format!("http://{}/live/final", s.edge);

    // A closed DVR range from the fourth segment on: three segments, 6 s, all after the Period began.
    let (from, to) =
        (pdts[3].timestamp_millis() as f64 / 1000.0 + 0.1, pdts[5].timestamp_millis() as f64 / 1000.0 + 0.1);
    let range = format!("?start={from:.3}&end={to:.3}");
    let mpd = get(s.edge, &format!("/live/final/manifest.mpd{range}")).await.text();
    assert!(mpd.contains("type=\"static\"") && mpd.contains("start=\"PT0S\""), "{mpd}");
    for (player, src) in
        [("dash", format!("{base}/manifest.mpd{range}")), ("hls", format!("{base}/master.m3u8{range}"))]
    {
        let report = tokio::task::block_in_place(|| play(&page, player, &src.replace('&', "%26"), 4));
        eprintln!("{player} DVR range: {report}");
        assert_played(&report, player, 4.0, &[(320, 180), (160, 90)]);
    }

    // The recording: the second session's Period starts after the outage, and plays to near its end.
    let mpd = get(s.edge, "/live/final/manifest.mpd?start=0").await.text();
    let starts: Vec<f64> = mpd
        .match_indices("<Period id=")
        .map(|(i, _)| {
            let tail = &mpd[i..];
            let start = &tail[tail.find("start=\"PT").unwrap() + 9..];
            start[..start.find('S').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(starts.len(), 2, "{mpd}");
    let until = (starts[1] + 6.0).ceil() as u32;
    let report = tokio::task::block_in_place(|| play(&page, "dash", &format!("{base}/manifest.mpd?start=0"), until));
    eprintln!("dash recording: {report}");
    assert_eq!(report["ok"], true, "the recording's last Period is reachable: {report}\n{mpd}");
    assert!(report["played"].as_str().unwrap().parse::<f64>().unwrap() >= f64::from(until), "{report}\n{mpd}");
}

/// A cluster: ffmpeg pushes into pod A, hls.js and dash.js play the channel from pod B (a real
/// Redis shares the channel; segments come from the storage both pods use).
#[tokio::test(flavor = "multi_thread")]
async fn hls_js_and_dash_js_play_a_channel_from_a_pod_that_did_not_take_it() {
    let cluster = common::cluster::Cluster::start(2, &[]);
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    let created = create_channel(a.api, r#"{"id":"cup","target_duration":"2s","window":"12s"}"#).await;
    let key = created["stream_key"].as_str().unwrap();
    let _encoder = Encoder::start(a.ingest.unwrap(), "cup", key, Push { seconds: 60, ..Push::default() });
    play_live_channel(b.edge, "from pod B").await;
}

/// Low latency in a browser: ffmpeg's DASH muxer pushes 0.5 s chunks; hls.js in low-latency mode
/// plays the channel from its LL-HLS parts, then in classic mode from whole segments; dash.js plays
/// its LL-DASH MPD (segments sent as they are made) and turns its low-latency mode on from it, and
/// so does Shaka in its low-latency mode, within 3 s of the live edge. Each reports its latency (wall clock minus the playhead's program date-time), printed for the record.
#[tokio::test(flavor = "multi_thread")]
async fn hls_js_and_dash_js_play_low_latency_closer_to_the_live_edge() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    let created = create_channel(s.api, r#"{"id":"cup","target_duration":"2s","window":"12s"}"#).await;
    let key = created["stream_key"].as_str().unwrap();
    let _encoder = Encoder::start_low_latency(s.ingest, "cup", key, 150);
    let mut ready = false;
    for _ in 0..120 {
        let text = get(s.edge, "/live/cup/v0.m3u8").await.text();
        if text.matches("#EXTINF").count() >= 3 && text.contains("#EXT-X-PART:") {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ready, "the channel never listed parts");
    let page = PageServer::start();
    let src = format!("http://{}/live/cup/master.m3u8", s.edge);
    let low = tokio::task::block_in_place(|| play_with(&page, "hls", &src, 8, true));
    eprintln!("hls.js, low-latency mode: {low}");
    assert_played(&low, "hls.js low-latency", 8.0, &[(320, 180)]);
    assert_eq!(low["parts"], true, "hls.js read the parts: {low}");
    let classic = tokio::task::block_in_place(|| play_with(&page, "hls", &src, 8, false));
    eprintln!("hls.js, classic: {classic}");
    assert_played(&classic, "hls.js classic", 8.0, &[(320, 180)]);
    assert!(low["latency_p50_ms"].is_number() && classic["latency_p50_ms"].is_number(), "{low} {classic}");
    let mpd = format!("http://{}/live/cup/manifest.mpd", s.edge);
    let dash = tokio::task::block_in_place(|| play_with(&page, "dash", &mpd, 8, true));
    eprintln!("dash.js, LL-DASH: {dash}");
    assert_played(&dash, "dash.js low-latency", 8.0, &[(320, 180)]);
    assert_eq!(dash["dash_low_latency"], true, "dash.js took the MPD as low latency: {dash}");
    assert!(dash["latency_p50_ms"].is_number(), "{dash}");
    // Shaka in its low-latency mode takes the MPD's suggestedPresentationDelay as its live delay: the
    // LL MPD says the ServiceDescription's target there, so Shaka plays as close as dash.js does.
    let shaka = tokio::task::block_in_place(|| play_with(&page, "shaka", &mpd, 20, true));
    eprintln!("Shaka, LL-DASH: {shaka}");
    assert_played(&shaka, "Shaka low-latency", 20.0, &[(320, 180)]);
    assert_eq!(shaka["shaka_low_latency"], true, "{shaka}");
    let p95 = shaka["latency_p95_ms"].as_f64().unwrap_or_else(|| panic!("Shaka reported no latency: {shaka}"));
    assert!(p95 < 3000.0, "Shaka plays LL-DASH within 3 s of the live edge (p95 over 20 s): {shaka}");
}

/// The preview page on the API tier (`/ui`): it lists the channels and the VOD assets, shows health,
/// and plays a VOD asset and a live channel with hls.js and dash.js that estuary itself serves,
/// showing their bit rate and latency. Screenshotted to `target/tmp/preview-page.png`.
#[tokio::test(flavor = "multi_thread")]
async fn the_preview_page_lists_and_plays_vod_and_live() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(common::assets_dir().join("sample/sample.mp4"), dir.path().join("sample.mp4")).unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    let created = create_channel(s.api, r#"{"id":"cup","target_duration":"2s","window":"12s"}"#).await;
    let key = created["stream_key"].as_str().unwrap();
    let _encoder = Encoder::start(s.ingest, "cup", key, Push { seconds: 60, ..Push::default() });
    let mut segments = 0;
    for _ in 0..100 {
        segments = get(s.edge, "/live/cup/v0.m3u8").await.text().matches("#EXTINF").count();
        if segments >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(segments >= 3, "the channel never went live");

    // What the page lists: the asset, with its playback URLs on the edge.
    let assets: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/assets").await.body).unwrap();
    assert_eq!(assets["assets"][0]["key"], "sample.mp4", "{assets}");
    let vod = assets["assets"][0]["hls"].as_str().unwrap().to_owned();
    assert_eq!(vod, format!("http://127.0.0.1:{}/vod/sample.mp4/master.m3u8", s.edge.port()));
    assert_eq!(get(s.api, "/ui/hls.min.js").await.status, 200, "the players come from estuary");
    assert_eq!(get(s.api, "/api/v1/assets?prefix=../etc").await.status, 400);

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("preview-page.png");
    let _ = std::fs::remove_file(&shot);
    let page = format!("http://{}/ui?play={vod}", s.api);
    tokio::task::block_in_place(|| Browser::screenshot(&page, &shot, (1280, 800)));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "{} bytes", png.len());

    let reports = PageServer::start();
    let live = format!("http://127.0.0.1:{}/live/cup/manifest.mpd", s.edge.port());
    for (src, live) in [(vod, false), (live, true)] {
        let url = format!("http://{}/ui?play={src}&until=6&report=http://{}/report", s.api, reports.addr);
        let _browser = Browser::open(&url);
        let report = tokio::task::block_in_place(|| reports.report(Duration::from_secs(90)))
            .unwrap_or_else(|| panic!("{src}: no report from the preview page"));
        eprintln!("preview page {src}: {report}");
        assert_eq!(report["ok"], true, "{src}: {report}");
        assert!(report["played"].as_f64().unwrap() >= 6.0 && report["frames"].as_u64().unwrap() > 100, "{report}");
        assert!(report["bitrate_bps"].as_u64().unwrap() > 0, "{report}");
        assert!(report["shown"]["bitrate"].as_str().unwrap().ends_with("kbit/s"), "{report}");
        if live {
            assert!(report["latency_ms"].as_f64().unwrap() > 0.0, "{report}");
            assert!(report["shown"]["latency"].as_str().unwrap().ends_with(" s"), "{report}");
        }
    }
}

/// Alternate audio on the MPEG-TS ladder: hls.js plays a two-language set's TS master, switches to
/// the second language (an audio-only TS playlist beside the variant's muxed first language) and
/// plays it.
#[tokio::test(flavor = "multi_thread")]
async fn hls_js_switches_to_the_second_language_of_a_ts_ladder() {
    let dir = tempfile::tempdir().unwrap();
    common::media::two_language_set(dir.path());
    let s = TestServer::start(test_config_in(dir.path())).await;
    let page = PageServer::start();
    let src = format!("http://{}/vod/languages.json/ts/master.m3u8", s.edge);
    let report = tokio::task::block_in_place(|| play_page(&page, &format!("player=hls&until=6&audio=1&src={src}")));
    eprintln!("hls.js, second language over TS: {report}");
    assert_played(&report, "hls.js second language", 6.0, &[(640, 360)]);
    assert_eq!(report["audio_tracks"], serde_json::json!(["ko", "en"]), "{report}");
    assert_eq!((report["audio_track"].as_i64(), report["audio_switched_to"].as_i64()), (Some(1), Some(1)), "{report}");
    assert!(report["audio_fragments"].as_u64().unwrap() > 0, "it loaded the English playlist's segments: {report}");
}
