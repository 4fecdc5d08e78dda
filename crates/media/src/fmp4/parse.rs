//! Reading fragmented MP4 media segments as encoders push them (`moof`/`mdat` pairs, any number of
//! tracks), split into one sample run per track.

use bytes::Bytes;

use super::flags::{
    IS_NON_SYNC, TFHD_BASE_DATA_OFFSET, TFHD_DEFAULT_DURATION, TFHD_DEFAULT_FLAGS, TFHD_DEFAULT_SIZE,
    TFHD_SAMPLE_DESCRIPTION, TRUN_CTS, TRUN_DATA_OFFSET, TRUN_DURATION, TRUN_FIRST_SAMPLE_FLAGS, TRUN_FLAGS,
    TRUN_PER_SAMPLE, TRUN_SIZE,
};
pub use super::init_info::{InitInfo, InitTrackInfo, looks_like_init, parse_init};
use crate::PackagingError;
use crate::mp4::boxes::{self, Reader, fourcc_str};

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentSample {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    pub cts: i32,
}

impl FragmentSample {
    pub fn is_sync(&self) -> bool {
        self.flags & IS_NON_SYNC == 0
    }
}

/// The samples of one track across a media segment, with their bytes.
#[derive(Debug, Clone)]
pub struct TrackRun {
    pub track_id: u32,
    /// `tfdt` of the first fragment.
    pub base_decode_time: u64,
    pub samples: Vec<FragmentSample>,
    pub data: Vec<Bytes>,
    /// Whether any sample carries a composition offset.
    pub has_cts: bool,
}

impl TrackRun {
    pub fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.size)).sum()
    }
}

/// One `moof` + `mdat` pair of a media segment, with the boxes before it.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// Where the boxes before its `moof` (`styp`, `prft`, `emsg`, ...) start, since the previous
    /// fragment's end.
    pub lead: usize,
    /// Where its `moof` starts.
    pub moof: usize,
    /// Where its `mdat` ends.
    pub end: usize,
    /// Its samples, per track.
    pub runs: Vec<TrackRun>,
}

/// Splits a media segment into one run per track. `init` supplies defaults
/// and the track ids that are allowed; `segment` shares its bytes with the runs.
pub fn parse_segment(segment: &Bytes, init: &InitInfo) -> Result<Vec<TrackRun>, PackagingError> {
    let mut runs: Vec<TrackRun> = Vec::new();
    for fragment in parse_fragments(segment, init)? {
        for run in fragment.runs {
            match runs.iter_mut().find(|r| r.track_id == run.track_id) {
                Some(known) => {
                    known.samples.extend(run.samples);
                    known.data.extend(run.data);
                    known.has_cts |= run.has_cts;
                }
                None => runs.push(run),
            }
        }
    }
    if runs.iter().all(|r| r.samples.is_empty()) {
        return Err(PackagingError::Empty("media segment without samples".into()));
    }
    Ok(runs)
}

/// A media segment's fragments, in order, each with its samples per track.
pub fn parse_fragments(segment: &Bytes, init: &InitInfo) -> Result<Vec<Fragment>, PackagingError> {
    let mut fragments = Vec::new();
    let mut pos = 0usize;
    let mut lead = 0usize;
    let mut pending: Option<(usize, usize)> = None; // moof (start, end)
    for b in boxes::boxes(segment) {
        let b = b?;
        let start = pos;
        pos += b.bytes.len();
        match &b.kind {
            b"moof" => {
                if pending.is_some() {
                    return Err(PackagingError::malformed("two 'moof' boxes without an 'mdat' between them"));
                }
                pending = Some((start, pos));
            }
            b"mdat" => {
                let Some((moof_start, moof_end)) = pending.take() else {
                    return Err(PackagingError::malformed("'mdat' without a 'moof' before it"));
                };
                let mut runs = Vec::new();
                let payload = start + (b.bytes.len() - b.payload.len());
                read_fragment(segment, moof_start, moof_end, payload, pos, init, &mut runs)?;
                fragments.push(Fragment { lead, moof: moof_start, end: pos, runs });
                lead = pos;
            }
            b"styp" | b"sidx" | b"prft" | b"emsg" | b"free" | b"skip" | b"uuid" => {}
            other => {
                return Err(PackagingError::malformed(format!(
                    "unexpected '{}' box in a media segment",
                    fourcc_str(*other)
                )));
            }
        }
    }
    if fragments.is_empty() || pending.is_some() {
        return Err(PackagingError::NotMp4("not an fMP4 media segment (no 'moof' + 'mdat')".into()));
    }
    Ok(fragments)
}

fn read_fragment(
    segment: &Bytes,
    moof_start: usize,
    moof_end: usize,
    mdat_payload_start: usize,
    mdat_end: usize,
    init: &InitInfo,
    runs: &mut Vec<TrackRun>,
) -> Result<(), PackagingError> {
    let moof = &segment[moof_start..moof_end];
    let moof_payload = &moof[8..];
    for traf in boxes::boxes(moof_payload) {
        let traf = traf?;
        if &traf.kind != b"traf" {
            continue;
        }
        let tfhd =
            boxes::find(traf.payload, b"tfhd")?.ok_or_else(|| PackagingError::malformed("'traf' without 'tfhd'"))?;
        let mut r = Reader::new(tfhd.payload, "tfhd");
        let flags = r.u32()? & 0x00ff_ffff;
        let track_id = r.u32()?;
        let track = init.track(track_id).ok_or_else(|| {
            PackagingError::malformed(format!("fragment for track {track_id}, which the init segment does not have"))
        })?;
        let base = if flags & TFHD_BASE_DATA_OFFSET != 0 { r.u64()? as usize } else { moof_start };
        if flags & TFHD_SAMPLE_DESCRIPTION != 0 {
            r.skip(4)?;
        }
        let default_duration = if flags & TFHD_DEFAULT_DURATION != 0 { r.u32()? } else { track.default_duration };
        let default_size = if flags & TFHD_DEFAULT_SIZE != 0 { r.u32()? } else { track.default_size };
        let default_flags = if flags & TFHD_DEFAULT_FLAGS != 0 { r.u32()? } else { track.default_flags };
        let tfdt = match boxes::find(traf.payload, b"tfdt")? {
            Some(t) => {
                let mut r = Reader::new(t.payload, "tfdt");
                if r.u8()? == 1 {
                    r.skip(3)?;
                    r.u64()?
                } else {
                    r.skip(3)?;
                    u64::from(r.u32()?)
                }
            }
            None => return Err(PackagingError::malformed("'traf' without 'tfdt'")),
        };
        let idx = match runs.iter().position(|r| r.track_id == track_id) {
            Some(i) => i,
            None => {
                runs.push(TrackRun {
                    track_id,
                    base_decode_time: tfdt,
                    samples: Vec::new(),
                    data: Vec::new(),
                    has_cts: false,
                });
                runs.len() - 1
            }
        };
        let mut next_offset = base;
        for trun in boxes::boxes(traf.payload) {
            let trun = trun?;
            if &trun.kind != b"trun" {
                continue;
            }
            let mut r = Reader::new(trun.payload, "trun");
            let vf = r.u32()?;
            let (version, tf) = (vf >> 24, vf & 0x00ff_ffff);
            let count = r.u32()? as usize;
            // Each sample needs at least its listed fields: refuse counts the box cannot hold.
            let per = TRUN_PER_SAMPLE.iter().filter(|&&f| tf & f != 0).count() * 4;
            if per > 0 && count > trun.payload.len() / per {
                return Err(PackagingError::malformed("trun sample count larger than the box"));
            }
            if count > 1_000_000 {
                return Err(PackagingError::TooLarge(format!("{count} samples in one fragment")));
            }
            let mut offset = if tf & TRUN_DATA_OFFSET != 0 {
                (base as i64 + i64::from(r.u32()? as i32)) as usize
            } else {
                next_offset
            };
            let first_flags = if tf & TRUN_FIRST_SAMPLE_FLAGS != 0 { Some(r.u32()?) } else { None };
            let run = &mut runs[idx];
            for i in 0..count {
                let duration = if tf & TRUN_DURATION != 0 { r.u32()? } else { default_duration };
                let size = if tf & TRUN_SIZE != 0 { r.u32()? } else { default_size };
                let flags = if tf & TRUN_FLAGS != 0 {
                    r.u32()?
                } else if i == 0 {
                    first_flags.unwrap_or(default_flags)
                } else {
                    default_flags
                };
                let cts = if tf & TRUN_CTS != 0 {
                    let raw = r.u32()?;
                    if version == 0 && raw > i32::MAX as u32 { i32::MAX } else { raw as i32 }
                } else {
                    0
                };
                let end = offset.checked_add(size as usize).filter(|&e| offset >= mdat_payload_start && e <= mdat_end);
                let Some(end) = end else {
                    return Err(PackagingError::Truncated(format!(
                        "track {track_id} sample {i} lies outside its 'mdat'"
                    )));
                };
                run.data.push(segment.slice(offset..end));
                run.has_cts |= cts != 0;
                run.samples.push(FragmentSample { duration, size, flags, cts });
                offset = end;
            }
            next_offset = offset;
        }
    }
    Ok(())
}

/// Structural check of a media segment before its init is known: `moof` + `mdat`
/// pairs whose `traf`s have `tfhd`, `tfdt` and `trun`.
pub fn check_segment(data: &[u8]) -> Result<(), PackagingError> {
    let mut moofs = 0;
    let mut expect_mdat = false;
    for b in boxes::boxes(data) {
        let b = b?;
        match &b.kind {
            b"moof" => {
                if expect_mdat {
                    return Err(PackagingError::malformed("two 'moof' boxes without an 'mdat' between them"));
                }
                let mut trafs = 0;
                for traf in boxes::boxes(b.payload) {
                    let traf = traf?;
                    if &traf.kind == b"traf" {
                        trafs += 1;
                        for need in [b"tfhd", b"tfdt", b"trun"] {
                            if boxes::find(traf.payload, need)?.is_none() {
                                return Err(PackagingError::malformed(format!(
                                    "'traf' without '{}'",
                                    fourcc_str(*need)
                                )));
                            }
                        }
                    }
                }
                if trafs == 0 {
                    return Err(PackagingError::malformed("'moof' without 'traf'"));
                }
                moofs += 1;
                expect_mdat = true;
            }
            b"mdat" if expect_mdat => expect_mdat = false,
            b"mdat" => return Err(PackagingError::malformed("'mdat' without a 'moof' before it")),
            b"styp" | b"sidx" | b"prft" | b"emsg" | b"free" | b"skip" | b"uuid" => {}
            other => {
                return Err(PackagingError::malformed(format!(
                    "unexpected '{}' box in a media segment",
                    fourcc_str(*other)
                )));
            }
        }
    }
    if moofs == 0 || expect_mdat {
        return Err(PackagingError::NotMp4("not an fMP4 media segment (no 'moof' + 'mdat')".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::TrackKind;

    const INIT: &[u8] = include_bytes!("../../../../assets/sample/hls/init.mp4");
    const SEGMENT: &[u8] = include_bytes!("../../../../assets/sample/hls/seg_000.m4s");

    #[test]
    fn reads_ffmpeg_hls_output_with_two_tracks() {
        assert!(looks_like_init(INIT));
        assert!(!looks_like_init(SEGMENT));
        let init = parse_init(INIT).unwrap();
        let kinds: Vec<_> = init.tracks.iter().map(|t| (t.track_id, t.kind, t.codec.codecs.as_str())).collect();
        assert_eq!(kinds, [(1, TrackKind::Video, "avc1.64001e"), (2, TrackKind::Audio, "mp4a.40.2")]);
        assert_eq!(init.tracks[0].display, Some((640, 360)));

        let segment = Bytes::from_static(SEGMENT);
        let runs = parse_segment(&segment, &init).unwrap();
        assert_eq!(runs.len(), 2);
        let (video, audio) = (&runs[0], &runs[1]);
        assert_eq!((video.track_id, video.samples.len(), video.base_decode_time), (1, 100, 0));
        assert_eq!((audio.track_id, audio.samples.len()), (2, 185));
        assert!(video.samples[0].is_sync() && !video.samples[1].is_sync());
        assert!(video.has_cts);
        assert_eq!(video.duration(), 100 * 512);
        assert_eq!(video.data.iter().map(|d| d.len() as u64).sum::<u64>(), video.bytes());
        // Together the runs hold every byte of the mdat payload.
        let mdat_payload = segment.len() - SEGMENT.windows(4).position(|w| w == b"mdat").unwrap() - 4;
        assert_eq!((video.bytes() + audio.bytes()) as usize, mdat_payload);
    }

    #[test]
    fn garbage_and_mismatches_are_refused() {
        let init = parse_init(INIT).unwrap();
        assert!(parse_segment(&Bytes::from_static(b"not a segment at all, just text"), &init).is_err());
        assert!(parse_segment(&Bytes::from_static(&SEGMENT[..SEGMENT.len() / 2]), &init).is_err());
        assert!(parse_init(SEGMENT).is_err());
        let only_video = InitInfo { tracks: vec![init.tracks[0].clone()], ..init.clone() };
        assert!(matches!(parse_segment(&Bytes::from_static(SEGMENT), &only_video), Err(PackagingError::Malformed(_))));
        // Flipping bytes anywhere never panics.
        let mut seg = SEGMENT.to_vec();
        for i in (0..2200).step_by(7) {
            seg[i] ^= 0x5a;
            let _ = parse_segment(&Bytes::from(seg.clone()), &init);
            seg[i] ^= 0x5a;
        }
    }
}
