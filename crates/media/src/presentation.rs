//! `Presentation`: the renditions players see (ids, codecs, sizes, bitrates, segment times), built from source tracks and a plan.

use std::fmt;
use std::str::FromStr;

use crate::PackagingError;
use crate::codec::MediaParams;
use crate::fmp4::{TrunLayout, segment_overhead};
use crate::mp4::{MediaIndex, Track, TrackKind};
use crate::plan::{self, TrackSegments};
use crate::subtitles::SubtitleRendition;

/// A rendition's short, stable URL name: `v0`, `v1`, `a0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RenditionId {
    pub kind: TrackKind,
    pub index: u16,
}

impl fmt::Display for RenditionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.kind {
            TrackKind::Video => 'v',
            TrackKind::Audio => 'a',
            TrackKind::Text => 's',
        };
        write!(f, "{prefix}{}", self.index)
    }
}

impl From<RenditionId> for String {
    fn from(r: RenditionId) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for RenditionId {
    type Error = BadRenditionId;
    fn try_from(s: String) -> Result<Self, BadRenditionId> {
        s.parse()
    }
}

/// A name that is not a rendition id (`v0`, `a1`, `s2`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rendition id")]
pub struct BadRenditionId(String);

impl FromStr for RenditionId {
    type Err = BadRenditionId;

    fn from_str(s: &str) -> Result<Self, BadRenditionId> {
        let bad = || BadRenditionId(s.to_owned());
        let kind = match s.as_bytes().first() {
            Some(b'v') => TrackKind::Video,
            Some(b'a') => TrackKind::Audio,
            Some(b's') => TrackKind::Text,
            _ => return Err(bad()),
        };
        let digits = &s[1..];
        if digits.is_empty()
            || digits.len() > 4
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return Err(bad());
        }
        digits.parse().map(|index| RenditionId { kind, index }).map_err(|_| bad())
    }
}

/// What the packager is given for one rendition.
pub struct RenditionInput<'a> {
    /// Index of the source file in the asset.
    pub source: usize,
    /// Index of the track in that file's index.
    pub track_index: usize,
    pub track: &'a Track,
    pub movie_timescale: u32,
    /// Label for audio renditions (asset-set `name`).
    pub name: Option<String>,
    /// Language override (asset-set `language`), BCP 47.
    pub language: Option<String>,
}

impl<'a> RenditionInput<'a> {
    /// Every track of a single-file asset, as the file names them.
    pub fn all_tracks(index: &'a MediaIndex) -> Vec<RenditionInput<'a>> {
        let input = |(track_index, track)| RenditionInput {
            source: 0,
            track_index,
            track,
            movie_timescale: index.movie_timescale,
            name: None,
            language: None,
        };
        index.tracks.iter().enumerate().map(input).collect()
    }
}

/// One rendition as players see it.
#[derive(Debug, Clone)]
pub struct Rendition {
    pub id: RenditionId,
    pub source: usize,
    pub track_index: usize,
    pub codecs: String,
    pub timescale: u32,
    pub segments: TrackSegments,
    /// Decode time at each segment bound (`segments.count() + 1` entries).
    pub times: Vec<u64>,
    pub params: MediaParams,
    /// Display size for video (from `tkhd`, else the sample entry).
    pub resolution: Option<(u32, u32)>,
    /// Frame rate as a fraction (video).
    pub frame_rate: Option<(u32, u32)>,
    /// BCP 47 language, when known.
    pub language: Option<String>,
    pub name: String,
    /// Highest bit rate of any one segment, container included.
    pub peak_bps: u64,
    pub average_bps: u64,
}

impl Rendition {
    pub fn segment_count(&self) -> usize {
        self.segments.count()
    }

    /// Duration of segment `i` in seconds.
    pub fn segment_secs(&self, i: usize) -> f64 {
        (self.times[i + 1] - self.times[i]) as f64 / f64::from(self.timescale)
    }

    pub fn duration_secs(&self) -> f64 {
        (self.times[self.times.len() - 1] - self.times[0]) as f64 / f64::from(self.timescale)
    }
}

/// Everything the playlist and manifest renderers need.
#[derive(Debug, Clone)]
pub struct Presentation {
    pub video: Vec<Rendition>,
    pub audio: Vec<Rendition>,
    /// Subtitle tracks, cut into segments on the video's plan ([`Presentation::subtitle_bounds_ms`]).
    pub subtitles: Vec<SubtitleRendition>,
    /// `EXT-X-TARGETDURATION`: the longest segment of any rendition, rounded.
    pub target_duration: u32,
    pub duration_secs: f64,
    pub max_segment_secs: f64,
}

impl Presentation {
    pub fn rendition(&self, id: RenditionId) -> Option<&Rendition> {
        let list = match id.kind {
            TrackKind::Video => &self.video,
            TrackKind::Audio => &self.audio,
            TrackKind::Text => return None,
        };
        list.get(usize::from(id.index))
    }

    pub fn renditions(&self) -> impl Iterator<Item = &Rendition> {
        self.video.iter().chain(&self.audio)
    }

    pub fn subtitle(&self, index: u16) -> Option<&SubtitleRendition> {
        self.subtitles.get(usize::from(index))
    }

    /// Where subtitle segments begin and end, in milliseconds of the presentation: the segment
    /// bounds of the first video rendition (else the first audio one), one more than segments.
    pub fn subtitle_bounds_ms(&self) -> Vec<u64> {
        self.subtitle_reference().map_or(vec![0, 1], |r| {
            let (t0, scale) = (r.times[0], u64::from(r.timescale));
            r.times.iter().map(|&t| (t - t0).saturating_mul(1000) / scale).collect()
        })
    }

    /// How many segments each subtitle track has (those of [`Presentation::subtitle_bounds_ms`]).
    pub fn subtitle_segment_count(&self) -> usize {
        self.subtitle_reference().map_or(1, Rendition::segment_count)
    }

    /// The rendition whose segment plan subtitles follow: the first video one, else the first audio.
    fn subtitle_reference(&self) -> Option<&Rendition> {
        self.video.first().or(self.audio.first())
    }
}

/// Plans segments on the first video input (or the first audio one) and applies the plan to all.
pub fn build(inputs: &[RenditionInput<'_>], target_secs: f64) -> Result<Presentation, PackagingError> {
    let reference = inputs
        .iter()
        .find(|i| i.track.kind == TrackKind::Video)
        .or_else(|| inputs.first())
        .ok_or_else(|| PackagingError::Empty("no renditions".into()))?;
    let plan = plan::plan(reference.track, reference.movie_timescale, target_secs);
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    for input in inputs {
        let list = match input.track.kind {
            TrackKind::Video => &mut video,
            TrackKind::Audio => &mut audio,
            // An MP4's subtitle tracks are read apart, into cues (`Presentation::subtitles`).
            TrackKind::Text => continue,
        };
        let id = RenditionId { kind: input.track.kind, index: list.len() as u16 };
        list.push(rendition(id, input, &plan)?);
    }
    let all = video.iter().chain(&audio);
    let max_segment_secs =
        all.clone().flat_map(|r| (0..r.segment_count()).map(move |i| r.segment_secs(i))).fold(0.0, f64::max);
    let duration_secs = all.map(Rendition::duration_secs).fold(0.0, f64::max);
    Ok(Presentation {
        target_duration: (max_segment_secs.round() as u32).max(1),
        video,
        audio,
        subtitles: Vec::new(),
        duration_secs,
        max_segment_secs,
    })
}

fn rendition(
    id: RenditionId,
    input: &RenditionInput<'_>,
    plan: &plan::SegmentPlan,
) -> Result<Rendition, PackagingError> {
    let track = input.track;
    let s = &track.samples;
    let segments = plan::split(plan, track, input.movie_timescale);
    let times: Vec<u64> =
        segments.bounds.iter().map(|&b| s.dts.get(b as usize).copied().unwrap_or_else(|| s.end_time())).collect();
    if times.windows(2).any(|w| w[1] <= w[0]) {
        return Err(PackagingError::malformed(format!("track {} has segments without duration", track.id)));
    }
    let ts = f64::from(track.timescale);
    let is_video = track.kind == TrackKind::Video;
    let mut peak = 0.0f64;
    let mut total_bytes = 0u64;
    for i in 0..segments.count() {
        let Some(range) = segments.samples(i) else { continue };
        let trun =
            TrunLayout { samples: range.len(), per_sample_flags: is_video, composition_offsets: !s.cts.is_empty() };
        let bytes = s.bytes_in(range.clone()) + segment_overhead(trun);
        total_bytes += bytes;
        let secs = (times[i + 1] - times[i]) as f64 / ts;
        peak = peak.max(bytes as f64 * 8.0 / secs);
    }
    let duration = (times[times.len() - 1] - times[0]) as f64 / ts;
    let frame_rate = is_video.then(|| frame_rate(track)).flatten();
    let resolution = match (track.display, &track.codec.params) {
        (Some((w, h)), _) if w > 0 && h > 0 => Some((w, h)),
        (_, MediaParams::Video { width, height }) => Some((u32::from(*width), u32::from(*height))),
        _ => None,
    };
    let language = input.language.clone().or_else(|| bcp47(&track.language));
    let name = input.name.clone().unwrap_or_else(|| match (&language, track.kind, id.index) {
        (Some(l), TrackKind::Audio, _) => l.clone(),
        (None, TrackKind::Audio, 0) => "Audio".to_owned(),
        (None, TrackKind::Audio, i) => format!("Audio {}", i + 1),
        _ => id.to_string(),
    });
    Ok(Rendition {
        id,
        source: input.source,
        track_index: input.track_index,
        codecs: track.codec.codecs.clone(),
        timescale: track.timescale,
        segments,
        times,
        params: track.codec.params.clone(),
        resolution,
        frame_rate,
        language,
        name,
        peak_bps: peak.ceil() as u64,
        average_bps: (total_bytes as f64 * 8.0 / duration).ceil() as u64,
    })
}

/// The most common sample duration as a frame rate fraction (`25/1`, `30000/1001`).
fn frame_rate(track: &Track) -> Option<(u32, u32)> {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for &d in &track.samples.durations {
        if let Some((_, c)) = counts.iter_mut().find(|(v, _)| *v == d) {
            *c += 1;
        } else if counts.len() < 16 {
            counts.push((d, 1));
        }
    }
    let (delta, _) = counts.into_iter().max_by_key(|&(_, c)| c)?;
    if delta == 0 {
        return None;
    }
    let g = gcd(track.timescale, delta);
    Some((track.timescale / g, delta / g))
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// ISO 639-2 codes to the BCP 47 tags players expect; `und` is no language.
pub fn bcp47(iso639_2: &str) -> Option<String> {
    const TWO_LETTER: &[(&str, &str)] = &[
        ("eng", "en"),
        ("fra", "fr"),
        ("fre", "fr"),
        ("deu", "de"),
        ("ger", "de"),
        ("spa", "es"),
        ("ita", "it"),
        ("por", "pt"),
        ("nld", "nl"),
        ("dut", "nl"),
        ("jpn", "ja"),
        ("zho", "zh"),
        ("chi", "zh"),
        ("kor", "ko"),
        ("rus", "ru"),
        ("ara", "ar"),
        ("hin", "hi"),
        ("swe", "sv"),
        ("nor", "no"),
        ("dan", "da"),
        ("fin", "fi"),
        ("pol", "pl"),
        ("tur", "tr"),
        ("ell", "el"),
        ("gre", "el"),
        ("heb", "he"),
        ("ces", "cs"),
        ("cze", "cs"),
        ("hun", "hu"),
        ("ron", "ro"),
        ("rum", "ro"),
        ("ukr", "uk"),
        ("vie", "vi"),
        ("tha", "th"),
        ("ind", "id"),
    ];
    match iso639_2 {
        "" | "und" | "zxx" | "mis" | "mul" => None,
        code => Some(TWO_LETTER.iter().find(|(three, _)| *three == code).map_or(code, |(_, two)| two).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_ids_round_trip_and_refuse_junk() {
        for s in ["v0", "a3", "v12"] {
            assert_eq!(s.parse::<RenditionId>().unwrap().to_string(), s);
        }
        for s in ["", "v", "x1", "v01", "a-1", "v99999", "v1.m3u8"] {
            assert!(s.parse::<RenditionId>().is_err(), "{s}");
        }
    }

    #[test]
    fn languages() {
        assert_eq!(bcp47("eng").as_deref(), Some("en"));
        assert_eq!(bcp47("und"), None);
        assert_eq!(bcp47("gsw").as_deref(), Some("gsw"));
    }
}
