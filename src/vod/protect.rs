//! Common encryption of VOD assets (`[encryption]`): their init and media segments encrypted on the
//! fly with `cenc` or `cbcs`, their TS segments in AES-128, and what encryption counts. The files
//! in storage never change; a protected asset's objects are cached under keys of their own, and
//! only its fMP4 ladder is offered.
//!
//! Invariants: a protected asset never has a clear audio or video byte served (its segments are
//! built, never streamed from the source, and an encryption error is an error, not clear media);
//! the IV of each sample follows from its rendition and number, so every pod serves the same bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes};

use super::{Asset, VodError, segment};
use crate::budget::ByteBudget;
use crate::http::conditional::ETag;
use crate::packaging::cenc::{self, ContentKey, SampleCipher, SampleLayout, Scheme, Signalling};
use crate::packaging::fmp4::{self, FragmentProtection, InitTrack};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::{Rendition, RenditionId};
use crate::storage::{Storage, StorageError};

/// A TS segment of a protected asset, numbered `n` (its media sequence number), in AES-128.
pub fn seal_ts_segment(key: &ContentKey, n: u32, clear: &[u8]) -> Bytes {
    let sealed =
        crate::packaging::aes128::encrypt_segment(key, crate::packaging::aes128::sequence_iv(u64::from(n)), clear);
    AES128.count(sealed.len());
    sealed.into()
}

/// Segments encrypted and their bytes, for one scheme.
struct Encrypted {
    segments: AtomicU64,
    bytes: AtomicU64,
}

impl Encrypted {
    const fn new() -> Encrypted {
        Encrypted { segments: AtomicU64::new(0), bytes: AtomicU64::new(0) }
    }

    fn count(&self, bytes: usize) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

static CENC: Encrypted = Encrypted::new();
static CBCS: Encrypted = Encrypted::new();
static AES128: Encrypted = Encrypted::new();

/// Appends the encryption metrics: segments and bytes encrypted by scheme (each built once, then
/// served from the segment cache), and keys the edge handed out.
pub fn render(out: &mut String) {
    use crate::telemetry::metrics::{write_counters, write_sample};
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    let schemes = [("cenc", &CENC), ("cbcs", &CBCS), ("aes-128", &AES128)];
    let help = "Media segments encrypted on the fly, by scheme";
    write_counters(
        out,
        "estuary_encrypted_segments_total",
        help,
        "scheme",
        schemes.map(|(s, e)| (s, load(&e.segments))),
    );
    let help = "Bytes of the media segments encrypted on the fly, by scheme";
    write_counters(out, "estuary_encrypted_bytes_total", help, "scheme", schemes.map(|(s, e)| (s, load(&e.bytes))));
    let help = "HLS AES-128 keys handed out at /keys/";
    let delivered = super::protection::keys_delivered() as f64;
    write_sample(out, "estuary_keys_delivered_total", "counter", help, &[], delivered);
}

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

/// Media segment `index` (0-based) of rendition `r`, encrypted: its samples read and encrypted one
/// by one, then the header written with their IVs and subsamples (`senc`, `saiz`, `saio`).
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
    let samples = segment::SampleBytes::read(storage, &source.key, (offsets, sizes), policy).await?;
    let data_len: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
    // The segment is charged before it is written: the samples, and room for the header and the
    // samples' auxiliary information.
    let charge = budget.charge(data_len + 64 * sizes.len() as u64 + 4096).await.map_err(StorageError::from)?;
    // The subsamples follow from the clear samples: the header first, then each sample copied once
    // after it and encrypted where it lies.
    let track_iv = iv_track(r.id);
    let aux = offsets
        .iter()
        .zip(sizes)
        .enumerate()
        .map(|(i, (&offset, &size))| {
            let iv = cenc::sample_iv(track_iv, (range.start + i) as u64);
            Ok(cenc::sample_aux(cipher.scheme(), iv, layout, samples.get(offset, size)?)?)
        })
        .collect::<Result<Vec<_>, VodError>>()?;
    let subsamples = cenc::has_subsamples(cipher.scheme(), layout);
    let mut body = segment::with_fragment(asset, r, index, |f, _| {
        let protection = Some(FragmentProtection { aux: &aux, subsamples, moof_boxes: &[], traf_boxes: &[] });
        fmp4::write_segment_header(&fmp4::FragmentSamples { protection, ..*f }, data_len as usize, data_len as usize)
    })?;
    for ((&offset, &size), aux) in offsets.iter().zip(sizes).zip(&aux) {
        let start = body.len();
        body.put_slice(samples.get(offset, size)?);
        cipher.encrypt_in_place(layout, aux, &mut body[start..])?;
    }
    let body = body.freeze();
    let etag = ETag::of(&body);
    match cipher.scheme() {
        Scheme::Cenc => CENC.count(body.len()),
        Scheme::Cbcs => CBCS.count(body.len()),
    }
    Ok((charge.attach(body), etag))
}
