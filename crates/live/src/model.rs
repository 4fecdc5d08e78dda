//! PURE: the value types of a live channel: ids, settings, renditions, slots, and the immutable
//! snapshot the edge reads (window selection, blocking-reload questions, discontinuity counting).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use bytes::Bytes;
use estuary_media::mp4::TrackKind;
use estuary_media::presentation::RenditionId;
pub use estuary_media::url::{Container, WindowRequest};

/// A channel's name: `[a-z0-9][a-z0-9_-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelId(Arc<str>);

/// A name that is not a channel id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel id {0:?} must match [a-z0-9][a-z0-9_-]{{0,62}}")]
pub struct BadChannelId(String);

impl ChannelId {
    pub fn parse(s: &str) -> Result<ChannelId, BadChannelId> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok { Ok(ChannelId(s.into())) } else { Err(BadChannelId(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by channel are searched with the id as it comes in a URL, with no copy made first (the
/// hash and equality of a `ChannelId` are those of its text).
impl std::borrow::Borrow<str> for ChannelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChannelId {
    type Error = BadChannelId;
    fn try_from(s: String) -> Result<Self, BadChannelId> {
        ChannelId::parse(&s)
    }
}

impl From<ChannelId> for String {
    fn from(c: ChannelId) -> String {
        c.0.to_string()
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Per-channel settings, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    /// Length of the live playlist (at least three target durations).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How far back start-over (`?start=`) can go; segments older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub dvr: Duration,
    /// `EXT-X-TARGETDURATION`: what the encoder's segments must not exceed (rounded).
    #[serde(with = "humantime_serde")]
    pub target_duration: Duration,
    /// With no upload for this long, the channel ends (its playlists get `EXT-X-ENDLIST`).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Served encrypted as `[encryption]` says (scheme, key period, key delivery), whatever its id;
    /// set when the channel is made, never changed while it lives.
    #[serde(default)]
    pub encrypted: bool,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings {
            window: Duration::from_secs(30),
            dvr: Duration::from_secs(2 * 3600),
            target_duration: Duration::from_secs(6),
            idle_timeout: Duration::from_secs(60),
            encrypted: false,
        }
    }
}

/// A channel setting out of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("target_duration must be between 0.5 s and 30 s")]
    TargetDuration,
    #[error("dvr must be at least the window and at most 7 days")]
    Dvr,
    #[error("idle_timeout must be at least 1 s")]
    IdleTimeout,
}

impl ChannelSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let t = self.target_duration;
        if t < Duration::from_millis(500) || t > Duration::from_secs(30) {
            return Err(SettingsError::TargetDuration);
        }
        if self.dvr < self.window || self.dvr > Duration::from_secs(7 * 24 * 3600) {
            return Err(SettingsError::Dvr);
        }
        if self.idle_timeout < Duration::from_secs(1) {
            return Err(SettingsError::IdleTimeout);
        }
        Ok(())
    }

    /// `EXT-X-TARGETDURATION`, whole seconds.
    pub fn target_secs(&self) -> u32 {
        (self.target_duration.as_secs_f64().ceil() as u32).max(1)
    }

    /// The live playlist's length: the configured window, never under three target durations.
    pub fn playlist_window(&self) -> f64 {
        self.window.as_secs_f64().max(3.0 * f64::from(self.target_secs()))
    }
}

/// How a rendition of `kind` in a channel carrying `channel` segments is packaged: subtitles as
/// WebVTT whatever the media's container.
pub fn container_for(kind: TrackKind, channel: Option<Container>) -> Option<Container> {
    if kind == TrackKind::Text { Some(Container::WebVtt) } else { channel }
}

/// A rendition of a live channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRendition {
    pub id: RenditionId,
    pub kind: TrackKind,
    pub codecs: Option<String>,
    pub timescale: u32,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<(u32, u32)>,
    pub channels: Option<u16>,
    pub sample_rate: Option<u32>,
    pub language: Option<String>,
    pub name: String,
    /// Comes from a pushed variant that also carries video (a muxed audio track).
    pub muxed: bool,
    /// Highest segment bit rate seen in the window.
    pub peak_bps: u64,
    pub average_bps: u64,
}

/// One rendition's share of a slot: the bytes of its segment and their timing.
#[derive(Debug, Clone)]
pub struct Part {
    /// `tfdt` (fMP4) or presentation start (TS) in the rendition's timescale.
    pub decode_time: u64,
    /// In the rendition's timescale.
    pub duration: u64,
    pub size: u64,
    /// The segment, while it is kept in memory; afterwards it is read from storage.
    pub bytes: Option<Bytes>,
    /// Written through to storage.
    pub stored: bool,
    /// On a pod following the channel: the owner holds the bytes in memory (read from it first).
    pub at_owner: bool,
    /// MPEG-TS video: where its keyframes lie (the rendition's I-frame playlist).
    pub keyframes: Option<Arc<Keyframes>>,
}

/// The keyframes of one MPEG-TS segment: byte ranges of their PES, after the segment's PAT and PMT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyframes {
    /// The rendition's keyframes before this segment's, counted from its first segment: the I-frame
    /// playlist's sequence number of this segment's first.
    pub first: u64,
    /// `(offset, len, pts)` of each: bytes in the segment, presentation time at 90 kHz.
    pub ranges: Vec<(u32, u32, u64)>,
    /// Length of the tables that open the segment (PAT and PMT, an SDT before them): the map.
    pub tables: u32,
}

/// One media sequence number across all renditions.
#[derive(Debug, Clone)]
pub struct Slot {
    pub msn: u64,
    /// Stream epoch: changes whenever the encoder restarts; part of every URL.
    pub epoch: u64,
    /// Starts a new timeline (encoder restart or time jump).
    pub discontinuity: bool,
    /// Wall-clock time of the slot's start.
    pub pdt: SystemTime,
    /// Nominal duration in seconds (from the first part that arrived).
    pub duration: f64,
    /// Indexed by rendition index.
    pub parts: Vec<Option<Part>>,
}

impl Slot {
    pub fn part(&self, rendition: usize) -> Option<&Part> {
        self.parts.get(rendition).and_then(Option::as_ref)
    }

    pub fn end(&self) -> SystemTime {
        self.pdt + Duration::from_secs_f64(self.duration.max(0.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, nothing pushed yet.
    Waiting,
    Live,
    /// Stopped (API or idle): playlists are closed with `EXT-X-ENDLIST`.
    Ended,
}

/// An LL-HLS part: one CMAF chunk of a segment, re-muxed for its rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePart {
    pub duration: f64,
    /// Empty on a pod following the channel: it reads them from the owner.
    pub bytes: Bytes,
    pub size: u64,
    /// Starts with a sync sample.
    pub independent: bool,
}

/// One rendition's parts of one segment, in order. The segment is whole once its slot has the
/// rendition's part; until then it is the segment being uploaded.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentParts {
    pub msn: u64,
    pub epoch: u64,
    pub parts: Vec<LivePart>,
}

/// What low-latency players get beyond segments: per rendition, the parts of its newest segments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LowLatency {
    pub renditions: Vec<std::collections::VecDeque<SegmentParts>>,
    /// `EXT-X-PART-INF:PART-TARGET`: the longest part seen, rounded up to a tenth of a second.
    pub part_target: f64,
}

impl LivePart {
    /// What this part, the `index`-th of its segment, adds to the whole segment: all of it for the
    /// first; for the others, all but their own `styp` (a segment has one).
    pub fn in_segment(&self, index: usize) -> Bytes {
        let body = &self.bytes;
        if index == 0 || body.get(4..8) != Some(b"styp") {
            return body.clone();
        }
        let styp = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
        body.slice(styp.min(body.len())..)
    }
}

impl SegmentParts {
    /// The parts' duration in seconds.
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    /// Whether the parts make up a whole segment of `secs` (within about a frame): an upload whose
    /// chunks broke off midway does not.
    pub fn covers(&self, secs: f64) -> bool {
        !self.parts.is_empty() && (self.duration() - secs).abs() < 0.1
    }
}

impl LowLatency {
    pub fn segment(&self, rendition: usize, msn: u64) -> Option<&SegmentParts> {
        self.renditions.get(rendition)?.iter().find(|s| s.msn == msn)
    }
}

/// The per-epoch init segments, by rendition index.
#[derive(Debug, Clone)]
pub struct EpochInits {
    pub epoch: u64,
    pub inits: Vec<Option<Bytes>>,
}

/// What the edge sees of a channel: immutable, replaced whole on every change.
#[derive(Debug, Clone)]
pub struct ChannelSnapshot {
    pub id: ChannelId,
    pub settings: ChannelSettings,
    /// Increases with every publication.
    pub version: u64,
    pub status: Status,
    /// False after an API stop.
    pub accepting: bool,
    pub last_upload: Option<SystemTime>,
    pub container: Option<Container>,
    pub renditions: Vec<LiveRendition>,
    pub epochs: Vec<EpochInits>,
    /// Every retained slot (the DVR window), dense in `msn`.
    pub slots: Vec<Arc<Slot>>,
    /// Discontinuities that happened before `slots[0]`.
    pub discontinuity_base: u64,
    /// DASH `availabilityStartTime`.
    pub availability_start: SystemTime,
    pub published: SystemTime,
    /// Upload-to-playlist delay of recent segments.
    pub publish_latency: PublishLatency,
    /// From a chunk's arrival to its part's publication (LL-HLS, LL-DASH).
    pub part_publish_latency: PublishLatency,
    /// On a pod following the channel: the owner's internal listener, for the segments it holds.
    pub owner_url: Option<std::sync::Arc<str>>,
    /// LL-HLS parts, on the pod that takes the uploads.
    pub low_latency: Arc<LowLatency>,
}

impl ChannelSnapshot {
    pub fn slot(&self, msn: u64) -> Option<&Arc<Slot>> {
        let first = self.slots.first()?.msn;
        self.slots.get(usize::try_from(msn.checked_sub(first)?).ok()?)
    }

    pub fn rendition_index(&self, id: RenditionId) -> Option<usize> {
        self.renditions.iter().position(|r| r.id == id)
    }

    /// How rendition `r`'s segments are packaged.
    pub fn container_of(&self, r: usize) -> Option<Container> {
        container_for(self.renditions.get(r)?.kind, self.container)
    }

    /// The newest slot that has this rendition's part.
    pub fn edge_of(&self, rendition: usize) -> Option<u64> {
        self.slots.iter().rev().find(|s| s.part(rendition).is_some()).map(|s| s.msn)
    }

    /// How far the live edge is behind `now`, in milliseconds; `None` while the channel has no media
    /// or once it ended.
    pub fn live_edge_age_ms(&self, now: SystemTime) -> Option<u64> {
        let edge = self.live_edge().filter(|_| self.status == Status::Live)?;
        Some(now.duration_since(edge).unwrap_or_default().as_millis() as u64)
    }

    /// The wall-clock end of the newest media a player can get: the newest slot's end, or further
    /// by the parts of the segment after it. How far this is behind the clock is how late the
    /// channel's live edge is (encoder, upload and publication together).
    pub fn live_edge(&self) -> Option<SystemTime> {
        let last = self.slots.last()?;
        let next = last.msn + 1;
        let parts = (0..self.low_latency.renditions.len())
            .filter_map(|r| self.low_latency.segment(r, next).filter(|s| s.epoch == last.epoch))
            .map(SegmentParts::duration)
            .fold(0.0, f64::max);
        Some(last.end() + Duration::from_secs_f64(parts))
    }

    /// Whether players are offered parts (LL-HLS, LL-DASH): the encoder uploads its segments in
    /// chunks of at most half a segment. An encoder that uploads each segment as one chunk (an HLS
    /// muxer pushing with `PUT`) leaves the channel classic.
    pub fn offers_parts(&self) -> bool {
        let ll = &self.low_latency;
        ll.part_target > 0.0
            && ll.part_target <= self.settings.target_duration.as_secs_f64() / 2.0
            && ll.renditions.iter().any(|segments| !segments.is_empty())
    }

    /// The newest media sequence number of the channel.
    pub fn last_msn(&self) -> Option<u64> {
        self.slots.last().map(|s| s.msn)
    }

    pub fn init(&self, epoch: u64, rendition: usize) -> Option<&Bytes> {
        self.epochs.iter().find(|e| e.epoch == epoch)?.inits.get(rendition)?.as_ref()
    }

    /// Whether a `_HLS_msn` request for `msn` can be answered now.
    pub fn has_reached(&self, rendition: usize, msn: u64) -> bool {
        self.status == Status::Ended || self.edge_of(rendition).is_some_and(|edge| edge >= msn)
    }

    /// Whether a `_HLS_msn` + `_HLS_part` request can be answered now: the segment is whole, or its
    /// part `part` has arrived.
    pub fn has_part(&self, rendition: usize, msn: u64, part: u32) -> bool {
        self.has_reached(rendition, msn)
            || self.low_latency.segment(rendition, msn).is_some_and(|s| s.parts.len() > part as usize)
    }

    /// Slot indices for a playlist of `rendition`: the live window ending at its edge, or a DVR range.
    /// Returns the range and whether it is closed (no more slots will be added to it).
    pub fn window(&self, rendition: usize, req: WindowRequest) -> (std::ops::Range<usize>, bool) {
        let ended = self.status == Status::Ended;
        let Some(edge_msn) = self.edge_of(rendition) else {
            return (0..0, ended);
        };
        // Exclusive end: just past the rendition's newest part.
        let edge = self.slots.partition_point(|s| s.msn <= edge_msn);
        if req.start.is_none() && req.end.is_none() {
            // Sliding window of the channel's newest slots, cut at this rendition's edge.
            let mut start = self.slots.len();
            let mut total = 0.0;
            while start > 0 && total < self.settings.playlist_window() {
                start -= 1;
                total += self.slots[start].duration;
            }
            return (start.min(edge)..edge, ended);
        }
        let first = match req.start {
            Some(t) => self.slots.partition_point(|s| s.end() <= t),
            None => 0,
        };
        let (last, closed) = match req.end {
            Some(t) => {
                let last = self.slots.partition_point(|s| s.pdt < t).min(edge);
                (last, ended || self.slots.last().is_some_and(|s| s.end() >= t))
            }
            None => (edge, ended),
        };
        (first.min(last)..last, closed)
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE` for a playlist starting at slot index `first`.
    pub fn discontinuity_sequence(&self, first: usize) -> u64 {
        self.discontinuity_base
            + self.slots[..first.min(self.slots.len())].iter().filter(|s| s.discontinuity).count() as u64
    }
}

/// A delay's summary (upload to publication), as the channel API and metrics give it: a value of
/// the snapshot, summarised by the channel's state machine.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PublishLatency {
    pub samples: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{slot, snapshot};

    #[test]
    fn channel_ids() {
        for ok in ["news", "a", "sport-1", "x_2"] {
            assert!(ChannelId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "News", "-x", "a/b", "a.b", &"x".repeat(64)] {
            assert!(ChannelId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_slide_and_count_discontinuities() {
        let mut slots: Vec<_> = (10..20).map(|m| slot(m, 2.0, 2)).collect();
        // Rendition 1 is one slot behind.
        Arc::get_mut(&mut slots[9]).unwrap().parts[1] = None;
        let s = snapshot(slots);
        assert_eq!(s.edge_of(0), Some(19));
        assert_eq!(s.edge_of(1), Some(18));
        // A 10 s window of 2 s slots: the last five.
        assert_eq!(s.window(0, WindowRequest::default()), (5..10, false));
        assert_eq!(s.window(1, WindowRequest::default()), (5..9, false));
        assert_eq!(s.discontinuity_sequence(0), 3);
        assert_eq!(s.discontinuity_sequence(5), 4);
        assert!(s.has_reached(0, 19) && !s.has_reached(1, 19) && !s.has_reached(0, 20));
        assert_eq!(s.slot(15).unwrap().msn, 15);
        assert!(s.slot(9).is_none() && s.slot(20).is_none());
    }

    #[test]
    fn the_live_edge_is_the_newest_slot_and_the_parts_after_it() {
        let mut s = snapshot((10..13).map(|m| slot(m, 2.0, 1)).collect());
        let end = s.slots[2].end();
        assert_eq!(s.live_edge(), Some(end));
        let part = LivePart { duration: 0.5, bytes: Bytes::new(), size: 0, independent: true };
        let open = SegmentParts { msn: 13, epoch: 7, parts: vec![part.clone(), part] };
        s.low_latency = Arc::new(LowLatency { renditions: vec![[open].into()], part_target: 0.5 });
        assert_eq!(s.live_edge(), Some(end + Duration::from_secs(1)));
        assert_eq!(snapshot(Vec::new()).live_edge(), None);
    }

    #[test]
    fn dvr_ranges() {
        let s = snapshot((10..20).map(|m| slot(m, 2.0, 1)).collect());
        let at = |msn: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + msn * 2);
        // From slot 12 to the live edge: open.
        assert_eq!(s.window(0, WindowRequest { start: Some(at(12)), end: None }), (2..10, false));
        // 12..15: closed.
        assert_eq!(s.window(0, WindowRequest { start: Some(at(12)), end: Some(at(15)) }), (2..5, true));
        // Before the DVR window: clamped.
        assert_eq!(s.window(0, WindowRequest { start: Some(at(0)), end: None }).0, 0..10);
        // Ending in the future: open.
        assert!(!s.window(0, WindowRequest { start: Some(at(12)), end: Some(at(40)) }).1);
    }
}
