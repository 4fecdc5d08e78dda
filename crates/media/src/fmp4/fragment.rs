//! Media segments: `styp` + `moof` (`mfhd`, `traf`: `tfhd`, `tfdt`, `trun`) + `mdat`, one track per segment.

use bytes::{BufMut, Bytes, BytesMut};

use super::flags::{
    NON_SYNC, SYNC, TFHD_DEFAULT_BASE_IS_MOOF, TFHD_DEFAULT_FLAGS, TRUN_CTS, TRUN_DATA_OFFSET, TRUN_DURATION,
    TRUN_FLAGS, TRUN_SIZE,
};
use super::init::TRACK_ID;
use super::{write_box, write_full_box};
use crate::cenc::{SampleAux, sample_aux_len, write_sample_aux};

/// How sample flags are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFlags<'a> {
    /// Every sample is a sync sample (audio): one default in `tfhd`.
    AllSync,
    /// Per-sample flags from this sync marker per sample (video).
    PerSample(&'a [bool]),
}

/// The samples of one fragment, in decode order.
#[derive(Debug, Clone, Copy)]
pub struct FragmentSamples<'a> {
    /// `mfhd` sequence number (the segment number).
    pub sequence: u32,
    /// Decode time of the first sample, in the track timescale (`tfdt`).
    pub base_decode_time: u64,
    pub durations: &'a [u32],
    pub sizes: &'a [u32],
    /// Composition offsets, when the track has them.
    pub cts: Option<&'a [i32]>,
    pub flags: SampleFlags<'a>,
    /// The samples' encryption (`senc`, `saiz`, `saio`), when the track is protected.
    pub protection: Option<FragmentProtection<'a>>,
}

/// What a protected fragment tells players of its samples.
#[derive(Debug, Clone, Copy)]
pub struct FragmentProtection<'a> {
    /// Each sample's IV and subsamples, in order.
    pub aux: &'a [SampleAux],
    /// The track is encrypted by subsamples (video).
    pub subsamples: bool,
    /// Written in `moof` before `traf` (key rotation: the `pssh` boxes naming the fragment's key).
    pub moof_boxes: &'a [u8],
    /// Written at the end of `traf` (key rotation: the `seig` sample group, [`crate::cenc::write_seig_group`]).
    pub traf_boxes: &'a [u8],
}

/// Length of the `styp` box that opens every segment: a fragment inside a segment starts after it.
pub const STYP_LEN: usize = 8 + 16;

/// What a segment's `trun` carries per sample, which sets its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunLayout {
    pub samples: usize,
    /// Flags per sample (video: which are sync samples), else one default in `tfhd`.
    pub per_sample_flags: bool,
    /// Composition time offsets per sample.
    pub composition_offsets: bool,
}

/// Bytes a segment adds around the media data of the samples `trun` lists.
pub fn segment_overhead(trun: TrunLayout) -> u64 {
    let per_sample = 8 + if trun.per_sample_flags { 4 } else { 0 } + if trun.composition_offsets { 4 } else { 0 };
    let styp = STYP_LEN as u64;
    let mfhd = 16;
    let tfhd = 16 + if trun.per_sample_flags { 0 } else { 4 };
    let tfdt = 20;
    let trun = 12 + 4 + 4 + per_sample * trun.samples as u64;
    let traf = 8 + tfhd + tfdt + trun;
    let moof = 8 + mfhd + traf;
    styp + moof + 8
}

/// Writes a whole media segment; `payload` holds the samples' bytes in order.
pub fn write_segment(f: &FragmentSamples<'_>, payload: &[&[u8]]) -> Bytes {
    let data_len: usize = payload.iter().map(|p| p.len()).sum();
    let mut b = write_segment_header(f, data_len, data_len);
    for p in payload {
        b.put_slice(p);
    }
    b.freeze()
}

/// Everything of a media segment before its samples' bytes (`styp`, `moof`, the `mdat` header), for
/// `data_len` bytes of samples; room for `reserve` more. The segment is this followed by the samples
/// in order, so it can be sent from memory and the samples streamed from their source.
pub fn write_segment_header(f: &FragmentSamples<'_>, data_len: usize, reserve: usize) -> BytesMut {
    let n = f.sizes.len();
    let per_sample_flags = matches!(f.flags, SampleFlags::PerSample(_));
    let trun = TrunLayout { samples: n, per_sample_flags, composition_offsets: f.cts.is_some() };
    let aux_len =
        f.protection.map_or(0, |p| sample_aux_len(p.aux, p.subsamples) + p.moof_boxes.len() + p.traf_boxes.len());
    let overhead = segment_overhead(trun) as usize + aux_len;
    let mut b = BytesMut::with_capacity(overhead + reserve);

    write_box(&mut b, b"styp", |b| {
        b.put_slice(b"msdh");
        b.put_u32(0);
        b.put_slice(b"msdh");
        b.put_slice(b"msix");
    });
    let moof_start = b.len();
    let mut data_offset_at = 0;
    write_box(&mut b, b"moof", |b| {
        write_full_box(b, b"mfhd", 0, 0, |b| b.put_u32(f.sequence));
        if let Some(p) = f.protection {
            b.put_slice(p.moof_boxes);
        }
        write_box(b, b"traf", |b| {
            let tfhd_flags = TFHD_DEFAULT_BASE_IS_MOOF | if per_sample_flags { 0 } else { TFHD_DEFAULT_FLAGS };
            write_full_box(b, b"tfhd", 0, tfhd_flags, |b| {
                b.put_u32(TRACK_ID);
                if !per_sample_flags {
                    b.put_u32(SYNC);
                }
            });
            write_full_box(b, b"tfdt", 1, 0, |b| b.put_u64(f.base_decode_time));
            let negative_cts = f.cts.is_some_and(|c| c.iter().any(|&o| o < 0));
            let trun_flags = TRUN_DATA_OFFSET
                | TRUN_DURATION
                | TRUN_SIZE
                | if per_sample_flags { TRUN_FLAGS } else { 0 }
                | if f.cts.is_some() { TRUN_CTS } else { 0 };
            write_full_box(b, b"trun", u8::from(negative_cts), trun_flags, |b| {
                b.put_u32(n as u32);
                data_offset_at = b.len();
                b.put_i32(0); // patched below
                for i in 0..n {
                    b.put_u32(f.durations[i]);
                    b.put_u32(f.sizes[i]);
                    if let SampleFlags::PerSample(sync) = f.flags {
                        b.put_u32(if sync.get(i).copied().unwrap_or(false) { SYNC } else { NON_SYNC });
                    }
                    if let Some(cts) = f.cts {
                        b.put_i32(cts.get(i).copied().unwrap_or(0));
                    }
                }
            });
            if let Some(p) = f.protection {
                write_sample_aux(b, moof_start, p.aux, p.subsamples);
                b.put_slice(p.traf_boxes);
            }
        });
    });
    // Data offset: from the start of moof (default-base-is-moof) to the first byte of mdat's payload.
    let data_offset = (b.len() - moof_start + 8) as i32;
    b[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    b.put_u32((data_len + 8) as u32);
    b.put_slice(b"mdat");
    debug_assert_eq!(b.len(), overhead);
    b
}

#[cfg(test)]
mod reparse {
    use super::*;
    use mp4_atom::{Decode, Mdat, Moof, Styp};

    #[test]
    fn segments_reparse_with_mp4_atom_and_point_at_their_data() {
        let payload: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let slices: Vec<&[u8]> = payload.iter().map(Vec::as_slice).collect();
        let sizes: Vec<u32> = payload.iter().map(|p| p.len() as u32).collect();
        let sync = [true, false, false, true, false];
        let cts = [1024, -512, 0, 512, 0];
        let f = FragmentSamples {
            sequence: 7,
            base_decode_time: 90_000,
            durations: &[512; 5],
            sizes: &sizes,
            cts: Some(&cts),
            flags: SampleFlags::PerSample(&sync),
            protection: None,
        };
        let seg = write_segment(&f, &slices);
        assert_eq!(
            seg.len() as u64,
            segment_overhead(TrunLayout { samples: 5, per_sample_flags: true, composition_offsets: true }) + 60
        );

        let mut buf = &seg[..];
        Styp::decode(&mut buf).unwrap();
        let moof_start = seg.len() - buf.len();
        let moof = Moof::decode(&mut buf).unwrap();
        let mdat_start = seg.len() - buf.len();
        let mdat = Mdat::decode(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(moof.mfhd.sequence_number, 7);
        let traf = &moof.traf[0];
        assert!(traf.tfhd.default_base_is_moof);
        assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, 90_000);
        let trun = &traf.trun[0];
        let entries: Vec<_> = trun.samples.iter().collect();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[1].cts, Some(-512));
        assert_eq!(entries[0].flags, Some(SYNC));
        assert_eq!(entries[1].flags, Some(NON_SYNC));
        assert_eq!(entries[4].size, Some(14));
        // data_offset is relative to the moof and lands on the first sample byte.
        let data_at = moof_start + trun.data_offset.unwrap() as usize;
        assert_eq!(data_at, mdat_start + 8);
        assert_eq!(mdat.data, payload.concat());

        let audio = FragmentSamples { cts: None, flags: SampleFlags::AllSync, ..f };
        let seg = write_segment(&audio, &slices);
        let mut buf = &seg[8 + 16..];
        let moof = Moof::decode(&mut buf).unwrap();
        assert_eq!(moof.traf[0].tfhd.default_sample_flags, Some(SYNC));
        assert_eq!(
            seg.len() as u64,
            segment_overhead(TrunLayout { samples: 5, per_sample_flags: false, composition_offsets: false }) + 60
        );
    }
}
