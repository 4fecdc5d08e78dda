//! PURE: encoder sessions: which rendition each pushed track is (the same across restarts), which
//! epoch a session's segments belong to, and the per-track init segments of each epoch.

use std::time::SystemTime;

use super::parts::{describe, ts_rendition};
use super::{ChannelState, Effect, Epoch, RenditionEntry, RenditionKey};
use crate::live::keys;
use crate::live::model::LiveRendition;
use crate::packaging::fmp4::{InitTrack, write_init};
use crate::packaging::mp4::TrackKind;
use crate::packaging::presentation::RenditionId;

impl ChannelState {
    /// Gives every track of a variant a rendition (the same one across restarts).
    pub(super) fn assign_renditions(&mut self, variant_path: &str) {
        let variant = &self.variants[variant_path];
        let tracks: Vec<(TrackKind, Option<LiveRendition>)> = match &variant.init {
            Some(init) => {
                let has_video = init.tracks.iter().any(|t| t.kind == TrackKind::Video);
                init.tracks.iter().map(|t| (t.kind, Some(describe(t, has_video)))).collect()
            }
            None => vec![(TrackKind::Video, None)],
        };
        let mut assigned = Vec::new();
        let mut nth = [0usize; 2];
        for (kind, info) in tracks {
            let k = usize::from(kind == TrackKind::Audio);
            let key = RenditionKey { variant: variant_path.to_owned(), kind, nth: nth[k] };
            nth[k] += 1;
            let index = match self.renditions.iter().position(|r| r.key == key) {
                Some(i) => i,
                None => {
                    let count = self.renditions.iter().filter(|r| r.info.id.kind == kind).count() as u16;
                    let id = RenditionId { kind, index: count };
                    let info = info.clone().unwrap_or_else(|| ts_rendition(id));
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
        if let Some(id) = self.variants[variant_path].epoch
            && let Some(i) = self.epochs.iter().position(|ep| ep.id == id)
        {
            return i;
        }
        let joinable = self.epochs.last().is_some_and(|ep| !ep.closed && !ep.members.contains(variant_path));
        if !joinable {
            let last_id = self.epochs.last().map_or(0, |ep| ep.id);
            let now_ms = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
            let id = now_ms.max(last_id + 1);
            self.epochs.push(Epoch {
                id,
                first_encoder_msn: e,
                first_msn: self.next_msn,
                members: Default::default(),
                closed: false,
                inits: Vec::new(),
            });
        }
        let index = self.epochs.len() - 1;
        let id = self.epochs[index].id;
        self.epochs[index].members.insert(variant_path.to_owned());
        self.variant(variant_path).epoch = Some(id);
        index
    }
    /// Writes the per-track init segments of a variant into an epoch.
    pub(super) fn add_inits(&mut self, epoch: usize, variant_path: &str, effects: &mut Vec<Effect>) {
        let variant = &self.variants[variant_path];
        let Some(init) = variant.init.clone() else { return };
        let tracks = variant.tracks.clone();
        let epoch_id = self.epochs[epoch].id;
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
            });
            let inits = &mut self.epochs[epoch].inits;
            if inits.len() <= r {
                inits.resize(r + 1, None);
            }
            inits[r] = Some(bytes.clone());
            effects.push(Effect::Put {
                key: keys::init(&self.id, epoch_id, self.renditions[r].info.id),
                body: bytes,
                part: None,
            });
        }
    }
}
