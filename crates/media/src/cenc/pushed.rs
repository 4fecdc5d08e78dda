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
