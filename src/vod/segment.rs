//! Init and media segments of a VOD rendition. A media segment is planned first (its header, and the
//! byte ranges of its samples in the source); then either built whole (for the segment cache: the
//! reads coalesced, the samples copied after the header) or streamed (nothing kept: the header from
//! memory, then the samples chunk by chunk as the client takes them, so a response holds one chunk).

use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;

use super::{Asset, VodError};
use crate::budget::ByteBudget;
use crate::http::conditional::ETag;
use crate::packaging::PackagingError;
use crate::packaging::fmp4::{self, FragmentSamples, InitTrack, SampleFlags};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::Rendition;
use crate::packaging::reads;
use crate::storage::{ChunkReader, Gather, Storage, StorageError, StorageKey};

pub fn init_segment(asset: &Asset, r: &Rendition) -> Bytes {
    let (source, track) = asset.track(r);
    fmp4::write_init(&InitTrack::of(track, source.index.movie_timescale, r.resolution))
}

/// A media segment, before any of its samples is read.
#[derive(Debug)]
pub struct SegmentPlan {
    /// The source file.
    pub key: StorageKey,
    /// `styp`, `moof` and the `mdat` header.
    pub header: Bytes,
    /// The reads that cover every sample (coalesced, sorted).
    pub reads: Vec<Range<u64>>,
    /// The samples' bytes in the order they follow the header, runs that touch in the source merged.
    pub spans: Vec<Range<u64>>,
    /// The whole segment's length.
    pub len: u64,
    /// Its validator: the header (sample sizes, times, flags), where the samples are and the source's
    /// version; the same whether the segment is built or streamed.
    pub etag: ETag,
}

impl SegmentPlan {
    /// Whether the samples can be streamed front to back through the reads (they lie in the source in
    /// the order they are sent, as in every MP4 muxer's output).
    pub fn streamable(&self) -> bool {
        self.spans.windows(2).all(|w| w[0].end <= w[1].start)
    }
}

/// The fragment of media segment `index` (0-based) of rendition `r`: its samples' times, sizes and
/// flags, in the clear; `f` gets it with the range of the track's samples it holds.
pub(super) fn with_fragment<T>(
    asset: &Asset,
    r: &Rendition,
    index: usize,
    f: impl FnOnce(&FragmentSamples<'_>, Range<usize>) -> T,
) -> Result<T, VodError> {
    let (_, track) = asset.track(r);
    let range = r.segments.samples(index).ok_or(VodError::NotFound)?;
    let s = &track.samples;
    let sync: Vec<bool>;
    let flags = match track.kind {
        TrackKind::Audio if s.sync.is_none() => SampleFlags::AllSync,
        _ => {
            sync = range.clone().map(|i| s.is_sync(i)).collect();
            SampleFlags::PerSample(&sync)
        }
    };
    let fragment = FragmentSamples {
        sequence: (index + 1) as u32,
        base_decode_time: s.dts[range.start],
        durations: &s.durations[range.clone()],
        sizes: &s.sizes[range.clone()],
        cts: (!s.cts.is_empty()).then(|| &s.cts[range.clone()]),
        flags,
        protection: None,
    };
    Ok(f(&fragment, range))
}

/// The byte ranges of samples (`offsets`, `sizes`) in the order they are sent, runs that touch in
/// the source merged and empty samples left out.
pub(super) fn spans_of(offsets: &[u64], sizes: &[u32]) -> Vec<Range<u64>> {
    let mut spans: Vec<Range<u64>> = Vec::with_capacity(offsets.len());
    for (&offset, &size) in offsets.iter().zip(sizes).filter(|(_, s)| **s > 0) {
        match spans.last_mut() {
            Some(last) if last.end == offset => last.end += u64::from(size),
            _ => spans.push(offset..offset + u64::from(size)),
        }
    }
    spans
}

/// Plans media segment `index` (0-based) of rendition `r`.
pub fn plan(asset: &Asset, r: &Rendition, index: usize, policy: reads::ReadPolicy) -> Result<SegmentPlan, VodError> {
    let (source, track) = asset.track(r);
    let range = r.segments.samples(index).ok_or(VodError::NotFound)?;
    let offsets = &track.samples.offsets[range.clone()];
    let sizes = &track.samples.sizes[range.clone()];
    let spans = spans_of(offsets, sizes);
    let data_len: u64 = spans.iter().map(|r| r.end - r.start).sum();
    let header = with_fragment(asset, r, index, |f, _| fmp4::write_segment_header(f, data_len as usize, 0))?.freeze();
    let mut seed = Vec::with_capacity(header.len() + 16 * spans.len() + 8);
    seed.extend_from_slice(&header);
    seed.extend_from_slice(&asset.version.to_le_bytes());
    for span in &spans {
        seed.extend_from_slice(&span.start.to_le_bytes());
        seed.extend_from_slice(&span.end.to_le_bytes());
    }
    Ok(SegmentPlan {
        key: source.key.clone(),
        len: header.len() as u64 + data_len,
        reads: reads::coalesce(offsets, sizes, policy),
        etag: ETag::of(&seed),
        header,
        spans,
    })
}

/// The whole segment in memory (what the segment cache keeps), charged to `budget` before it is
/// read: the samples gathered straight behind room for the header ([`Storage::gather`]).
pub async fn build(storage: &dyn Storage, budget: &Arc<ByteBudget>, plan: &SegmentPlan) -> Result<Bytes, VodError> {
    let charge = budget.charge(plan.len).await.map_err(StorageError::from)?;
    let front = plan.header.len();
    let at = Gather { reads: &plan.reads, spans: &plan.spans, front };
    let gathered = storage.gather(&plan.key, at, budget.buffer(plan.len as usize)).await?;
    Ok(charge.attach(behind_header(budget, gathered, (front, plan.len as usize), &plan.header)))
}

/// The body of a segment whose samples were gathered into `buffer[front..end]`: `header` written just
/// in front of them, the body starting where it does (what lies before it is never sent), the buffer
/// given back to `budget` when the body is dropped. A header longer than the room costs a copy.
pub(super) fn behind_header(
    budget: &Arc<ByteBudget>,
    mut buffer: Vec<u8>,
    (front, end): (usize, usize),
    header: &[u8],
) -> Bytes {
    match front.checked_sub(header.len()) {
        Some(start) => {
            buffer[start..front].copy_from_slice(header);
            budget.share(buffer, start..end)
        }
        None => {
            let mut body = BytesMut::with_capacity(header.len() + end.saturating_sub(front));
            body.put_slice(header);
            body.put_slice(buffer.get(front..end).unwrap_or_default());
            budget.give_back(buffer);
            body.freeze()
        }
    }
}

/// Samples of one source file, read in coalesced ranges ([`reads::coalesce`]) and found again by their
/// offset and size: what every builder that copies samples (TS segments, keyframe fragments, subtitle
/// tracks) reads through.
pub struct SampleBytes<'k> {
    key: &'k StorageKey,
    reads: Vec<Range<u64>>,
    buffers: Vec<Bytes>,
}

impl<'k> SampleBytes<'k> {
    pub async fn read(
        storage: &dyn Storage,
        key: &'k StorageKey,
        (offsets, sizes): (&[u64], &[u32]),
        policy: reads::ReadPolicy,
    ) -> Result<SampleBytes<'k>, VodError> {
        let reads = reads::coalesce(offsets, sizes, policy);
        let buffers = storage.get_ranges(key, &reads).await?;
        Ok(SampleBytes { key, reads, buffers })
    }

    /// The bytes of the sample at `offset`; a short read (the file changed meanwhile) is an error.
    pub fn get(&self, offset: u64, size: u32) -> Result<&[u8], VodError> {
        reads::slice_of(&self.reads, &self.buffers, offset, u64::from(size)).ok_or_else(|| {
            VodError::Packaging(PackagingError::Truncated(format!("{} changed while it was being read", self.key)))
        })
    }
}

/// How much of the source one step of a stream reads: small on a local disk (a response holds one
/// chunk), larger where each read is a request (S3).
fn stream_chunk(storage: &dyn Storage) -> u64 {
    if storage.max_reads_per_segment() >= 256 { 64 * 1024 } else { 1024 * 1024 }
}

/// The segment as a stream of chunks: the header, then the samples read from the source a chunk at a
/// time (each read charged to the byte budget by the backend), only as fast as the client takes
/// them. A source that changed under it ends the stream with an error (the client sees a short body).
/// Needs a [`SegmentPlan::streamable`] plan.
pub fn stream(
    storage: Arc<dyn Storage>,
    plan: Arc<SegmentPlan>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let chunk = stream_chunk(storage.as_ref());
    let first = plan.reads.first().map_or(0, |r| r.start);
    let state = Cursor { read: 0, pos: first, span: 0, pending: Vec::new(), reader: None };
    let header = futures_util::stream::iter([Ok(plan.header.clone())]);
    let samples = futures_util::stream::unfold((state, storage, plan), move |(mut at, storage, plan)| async move {
        loop {
            if let Some(piece) = at.pending.pop() {
                return Some((Ok(piece), (at, storage, plan)));
            }
            let read = plan.reads.get(at.read)?.clone();
            let end = (at.pos + chunk).min(read.end);
            let wanted = plan.spans.get(at.span).is_some_and(|s| s.start < end);
            if wanted {
                let got = match read_chunk(storage.as_ref(), &plan.key, &mut at.reader, at.pos..end).await {
                    Ok(body) if body.len() as u64 == end - at.pos => body,
                    Ok(_) => return Some((Err(changed(&plan.key)), (at.finished(&plan), storage, plan))),
                    Err(e) => return Some((Err(std::io::Error::other(e)), (at.finished(&plan), storage, plan))),
                };
                at.take(&plan.spans, at.pos, &got);
            }
            at.pos = end;
            if at.pos >= read.end {
                at.read += 1;
                at.pos = plan.reads.get(at.read).map_or(at.pos, |r| r.start);
            }
        }
    });
    futures_util::StreamExt::chain(header, samples)
}

/// Where a stream is in its plan.
struct Cursor {
    /// The read being done, and how far.
    read: usize,
    pos: u64,
    /// The first span not wholly sent.
    span: usize,
    /// Pieces of the last chunk still to send, last first.
    pending: Vec<Bytes>,
    /// The source, opened once where the backend can ([`Storage::reader`]); `None` until the first read.
    reader: Option<Option<Arc<dyn ChunkReader>>>,
}

/// `range` of the source through its reader (opened on the first call), else one ranged read.
async fn read_chunk(
    storage: &dyn Storage,
    key: &StorageKey,
    reader: &mut Option<Option<Arc<dyn ChunkReader>>>,
    range: Range<u64>,
) -> Result<Bytes, StorageError> {
    if reader.is_none() {
        *reader = Some(storage.reader(key).await?);
    }
    match reader {
        Some(Some(r)) => r.read(range).await,
        _ => Ok(storage.get_range(key, range).await?.body),
    }
}

impl Cursor {
    /// The parts of `chunk` (read at `at`) that are samples, queued in order.
    fn take(&mut self, spans: &[Range<u64>], at: u64, chunk: &Bytes) {
        let end = at + chunk.len() as u64;
        let mut pieces = Vec::new();
        while let Some(span) = spans.get(self.span) {
            if span.start >= end {
                break;
            }
            let (a, b) = (span.start.max(at), span.end.min(end));
            if a < b {
                pieces.push(chunk.slice((a - at) as usize..(b - at) as usize));
            }
            if span.end > end {
                break;
            }
            self.span += 1;
        }
        pieces.reverse();
        self.pending = pieces;
    }

    /// A cursor past the end: the stream stops after the error it returns.
    fn finished(mut self, plan: &SegmentPlan) -> Cursor {
        self.read = plan.reads.len();
        self.pending.clear();
        self
    }
}

fn changed(key: &StorageKey) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("{key} changed while it was being streamed"))
}
