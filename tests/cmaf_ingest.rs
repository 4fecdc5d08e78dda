//! DASH-IF Live Media Ingest, interface 1 (CMAF), with a script-driven source that follows the
//! spec's message flow: an empty POST to check the endpoint, then one long-running POST per track
//! (`curl -T -` streaming with chunked transfer what ffmpeg's fragmented-MP4 muxer writes to a
//! pipe: the CMAF header, then 0.5 s CMAF fragments as they are encoded). The channel plays as HLS
//! (with LL-HLS parts while a segment is still arriving) and DASH; a broken stream is refused.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::client::{get, send_body};
use common::live_push::create_channel;
use common::tools::probe_live;
use common::{TestServer, test_config_in};
use estuary::packaging::manifest::rules::media_playlist_problems;

const TOKEN: &str = "cmaf-ingest-token-0123456789";

/// One track's source: ffmpeg's fragmented MP4 on a pipe, streamed by curl as one chunked POST.
struct TrackSource(Child);

impl TrackSource {
    fn start(url: &str, input: &str, codec: &str, seconds: u32) -> TrackSource {
        let script = format!(
            "ffmpeg -hide_banner -loglevel error -re -f lavfi -i {input} -t {seconds} {codec} \
             -f mp4 -movflags empty_moov+default_base_moof+frag_keyframe+cmaf -frag_duration 500000 \
             -flush_packets 1 pipe:1 | curl -sS --fail -X POST -T - -H 'Content-Type: video/mp4' '{url}'"
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh, ffmpeg and curl are needed (./scripts/test installs them)");
        TrackSource(child)
    }

    /// Waits for the POST to end; true when curl got a 2xx.
    fn finished_ok(mut self) -> bool {
        let status = self.0.wait().unwrap();
        status.success()
    }
}

impl Drop for TrackSource {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cmaf_ingest_post_per_track_plays_as_hls_and_dash() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    create_channel(s.api, &format!(r#"{{"id":"cmaf","token":"{TOKEN}","target_duration":"2s","window":"12s"}}"#)).await;

    // The source checks the endpoint with an empty POST: 200 with the key, 401 without.
    let probe = |path: String| async move { send_body(s.ingest, "POST", &path, &[], b"").await.status };
    assert_eq!(probe(format!("/ingest/cmaf/{TOKEN}/Streams(video)")).await, 200);
    assert_eq!(probe("/ingest/cmaf/Streams(video)".into()).await, 401);
    assert_eq!(probe(format!("/ingest/cmaf/{TOKEN}/Streams(a/b)")).await, 400);

    let base = format!("http://{}/ingest/cmaf/{TOKEN}", s.ingest);
    let video_codec =
        "-c:v libx264 -preset ultrafast -tune zerolatency -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p";
    let video = TrackSource::start(&format!("{base}/Streams(video)"), "testsrc2=size=320x180:rate=25", video_codec, 14);
    let audio = TrackSource::start(
        &format!("{base}/Streams(audio)"),
        "sine=frequency=440:sample_rate=48000",
        "-c:a aac -b:a 64k",
        14,
    );

    // While the POSTs run: segments, and parts of the segment still arriving.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = get(s.edge, "/live/cmaf/v0.m3u8").await.text();
        let after_last_segment = text.rsplit_once(".m4s\n").map_or("", |(_, tail)| tail);
        if text.matches("#EXTINF").count() >= 2 && after_last_segment.contains("#EXT-X-PART:") {
            break text;
        }
        assert!(Instant::now() < deadline, "no segments and parts in 30 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(media_playlist_problems(&text), Vec::<String>::new(), "{text}");
    let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
    assert!(parsed.segments.iter().all(|seg| (seg.duration - 2.0).abs() < 0.1), "2 s segments: {text}");
    let master = get(s.edge, "/live/cmaf/master.m3u8").await.text();
    assert!(master.contains("TYPE=AUDIO") && master.contains("#EXT-X-STREAM-INF"), "{master}");
    let audio_playlist = get(s.edge, "/live/cmaf/a0.m3u8").await;
    assert_eq!(audio_playlist.status, 200, "{master}");
    let mpd = get(s.edge, "/live/cmaf/manifest.mpd").await.text();
    assert!(mpd.contains("contentType=\"video\"") && mpd.contains("contentType=\"audio\""), "{mpd}");
    let url = format!("http://{}/live/cmaf/master.m3u8", s.edge);
    let streams = tokio::task::spawn_blocking(move || probe_live(&url)).await.unwrap();
    let kinds: Vec<_> = streams["streams"].as_array().unwrap().iter().map(|s| s["codec_type"].clone()).collect();
    assert!(kinds.contains(&"video".into()) && kinds.contains(&"audio".into()), "{streams}");

    // Each POST ends with 200 once its track is done.
    let (video_ok, audio_ok) =
        tokio::task::spawn_blocking(move || (video.finished_ok(), audio.finished_ok())).await.unwrap();
    assert!(video_ok && audio_ok, "both POSTs answered 2xx");

    // A stream that is not CMAF is refused and changes nothing.
    let r =
        send_body(s.ingest, "POST", &format!("/ingest/cmaf/{TOKEN}/Streams(junk)"), &[], b"not a CMAF stream at all")
            .await;
    assert_eq!(r.status, 422, "{}", r.text());
}
