//! Init and media segments of a VOD rendition: the samples' byte ranges read from storage (coalesced), then muxed.

use super::{Asset, VodError};
use crate::packaging::PackagingError;
use crate::packaging::fmp4::{self, FragmentSamples, InitTrack, SampleFlags};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::Rendition;
use crate::packaging::reads;
use crate::storage::budget::ByteBudget;
use crate::storage::{Storage, StorageError};
use bytes::Bytes;
use std::sync::Arc;

pub fn init_segment(asset: &Asset, r: &Rendition) -> Bytes {
    let (source, track) = asset.track(r);
    fmp4::write_init(&InitTrack::of(track, source.index.movie_timescale, r.resolution))
}

/// Media segment `index` (0-based) of rendition `r`.
pub async fn media_segment(
    storage: &dyn Storage,
    budget: &Arc<ByteBudget>,
    asset: &Asset,
    r: &Rendition,
    index: usize,
    read_gap: u64,
) -> Result<Bytes, VodError> {
    let (source, track) = asset.track(r);
    let range = r.segments.samples(index).ok_or(VodError::NotFound)?;
    let s = &track.samples;
    let offsets = &s.offsets[range.clone()];
    let sizes = &s.sizes[range.clone()];
    let policy = reads::ReadPolicy { max_gap: read_gap, max_reads: storage.max_reads_per_segment() };
    let ranges = reads::coalesce(offsets, sizes, policy);
    let buffers = storage.get_ranges(&source.key, &ranges).await?;
    let mut payload = Vec::with_capacity(range.len());
    for (&offset, &size) in offsets.iter().zip(sizes) {
        let bytes = reads::slice_of(&ranges, &buffers, offset, size)
            .ok_or_else(|| PackagingError::Truncated(format!("{} changed while it was being read", source.key)))?;
        payload.push(bytes);
    }
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
        sizes,
        cts: (!s.cts.is_empty()).then(|| &s.cts[range.clone()]),
        flags,
    };
    // The muxed copy is charged before it is written; the samples read are released when it is done.
    let payload_bytes: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
    let charge = budget.charge(payload_bytes + 64 * sizes.len() as u64 + 1024).await.map_err(StorageError::from)?;
    Ok(charge.attach(fmp4::write_segment(&fragment, &payload)))
}
