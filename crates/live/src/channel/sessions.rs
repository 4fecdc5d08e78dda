//! PURE: encoder sessions: which rendition each pushed track is (the same across restarts), which
//! epoch a session's segments belong to, and the per-track init segments of each epoch.

use std::time::SystemTime;

use super::parts::{describe, whole_segment_rendition};
use super::{ChannelState, Effect, RenditionEntry, RenditionKey};
use crate::keys;
use crate::model::LiveRendition;
use estuary_media::fmp4::{InitTrack, write_init};
use estuary_media::mp4::TrackKind;
use estuary_media::presentation::RenditionId;

impl ChannelState {
    /// Gives every track of a variant a rendition (the same one across restarts).
    /// A subtitle variant's language and name as the encoder's master playlist gives them: its
    /// rendition takes them now, or when it is made.
    pub(super) fn label_subtitles(&mut self, label: crate::upload::SubtitleLabel) {
        for entry in self.renditions.iter_mut().filter(|e| e.key.variant == label.playlist) {
            if entry.info.kind == TrackKind::Text {
                apply_label(&mut entry.info, &label);
            }
        }
        if self.subtitle_labels.len() < super::MAX_LABELS || self.subtitle_labels.contains_key(&label.playlist) {
            self.subtitle_labels.insert(label.playlist.clone(), label);
        }
    }

    pub(super) fn assign_renditions(&mut self, variant_path: &str, without_init: TrackKind) {
        let variant = &self.variants[variant_path];
        let tracks: Vec<(TrackKind, Option<LiveRendition>)> = match &variant.init {
            Some(init) => {
                let has_video = init.tracks.iter().any(|t| t.kind == TrackKind::Video);
                init.tracks.iter().map(|t| (t.kind, Some(describe(t, has_video)))).collect()
            }
            None => vec![(without_init, None)],
        };
        let mut assigned = Vec::new();
        let mut nth = [0usize; 3];
        for (kind, info) in tracks {
            let k = kind as usize;
            let key = RenditionKey { variant: variant_path.to_owned(), kind, nth: nth[k] };
            nth[k] += 1;
            let index = match self.renditions.iter().position(|r| r.key == key) {
                Some(i) => i,
                None => {
                    let count = self.renditions.iter().filter(|r| r.info.id.kind == kind).count() as u16;
                    let id = RenditionId { kind, index: count };
                    let mut info = info.clone().unwrap_or_else(|| whole_segment_rendition(id, kind));
                    if let (TrackKind::Text, Some(label)) = (kind, self.subtitle_labels.get(variant_path)) {
                        apply_label(&mut info, label);
                    }
                    self.renditions.push(RenditionEntry {
                        key,
                        info: LiveRendition { id, ..info },
                        recent: Default::default(),
                    });
                    self.renditions.len() - 1
                }
            };
            if let Some(info) = info {
                let entry = &mut self.renditions[index];
                entry.info = LiveRendition {
                    id: entry.info.id,
                    peak_bps: entry.info.peak_bps,
                    average_bps: entry.info.average_bps,
                    ..info
                };
            }
            assigned.push(Some(index));
        }
        self.variant(variant_path).tracks = assigned;
    }
    /// The epoch a variant's segment `e` belongs to: its own, the newest one it may join, or a new one.
    pub(super) fn epoch_for(&mut self, variant_path: &str, e: u64, now: SystemTime) -> usize {
        let member_of = self.variants[variant_path].epoch;
        let index = self.epochs.join(variant_path, member_of, e, self.window.next_msn(), now);
        self.variant(variant_path).epoch = Some(self.epochs.at(index).id);
        index
    }
    /// Rendition `r`'s timescale in epoch `epoch_id` (its current one when the epoch did not record it).
    pub(super) fn timescale_in(&self, epoch_id: u64, r: usize) -> u32 {
        self.epochs.timescale(epoch_id, r).unwrap_or_else(|| super::parts::timescale_of(r, &self.renditions))
    }

    /// Seconds to add to the decode times of epoch `index`, fixed by its first segment (`starts`: the
    /// first decode time of each rendition it carries, in seconds): the least that makes every one of
    /// them continue after its own newest part before slot `before_msn`. 0 for a channel's first
    /// session, or an encoder whose clock already continues. One shift for all renditions keeps them
    /// in the encoder's sync.
    pub(super) fn epoch_shift(&mut self, index: usize, starts: &[(usize, f64)], before_msn: u64) -> f64 {
        if let Some(shift) = self.epochs.at(index).shift {
            return shift;
        }
        let epoch_id = self.epochs.at(index).id;
        let mut shift = 0.0f64;
        for &(r, start) in starts {
            // The rendition's newest part in the sessions before.
            let mut before =
                self.window.slots().iter().rev().filter(|s| s.msn < before_msn && s.epoch != epoch_id).take(8);
            let Some((epoch, end)) = before.find_map(|s| s.part(r).map(|p| (s.epoch, p.decode_time + p.duration)))
            else {
                continue;
            };
            let end = end as f64 / f64::from(self.timescale_in(epoch, r));
            shift = shift.max(end - start);
        }
        self.epochs.set_shift(index, shift);
        shift
    }

    /// Writes the per-track init segments of a variant into an epoch.
    pub(super) fn add_inits(&mut self, epoch: usize, variant_path: &str, effects: &mut Vec<Effect>) {
        let variant = &self.variants[variant_path];
        let Some(init) = variant.init.clone() else { return };
        let tracks = variant.tracks.clone();
        let epoch_id = self.epochs.at(epoch).id;
        for (t, r) in init.tracks.iter().zip(tracks) {
            let Some(r) = r else { continue };
            let bytes = write_init(&InitTrack {
                kind: t.kind,
                timescale: t.timescale,
                movie_timescale: init.movie_timescale,
                language: &t.language,
                stsd: &t.stsd,
                edit: t.edit,
                display: t.display,
                pssh: &[],
            });
            self.epochs.put_init(epoch, r, bytes.clone(), t.timescale);
            effects.push(Effect::Put {
                key: keys::init(&self.id, epoch_id, self.renditions[r].info.id),
                body: bytes,
                part: None,
            });
        }
    }

    /// Fills in what a TS rendition's first segment says of its codecs, picture and sound (the
    /// multivariant playlist's `CODECS` and `RESOLUTION`), once.
    pub(super) fn describe_ts(&mut self, r: usize, segment: &[u8]) {
        let Some(entry) = self.renditions.get_mut(r).filter(|e| e.info.codecs.is_none()) else { return };
        let facts = estuary_media::ts::probe::probe(segment);
        if facts.codecs.is_empty() {
            return;
        }
        let info = &mut entry.info;
        info.codecs = Some(facts.codecs.join(","));
        info.resolution = info.resolution.or(facts.resolution);
        info.channels = info.channels.or(facts.channels);
        info.sample_rate = info.sample_rate.or(facts.sample_rate);
        if let Some((_, height)) = facts.resolution {
            info.name = format!("{height}p");
        }
    }
}

/// A subtitle rendition shown as the encoder labelled it.
fn apply_label(info: &mut LiveRendition, label: &crate::upload::SubtitleLabel) {
    if let Some(language) = &label.language {
        info.language = Some(language.clone());
    }
    match (&label.name, &info.language) {
        (Some(name), _) => info.name = name.clone(),
        (None, Some(language)) => info.name = language.clone(),
        (None, None) => {}
    }
}
