//! PURE: what a committed upload becomes: single-track parts re-muxed from a pushed segment,
//! rendition descriptions from init tracks, and bit rates from recent parts.

use bytes::Bytes;

use super::RenditionEntry;
use crate::model::{LiveRendition, Part};
use estuary_media::codec::MediaParams;
use estuary_media::fmp4::parse::{InitInfo, InitTrackInfo, TrackRun};
use estuary_media::fmp4::{FragmentSamples, SampleFlags, write_segment};
use estuary_media::mp4::TrackKind;
use estuary_media::presentation::{RenditionId, bcp47};

/// TS timing is expressed in the MPEG 90 kHz clock.
pub(super) const TS_TIMESCALE: u32 = 90_000;
/// The timescale of a subtitle rendition's parts: milliseconds.
pub(super) const TEXT_TIMESCALE: u32 = 1000;

pub(super) fn timescale_of(r: usize, renditions: &[RenditionEntry]) -> u32 {
    renditions.get(r).map_or(TS_TIMESCALE, |e| e.info.timescale.max(1))
}

pub(super) fn update_bit_rates(entry: &mut RenditionEntry, window: f64) {
    let mut total = 0.0;
    let mut keep = 0;
    for (_, secs) in entry.recent.iter().rev() {
        total += secs;
        keep += 1;
        if total >= window {
            break;
        }
    }
    while entry.recent.len() > keep.max(3) {
        entry.recent.pop_front();
    }
    let rate = |(bytes, secs): &(u64, f64)| if *secs > 0.0 { *bytes as f64 * 8.0 / secs } else { 0.0 };
    let peak = entry.recent.iter().map(rate).fold(0.0, f64::max);
    let (bytes, secs) = entry.recent.iter().fold((0u64, 0.0), |(b, s), (bb, ss)| (b + bb, s + ss));
    entry.info.peak_bps = peak.ceil() as u64;
    entry.info.average_bps = if secs > 0.0 { (bytes as f64 * 8.0 / secs).ceil() as u64 } else { 0 };
}

/// Re-muxes each track run of a pushed segment into a single-track segment, its decode times moved
/// forward by `shift` seconds (rounded up to the track's timescale, so a track never goes back).
pub(super) fn demux(
    runs: &[TrackRun],
    init: &InitInfo,
    tracks: &[Option<usize>],
    msn: u64,
    shift: f64,
) -> Vec<(usize, Part)> {
    let mut parts = Vec::new();
    for run in runs {
        let Some(t) = init.tracks.iter().position(|t| t.track_id == run.track_id) else { continue };
        let Some(Some(r)) = tracks.get(t).copied() else { continue };
        if run.samples.is_empty() {
            continue;
        }
        let durations: Vec<u32> = run.samples.iter().map(|s| s.duration).collect();
        let sizes: Vec<u32> = run.samples.iter().map(|s| s.size).collect();
        let cts: Vec<i32> = run.samples.iter().map(|s| s.cts).collect();
        let sync: Vec<bool> = run.samples.iter().map(|s| s.is_sync()).collect();
        let flags = if init.tracks[t].kind == TrackKind::Audio && sync.iter().all(|s| *s) {
            SampleFlags::AllSync
        } else {
            SampleFlags::PerSample(&sync)
        };
        let payload: Vec<&[u8]> = run.data.iter().map(Bytes::as_ref).collect();
        let decode_time = run.base_decode_time + (shift * f64::from(init.tracks[t].timescale)).ceil() as u64;
        let bytes = write_segment(
            &FragmentSamples {
                sequence: (msn & 0xffff_ffff) as u32,
                base_decode_time: decode_time,
                durations: &durations,
                sizes: &sizes,
                cts: run.has_cts.then_some(cts.as_slice()),
                flags,
                protection: None,
            },
            &payload,
        );
        parts.push((
            r,
            Part {
                decode_time,
                duration: run.duration(),
                size: bytes.len() as u64,
                bytes: Some(bytes),
                stored: false,
                at_owner: false,
                keyframes: None,
            },
        ));
    }
    parts
}

/// A rendition's description from an init track.
pub(super) fn describe(t: &InitTrackInfo, variant_has_video: bool) -> LiveRendition {
    let (channels, sample_rate) = match t.codec.params {
        MediaParams::Audio { channels, sample_rate } => (Some(channels), Some(sample_rate)),
        MediaParams::Video { .. } => (None, None),
    };
    let resolution = t.display.or(match t.codec.params {
        MediaParams::Video { width, height } => Some((u32::from(width), u32::from(height))),
        MediaParams::Audio { .. } => None,
    });
    let language = bcp47(&t.language);
    LiveRendition {
        id: RenditionId { kind: t.kind, index: 0 },
        kind: t.kind,
        codecs: Some(t.codec.codecs.clone()),
        timescale: t.timescale,
        resolution,
        frame_rate: None,
        channels,
        sample_rate,
        name: match (t.kind, &language, resolution) {
            (TrackKind::Audio, Some(language), _) => language.clone(),
            (TrackKind::Audio, None, _) => "Audio".into(),
            (TrackKind::Video, _, Some((_, height))) => format!("{height}p"),
            (TrackKind::Video, _, None) => "Video".into(),
            (TrackKind::Text, Some(language), _) => language.clone(),
            (TrackKind::Text, None, _) => "Subtitles".into(),
        },
        language,
        muxed: t.kind == TrackKind::Audio && variant_has_video,
        peak_bps: 0,
        average_bps: 0,
    }
}

/// A variant kept whole: an MPEG-TS one (one muxed rendition, codecs read from its first segment),
/// or a WebVTT one (a subtitle rendition).
pub(super) fn whole_segment_rendition(id: RenditionId, kind: TrackKind) -> LiveRendition {
    LiveRendition {
        id,
        kind,
        codecs: None,
        timescale: if kind == TrackKind::Text { TEXT_TIMESCALE } else { TS_TIMESCALE },
        resolution: None,
        frame_rate: None,
        channels: None,
        sample_rate: None,
        language: None,
        name: if kind == TrackKind::Text { "Subtitles".into() } else { id.to_string() },
        muxed: false,
        peak_bps: 0,
        average_bps: 0,
    }
}
