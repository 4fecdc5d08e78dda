//! PURE: the typed model of what players are given, VOD and live alike: the multivariant playlist,
//! media playlists and the MPD. VOD's presentation and live's snapshot are adapted into it; the one
//! HLS writer ([`hls`]) and the one MPD writer ([`mpd`]) render it.
//!
//! The model holds borrowed text and numbers, never formatted URLs: segment URIs are
//! [`url`](crate::url) values the writer formats straight into its buffer.

pub mod hls;
pub mod mpd;
mod protection;
pub mod rules;
pub(crate) mod text;
mod time;

use std::borrow::Cow;
use std::time::SystemTime;

use crate::mp4::TrackKind;
use crate::presentation::RenditionId;
use crate::url::{LivePath, TemplateUrls, VodPath};

pub use time::{iso_time, push_iso_duration, write_iso_time};

/// What a manifest says about one rendition.
#[derive(Debug, Clone)]
pub struct Stream<'a> {
    pub id: RenditionId,
    pub kind: TrackKind,
    /// RFC 6381 `codecs`, when known.
    pub codecs: Option<&'a str>,
    pub peak_bps: u64,
    pub average_bps: u64,
    pub resolution: Option<(u32, u32)>,
    /// Frames per second as a fraction.
    pub frame_rate: Option<(u32, u32)>,
    pub channels: Option<u16>,
    pub sample_rate: Option<u32>,
    /// BCP 47.
    pub language: Option<&'a str>,
    /// The label players show for an audio rendition.
    pub name: &'a str,
}

/// The multivariant (master) playlist.
#[derive(Debug, Clone)]
pub struct Multivariant<'a> {
    pub video: Vec<Stream<'a>>,
    pub audio: Vec<Stream<'a>>,
    /// The audio travels inside the video variants (MPEG-TS): no audio group, each variant stands alone.
    pub muxed_audio: bool,
    /// With `muxed_audio`: the other audio renditions, each an audio-only playlist of its own, offered
    /// with the muxed one as an `AUDIO` group (a player that ignores groups plays the muxed audio).
    pub alternate_audio: Vec<Stream<'a>>,
    /// Appended to every media playlist URI (`?start=...`), or empty.
    pub query: &'a str,
    /// `EXT-X-I-FRAME-STREAM-INF`: the I-frame playlists of the video variants (trick play).
    pub i_frames: Vec<IFrameStream<'a>>,
    /// `EXT-X-MEDIA:TYPE=SUBTITLES`: the subtitle group every variant names.
    pub subtitles: Vec<SubtitleTrack<'a>>,
    /// `EXT-X-SESSION-KEY`: the key the media playlists name, so a player can prepare it early.
    pub session_key: Option<SegmentEncryption>,
}

/// A subtitle track: an HLS `SUBTITLES` rendition (`uri`: its playlist of WebVTT segments) or an
/// MPD text adaptation set (`uri`: one WebVTT file).
#[derive(Debug, Clone)]
pub struct SubtitleTrack<'a> {
    /// `s0`, `s1`: the MPD's representation id.
    pub index: u16,
    pub uri: ObjectUri,
    /// BCP 47.
    pub language: Option<&'a str>,
    /// The label players show.
    pub name: &'a str,
    /// Bits per second over the whole presentation (the MPD needs one).
    pub bandwidth: u64,
}

/// An I-frame playlist as the multivariant playlist offers it.
#[derive(Debug, Clone)]
pub struct IFrameStream<'a> {
    pub stream: Stream<'a>,
    pub uri: ObjectUri,
    /// Its peak bit rate: the largest I-frame over its duration.
    pub peak_bps: u64,
}

/// A byte range of an object: `EXT-X-BYTERANGE` (`len@offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub uri: ObjectUri,
    pub len: u64,
    pub offset: u64,
}

/// An I-frame playlist (`EXT-X-I-FRAMES-ONLY`): every keyframe as a byte range of its segment,
/// lasting until the next one, after a map of what the ranges need (MPEG-TS: PAT and PMT, a range
/// of a segment; fMP4: the init segment).
#[derive(Debug, Clone)]
pub struct IFramePlaylist {
    /// The first keyframe's sequence number (keyframes, not segments, are numbered).
    pub media_sequence: u64,
    /// Live: `EXT-X-DISCONTINUITY-SEQUENCE`.
    pub discontinuity_sequence: Option<u64>,
    pub playlist_type: Option<PlaylistType>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
    pub frames: Vec<IFrame>,
    /// The keyframes are encrypted as this says (`EXT-X-KEY` after the first map).
    pub protection: Option<SegmentEncryption>,
    /// Each frame's URI is an object of its own (no `EXT-X-BYTERANGE`); the ranges' lengths are
    /// then what the bit rates are reckoned from.
    pub whole_objects: bool,
}

impl IFramePlaylist {
    /// A VOD I-frame playlist: `(duration, range)` of every keyframe, all after `map`.
    pub fn vod(map: IFrameMap, frames: Vec<(f64, ByteRange)>) -> IFramePlaylist {
        let frames = frames
            .into_iter()
            .enumerate()
            .map(|(i, (duration, range))| IFrame {
                duration,
                range,
                map: (i == 0).then_some(map),
                discontinuity: false,
            })
            .collect();
        IFramePlaylist {
            media_sequence: 0,
            discontinuity_sequence: None,
            playlist_type: Some(PlaylistType::Vod),
            ended: true,
            frames,
            protection: None,
            whole_objects: false,
        }
    }
}

/// One keyframe of an I-frame playlist.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IFrame {
    /// Until the next keyframe, in seconds.
    pub duration: f64,
    pub range: ByteRange,
    /// `EXT-X-MAP` written before it (the first, and wherever the tables change).
    pub map: Option<IFrameMap>,
    pub discontinuity: bool,
}

/// What an I-frame's bytes are played after: an object, or (`range`: `len`, `offset`) part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IFrameMap {
    pub uri: ObjectUri,
    pub range: Option<(u64, u64)>,
}

/// `EXT-X-PLAYLIST-TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    Vod,
    Event,
}

/// `EXT-X-SERVER-CONTROL`: what the server offers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerControl {
    pub can_block_reload: bool,
    /// LL-HLS: how far from the live edge a low-latency player starts, in seconds (at least twice,
    /// and best three times, the part target).
    pub part_hold_back: Option<f64>,
    /// Delta playlists (`_HLS_skip=YES`) are offered to players this many seconds behind the edge
    /// (at least six target durations).
    pub can_skip_until: Option<f64>,
}

/// An LL-HLS partial segment (`EXT-X-PART`): one CMAF chunk of a segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartialSegment {
    pub duration: f64,
    pub uri: ObjectUri,
    /// Starts with a sync sample (`INDEPENDENT=YES`).
    pub independent: bool,
}

/// `EXT-X-RENDITION-REPORT`: where another rendition's live edge stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenditionReport {
    pub uri: ObjectUri,
    pub last_msn: u64,
    pub last_part: Option<u32>,
}

/// Where an object a playlist names lives, relative to the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectUri {
    Vod(VodPath),
    Live(LivePath),
}

/// One segment of a media playlist.
#[derive(Debug, Clone)]
pub struct MediaSegment {
    pub duration: f64,
    pub uri: ObjectUri,
    /// `EXT-X-MAP` written before this segment (the first, and wherever the init segment changes).
    pub map: Option<ObjectUri>,
    pub discontinuity: bool,
    pub program_date_time: Option<SystemTime>,
    /// `EXT-X-GAP`: the segment is missing from this rendition.
    pub gap: bool,
    /// LL-HLS: its parts, listed before it while it is near the live edge.
    pub parts: Vec<PartialSegment>,
    /// `EXT-X-KEY` written before this segment, where the key changes (live key rotation).
    pub key: Option<SegmentEncryption>,
}

/// A media playlist, VOD or live (window, DVR range or recording).
#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    pub target_duration: u32,
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`, for live playlists.
    pub discontinuity_sequence: Option<u64>,
    pub playlist_type: Option<PlaylistType>,
    pub server_control: Option<ServerControl>,
    /// LL-HLS `EXT-X-PART-INF:PART-TARGET`, seconds.
    pub part_target: Option<f64>,
    /// A delta playlist (`EXT-X-SKIP`): this many segments at the front are left out.
    pub skipped_segments: Option<u64>,
    pub segments: Vec<MediaSegment>,
    /// LL-HLS: the parts of the segment being received, after the last whole segment.
    pub open_parts: Vec<PartialSegment>,
    /// `EXT-X-KEY` written before the open parts, where their segment starts a key period.
    pub open_key: Option<SegmentEncryption>,
    /// LL-HLS `EXT-X-PRELOAD-HINT`: the next part, which a request may wait for.
    pub preload_hint: Option<ObjectUri>,
    pub rendition_reports: Vec<RenditionReport>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
    /// How the segments are encrypted (`EXT-X-KEY` before the first); `None` in the clear.
    pub protection: Option<SegmentEncryption>,
}

/// How a media playlist's segments are encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEncryption {
    /// Common encryption of fMP4 samples (`METHOD=SAMPLE-AES-CTR` for `cenc`, `SAMPLE-AES` for
    /// `cbcs`) under this KID, announced for each DRM system.
    Cenc(crate::cenc::Signalling),
    /// Whole segments in AES-128 CBC (`METHOD=AES-128`), the key at `uri`, each segment's IV its
    /// media sequence number.
    Aes128 { uri: String },
    /// MPEG-TS in Apple's SAMPLE-AES (`METHOD=SAMPLE-AES`) with one IV for every segment (players
    /// read ahead into the next segment before decrypting a segment's last picture, so an IV per
    /// segment would be taken from the wrong one): the key at `uri` (the edge's), and FairPlay's
    /// `skd://` URI; at least one of them.
    SampleAes { uri: Option<String>, fairplay_uri: Option<String>, iv: [u8; 16] },
}

impl SegmentEncryption {
    /// Whether its lines name a `KEYFORMAT` (which HLS version 5 brings).
    pub fn names_keyformat(&self) -> bool {
        match self {
            SegmentEncryption::Cenc(_) => true,
            SegmentEncryption::Aes128 { .. } => false,
            SegmentEncryption::SampleAes { fairplay_uri, .. } => fairplay_uri.is_some(),
        }
    }
}

/// The MPD.
#[derive(Debug, Clone)]
pub struct Mpd<'a> {
    pub timing: MpdTiming,
    pub min_buffer_time: f64,
    pub max_segment_duration: f64,
    pub periods: Vec<Period<'a>>,
    /// The `UTCTiming` (http-iso) URL of a live MPD.
    pub utc_timing: Option<&'a str>,
    /// LL-DASH: the latency players aim for.
    pub service_description: Option<ServiceDescription>,
    /// Common encryption (`cenc`) of the audio and video: the default KID every init's `tenc`
    /// carries, and the DRM systems that can license it; `None` in the clear.
    pub protection: Option<crate::cenc::Signalling>,
    /// Live key rotation: each fragment names its period's key, so the MPD names none (no
    /// `cenc:default_KID`, which players would take for the one key, and no common `pssh`).
    pub key_rotation: bool,
}

/// LL-DASH `ServiceDescription`: the latency a low-latency player aims for, measured against the
/// representations' `ProducerReferenceTime` (id 0), and the playback rates it may use to hold it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceDescription {
    /// `Latency@target`, `@min` and `@max`, seconds.
    pub latency_target: f64,
    pub latency_min: f64,
    pub latency_max: f64,
    /// `PlaybackRate@min` and `@max`.
    pub playback_rate: (f64, f64),
}

/// LL-DASH `ProducerReferenceTime`: the wall-clock time at which media time `presentation_time` (in
/// the template's timescale) was produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProducerReference {
    pub presentation_time: u64,
    pub wall_clock: SystemTime,
}

/// `type="static"` or `type="dynamic"` with the attributes each needs.
#[derive(Debug, Clone, Copy)]
pub enum MpdTiming {
    Static {
        duration: f64,
    },
    Dynamic {
        availability_start: SystemTime,
        published: SystemTime,
        minimum_update_period: f64,
        time_shift_buffer_depth: f64,
        suggested_presentation_delay: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Period<'a> {
    pub id: PeriodId,
    /// Seconds from the presentation's start (static) or `availabilityStartTime` (dynamic).
    pub start: f64,
    pub adaptation_sets: Vec<AdaptationSet<'a>>,
    /// Text adaptation sets, after the others.
    pub subtitles: Vec<SubtitleTrack<'a>>,
}

#[derive(Debug, Clone)]
pub struct AdaptationSet<'a> {
    pub id: u32,
    pub kind: TrackKind,
    /// A trick-mode set: the id of the adaptation set whose keyframes it carries.
    pub trick_mode_for: Option<u32>,
    pub language: Option<&'a str>,
    pub representations: Vec<Representation<'a>>,
}

#[derive(Debug, Clone)]
pub struct Representation<'a> {
    pub stream: Stream<'a>,
    pub template: SegmentTemplate<'a>,
    /// LL-DASH: where media time stands against the wall clock.
    pub producer_reference: Option<ProducerReference>,
    /// A trick-mode representation (keyframes only): how many times faster than real time it may
    /// play (`maxPlayoutRate`); its id is the rendition's with `-iframes`.
    pub trick_rate: Option<u32>,
}

/// A Period's `id`: stable while the Period is in the MPD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodId {
    /// `0`, `1`, ...
    Number(u64),
    /// `{epoch}-{msn}`: the live slot that began the Period.
    Slot { epoch: u64, msn: u64 },
}

/// `SegmentTemplate` with a `SegmentTimeline`.
#[derive(Debug, Clone)]
pub struct SegmentTemplate<'a> {
    pub timescale: u32,
    pub presentation_time_offset: Option<u64>,
    pub urls: TemplateUrls,
    pub start_number: u64,
    /// Decode time at each segment bound: one more entry than segments.
    pub times: Cow<'a, [u64]>,
    /// LL-DASH `availabilityTimeOffset`, seconds: a segment may be requested this long before it
    /// is whole (`availabilityTimeComplete="false"`: it then arrives as it is made).
    pub availability_time_offset: Option<f64>,
}

/// Groups representations into adaptation sets, numbered from `first_id`: one set per codec family
/// (and, for audio, language), so that players never switch codec or language within a set.
pub fn adaptation_sets<'a>(
    kind: TrackKind,
    representations: impl IntoIterator<Item = Representation<'a>>,
    first_id: u32,
) -> Vec<AdaptationSet<'a>> {
    let language = |s: &Stream<'a>| if kind == TrackKind::Audio { s.language } else { None };
    let family = |s: &Stream<'a>| (s.codecs.and_then(|c| c.split('.').next()).unwrap_or(""), language(s));
    let mut sets: Vec<AdaptationSet<'a>> = Vec::with_capacity(2);
    for r in representations {
        match sets.iter_mut().find(|set| family(&set.representations[0].stream) == family(&r.stream)) {
            Some(set) => set.representations.push(r),
            None => sets.push(AdaptationSet {
                id: first_id + sets.len() as u32,
                kind,
                trick_mode_for: None,
                language: language(&r.stream),
                representations: vec![r],
            }),
        }
    }
    sets
}
