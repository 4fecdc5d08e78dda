//! PURE: the URL grammar of the edge: which paths exist (`/static/`, `/vod/`, `/live/`, `/time`,
//! `/healthz`), how VOD and live object names parse, and how renderers write them. The handlers parse
//! with it and the playlist and MPD adapters write with it, so the two can never disagree.

mod live;
mod vod;

use std::fmt::{self, Write};

use serde::{Deserialize, Serialize};

pub use live::{LivePath, LiveQuery, LiveQueryError, WindowRequest, parse_time};
pub use vod::{VodPath, is_asset_name};

use crate::manifest::text::{push_u64, write_u64};
use crate::presentation::RenditionId;

/// VOD segments are numbered from 1 in URLs (and as `EXT-X-MEDIA-SEQUENCE`), like DASH's default `startNumber`.
pub const FIRST_SEGMENT_NUMBER: usize = 1;

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
    /// The `Content-Type` of a segment in this container.
    pub fn media_type(self) -> &'static str {
        match self {
            Container::Fmp4 => estuary_http::content_type::MEDIA_SEGMENT,
            Container::Ts => estuary_http::content_type::MPEG_TS,
            Container::WebVtt => estuary_http::content_type::WEBVTT,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Container::Fmp4 => "m4s",
            Container::Ts => "ts",
            Container::WebVtt => "vtt",
        }
    }
}

/// Writes a rendition id (`v0`, `a12`).
pub(super) fn write_rendition<W: Write + ?Sized>(out: &mut W, r: RenditionId) -> fmt::Result {
    out.write_char(match r.kind {
        crate::mp4::TrackKind::Video => 'v',
        crate::mp4::TrackKind::Audio => 'a',
        crate::mp4::TrackKind::Text => 's',
    })?;
    write_u64(out, u64::from(r.index))
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

/// A decimal number of at most 20 digits, nothing else.
pub(super) fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::mp4::TrackKind;

    #[test]
    fn vod_names_round_trip() {
        for name in ["master.m3u8", "manifest.mpd", "v0.m3u8", "a1.m3u8", "v0/init.mp4", "v2/17.m4s"] {
            assert_eq!(VodPath::parse(name).unwrap().to_string(), name);
        }
        for name in [
            "s0.m3u8",
            "s12/3.vtt",
            "s1.vtt",
            "ts/s0.m3u8",
            "ts/s3/1.vtt",
            "v0-iframes.m3u8",
            "v1/iframes/2.m4s",
            "v1/iframes/2.0.m4s",
            "v0/iframes/3.12.m4s",
        ] {
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
            "v0/iframes/1.01.m4s",
            "v0/iframes/1.x.m4s",
            "v0/iframes/1.70000.m4s",
            "v0/iframes/1..m4s",
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
