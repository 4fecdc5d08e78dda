//! Reading fragmented MP4 init segments as encoders push them: tracks, codecs, edit lists and `trex` defaults.

use bytes::Bytes;

use crate::PackagingError;
use crate::codec::{self, CodecInfo};
use crate::mp4::boxes::{self, BoxRef, FourCc, Reader};
use crate::mp4::{Edit, TrackKind, headers};

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitTrackInfo {
    pub track_id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    pub codec: CodecInfo,
    /// The whole `stsd` box, for per-track init segments.
    pub stsd: Bytes,
    pub language: String,
    pub display: Option<(u32, u32)>,
    pub edit: Edit,
    /// `trex` defaults: duration, size, flags.
    pub default_duration: u32,
    pub default_size: u32,
    pub default_flags: u32,
}

/// A parsed init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitInfo {
    pub movie_timescale: u32,
    pub tracks: Vec<InitTrackInfo>,
}

impl InitInfo {
    pub fn track(&self, id: u32) -> Option<&InitTrackInfo> {
        self.tracks.iter().find(|t| t.track_id == id)
    }
}

/// Parses an init segment (`ftyp`? + `moov` with `mvex`).
pub fn parse_init(data: &[u8]) -> Result<InitInfo, PackagingError> {
    let moov =
        boxes::find(data, b"moov")?.ok_or_else(|| PackagingError::NotMp4("no 'moov' in the init segment".into()))?;
    let mvhd = boxes::find(moov.payload, b"mvhd")?.ok_or_else(|| PackagingError::malformed("no 'mvhd'"))?;
    let mut r = Reader::new(mvhd.payload, "mvhd");
    let version = r.u8()?;
    r.skip(3 + if version == 1 { 16 } else { 8 })?;
    let movie_timescale = r.u32()?.max(1);
    let trexes: Vec<BoxRef<'_>> = match boxes::find(moov.payload, b"mvex")? {
        Some(mvex) => boxes::boxes(mvex.payload).filter_map(Result::ok).filter(|b| &b.kind == b"trex").collect(),
        None => return Err(PackagingError::malformed("init segment without 'mvex' (not fragmented)")),
    };
    let mut tracks = Vec::new();
    for b in boxes::boxes(moov.payload) {
        let b = b?;
        if &b.kind == b"trak"
            && let Some(t) = init_track(b.payload, &trexes)?
        {
            tracks.push(t);
        }
    }
    if tracks.is_empty() {
        return Err(PackagingError::Empty("init segment has no audio or video track".into()));
    }
    Ok(InitInfo { movie_timescale, tracks })
}

fn init_track(trak: &[u8], trexes: &[BoxRef<'_>]) -> Result<Option<InitTrackInfo>, PackagingError> {
    let missing = |w: &str| PackagingError::malformed(format!("track without '{w}'"));
    let hdlr = boxes::find_path(trak, &[b"mdia", b"hdlr"])?.ok_or_else(|| missing("hdlr"))?;
    let kind = match hdlr.payload.get(8..12) {
        Some(b"vide") => TrackKind::Video,
        Some(b"soun") => TrackKind::Audio,
        _ => return Ok(None),
    };
    let tkhd = boxes::find(trak, b"tkhd")?.ok_or_else(|| missing("tkhd"))?;
    let (track_id, (w, h)) = headers::tkhd(tkhd.payload)?;
    let mdhd = boxes::find_path(trak, &[b"mdia", b"mdhd"])?.ok_or_else(|| missing("mdhd"))?;
    let (timescale, language) = headers::mdhd(mdhd.payload)?;
    if timescale == 0 {
        return Err(PackagingError::malformed("track timescale is 0"));
    }
    let stsd = boxes::find_path(trak, &[b"mdia", b"minf", b"stbl", b"stsd"])?.ok_or_else(|| missing("stsd"))?;
    let codec = codec::describe_stsd(stsd.payload)?;
    let edit = match boxes::find_path(trak, &[b"edts", b"elst"])? {
        Some(elst) => headers::edit(elst.payload)?,
        None => Edit::default(),
    };
    let trex = trexes.iter().find(|t| t.payload.get(4..8) == Some(&track_id.to_be_bytes()[..]));
    let (default_duration, default_size, default_flags) = match trex {
        Some(t) => {
            let mut r = Reader::new(t.payload, "trex");
            r.skip(12)?;
            (r.u32()?, r.u32()?, r.u32()?)
        }
        None => (0, 0, 0),
    };
    Ok(Some(InitTrackInfo {
        track_id,
        kind,
        timescale,
        codec,
        stsd: Bytes::copy_from_slice(stsd.bytes),
        language,
        display: (kind == TrackKind::Video && w > 0 && h > 0).then_some((w, h)),
        edit,
        default_duration,
        default_size,
        default_flags,
    }))
}

/// Whether `data` starts like an init segment (`ftyp`/`moov`) rather than a media segment.
pub fn looks_like_init(data: &[u8]) -> bool {
    let first: Option<FourCc> = data.get(4..8).and_then(|k| k.try_into().ok());
    let has_moov = boxes::boxes(data).filter_map(Result::ok).any(|b| &b.kind == b"moov");
    matches!(first.as_ref(), Some(b"ftyp") | Some(b"moov")) && has_moov
}
