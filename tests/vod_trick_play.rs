//! Trick play for VOD: I-frame playlists for the fMP4 and the MPEG-TS variants, and the MPD's
//! trick-mode adaptation set. Every keyframe of the source is offered once, and ffmpeg decodes each
//! byte range (after its map: the init segment, or PAT and PMT) to exactly one picture.

mod common;

use common::client::{get, request};
use common::media::media;
use common::tools::run;
use common::{TestServer, test_config};

async fn server() -> TestServer {
    let mut config = test_config();
    config.storage.root = media().to_owned();
    config.vod.dash_trick_mode = true;
    TestServer::start(config).await
}

/// The pictures ffprobe decodes from `bytes`: their presentation times, in seconds.
async fn pictures(bytes: Vec<u8>, name: &str) -> Vec<f64> {
    let file = std::env::temp_dir().join(format!("estuary-trick-{}-{name}", std::process::id()));
    std::fs::write(&file, bytes).unwrap();
    let path = file.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let args = ["-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0", &path];
        run("ffprobe", &args)
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&file);
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().trim_end_matches(',').parse().ok()).collect()
}

/// The presentation times of the source's keyframes, in seconds.
async fn source_keyframes(clip: &str) -> Vec<f64> {
    keyframes_of(&media().join(clip)).await
}

/// The presentation times of the keyframes of the file at `path`, in seconds, as ffprobe reads them.
async fn keyframes_of(path: &std::path::Path) -> Vec<f64> {
    let source = path.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let args = [
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
            &source,
        ];
        run("ffprobe", &args)
    })
    .await
    .unwrap();
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('K'))
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// `(uri, len, offset)` of every byte range of an I-frame playlist.
fn byte_ranges(playlist: &str) -> Vec<(String, u64, u64)> {
    let lines: Vec<&str> = playlist.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(range) = l.strip_prefix("#EXT-X-BYTERANGE:") else { continue };
        let (len, offset) = range.split_once('@').unwrap();
        out.push((lines[i + 1].to_owned(), len.parse().unwrap(), offset.parse().unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i_frame_playlists_give_every_keyframe_as_one_picture() {
    let s = server().await;
    for clip in ["sample.mp4", "bframes.mp4", "irregular.mp4"] {
        let keyframes = source_keyframes(clip).await;
        // fMP4 (the map is the init segment) and MPEG-TS (the map is the first segment's PAT and PMT;
        // timestamps are the source's plus 10 s).
        for (dir, map_line, offset) in [
            ("", "#EXT-X-MAP:URI=\"v0/init.mp4\"\n", 0.0),
            ("ts/", "#EXT-X-MAP:URI=\"v0/1.ts\",BYTERANGE=\"376@0\"\n", 10.0),
        ] {
            let master = get(s.edge, &format!("/vod/{clip}/{dir}master.m3u8")).await.text();
            let line = master.lines().find(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:")).expect("an I-frame stream");
            assert!(line.contains("CODECS=\"avc1.") && line.ends_with("URI=\"v0-iframes.m3u8\""), "{master}");
            let playlist = get(s.edge, &format!("/vod/{clip}/{dir}v0-iframes.m3u8")).await.text();
            assert!(
                playlist.contains("#EXT-X-VERSION:5\n") && playlist.contains("#EXT-X-I-FRAMES-ONLY\n"),
                "{playlist}"
            );
            assert!(playlist.contains(map_line), "{playlist}");
            let problems = estuary::packaging::manifest::rules::media_playlist_problems(&playlist);
            assert!(problems.is_empty(), "{clip} {dir}: {problems:?}");
            let map = if dir.is_empty() {
                get(s.edge, &format!("/vod/{clip}/v0/init.mp4")).await
            } else {
                request(s.edge, "GET", &format!("/vod/{clip}/ts/v0/1.ts"), &[("Range", "bytes=0-375")]).await
            };
            assert!(map.status == 200 || map.status == 206, "{clip} {dir}: map {}", map.status);
            let mut shown = Vec::new();
            for (k, (uri, len, at)) in byte_ranges(&playlist).into_iter().enumerate() {
                let range = format!("bytes={at}-{}", at + len - 1);
                let part =
                    request(s.edge, "GET", &format!("/vod/{clip}/{dir}{uri}"), &[("Range", range.as_str())]).await;
                assert_eq!((part.status, part.body.len() as u64), (206, len), "{clip} {dir}{uri} {range}");
                let name = format!("{clip}-{}{k}", dir.replace('/', "-"));
                let times = pictures([map.body.as_slice(), &part.body].concat(), &name).await;
                assert_eq!(times.len(), 1, "{clip}: {dir}{uri} {range} decodes to {times:?}, not one picture");
                shown.push(times[0] - offset);
            }
            // One per keyframe of the source, each the keyframe at its own time.
            assert_eq!(shown.len(), keyframes.len(), "{clip} {dir}: {shown:?} vs {keyframes:?}");
            for (ours, theirs) in shown.iter().zip(&keyframes) {
                assert!((ours - theirs).abs() < 0.002, "{clip} {dir}: {shown:?} vs {keyframes:?}");
            }
        }
    }
    for missing in [
        "/vod/audio_only.m4a/ts/a0-iframes.m3u8",
        "/vod/audio_only.m4a/a0-iframes.m3u8",
        "/vod/sample.mp4/v0/iframes/9.m4s",
    ] {
        assert_eq!(get(s.edge, missing).await.status, 404, "{missing}");
    }
}

/// Where each I-frame of a playlist starts on its timeline: the sum of the `EXTINF`s before it.
fn playlist_times(playlist: &str) -> Vec<f64> {
    let mut at = 0.0;
    let mut times = Vec::new();
    for l in playlist.lines() {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            times.push(at);
            at += d.trim_end_matches(',').parse::<f64>().unwrap();
        }
    }
    times
}

/// The I-frame playlists' timelines are the keyframes' presentation times, for B-frame streams whose
/// composition delay differs from GOP to GOP (x265's first GOP has two frames of delay, the later
/// ones three; x264 with B-frames too): fMP4 and MPEG-TS alike, within 1 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i_frame_playlist_times_are_the_keyframes_presentation_times() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("hevc.mp4");
    let out = tokio::task::spawn_blocking(move || {
        let args = [
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-t",
            "20",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=50:min-keyint=50:scenecut=0:bframes=3:log-level=error",
            "-tag:v",
            "hvc1",
            "-pix_fmt",
            "yuv420p",
            clip.to_str().unwrap(),
        ];
        run("ffmpeg", &args)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::copy(media().join("bframes.mp4"), dir.path().join("bframes.mp4")).unwrap();
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    let s = TestServer::start(config).await;
    for clip in ["hevc.mp4", "bframes.mp4"] {
        let keyframes = keyframes_of(&dir.path().join(clip)).await;
        assert!(keyframes.len() >= 5, "{clip}: {keyframes:?}");
        for dir in ["", "ts/"] {
            let playlist = get(s.edge, &format!("/vod/{clip}/{dir}v0-iframes.m3u8")).await;
            assert_eq!(playlist.status, 200, "{clip} {dir}");
            let times = playlist_times(&playlist.text());
            assert_eq!(times.len(), keyframes.len(), "{clip} {dir}: {times:?} vs {keyframes:?}");
            for (ours, theirs) in times.iter().zip(&keyframes) {
                let theirs = theirs - keyframes[0];
                assert!((ours - theirs).abs() < 0.001, "{clip} {dir}: {times:?} vs {keyframes:?}");
            }
        }
    }
}

/// DASH trick mode (`vod.dash_trick_mode`): a keyframes-only adaptation set tied to the video's by
/// the DASH-IF scheme, whose segments (after the video's init segment) decode to the segment's
/// keyframes alone. Off by default, the MPD has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mpd_offers_the_keyframes_as_a_trick_mode_set() {
    let s = server().await;
    let mpd = get(s.edge, "/vod/irregular.mp4/manifest.mpd").await.text();
    assert!(
        mpd.contains("<EssentialProperty schemeIdUri=\"http://dashif.org/guidelines/trickmode\" value=\"0\"/>"),
        "{mpd}"
    );
    assert!(mpd.contains("<Representation id=\"v0-iframes\" maxPlayoutRate=\""), "{mpd}");
    let mut ids: Vec<&str> = mpd.split("<AdaptationSet id=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    let count = ids.len();
    ids.dedup();
    assert_eq!((count, ids.len()), (3, 3), "adaptation set ids are unique: {mpd}");
    assert!(mpd.contains("initialization=\"v0/init.mp4\" media=\"v0/iframes/$Number$.m4s\""), "{mpd}");
    let mut config = test_config();
    config.storage.root = media().to_owned();
    let plain = TestServer::start(config).await;
    let default = get(plain.edge, "/vod/irregular.mp4/manifest.mpd").await.text();
    assert!(!default.contains("trickmode"), "{default}");
    let keyframes = source_keyframes("irregular.mp4").await;
    let init = get(s.edge, "/vod/irregular.mp4/v0/init.mp4").await.body;
    let segments = get(s.edge, "/vod/irregular.mp4/v0.m3u8").await.text().matches("#EXTINF").count();
    let mut shown = Vec::new();
    for n in 1..=segments {
        let segment = get(s.edge, &format!("/vod/irregular.mp4/v0/iframes/{n}.m4s")).await;
        assert_eq!(segment.status, 200);
        assert_eq!(segment.header("content-type"), Some("video/iso.segment"));
        shown.extend(pictures([init.as_slice(), &segment.body].concat(), &format!("dash-{n}")).await);
    }
    assert_eq!(shown.len(), keyframes.len(), "{shown:?} vs {keyframes:?}");
    for (ours, theirs) in shown.iter().zip(&keyframes) {
        assert!((ours - theirs).abs() < 0.002, "{shown:?} vs {keyframes:?}");
    }
}
