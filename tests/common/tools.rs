//! Real media tools (ffprobe, ffmpeg) as the player-side client.

use std::process::{Command, Output};

/// Runs a media tool, failing the test with a clear message when it is not installed.
pub fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed by this test (run ./scripts/test, which installs it): {e}"))
}

/// ffprobe's JSON description of `url`'s streams and packet counts; panics on any ffprobe error.
pub fn probe_streams(url: &str) -> serde_json::Value {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=codec_type,codec_name,nb_read_packets",
            "-of",
            "json",
            url,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffprobe {url} failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// ffprobe's stream list for a live URL: reads only what it needs to identify the streams.
pub fn probe_live(url: &str) -> serde_json::Value {
    let out = run("ffprobe", &["-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffprobe {url} failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}
