//! PURE: common encryption of fMP4 as encoders push it (live): a pushed init segment of one track
//! made protected (estuary's own init: track 1, the protected sample entry, the `pssh` boxes), and
//! a pushed media segment re-written as one protected fragment, its samples encrypted. With key
//! rotation each fragment names its own key: the common `pssh` in `moof` and a `seig` sample group
//! that overrides the init's `tenc`.
//!
//! Invariants: a segment estuary cannot read (two tracks, a track the init lacks, samples outside
//! their `mdat`) is an error, never passed through clear; IVs follow from the rendition, the
//! segment number and the sample's place, so every pod writes the same bytes and no two samples
//! share a `cenc` IV under one key.

use bytes::{BufMut, Bytes, BytesMut};

use super::{SampleCipher, SampleLayout, Signalling, has_subsamples, init_pssh, protect_stsd, sample_aux, sample_iv};
use crate::PackagingError;
use crate::fmp4::parse::{InitInfo, parse_init, parse_segment};
use crate::fmp4::{self, FragmentProtection, FragmentSamples, InitTrack, SampleFlags};
use crate::mp4::TrackKind;

/// Most samples of one pushed segment (the IV holds the sample's place in 16 bits).
pub const MAX_SEGMENT_SAMPLES: usize = 1 << 16;

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

/// How one pushed segment is sealed.
#[derive(Debug, Clone, Copy)]
pub struct PushedSegment<'a> {
    /// The segment's number (`mfhd`, and the IVs).
    pub msn: u64,
    /// Tells the IVs of this rendition from those of the channel's others under the same key.
    pub iv_track: u16,
    /// Key rotation: the fragment names its key (`pssh` in `moof`, `seig`).
    pub rotated: bool,
    pub signalling: &'a Signalling,
}

/// The pushed media segment `segment` of the track `init` describes, as one protected fragment.
pub fn protect_pushed_segment(
    segment: &Bytes,
    init: &[u8],
    cipher: &SampleCipher,
    s: PushedSegment<'_>,
) -> Result<Bytes, PackagingError> {
    let info: InitInfo = parse_init(init)?;
    let runs = parse_segment(segment, &info)?;
    let [run] = runs.as_slice() else {
        return Err(PackagingError::malformed("a protected rendition's segments must carry exactly one track"));
    };
    if run.samples.len() > MAX_SEGMENT_SAMPLES {
        return Err(PackagingError::malformed("more than 65,536 samples in one segment"));
    }
    let track = info.track(run.track_id).ok_or_else(|| PackagingError::malformed("a fragment of an unknown track"))?;
    let layout = SampleLayout::of_stsd(&track.stsd)?;
    let scheme = cipher.scheme();
    let aux = run
        .data
        .iter()
        .enumerate()
        .map(|(i, sample)| sample_aux(scheme, sample_iv(s.iv_track, (s.msn << 16) | i as u64), layout, sample))
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
    let mut body = fmp4::write_segment_header(&fragment, data_len, data_len);
    for (sample, aux) in run.data.iter().zip(&aux) {
        let start = body.len();
        body.put_slice(sample);
        cipher.encrypt_in_place(layout, aux, &mut body[start..])?;
    }
    Ok(body.freeze())
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

        let s = PushedSegment { msn: 7, iv_track: 0, rotated: true, signalling: &signalling };
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
            let aux = sample_aux(Scheme::Cenc, sample_iv(0, (7 << 16) | i as u64), layout, clear).unwrap();
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
}
