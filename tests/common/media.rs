//! Test media made by ffmpeg once per test binary: the clips the VOD checks need, plus broken files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::tools::run;

static MEDIA: OnceLock<PathBuf> = OnceLock::new();

/// Bump when the clips below change, so stale copies are not reused.
const MEDIA_VERSION: u32 = 1;

/// The folder with every test clip. Made once under Cargo's test temp folder and
/// reused by later runs; built aside and renamed into place, so concurrent test
/// binaries never see a half-made folder.
pub fn media() -> &'static Path {
    MEDIA.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = root.join(format!("media-v{MEDIA_VERSION}"));
        if !dir.join("done").exists() {
            let work = tempfile::Builder::new().prefix("media-build-").tempdir_in(&root).unwrap();
            make_all(work.path());
            std::fs::write(work.path().join("done"), b"").unwrap();
            // Another process may have won the race; its copy is as good as ours.
            let built = work.keep();
            if std::fs::rename(&built, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&built);
            }
        }
        dir
    })
}

fn ffmpeg(dir: &Path, args: &[&str]) {
    let mut full = vec!["-hide_banner", "-loglevel", "error", "-y"];
    full.extend_from_slice(args);
    let out = std::process::Command::new("ffmpeg")
        .args(&full)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("ffmpeg is needed by this test (run ./scripts/test, which installs it): {e}"));
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const VIDEO_IN: &[&str] = &["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"];
const AUDIO_IN: &[&str] = &["-f", "lavfi", "-i", "sine=frequency=330:beep_factor=2:sample_rate=48000"];
const GOP_2S: &[&str] = &["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"];

fn encode(dir: &Path, out: &str, size: &str, bitrate: &str, extra: &[&str], audio: bool, video: bool) {
    let mut args: Vec<&str> = Vec::new();
    if video {
        args.extend_from_slice(VIDEO_IN);
    }
    if audio {
        args.extend_from_slice(AUDIO_IN);
    }
    args.extend_from_slice(&["-t", "16"]);
    if video {
        args.extend_from_slice(&[
            "-s", size, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-b:v", bitrate,
        ]);
    }
    if audio {
        args.extend_from_slice(&["-c:a", "aac", "-b:a", "64k", "-ac", "2"]);
    }
    args.extend_from_slice(extra);
    args.push(out);
    ffmpeg(dir, &args);
}

fn with<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    [a, b].concat()
}

fn make_all(dir: &Path) {
    std::fs::create_dir_all(dir.join("set")).unwrap();
    std::fs::copy(super::assets_dir().join("sample/sample.mp4"), dir.join("sample.mp4")).unwrap();
    let faststart = ["-movflags", "+faststart"];

    // High profile with two B-frames: ctts and an edit list for the B-frame delay.
    encode(
        dir,
        "bframes.mp4",
        "320x180",
        "300k",
        &with(&["-profile:v", "high", "-bf", "2"], &with(GOP_2S, &faststart)),
        true,
        true,
    );
    // No faststart: moov after mdat.
    encode(dir, "moov_end.mp4", "320x180", "300k", GOP_2S, true, true);
    // Keyframes at irregular times, no others.
    encode(
        dir,
        "irregular.mp4",
        "320x180",
        "300k",
        &[
            "-g",
            "1000",
            "-sc_threshold",
            "0",
            "-force_key_frames",
            "0,1.2,4.4,5.2,7.6,12.9,14",
            "-movflags",
            "+faststart",
        ],
        true,
        true,
    );
    encode(dir, "audio_only.m4a", "", "", &faststart, true, false);
    encode(dir, "video_only.mp4", "320x180", "300k", &with(GOP_2S, &faststart), false, true);
    for (name, size, rate) in
        [("set/180p.mp4", "320x180", "200k"), ("set/270p.mp4", "480x270", "400k"), ("set/360p.mp4", "640x360", "700k")]
    {
        encode(dir, name, size, rate, &with(GOP_2S, &faststart), true, true);
    }
    std::fs::write(
        dir.join("set/title.json"),
        r#"{"video": ["180p.mp4", "270p.mp4", {"file": "360p.mp4"}], "audio": [{"file": "360p.mp4", "language": "en", "name": "English"}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("set/broken.json"), r#"{"video": ["../../../etc/passwd"]}"#).unwrap();
    std::fs::write(dir.join("set/missing.json"), r#"{"video": ["nope.mp4"]}"#).unwrap();

    // Broken and unsupported sources.
    ffmpeg(dir, &with(VIDEO_IN, &["-t", "2", "-c:v", "mpeg4", "-movflags", "+faststart", "mp4v.mp4"]));
    let sample = std::fs::read(dir.join("sample.mp4")).unwrap();
    std::fs::write(dir.join("truncated.mp4"), &sample[..sample.len() / 2]).unwrap();
    std::fs::write(dir.join("cut_moov.mp4"), &sample[..5000]).unwrap();
    std::fs::write(dir.join("garbage.mp4"), b"this is not a video file, just some text pretending".repeat(100))
        .unwrap();
    let mut no_moov = sample[..32].to_vec();
    no_moov.extend_from_slice(&[0, 0, 0, 16, b'm', b'd', b'a', b't', 1, 2, 3, 4, 5, 6, 7, 8]);
    std::fs::write(dir.join("no_moov.mp4"), no_moov).unwrap();
    // An fMP4 init segment is a valid MP4 with zero samples.
    std::fs::copy(super::assets_dir().join("sample/hls/init.mp4"), dir.join("zero_samples.mp4")).unwrap();
}

/// The `moov`'s position in a file: true when it comes after the media data.
pub fn moov_after_mdat(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    let find = |kind: &[u8]| data.windows(4).position(|w| w == kind);
    matches!((find(b"moov"), find(b"mdat")), (Some(m), Some(d)) if m > d)
}

/// Runs ffprobe on a local file or URL and returns stream facts.
pub fn probe_ok(url: &str) -> serde_json::Value {
    super::tools::probe_streams(url)
}

pub fn run_tool(tool: &str, args: &[&str]) -> std::process::Output {
    run(tool, args)
}

/// A two-language asset set in `dir`: `languages.json` with the sample's video, its audio as Korean
/// (first: muxed into MPEG-TS variants) and `en.m4a`, a 16 s AAC tone, as English.
pub fn two_language_set(dir: &Path) {
    std::fs::copy(super::assets_dir().join("sample/sample.mp4"), dir.join("sample.mp4")).unwrap();
    let tone = ["-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000", "-t", "16", "-c:a", "aac", "-b:a", "96k"];
    ffmpeg(dir, &[&tone[..], &["en.m4a"]].concat());
    let set = r#"{"video": ["sample.mp4"], "audio": [
        {"file": "sample.mp4", "language": "ko", "name": "Korean"},
        {"file": "en.m4a", "language": "en", "name": "English"}]}"#;
    std::fs::write(dir.join("languages.json"), set).unwrap();
}
