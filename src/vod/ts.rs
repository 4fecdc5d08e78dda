//! MPEG-TS segments of a VOD variant: the samples of its video, and of the audio muxed into it, read
//! from their sources (coalesced reads, as fMP4 segments) and muxed by
//! [`crate::packaging::ts::segment`], in SAMPLE-AES for a protected asset that asks it. Built whole,
//! through the segment cache.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::segment::SampleBytes;
use super::{Asset, VodError};
use crate::budget::ByteBudget;
use crate::packaging::manifest::{ByteRange, IFrameMap, IFramePlaylist, ObjectUri};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::{Rendition, RenditionId};
use crate::packaging::reads::ReadPolicy;
use crate::packaging::ts::PACKET;
use crate::packaging::ts::es::Elementary;
use crate::packaging::ts::mux::{AUDIO_PID, VIDEO_PID};
use crate::packaging::ts::sample_aes::{self, SampleAes};
use crate::packaging::ts::segment::{self, Timeline, TrackIn};
use crate::packaging::url::{FIRST_SEGMENT_NUMBER, VodPath};
use crate::packaging::vod_manifests;
use crate::storage::{Storage, StorageError};

/// One track of the variant: its rendition, PID, whether it carries the PCR, how its samples
/// are written and timed, and whether they are in SAMPLE-AES.
struct Member<'a> {
    rendition: &'a Rendition,
    pid: u16,
    pcr: bool,
    es: Elementary,
    timeline: Timeline,
    sealed: bool,
}

impl Member<'_> {
    /// The track's samples `range`, timed, with their bytes (`data`, or none to count packets).
    fn track<'m>(&'m self, asset: &Asset, range: Range<usize>, data: Vec<&'m [u8]>) -> TrackIn<'m> {
        let samples = self.timeline.samples(asset.track(self.rendition).1, range);
        TrackIn { es: &self.es, pid: self.pid, pcr: self.pcr, samples, data, sealed: self.sealed }
    }
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

/// The tracks of `r`'s variant: its own, and the audio muxed into a video variant; in SAMPLE-AES
/// when `sample_aes` and every track can be ([`sample_aes_able`]).
fn variant<'a>(asset: &'a Asset, r: &'a Rendition, sample_aes: bool) -> Result<Vec<Member<'a>>, VodError> {
    let video = r.id.kind == TrackKind::Video;
    let mut tracks = vec![(r, if video { VIDEO_PID } else { AUDIO_PID }, true)];
    if video && let Some(audio) = vod_manifests::ts_audio(&asset.presentation) {
        tracks.push((audio, AUDIO_PID, false));
    }
    let mut members = Vec::with_capacity(tracks.len());
    for (rendition, pid, pcr) in tracks {
        let (source, track) = asset.track(rendition);
        let es = Elementary::of_stsd(&track.stsd)?;
        let timeline = Timeline::of(track, source.index.movie_timescale);
        members.push(Member { rendition, pid, pcr, es, timeline, sealed: false });
    }
    if sample_aes && members.iter().all(|m| sample_aes::stream_type(&m.es).is_some()) {
        members.iter_mut().for_each(|m| m.sealed = true);
    }
    Ok(members)
}

/// Whether `r`'s variant can be in SAMPLE-AES: H.264 video and AAC audio (the format has no HEVC).
/// Told from its codecs, without reading the sample entries: the audio a TS variant carries is
/// AAC already.
pub(super) fn sample_aes_able(r: &Rendition) -> bool {
    r.id.kind == TrackKind::Audio || r.codecs.starts_with("avc1") || r.codecs.starts_with("avc3")
}

/// MPEG-TS segment `index` (0-based) of the variant of rendition `r`, charged to `budget`; in
/// SAMPLE-AES with `seal` where its tracks can be.
pub(super) async fn build(
    storage: &dyn Storage,
    budget: &Arc<ByteBudget>,
    asset: &Asset,
    (r, index): (&Rendition, usize),
    policy: ReadPolicy,
    seal: Option<&SampleAes>,
) -> Result<Bytes, VodError> {
    let members = variant(asset, r, seal.is_some())?;
    let count = r.segment_count();
    // Each PID's continuity counter goes on from the segments before this one.
    let counters = continuity(asset, r, &members);
    let counters = counters.get(index).ok_or(VodError::NotFound)?;
    let mut reads_of = Vec::with_capacity(members.len());
    for m in &members {
        let Some(range) = samples_of(m, index, count) else { continue };
        let (source, track) = asset.track(m.rendition);
        let s = &track.samples;
        let samples = (&s.offsets[range.clone()], &s.sizes[range.clone()]);
        reads_of.push((m, range, SampleBytes::read(storage, &source.key, samples, policy).await?));
    }
    let mut tracks = Vec::with_capacity(members.len());
    for (m, range, bytes) in &reads_of {
        let s = &asset.track(m.rendition).1.samples;
        let data = range.clone().map(|i| bytes.get(s.offsets[i], s.sizes[i])).collect::<Result<Vec<_>, _>>()?;
        tracks.push(m.track(asset, range.clone(), data));
    }
    let body = segment::mux(&tracks, index, counters, seal)?;
    let charge = budget.charge(body.len() as u64).await.map_err(StorageError::from)?;
    Ok(charge.attach(body))
}

/// Each PID's continuity counter at the start of every segment of `r`'s variant: the TS packets of
/// the segments before, counted from sample sizes once per asset version and kept with it.
fn continuity(asset: &Asset, r: &Rendition, members: &[Member<'_>]) -> Arc<super::catalog::TsCounters> {
    let sealed = members.iter().any(|m| m.sealed);
    if let Some(known) = asset.ts_counters.lock().ok().and_then(|m| m.get(&(r.id, sealed)).cloned()) {
        return known;
    }
    let count = r.segment_count();
    let mut starts: Vec<Vec<(u16, u8)>> = vec![Vec::with_capacity(members.len()); count];
    for m in members {
        let mut sent = 0usize;
        for (i, start) in starts.iter_mut().enumerate() {
            start.push((m.pid, (sent % 16) as u8));
            if let Some(range) = samples_of(m, i, count) {
                sent += segment::packets(&m.track(asset, range, Vec::new()));
            }
        }
    }
    let starts = Arc::new(starts);
    if let Ok(mut known) = asset.ts_counters.lock() {
        known.insert((r.id, sealed), starts.clone());
    }
    starts
}

/// The I-frame playlist of video variant `r`: every keyframe as the byte range of its PES in its
/// TS segment (found from sample sizes, as the continuity counters are), lasting until the next
/// keyframe, after a map of the first segment's PAT and PMT.
pub(super) fn i_frames(asset: &Asset, r: &Rendition) -> Result<IFramePlaylist, VodError> {
    let members = variant(asset, r, false)?;
    let count = r.segment_count();
    let mut found: Vec<(u64, ByteRange)> = Vec::new();
    for i in 0..count {
        let tracks: Vec<TrackIn<'_>> =
            members.iter().map(|m| m.track(asset, samples_of(m, i, count).unwrap_or(0..0), Vec::new())).collect();
        let uri = ObjectUri::Vod(VodPath::TsSegment(r.id, (i + FIRST_SEGMENT_NUMBER) as u32));
        for k in segment::keyframes(&tracks) {
            found.push((tracks[0].samples[k.sample].pts, ByteRange { uri, len: k.len, offset: k.offset }));
        }
    }
    let total: f64 = (0..count).map(|i| r.segment_secs(i)).sum();
    let found: Vec<(i64, ByteRange)> = found.into_iter().map(|(pts, range)| (pts as i64, range)).collect();
    let frames = super::iframes::show_times(&found, total, 90_000);
    let map_uri = ObjectUri::Vod(VodPath::TsSegment(r.id, FIRST_SEGMENT_NUMBER as u32));
    Ok(IFramePlaylist::vod(IFrameMap { uri: map_uri, range: Some((2 * PACKET as u64, 0)) }, frames))
}

/// Each TS video variant's I-frame peak bit rate: its largest keyframe over the time it shows.
pub(super) fn i_frame_peaks(asset: &Asset) -> Vec<(RenditionId, u64)> {
    vod_manifests::ts_variants(&asset.presentation)
        .into_iter()
        .filter(|r| r.id.kind == TrackKind::Video)
        .filter_map(|r| {
            let playlist = i_frames(asset, r).ok()?;
            let peak = playlist.frames.iter().map(|f| f.range.len as f64 * 8.0 / f.duration).fold(0.0, f64::max);
            Some((r.id, peak.ceil() as u64))
        })
        .collect()
}
