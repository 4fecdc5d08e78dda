//! Media types by file extension, and which of them are text manifests worth compressing.

/// The `Content-Type` for a file name's extension.
pub fn for_extension(ext: Option<&str>) -> &'static str {
    let mut buf = [0u8; 8];
    let Some(lower) = ext.and_then(|e| lower_ascii(e, &mut buf)) else {
        return "application/octet-stream";
    };
    match lower {
        "m3u8" | "m3u" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "mp4" | "m4v" | "cmfv" => "video/mp4",
        "m4s" | "cmfa" | "cmft" => "video/iso.segment",
        "m4a" => "audio/mp4",
        "ts" => "video/mp2t",
        "aac" => "audio/aac",
        "ac3" => "audio/ac3",
        "ec3" => "audio/eac3",
        "mp3" => "audio/mpeg",
        "vtt" | "webvtt" => "text/vtt",
        "srt" => "application/x-subrip",
        "ttml" | "dfxp" => "application/ttml+xml",
        "key" => "application/octet-stream",
        "json" => "application/json",
        "xml" => "application/xml",
        "txt" => "text/plain; charset=utf-8",
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

/// Text formats that shrink well and that players fetch repeatedly: playlists, manifests, subtitles.
pub fn is_compressible(content_type: &str) -> bool {
    matches!(
        content_type,
        "application/vnd.apple.mpegurl"
            | "application/dash+xml"
            | "text/vtt"
            | "application/ttml+xml"
            | "application/x-subrip"
            | "application/json"
            | "application/xml"
            | "text/plain; charset=utf-8"
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
