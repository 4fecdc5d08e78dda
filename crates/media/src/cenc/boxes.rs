//! PURE: the boxes of common encryption: a protected sample entry (`encv`/`enca` with `sinf`:
//! `frma`, `schm`, `schi`/`tenc`), a fragment's sample auxiliary information (`senc`, with `saiz`
//! and `saio` pointing at it), and `pssh`.

use bytes::{BufMut, Bytes, BytesMut};

use super::{KeyId, SampleAux, SampleLayout, Signalling};
use crate::PackagingError;
use crate::codec;
use crate::fmp4::{write_box, write_full_box};
use crate::mp4::boxes;

/// A DRM system's id, as `pssh` and DASH's `ContentProtection` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemId(pub [u8; 16]);

impl SystemId {
    /// W3C's common PSSH format (`1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`): the KIDs and nothing
    /// else, what ClearKey in a browser reads from the init segment.
    pub const COMMON: SystemId =
        SystemId([0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b]);
    /// Widevine (`edef8ba9-79d6-4ace-a3c8-27dcd51d21ed`).
    pub const WIDEVINE: SystemId =
        SystemId([0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed]);
    /// PlayReady (`9a04f079-9840-4286-ab92-e65be0885f95`).
    pub const PLAYREADY: SystemId =
        SystemId([0x9a, 0x04, 0xf0, 0x79, 0x98, 0x40, 0x42, 0x86, 0xab, 0x92, 0xe6, 0x5b, 0xe0, 0x88, 0x5f, 0x95]);
    /// ClearKey as DASH-IF names it in an MPD (`e2719d58-a985-b3c9-781a-b030af78d30e`).
    pub const CLEARKEY_DASH: SystemId =
        SystemId([0xe2, 0x71, 0x9d, 0x58, 0xa9, 0x85, 0xb3, 0xc9, 0x78, 0x1a, 0xb0, 0x30, 0xaf, 0x78, 0xd3, 0x0e]);

    /// `urn:uuid:...` as `ContentProtection@schemeIdUri` and HLS `KEYFORMAT` write it.
    pub fn urn(&self) -> String {
        format!("urn:uuid:{}", KeyId(self.0).uuid())
    }
}

/// Writes a `pssh` box for `system`: version 1 listing `kids` (version 0 when there are none), with
/// the system's own `data`.
pub fn write_pssh(b: &mut BytesMut, system: &SystemId, kids: &[KeyId], data: &[u8]) {
    let version = u8::from(!kids.is_empty());
    write_full_box(b, b"pssh", version, 0, |b| {
        b.put_slice(&system.0);
        if !kids.is_empty() {
            b.put_u32(kids.len() as u32);
            kids.iter().for_each(|k| b.put_slice(&k.0));
        }
        b.put_u32(data.len() as u32);
        b.put_slice(data);
    });
}

/// Bytes of one sample's auxiliary information: its IV (`cenc`), and its subsamples when the track
/// has them.
pub fn aux_info_len(aux: &SampleAux, subsamples: bool) -> usize {
    aux.iv.map_or(0, |iv| iv.len()) + if subsamples { 2 + 6 * aux.subsamples.len() } else { 0 }
}

/// Writes `senc`, then `saiz` and `saio` that point at its entries, into the `traf` being written
/// at the end of `b`, whose `moof` starts at `moof_start` (the base of `saio`'s offset, as
/// `tfhd`'s default-base-is-moof makes it). `subsamples`: the track is encrypted by subsamples.
pub fn write_sample_aux(b: &mut BytesMut, moof_start: usize, aux: &[SampleAux], subsamples: bool) {
    let mut first_entry = 0;
    write_full_box(b, b"senc", 0, if subsamples { 0x2 } else { 0 }, |b| {
        b.put_u32(aux.len() as u32);
        first_entry = b.len();
        for a in aux {
            if let Some(iv) = &a.iv {
                b.put_slice(iv);
            }
            if subsamples {
                b.put_u16(a.subsamples.len() as u16);
                for s in &a.subsamples {
                    b.put_u16(s.clear);
                    b.put_u32(s.protected);
                }
            }
        }
    });
    let sizes: Vec<u8> = aux.iter().map(|a| aux_info_len(a, subsamples).min(255) as u8).collect();
    let default = match sizes.first() {
        Some(&first) if sizes.iter().all(|&s| s == first) => first,
        _ => 0,
    };
    write_full_box(b, b"saiz", 0, 0, |b| {
        b.put_u8(default);
        b.put_u32(sizes.len() as u32);
        if default == 0 {
            b.put_slice(&sizes);
        }
    });
    write_full_box(b, b"saio", 0, 0, |b| {
        b.put_u32(1);
        b.put_u32((first_entry - moof_start) as u32);
    });
}

/// `sbgp` and `sgpd` of grouping type `seig` for a fragment of `samples` samples of a `video` (or
/// audio) track: every sample under `signalling`'s KID, scheme and IV size (fragment-local group
/// 1, index 0x10001), which overrides the init's `tenc`. How a rotated key is named in each
/// fragment (ISO/IEC 23001-7, 6; players look it up by KID).
pub fn write_seig_group(b: &mut BytesMut, signalling: &Signalling, video: bool, samples: u32) {
    let layout = if video { SampleLayout::Nal { length_size: 4, hevc: false } } else { SampleLayout::Whole };
    let pattern = signalling.scheme.pattern(layout);
    write_full_box(b, b"sbgp", 0, 0, |b| {
        b.put_slice(b"seig");
        b.put_u32(1);
        b.put_u32(samples);
        b.put_u32(0x1_0001);
    });
    let entry_len: u32 = if pattern.is_some() { 20 + 17 } else { 20 };
    write_full_box(b, b"sgpd", 1, 0, |b| {
        b.put_slice(b"seig");
        b.put_u32(entry_len);
        b.put_u32(1);
        b.put_u8(0);
        let (crypt, skip) = pattern.unwrap_or_default();
        b.put_u8((crypt << 4) | skip);
        b.put_u8(1);
        b.put_u8(if pattern.is_some() { 0 } else { 8 });
        b.put_slice(&signalling.kid.0);
        if pattern.is_some() {
            b.put_u8(16);
            b.put_slice(&signalling.constant_iv);
        }
    });
}

/// The bytes [`write_sample_aux`] writes for `aux`.
pub(crate) fn sample_aux_len(aux: &[SampleAux], subsamples: bool) -> usize {
    let senc = 12 + 4 + aux.iter().map(|a| aux_info_len(a, subsamples)).sum::<usize>();
    let uniform = aux.windows(2).all(|w| aux_info_len(&w[0], subsamples) == aux_info_len(&w[1], subsamples));
    let saiz = 12 + 1 + 4 + if uniform && !aux.is_empty() { 0 } else { aux.len() };
    let saio = 12 + 4 + 4;
    senc + saiz + saio
}

/// A `stsd` box (header included) whose first sample entry says it is protected as `signalling`
/// says: `encv` (video) or `enca` (audio) holding the original entry and a `sinf` naming its
/// format, the scheme and the default KID; `cenc` with 8-byte IVs, `cbcs` with its pattern (1:9
/// video, 1:0 audio) and constant IV. Other entries are kept as they are.
pub fn protect_stsd(stsd: &[u8], signalling: &Signalling) -> Result<Bytes, PackagingError> {
    let stsd_box = boxes::boxes(stsd).next().ok_or_else(|| PackagingError::malformed("empty stsd"))??;
    let payload = stsd_box.payload;
    let (head, entries) = payload.split_at_checked(8).ok_or_else(|| PackagingError::malformed("stsd is too short"))?;
    let entry = boxes::boxes(entries).next().ok_or_else(|| PackagingError::malformed("stsd has no sample entry"))??;
    let video = codec::is_video_entry(&entry.kind);
    let protected_kind = if video { b"encv" } else { b"enca" };
    let layout = if video { SampleLayout::Nal { length_size: 4, hevc: false } } else { SampleLayout::Whole };
    let pattern = signalling.scheme.pattern(layout);
    let mut out = BytesMut::with_capacity(stsd.len() + 80);
    write_box(&mut out, b"stsd", |b| {
        b.put_slice(head);
        write_box(b, protected_kind, |b| {
            b.put_slice(entry.payload);
            write_box(b, b"sinf", |b| {
                write_box(b, b"frma", |b| b.put_slice(&entry.kind));
                write_full_box(b, b"schm", 0, 0, |b| {
                    b.put_slice(signalling.scheme.fourcc());
                    b.put_u32(0x0001_0000);
                });
                write_box(b, b"schi", |b| {
                    // Version 1 carries the pattern; `cbcs` has no per-sample IV but a constant one.
                    write_full_box(b, b"tenc", u8::from(pattern.is_some()), 0, |b| {
                        b.put_u8(0); // reserved
                        let (crypt, skip) = pattern.unwrap_or_default();
                        b.put_u8((crypt << 4) | skip);
                        b.put_u8(1); // default_isProtected
                        b.put_u8(if pattern.is_some() { 0 } else { 8 }); // default_Per_Sample_IV_Size
                        b.put_slice(&signalling.kid.0);
                        if pattern.is_some() {
                            b.put_u8(16);
                            b.put_slice(&signalling.constant_iv);
                        }
                    });
                });
            });
        });
        b.put_slice(&entries[entry.bytes.len()..]);
    });
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cenc::{Scheme, Subsample};

    #[test]
    fn sample_aux_boxes_point_at_their_entries() {
        let aux = vec![
            SampleAux { iv: Some([1; 8]), subsamples: vec![Subsample { clear: 5, protected: 32 }] },
            SampleAux {
                iv: Some([2; 8]),
                subsamples: vec![Subsample { clear: 5, protected: 16 }, Subsample { clear: 9, protected: 0 }],
            },
        ];
        let mut b = BytesMut::new();
        b.put_slice(b"0123456789");
        write_sample_aux(&mut b, 4, &aux, true);
        assert_eq!(b.len() - 10, sample_aux_len(&aux, true));
        let boxes: Vec<_> = boxes::boxes(&b[10..]).map(Result::unwrap).collect();
        let kinds: Vec<&[u8; 4]> = boxes.iter().map(|x| &x.kind).collect();
        assert_eq!(kinds, [b"senc", b"saiz", b"saio"]);
        // saio's offset (from byte 4) lands on the first IV.
        let offset = u32::from_be_bytes(boxes[2].payload[8..12].try_into().unwrap()) as usize;
        assert_eq!(b[4 + offset..4 + offset + 8], [1; 8]);
        // Two sizes (16 and 22 bytes), listed one per sample.
        assert_eq!(boxes[1].payload[4..], [0, 0, 0, 0, 2, 16, 22]);
    }

    #[test]
    fn a_protected_entry_keeps_the_original_and_names_it() {
        let mut entry = BytesMut::new();
        write_box(&mut entry, b"mp4a", |b| b.put_bytes(0, 28));
        let mut stsd = BytesMut::new();
        write_box(&mut stsd, b"stsd", |b| {
            b.put_u32(0);
            b.put_u32(1);
            b.put_slice(&entry);
        });
        let kid = KeyId([9; 16]);
        let protected = protect_stsd(&stsd, &Signalling::common(kid)).unwrap();
        let outer = boxes::boxes(&protected).next().unwrap().unwrap();
        let enca = boxes::boxes(&outer.payload[8..]).next().unwrap().unwrap();
        assert_eq!(&enca.kind, b"enca");
        assert_eq!(enca.payload[..28], [0; 28]);
        let sinf = boxes::find(&enca.payload[28..], b"sinf").unwrap().unwrap();
        assert_eq!(boxes::find(sinf.payload, b"frma").unwrap().unwrap().payload, b"mp4a");
        let schi = boxes::find(sinf.payload, b"schi").unwrap().unwrap();
        let tenc = boxes::find(schi.payload, b"tenc").unwrap().unwrap();
        assert_eq!(tenc.payload[4..8], [0, 0, 1, 8]);
        assert_eq!(tenc.payload[8..], [9; 16]);
        assert!(protect_stsd(b"\0\0\0\x10stsd\0\0\0\0\0\0\0\x01", &Signalling::common(kid)).is_err());

        // cbcs: its scheme, tenc version 1 with the audio pattern (1:0), no per-sample IV, and
        // the constant IV after the KID.
        let cbcs = Signalling { scheme: Scheme::Cbcs, constant_iv: [5; 16], ..Signalling::common(kid) };
        let protected = protect_stsd(&stsd, &cbcs).unwrap();
        let sinf_at = protected.windows(4).position(|w| w == b"schm").unwrap();
        assert_eq!(&protected[sinf_at + 8..sinf_at + 12], b"cbcs");
        let tenc_at = protected.windows(4).position(|w| w == b"tenc").unwrap();
        let tenc = &protected[tenc_at + 4..];
        assert_eq!(tenc[..8], [1, 0, 0, 0, 0, 0x10, 1, 0]);
        assert_eq!(tenc[8..24], [9; 16]);
        assert_eq!(tenc[24], 16);
        assert_eq!(tenc[25..41], [5; 16]);
    }

    #[test]
    fn pssh_lists_its_kids() {
        let mut b = BytesMut::new();
        write_pssh(&mut b, &SystemId::COMMON, &[KeyId([3; 16])], &[]);
        assert_eq!(b.len(), 12 + 16 + 4 + 16 + 4);
        assert_eq!(b[8], 1, "version 1");
        assert_eq!(SystemId::WIDEVINE.urn(), "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed");
    }
}
