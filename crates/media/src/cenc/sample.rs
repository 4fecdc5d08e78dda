//! PURE: encrypting one sample with `cenc`: which of its bytes stay clear and which are encrypted
//! (its subsamples), and the AES-128 CTR keystream over the encrypted ones, which runs on across a
//! sample's subsamples as ISO/IEC 23001-7 requires.

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};

use super::ContentKey;
use crate::PackagingError;
use crate::codec;
use crate::mp4::boxes::{self, Reader, fourcc_str};

/// AES-128 in CTR mode with a 64-bit big-endian block counter after the 8-byte IV.
type Ctr = ctr::Ctr64BE<Aes128>;

/// Most subsamples one sample's auxiliary information describes: `saiz` gives each sample's
/// size in one byte (8 for the IV, 2 for the count, 6 per subsample).
const MAX_SUBSAMPLES: usize = (u8::MAX as usize - 8 - 2) / 6;

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

/// What a player needs to decrypt one sample: its IV and, for video, its subsamples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleAux {
    pub iv: [u8; 8],
    pub subsamples: Vec<Subsample>,
}

/// The IV of sample `n` (counted from the track's first) of the track numbered `track` among those
/// sharing its key: unique for each (key, track, sample), and the same on every pod, so every pod
/// serves the same bytes.
pub fn sample_iv(track: u16, n: u64) -> [u8; 8] {
    ((u64::from(track) << 48) | (n & 0xFFFF_FFFF_FFFF)).to_be_bytes()
}

/// Encrypts `sample` in place with `key` and `iv`; what to tell the player about it.
pub fn encrypt_sample(
    key: &ContentKey,
    iv: [u8; 8],
    layout: SampleLayout,
    sample: &mut [u8],
) -> Result<SampleAux, PackagingError> {
    let aux = sample_aux(iv, layout, sample)?;
    encrypt_in_place(key, &aux, sample)?;
    Ok(aux)
}

/// What a player will need to decrypt `sample` once encrypted with `iv`: its subsamples follow from
/// its NAL units alone, so a segment's header can be written before its samples are encrypted.
pub fn sample_aux(iv: [u8; 8], layout: SampleLayout, sample: &[u8]) -> Result<SampleAux, PackagingError> {
    let subsamples = match layout {
        SampleLayout::Whole => Vec::new(),
        SampleLayout::Nal { length_size, hevc } => subsamples(sample, length_size, hevc)?,
    };
    Ok(SampleAux { iv, subsamples })
}

/// Encrypts `sample` in place as `aux` says (its IV; its subsamples' protected bytes, or the whole
/// sample when it has none). Subsamples that run past the sample are an error, and nothing is
/// encrypted then.
pub fn encrypt_in_place(key: &ContentKey, aux: &SampleAux, sample: &mut [u8]) -> Result<(), PackagingError> {
    let covered: u64 = aux.subsamples.iter().map(|s| u64::from(s.clear) + u64::from(s.protected)).sum();
    if covered > sample.len() as u64 {
        return Err(PackagingError::malformed("subsamples run past the end of their sample"));
    }
    let mut counter = [0u8; 16];
    counter[..8].copy_from_slice(&aux.iv);
    let mut cipher = Ctr::new(key.secret().into(), &counter.into());
    if aux.subsamples.is_empty() {
        cipher.apply_keystream(sample);
    } else {
        let mut at = 0;
        for s in &aux.subsamples {
            at += usize::from(s.clear);
            let end = at + s.protected as usize;
            cipher.apply_keystream(&mut sample[at..end]);
            at = end;
        }
    }
    Ok(())
}

/// The subsamples of a sample of length-prefixed NAL units: a VCL NAL unit's length and header
/// stay clear, and whatever of its payload is not a whole 16-byte block; other NAL units (parameter
/// sets, SEI, delimiters) stay clear.
fn subsamples(sample: &[u8], length_size: usize, hevc: bool) -> Result<Vec<Subsample>, PackagingError> {
    let truncated = || PackagingError::malformed("a NAL unit runs past the end of its sample");
    let header = if hevc { 2 } else { 1 };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut clear = 0;
    let mut rest = sample;
    while !rest.is_empty() {
        let prefix = rest.get(..length_size).ok_or_else(truncated)?;
        let len = prefix.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let body = rest.get(length_size..length_size + len).ok_or_else(truncated)?;
        let vcl = body.first().is_some_and(|&b| if hevc { (b >> 1) & 0x3F < 32 } else { matches!(b & 0x1F, 1..=5) });
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
    use super::*;
    use crate::cenc::KeyId;

    fn key() -> ContentKey {
        ContentKey::new(KeyId([1; 16]), [7; 16])
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
        let layout = SampleLayout::Nal { length_size: 4, hevc: false };
        let aux = encrypt_sample(&key(), sample_iv(1, 9), layout, &mut sample).unwrap();
        assert_eq!(aux.subsamples, [Subsample { clear: (25 + 9 + 5 + 4) as u16, protected: 96 }]);
        assert_eq!(aux.iv, [0, 1, 0, 0, 0, 0, 0, 9]);
        let clear_len = usize::from(aux.subsamples[0].clear);
        assert_eq!(sample[..clear_len], clear[..clear_len]);
        assert_ne!(sample[clear_len..], clear[clear_len..]);
        // The same key and IV decrypt it (CTR is its own inverse), over the same subsamples.
        let mut again = sample.clone();
        let mut counter = [0u8; 16];
        counter[..8].copy_from_slice(&aux.iv);
        Ctr::new(&[7; 16].into(), &counter.into()).apply_keystream(&mut again[clear_len..]);
        assert_eq!(again, clear);
    }

    #[test]
    fn the_keystream_runs_on_across_subsamples() {
        let clear = avc_sample(&[(1, 40), (6, 3), (1, 40)]);
        let mut sample = clear.clone();
        let layout = SampleLayout::Nal { length_size: 4, hevc: false };
        let aux = encrypt_sample(&key(), [0; 8], layout, &mut sample).unwrap();
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
    fn audio_is_encrypted_whole_and_a_bad_sample_is_refused_untouched() {
        let mut sample = vec![0x21; 300];
        let aux = encrypt_sample(&key(), [0; 8], SampleLayout::Whole, &mut sample).unwrap();
        assert!(aux.subsamples.is_empty() && sample.iter().any(|&b| b != 0x21));
        let mut bad = avc_sample(&[(5, 50)]);
        bad.truncate(30);
        let before = bad.clone();
        assert!(encrypt_sample(&key(), [0; 8], SampleLayout::Nal { length_size: 4, hevc: false }, &mut bad).is_err());
        assert_eq!(bad, before);
        // Auxiliary information that does not fit the sample is refused, the sample untouched.
        let aux = SampleAux { iv: [0; 8], subsamples: vec![Subsample { clear: 10, protected: 32 }] };
        assert!(encrypt_in_place(&key(), &aux, &mut bad).is_err());
        assert_eq!(bad, before);
    }

    #[test]
    fn many_slices_fit_the_one_byte_size_of_saiz() {
        let units: Vec<(u8, usize)> = (0..60).map(|_| (1, 40)).collect();
        let mut sample = avc_sample(&units);
        let total = sample.len();
        let aux =
            encrypt_sample(&key(), [0; 8], SampleLayout::Nal { length_size: 4, hevc: false }, &mut sample).unwrap();
        assert_eq!(aux.subsamples.len(), MAX_SUBSAMPLES);
        let covered: usize = aux.subsamples.iter().map(|s| usize::from(s.clear) + s.protected as usize).sum();
        assert_eq!(covered, total);
        assert!(8 + 2 + 6 * aux.subsamples.len() <= 255);
        let big = describe(vec![(70_000, 16)]);
        assert_eq!(big, [Subsample { clear: u16::MAX, protected: 0 }, Subsample { clear: 4_465, protected: 16 }]);
    }
}
