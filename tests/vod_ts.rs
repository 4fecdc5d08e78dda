//! MPEG-TS HLS for VOD (`/vod/{asset}/ts/...`), packaged on the fly from the same MP4 and segment
//! plan as fMP4: ffmpeg gets the source's packets from it (video compared as Annex B with the
//! delimiters, parameter sets and fillers taken out on both sides; audio from ADTS), every segment
//! opens with PAT and PMT, and read one after the other the segments are one stream: continuity
//! counters without a break, a PCR that never goes back.

mod common;

use common::client::get;
use common::compare::{assert_same_stream, framemd5_with};
use common::media::media;
use common::ts::{assert_continuous, packets};
use common::{TestServer, test_config};

async fn server() -> TestServer {
    let mut config = test_config();
    config.storage.root = media().to_owned();
    TestServer::start(config).await
}

/// What a source's H.264 becomes through `h264_mp4toannexb`, without the NAL units a TS muxer may
/// add or move (delimiters 9, SPS 7, PPS 8, filler 12).
/// Timestamps as the streams carry them (`-copyts`): estuary's are the source's plus 10 s.
const SOURCE: &[&str] = &["-copyts", "-bsf:v", "h264_mp4toannexb,filter_units=remove_types=7|8|9|12"];
const OURS: &[&str] = &["-copyts", "-bsf:v", "filter_units=remove_types=7|8|9|12", "-bsf:a", "aac_adtstoasc"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clip_gives_the_source_packets_over_ts_hls() {
    let s = server().await;
    let dir = media();
    for clip in ["sample.mp4", "bframes.mp4", "moov_end.mp4", "irregular.mp4", "audio_only.m4a", "video_only.mp4"] {
        let master_url = format!("http://{}/vod/{clip}/ts/master.m3u8", s.edge);
        let source = dir.join(clip).to_str().unwrap().to_owned();
        let (segments, joined) = variant_segments(&s, clip).await;
        // ffmpeg's HLS demuxer gives the second frame of an audio-only TS stream the first one's
        // timestamp (its probe of the first segment); its TS demuxer reads the same bytes right, so
        // an audio-only variant is read as its segments joined.
        let url = if clip.ends_with(".m4a") { joined.to_str().unwrap().to_owned() } else { master_url.clone() };
        let (expected, ours) =
            tokio::task::spawn_blocking(move || (framemd5_with(&source, SOURCE), framemd5_with(&url, OURS)))
                .await
                .unwrap();
        // The same packets, every stream moved by the same 10 s (so audio stays with video).
        assert_eq!(ours.streams.len(), expected.streams.len(), "{clip}: stream count");
        for kind in expected.streams.keys() {
            let offset = assert_same_stream(&expected, &ours, kind, &format!("{clip} over TS HLS"));
            assert!((offset - 10.0).abs() < 0.001, "{clip}: {kind} moved by {offset} s, not 10");
        }

        let _ = std::fs::remove_file(&joined);
        let pcrs = assert_continuous(&segments, clip);
        assert!(pcrs > segments.len(), "{clip}: a PCR in every segment");
    }
}

/// The segments of an asset's first TS variant (checked as they come), and a file of them joined.
async fn variant_segments(s: &TestServer, clip: &str) -> (Vec<Vec<u8>>, std::path::PathBuf) {
    let master = get(s.edge, &format!("/vod/{clip}/ts/master.m3u8")).await;
    assert_eq!(master.status, 200, "{clip}");
    let text = master.text();
    assert!(!text.contains("TYPE=AUDIO"), "{clip}: audio muxed into the variants, no group:\n{text}");
    let variant = text.lines().find(|l| l.ends_with(".m3u8")).unwrap();
    let playlist = get(s.edge, &format!("/vod/{clip}/ts/{variant}")).await.text();
    assert!(playlist.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"), "{clip}/{variant}:\n{playlist}");
    assert!(!playlist.contains("EXT-X-MAP"), "{clip}/{variant}");
    let mut segments = Vec::new();
    for uri in playlist.lines().filter(|l| l.ends_with(".ts")) {
        let segment = get(s.edge, &format!("/vod/{clip}/ts/{uri}")).await;
        assert_eq!((segment.status, segment.header("content-type")), (200, Some("video/mp2t")), "{uri}");
        // A keyframe opens each video segment: its first PES says random access.
        let first_media = packets(&segment.body).into_iter().find(|p| p.pid == 0x100);
        assert!(first_media.is_none_or(|p| p.start && p.random_access), "{clip}/{uri}");
        segments.push(segment.body);
    }
    let joined = std::env::temp_dir().join(format!("estuary-ts-{}-{clip}.ts", std::process::id()));
    std::fs::write(&joined, segments.concat()).unwrap();
    (segments, joined)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_variants_carry_their_audio_and_unknown_objects_are_404() {
    let s = server().await;
    let master = get(s.edge, "/vod/sample.mp4/ts/master.m3u8").await.text();
    assert!(master.contains("CODECS=\"avc1.64001e,mp4a.40.2\""), "{master}");
    assert!(master.contains("RESOLUTION=640x360") && master.contains("\nv0.m3u8\n"), "{master}");
    for missing in
        ["ts/a0.m3u8", "ts/v1.m3u8", "ts/v0/99.ts", "ts/v0/0.ts", "ts/v0/01.ts", "ts/v0/1.m4s", "ts/manifest.mpd"]
    {
        assert_eq!(get(s.edge, &format!("/vod/sample.mp4/{missing}")).await.status, 404, "{missing}");
    }
    // An audio-only asset's TS variant is its audio.
    let audio = get(s.edge, "/vod/audio_only.m4a/ts/master.m3u8").await.text();
    assert!(audio.contains("CODECS=\"mp4a.40.2\"") && audio.ends_with("a0.m3u8\n"), "{audio}");
}

/// HEVC (with `hvc1` sample entries, parameter sets only in `hvcC`) goes out as TS `stream_type`
/// 0x24 with the VPS, SPS and PPS before every keyframe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_gives_the_source_packets_over_ts_hls() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("hevc.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000", "-t", "8"])
        .args(["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=50:min-keyint=50:log-level=error"])
        .args(["-tag:v", "hvc1", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"])
        .arg(&clip)
        .status()
        .expect("ffmpeg is needed (./scripts/test installs it)");
    assert!(status.success(), "ffmpeg could not encode HEVC");
    let s = TestServer::start(common::test_config_in(dir.path())).await;
    let master = get(s.edge, "/vod/hevc.mp4/ts/master.m3u8").await.text();
    assert!(master.contains("CODECS=\"hvc1.") && master.contains(",mp4a.40.2\""), "{master}");
    let (segments, _) = variant_segments(&s, "hevc.mp4").await;
    assert_continuous(&segments, "hevc.mp4");
    let hevc: &[&str] = &["-bsf:v", "filter_units=remove_types=32|33|34|35|38"];
    let source_args = ["-copyts", "-bsf:v", "hevc_mp4toannexb,filter_units=remove_types=32|33|34|35|38"];
    let ours_args = [&["-copyts"], hevc, &["-bsf:a", "aac_adtstoasc"]].concat();
    let (src, url) = (clip.to_str().unwrap().to_owned(), format!("http://{}/vod/hevc.mp4/ts/master.m3u8", s.edge));
    let (expected, ours) =
        tokio::task::spawn_blocking(move || (framemd5_with(&src, &source_args), framemd5_with(&url, &ours_args)))
            .await
            .unwrap();
    for kind in expected.streams.keys() {
        let offset = assert_same_stream(&expected, &ours, kind, "hevc.mp4 over TS HLS");
        assert!((offset - 10.0).abs() < 0.001, "hevc: {kind} moved by {offset} s");
    }
}
