//! PURE: VOD object names after the asset key in `/vod/{asset}/{object}`: how they parse and how the
//! playlists name them.

use std::fmt::{self, Write};

use super::{Container, number, write_rendition};
use crate::manifest::text::write_u64;
use crate::presentation::RenditionId;

/// File extensions that end a VOD asset key: an MP4 source or an asset-set JSON.
const ASSET_EXTENSIONS: &[&str] = &[".mp4", ".m4v", ".m4a", ".mov", ".json"];

/// Whether a file name (the last part of a storage key) names a VOD asset: an MP4 source or an
/// asset-set JSON, by its extension, in any case.
pub fn is_asset_name(name: &str) -> bool {
    ASSET_EXTENSIONS.iter().any(|ext| {
        name.len() > ext.len() && name.get(name.len() - ext.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(ext))
    })
}

/// One object of a VOD asset, as named after the asset key in `/vod/{asset}/{object}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VodPath {
    /// `master.m3u8`
    Master,
    /// `manifest.mpd`
    Manifest,
    /// `v0.m3u8`
    MediaPlaylist(RenditionId),
    /// `v0/init.mp4`
    Init(RenditionId),
    /// `v0/3.m4s` (numbered from [`FIRST_SEGMENT_NUMBER`])
    Segment(RenditionId, u32),
    /// `ts/master.m3u8`: the MPEG-TS variants (audio muxed in), for players that take only TS.
    TsMaster,
    /// `ts/v0.m3u8`
    TsPlaylist(RenditionId),
    /// `ts/v0/3.ts`
    TsSegment(RenditionId, u32),
    /// `ts/v0-iframes.m3u8`: the keyframes of a TS video variant, as byte ranges of its segments.
    TsIFrames(RenditionId),
    /// `v0-iframes.m3u8`: the keyframes of an fMP4 video rendition (trick play).
    IFrames(RenditionId),
    /// `v0/iframes/3.m4s`: segment 3's keyframes, each a fragment of its own.
    IFrameSegment(RenditionId, u32),
    /// `v0/iframes/3.1.m4s`: segment 3's keyframe 1 (from 0) alone, as a protected asset's I-frame
    /// playlist names its keyframes (whole objects: encrypted, their lengths are not known
    /// beforehand).
    IFrame(RenditionId, u32, u16),
    /// `s0.m3u8` (with the fMP4 variants) or `ts/s0.m3u8` (with the TS ones): a subtitle track's
    /// segmented WebVTT, timed for that container.
    SubtitlePlaylist(u16, Container),
    /// `s0/3.vtt` or `ts/s0/3.vtt`
    SubtitleSegment(u16, Container, u32),
    /// `s0.vtt`: the whole track as one WebVTT file (DASH).
    SubtitleFile(u16),
}

impl VodPath {
    /// Writes the object's name (what [`VodPath::parse`] reads): the writers append it to their
    /// buffer, `Display` (cache keys) to its formatter, neither through an intermediate string.
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        match *self {
            VodPath::Master => out.write_str("master.m3u8"),
            VodPath::Manifest => out.write_str("manifest.mpd"),
            VodPath::MediaPlaylist(r) => {
                write_rendition(out, r)?;
                out.write_str(".m3u8")
            }
            VodPath::Init(r) => {
                write_rendition(out, r)?;
                out.write_str("/init.mp4")
            }
            VodPath::Segment(r, n) => write_segment(out, r, n, ".m4s"),
            VodPath::IFrames(r) => {
                write_rendition(out, r)?;
                out.write_str("-iframes.m3u8")
            }
            VodPath::IFrameSegment(r, n) => {
                write_rendition(out, r)?;
                out.write_str("/iframes/")?;
                write_u64(out, u64::from(n))?;
                out.write_str(".m4s")
            }
            VodPath::IFrame(r, n, k) => {
                write_rendition(out, r)?;
                out.write_str("/iframes/")?;
                write_u64(out, u64::from(n))?;
                out.write_char('.')?;
                write_u64(out, u64::from(k))?;
                out.write_str(".m4s")
            }
            VodPath::TsMaster
            | VodPath::TsPlaylist(_)
            | VodPath::TsSegment(..)
            | VodPath::TsIFrames(_)
            | VodPath::SubtitlePlaylist(_, Container::Ts)
            | VodPath::SubtitleSegment(_, Container::Ts, _) => {
                out.write_str("ts/")?;
                self.write_from_playlist(out)
            }
            VodPath::SubtitlePlaylist(i, Container::Fmp4 | Container::WebVtt)
            | VodPath::SubtitleSegment(i, Container::Fmp4 | Container::WebVtt, _) => write_subtitle(out, i, self),
            VodPath::SubtitleFile(i) => write_subtitle(out, i, self),
        }
    }

    /// The name as the playlists that list it write it: relative to their own folder (`ts/`
    /// for the MPEG-TS objects, which only TS playlists name).
    pub fn write_from_playlist<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        match *self {
            VodPath::TsMaster => out.write_str("master.m3u8"),
            VodPath::TsPlaylist(r) => VodPath::MediaPlaylist(r).write_to(out),
            VodPath::TsIFrames(r) => VodPath::IFrames(r).write_to(out),
            VodPath::TsSegment(r, n) => write_segment(out, r, n, ".ts"),
            VodPath::SubtitlePlaylist(i, _) | VodPath::SubtitleSegment(i, _, _) => write_subtitle(out, i, self),
            other => other.write_to(out),
        }
    }
}

/// `s0.m3u8`, `s0/3.vtt`, `s0.vtt`: a subtitle object's name relative to its playlist's folder.
fn write_subtitle<W: Write + ?Sized>(out: &mut W, index: u16, object: &VodPath) -> fmt::Result {
    out.write_char('s')?;
    write_u64(out, u64::from(index))?;
    match *object {
        VodPath::SubtitleSegment(_, _, n) => {
            out.write_char('/')?;
            write_u64(out, u64::from(n))?;
            out.write_str(".vtt")
        }
        VodPath::SubtitleFile(_) => out.write_str(".vtt"),
        _ => out.write_str(".m3u8"),
    }
}

/// `s0...`: a subtitle object's name, in the folder of `container`'s playlists.
fn parse_subtitle(name: &str, container: Container) -> Option<VodPath> {
    let digits_end = name.bytes().skip(1).position(|b| !b.is_ascii_digit()).map_or(name.len(), |p| p + 1);
    let (id, tail) = name.split_at(digits_end);
    let digits =
        id.strip_prefix('s').filter(|d| !d.is_empty() && d.len() <= 4 && (d.len() == 1 || !d.starts_with('0')))?;
    let index: u16 = digits.parse().ok()?;
    match tail {
        ".m3u8" => Some(VodPath::SubtitlePlaylist(index, container)),
        ".vtt" if container == Container::Fmp4 => Some(VodPath::SubtitleFile(index)),
        _ => {
            let n = tail.strip_prefix('/')?.strip_suffix(".vtt").filter(|n| !n.starts_with('0'))?;
            Some(VodPath::SubtitleSegment(index, container, number(n)?))
        }
    }
}

/// `v0/3.m4s`, `v0/3.ts`.
fn write_segment<W: Write + ?Sized>(out: &mut W, r: RenditionId, n: u32, extension: &str) -> fmt::Result {
    write_rendition(out, r)?;
    out.write_char('/')?;
    write_u64(out, u64::from(n))?;
    out.write_str(extension)
}

impl fmt::Display for VodPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl VodPath {
    /// Parses the part of a URL after the asset key.
    pub fn parse(rest: &str) -> Option<VodPath> {
        if rest.starts_with('s') {
            return parse_subtitle(rest, Container::Fmp4);
        }
        if let Some(ts) = rest.strip_prefix("ts/") {
            if ts.starts_with('s') {
                return parse_subtitle(ts, Container::Ts);
            }
            if let Some((id, seg)) = ts.split_once('/') {
                let n = seg.strip_suffix(".ts").filter(|n| !n.starts_with('0'))?;
                return Some(VodPath::TsSegment(id.parse().ok()?, number(n)?));
            }
            if let Some(id) = ts.strip_suffix("-iframes.m3u8") {
                return Some(VodPath::TsIFrames(id.parse().ok()?));
            }
            return match VodPath::parse(ts)? {
                VodPath::Master => Some(VodPath::TsMaster),
                VodPath::MediaPlaylist(r) => Some(VodPath::TsPlaylist(r)),
                _ => None,
            };
        }
        if let Some(id) = rest.strip_suffix("-iframes.m3u8") {
            return Some(VodPath::IFrames(id.parse().ok()?));
        }
        if let Some((id, n)) = rest.split_once("/iframes/") {
            let n = n.strip_suffix(".m4s").filter(|n| !n.starts_with('0'))?;
            if let Some((n, k)) = n.split_once('.') {
                let k = number(k).filter(|_| k == "0" || !k.starts_with('0'))?;
                return Some(VodPath::IFrame(id.parse().ok()?, number(n)?, k));
            }
            return Some(VodPath::IFrameSegment(id.parse().ok()?, number(n)?));
        }
        let mut parts = rest.split('/');
        let (first, second) = (parts.next()?, parts.next());
        if parts.next().is_some() {
            return None;
        }
        match (first, second) {
            ("master.m3u8", None) => Some(VodPath::Master),
            ("manifest.mpd", None) => Some(VodPath::Manifest),
            (name, None) => Some(VodPath::MediaPlaylist(name.strip_suffix(".m3u8")?.parse().ok()?)),
            (id, Some("init.mp4")) => Some(VodPath::Init(id.parse().ok()?)),
            (id, Some(seg)) => {
                let n = seg.strip_suffix(".m4s")?;
                if n.starts_with('0') {
                    return None;
                }
                Some(VodPath::Segment(id.parse().ok()?, number(n)?))
            }
        }
    }

    /// Splits `sample/clip.mp4/v0/1.m4s` (percent-decoded) into the asset key and the object after it.
    pub fn split(path: &str) -> Option<(&str, VodPath)> {
        let mut end = 0;
        for segment in path.split('/') {
            end += segment.len();
            if is_asset_name(segment) {
                return Some((&path[..end], VodPath::parse(path.get(end + 1..)?)?));
            }
            end += 1;
        }
        None
    }

    pub fn is_manifest(&self) -> bool {
        matches!(
            self,
            VodPath::Master
                | VodPath::Manifest
                | VodPath::MediaPlaylist(_)
                | VodPath::TsMaster
                | VodPath::TsPlaylist(_)
                | VodPath::SubtitlePlaylist(..)
                | VodPath::IFrames(_)
                | VodPath::TsIFrames(_)
        )
    }
}
