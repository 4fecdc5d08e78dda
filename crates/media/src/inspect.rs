//! Packaging a whole in-memory file end to end (index, plan, playlists, init and first segments):
//! the dry run behind `estuary inspect`, the fuzz target and the mutation tests.

use crate::fmp4::{self, FragmentSamples, InitTrack, SampleFlags};
use crate::mp4::{IndexLimits, MediaIndex, MoovLocator, Probe, TrackKind, build_index};
use crate::presentation::{self, Presentation, RenditionInput};
use crate::{PackagingError, vod_manifests};

/// What packaging a file produced.
#[derive(Debug)]
pub struct DryRun {
    pub index: MediaIndex,
    pub presentation: Presentation,
    pub master_playlist: String,
    pub mpd: String,
    /// Bytes of every media playlist, init segment and first media segment produced.
    pub bytes_produced: usize,
}

/// Finds the `moov` of an in-memory file.
pub fn moov_of(file: &[u8], max_moov: u64) -> Result<&[u8], PackagingError> {
    let mut loc = MoovLocator::new(file.len() as u64, max_moov);
    let mut range = loc.start()?;
    loop {
        let end = (range.end as usize).min(file.len());
        let start = (range.start as usize).min(end);
        match loc.feed(range.start, &file[start..end])? {
            Probe::Read(r) => range = r,
            Probe::Found(r) => return Ok(&file[r.start as usize..r.end as usize]),
        }
    }
}

/// Packages `file` the way the server would, without I/O.
pub fn dry_run(file: &[u8], target_secs: f64, limits: IndexLimits) -> Result<DryRun, PackagingError> {
    let index = build_index(moov_of(file, 256 << 20)?, file.len() as u64, limits)?;
    let inputs = RenditionInput::all_tracks(&index);
    let p = presentation::build(&inputs, target_secs)?;
    let mut bytes_produced = 0;
    for r in p.renditions() {
        bytes_produced += vod_manifests::render_media_playlist(&p, r, None).len();
        let track = &index.tracks[r.track_index];
        bytes_produced += fmp4::write_init(&InitTrack::of(track, index.movie_timescale, r.resolution)).len();
        let s = &track.samples;
        let range =
            r.segments.samples(0).ok_or_else(|| PackagingError::Empty("a rendition without segments".into()))?;
        let mut payload = Vec::with_capacity(range.len());
        for i in range.clone() {
            let start = s.offsets[i] as usize;
            let bytes = file
                .get(start..start + s.sizes[i] as usize)
                .ok_or_else(|| PackagingError::Truncated("sample data past the end".into()))?;
            payload.push(bytes);
        }
        let sync: Vec<bool> = range.clone().map(|i| s.is_sync(i)).collect();
        let flags = if track.kind == TrackKind::Video { SampleFlags::PerSample(&sync) } else { SampleFlags::AllSync };
        let fragment = FragmentSamples {
            sequence: 1,
            base_decode_time: s.dts[range.start],
            durations: &s.durations[range.clone()],
            sizes: &s.sizes[range.clone()],
            cts: (!s.cts.is_empty()).then(|| &s.cts[range.clone()]),
            flags,
            protection: None,
        };
        bytes_produced += fmp4::write_segment(&fragment, &payload).len();
    }
    Ok(DryRun {
        // Without trick play: its bit rates need the keyframes' fragments, which the dry run skips.
        master_playlist: vod_manifests::render_multivariant(&p, &[], None),
        mpd: vod_manifests::render_mpd(&p, &[], None),
        index,
        presentation: p,
        bytes_produced,
    })
}
