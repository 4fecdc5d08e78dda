//! Loading an asset's subtitles when it is indexed: WebVTT sidecars read whole (capped), and the
//! samples of MP4 subtitle tracks read in a few coalesced ranges, both decoded into the one cue model.

use super::asset_set::SetEntry;
use super::segment::SampleBytes;
use super::{Source, VodError};
use crate::packaging::PackagingError;
use crate::packaging::mp4::TextTrack;
use crate::packaging::presentation::bcp47;
use crate::packaging::reads::ReadPolicy;
use crate::packaging::subtitles::{MAX_CUES, SubtitleRendition, Subtitles, mp4text, webvtt};
use crate::storage::{Storage, StorageKey};

/// The largest WebVTT sidecar read (a feature film's subtitles are about 100 KiB).
pub(super) const MAX_SIDECAR_BYTES: u64 = 8 * 1024 * 1024;
/// The most sample bytes read from one MP4 subtitle track.
const MAX_TRACK_BYTES: u64 = 16 * 1024 * 1024;
/// Reads of a subtitle track's samples bridge gaps up to this size (other tracks' samples between).
const TRACK_READ_GAP: u64 = 64 * 1024;

/// The subtitle renditions of an asset: the subtitle tracks of the first source that has any, then
/// the sidecars. Problems with the files are a `PackagingError` (the asset cannot be served as it
/// is); storage failures are the outer error.
pub(super) async fn load(
    storage: &dyn Storage,
    sources: &[Source],
    sidecars: &[SetEntry],
) -> Result<Result<Vec<SubtitleRendition>, PackagingError>, VodError> {
    let mut renditions = Vec::new();
    let next = |renditions: &Vec<SubtitleRendition>| renditions.len() as u16;
    if let Some(source) = sources.iter().find(|s| !s.index.texts.is_empty()) {
        for track in &source.index.texts {
            let subtitles = match track_subtitles(storage, &source.key, track, source.index.movie_timescale).await {
                Err(VodError::Packaging(e)) => return Ok(Err(e.in_file(source.key.as_str()))),
                other => other?,
            };
            let language = bcp47(&track.language);
            renditions.push(SubtitleRendition::new(next(&renditions), None, language, subtitles));
        }
    }
    for entry in sidecars {
        let subtitles = match sidecar(storage, &entry.file).await {
            Err(VodError::Packaging(e)) => return Ok(Err(e)),
            other => other?,
        };
        let (name, language) = (entry.name.clone(), entry.language.clone());
        renditions.push(SubtitleRendition::new(next(&renditions), name, language, subtitles));
    }
    Ok(Ok(renditions))
}

/// A WebVTT sidecar, read whole.
async fn sidecar(storage: &dyn Storage, key: &StorageKey) -> Result<Subtitles, VodError> {
    let bad = |m: String| VodError::Packaging(PackagingError::BadAssetSet(format!("{key}: {m}")));
    let read = storage.get_range(key, 0..MAX_SIDECAR_BYTES + 1).await?;
    if read.meta.size > MAX_SIDECAR_BYTES {
        return Err(bad(format!("{} bytes; a subtitle file may have at most {MAX_SIDECAR_BYTES}", read.meta.size)));
    }
    let parsed = webvtt::parse(&read.body).map_err(|e| bad(e.to_string()))?;
    if !parsed.skipped_lines.is_empty() {
        tracing::warn!(%key, lines = ?parsed.skipped_lines, "WebVTT blocks that are not cues were left out");
    }
    Ok(parsed.subtitles)
}

/// Every sample of an MP4 subtitle track, as cues on the presentation timeline.
async fn track_subtitles(
    storage: &dyn Storage,
    key: &StorageKey,
    track: &TextTrack,
    movie_timescale: u32,
) -> Result<Subtitles, VodError> {
    let s = &track.samples;
    let too_large =
        |m: String| VodError::Packaging(PackagingError::TooLarge(format!("subtitle track {}: {m}", track.id)));
    if s.len() > MAX_CUES {
        return Err(too_large(format!("{} samples; at most {MAX_CUES}", s.len())));
    }
    if s.bytes_in(0..s.len()) > MAX_TRACK_BYTES {
        return Err(too_large(format!("more than {MAX_TRACK_BYTES} bytes of samples")));
    }
    let policy = ReadPolicy { max_gap: TRACK_READ_GAP, max_reads: usize::MAX };
    let bytes = SampleBytes::read(storage, key, (&s.offsets, &s.sizes), policy).await?;
    // Presentation time in track ticks is `dts + cts - media_time`, after `delay` of the movie.
    let delay_ms = track.edit.delay.saturating_mul(1000) / u64::from(movie_timescale.max(1));
    let ms = |ticks: i128| delay_ms + (ticks.max(0) as u64).saturating_mul(1000) / u64::from(track.timescale);
    let mut cues = Vec::new();
    for i in 0..s.len() {
        let sample = bytes.get(s.offsets[i], s.sizes[i])?;
        let start = i128::from(s.dts[i]) + i128::from(s.cts_offset(i)) - i128::from(track.edit.media_time);
        let end = start + i128::from(s.durations[i]);
        let decoded = mp4text::decode_sample(&track.format, sample, ms(start), ms(end))
            .map_err(|e| PackagingError::malformed(format!("subtitle track {}: {e}", track.id)))?;
        cues.extend(decoded);
    }
    let header = match &track.format {
        mp4text::TextFormat::Wvtt { header_blocks } => header_blocks.clone(),
        mp4text::TextFormat::Tx3g => Vec::new(),
    };
    Ok(Subtitles::new(header, cues))
}
