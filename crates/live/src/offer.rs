//! PURE: what a live channel offers players: the renditions with media that its master playlist and
//! MPD list, and each as the manifest model's stream. Shared by the live manifests, LL-HLS and trick
//! play (so none of them imports another's helpers).

use super::model::{ChannelSnapshot, LiveRendition};
use estuary_media::manifest::Stream;
use estuary_media::mp4::TrackKind;

/// The renditions a master playlist or MPD offers: every video rendition with media, and audio from
/// audio-only variants (or, when there are none, the first muxed audio track).
pub(super) fn offered(snap: &ChannelSnapshot) -> (Vec<usize>, Vec<usize>) {
    let has_media = |r: usize| snap.edge_of(r).is_some();
    let of_kind =
        |kind: TrackKind| (0..snap.renditions.len()).filter(move |&r| snap.renditions[r].kind == kind && has_media(r));
    let video: Vec<usize> = of_kind(TrackKind::Video).collect();
    let mut audio: Vec<usize> = of_kind(TrackKind::Audio).filter(|&r| !snap.renditions[r].muxed).collect();
    if audio.is_empty() {
        audio.extend(of_kind(TrackKind::Audio).take(1));
    }
    (video, audio)
}

/// A rendition as the manifest model's stream.
pub(super) fn stream(r: &LiveRendition) -> Stream<'_> {
    Stream {
        id: r.id,
        kind: r.kind,
        codecs: r.codecs.as_deref(),
        peak_bps: r.peak_bps,
        average_bps: r.average_bps,
        resolution: r.resolution,
        frame_rate: r.frame_rate,
        channels: r.channels,
        sample_rate: r.sample_rate,
        language: r.language.as_deref(),
        name: &r.name,
    }
}
