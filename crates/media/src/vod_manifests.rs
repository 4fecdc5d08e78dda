//! PURE: VOD's adapter into the manifest model: a [`Presentation`] as a multivariant playlist, media
//! playlists (fMP4, numbered from 1) and a static MPD addressing the same segment URLs, so a CDN
//! caches one copy of each segment for both; and the MPEG-TS variants below `ts/` (the same
//! segment plan, audio muxed into the video).

use std::borrow::Cow;

use crate::cenc::Signalling;
use crate::codec::MediaParams;
use crate::manifest::{
    self, IFrameStream, MediaPlaylist, MediaSegment, Mpd, MpdTiming, Multivariant, ObjectUri, Period, PeriodId,
    PlaylistType, Representation, SegmentEncryption, SegmentTemplate, Stream, SubtitleTrack,
};
use crate::mp4::TrackKind;
use crate::presentation::{Presentation, Rendition, RenditionId};
use crate::subtitles::SubtitleRendition;
use crate::url::{Container, FIRST_SEGMENT_NUMBER, TemplateUrls, VodPath};

/// A video rendition's keyframes as a trick-play stream (HLS I-frame playlist, DASH trick mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrickPlay {
    pub id: RenditionId,
    /// The largest keyframe over the time it shows, in bits per second.
    pub peak_bps: u64,
    /// Frames per keyframe: how much faster than real time the keyframes alone may play.
    pub max_playout_rate: u32,
}

/// What the manifests say about a rendition.
pub fn stream(r: &Rendition) -> Stream<'_> {
    let (channels, sample_rate) = match r.params {
        MediaParams::Audio { channels, sample_rate } => (Some(channels), Some(sample_rate)),
        MediaParams::Video { .. } => (None, None),
    };
    Stream {
        id: r.id,
        kind: r.id.kind,
        codecs: Some(&r.codecs),
        peak_bps: r.peak_bps,
        average_bps: r.average_bps,
        resolution: r.resolution,
        frame_rate: r.frame_rate,
        channels,
        sample_rate,
        language: r.language.as_deref(),
        name: &r.name,
    }
}

/// The fMP4 multivariant playlist, with an I-frame playlist for each video rendition in `trick`.
pub fn multivariant<'a>(p: &'a Presentation, trick: &[TrickPlay]) -> Multivariant<'a> {
    let i_frames = trick
        .iter()
        .filter_map(|t| {
            let stream = stream(p.rendition(t.id)?);
            Some(IFrameStream { stream, uri: ObjectUri::Vod(VodPath::IFrames(t.id)), peak_bps: t.peak_bps })
        })
        .collect();
    Multivariant {
        video: p.video.iter().map(stream).collect(),
        audio: p.audio.iter().map(stream).collect(),
        muxed_audio: false,
        alternate_audio: Vec::new(),
        query: "",
        i_frames,
        subtitles: subtitle_tracks(p, |i| VodPath::SubtitlePlaylist(i, Container::Fmp4)),
        session_key: None,
    }
}

/// The subtitle tracks, each named by the object `uri` gives.
fn subtitle_tracks(p: &Presentation, uri: impl Fn(u16) -> VodPath) -> Vec<SubtitleTrack<'_>> {
    let bandwidth = |s: &SubtitleRendition| {
        let bytes: usize = s.subtitles.cues.iter().map(|c| c.text.len() + c.settings.len() + 32).sum();
        (bytes as f64 * 8.0 / p.duration_secs.max(1.0)).ceil() as u64
    };
    p.subtitles
        .iter()
        .map(|s| SubtitleTrack {
            index: s.index,
            uri: ObjectUri::Vod(uri(s.index)),
            language: s.language.as_deref(),
            name: &s.name,
            bandwidth: bandwidth(s),
        })
        .collect()
}

/// The MPEG-TS multivariant playlist: the video variants with the first audio rendition muxed
/// into each (or the audio renditions, for an audio-only asset), and the video variants' I-frame
/// playlists, whose peak bit rates (by variant) the caller counted from the segments.
pub fn ts_multivariant<'a>(p: &'a Presentation, i_frame_peaks: &[(RenditionId, u64)]) -> Multivariant<'a> {
    let variants = ts_variants(p).into_iter().map(stream);
    let subtitles = subtitle_tracks(p, |i| VodPath::SubtitlePlaylist(i, Container::Ts));
    if p.video.is_empty() {
        let audio = variants.collect();
        return Multivariant {
            video: Vec::new(),
            audio,
            muxed_audio: true,
            alternate_audio: Vec::new(),
            query: "",
            i_frames: Vec::new(),
            subtitles,
            session_key: None,
        };
    }
    let i_frames = ts_variants(p)
        .into_iter()
        .filter_map(|r| {
            let peak = i_frame_peaks.iter().find(|(id, _)| *id == r.id)?.1;
            Some(IFrameStream { stream: stream(r), uri: ObjectUri::Vod(VodPath::TsIFrames(r.id)), peak_bps: peak })
        })
        .collect();
    let audio = ts_audio(p).map(stream).into_iter().collect();
    let alternate_audio = ts_alternate_audio(p).into_iter().map(stream).collect();
    Multivariant {
        video: variants.collect(),
        audio,
        muxed_audio: true,
        alternate_audio,
        query: "",
        i_frames,
        subtitles,
        session_key: None,
    }
}

/// Whether MPEG-TS carries a rendition's codec here: H.264, HEVC, AAC.
fn in_ts(r: &Rendition) -> bool {
    ["avc1", "avc3", "hvc1", "hev1", "mp4a.40."].iter().any(|c| r.codecs.starts_with(c))
}

/// The audio muxed into every MPEG-TS video variant: the first AAC rendition.
pub fn ts_audio(p: &Presentation) -> Option<&Rendition> {
    p.audio.iter().find(|r| in_ts(r))
}

/// The AAC renditions besides the muxed one, of an asset with video: each an audio-only MPEG-TS
/// playlist, offered to the TS variants as alternate audio (another language, a description track).
pub fn ts_alternate_audio(p: &Presentation) -> Vec<&Rendition> {
    let muxed = ts_audio(p).map(|r| r.id);
    match p.video.is_empty() {
        true => Vec::new(),
        false => p.audio.iter().filter(|r| in_ts(r) && Some(r.id) != muxed).collect(),
    }
}

/// Every rendition with an MPEG-TS playlist of its own: the variants and the alternate audio.
pub fn ts_playlists(p: &Presentation) -> Vec<&Rendition> {
    let mut all = ts_variants(p);
    all.extend(ts_alternate_audio(p));
    all
}

/// The renditions with MPEG-TS variants: the video ones TS carries, or the AAC ones of an asset
/// without video.
pub fn ts_variants(p: &Presentation) -> Vec<&Rendition> {
    let list = if p.video.is_empty() { &p.audio } else { &p.video };
    list.iter().filter(|r| in_ts(r)).collect()
}

/// A media playlist: fMP4 segments after the init map, or (`ts`) MPEG-TS segments, which carry
/// their own tables and need no map (so the playlist is version 3).
pub fn media_playlist(p: &Presentation, r: &Rendition) -> MediaPlaylist {
    playlist_of(p, r, false)
}

pub fn ts_media_playlist(p: &Presentation, r: &Rendition) -> MediaPlaylist {
    playlist_of(p, r, true)
}

/// A subtitle track's playlist: one WebVTT segment per segment of the video's plan, timed for the
/// media segments of `container`.
pub fn subtitle_playlist(p: &Presentation, index: u16, container: Container) -> MediaPlaylist {
    let bounds = p.subtitle_bounds_ms();
    let segments = bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let uri = VodPath::SubtitleSegment(index, container, (i + FIRST_SEGMENT_NUMBER) as u32);
            vod_segment((w[1] - w[0]) as f64 / 1000.0, uri, None)
        })
        .collect();
    vod_playlist(p.target_duration, segments)
}

/// Subtitle segment `n` (numbered from [`FIRST_SEGMENT_NUMBER`]) as WebVTT. Cue time 0 is
/// presentation time 0: media time 0 for fMP4 (the edit lists are in the init segments), and the
/// muxer's 10 s offset for MPEG-TS.
pub fn render_subtitle_segment(p: &Presentation, index: u16, container: Container, n: u32) -> Option<String> {
    let subtitles = &p.subtitle(index)?.subtitles;
    let bounds = p.subtitle_bounds_ms();
    let i = (n as usize).checked_sub(FIRST_SEGMENT_NUMBER)?;
    let (start, end) = (*bounds.get(i)?, *bounds.get(i + 1)?);
    // The last segment takes every cue still to come.
    let end = if i + 2 == bounds.len() { u64::MAX } else { end };
    let zero = match container {
        Container::Fmp4 | Container::WebVtt => 0,
        Container::Ts => crate::ts::segment::TIME_OFFSET as u64,
    };
    let mut out = String::with_capacity(64 + 64 * subtitles.cues.len().min(64));
    subtitles.write_segment(&mut out, start, end, zero);
    Some(out)
}

fn playlist_of(p: &Presentation, r: &Rendition, ts: bool) -> MediaPlaylist {
    let number = |i: usize| (i + FIRST_SEGMENT_NUMBER) as u32;
    let segments = (0..r.segment_count())
        .map(|i| {
            let uri = if ts { VodPath::TsSegment(r.id, number(i)) } else { VodPath::Segment(r.id, number(i)) };
            vod_segment(r.segment_secs(i), uri, (i == 0 && !ts).then_some(VodPath::Init(r.id)))
        })
        .collect();
    vod_playlist(p.target_duration, segments)
}

/// A segment of a VOD playlist, after `map` when it has one.
fn vod_segment(duration: f64, uri: VodPath, map: Option<VodPath>) -> MediaSegment {
    MediaSegment {
        duration,
        uri: ObjectUri::Vod(uri),
        map: map.map(ObjectUri::Vod),
        discontinuity: false,
        program_date_time: None,
        gap: false,
        parts: Vec::new(),
        key: None,
    }
}

/// A VOD media playlist of `segments`.
fn vod_playlist(target_duration: u32, segments: Vec<MediaSegment>) -> MediaPlaylist {
    MediaPlaylist {
        target_duration,
        media_sequence: FIRST_SEGMENT_NUMBER as u64,
        discontinuity_sequence: None,
        playlist_type: Some(PlaylistType::Vod),
        server_control: None,
        part_target: None,
        skipped_segments: None,
        segments,
        open_parts: Vec::new(),
        open_key: None,
        preload_hint: None,
        rendition_reports: Vec::new(),
        ended: true,
        protection: None,
    }
}

/// The static MPD; each video adaptation set with the renditions in `trick` gets a trick-mode set
/// of their keyframes.
pub fn mpd<'a>(p: &'a Presentation, trick: &[TrickPlay]) -> Mpd<'a> {
    let representation = |r| Representation {
        stream: stream(r),
        template: SegmentTemplate {
            timescale: r.timescale,
            presentation_time_offset: None,
            urls: TemplateUrls::Vod,
            start_number: FIRST_SEGMENT_NUMBER as u64,
            times: Cow::Borrowed(&r.times),
            availability_time_offset: None,
        },
        producer_reference: None,
        trick_rate: None,
    };
    let mut sets = manifest::adaptation_sets(TrackKind::Video, p.video.iter().map(representation), 0);
    let mut trick_sets = Vec::new();
    for set in &sets {
        let keyframes: Vec<Representation<'a>> = set
            .representations
            .iter()
            .filter_map(|main| {
                let t = trick.iter().find(|t| t.id == main.stream.id)?;
                let stream =
                    Stream { peak_bps: t.peak_bps, average_bps: t.peak_bps, frame_rate: None, ..main.stream.clone() };
                let template = SegmentTemplate { urls: TemplateUrls::VodIFrames(t.id), ..main.template.clone() };
                Some(Representation {
                    stream,
                    template,
                    producer_reference: None,
                    trick_rate: Some(t.max_playout_rate),
                })
            })
            .collect();
        if !keyframes.is_empty() {
            let representations = keyframes;
            trick_sets.push(manifest::AdaptationSet { trick_mode_for: Some(set.id), representations, ..set.clone() });
        }
    }
    sets.extend(manifest::adaptation_sets(TrackKind::Audio, p.audio.iter().map(representation), sets.len() as u32));
    // After the sets players choose from, numbered on.
    for set in trick_sets {
        sets.push(manifest::AdaptationSet { id: sets.len() as u32, ..set });
    }
    Mpd {
        timing: MpdTiming::Static { duration: p.duration_secs },
        min_buffer_time: p.max_segment_secs.ceil(),
        max_segment_duration: p.max_segment_secs,
        periods: vec![Period {
            id: PeriodId::Number(0),
            start: 0.0,
            adaptation_sets: sets,
            subtitles: subtitle_tracks(p, VodPath::SubtitleFile),
        }],
        utc_timing: None,
        service_description: None,
        protection: None,
        key_rotation: false,
    }
}

/// The multivariant playlist, rendered.
/// With `session_key`, the master names the key its media playlists use (`EXT-X-SESSION-KEY`).
pub fn render_multivariant(p: &Presentation, trick: &[TrickPlay], session_key: Option<SegmentEncryption>) -> String {
    let mut out = String::with_capacity(256 + 256 * (p.video.len() + p.audio.len()));
    manifest::hls::write_multivariant(&mut out, &Multivariant { session_key, ..multivariant(p, trick) });
    out
}

/// A media playlist, rendered; with `protection`, its segments are `cenc`-encrypted as it says.
pub fn render_media_playlist(p: &Presentation, r: &Rendition, protection: Option<Signalling>) -> String {
    let mut out = String::with_capacity(256 + 32 * r.segment_count());
    let protection = protection.map(manifest::SegmentEncryption::Cenc);
    let playlist = MediaPlaylist { protection, ..media_playlist(p, r) };
    manifest::hls::write_media_playlist(&mut out, &playlist);
    out
}

/// The MPEG-TS multivariant playlist, rendered.
pub fn render_ts_multivariant(
    p: &Presentation,
    i_frame_peaks: &[(RenditionId, u64)],
    session_key: Option<SegmentEncryption>,
) -> String {
    let mut out = String::with_capacity(256 + 384 * p.video.len().max(p.audio.len()));
    manifest::hls::write_multivariant(&mut out, &Multivariant { session_key, ..ts_multivariant(p, i_frame_peaks) });
    out
}

/// An MPEG-TS media playlist, rendered; with `protection`, its segments are encrypted as it says.
pub fn render_ts_media_playlist(p: &Presentation, r: &Rendition, protection: Option<SegmentEncryption>) -> String {
    let mut out = String::with_capacity(256 + 32 * r.segment_count());
    manifest::hls::write_media_playlist(&mut out, &MediaPlaylist { protection, ..ts_media_playlist(p, r) });
    out
}

/// A subtitle playlist, rendered.
pub fn render_subtitle_playlist(p: &Presentation, index: u16, container: Container) -> String {
    let mut out = String::with_capacity(256 + 32 * p.subtitle_segment_count());
    manifest::hls::write_media_playlist(&mut out, &subtitle_playlist(p, index, container));
    out
}

/// The MPD, rendered.
/// The MPD, rendered; with `protection`, its audio and video are `cenc`-encrypted as it says.
pub fn render_mpd(p: &Presentation, trick: &[TrickPlay], protection: Option<Signalling>) -> String {
    let mut out = String::with_capacity(2048);
    manifest::mpd::write_mpd(&mut out, &Mpd { protection, ..mpd(p, trick) });
    out
}
