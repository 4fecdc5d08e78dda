//! `MediaIndex`: everything about an MP4 source that packaging needs, built once from its `moov` bytes.
//!
//! One reader does it all: the box walker finds the boxes and checks every size against its parent,
//! [`headers`](super::headers) reads the track headers and sample tables, the sample-entry parser
//! describes the codecs, and [`SampleTable`] flattens the tables.

use bytes::Bytes;

use super::boxes::{self, BoxRef, FourCc, Reader, fourcc_str};
use super::headers;
pub use super::headers::Edit;
use super::tables::{RawTables, SampleTable};
use crate::PackagingError;
use crate::codec::{self, CodecInfo};
use crate::subtitles::mp4text::{self, TextFormat};

/// Limits that keep a hostile or huge file from taking the process's memory.
#[derive(Debug, Clone, Copy)]
pub struct IndexLimits {
    pub max_samples_per_track: u32,
}

impl Default for IndexLimits {
    fn default() -> Self {
        IndexLimits { max_samples_per_track: 5_000_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
    /// Subtitles: WebVTT segments a live encoder pushes (renditions `s0`, `s1`, ...).
    Text,
}

/// One audio or video track of a source file.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    /// ISO 639-2/T code from `mdhd` (`und` when unknown).
    pub language: String,
    pub codec: CodecInfo,
    /// The whole `stsd` box, copied verbatim into init segments.
    pub stsd: Bytes,
    pub edit: Edit,
    /// Display size from `tkhd` (video), in pixels.
    pub display: Option<(u32, u32)>,
    pub samples: SampleTable,
}

impl Track {
    /// Duration of the track's samples, in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.samples.end_time() as f64 / f64::from(self.timescale)
    }
}

/// A subtitle track (`tx3g` or `wvtt`) of a source file: read whole once, when the asset is indexed.
#[derive(Debug, Clone)]
pub struct TextTrack {
    pub id: u32,
    pub format: TextFormat,
    pub timescale: u32,
    /// ISO 639-2/T code from `mdhd` (`und` when unknown).
    pub language: String,
    pub edit: Edit,
    pub samples: SampleTable,
}

/// The audio and video tracks of one MP4 file, and its subtitle tracks.
#[derive(Debug, Clone)]
pub struct MediaIndex {
    pub movie_timescale: u32,
    pub tracks: Vec<Track>,
    pub texts: Vec<TextTrack>,
}

impl MediaIndex {
    pub fn video(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.kind == TrackKind::Video)
    }

    pub fn audio(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.kind == TrackKind::Audio)
    }

    pub fn memory_bytes(&self) -> usize {
        self.tracks.iter().map(|t| t.samples.memory_bytes() + t.stsd.len() + 256).sum::<usize>()
            + self.texts.iter().map(|t| t.samples.memory_bytes() + 256).sum::<usize>()
    }
}

/// Builds the index from the bytes of the `moov` box (header included) of a file of `file_size` bytes.
pub fn build_index(moov: &[u8], file_size: u64, limits: IndexLimits) -> Result<MediaIndex, PackagingError> {
    let moov = match boxes::boxes(moov).next() {
        Some(Ok(b)) if &b.kind == b"moov" => b,
        Some(Ok(b)) => return Err(PackagingError::NotMp4(format!("expected 'moov', found '{}'", fourcc_str(b.kind)))),
        Some(Err(e)) => return Err(e),
        None => return Err(PackagingError::NotMp4("empty 'moov'".into())),
    };
    let mvhd = boxes::find(moov.payload, b"mvhd")?.ok_or_else(|| PackagingError::malformed("no 'mvhd'"))?;
    let movie_timescale = movie_timescale(mvhd.payload)?;

    let mut parts = Vec::new();
    let mut texts = Vec::new();
    let mut unsupported: Vec<(TrackKind, String)> = Vec::new();
    for b in boxes::boxes(moov.payload) {
        let b = b?;
        if &b.kind != b"trak" {
            continue;
        }
        match select_track(b)? {
            Selected::Usable(p) if matches!(p.media, Media::Text(_)) => texts.push(*p),
            Selected::Usable(p) => parts.push(*p),
            Selected::Unsupported(kind, codec) => unsupported.push((kind, codec)),
            Selected::Ignored => {}
        }
    }
    // A kind of media that is present but entirely unplayable is an error, not a silent drop.
    for kind in [TrackKind::Video, TrackKind::Audio] {
        if !parts.iter().any(|p| matches!(p.media, Media::AudioVideo(k, _) if k == kind))
            && let Some((_, codec)) = unsupported.iter().find(|(k, _)| *k == kind)
        {
            return Err(PackagingError::UnsupportedCodec(codec.clone()));
        }
    }

    let mut tracks = Vec::new();
    for part in parts {
        if let Some(track) = index_track(part, file_size, limits)? {
            tracks.push(track);
        }
    }
    if tracks.is_empty() {
        return Err(PackagingError::Empty(
            "no audio or video track with samples (fragmented MP4 sources are not supported)".into(),
        ));
    }
    let mut text_tracks = Vec::new();
    for part in texts {
        let (samples, timescale, language, edit, id) = read_track(&part, file_size, limits)?;
        if let (false, Media::Text(format)) = (samples.is_empty(), part.media) {
            text_tracks.push(TextTrack { id, format, timescale, language, edit, samples });
        }
    }
    Ok(MediaIndex { movie_timescale, tracks, texts: text_tracks })
}

/// What a usable track carries: audio or video in a codec described, or subtitles.
enum Media {
    AudioVideo(TrackKind, CodecInfo),
    Text(TextFormat),
}

/// The boxes of one usable track.
struct TrackParts<'a> {
    media: Media,
    stsd: Bytes,
    tkhd: BoxRef<'a>,
    mdhd: BoxRef<'a>,
    elst: Option<BoxRef<'a>>,
    tables: Vec<BoxRef<'a>>,
}

enum Selected<'a> {
    Usable(Box<TrackParts<'a>>),
    Unsupported(TrackKind, String),
    Ignored,
}

/// Finds the boxes of an audio, video or subtitle track; describes its codec with our own
/// sample-entry parser.
fn select_track(trak: BoxRef<'_>) -> Result<Selected<'_>, PackagingError> {
    let hdlr = boxes::find_path(trak.payload, &[b"mdia", b"hdlr"])?
        .ok_or_else(|| PackagingError::malformed("track without 'hdlr'"))?;
    let handler: FourCc = hdlr
        .payload
        .get(8..12)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| PackagingError::malformed("short 'hdlr'"))?;
    let kind = match &handler {
        b"vide" => Some(TrackKind::Video),
        b"soun" => Some(TrackKind::Audio),
        h if mp4text::HANDLERS.contains(h) => None,
        _ => return Ok(Selected::Ignored),
    };
    let missing = |what: &str| PackagingError::malformed(format!("track without '{what}'"));
    let stbl = boxes::find_path(trak.payload, &[b"mdia", b"minf", b"stbl"])?.ok_or_else(|| missing("stbl"))?;
    let stsd = boxes::find(stbl.payload, b"stsd")?.ok_or_else(|| missing("stsd"))?;
    let media = match kind {
        Some(kind) => match codec::describe_stsd(stsd.payload) {
            Ok(c) => Media::AudioVideo(kind, c),
            Err(PackagingError::UnsupportedCodec(name)) => return Ok(Selected::Unsupported(kind, name)),
            Err(e) => return Err(e),
        },
        // Subtitle formats estuary does not read (CEA-608 tracks, TTML) are left out, as before.
        None => match mp4text::text_format(stsd.payload) {
            Some(format) => Media::Text(format),
            None => return Ok(Selected::Ignored),
        },
    };
    let mut tables = Vec::new();
    for b in boxes::boxes(stbl.payload) {
        let b = b?;
        if TABLES.contains(&b.kind) {
            tables.push(b);
        }
    }
    Ok(Selected::Usable(Box::new(TrackParts {
        media,
        stsd: Bytes::copy_from_slice(stsd.bytes),
        tkhd: boxes::find(trak.payload, b"tkhd")?.ok_or_else(|| missing("tkhd"))?,
        mdhd: boxes::find_path(trak.payload, &[b"mdia", b"mdhd"])?.ok_or_else(|| missing("mdhd"))?,
        elst: boxes::find_path(trak.payload, &[b"edts", b"elst"])?,
        tables,
    })))
}

/// The sample tables a track is indexed from.
const TABLES: [FourCc; 7] = [*b"stts", *b"ctts", *b"stss", *b"stsc", *b"stsz", *b"stco", *b"co64"];

/// Reads one track's headers and sample tables; `None` when it has no samples.
fn index_track(part: TrackParts<'_>, file_size: u64, limits: IndexLimits) -> Result<Option<Track>, PackagingError> {
    let (samples, timescale, language, edit, id) = read_track(&part, file_size, limits)?;
    let Media::AudioVideo(kind, codec) = part.media else { return Ok(None) };
    if samples.is_empty() {
        return Ok(None);
    }
    let display = headers::tkhd(part.tkhd.payload)?.1;
    Ok(Some(Track {
        id,
        kind,
        timescale,
        language,
        codec,
        stsd: part.stsd,
        edit,
        display: (kind == TrackKind::Video).then_some(display),
        samples,
    }))
}

/// A track's samples, timescale, language, edit and id.
fn read_track(
    part: &TrackParts<'_>,
    file_size: u64,
    limits: IndexLimits,
) -> Result<(SampleTable, u32, String, Edit, u32), PackagingError> {
    let table = |kind: &FourCc| part.tables.iter().find(|b| &b.kind == kind).map(|b| b.payload);
    let missing = |what: &str| PackagingError::malformed(format!("track without '{what}'"));
    let (sample_size, sample_count, sample_sizes) = headers::stsz(table(b"stsz").ok_or_else(|| missing("stsz"))?)?;
    let raw = RawTables {
        stts: headers::stts(table(b"stts").ok_or_else(|| missing("stts"))?)?,
        ctts: table(b"ctts").map(headers::ctts).transpose()?,
        stss: table(b"stss").map(headers::stss).transpose()?,
        stsc: headers::stsc(table(b"stsc").ok_or_else(|| missing("stsc"))?)?,
        sample_size,
        sample_count,
        sample_sizes,
        chunk_offsets: match (table(b"stco"), table(b"co64")) {
            (Some(stco), _) => headers::chunk_offsets(stco, false)?,
            (None, Some(co64)) => headers::chunk_offsets(co64, true)?,
            (None, None) => return Err(PackagingError::malformed("track without 'stco' or 'co64'")),
        },
    };
    let samples = SampleTable::expand(&raw, file_size, limits.max_samples_per_track)?;
    let (timescale, language) = headers::mdhd(part.mdhd.payload)?;
    if timescale == 0 {
        return Err(PackagingError::malformed("track timescale is 0"));
    }
    let edit = match part.elst {
        Some(elst) => headers::edit(elst.payload)?,
        None => Edit::default(),
    };
    let (id, _) = headers::tkhd(part.tkhd.payload)?;
    Ok((samples, timescale, language, edit, id))
}

fn movie_timescale(mvhd: &[u8]) -> Result<u32, PackagingError> {
    let mut r = Reader::new(mvhd, "mvhd");
    let version = r.u8()?;
    r.skip(3 + if version == 1 { 16 } else { 8 })?;
    match r.u32()? {
        0 => Err(PackagingError::malformed("movie timescale is 0")),
        ts => Ok(ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::MediaParams;
    use crate::sample::{SAMPLE_MP4, index};

    #[test]
    fn indexes_the_sample_clip() {
        let index = index();
        assert_eq!(index.movie_timescale, 1000);
        let v = index.video().next().unwrap();
        assert_eq!(v.codec.codecs, "avc1.64001e");
        assert_eq!(v.codec.params, MediaParams::Video { width: 640, height: 360 });
        assert_eq!((v.timescale, v.samples.len()), (12800, 400));
        assert_eq!(v.samples.sync.as_ref().unwrap().len(), 8);
        assert_eq!(v.edit, Edit { delay: 0, media_time: 1024 });
        assert_eq!(v.samples.cts_offset(0), 1024);
        assert_eq!(v.display, Some((640, 360)));
        let a = index.audio().next().unwrap();
        assert_eq!(a.codec.codecs, "mp4a.40.2");
        assert_eq!(a.codec.params, MediaParams::Audio { channels: 2, sample_rate: 48000 });
        assert_eq!((a.timescale, a.samples.len()), (48000, 751));
        assert!(a.samples.sync.is_none());
        // Every sample lies inside the file, and the tracks' bytes add up to less than it.
        let bytes: u64 = index.tracks.iter().map(|t| t.samples.bytes_in(0..t.samples.len())).sum();
        assert!(bytes > 1_000_000 && bytes < SAMPLE_MP4.len() as u64);
    }
}
