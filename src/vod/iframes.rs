//! fMP4 trick play for VOD: each video segment's keyframes alone (`v0/iframes/{n}.m4s`, one
//! fragment per keyframe lasting until the next), which the HLS I-frame playlist (`v0-iframes.m3u8`)
//! names fragment by fragment as byte ranges and the MPD offers whole as a trick-mode representation.
//!
//! A keyframe's bytes inside the regular segment cannot be decoded alone (they need the segment's
//! one `moof`), so the keyframes get fragments of their own; the layout is computed from the sample
//! tables, without reading samples.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::segment::SampleBytes;
use super::{Asset, VodError};
use crate::budget::ByteBudget;
use crate::packaging::fmp4::STYP_LEN;
use crate::packaging::fmp4::{self, FragmentSamples, SampleFlags};
use crate::packaging::manifest::{ByteRange, IFrameMap, IFramePlaylist, ObjectUri};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::Rendition;
use crate::packaging::reads::ReadPolicy;
use crate::packaging::url::{FIRST_SEGMENT_NUMBER, VodPath};
use crate::packaging::vod_manifests::TrickPlay;
use crate::storage::{Storage, StorageError};

/// One keyframe as its own fragment.
struct Frame {
    sample: usize,
    header: BytesMut,
}

/// The fragments of segment `index`'s keyframes, in order: the first keeps the `styp` that opens a
/// segment, the others start at their `moof`.
fn frames(asset: &Asset, r: &Rendition, index: usize) -> Option<Vec<Frame>> {
    let track = asset.track(r).1;
    let s = &track.samples;
    let range = r.segments.samples(index)?;
    let keys: Vec<usize> = range.clone().filter(|&i| s.is_sync(i)).collect();
    let end_time = r.times[index + 1];
    let mut frames = Vec::with_capacity(keys.len());
    for (k, &i) in keys.iter().enumerate() {
        let next = keys.get(k + 1).map_or(end_time, |&j| s.dts[j]);
        let duration = u32::try_from(next.saturating_sub(s.dts[i])).unwrap_or(u32::MAX);
        let cts = (!s.cts.is_empty()).then(|| std::slice::from_ref(&s.cts[i]));
        let fragment = FragmentSamples {
            sequence: (index + 1) as u32,
            base_decode_time: s.dts[i],
            durations: std::slice::from_ref(&duration),
            sizes: &s.sizes[i..=i],
            cts,
            flags: SampleFlags::PerSample(&[true]),
            protection: None,
        };
        let mut header = fmp4::write_segment_header(&fragment, s.sizes[i] as usize, 0);
        if k > 0 {
            let _ = header.split_to(STYP_LEN);
        }
        frames.push(Frame { sample: i, header });
    }
    Some(frames)
}

/// Segment `index`'s keyframes as fragments: read from the source, charged to `budget`.
pub(super) async fn build(
    storage: &dyn Storage,
    budget: &Arc<ByteBudget>,
    asset: &Asset,
    r: &Rendition,
    index: usize,
    policy: ReadPolicy,
) -> Result<Bytes, VodError> {
    let frames = frames(asset, r, index).ok_or(VodError::NotFound)?;
    let (source, track) = asset.track(r);
    let s = &track.samples;
    let offsets: Vec<u64> = frames.iter().map(|f| s.offsets[f.sample]).collect();
    let sizes: Vec<u32> = frames.iter().map(|f| s.sizes[f.sample]).collect();
    let bytes = SampleBytes::read(storage, &source.key, (&offsets, &sizes), policy).await?;
    let len: usize = frames.iter().zip(&sizes).map(|(f, &size)| f.header.len() + size as usize).sum();
    let charge = budget.charge(len as u64).await.map_err(StorageError::from)?;
    let mut body = BytesMut::with_capacity(len);
    for (f, (&offset, &size)) in frames.iter().zip(offsets.iter().zip(&sizes)) {
        body.put_slice(&f.header);
        body.put_slice(bytes.get(offset, size)?);
    }
    Ok(charge.attach(body.freeze()))
}

/// Each keyframe of `r`: how long it shows (seconds) and its fragment's byte range, segment by
/// segment. A keyframe shows from its presentation time to the next one's (RFC 8216 4.3.3.6), not
/// from its decode time: the composition delay of B-frames differs from GOP to GOP (x265's first
/// GOP, say), so decode-time durations would put every later I-frame off by the difference.
fn ranges(asset: &Asset, r: &Rendition) -> Vec<(f64, ByteRange)> {
    let s = &asset.track(r).1.samples;
    let pts = |i: usize| s.dts[i] as i64 + s.cts.get(i).copied().map_or(0, i64::from);
    let mut found: Vec<(i64, ByteRange)> = Vec::new();
    for index in 0..r.segment_count() {
        let uri = ObjectUri::Vod(VodPath::IFrameSegment(r.id, (index + FIRST_SEGMENT_NUMBER) as u32));
        let mut offset = 0u64;
        for f in frames(asset, r, index).unwrap_or_default() {
            let len = f.header.len() as u64 + u64::from(s.sizes[f.sample]);
            found.push((pts(f.sample), ByteRange { uri, len, offset }));
            offset += len;
        }
    }
    show_times(&found, r.duration_secs(), r.timescale)
}

/// Durations from presentation times (in `timescale` ticks): each until the next, the last until
/// `total` seconds after the first.
pub(super) fn show_times<T: Copy>(found: &[(i64, T)], total: f64, timescale: u32) -> Vec<(f64, T)> {
    let secs = |ticks: i64| ticks as f64 / f64::from(timescale.max(1));
    let first = found.first().map_or(0, |(pts, _)| *pts);
    found
        .iter()
        .enumerate()
        .map(|(k, (pts, item))| {
            let end = found.get(k + 1).map_or(total, |(next, _)| secs(next - first));
            ((end - secs(pts - first)).max(0.001), *item)
        })
        .collect()
}

/// The HLS I-frame playlist of video rendition `r`: its init segment as the map, then every keyframe.
pub(super) fn playlist(asset: &Asset, r: &Rendition) -> IFramePlaylist {
    let map = IFrameMap { uri: ObjectUri::Vod(VodPath::Init(r.id)), range: None };
    IFramePlaylist::vod(map, ranges(asset, r))
}

/// Each video rendition as a trick-play stream: its largest keyframe fragment over its duration,
/// and its frames per keyframe.
pub(super) fn trick_play(asset: &Asset) -> Vec<TrickPlay> {
    let video = asset.presentation.video.iter().filter(|r| r.id.kind == TrackKind::Video);
    let trick = |r: &Rendition| {
        let rates = ranges(asset, r).into_iter().map(|(secs, range)| range.len as f64 * 8.0 / secs.max(0.001));
        let s = &asset.track(r).1.samples;
        let keyframes = s.sync.as_ref().map_or(s.len(), Vec::len).max(1);
        TrickPlay {
            id: r.id,
            peak_bps: rates.fold(0.0, f64::max).ceil() as u64,
            max_playout_rate: (s.len() as f64 / keyframes as f64).round().max(1.0) as u32,
        }
    };
    video.map(trick).collect()
}

#[cfg(test)]
mod tests {
    use super::show_times;

    #[test]
    fn keyframes_show_from_their_presentation_times() {
        // x265 with B-frames: the first GOP's composition delay is two frames (80 ms at 25 fps), the
        // later ones three; presentation times still fall every 2 s from the first keyframe.
        let pts = [80i64, 2120, 4120, 6120];
        let found: Vec<(i64, usize)> = pts.iter().map(|&p| (p, 0)).collect();
        let shown = show_times(&found, 8.0, 1000);
        let mut at = 0.0;
        for (k, (secs, _)) in shown.iter().enumerate() {
            assert!((at - (pts[k] - pts[0]) as f64 / 1000.0).abs() < 1e-9, "I-frame {k} at {at}");
            at += secs;
        }
        for (got, want) in shown.iter().map(|(d, _)| *d).zip([2.04, 2.0, 2.0, 1.96]) {
            assert!((got - want).abs() < 1e-9, "{got} for {want}");
        }
        assert!((at - 8.0).abs() < 1e-9, "they add up to the rendition's length");
    }
}
