//! A real live encoder: ffmpeg generating test video and audio in real time and pushing HLS (or, in
//! its low-latency mode, DASH with HLS playlists beside it) over HTTP PUT.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// What the encoder pushes.
#[derive(Debug, Clone, Copy)]
pub struct Push {
    pub seconds: u32,
    /// MPEG-TS segments instead of fMP4.
    pub ts: bool,
    /// Sine frequency, so restarts produce different bytes.
    pub tone: u32,
    /// Send the stream key in an `Authorization: Basic` header on a plain ingest URL, instead of in
    /// the URL's path (the ingest URL the API hands out).
    pub preemptive_auth: bool,
}

impl Default for Push {
    fn default() -> Self {
        Push { seconds: 20, ts: false, tone: 440, preemptive_auth: false }
    }
}

/// A running ffmpeg; killed when dropped.
pub struct Encoder {
    child: Child,
}

impl Encoder {
    /// Two variants (320x180 and 160x90), each muxed with AAC, 2 s GOPs and segments, pushed to
    /// the ingest URL as an operator pastes it (the stream key in its path), with ffmpeg's defaults
    /// (no `-http_persistent`).
    pub fn start(ingest: SocketAddr, channel: &str, token: &str, push: Push) -> Encoder {
        let base = if push.preemptive_auth {
            format!("http://{ingest}/ingest/{channel}")
        } else {
            format!("http://{ingest}/ingest/{channel}/{token}")
        };
        let seconds = push.seconds.to_string();
        let video = "testsrc2=size=320x180:rate=25".to_owned();
        let audio = format!("sine=frequency={}:sample_rate=48000", push.tone);
        let (kind, ext) = if push.ts { ("mpegts", "ts") } else { ("fmp4", "m4s") };
        let segment_name = format!("{base}/v%v/seg_%05d.{ext}");
        let playlist = format!("{base}/v%v/index.m3u8");
        let mut args: Vec<&str> = vec!["-hide_banner", "-loglevel", "error", "-re"];
        args.extend(["-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio, "-t", &seconds]);
        args.extend(["-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a"]);
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
        ]);
        args.extend(["-s:v:1", "160x90", "-b:v:0", "400k", "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k", "-ac", "2"]);
        args.extend([
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "6",
            "-hls_flags",
            "delete_segments+program_date_time",
        ]);
        let header = format!("Authorization: Basic {}\r\n", base64_credentials(channel, token));
        args.extend(["-hls_segment_type", kind, "-method", "PUT", "-ignore_io_errors", "1"]);
        if push.preemptive_auth {
            args.extend(["-http_persistent", "0", "-headers", &header]);
        }
        args.extend(["-var_stream_map", "v:0,a:0 v:1,a:1", "-master_pl_name", "master.m3u8"]);
        args.extend(["-hls_segment_filename", &segment_name, &playlist]);
        Encoder::spawn(&args)
    }

    /// ffmpeg's DASH muxer in its low-latency streaming mode, as an LL encoder is set up: one
    /// 320x180 video and one AAC track, 2 s segments of 0.5 s CMAF chunks, each segment uploaded
    /// with chunked transfer while it is encoded, an MPD and (`-hls_playlist`) HLS playlists beside
    /// it, on one persistent connection.
    pub fn start_low_latency(ingest: SocketAddr, channel: &str, token: &str, seconds: u32) -> Encoder {
        let seconds = seconds.to_string();
        let manifest = format!("http://{ingest}/ingest/{channel}/{token}/manifest.mpd");
        let mut args: Vec<&str> = vec!["-hide_banner", "-loglevel", "error", "-re"];
        args.extend(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"]);
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &seconds]);
        args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"]);
        args.extend(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-b:v", "400k"]);
        args.extend(["-c:a", "aac", "-b:a", "64k", "-ac", "2"]);
        args.extend(["-f", "dash", "-streaming", "1", "-ldash", "1", "-seg_duration", "2"]);
        args.extend(["-frag_type", "duration", "-frag_duration", "0.5", "-use_timeline", "0", "-use_template", "1"]);
        args.extend(["-method", "PUT", "-http_persistent", "1", "-hls_playlist", "1", &manifest]);
        Encoder::spawn(&args)
    }

    fn spawn(args: &[&str]) -> Encoder {
        let child = Command::new("ffmpeg")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("ffmpeg is needed by this test (run ./scripts/test, which installs it): {e}"));
        Encoder { child }
    }

    /// Waits for ffmpeg to finish on its own (it ends its playlists with `EXT-X-ENDLIST`).
    pub fn wait(mut self) {
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn base64_credentials(channel: &str, token: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{channel}:{token}"))
}
