//! PURE: which bytes of one sample are encrypted (its subsamples), by scheme: `cenc` leaves each
//! VCL NAL unit's length and header clear and encrypts the rest in whole 16-byte blocks; `cbcs`
//! leaves the slice header clear too (the NAL unit's first 32 bytes, as Apple's sample encryption
//! does, or the whole header where it is longer) and describes audio by subsamples of whole blocks. Parameter sets and SEI stay clear.

use super::Scheme;
use super::slice_header::SliceHeaders;
use crate::PackagingError;
use crate::codec;
use crate::mp4::boxes::{self, Reader, fourcc_str};

/// Most subsamples one sample's auxiliary information describes: `saiz` gives each sample's
/// size in one byte (8 for the IV, 2 for the count, 6 per subsample).
const MAX_SUBSAMPLES: usize = (u8::MAX as usize - 8 - 2) / 6;

/// Bytes of a VCL NAL unit (header included) that `cbcs` leaves clear at least: its slice header,
/// which players parse before they decrypt. Apple's sample encryption leaves the same 32 bytes
/// clear; a slice header measured longer (HEVC's with many entry points) is left clear whole.
pub const CBCS_CLEAR_LEAD: usize = 32;

/// How a track's samples are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleLayout {
    /// Length-prefixed NAL units of H.264 (`hevc` false) or HEVC: by subsamples.
    Nal { length_size: usize, hevc: bool },
    /// Every byte of every sample (audio).
    Whole,
}

impl SampleLayout {
    /// The layout of the samples a `stsd` box (header included) describes: AVC and HEVC by NAL
    /// units, audio whole; other video codecs are refused (their subsample rules differ).
    pub fn of_stsd(stsd: &[u8]) -> Result<SampleLayout, PackagingError> {
        let payload = boxes::boxes(stsd).next().ok_or_else(|| PackagingError::malformed("empty stsd"))??.payload;
        let (kind, children) = codec::entry_boxes(payload)?;
        let length_size = |name: &[u8; 4], skip: usize| -> Result<usize, PackagingError> {
            let config = boxes::find(children, name)?.ok_or_else(|| {
                PackagingError::malformed(format!("'{}' without its '{}'", fourcc_str(kind), fourcc_str(*name)))
            })?;
            let mut r = Reader::new(config.payload, "decoder configuration");
            r.skip(skip)?;
            Ok(usize::from(r.u8()? & 3) + 1)
        };
        match &kind {
            b"avc1" | b"avc3" => Ok(SampleLayout::Nal { length_size: length_size(b"avcC", 4)?, hevc: false }),
            b"hvc1" | b"hev1" => Ok(SampleLayout::Nal { length_size: length_size(b"hvcC", 21)?, hevc: true }),
            kind if codec::is_video_entry(kind) => {
                Err(PackagingError::UnsupportedCodec(format!("{} with common encryption", fourcc_str(*kind))))
            }
            _ => Ok(SampleLayout::Whole),
        }
    }
}

/// A run of a sample: `clear` bytes left as they are, then `protected` bytes encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subsample {
    pub clear: u16,
    pub protected: u32,
}

/// What a player needs to decrypt one sample: its IV (`cenc`; `cbcs` has one constant IV, in
/// `tenc`) and its subsamples (video; audio in `cbcs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleAux {
    pub iv: Option<[u8; 8]>,
    pub subsamples: Vec<Subsample>,
}

/// The IV of sample `n` (counted from the track's first) of the track numbered `track` among those
/// sharing its key: unique for each (key, track, sample), and the same on every pod, so every pod
/// serves the same bytes.
pub fn sample_iv(track: u16, n: u64) -> [u8; 8] {
    ((u64::from(track) << 48) | (n & 0xFFFF_FFFF_FFFF)).to_be_bytes()
}

/// What a player will need to decrypt `sample` once encrypted with `scheme` (and `iv`, for
/// `cenc`): its subsamples follow from its NAL units alone, so a segment's header can be written
/// before its samples are encrypted.
pub fn sample_aux(
    scheme: Scheme,
    iv: [u8; 8],
    layout: SampleLayout,
    sample: &[u8],
) -> Result<SampleAux, PackagingError> {
    sample_aux_with(scheme, iv, (layout, &SliceHeaders::Unknown), sample)
}

/// [`sample_aux`], `cbcs` leaving each slice's whole header clear where `headers` (the track's
/// parameter sets) can measure it, when it is longer than [`CBCS_CLEAR_LEAD`].
pub fn sample_aux_with(
    scheme: Scheme,
    iv: [u8; 8],
    (layout, headers): (SampleLayout, &SliceHeaders),
    sample: &[u8],
) -> Result<SampleAux, PackagingError> {
    let subsamples = match (layout, scheme) {
        (SampleLayout::Whole, Scheme::Cenc) => Vec::new(),
        (SampleLayout::Whole, Scheme::Cbcs) => {
            let whole = sample.len() - sample.len() % 16;
            describe(vec![(0, whole), (sample.len() - whole, 0)].into_iter().filter(|&r| r != (0, 0)).collect())
        }
        (SampleLayout::Nal { length_size, hevc }, scheme) => subsamples(sample, (length_size, hevc), scheme, headers)?,
    };
    let iv = (scheme == Scheme::Cenc).then_some(iv);
    Ok(SampleAux { iv, subsamples })
}

/// Whether a track of `layout` encrypted with `scheme` describes its samples by subsamples.
pub fn has_subsamples(scheme: Scheme, layout: SampleLayout) -> bool {
    scheme == Scheme::Cbcs || matches!(layout, SampleLayout::Nal { .. })
}

/// The subsamples of a sample of length-prefixed NAL units: a VCL NAL unit's length and header
/// (`cbcs`: its first [`CBCS_CLEAR_LEAD`] bytes) stay clear, and whatever of the rest is not a
/// whole 16-byte block; other NAL units (parameter sets, SEI, delimiters) stay clear.
fn subsamples(
    sample: &[u8],
    (length_size, hevc): (usize, bool),
    scheme: Scheme,
    headers: &SliceHeaders,
) -> Result<Vec<Subsample>, PackagingError> {
    let truncated = || PackagingError::malformed("a NAL unit runs past the end of its sample");
    let lead = match scheme {
        Scheme::Cenc if hevc => 2,
        Scheme::Cenc => 1,
        Scheme::Cbcs => CBCS_CLEAR_LEAD,
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut clear = 0;
    let mut rest = sample;
    while !rest.is_empty() {
        let prefix = rest.get(..length_size).ok_or_else(truncated)?;
        let len = prefix.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let body = rest.get(length_size..length_size + len).ok_or_else(truncated)?;
        let vcl = body.first().is_some_and(|&b| if hevc { (b >> 1) & 0x3F < 32 } else { matches!(b & 0x1F, 1..=5) });
        let header = match scheme {
            Scheme::Cbcs if vcl => headers.header_len(body).map_or(lead, |measured| measured.max(lead)),
            _ => lead,
        };
        let payload = len.saturating_sub(header);
        let protected = if vcl { payload - payload % 16 } else { 0 };
        clear += length_size + len - protected;
        if protected > 0 {
            runs.push((clear, protected));
            clear = 0;
        }
        rest = &rest[length_size + len..];
    }
    if clear > 0 {
        runs.push((clear, 0));
    }
    Ok(describe(runs))
}

/// Runs as subsamples: a clear count over 65,535 is split, and past [`MAX_SUBSAMPLES`] the last
/// runs are joined into one encrypted run (their NAL headers encrypted too, which decryption
/// restores) rather than left clear.
fn describe(runs: Vec<(usize, usize)>) -> Vec<Subsample> {
    let mut out = Vec::with_capacity(runs.len());
    for (mut clear, protected) in runs {
        while clear > usize::from(u16::MAX) {
            out.push(Subsample { clear: u16::MAX, protected: 0 });
            clear -= usize::from(u16::MAX);
        }
        out.push(Subsample { clear: clear as u16, protected: protected as u32 });
    }
    if out.len() > MAX_SUBSAMPLES {
        let tail: u64 = out[MAX_SUBSAMPLES..].iter().map(|s| u64::from(s.clear) + u64::from(s.protected)).sum();
        out.truncate(MAX_SUBSAMPLES);
        if let Some(last) = out.last_mut() {
            last.protected = (u64::from(last.protected) + tail).min(u64::from(u32::MAX)) as u32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use aes::Aes128;
    use ctr::cipher::{KeyIvInit, StreamCipher};

    use super::*;
    use crate::cenc::{ContentKey, KeyId, SampleCipher};

    type Ctr = ctr::Ctr64BE<Aes128>;
    const AVC: SampleLayout = SampleLayout::Nal { length_size: 4, hevc: false };

    /// Encrypts `sample` in place with `scheme` under a test key; what the player is told.
    fn encrypt_sample(
        scheme: Scheme,
        iv: [u8; 8],
        layout: SampleLayout,
        sample: &mut [u8],
    ) -> Result<SampleAux, PackagingError> {
        let aux = sample_aux(scheme, iv, layout, sample)?;
        SampleCipher::new(&ContentKey::new(KeyId([1; 16]), [7; 16]), scheme).encrypt_in_place(layout, &aux, sample)?;
        Ok(aux)
    }

    /// A sample of AVC NAL units with 4-byte lengths: (type, payload length).
    fn avc_sample(units: &[(u8, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(kind, len) in units {
            out.extend_from_slice(&((len + 1) as u32).to_be_bytes());
            out.push(0x60 | kind);
            out.extend((0..len).map(|i| i as u8));
        }
        out
    }

    #[test]
    fn slices_are_encrypted_in_whole_blocks_and_parameter_sets_stay_clear() {
        // SPS (7) and PPS (8) clear, then an IDR slice (5) of 100 payload bytes: 96 encrypted.
        let clear = avc_sample(&[(7, 20), (8, 4), (5, 100)]);
        let mut sample = clear.clone();
        let aux = encrypt_sample(Scheme::Cenc, sample_iv(1, 9), AVC, &mut sample).unwrap();
        assert_eq!(aux.subsamples, [Subsample { clear: (25 + 9 + 5 + 4) as u16, protected: 96 }]);
        assert_eq!(aux.iv, Some([0, 1, 0, 0, 0, 0, 0, 9]));
        let clear_len = usize::from(aux.subsamples[0].clear);
        assert_eq!(sample[..clear_len], clear[..clear_len]);
        assert_ne!(sample[clear_len..], clear[clear_len..]);
        // The same key and IV decrypt it (CTR is its own inverse), over the same subsamples.
        let mut again = sample.clone();
        let mut counter = [0u8; 16];
        counter[..8].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 9]);
        Ctr::new(&[7; 16].into(), &counter.into()).apply_keystream(&mut again[clear_len..]);
        assert_eq!(again, clear);
    }

    #[test]
    fn the_keystream_runs_on_across_subsamples() {
        let clear = avc_sample(&[(1, 40), (6, 3), (1, 40)]);
        let mut sample = clear.clone();
        let aux = encrypt_sample(Scheme::Cenc, [0; 8], AVC, &mut sample).unwrap();
        assert_eq!(
            aux.subsamples,
            [Subsample { clear: 4 + 1 + 8, protected: 32 }, Subsample { clear: 8 + 4 + 1 + 8, protected: 32 }]
        );
        // Decrypting the protected bytes as one stream gives them back.
        let mut protected: Vec<u8> = Vec::new();
        let mut at = 0;
        for s in &aux.subsamples {
            at += usize::from(s.clear);
            protected.extend_from_slice(&sample[at..at + s.protected as usize]);
            at += s.protected as usize;
        }
        Ctr::new(&[7; 16].into(), &[0; 16].into()).apply_keystream(&mut protected);
        assert_eq!(protected[..32], clear[13..45]);
        assert_eq!(protected[32..], clear[66..98]);
    }

    #[test]
    fn cbcs_leaves_the_slice_header_clear_and_describes_audio_by_subsamples() {
        // An SPS, a slice of 200 bytes (32 clear, then 8 clear to leave whole blocks, then 160
        // protected, up to its end), a slice too short to encrypt (40 bytes).
        let clear = avc_sample(&[(7, 20), (1, 199), (1, 39)]);
        let aux = sample_aux(Scheme::Cbcs, [9; 8], AVC, &clear).unwrap();
        assert_eq!(aux.iv, None, "cbcs has a constant IV");
        assert_eq!(
            aux.subsamples,
            [Subsample { clear: 25 + 4 + 32 + 8, protected: 160 }, Subsample { clear: 44, protected: 0 }]
        );
        // HEVC: a TRAIL_R slice (type 1, two header bytes) leaves the same 32 bytes clear.
        let mut hevc_slice = 200u32.to_be_bytes().to_vec();
        hevc_slice.extend([0x02, 0x01]);
        hevc_slice.extend([0xAB; 198]);
        let hevc = SampleLayout::Nal { length_size: 4, hevc: true };
        let aux = sample_aux(Scheme::Cbcs, [0; 8], hevc, &hevc_slice).unwrap();
        assert_eq!(aux.subsamples, [Subsample { clear: 4 + 40, protected: 160 }]);
        // Audio: its whole blocks protected, the rest clear; none when shorter than a block.
        let audio = sample_aux(Scheme::Cbcs, [0; 8], SampleLayout::Whole, &[0; 100]).unwrap();
        assert_eq!(audio.subsamples, [Subsample { clear: 0, protected: 96 }, Subsample { clear: 4, protected: 0 }]);
        let short = sample_aux(Scheme::Cbcs, [0; 8], SampleLayout::Whole, &[0; 10]).unwrap();
        assert_eq!(short.subsamples, [Subsample { clear: 10, protected: 0 }]);
        assert!(
            has_subsamples(Scheme::Cbcs, SampleLayout::Whole) && !has_subsamples(Scheme::Cenc, SampleLayout::Whole)
        );
    }

    #[test]
    fn audio_is_encrypted_whole_and_a_bad_sample_is_refused_untouched() {
        let mut sample = vec![0x21; 300];
        let aux = encrypt_sample(Scheme::Cenc, [0; 8], SampleLayout::Whole, &mut sample).unwrap();
        assert!(aux.subsamples.is_empty() && sample.iter().any(|&b| b != 0x21));
        for scheme in [Scheme::Cenc, Scheme::Cbcs] {
            let mut bad = avc_sample(&[(5, 50)]);
            bad.truncate(30);
            let before = bad.clone();
            assert!(encrypt_sample(scheme, [0; 8], AVC, &mut bad).is_err());
            assert_eq!(bad, before);
        }
    }

    #[test]
    fn many_slices_fit_the_one_byte_size_of_saiz() {
        let units: Vec<(u8, usize)> = (0..60).map(|_| (1, 40)).collect();
        let mut sample = avc_sample(&units);
        let total = sample.len();
        let aux = encrypt_sample(Scheme::Cenc, [0; 8], AVC, &mut sample).unwrap();
        assert_eq!(aux.subsamples.len(), MAX_SUBSAMPLES);
        let covered: usize = aux.subsamples.iter().map(|s| usize::from(s.clear) + s.protected as usize).sum();
        assert_eq!(covered, total);
        assert!(8 + 2 + 6 * aux.subsamples.len() <= 255);
        let big = describe(vec![(70_000, 16)]);
        assert_eq!(big, [Subsample { clear: u16::MAX, protected: 0 }, Subsample { clear: 4_465, protected: 16 }]);
    }
}
