//! PURE: LL-DASH in a live MPD. While a channel has parts (the encoder uploads its segments chunk by
//! chunk), each representation announces the segment after its last whole one, marks segments
//! available one part into them (`availabilityTimeOffset`, `availabilityTimeComplete="false"`:
//! the edge streams a segment as its parts arrive), and says where media time stands against the
//! wall clock (`ProducerReferenceTime`); the MPD gives the latency to aim for
//! (`ServiceDescription`). Nothing changes for a channel without parts, or on a pod that follows the
//! channel (it does not hold the parts' bytes).

use super::model::ChannelSnapshot;
use estuary_media::manifest::ServiceDescription;

/// What a low-latency live MPD adds: the same for every representation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LowLatencyDash {
    /// `availabilityTimeOffset`: a segment may be asked for once its first part is made.
    pub availability_time_offset: f64,
    pub service: ServiceDescription,
}

/// The low-latency side of a live MPD of `snap`; `None` while the channel has no parts.
pub(super) fn low_latency(snap: &ChannelSnapshot) -> Option<LowLatencyDash> {
    let ll = &snap.low_latency;
    let part = ll.part_target;
    // A pod following the channel lists parts but does not hold them: it cannot send a segment as it
    // is made, so its MPD stays classic.
    let mut parts = ll.renditions.iter().flatten().flat_map(|segment| &segment.parts);
    if !snap.offers_parts() || parts.next().is_none_or(|p| p.bytes.is_empty()) {
        return None;
    }
    let segment = snap.settings.target_duration.as_secs_f64();
    // A player can hold about four parts behind the encoder: one being made, one in flight and two
    // of buffer (hls.js holds three part targets, PART-HOLD-BACK, and sits near 2.3 s).
    let target = 4.0 * part;
    Some(LowLatencyDash {
        availability_time_offset: (segment - part).max(0.0),
        service: ServiceDescription {
            latency_target: target,
            latency_min: 2.0 * part,
            latency_max: target + 2.0 * segment,
            playback_rate: (0.96, 1.04),
        },
    })
}

/// Announces the segment after the last whole one of rendition `r` at the end of `times` (its
/// template's segment bounds), lasting as long as the one before: the player asks for it once its
/// first part is due and the edge streams it as it is made. Not announced when the rendition has no
/// parts, when its newest segment is not the last slot of the Period (`last_msn`), or when the
/// segment being uploaded already belongs to another epoch (the next MPD has its Period).
pub(super) fn announce_next(snap: &ChannelSnapshot, r: usize, epoch: u64, last_msn: u64, times: &mut Vec<u64>) {
    let Some(segments) = snap.low_latency.renditions.get(r).filter(|s| !s.is_empty()) else { return };
    if snap.edge_of(r) != Some(last_msn) {
        return;
    }
    if segments.back().is_some_and(|s| s.msn == last_msn + 1 && s.epoch != epoch) {
        return;
    }
    let [.., before, last] = times[..] else { return };
    times.push(last + (last - before));
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use super::*;
    use crate::fixtures::{slot, snapshot};
    use crate::model::{LivePart, LowLatency, SegmentParts};

    const EPOCH: u64 = 7;

    fn three_slots() -> ChannelSnapshot {
        snapshot((20..23).map(|msn| slot(msn, 2.0, 1)).collect())
    }

    fn with_parts(snap: &mut ChannelSnapshot, epoch: u64, msn: u64) {
        let part = LivePart { duration: 0.5, bytes: bytes::Bytes::from_static(b"part"), size: 4, independent: true };
        let segments = VecDeque::from([SegmentParts { msn, epoch, parts: vec![part] }]);
        snap.low_latency = Arc::new(LowLatency { renditions: vec![segments], part_target: 0.5 });
    }

    #[test]
    fn only_a_channel_with_parts_is_low_latency() {
        let mut snap = three_slots();
        assert_eq!(low_latency(&snap), None);
        with_parts(&mut snap, EPOCH, 23);
        let ll = low_latency(&snap).expect("low latency");
        assert_eq!(ll.availability_time_offset, snap.settings.target_duration.as_secs_f64() - 0.5);
        assert_eq!(ll.service.latency_target, 2.0);
        assert!(
            ll.service.latency_min < ll.service.latency_target && ll.service.latency_target < ll.service.latency_max
        );
    }

    /// `name="…S"` of a rendered MPD, in seconds.
    fn seconds(mpd: &str, name: &str) -> f64 {
        let at = mpd.find(&format!("{name}=\"PT")).unwrap_or_else(|| panic!("no {name}: {mpd}")) + name.len() + 4;
        mpd[at..at + mpd[at..].find('S').unwrap()].parse().unwrap()
    }

    #[test]
    fn the_suggested_delay_of_a_low_latency_mpd_is_its_latency_target() {
        use crate::manifests::render_mpd;
        use crate::model::WindowRequest;
        use crate::tests::{INIT, SEGMENTS, channel, push, t, upload};
        let mut state = channel();
        upload(&mut state, "v0/init_0.mp4", INIT, t(1));
        for (e, seg) in SEGMENTS.iter().enumerate() {
            push(&mut state, e as u64, seg, t(4 * e as u64 + 5));
        }
        let mut snap = state.snapshot(t(20));
        let classic = render_mpd(&snap, WindowRequest::default(), "../../time").unwrap();
        let target = snap.settings.target_duration.as_secs_f64();
        assert_eq!(seconds(&classic, "suggestedPresentationDelay"), 3.0 * target, "{classic}");
        let next = snap.edge_of(0).unwrap() + 1;
        with_parts(&mut snap, EPOCH, next);
        let ll = render_mpd(&snap, WindowRequest::default(), "../../time").unwrap();
        let latency = &ll[ll.find("<Latency ").expect("a ServiceDescription")..];
        let at = latency.find("target=\"").unwrap() + 8;
        let target_ms: f64 = latency[at..at + latency[at..].find('"').unwrap()].parse().unwrap();
        // Every player that reads either attribute aims at the same latency.
        assert_eq!(seconds(&ll, "suggestedPresentationDelay") * 1000.0, target_ms, "{ll}");
        assert!(target_ms / 1000.0 < target, "under one segment behind: {ll}");
    }

    #[test]
    fn the_next_segment_is_announced_in_its_epoch_only() {
        let mut snap = three_slots();
        let edge = snap.edge_of(0).expect("edge");
        let mut times = vec![0, 180_000, 360_000];
        announce_next(&snap, 0, EPOCH, edge, &mut times);
        assert_eq!(times.len(), 3, "no parts: nothing announced");
        with_parts(&mut snap, EPOCH, edge + 1);
        announce_next(&snap, 0, EPOCH, edge, &mut times);
        assert_eq!(times, [0, 180_000, 360_000, 540_000]);
        let mut times = vec![0, 180_000, 360_000];
        announce_next(&snap, 0, EPOCH, edge - 1, &mut times);
        assert_eq!(times.len(), 3, "not the Period's last slot");
        with_parts(&mut snap, EPOCH + 1, edge + 1);
        announce_next(&snap, 0, EPOCH, edge, &mut times);
        assert_eq!(times.len(), 3, "the upload belongs to a new epoch");
    }
}
