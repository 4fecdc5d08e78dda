//! PURE: live object names after the channel in `/live/{channel}/{object}`, and what a live URL's
//! query asks (DVR window, blocking reload, delta playlists).

use std::fmt::{self, Write};
use std::time::{Duration, SystemTime};

use super::{Container, number, write_rendition};
use crate::manifest::text::write_u64;
use crate::presentation::RenditionId;

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

/// Why a live URL's query was refused (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveQueryError {
    #[error("{0} is not valid percent-encoded UTF-8")]
    Encoding(String),
    #[error("{0:?} is not ISO 8601 or Unix seconds")]
    Time(String),
    #[error("{0} must be a number")]
    Number(&'static str),
    #[error("_HLS_skip must be YES or v2")]
    Skip,
    #[error("_HLS_part needs _HLS_msn")]
    PartWithoutMsn,
}

impl LiveQuery {
    /// Parses a raw (percent-encoded) query string; unknown parameters are ignored.
    pub fn parse(query: &str) -> Result<LiveQuery, LiveQueryError> {
        let mut parsed = LiveQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| LiveQueryError::Encoding(name.to_owned()))?;
            match name {
                "start" => parsed.window.start = Some(parse_time(&value)?),
                "end" => parsed.window.end = Some(parse_time(&value)?),
                "_HLS_msn" => parsed.msn = Some(number(&value).ok_or(LiveQueryError::Number("_HLS_msn"))?),
                "_HLS_part" => {
                    parsed.part = Some(number(&value).ok_or(LiveQueryError::Number("_HLS_part"))?);
                }
                "_HLS_skip" => {
                    parsed.skip = match &*value {
                        "YES" | "v2" => true,
                        _ => return Err(LiveQueryError::Skip),
                    };
                }
                _ => {}
            }
        }
        // RFC 8216bis 6.2.5.2: a part is asked for within a segment.
        if parsed.part.is_some() && parsed.msn.is_none() {
            return Err(LiveQueryError::PartWithoutMsn);
        }
        Ok(parsed)
    }
}

/// `?start=`/`?end=`: ISO 8601 (`2026-11-22T10:00:00Z`) or Unix seconds.
pub fn parse_time(value: &str) -> Result<SystemTime, LiveQueryError> {
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.min(1e11)));
    }
    let t = chrono::DateTime::parse_from_rfc3339(value).map_err(|_| LiveQueryError::Time(value.to_owned()))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(t.timestamp_millis().max(0) as u64))
}
