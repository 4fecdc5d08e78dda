//! Media types: the one definition of each that estuary serves, by file extension, and which of them
//! are text manifests worth compressing.

/// HLS playlists (`.m3u8`).
pub const HLS_PLAYLIST: &str = "application/vnd.apple.mpegurl";
/// DASH MPDs (`.mpd`).
pub const DASH_MPD: &str = "application/dash+xml";
/// MP4 files and fMP4 init segments.
pub const MP4: &str = "video/mp4";
/// Audio-only MP4 (the MPD's audio `mimeType`).
pub const AUDIO_MP4: &str = "audio/mp4";
/// fMP4/CMAF media segments (`.m4s`).
pub const MEDIA_SEGMENT: &str = "video/iso.segment";
/// MPEG-TS segments (`.ts`).
pub const MPEG_TS: &str = "video/mp2t";
/// WebVTT subtitles (`.vtt`).
pub const WEBVTT: &str = "text/vtt";
/// Plain text (the `/time` clock, error bodies).
pub const TEXT: &str = "text/plain; charset=utf-8";
/// Prometheus's text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` for a file name's extension.
pub fn for_extension(ext: Option<&str>) -> &'static str {
    let mut buf = [0u8; 8];
    let Some(lower) = ext.and_then(|e| lower_ascii(e, &mut buf)) else {
        return "application/octet-stream";
    };
    match lower {
        "m3u8" | "m3u" => HLS_PLAYLIST,
        "mpd" => DASH_MPD,
        "mp4" | "m4v" | "cmfv" => MP4,
        "m4s" | "cmfa" | "cmft" => MEDIA_SEGMENT,
        "m4a" => AUDIO_MP4,
        "ts" => MPEG_TS,
        "aac" => "audio/aac",
        "ac3" => "audio/ac3",
        "ec3" => "audio/eac3",
        "mp3" => "audio/mpeg",
        "vtt" | "webvtt" => WEBVTT,
        "srt" => "application/x-subrip",
        "ttml" | "dfxp" => "application/ttml+xml",
        "key" => "application/octet-stream",
        "json" => "application/json",
        "xml" => "application/xml",
        "txt" => TEXT,
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// A short extension lower-cased into `buf`, without allocating; `None` when it does not fit.
pub fn lower_ascii<'a>(ext: &str, buf: &'a mut [u8; 8]) -> Option<&'a str> {
    let bytes = ext.as_bytes();
    let out = buf.get_mut(..bytes.len())?;
    out.copy_from_slice(bytes);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// Playlists and MPDs: the media types players poll.
pub fn is_manifest(content_type: &str) -> bool {
    matches!(content_type, HLS_PLAYLIST | DASH_MPD)
}

/// Text formats that shrink well and that players fetch repeatedly: playlists, manifests, subtitles.
pub fn is_compressible(content_type: &str) -> bool {
    matches!(
        content_type,
        HLS_PLAYLIST
            | DASH_MPD
            | WEBVTT
            | "application/ttml+xml"
            | "application/x-subrip"
            | "application/json"
            | "application/xml"
            | TEXT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(for_extension(Some("m3u8")), "application/vnd.apple.mpegurl");
        assert_eq!(for_extension(Some("M3U8")), "application/vnd.apple.mpegurl");
        assert_eq!(for_extension(Some("mpd")), "application/dash+xml");
        assert_eq!(for_extension(Some("m4s")), "video/iso.segment");
        assert_eq!(for_extension(Some("mp4")), "video/mp4");
        assert_eq!(for_extension(Some("ts")), "video/mp2t");
        assert_eq!(for_extension(Some("vtt")), "text/vtt");
        assert_eq!(for_extension(Some("aac")), "audio/aac");
        assert_eq!(for_extension(Some("exe")), "application/octet-stream");
        assert_eq!(for_extension(None), "application/octet-stream");
        assert!(is_compressible("application/dash+xml"));
        assert!(!is_compressible("video/mp4"));
    }
}
