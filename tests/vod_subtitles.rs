//! VOD subtitles: WebVTT sidecars named by an asset set and `tx3g` tracks inside an MP4 become an HLS
//! `SUBTITLES` group (segmented WebVTT with the `X-TIMESTAMP-MAP` of fMP4 or TS) and a DASH
//! `text/vtt` adaptation set; the playlists are golden; broken subtitle files are clear errors.

mod common;

use common::client::get;
use common::tools::run;
use common::{TestServer, assets_dir, test_config, test_config_in};

/// Compares `path`'s body with `tests/golden/{file}` (`UPDATE_GOLDEN=1` rewrites it).
async fn assert_golden(s: &TestServer, path: &str, file: &str) -> String {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let reply = get(s.edge, path).await;
    assert_eq!(reply.status, 200, "{path}");
    let text = reply.text();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(golden.join(file), &text).unwrap();
    }
    let want =
        std::fs::read_to_string(golden.join(file)).unwrap_or_else(|e| panic!("{file}: {e} (run with UPDATE_GOLDEN=1)"));
    assert_eq!(text, want, "{path} differs from tests/golden/{file}");
    if path.ends_with(".m3u8") && !path.ends_with("master.m3u8") {
        let problems = estuary::packaging::manifest::rules::media_playlist_problems(&text);
        assert!(problems.is_empty(), "{path}: {problems:?}");
    }
    text
}

#[tokio::test]
async fn golden_subtitle_and_i_frame_playlists_of_the_sample() {
    let s = TestServer::start(test_config()).await;
    let set = "/vod/sample/subtitled.json";
    for (path, file) in [
        (format!("{set}/master.m3u8"), "subtitled-master.m3u8"),
        (format!("{set}/s0.m3u8"), "subtitled-s0.m3u8"),
        (format!("{set}/s0/2.vtt"), "subtitled-s0-2.vtt"),
        (format!("{set}/ts/master.m3u8"), "subtitled-ts-master.m3u8"),
        (format!("{set}/ts/s0/2.vtt"), "subtitled-ts-s0-2.vtt"),
        (format!("{set}/manifest.mpd"), "subtitled-manifest.mpd"),
        (format!("{set}/s0.vtt"), "subtitled-s0.vtt"),
        ("/vod/sample/sample.mp4/ts/v0-iframes.m3u8".to_owned(), "sample-ts-v0-iframes.m3u8"),
    ] {
        assert_golden(&s, &path, file).await;
    }
    // The TS playlist names the same segment numbers, below `ts/`, with the TS timestamp map.
    let ts = get(s.edge, &format!("{set}/ts/s0.m3u8")).await.text();
    assert_eq!(ts, get(s.edge, &format!("{set}/s0.m3u8")).await.text());
    let ts_segment = get(s.edge, &format!("{set}/ts/s0/2.vtt")).await;
    assert_eq!(ts_segment.header("content-type"), Some("text/vtt"));
    assert!(ts_segment.text().starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n"));
    // An independent parser reads the group and each variant's reference to it.
    let master =
        m3u8_rs::parse_master_playlist_res(get(s.edge, &format!("{set}/master.m3u8")).await.body.as_slice()).unwrap();
    let subs: Vec<_> =
        master.alternatives.iter().filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles).collect();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].language.as_deref(), subs[0].uri.as_deref()), (Some("en"), Some("s0.m3u8")));
    assert!(master.variants.iter().filter(|v| !v.is_i_frame).all(|v| v.subtitles.as_deref() == Some("subs")));
    // An asset without subtitles has none, and no subtitle objects.
    let plain = get(s.edge, "/vod/sample/sample.mp4/master.m3u8").await.text();
    assert!(!plain.contains("SUBTITLES"), "{plain}");
    for missing in ["/vod/sample/sample.mp4/s0.m3u8", "/vod/sample/sample.mp4/s0.vtt", &format!("{set}/s1.m3u8")] {
        assert_eq!(get(s.edge, missing).await.status, 404, "{missing}");
    }
    for missing in [format!("{set}/s0/4.vtt"), format!("{set}/s0/0.vtt"), format!("{set}/ts/s0.vtt")] {
        assert_eq!(get(s.edge, &missing).await.status, 404, "{missing}");
    }
}

/// The cues of a WebVTT file as `(start, end, text)`, times as written.
fn cues(vtt: &str) -> Vec<(String, String, String)> {
    vtt.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut lines = block.lines().skip_while(|l| !l.contains("-->"));
            let timing = lines.next()?;
            let mut parts = timing.split_whitespace();
            let (start, _, end) = (parts.next()?, parts.next()?, parts.next()?);
            Some((start.to_owned(), end.to_owned(), lines.collect::<Vec<_>>().join("\n")))
        })
        .collect()
}

/// What ffmpeg's HLS reader makes of a subtitle playlist: the cues of the joined segments, a cue
/// repeated across a segment bound read once. (ffmpeg needs `-strict experimental` to read WebVTT
/// from HLS.)
fn ffmpeg_reads_subtitles(url: &str) -> Vec<(String, String, String)> {
    let args = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-strict",
        "experimental",
        "-i",
        url,
        "-map",
        "0:s",
        "-f",
        "webvtt",
        "-",
    ];
    let out = run("ffmpeg", &args);
    let mut read = cues(&String::from_utf8_lossy(&out.stdout));
    read.dedup();
    read
}

/// ffmpeg reads every cue's text exactly from the subtitle playlists (fMP4's and TS's), for a
/// sidecar and a `mov_text` track: each segment ends with a blank line, so the next segment's
/// `WEBVTT` and `X-TIMESTAMP-MAP` never run into a cue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_every_cue_of_the_segmented_subtitles() {
    let dir = tempfile::tempdir().unwrap();
    let sample = assets_dir().join("sample");
    for file in ["sample.mp4", "en.vtt", "subtitled.json"] {
        std::fs::copy(sample.join(file), dir.path().join(file)).unwrap();
    }
    let (mp4, vtt) = (sample.join("sample.mp4"), sample.join("en.vtt"));
    let subbed = dir.path().join("subbed.mp4");
    let (mp4, vtt, out) = (mp4.to_str().unwrap(), vtt.to_str().unwrap(), subbed.to_str().unwrap());
    let make =
        ["-hide_banner", "-loglevel", "error", "-y", "-i", mp4, "-i", vtt, "-map", "0", "-map", "1", "-c", "copy"];
    run("ffmpeg", &[&make[..], &["-c:s", "mov_text", out]].concat());
    let source = std::fs::read_to_string(sample.join("en.vtt")).unwrap();
    // The sidecar's text as written (the mov_text track keeps its italics as a style record).
    let want: Vec<String> = cues(&source).into_iter().map(|(_, _, t)| t).collect();
    let s = TestServer::start(test_config_in(dir.path())).await;
    for asset in ["subtitled.json", "subbed.mp4"] {
        for variant in ["", "ts/"] {
            let url = format!("http://{}/vod/{asset}/{variant}s0.m3u8", s.edge);
            let read = tokio::task::spawn_blocking(move || ffmpeg_reads_subtitles(&url)).await.unwrap();
            let texts: Vec<String> =
                read.iter().map(|(_, _, t)| t.replace("&amp;", "&").replace("&", "&amp;")).collect();
            let want: Vec<String> = want.iter().map(|t| t.replace("&amp;", "&").replace("&", "&amp;")).collect();
            assert_eq!(texts, want, "{asset} {variant}s0.m3u8: {read:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx3g_tracks_in_the_mp4_become_webvtt() {
    let dir = tempfile::tempdir().unwrap();
    let sample = assets_dir().join("sample");
    let (mp4, vtt) = (sample.join("sample.mp4"), sample.join("en.vtt"));
    let out = dir.path().join("subbed.mp4");
    // ffmpeg writes the sidecar as a `tx3g` (mov_text) track in French, and reads it back as WebVTT.
    let ffmpeg = |args: &[&str]| run("ffmpeg", &[&["-hide_banner", "-loglevel", "error", "-y"], args].concat());
    let (mp4, vtt, out) = (mp4.to_str().unwrap(), vtt.to_str().unwrap(), out.to_str().unwrap());
    let tx3g = ["-c", "copy", "-c:s", "mov_text", "-metadata:s:s:0", "language=fra", out];
    ffmpeg(&[&["-i", mp4, "-i", vtt, "-map", "0", "-map", "1"][..], &tx3g].concat());
    let theirs = dir.path().join("theirs.vtt");
    ffmpeg(&["-i", out, "-map", "0:s", theirs.to_str().unwrap()]);
    let s = TestServer::start(test_config_in(dir.path())).await;
    let master = get(s.edge, "/vod/subbed.mp4/master.m3u8").await.text();
    assert!(
        master.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"fr\",LANGUAGE=\"fr\",DEFAULT=NO"),
        "{master}"
    );
    let ours = get(s.edge, "/vod/subbed.mp4/s0.vtt").await.text();
    // The same cues at the same times as ffmpeg's reading of the track (text made WebVTT-safe:
    // ffmpeg gives `&` bare, we escape it; ffmpeg's mov_text encoder dropped the italics).
    let theirs: Vec<_> = cues(&std::fs::read_to_string(&theirs).unwrap())
        .into_iter()
        .map(|(s, e, t)| (format!("00:{s}"), format!("00:{e}"), t.replace('&', "&amp;")))
        .collect();
    assert_eq!(cues(&ours), theirs, "{ours}");
    assert_eq!(cues(&ours).len(), 4);
    // Segmented: the cue across the first bound is in segments 1 and 2; the MPD offers the track.
    let first = get(s.edge, "/vod/subbed.mp4/s0/1.vtt").await.text();
    let second = get(s.edge, "/vod/subbed.mp4/s0/2.vtt").await.text();
    assert!(first.contains("00:00:04.000 --> 00:00:07.500") && second.contains("00:00:04.000 --> 00:00:07.500"));
    let mpd = get(s.edge, "/vod/subbed.mp4/manifest.mpd").await.text();
    assert!(mpd.contains("contentType=\"text\" mimeType=\"text/vtt\" lang=\"fr\""), "{mpd}");
}

#[tokio::test]
async fn broken_subtitle_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(assets_dir().join("sample/sample.mp4"), dir.path().join("a.mp4")).unwrap();
    let write = |name: &str, body: &[u8]| std::fs::write(dir.path().join(name), body).unwrap();
    write("missing.json", br#"{"video": ["a.mp4"], "subtitles": [{"file": "none.vtt", "language": "en"}]}"#);
    write("notvtt.json", br#"{"video": ["a.mp4"], "subtitles": ["a.srt"]}"#);
    write("a.srt", b"1\n00:00:01,000 --> 00:00:02,000\nSubRip, not WebVTT\n");
    write("big.json", br#"{"video": ["a.mp4"], "subtitles": ["big.vtt"]}"#);
    let mut big = b"WEBVTT\n\n".to_vec();
    big.resize(9 << 20, b'x');
    write("big.vtt", &big);
    write("sloppy.json", br#"{"video": ["a.mp4"], "subtitles": ["sloppy.vtt"]}"#);
    write(
        "sloppy.vtt",
        b"WEBVTT\n\n00:01.000 --> 00:00.500\nbackwards\n\nnot a cue\n\n00:02.000 --> 00:03.000\nkept\n",
    );
    let s = TestServer::start(test_config_in(dir.path())).await;
    for (asset, reason) in [
        ("missing.json", "none.vtt does not exist"),
        ("notvtt.json", "a.srt: not WebVTT"),
        ("big.json", "a subtitle file may have at most 8388608"),
    ] {
        let reply = get(s.edge, &format!("/vod/{asset}/master.m3u8")).await;
        assert_eq!(reply.status, 422, "{asset}: {}", reply.text());
        assert!(reply.text().contains(reason), "{asset}: {}", reply.text());
    }
    // Blocks a browser would skip are skipped; the rest is served.
    let sloppy = get(s.edge, "/vod/sloppy.json/s0.vtt").await.text();
    assert_eq!(cues(&sloppy), [("00:00:02.000".into(), "00:00:03.000".into(), "kept".into())]);
    // Path traversal through the set is refused before anything is read.
    write("escape.json", br#"{"video": ["a.mp4"], "subtitles": ["../../etc/passwd"]}"#);
    assert_eq!(get(s.edge, "/vod/escape.json/master.m3u8").await.status, 422);
}
