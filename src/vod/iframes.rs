//! fMP4 trick play for VOD: each video segment's keyframes alone (`v0/iframes/{n}.m4s`, one
//! fragment per keyframe lasting until the next), which the HLS I-frame playlist (`v0-iframes.m3u8`)
//! names fragment by fragment as byte ranges and the MPD offers whole as a trick-mode representation.
//!
//! A keyframe's bytes inside the regular segment cannot be decoded alone (they need the segment's
//! one `moof`), so the keyframes get fragments of their own; the layout is computed from the sample
//! tables, without reading samples. A protected asset's keyframes are encrypted (`protect`), which
//! makes their fragments' lengths depend on their NAL units: its I-frame playlist names each
//! keyframe as an object of its own (`v0/iframes/3.1.m4s`) rather than by byte ranges.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::segment::SampleBytes;
use super::{Asset, VodError};
use crate::budget::ByteBudget;
use crate::packaging::fmp4::STYP_LEN;
use crate::packaging::fmp4::{self, FragmentSamples, SampleFlags};
use crate::packaging::manifest::{ByteRange, IFrameMap, IFramePlaylist, ObjectUri, SegmentEncryption};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::Rendition;
use crate::packaging::reads::ReadPolicy;
use crate::packaging::url::{FIRST_SEGMENT_NUMBER, VodPath};
use crate::packaging::vod_manifests::TrickPlay;
use crate::storage::{Storage, StorageError};

/// One keyframe as its own fragment: its sample, and how long it lasts (track ticks).
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    pub sample: usize,
    pub duration: u32,
}

/// Segment `index`'s keyframes, in order.
pub(super) fn keyframes(asset: &Asset, r: &Rendition, index: usize) -> Option<Vec<Frame>> {
    let s = &asset.track(r).1.samples;
    let range = r.segments.samples(index)?;
    let keys: Vec<usize> = range.clone().filter(|&i| s.is_sync(i)).collect();
    let end_time = *r.times.get(index + 1)?;
    let frames = keys.iter().enumerate().map(|(k, &i)| {
        let next = keys.get(k + 1).map_or(end_time, |&j| s.dts[j]);
        Frame { sample: i, duration: u32::try_from(next.saturating_sub(s.dts[i])).unwrap_or(u32::MAX) }
    });
    Some(frames.collect())
}

/// The header of keyframe `f`'s fragment in segment `index` (`protection`: encrypted as it says);
/// with the `styp` that opens an object when `opens`.
pub(super) fn fragment_header(
    asset: &Asset,
    r: &Rendition,
    index: usize,
    f: Frame,
    opens: bool,
    protection: Option<fmp4::FragmentProtection<'_>>,
) -> BytesMut {
    let s = &asset.track(r).1.samples;
    let i = f.sample;
    let cts = (!s.cts.is_empty()).then(|| std::slice::from_ref(&s.cts[i]));
    let fragment = FragmentSamples {
        sequence: (index + 1) as u32,
        base_decode_time: s.dts[i],
        durations: std::slice::from_ref(&f.duration),
        sizes: &s.sizes[i..=i],
        cts,
        flags: SampleFlags::PerSample(&[true]),
        protection,
    };
    let mut header = fmp4::write_segment_header(&fragment, s.sizes[i] as usize, 0);
    if !opens {
        let _ = header.split_to(STYP_LEN);
    }
    header
}

/// Which of segment `index`'s keyframes an object holds: all (`None`, the segment's I-frame
/// segment) or one (`Some(k)`).
pub(super) fn selected(asset: &Asset, r: &Rendition, index: usize, only: Option<u16>) -> Option<Vec<Frame>> {
    let frames = keyframes(asset, r, index)?;
    match only {
        None => Some(frames),
        Some(k) => Some(vec![*frames.get(usize::from(k))?]),
    }
}

/// Segment `index`'s keyframes as fragments (`only`: the one), read from the source, charged
/// to `budget`.
pub(super) async fn build(
    storage: &dyn Storage,
    budget: &Arc<ByteBudget>,
    asset: &Asset,
    (r, index, only): (&Rendition, usize, Option<u16>),
    policy: ReadPolicy,
) -> Result<Bytes, VodError> {
    let frames = selected(asset, r, index, only).ok_or(VodError::NotFound)?;
    let headers: Vec<BytesMut> =
        frames.iter().enumerate().map(|(k, &f)| fragment_header(asset, r, index, f, k == 0, None)).collect();
    let (source, track) = asset.track(r);
    let s = &track.samples;
    let offsets: Vec<u64> = frames.iter().map(|f| s.offsets[f.sample]).collect();
    let sizes: Vec<u32> = frames.iter().map(|f| s.sizes[f.sample]).collect();
    let bytes = SampleBytes::read(storage, &source.key, (&offsets, &sizes), policy).await?;
    let len: usize = headers.iter().zip(&sizes).map(|(h, &size)| h.len() + size as usize).sum();
    let charge = budget.charge(len as u64).await.map_err(StorageError::from)?;
    let mut body = BytesMut::with_capacity(len);
    for (header, (&offset, &size)) in headers.iter().zip(offsets.iter().zip(&sizes)) {
        body.put_slice(header);
        body.put_slice(bytes.get(offset, size)?);
    }
    Ok(charge.attach(body.freeze()))
}

/// Each keyframe of `r`: how long it shows (seconds) and its fragment's byte range, segment by
/// segment. A keyframe shows from its presentation time to the next one's (RFC 8216 4.3.3.6), not
/// from its decode time: the composition delay of B-frames differs from GOP to GOP (x265's first
/// GOP, say), so decode-time durations would put every later I-frame off by the difference.
/// With `sealed` (a protected asset), each keyframe is named as an object of its own
/// ([`VodPath::IFrame`]), its length reckoned with what encryption adds.
fn ranges(asset: &Asset, r: &Rendition, sealed: bool) -> Vec<(f64, ByteRange)> {
    let s = &asset.track(r).1.samples;
    let pts = |i: usize| s.dts[i] as i64 + s.cts.get(i).copied().map_or(0, i64::from);
    let mut found: Vec<(i64, ByteRange)> = Vec::new();
    for index in 0..r.segment_count() {
        let n = (index + FIRST_SEGMENT_NUMBER) as u32;
        let mut offset = 0u64;
        for (k, f) in keyframes(asset, r, index).unwrap_or_default().into_iter().enumerate() {
            let header = fragment_header(asset, r, index, f, k == 0, None).len() as u64;
            let len = header + u64::from(s.sizes[f.sample]);
            let uri = match sealed {
                // Each keyframe an object of its own, which opens with a `styp`, and room for the
                // auxiliary information encryption adds (a few bytes per NAL unit).
                true => ObjectUri::Vod(VodPath::IFrame(r.id, n, k as u16)),
                false => ObjectUri::Vod(VodPath::IFrameSegment(r.id, n)),
            };
            let len = if sealed { len + (if k == 0 { 0 } else { STYP_LEN as u64 }) + SEALED_MARGIN } else { len };
            found.push((pts(f.sample), ByteRange { uri, len, offset }));
            offset += len;
        }
    }
    show_times(&found, r.duration_secs(), r.timescale)
}

/// What encryption adds to a keyframe's fragment at most, as the bit rates reckon it: `senc`,
/// `saiz`, `saio` for a picture of up to a hundred NAL units.
const SEALED_MARGIN: u64 = 1024;

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

/// The HLS I-frame playlist of video rendition `r`: its init segment as the map, then every
/// keyframe; with `protection`, each keyframe an object of its own, encrypted as it says.
pub(super) fn playlist(asset: &Asset, r: &Rendition, protection: Option<SegmentEncryption>) -> IFramePlaylist {
    let map = IFrameMap { uri: ObjectUri::Vod(VodPath::Init(r.id)), range: None };
    let sealed = protection.is_some();
    IFramePlaylist { protection, whole_objects: sealed, ..IFramePlaylist::vod(map, ranges(asset, r, sealed)) }
}

/// Each video rendition as a trick-play stream: its largest keyframe fragment over its duration,
/// and its frames per keyframe.
pub(super) fn trick_play(asset: &Asset, sealed: bool) -> Vec<TrickPlay> {
    let video = asset.presentation.video.iter().filter(|r| r.id.kind == TrackKind::Video);
    let trick = |r: &Rendition| {
        let rates = ranges(asset, r, sealed).into_iter().map(|(secs, range)| range.len as f64 * 8.0 / secs.max(0.001));
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
