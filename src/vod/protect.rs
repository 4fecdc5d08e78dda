//! Common encryption of VOD assets (`[encryption]`): their init and media segments encrypted on the
//! fly with `cenc` or `cbcs` (their TS segments in AES-128: `keys::protection`). The files
//! in storage never change; a protected asset's objects are cached under keys of their own, and
//! only its fMP4 ladder is offered.
//!
//! Invariants: a protected asset never has a clear audio or video byte served (its segments are
//! built, never streamed from the source, and an encryption error is an error, not clear media);
//! the IV of each sample follows from its rendition and number, so every pod serves the same bytes.

use std::sync::Arc;

use bytes::{BufMut, Bytes};

use super::{Asset, VodError, segment};
use crate::budget::ByteBudget;
use crate::http::conditional::ETag;
use crate::keys::metrics;
use crate::packaging::PackagingError;
use crate::packaging::cenc::{self, SampleCipher, SampleLayout, Scheme, Signalling};
use crate::packaging::fmp4::{self, FragmentProtection, InitTrack};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::{Rendition, RenditionId};
use crate::storage::{Storage, StorageError};

/// Whether rendition `r` is encrypted in a protected asset: audio and video are, subtitles are not
/// (players expect them clear).
pub fn encrypts(r: RenditionId) -> bool {
    r.kind != TrackKind::Text
}

/// The init segment of rendition `r`, its sample entry protected under `signalling`'s KID, and in
/// its `moov` each DRM system's `pssh` then the common system's (the KID).
pub fn init_segment(asset: &Asset, r: &Rendition, signalling: &Signalling) -> Result<Bytes, VodError> {
    let (source, track) = asset.track(r);
    let stsd = cenc::protect_stsd(&track.stsd, signalling)?;
    let pssh = cenc::init_pssh(signalling);
    let init =
        InitTrack { stsd: &stsd, pssh: &pssh, ..InitTrack::of(track, source.index.movie_timescale, r.resolution) };
    Ok(fmp4::write_init(&init))
}

/// The number that tells the IVs of `r`'s samples from those of the asset's other renditions
/// under the same key.
fn iv_track(r: RenditionId) -> u16 {
    let kind = match r.kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
        TrackKind::Text => 2,
    };
    (kind << 14) | (r.index & 0x3FFF)
}

/// An encrypted segment's ETag, without hashing its body: its header (which holds every IV and
/// subsample), the asset's version, where its samples are read from, and the scheme and KID they
/// are encrypted with, which together fix every byte of it.
fn sealed_etag(header: &[u8], version: u64, cipher: &SampleCipher, (offsets, sizes): (&[u64], &[u32])) -> ETag {
    let mut seed = Vec::with_capacity(header.len() + 32 + 12 * offsets.len());
    seed.extend_from_slice(header);
    seed.extend_from_slice(&version.to_le_bytes());
    seed.extend_from_slice(cipher.scheme().fourcc());
    seed.extend_from_slice(&cipher.kid().0);
    for (&offset, &size) in offsets.iter().zip(sizes) {
        seed.extend_from_slice(&offset.to_le_bytes());
        seed.extend_from_slice(&size.to_le_bytes());
    }
    ETag::of(&seed)
}

/// Room left in front of an encrypted segment's samples for its header, before the samples are
/// read (the header depends on them): the fixed boxes, and per sample its `trun` entry, its IV and
/// a few subsamples. A header that needs more costs one copy of the segment.
fn header_room(samples: usize) -> usize {
    2048 + 64 * samples
}

/// Media segment `index` (0-based) of rendition `r`, encrypted: its samples gathered into one buffer
/// behind room for the header, their subsamples worked out, then all encrypted where they lie, and
/// the header written in front with their IVs and subsamples (`senc`, `saiz`, `saio`). The samples
/// are copied once, from storage.
pub async fn build_segment(
    storage: &dyn Storage,
    budget: &Arc<ByteBudget>,
    asset: &Asset,
    r: &Rendition,
    index: usize,
    cipher: &SampleCipher,
    policy: crate::packaging::reads::ReadPolicy,
) -> Result<(Bytes, ETag), VodError> {
    let (source, track) = asset.track(r);
    let layout = SampleLayout::of_stsd(&track.stsd)?;
    let range = r.segments.samples(index).ok_or(VodError::NotFound)?;
    let offsets = &track.samples.offsets[range.clone()];
    let sizes = &track.samples.sizes[range.clone()];
    let data_len: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
    let front = header_room(sizes.len());
    // The whole buffer is charged before it is read.
    let charge = budget.charge(front as u64 + data_len).await.map_err(StorageError::from)?;
    let (reads, spans) = (crate::packaging::reads::coalesce(offsets, sizes, policy), segment::spans_of(offsets, sizes));
    let end = front + data_len as usize;
    let at = crate::storage::Gather { reads: &reads, spans: &spans, front };
    let mut gathered = storage.gather(&source.key, at, budget.buffer(end)).await?;
    let (track_iv, headers) = (iv_track(r.id), cenc::SliceHeaders::of_stsd(&track.stsd));
    let short = || VodError::Packaging(PackagingError::Truncated(format!("{} came back short", source.key)));
    let mut aux = Vec::with_capacity(sizes.len());
    let mut at = front;
    for (i, &size) in sizes.iter().enumerate() {
        let sample = gathered.get(at..at + size as usize).ok_or_else(short)?;
        let iv = cenc::sample_iv(track_iv, (range.start + i) as u64);
        aux.push(cenc::sample_aux_with(cipher.scheme(), iv, (layout, &headers), sample)?);
        at += size as usize;
    }
    // Then every sample at once (cbcs runs its chains side by side).
    let mut rest = gathered.get_mut(front..end).ok_or_else(short)?;
    let samples = sizes.iter().map(|&size| {
        let n = (size as usize).min(rest.len());
        let (sample, after) = std::mem::take(&mut rest).split_at_mut(n);
        rest = after;
        sample
    });
    cipher.encrypt_samples_in_place(layout, aux.iter().zip(samples))?;
    let subsamples = cenc::has_subsamples(cipher.scheme(), layout);
    let header = segment::with_fragment(asset, r, index, |f, _| {
        let protection = Some(FragmentProtection { aux: &aux, subsamples, moof_boxes: &[], traf_boxes: &[] });
        fmp4::write_segment_header(&fmp4::FragmentSamples { protection, ..*f }, data_len as usize, 0)
    })?;
    let etag = sealed_etag(&header, asset.version, cipher, (offsets, sizes));
    let body = segment::behind_header(budget, gathered, (front, end), &header);
    match cipher.scheme() {
        Scheme::Cenc => metrics::CENC.count(body.len()),
        Scheme::Cbcs => metrics::CBCS.count(body.len()),
    }
    Ok((charge.attach(body), etag))
}

/// Segment `index`'s keyframes (`only`: the one) as encrypted fragments, for trick play: each
/// sample with the IV it has in its media segment (the same bytes, the same ciphertext).
pub async fn build_i_frames(
    storage: &dyn Storage,
    budget: &Arc<ByteBudget>,
    asset: &Asset,
    (r, index, only): (&Rendition, usize, Option<u16>),
    cipher: &SampleCipher,
    policy: crate::packaging::reads::ReadPolicy,
) -> Result<Bytes, VodError> {
    let frames = super::iframes::selected(asset, r, index, only).ok_or(VodError::NotFound)?;
    let (source, track) = asset.track(r);
    let layout = SampleLayout::of_stsd(&track.stsd)?;
    let s = &track.samples;
    let offsets: Vec<u64> = frames.iter().map(|f| s.offsets[f.sample]).collect();
    let sizes: Vec<u32> = frames.iter().map(|f| s.sizes[f.sample]).collect();
    let samples = segment::SampleBytes::read(storage, &source.key, (&offsets, &sizes), policy).await?;
    let data_len: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
    let charge = budget.charge(data_len + 1024 * frames.len() as u64).await.map_err(StorageError::from)?;
    let (scheme, track_iv) = (cipher.scheme(), iv_track(r.id));
    let subsamples = cenc::has_subsamples(scheme, layout);
    let headers = cenc::SliceHeaders::of_stsd(&track.stsd);
    let mut body = bytes::BytesMut::with_capacity(data_len as usize + 1024 * frames.len());
    for (k, (f, (&offset, &size))) in frames.iter().zip(offsets.iter().zip(&sizes)).enumerate() {
        let sample = samples.get(offset, size)?;
        let aux =
            cenc::sample_aux_with(scheme, cenc::sample_iv(track_iv, f.sample as u64), (layout, &headers), sample)?;
        let protection =
            FragmentProtection { aux: std::slice::from_ref(&aux), subsamples, moof_boxes: &[], traf_boxes: &[] };
        body.put_slice(&super::iframes::fragment_header(asset, r, index, *f, k == 0, Some(protection)));
        let start = body.len();
        body.put_slice(sample);
        cipher.encrypt_in_place(layout, &aux, &mut body[start..])?;
    }
    Ok(charge.attach(body.freeze()))
}
