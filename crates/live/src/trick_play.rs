//! PURE: trick play for live MPEG-TS channels: each video rendition's keyframes in the window (found
//! in the pushed segments when they were committed) as an I-frame playlist of byte ranges, after
//! each segment session's PAT and PMT, and the master's `EXT-X-I-FRAME-STREAM-INF` for it. Segments
//! whose keyframes were not found (no PAT and PMT first, no random-access flags) are left out.

use super::model::{ChannelSnapshot, Keyframes, Slot, WindowRequest};
use super::offer::stream;
use estuary_media::manifest::{ByteRange, IFrame, IFrameMap, IFramePlaylist, IFrameStream, ObjectUri, PlaylistType};
use estuary_media::mp4::TrackKind;
use estuary_media::url::{Container, LivePath};

/// 90 kHz PTS wrap (33 bits).
const PTS_WRAP: u64 = 1 << 33;

/// The I-frame playlist of rendition `r` over `req`'s window; `None` when it has no keyframes there.
pub(super) fn i_frame_playlist(snap: &ChannelSnapshot, r: usize, req: WindowRequest) -> Option<IFramePlaylist> {
    if snap.container_of(r)? != Container::Ts || snap.renditions[r].kind != TrackKind::Video {
        return None;
    }
    let (range, closed) = snap.window(r, req);
    let with_keyframes: Vec<(usize, &Slot, &Keyframes)> = range
        .clone()
        .filter_map(|i| {
            let slot = &snap.slots[i];
            let keyframes = slot.part(r)?.keyframes.as_deref().filter(|k| !k.ranges.is_empty())?;
            Some((i, &**slot, keyframes))
        })
        .collect();
    let &(first_index, _, first) = with_keyframes.first()?;
    let id = snap.renditions[r].id;
    let mut frames = Vec::new();
    let mut epoch = None;
    for (n, &(_, slot, keyframes)) in with_keyframes.iter().enumerate() {
        let uri = ObjectUri::Live(LivePath::Segment(id, slot.epoch, slot.msn, Container::Ts));
        let segment_secs = slot.part(r).map_or(slot.duration, |p| p.duration as f64 / 90_000.0);
        let next_pts =
            with_keyframes.get(n + 1).filter(|(_, s, _)| s.epoch == slot.epoch).map(|(_, _, k)| k.ranges[0].2);
        let segment_start = keyframes.ranges[0].2;
        for (k, &(offset, len, pts)) in keyframes.ranges.iter().enumerate() {
            let following = keyframes.ranges.get(k + 1).map(|f| f.2).or(next_pts);
            let duration = match following {
                Some(next) if next != pts => (next.wrapping_sub(pts) % PTS_WRAP) as f64 / 90_000.0,
                // The last keyframe shown: until its segment ends.
                _ => segment_secs - ((pts.wrapping_sub(segment_start) % PTS_WRAP) as f64 / 90_000.0),
            };
            let new_epoch = epoch != Some(slot.epoch);
            epoch = Some(slot.epoch);
            frames.push(IFrame {
                duration: duration.clamp(0.001, 3600.0),
                range: ByteRange { uri, len: u64::from(len), offset: u64::from(offset) },
                // Each session's segments carry their own tables: a map from its first one.
                map: new_epoch.then_some(IFrameMap { uri, range: Some((u64::from(keyframes.tables), 0)) }),
                discontinuity: new_epoch && n > 0,
            });
        }
    }
    let dvr_range = req.start.is_some() || req.end.is_some();
    Some(IFramePlaylist {
        media_sequence: first.first,
        discontinuity_sequence: Some(snap.discontinuity_sequence(first_index)),
        playlist_type: (dvr_range && closed).then_some(PlaylistType::Vod),
        ended: closed,
        frames,
        protection: None,
        whole_objects: false,
    })
}

/// The master's `EXT-X-I-FRAME-STREAM-INF`: every MPEG-TS video rendition with keyframes in its
/// live window, its peak the largest keyframe over the time it shows, `CODECS` the video's alone.
pub(super) fn i_frame_streams(snap: &ChannelSnapshot) -> Vec<IFrameStream<'_>> {
    let (video, _) = super::offer::offered(snap);
    video
        .into_iter()
        .filter_map(|r| {
            let playlist = i_frame_playlist(snap, r, WindowRequest::default())?;
            let peak = playlist.frames.iter().map(|f| f.range.len as f64 * 8.0 / f.duration).fold(0.0, f64::max);
            let rendition = &snap.renditions[r];
            let mut stream = stream(rendition);
            stream.codecs = rendition.codecs.as_deref().and_then(|c| c.split(',').next());
            let uri = ObjectUri::Live(LivePath::IFrames(rendition.id));
            Some(IFrameStream { stream, uri, peak_bps: peak.ceil() as u64 })
        })
        .collect()
}
