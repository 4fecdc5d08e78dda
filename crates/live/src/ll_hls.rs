//! PURE: LL-HLS in a live media playlist: the parts of the newest whole segments and of the one being
//! uploaded, the preload hint for the next part, reports of the other renditions' edges,
//! `EXT-X-PART-INF` and `PART-HOLD-BACK`. Nothing changes for a channel that offers no parts
//! ([`ChannelSnapshot::offers_parts`]).

use super::model::{ChannelSnapshot, SegmentParts};
use super::offer::offered;
use estuary_media::manifest::{MediaPlaylist, ObjectUri, PartialSegment, RenditionReport};
use estuary_media::url::LivePath;

/// Adds the parts of rendition `r` to its live window `playlist`.
pub(super) fn add_parts(snap: &ChannelSnapshot, r: usize, playlist: &mut MediaPlaylist) {
    let ll = &snap.low_latency;
    if !snap.offers_parts() {
        return;
    }
    let Some(recent) = ll.renditions.get(r).filter(|segments| !segments.is_empty()) else { return };
    let Some(edge) = snap.edge_of(r) else { return };
    let id = snap.renditions[r].id;
    let partials = |s: &SegmentParts| -> Vec<PartialSegment> {
        let uri = |i: usize| ObjectUri::Live(LivePath::Part(id, s.epoch, s.msn, i as u32));
        s.parts
            .iter()
            .enumerate()
            .map(|(i, p)| PartialSegment { duration: p.duration, uri: uri(i), independent: p.independent })
            .collect()
    };
    let first = playlist.media_sequence + playlist.skipped_segments.unwrap_or(0);
    for (i, segment) in playlist.segments.iter_mut().enumerate() {
        let msn = first + i as u64;
        let Some(parts) = recent.iter().find(|s| s.msn == msn) else { continue };
        // Parts are listed for a whole segment only when they cover it.
        if snap.slot(msn).is_some_and(|slot| slot.epoch == parts.epoch) && parts.covers(segment.duration) {
            segment.parts = partials(parts);
        }
    }
    // The segment after the edge. The encoder starts uploading the one after it a moment before it
    // lists this one: until then this one's parts stay listed, not the newer upload's.
    let open = recent.iter().find(|s| s.msn == edge + 1);
    // The next part: of the segment being uploaded, or, once its parts add up to a segment (within
    // half a part), the first of the next one.
    let segment = snap.settings.target_duration.as_secs_f64();
    let (hint_epoch, hint_msn, hint_part) = match open {
        Some(open) => {
            playlist.open_parts = partials(open);
            match open.duration() >= segment - ll.part_target / 2.0 {
                true => (open.epoch, open.msn + 1, 0),
                false => (open.epoch, open.msn, open.parts.len()),
            }
        }
        None => (snap.slot(edge).map_or(0, |s| s.epoch), edge + 1, 0),
    };
    playlist.preload_hint = Some(ObjectUri::Live(LivePath::Part(id, hint_epoch, hint_msn, hint_part as u32)));
    playlist.part_target = Some(ll.part_target);
    if let Some(control) = &mut playlist.server_control {
        control.part_hold_back = Some(3.0 * ll.part_target);
    }
    let (video, audio) = offered(snap);
    for other in video.into_iter().chain(audio).filter(|&o| o != r) {
        let Some(edge) = snap.edge_of(other) else { continue };
        let open = ll.renditions.get(other).and_then(|s| s.iter().find(|s| s.msn == edge + 1 && !s.parts.is_empty()));
        let (last_msn, last_part) = match open {
            Some(open) => (open.msn, Some(open.parts.len() as u32 - 1)),
            None => (edge, None),
        };
        let uri = ObjectUri::Live(LivePath::Playlist(snap.renditions[other].id));
        playlist.rendition_reports.push(RenditionReport { uri, last_msn, last_part });
    }
}
