//! PURE: what a channel persists in storage (its record and its timeline) and how state is rebuilt
//! from it, so media sequence numbers keep counting across an estuary restart.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::model::{ChannelId, ChannelSettings, Container, LiveRendition, Part, Slot, Status};
use super::state::{ChannelState, Epoch, RenditionEntry, RenditionKey, Variant};
use crate::packaging::fmp4::parse::InitInfo;

/// `.estuary/live/{channel}/channel.json`: the channel as the API created it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: ChannelId,
    /// SHA-256 of the stream key (hex); the key itself is never stored.
    #[serde(default)]
    pub key_sha256: String,
    /// What records written before keys were hashed held: the key in clear. Read, hashed, dropped.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
    pub settings: ChannelSettings,
    pub created_ms: u64,
    /// Stopped through the API (uploads refused).
    #[serde(default)]
    pub stopped: bool,
}

/// `.estuary/live/channels.json`: which channels exist.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChannelIndex {
    pub channels: Vec<ChannelId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    pub decode_time: u64,
    pub duration: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotRecord {
    pub msn: u64,
    pub epoch: u64,
    pub discontinuity: bool,
    pub pdt_ms: u64,
    pub duration: f64,
    pub parts: Vec<Option<PartRecord>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub id: u64,
    pub first_encoder_msn: u64,
    pub first_msn: u64,
    pub members: BTreeSet<String>,
    pub closed: bool,
    /// Renditions that have an init segment in this epoch.
    pub inits: Vec<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantRecord {
    pub path: String,
    pub init_path: Option<String>,
    pub has_init: bool,
    pub tracks: Vec<Option<usize>>,
    pub epoch: Option<u64>,
    pub last_encoder_msn: Option<u64>,
    pub ended: bool,
}

/// `.estuary/live/{channel}/timeline.json`: everything needed to keep serving and counting after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineRecord {
    pub status: Status,
    pub container: Option<Container>,
    pub next_msn: u64,
    pub discontinuity_base: u64,
    pub availability_start_ms: u64,
    pub last_upload_ms: Option<u64>,
    pub renditions: Vec<(RenditionKey, LiveRendition)>,
    pub epochs: Vec<EpochRecord>,
    pub variants: Vec<VariantRecord>,
    pub slots: Vec<SlotRecord>,
}

pub fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

pub fn from_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

impl ChannelState {
    pub fn to_record(&self) -> TimelineRecord {
        TimelineRecord {
            status: self.status,
            container: self.container,
            next_msn: self.next_msn,
            discontinuity_base: self.discontinuity_base,
            availability_start_ms: ms(self.availability_start),
            last_upload_ms: self.last_upload.map(ms),
            renditions: self.renditions.iter().map(|r| (r.key.clone(), r.info.clone())).collect(),
            epochs: self
                .epochs
                .iter()
                .map(|e| EpochRecord {
                    id: e.id,
                    first_encoder_msn: e.first_encoder_msn,
                    first_msn: e.first_msn,
                    members: e.members.clone(),
                    closed: e.closed,
                    inits: e.inits.iter().map(Option::is_some).collect(),
                })
                .collect(),
            variants: self
                .variants
                .iter()
                .map(|(path, v)| VariantRecord {
                    path: path.clone(),
                    init_path: v.init_path.clone(),
                    has_init: v.init.is_some(),
                    tracks: v.tracks.clone(),
                    epoch: v.epoch,
                    last_encoder_msn: v.last_encoder_msn,
                    ended: v.ended,
                })
                .collect(),
            slots: self
                .slots
                .iter()
                .map(|s| SlotRecord {
                    msn: s.msn,
                    epoch: s.epoch,
                    discontinuity: s.discontinuity,
                    pdt_ms: ms(s.pdt),
                    duration: s.duration,
                    parts: s
                        .parts
                        .iter()
                        .map(|p| {
                            p.as_ref().map(|p| PartRecord {
                                decode_time: p.decode_time,
                                duration: p.duration,
                                size: p.size,
                            })
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Rebuilds a channel from its records. `inits` yields the stored init segment of
    /// (epoch, rendition index); `sources` the stored init of a pushed variant.
    pub fn restore(
        record: &ChannelRecord,
        timeline: TimelineRecord,
        mut inits: impl FnMut(u64, usize) -> Option<Bytes>,
        mut sources: impl FnMut(&str) -> Option<(Bytes, Arc<InitInfo>)>,
    ) -> ChannelState {
        let mut state =
            ChannelState::new(record.id.clone(), record.settings.clone(), from_ms(timeline.availability_start_ms));
        state.status = timeline.status;
        state.accepting = !record.stopped;
        state.container = timeline.container;
        state.next_msn = timeline.next_msn;
        state.discontinuity_base = timeline.discontinuity_base;
        state.last_upload = timeline.last_upload_ms.map(from_ms);
        state.version = 1;
        state.renditions = timeline
            .renditions
            .into_iter()
            .map(|(key, info)| RenditionEntry { key, info, recent: Default::default() })
            .collect();
        state.epochs = timeline
            .epochs
            .into_iter()
            .map(|e| Epoch {
                id: e.id,
                first_encoder_msn: e.first_encoder_msn,
                first_msn: e.first_msn,
                members: e.members,
                closed: e.closed,
                inits: e.inits.iter().enumerate().map(|(r, has)| has.then(|| inits(e.id, r)).flatten()).collect(),
            })
            .collect();
        for v in timeline.variants {
            let (init_bytes, init) = match v.has_init.then(|| sources(&v.path)).flatten() {
                Some((b, i)) => (Some(b), Some(i)),
                None => (None, None),
            };
            state.variants.insert(
                v.path,
                Variant {
                    init_path: v.init_path,
                    init,
                    init_bytes,
                    tracks: v.tracks,
                    epoch: v.epoch,
                    last_encoder_msn: v.last_encoder_msn,
                    ended: v.ended,
                    restarted: false,
                    committed: Default::default(),
                    last_playlist: None,
                },
            );
        }
        state.slots = timeline
            .slots
            .into_iter()
            .map(|s| {
                Arc::new(Slot {
                    msn: s.msn,
                    epoch: s.epoch,
                    discontinuity: s.discontinuity,
                    pdt: from_ms(s.pdt_ms),
                    duration: s.duration,
                    parts: s
                        .parts
                        .into_iter()
                        .map(|p| {
                            p.map(|p| Part {
                                decode_time: p.decode_time,
                                duration: p.duration,
                                size: p.size,
                                bytes: None,
                                stored: true,
                            })
                        })
                        .collect(),
                })
            })
            .collect();
        state
    }
}
