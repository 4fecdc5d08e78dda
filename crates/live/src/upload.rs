//! PURE: what an encoder uploaded, recognised and checked before it reaches the channel: init
//! segment, media segment (fMP4 or TS), media or master playlist.

use std::sync::Arc;

use bytes::Bytes;
use m3u8_rs::{MediaPlaylist, Playlist};

use super::model::Container;
use estuary_media::PackagingError;
use estuary_media::fmp4::parse::{self, InitInfo};
use estuary_media::ts;

/// A recognised upload. Paths are relative to the channel (`v0/seg_00001.m4s`).
#[derive(Debug, Clone)]
pub enum Upload {
    Init {
        path: String,
        bytes: Bytes,
        info: Arc<InitInfo>,
    },
    Segment {
        path: String,
        bytes: Bytes,
        container: Container,
    },
    MediaPlaylist {
        path: String,
        playlist: Box<MediaPlaylist>,
    },
    /// The encoder's master playlist: what it says about its subtitle renditions.
    MasterPlaylist {
        path: String,
        subtitles: Vec<SubtitleLabel>,
    },
}

/// An encoder's `EXT-X-MEDIA:TYPE=SUBTITLES`: the playlist (channel-relative) and how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtitleLabel {
    pub playlist: String,
    pub language: Option<String>,
    pub name: Option<String>,
}

impl Upload {
    /// Bytes this upload would add to the channel's memory.
    pub fn size(&self) -> u64 {
        match self {
            Upload::Init { bytes, .. } | Upload::Segment { bytes, .. } => bytes.len() as u64,
            Upload::MediaPlaylist { .. } | Upload::MasterPlaylist { .. } => 0,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Upload::Init { path, .. }
            | Upload::Segment { path, .. }
            | Upload::MediaPlaylist { path, .. }
            | Upload::MasterPlaylist { path, .. } => path,
        }
    }
}

/// Why an upload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The name says a kind of file estuary does not take (415).
    #[error("unsupported file type: {0}")]
    UnsupportedType(String),
    /// The body is not what its name says (422).
    #[error("{0}")]
    Invalid(String),
    /// The channel was stopped by an operator (409).
    #[error("the channel is stopped; start it through the API first")]
    Stopped,
    /// The channel holds as many bytes in memory as it may (413).
    #[error("the channel holds {held} bytes in memory, its limit is {limit} (ingest.max_channel_bytes)")]
    Full { held: u64, limit: u64 },
    /// All of ingest holds as many bytes as it may (413).
    #[error("ingest holds its limit of {limit} bytes in memory (ingest.max_total_bytes)")]
    IngestFull { limit: u64 },
    /// Another pod takes this channel's stream, and redundant ingest is refused (409).
    #[error("another pod takes this channel's stream (cluster.redundant_ingest = \"refuse\")")]
    OwnedElsewhere,
}

impl From<PackagingError> for UploadError {
    fn from(e: PackagingError) -> Self {
        UploadError::Invalid(e.to_string())
    }
}

/// Recognises an upload by its name and checks that the body is what the name says.
pub fn classify(path: &str, body: Bytes) -> Result<Upload, UploadError> {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let path = path.to_owned();
    match ext.as_str() {
        "m3u8" | "m3u" => match m3u8_rs::parse_playlist_res(&body) {
            Ok(Playlist::MediaPlaylist(playlist)) => {
                if playlist.segments.len() > 100_000 {
                    return Err(UploadError::Invalid("playlist lists more than 100000 segments".into()));
                }
                Ok(Upload::MediaPlaylist { path, playlist: Box::new(playlist) })
            }
            Ok(Playlist::MasterPlaylist(master)) => {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                // Labels players show: printable, short, no quotes (they go into our playlists).
                let clean = |s: &str| {
                    let s: String = s.chars().filter(|c| !c.is_control() && *c != '"').take(64).collect();
                    (!s.is_empty()).then_some(s)
                };
                let subtitles =
                    master
                        .alternatives
                        .iter()
                        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
                        .filter_map(|a| {
                            Some(SubtitleLabel {
                                playlist: resolve(dir, a.uri.as_deref()?)?,
                                language: a.language.as_deref().and_then(clean).filter(|l| {
                                    l.len() <= 35 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                                }),
                                name: clean(&a.name),
                            })
                        })
                        .take(32)
                        .collect();
                Ok(Upload::MasterPlaylist { path, subtitles })
            }
            Err(_) => Err(UploadError::Invalid("not an HLS playlist".into())),
        },
        "ts" => {
            ts::check_segment(&body)?;
            Ok(Upload::Segment { path, bytes: body, container: Container::Ts })
        }
        "vtt" | "webvtt" => {
            // A subtitle segment: WebVTT text (its cues are the encoder's, passed through).
            let text =
                std::str::from_utf8(&body).map_err(|_| UploadError::Invalid("a WebVTT segment is not UTF-8".into()))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            if !text.starts_with("WEBVTT")
                || !matches!(text.as_bytes().get(6), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
            {
                return Err(UploadError::Invalid("not a WebVTT segment (no WEBVTT header)".into()));
            }
            Ok(Upload::Segment { path, bytes: body, container: Container::WebVtt })
        }
        "mp4" | "m4s" | "m4v" | "m4a" | "cmfv" | "cmfa" => {
            if parse::looks_like_init(&body) {
                let info = parse::parse_init(&body)?;
                Ok(Upload::Init { path, bytes: body, info: Arc::new(info) })
            } else {
                parse::check_segment(&body)?;
                Ok(Upload::Segment { path, bytes: body, container: Container::Fmp4 })
            }
        }
        other => Err(UploadError::UnsupportedType(if other.is_empty() {
            "no extension".into()
        } else {
            format!(".{other}")
        })),
    }
}

/// Resolves a URI from a playlist in `dir` to a channel-relative path.
pub fn resolve(dir: &str, uri: &str) -> Option<String> {
    let uri = uri.split(['?', '#']).next().unwrap_or("");
    let relative = match uri.find("://") {
        // Absolute URL: keep what follows the channel in `/ingest/{channel}/...`, else the file name.
        Some(_) => return uri.rsplit('/').next().map(|name| join(dir, name)).filter(|p| !p.is_empty()),
        None => uri,
    };
    let mut parts: Vec<&str> =
        if relative.starts_with('/') { Vec::new() } else { dir.split('/').filter(|p| !p.is_empty()).collect() };
    for seg in relative.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: &[u8] = include_bytes!("../../../assets/sample/hls/init.mp4");
    const SEGMENT: &[u8] = include_bytes!("../../../assets/sample/hls/seg_000.m4s");
    const MEDIA: &[u8] = include_bytes!("../../../assets/sample/hls/media.m3u8");
    const MASTER: &[u8] = include_bytes!("../../../assets/sample/hls/master.m3u8");

    #[test]
    fn resolves_playlist_uris() {
        assert_eq!(resolve("v0", "seg_1.m4s").as_deref(), Some("v0/seg_1.m4s"));
        assert_eq!(resolve("", "seg_1.m4s").as_deref(), Some("seg_1.m4s"));
        assert_eq!(resolve("v0", "../v1/init.mp4").as_deref(), Some("v1/init.mp4"));
        assert_eq!(resolve("v0", "../../x"), None);
        assert_eq!(resolve("v0", "http://host/ingest/ch/v0/seg_2.m4s?x=1").as_deref(), Some("v0/seg_2.m4s"));
    }

    #[test]
    fn recognises_what_ffmpeg_pushes() {
        assert!(matches!(classify("v0/init_0.mp4", Bytes::from_static(INIT)), Ok(Upload::Init { .. })));
        assert!(matches!(
            classify("v0/seg_00001.m4s", Bytes::from_static(SEGMENT)),
            Ok(Upload::Segment { container: Container::Fmp4, .. })
        ));
        assert!(matches!(classify("v0/index.m3u8", Bytes::from_static(MEDIA)), Ok(Upload::MediaPlaylist { .. })));
        assert!(matches!(classify("master.m3u8", Bytes::from_static(MASTER)), Ok(Upload::MasterPlaylist { .. })));
    }

    #[test]
    fn refuses_bodies_that_are_not_what_their_names_say() {
        let garbage = Bytes::from_static(b"definitely not media, just some bytes that ffmpeg did not write");
        for name in ["v0/seg_1.m4s", "v0/init.mp4", "v0/seg_1.ts", "v0/index.m3u8"] {
            assert!(matches!(classify(name, garbage.clone()), Err(UploadError::Invalid(_))), "{name}");
        }
        assert!(matches!(classify("notes.txt", garbage.clone()), Err(UploadError::UnsupportedType(_))));
        assert!(matches!(
            classify("v0/seg_1.m4s", Bytes::copy_from_slice(&SEGMENT[..1000])),
            Err(UploadError::Invalid(_))
        ));
    }
}
