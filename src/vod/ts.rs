//! MPEG-TS segments of a VOD variant: the samples of its video, and of the audio muxed into it, read
//! from their sources (coalesced reads, as fMP4 segments) and muxed by
//! [`crate::packaging::ts::segment`]. Built whole, through the segment cache.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::{Asset, VodError};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::Rendition;
use crate::packaging::reads::{self, ReadPolicy};
use crate::packaging::ts::es::Elementary;
use crate::packaging::ts::mux::{AUDIO_PID, VIDEO_PID};
use crate::packaging::ts::segment::{self, Timeline, TrackIn};
use crate::packaging::{PackagingError, vod_manifests};
use crate::storage::budget::ByteBudget;
use crate::storage::{Storage, StorageError};

/// One track of the variant: its rendition, PID, and whether it carries the PCR.
struct Member<'a> {
    rendition: &'a Rendition,
    pid: u16,
    pcr: bool,
}

/// The samples of `member` in segment `index` of a variant of `count` segments: the rendition's own
/// segment; for muxed audio, also whatever it has past the video's last segment.
fn samples_of(member: &Member<'_>, index: usize, count: usize) -> Option<Range<usize>> {
    let own = member.rendition.segments.samples(index)?;
    if member.pid == AUDIO_PID && !member.pcr && index + 1 == count {
        let end = *member.rendition.segments.bounds.last()? as usize;
        return Some(own.start..end);
    }
    Some(own)
}

/// MPEG-TS segment `index` (0-based) of the variant of rendition `r`, charged to `budget`.
pub async fn build(
    storage: &dyn Storage,
    budget: &Arc<ByteBudget>,
    asset: &Asset,
    r: &Rendition,
    index: usize,
    policy: ReadPolicy,
) -> Result<Bytes, VodError> {
    let video = r.id.kind == TrackKind::Video;
    let mut members = vec![Member { rendition: r, pid: if video { VIDEO_PID } else { AUDIO_PID }, pcr: true }];
    if video && let Some(audio) = vod_manifests::ts_audio(&asset.presentation) {
        members.push(Member { rendition: audio, pid: AUDIO_PID, pcr: false });
    }
    let count = r.segment_count();
    let mut elementary = Vec::with_capacity(members.len());
    let mut timelines = Vec::with_capacity(members.len());
    for m in &members {
        let (source, track) = asset.track(m.rendition);
        elementary.push(Elementary::of_stsd(&track.stsd)?);
        timelines.push(Timeline::of(track, source.index.movie_timescale));
    }
    // Each PID's continuity counter goes on from the segments before this one.
    let counters = continuity(asset, r, &members, &elementary, &timelines);
    let counters = counters.get(index).ok_or(VodError::NotFound)?;
    let mut reads_of = Vec::with_capacity(members.len());
    for m in &members {
        let Some(range) = samples_of(m, index, count) else {
            reads_of.push(None);
            continue;
        };
        let (source, track) = asset.track(m.rendition);
        let s = &track.samples;
        let reads = reads::coalesce(&s.offsets[range.clone()], &s.sizes[range.clone()], policy);
        let buffers = storage.get_ranges(&source.key, &reads).await?;
        reads_of.push(Some((range, reads, buffers)));
    }
    let mut tracks = Vec::with_capacity(members.len());
    for (((m, es), timeline), read) in members.iter().zip(&elementary).zip(&timelines).zip(&reads_of) {
        let Some((range, reads, buffers)) = read else { continue };
        let (source, track) = asset.track(m.rendition);
        let s = &track.samples;
        let mut data = Vec::with_capacity(range.len());
        for i in range.clone() {
            let bytes = reads::slice_of(reads, buffers, s.offsets[i], u64::from(s.sizes[i]))
                .ok_or_else(|| PackagingError::Truncated(format!("{} changed while it was being read", source.key)))?;
            data.push(bytes);
        }
        let samples = timeline.samples(track, range.clone());
        tracks.push(TrackIn { es, pid: m.pid, pcr: m.pcr, samples, data });
    }
    let body = segment::mux(&tracks, index, counters)?;
    let charge = budget.charge(body.len() as u64).await.map_err(StorageError::from)?;
    Ok(charge.attach(body))
}

/// Each PID's continuity counter at the start of every segment of `r`'s variant: the TS packets of
/// the segments before, counted from sample sizes once per asset version and kept with it.
fn continuity(
    asset: &Asset,
    r: &Rendition,
    members: &[Member<'_>],
    elementary: &[Elementary],
    timelines: &[Timeline],
) -> Arc<super::catalog::TsCounters> {
    if let Some(known) = asset.ts_counters.lock().ok().and_then(|m| m.get(&r.id).cloned()) {
        return known;
    }
    let count = r.segment_count();
    let mut starts: Vec<Vec<(u16, u8)>> = vec![Vec::with_capacity(members.len()); count];
    for ((m, es), timeline) in members.iter().zip(elementary).zip(timelines) {
        let (_, track) = asset.track(m.rendition);
        let mut sent = 0usize;
        for (i, start) in starts.iter_mut().enumerate() {
            start.push((m.pid, (sent % 16) as u8));
            if let Some(range) = samples_of(m, i, count) {
                let samples = timeline.samples(track, range);
                sent += segment::packets(&TrackIn { es, pid: m.pid, pcr: m.pcr, samples, data: Vec::new() });
            }
        }
    }
    let starts = Arc::new(starts);
    if let Ok(mut known) = asset.ts_counters.lock() {
        known.insert(r.id, starts.clone());
    }
    starts
}
