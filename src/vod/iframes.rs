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
use crate::packaging::fmp4::STYP_LEN;
use crate::packaging::fmp4::{self, FragmentSamples, SampleFlags};
use crate::packaging::manifest::{ByteRange, IFrameMap, IFramePlaylist, ObjectUri};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::Rendition;
use crate::packaging::reads::ReadPolicy;
use crate::packaging::url::{FIRST_SEGMENT_NUMBER, VodPath};
use crate::packaging::vod_manifests::TrickPlay;
use crate::storage::budget::ByteBudget;
use crate::storage::{Storage, StorageError};

/// One keyframe as its own fragment.
struct Frame {
    sample: usize,
    /// Until the next keyframe (or the segment's end), in track ticks.
    duration: u32,
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
        };
        let mut header = fmp4::write_segment_header(&fragment, s.sizes[i] as usize, 0);
        if k > 0 {
            let _ = header.split_to(STYP_LEN);
        }
        frames.push(Frame { sample: i, duration, header });
    }
    Some(frames)
}

/// Segment `index`'s keyframes as fragments: read from the source, charged to `budget`.
pub async fn build(
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

/// Each keyframe of `r`: its duration (seconds) and its fragment's byte range, segment by segment.
fn ranges(asset: &Asset, r: &Rendition) -> Vec<(f64, ByteRange)> {
    let sizes = &asset.track(r).1.samples.sizes;
    let mut out = Vec::new();
    for index in 0..r.segment_count() {
        let uri = ObjectUri::Vod(VodPath::IFrameSegment(r.id, (index + FIRST_SEGMENT_NUMBER) as u32));
        let mut offset = 0u64;
        for f in frames(asset, r, index).unwrap_or_default() {
            let len = f.header.len() as u64 + u64::from(sizes[f.sample]);
            out.push((f64::from(f.duration) / f64::from(r.timescale), ByteRange { uri, len, offset }));
            offset += len;
        }
    }
    out
}

/// The HLS I-frame playlist of video rendition `r`: its init segment as the map, then every keyframe.
pub fn playlist(asset: &Asset, r: &Rendition) -> IFramePlaylist {
    let map = IFrameMap { uri: ObjectUri::Vod(VodPath::Init(r.id)), range: None };
    IFramePlaylist::vod(map, ranges(asset, r))
}

/// Each video rendition as a trick-play stream: its largest keyframe fragment over its duration,
/// and its frames per keyframe.
pub fn trick_play(asset: &Asset) -> Vec<TrickPlay> {
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
