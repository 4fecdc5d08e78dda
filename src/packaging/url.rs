//! PURE: the URL grammar of the edge: which paths exist (`/static/`, `/vod/`, `/live/`, `/time`,
//! `/healthz`), how VOD and live object names parse, and how renderers write them. The handlers parse
//! with it and the playlist and MPD adapters write with it, so the two can never disagree.

use std::fmt::{self, Write};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::packaging::manifest::text::{push_u64, write_u64};
use crate::packaging::presentation::RenditionId;

/// VOD segments are numbered from 1 in URLs (and as `EXT-X-MEDIA-SEQUENCE`), like DASH's default `startNumber`.
pub const FIRST_SEGMENT_NUMBER: usize = 1;

/// File extensions that end a VOD asset key: an MP4 source or an asset-set JSON.
const ASSET_EXTENSIONS: &[&str] = &[".mp4", ".m4v", ".m4a", ".mov", ".json"];

/// The edge's routes, by path prefix. The route template is what metrics and logs report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeRoute {
    /// `/static/{*key}`: stored objects passed through.
    Static,
    /// `/vod/{*path}`: MP4 packaged on the fly.
    Vod,
    /// `/live/{channel}/{*rest}`
    Live,
    /// `/time`: the clock for DASH `UTCTiming`.
    Time,
    /// `/healthz`: the load balancer's probe.
    Health,
}

impl EdgeRoute {
    pub const ALL: [EdgeRoute; 5] =
        [EdgeRoute::Static, EdgeRoute::Vod, EdgeRoute::Live, EdgeRoute::Time, EdgeRoute::Health];

    /// The route template reported in metrics and logs.
    pub fn template(self) -> &'static str {
        match self {
            EdgeRoute::Static => "/static/{*key}",
            EdgeRoute::Vod => "/vod/{*path}",
            EdgeRoute::Live => "/live/{channel}/{*rest}",
            EdgeRoute::Time => "/time",
            EdgeRoute::Health => "/healthz",
        }
    }

    /// The route of a raw (still percent-encoded) request path and what its wildcard captures.
    pub fn of(path: &str) -> Option<(EdgeRoute, &str)> {
        match path {
            "/time" => return Some((EdgeRoute::Time, "")),
            "/healthz" => return Some((EdgeRoute::Health, "")),
            _ => {}
        }
        let (route, rest) = if let Some(rest) = path.strip_prefix("/static/") {
            (EdgeRoute::Static, rest)
        } else if let Some(rest) = path.strip_prefix("/vod/") {
            (EdgeRoute::Vod, rest)
        } else if let Some(rest) = path.strip_prefix("/live/") {
            // `{channel}/{rest}`: both non-empty.
            let (channel, tail) = rest.split_once('/')?;
            if channel.is_empty() || tail.is_empty() {
                return None;
            }
            (EdgeRoute::Live, rest)
        } else {
            return None;
        };
        (!rest.is_empty()).then_some((route, rest))
    }
}

/// The edge path of a live channel's object: `/live/{channel}/{object}`.
pub fn live(channel: &str, object: LivePath) -> String {
    format!("/live/{channel}/{object}")
}

/// The edge path of a VOD asset's object: `/vod/{asset}/{object}`.
pub fn vod(asset: &str, object: VodPath) -> String {
    format!("/vod/{asset}/{object}")
}

/// How segments are packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// fMP4/CMAF: HLS and DASH.
    Fmp4,
    /// MPEG-TS: HLS only.
    Ts,
    /// WebVTT: the segments of a live subtitle rendition (HLS only).
    WebVtt,
}

impl Container {
    pub fn extension(self) -> &'static str {
        match self {
            Container::Fmp4 => "m4s",
            Container::Ts => "ts",
            Container::WebVtt => "vtt",
        }
    }
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
    /// `s0.m3u8` (with the fMP4 variants) or `ts/s0.m3u8` (with the TS ones): a subtitle track's
    /// segmented WebVTT, timed for that container.
    SubtitlePlaylist(u16, Container),
    /// `s0/3.vtt` or `ts/s0/3.vtt`
    SubtitleSegment(u16, Container, u32),
    /// `s0.vtt`: the whole track as one WebVTT file (DASH).
    SubtitleFile(u16),
}

/// Writes a rendition id (`v0`, `a12`).
fn write_rendition<W: Write + ?Sized>(out: &mut W, r: RenditionId) -> fmt::Result {
    out.write_char(match r.kind {
        crate::packaging::mp4::TrackKind::Video => 'v',
        crate::packaging::mp4::TrackKind::Audio => 'a',
        crate::packaging::mp4::TrackKind::Text => 's',
    })?;
    write_u64(out, u64::from(r.index))
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

/// The URLs of an MPD `SegmentTemplate`, which name the same objects as [`VodPath`] and [`LivePath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateUrls {
    /// `$RepresentationID$/init.mp4` and `$RepresentationID$/$Number$.m4s`.
    Vod,
    /// `v0/{epoch}/init.mp4` and `v0/{epoch}/$Number$.m4s`.
    Live { rendition: RenditionId, epoch: u64 },
    /// `v0/init.mp4` and `v0/iframes/$Number$.m4s`: a VOD rendition's keyframes (trick mode).
    VodIFrames(RenditionId),
}

impl TemplateUrls {
    pub fn push_initialization(self, out: &mut String) {
        self.push_dir(out);
        out.push_str("init.mp4");
    }

    pub fn push_media(self, out: &mut String) {
        self.push_dir(out);
        if let TemplateUrls::VodIFrames(_) = self {
            out.push_str("iframes/");
        }
        out.push_str("$Number$.m4s");
    }

    fn push_dir(self, out: &mut String) {
        match self {
            TemplateUrls::Vod => out.push_str("$RepresentationID$/"),
            TemplateUrls::VodIFrames(rendition) => {
                let _ = write_rendition(out, rendition);
                out.push('/');
            }
            TemplateUrls::Live { rendition, epoch } => {
                let _ = write_rendition(out, rendition);
                out.push('/');
                push_u64(out, epoch);
                out.push('/');
            }
        }
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
            let is_asset = ASSET_EXTENSIONS.iter().any(|ext| {
                segment.len() > ext.len()
                    && segment.get(segment.len() - ext.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(ext))
            });
            if is_asset {
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

/// One object of a live channel, as named after the channel in `/live/{channel}/{object}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivePath {
    /// `master.m3u8`
    Master,
    /// `manifest.mpd`
    Mpd,
    /// `v0.m3u8`
    Playlist(RenditionId),
    /// `v0/{epoch}/init.mp4`
    Init(RenditionId, u64),
    /// `v0/{epoch}/{msn}.m4s` or `.ts`
    Segment(RenditionId, u64, u64, Container),
    /// `v0/{epoch}/{msn}.{part}.m4s`: an LL-HLS partial segment (a CMAF chunk; fMP4 only).
    Part(RenditionId, u64, u64, u32),
    /// `v0-iframes.m3u8`: the keyframes of an MPEG-TS rendition's segments (trick play).
    IFrames(RenditionId),
}

impl LivePath {
    /// Writes the object's name (what [`LivePath::parse`] reads), like [`VodPath::write_to`].
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        match *self {
            LivePath::Master => out.write_str("master.m3u8"),
            LivePath::Mpd => out.write_str("manifest.mpd"),
            LivePath::Playlist(r) => {
                write_rendition(out, r)?;
                out.write_str(".m3u8")
            }
            LivePath::Init(r, epoch) => {
                write_rendition(out, r)?;
                out.write_char('/')?;
                write_u64(out, epoch)?;
                out.write_str("/init.mp4")
            }
            LivePath::Segment(r, epoch, msn, c) => {
                write_slot(out, r, epoch, msn)?;
                out.write_str(c.extension())
            }
            LivePath::Part(r, epoch, msn, part) => {
                write_slot(out, r, epoch, msn)?;
                write_u64(out, u64::from(part))?;
                out.write_str(".m4s")
            }
            LivePath::IFrames(r) => {
                write_rendition(out, r)?;
                out.write_str("-iframes.m3u8")
            }
        }
    }
}

/// `v0/{epoch}/{msn}.`: what a segment's and its parts' names start with.
fn write_slot<W: Write + ?Sized>(out: &mut W, r: RenditionId, epoch: u64, msn: u64) -> fmt::Result {
    write_rendition(out, r)?;
    out.write_char('/')?;
    write_u64(out, epoch)?;
    out.write_char('/')?;
    write_u64(out, msn)?;
    out.write_char('.')
}

impl fmt::Display for LivePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl LivePath {
    /// Parses the part of a URL after the channel.
    pub fn parse(rest: &str) -> Option<LivePath> {
        let mut parts = rest.split('/');
        let (a, b, c) = (parts.next()?, parts.next(), parts.next());
        if parts.next().is_some() {
            return None;
        }
        match (a, b, c) {
            ("master.m3u8", None, None) => Some(LivePath::Master),
            ("manifest.mpd", None, None) => Some(LivePath::Mpd),
            (name, None, None) if name.ends_with("-iframes.m3u8") => {
                Some(LivePath::IFrames(name.strip_suffix("-iframes.m3u8")?.parse().ok()?))
            }
            (name, None, None) => Some(LivePath::Playlist(name.strip_suffix(".m3u8")?.parse().ok()?)),
            (r, Some(epoch), Some("init.mp4")) => Some(LivePath::Init(r.parse().ok()?, number(epoch)?)),
            (r, Some(epoch), Some(file)) => {
                let (name, ext) = file.rsplit_once('.')?;
                let container = match ext {
                    "m4s" => Container::Fmp4,
                    "ts" => Container::Ts,
                    "vtt" => Container::WebVtt,
                    _ => return None,
                };
                let (r, epoch) = (r.parse().ok()?, number(epoch)?);
                match name.split_once('.') {
                    None => Some(LivePath::Segment(r, epoch, number(name)?, container)),
                    Some((msn, part)) if container == Container::Fmp4 => {
                        Some(LivePath::Part(r, epoch, number(msn)?, number(part)?))
                    }
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }
}

/// Which slots a live playlist shows: the sliding window, or a DVR range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowRequest {
    /// DVR start (`?start=`).
    pub start: Option<SystemTime>,
    /// DVR end (`?end=`).
    pub end: Option<SystemTime>,
}

impl WindowRequest {
    /// The window as a canonical query string (`?start=1.500`, or empty): carried into the media
    /// playlist URIs of a master playlist, and part of rendered playlists' cache keys.
    pub fn canonical_query(self) -> String {
        let secs = |t: SystemTime| {
            format!("{:.3}", t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64())
        };
        match (self.start, self.end) {
            (None, None) => String::new(),
            (Some(s), None) => format!("?start={}", secs(s)),
            (None, Some(e)) => format!("?end={}", secs(e)),
            (Some(s), Some(e)) => format!("?start={}&end={}", secs(s), secs(e)),
        }
    }
}

/// What a live URL's query asks: a DVR window (`start`, `end`), a blocking reload (`_HLS_msn`,
/// `_HLS_part`) and a delta playlist (`_HLS_skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveQuery {
    pub window: WindowRequest,
    pub msn: Option<u64>,
    pub part: Option<u32>,
    /// `_HLS_skip=YES` (or `v2`): the older segments may be left out (`EXT-X-SKIP`).
    pub skip: bool,
}

impl LiveQuery {
    /// Parses a raw (percent-encoded) query string; unknown parameters are ignored.
    pub fn parse(query: &str) -> Result<LiveQuery, String> {
        let mut parsed = LiveQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("{name} is not valid percent-encoded UTF-8"))?;
            match name {
                "start" => parsed.window.start = Some(parse_time(&value)?),
                "end" => parsed.window.end = Some(parse_time(&value)?),
                "_HLS_msn" => parsed.msn = Some(number(&value).ok_or_else(|| "_HLS_msn must be a number".to_owned())?),
                "_HLS_part" => {
                    parsed.part = Some(number(&value).ok_or_else(|| "_HLS_part must be a number".to_owned())?);
                }
                "_HLS_skip" => {
                    parsed.skip = match &*value {
                        "YES" | "v2" => true,
                        _ => return Err("_HLS_skip must be YES or v2".into()),
                    };
                }
                _ => {}
            }
        }
        // RFC 8216bis 6.2.5.2: a part is asked for within a segment.
        if parsed.part.is_some() && parsed.msn.is_none() {
            return Err("_HLS_part needs _HLS_msn".into());
        }
        Ok(parsed)
    }
}

/// `?start=`/`?end=`: ISO 8601 (`2026-11-22T10:00:00Z`) or Unix seconds.
pub fn parse_time(value: &str) -> Result<SystemTime, String> {
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.min(1e11)));
    }
    let t = chrono::DateTime::parse_from_rfc3339(value)
        .map_err(|_| format!("{value:?} is not ISO 8601 or Unix seconds"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(t.timestamp_millis().max(0) as u64))
}

/// A decimal number of at most 20 digits, nothing else.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packaging::mp4::TrackKind;

    #[test]
    fn routes() {
        assert_eq!(EdgeRoute::of("/static/a/b.m3u8"), Some((EdgeRoute::Static, "a/b.m3u8")));
        assert_eq!(EdgeRoute::of("/vod/a.mp4/master.m3u8"), Some((EdgeRoute::Vod, "a.mp4/master.m3u8")));
        assert_eq!(EdgeRoute::of("/live/news/master.m3u8"), Some((EdgeRoute::Live, "news/master.m3u8")));
        assert_eq!(EdgeRoute::of("/time"), Some((EdgeRoute::Time, "")));
        assert_eq!(EdgeRoute::of("/healthz"), Some((EdgeRoute::Health, "")));
        for bad in
            ["/static/", "/vod/", "/static", "/staticx/a", "/live/news", "/live//x", "/live/news/", "/", "/time/"]
        {
            assert_eq!(EdgeRoute::of(bad), None, "{bad}");
        }
    }

    #[test]
    fn vod_names_round_trip() {
        for name in ["master.m3u8", "manifest.mpd", "v0.m3u8", "a1.m3u8", "v0/init.mp4", "v2/17.m4s"] {
            assert_eq!(VodPath::parse(name).unwrap().to_string(), name);
        }
        for name in
            ["s0.m3u8", "s12/3.vtt", "s1.vtt", "ts/s0.m3u8", "ts/s3/1.vtt", "v0-iframes.m3u8", "v1/iframes/2.m4s"]
        {
            assert_eq!(VodPath::parse(name).unwrap().to_string(), name);
        }
        assert_eq!(VodPath::parse("ts/s3/1.vtt"), Some(VodPath::SubtitleSegment(3, Container::Ts, 1)));
        for bad in [
            "",
            "v0",
            "x0.m3u8",
            "v0/0.m4s",
            "v0/01.m4s",
            "v0/1.ts",
            "v0/init.m4s",
            "v0/a/1.m4s",
            "v0/99999999999.m4s",
            "s.m3u8",
            "s01.m3u8",
            "s0/0.vtt",
            "s0/1.m4s",
            "ts/s0.vtt",
            "s0/1/2.vtt",
            "s99999.m3u8",
            "a/iframes/1.m4s",
            "v0/iframes/0.m4s",
            "v0/iframes/1.ts",
            "x-iframes.m3u8",
        ] {
            assert_eq!(VodPath::parse(bad), None, "{bad}");
        }
        assert_eq!(VodPath::parse("master.mpd"), None);
    }

    #[test]
    fn vod_paths_split_at_the_asset() {
        let v = |index| RenditionId { kind: TrackKind::Video, index };
        assert_eq!(VodPath::split("sample/sample.mp4/master.m3u8"), Some(("sample/sample.mp4", VodPath::Master)));
        assert_eq!(VodPath::split("a/b/set.json/v1/12.m4s"), Some(("a/b/set.json", VodPath::Segment(v(1), 12))));
        assert_eq!(VodPath::split("x.MP4/v0/init.mp4"), Some(("x.MP4", VodPath::Init(v(0)))));
        for bad in
            ["sample/sample.mp4", "sample/sample.mp4/", "sample/master.m3u8", ".mp4/master.m3u8", "a.mp4/v0/0.m4s"]
        {
            assert_eq!(VodPath::split(bad), None, "{bad}");
        }
    }

    #[test]
    fn live_names_round_trip() {
        let v0: RenditionId = "v0".parse().unwrap();
        assert_eq!(LivePath::parse("master.m3u8"), Some(LivePath::Master));
        assert_eq!(LivePath::parse("manifest.mpd"), Some(LivePath::Mpd));
        assert_eq!(LivePath::parse("v0.m3u8"), Some(LivePath::Playlist(v0)));
        assert_eq!(LivePath::parse("v0/1700/init.mp4"), Some(LivePath::Init(v0, 1700)));
        assert_eq!(LivePath::parse("v0/1700/42.m4s"), Some(LivePath::Segment(v0, 1700, 42, Container::Fmp4)));
        assert_eq!(LivePath::parse("v0/1700/42.ts"), Some(LivePath::Segment(v0, 1700, 42, Container::Ts)));
        assert_eq!(LivePath::parse("v0/1700/42.3.m4s"), Some(LivePath::Part(v0, 1700, 42, 3)));
        for bad in
            ["v0/1700/42.3.ts", "v0/1700/42..m4s", "v0/1700/42.3.1.m4s", "v0/1700/.3.m4s", "v0/1700/42.99999999999.m4s"]
        {
            assert_eq!(LivePath::parse(bad), None, "{bad}");
        }
        for name in
            ["master.m3u8", "manifest.mpd", "a1.m3u8", "v0/17/init.mp4", "v0/17/3.m4s", "v1/2/3.ts", "a0/1/9.0.m4s"]
        {
            assert_eq!(LivePath::parse(name).unwrap().to_string(), name);
        }
        for bad in ["", "x.m3u8", "v0/42.m4s", "v0/a/42.m4s", "v0/1/42.mp4", "v0/1/-1.m4s", "v0/1/2/3"] {
            assert_eq!(LivePath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn live_queries() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(parse_time("1700000000"), Ok(at(1_700_000_000)));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(at(1_700_000_000)));
        assert!(parse_time("yesterday").is_err());
        let q = LiveQuery::parse("start=2023-11-14T22%3A13%3A20Z&end=1700000060&_HLS_msn=42&x=y").unwrap();
        assert_eq!(q.window, WindowRequest { start: Some(at(1_700_000_000)), end: Some(at(1_700_000_060)) });
        assert_eq!(q.msn, Some(42));
        assert_eq!(q.window.canonical_query(), "?start=1700000000.000&end=1700000060.000");
        assert_eq!(LiveQuery::parse("").unwrap(), LiveQuery::default());
        assert!(LiveQuery::parse("_HLS_msn=-1").is_err());
        let q = LiveQuery::parse("_HLS_msn=42&_HLS_part=3&_HLS_skip=YES").unwrap();
        assert_eq!((q.msn, q.part, q.skip), (Some(42), Some(3), true));
        assert!(LiveQuery::parse("_HLS_skip=v2").unwrap().skip);
        assert!(!LiveQuery::parse("_HLS_msn=1").unwrap().skip);
        for bad in ["_HLS_part=3", "_HLS_msn=1&_HLS_part=x", "_HLS_skip=yes", "_HLS_skip="] {
            assert!(LiveQuery::parse(bad).is_err(), "{bad}");
        }
        assert!(LiveQuery::parse("start=soon").is_err());
        let w = WindowRequest { start: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1500)), end: None };
        assert_eq!(w.canonical_query(), "?start=1.500");
    }

    #[test]
    fn templates_write_the_parsed_names() {
        let v0: RenditionId = "v0".parse().unwrap();
        let (mut init, mut media) = (String::new(), String::new());
        TemplateUrls::Live { rendition: v0, epoch: 7 }.push_initialization(&mut init);
        TemplateUrls::Live { rendition: v0, epoch: 7 }.push_media(&mut media);
        assert_eq!(init, LivePath::Init(v0, 7).to_string());
        assert_eq!(media.replace("$Number$", "9"), LivePath::Segment(v0, 7, 9, Container::Fmp4).to_string());
        let (mut init, mut media) = (String::new(), String::new());
        TemplateUrls::Vod.push_initialization(&mut init);
        TemplateUrls::Vod.push_media(&mut media);
        assert_eq!(init.replace("$RepresentationID$", "v0"), VodPath::Init(v0).to_string());
        assert_eq!(
            media.replace("$RepresentationID$", "v0").replace("$Number$", "9"),
            VodPath::Segment(v0, 9).to_string()
        );
    }
}
