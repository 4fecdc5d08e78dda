//! PURE: common encryption of fMP4 as encoders push it (live): a pushed init segment of one track
//! made protected (estuary's own init: track 1, the protected sample entry, the `pssh` boxes), and
//! a pushed media segment (or LL part) re-written fragment by fragment, protected, its samples
//! encrypted: a segment seals to its sealed parts one after the other. With key rotation each
//! fragment names its own key: the common `pssh` in `moof` and a `seig` sample group that
//! overrides the init's `tenc`.
//!
//! Invariants: a segment estuary cannot read (two tracks, a track the init lacks, samples outside
//! their `mdat`) is an error, never passed through clear; IVs follow from the rendition, the
//! segment number and the sample's fragment and place in it, so every pod writes the same bytes,
//! a part and its segment the same ciphertext, and no two samples share a `cenc` IV under one key.

use bytes::{BufMut, Bytes, BytesMut};

use super::{SampleCipher, SampleLayout, Signalling, has_subsamples, init_pssh, protect_stsd, sample_iv};
use crate::PackagingError;
use crate::fmp4::parse::{InitInfo, TrackRun, parse_fragments, parse_init};
use crate::fmp4::{self, FragmentProtection, FragmentSamples, InitTrack, SampleFlags};
use crate::mp4::TrackKind;

/// Most fragments of one pushed segment, and samples of one fragment (the IV holds a sample's
/// place in 8 and 12 bits, after 28 of the segment's number).
const MAX_FRAGMENTS: u32 = 1 << 8;
const MAX_FRAGMENT_SAMPLES: usize = 1 << 12;

/// The pushed init segment `init` (one track) protected as `signalling` says. With key rotation
/// (`rotated`) it carries no `pssh`: each fragment's names its own key, and one in the init would
/// have players ask for a key period's key long gone (hls.js takes it for the current key's).
pub fn protect_pushed_init(init: &[u8], signalling: &Signalling, rotated: bool) -> Result<Bytes, PackagingError> {
    let info = parse_init(init)?;
    let [track] = info.tracks.as_slice() else {
        return Err(PackagingError::malformed("a protected rendition's init segment must have exactly one track"));
    };
    let stsd = protect_stsd(&track.stsd, signalling)?;
    let pssh = if rotated { BytesMut::new() } else { init_pssh(signalling) };
    let init = InitTrack {
        kind: track.kind,
        timescale: track.timescale,
        movie_timescale: info.movie_timescale,
        language: &track.language,
        stsd: &stsd,
        edit: track.edit,
        display: track.display,
        pssh: &pssh,
    };
    Ok(fmp4::write_init(&init))
}

/// How one pushed segment (or LL part of one) is sealed.
#[derive(Debug, Clone, Copy)]
pub struct PushedSegment<'a> {
    /// The segment's number (`mfhd`, and the IVs).
    pub msn: u64,
    /// Tells the IVs of this rendition from those of the channel's others under the same key.
    pub iv_track: u16,
    /// Key rotation: each fragment names its key (`pssh` in `moof`, `seig`).
    pub rotated: bool,
    pub signalling: &'a Signalling,
    /// The place in the segment of the first fragment sealed: 0 for a whole segment, the part's
    /// number for an LL part (one fragment each).
    pub first_fragment: u32,
}

/// The IV number of sample `j` of fragment `k` of segment `msn`: unique per (segment, fragment,
/// sample), whether the fragment is sealed alone (an LL part) or within its segment.
fn iv_number(msn: u64, k: u32, j: usize) -> Result<u64, PackagingError> {
    if k >= MAX_FRAGMENTS {
        return Err(PackagingError::malformed(format!("more than {MAX_FRAGMENTS} fragments in one segment")));
    }
    if j >= MAX_FRAGMENT_SAMPLES {
        return Err(PackagingError::malformed(format!("more than {MAX_FRAGMENT_SAMPLES} samples in one fragment")));
    }
    Ok((msn << 20) | (u64::from(k) << 12) | j as u64)
}

/// The pushed media segment `segment` (or an LL part of it) of the track `init` describes, each
/// fragment protected where it stands: the boxes before it kept (`styp`, `prft`, `emsg`; a `sidx`,
/// which would no longer fit, dropped). A segment made of its parts seals to its sealed parts, one
/// after the other.
pub fn protect_pushed_segment(
    segment: &Bytes,
    init: &[u8],
    cipher: &SampleCipher,
    s: PushedSegment<'_>,
) -> Result<Bytes, PackagingError> {
    let info: InitInfo = parse_init(init)?;
    let fragments = parse_fragments(segment, &info)?;
    // Each track's sample layout and slice-header reader, worked out once for every fragment.
    let readers: Vec<TrackReader<'_>> = info
        .tracks
        .iter()
        .map(|t| TrackReader {
            track: t,
            layout: SampleLayout::of_stsd(&t.stsd),
            headers: super::SliceHeaders::of_stsd(&t.stsd),
        })
        .collect();
    let mut out = BytesMut::with_capacity(segment.len() + segment.len() / 16 + 1024);
    for (i, fragment) in fragments.iter().enumerate() {
        for b in crate::mp4::boxes::boxes(&segment[fragment.lead..fragment.moof]) {
            let b = b?;
            if &b.kind != b"sidx" {
                out.put_slice(b.bytes);
            }
        }
        let k = s.first_fragment.saturating_add(i as u32);
        protect_fragment(&fragment.runs, &readers, cipher, s, k, &mut out)?;
    }
    Ok(out.freeze())
}

/// A track of the init, read for encryption.
struct TrackReader<'a> {
    track: &'a crate::fmp4::parse::InitTrackInfo,
    layout: Result<SampleLayout, PackagingError>,
    headers: super::SliceHeaders,
}

/// One fragment's samples (one track), protected, as a `moof` + `mdat` appended to `out`.
fn protect_fragment(
    runs: &[TrackRun],
    readers: &[TrackReader<'_>],
    cipher: &SampleCipher,
    s: PushedSegment<'_>,
    k: u32,
    out: &mut BytesMut,
) -> Result<(), PackagingError> {
    let [run] = runs else {
        return Err(PackagingError::malformed("a protected rendition's segments must carry exactly one track"));
    };
    let reader = readers
        .iter()
        .find(|r| r.track.track_id == run.track_id)
        .ok_or_else(|| PackagingError::malformed("a fragment of an unknown track"))?;
    let (track, layout, headers) = (reader.track, reader.layout.clone()?, &reader.headers);
    let scheme = cipher.scheme();
    let aux = run
        .data
        .iter()
        .enumerate()
        .map(|(j, sample)| {
            let iv = sample_iv(s.iv_track, iv_number(s.msn, k, j)?);
            super::sample_aux_with(scheme, iv, (layout, headers), sample)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let durations: Vec<u32> = run.samples.iter().map(|x| x.duration).collect();
    let sizes: Vec<u32> = run.samples.iter().map(|x| x.size).collect();
    let cts: Vec<i32> = run.samples.iter().map(|x| x.cts).collect();
    let sync: Vec<bool> = run.samples.iter().map(|x| x.is_sync()).collect();
    let video = track.kind == TrackKind::Video;
    let (mut moof_boxes, mut traf_boxes) = (BytesMut::new(), BytesMut::new());
    if s.rotated {
        moof_boxes = init_pssh(s.signalling);
        super::write_seig_group(&mut traf_boxes, s.signalling, video, sizes.len() as u32);
    }
    let data_len: usize = sizes.iter().map(|&x| x as usize).sum();
    let fragment = FragmentSamples {
        sequence: s.msn as u32,
        base_decode_time: run.base_decode_time,
        durations: &durations,
        sizes: &sizes,
        cts: run.has_cts.then_some(&cts[..]),
        flags: if video { SampleFlags::PerSample(&sync) } else { SampleFlags::AllSync },
        protection: Some(FragmentProtection {
            aux: &aux,
            subsamples: has_subsamples(scheme, layout),
            moof_boxes: &moof_boxes,
            traf_boxes: &traf_boxes,
        }),
    };
    // The header without the `styp` estuary's writer opens a segment with: the pushed one is kept.
    let header = fmp4::write_segment_header(&fragment, data_len, data_len);
    out.put_slice(header.get(fmp4::STYP_LEN..).unwrap_or_default());
    for (sample, aux) in run.data.iter().zip(&aux) {
        let start = out.len();
        out.put_slice(sample);
        cipher.encrypt_in_place(layout, aux, &mut out[start..])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cenc::{ContentKey, KeyId, Scheme, sample_aux};
    use crate::fmp4::parse::parse_segment;

    const INIT: &[u8] = include_bytes!("../../../../assets/sample/hls/init.mp4");
    const SEGMENT: &[u8] = include_bytes!("../../../../assets/sample/hls/seg_000.m4s");

    /// The sample's first track as an encoder pushing one track per rendition would: its init and
    /// its segment, in estuary's own writers.
    fn one_track() -> (Bytes, Bytes) {
        let info = parse_init(INIT).unwrap();
        let track = &info.tracks[0];
        let init = fmp4::write_init(&InitTrack {
            kind: track.kind,
            timescale: track.timescale,
            movie_timescale: info.movie_timescale,
            language: &track.language,
            stsd: &track.stsd,
            edit: track.edit,
            display: track.display,
            pssh: &[],
        });
        let run = parse_segment(&Bytes::from_static(SEGMENT), &info)
            .unwrap()
            .into_iter()
            .find(|r| r.track_id == track.track_id)
            .unwrap();
        let (durations, sizes): (Vec<u32>, Vec<u32>) = run.samples.iter().map(|s| (s.duration, s.size)).unzip();
        let cts: Vec<i32> = run.samples.iter().map(|s| s.cts).collect();
        let sync: Vec<bool> = run.samples.iter().map(|s| s.is_sync()).collect();
        let fragment = FragmentSamples {
            sequence: 1,
            base_decode_time: run.base_decode_time,
            durations: &durations,
            sizes: &sizes,
            cts: Some(&cts),
            flags: SampleFlags::PerSample(&sync),
            protection: None,
        };
        let data: Vec<&[u8]> = run.data.iter().map(|d| &d[..]).collect();
        (init, fmp4::write_segment(&fragment, &data))
    }

    #[test]
    fn a_pushed_segment_is_rewritten_protected_and_decrypts_sample_by_sample() {
        let (init, segment) = one_track();
        let key = ContentKey::new(KeyId([3; 16]), [9; 16]);
        let cipher = SampleCipher::new(&key, Scheme::Cenc);
        let signalling = Signalling::common(key.kid);
        let protected_init = protect_pushed_init(&init, &signalling, false).unwrap();
        assert!(protected_init.windows(4).any(|w| w == b"tenc") && protected_init.windows(4).any(|w| w == b"pssh"));
        let rotated_init = protect_pushed_init(&init, &signalling, true).unwrap();
        assert!(!rotated_init.windows(4).any(|w| w == b"pssh"), "no pssh in the init when keys rotate");

        let s = PushedSegment { msn: 7, iv_track: 0, rotated: true, signalling: &signalling, first_fragment: 0 };
        let sealed = protect_pushed_segment(&segment, &init, &cipher, s).unwrap();
        for name in [b"senc", b"saiz", b"saio", b"seig", b"pssh"] {
            assert!(sealed.windows(4).any(|w| w == name), "{}", String::from_utf8_lossy(name));
        }
        // The same samples, in the same order and sizes, each decrypting to the clear one.
        let info = parse_init(&init).unwrap();
        let clear = parse_segment(&segment, &info).unwrap().remove(0);
        let ours = parse_segment(&sealed, &info).unwrap().remove(0);
        assert_eq!(ours.samples, clear.samples);
        assert_eq!(ours.base_decode_time, clear.base_decode_time);
        let layout = SampleLayout::of_stsd(&info.tracks[0].stsd).unwrap();
        for (i, (sealed, clear)) in ours.data.iter().zip(&clear.data).enumerate() {
            let aux = sample_aux(Scheme::Cenc, sample_iv(0, (7 << 20) | i as u64), layout, clear).unwrap();
            let mut opened = sealed.to_vec();
            cipher.encrypt_in_place(layout, &aux, &mut opened).unwrap();
            assert_eq!(&opened[..], &clear[..], "sample {i}");
        }
        // What cannot be read is refused, never passed on clear.
        assert!(protect_pushed_segment(&Bytes::from_static(b"junk"), &init, &cipher, s).is_err());
        // The sample's own init carries video and audio: a rendition of two tracks is refused.
        assert_eq!(parse_init(INIT).unwrap().tracks.len(), 2);
        assert!(protect_pushed_init(INIT, &signalling, false).is_err());
        assert!(protect_pushed_segment(&Bytes::from_static(SEGMENT), INIT, &cipher, s).is_err());
    }

    #[test]
    fn a_segment_made_of_parts_seals_to_its_sealed_parts() {
        let (init, segment) = one_track();
        let info = parse_init(&init).unwrap();
        let run = parse_segment(&segment, &info).unwrap().remove(0);
        let half = run.samples.len() / 2;
        // The segment as an LL encoder pushes it: two fragments, the second part without a styp.
        let fragment = |range: std::ops::Range<usize>, base: u64| {
            let samples = &run.samples[range.clone()];
            let (durations, sizes): (Vec<u32>, Vec<u32>) = samples.iter().map(|s| (s.duration, s.size)).unzip();
            let cts: Vec<i32> = samples.iter().map(|s| s.cts).collect();
            let sync: Vec<bool> = samples.iter().map(|s| s.is_sync()).collect();
            let f = FragmentSamples {
                sequence: 1,
                base_decode_time: base,
                durations: &durations,
                sizes: &sizes,
                cts: Some(&cts),
                flags: SampleFlags::PerSample(&sync),
                protection: None,
            };
            let data: Vec<&[u8]> = run.data[range].iter().map(|d| &d[..]).collect();
            fmp4::write_segment(&f, &data)
        };
        let second_base = run.base_decode_time + run.samples[..half].iter().map(|s| u64::from(s.duration)).sum::<u64>();
        let (part0, part1) = (fragment(0..half, run.base_decode_time), fragment(half..run.samples.len(), second_base));
        let whole = Bytes::from([&part0[..], &part1[fmp4::STYP_LEN..]].concat());
        let key = ContentKey::new(KeyId([3; 16]), [9; 16]);
        let cipher = SampleCipher::new(&key, Scheme::Cenc);
        let signalling = Signalling::common(key.kid);
        let s = PushedSegment { msn: 9, iv_track: 1, rotated: false, signalling: &signalling, first_fragment: 0 };
        let sealed = protect_pushed_segment(&whole, &init, &cipher, s).unwrap();
        let sealed0 = protect_pushed_segment(&part0, &init, &cipher, s).unwrap();
        let sealed1 = protect_pushed_segment(&part1, &init, &cipher, PushedSegment { first_fragment: 1, ..s }).unwrap();
        assert_eq!(&sealed[..], &[&sealed0[..], &sealed1[fmp4::STYP_LEN..]].concat()[..]);
        assert!(sealed.starts_with(&part0[..fmp4::STYP_LEN]), "the pushed styp kept");
        // The second part's samples have IVs of their own: fragment 1's.
        let opened = parse_segment(&sealed1, &info).unwrap().remove(0);
        let layout = SampleLayout::of_stsd(&info.tracks[0].stsd).unwrap();
        for (j, (sealed, clear)) in opened.data.iter().zip(&run.data[half..]).enumerate() {
            let aux = sample_aux(Scheme::Cenc, sample_iv(1, (9 << 20) | (1 << 12) | j as u64), layout, clear).unwrap();
            let mut plain = sealed.to_vec();
            cipher.encrypt_in_place(layout, &aux, &mut plain).unwrap();
            assert_eq!(&plain[..], &clear[..], "sample {j} of the second part");
        }
    }
}
