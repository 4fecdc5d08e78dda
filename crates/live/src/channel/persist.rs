//! PURE: a channel's state to and from its timeline record, so media sequence numbers keep counting
//! across an estuary restart.

use std::sync::Arc;

use bytes::Bytes;

use super::epochs::{Epoch, Epochs};
use super::window::Window;
use super::{ChannelState, RenditionEntry, Variant};
use crate::model::{Part, Slot};
use crate::record::{
    ChannelRecord, EpochRecord, PartRecord, PartsRecord, SlotRecord, TimelineRecord, VariantRecord, from_ms, ms,
};
use estuary_media::fmp4::parse::InitInfo;

impl ChannelState {
    /// The state a pod takes a channel over with when its owner is gone: where the owner got (its
    /// shared timeline), this pod's encoder's init segments pending, the owner's last epoch closed and
    /// every variant restarted, so the next segment opens a new epoch after the owner's last one.
    pub fn take_over(
        record: &ChannelRecord,
        timeline: TimelineRecord,
        inits: std::collections::HashMap<String, (Bytes, Arc<InitInfo>)>,
    ) -> ChannelState {
        let mut state = ChannelState::restore(record, &timeline, |_, _| None, |_| None);
        for variant in state.variants.values_mut() {
            variant.restarted = true;
        }
        state.epochs.close_current();
        state.pending_inits = inits;
        state
    }

    /// The timeline other pods serve from, `owner_url` being this pod's internal listener. It lists a
    /// segment once storage has it (so a failover never leaves a listed segment no pod has), and what
    /// it lists it never takes back: per rendition, parts in order up to the first not yet stored
    /// (a later variant's part arriving unstored leaves the slots already shared as they were), slots
    /// up to the last with a listed part. Parts this pod still holds are marked, for the others to read
    /// them from here.
    pub fn to_shared_record(&self, owner_url: Option<&str>) -> TimelineRecord {
        let mut record = self.to_record();
        let mut blocked = vec![false; self.renditions.len()];
        let mut listed = 0;
        for (k, (slot, shared)) in self.window.slots().iter().zip(&mut record.slots).enumerate() {
            for (r, (part, shared)) in slot.parts.iter().zip(&mut shared.parts).enumerate() {
                let (Some(part), Some(shared_part)) = (part, shared.as_mut()) else { continue };
                if blocked.len() <= r {
                    blocked.resize(r + 1, false);
                }
                blocked[r] |= !part.stored;
                if blocked[r] {
                    *shared = None;
                } else {
                    shared_part.held = owner_url.is_some() && part.bytes.is_some();
                }
            }
            if shared.parts.iter().any(Option::is_some) {
                listed = k + 1;
            }
        }
        record.slots.truncate(listed);
        record.owner_url = owner_url.map(str::to_owned);
        // Parts are only in memory: other pods can list them only when they can read them here.
        record.low_latency = owner_url.and_then(|_| PartsRecord::of(&self.low_latency));
        record
    }

    pub fn to_record(&self) -> TimelineRecord {
        TimelineRecord {
            status: self.status,
            container: self.container,
            next_msn: self.window.next_msn(),
            discontinuity_base: self.window.discontinuity_base(),
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
                    shift: e.shift,
                    timescales: e.timescales.clone(),
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
                .window
                .slots()
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
                                held: false,
                                keyframes: p.keyframes.as_deref().cloned(),
                            })
                        })
                        .collect(),
                })
                .collect(),
            owner_url: None,
            tail_of: None,
            low_latency: None,
        }
    }

    /// Rebuilds a channel from its records. `inits` yields the stored init segment of
    /// (epoch, rendition index); `sources` the stored init of a pushed variant.
    pub fn restore(
        record: &ChannelRecord,
        timeline: &TimelineRecord,
        mut inits: impl FnMut(u64, usize) -> Option<Bytes>,
        mut sources: impl FnMut(&str) -> Option<(Bytes, Arc<InitInfo>)>,
    ) -> ChannelState {
        let mut state =
            ChannelState::new(record.id.clone(), record.settings.clone(), from_ms(timeline.availability_start_ms));
        state.status = timeline.status;
        state.accepting = !record.stopped;
        state.container = timeline.container;
        state.last_upload = timeline.last_upload_ms.map(from_ms);
        state.version += 1;
        state.renditions = timeline
            .renditions
            .iter()
            .map(|(key, info)| RenditionEntry { key: key.clone(), info: info.clone(), recent: Default::default() })
            .collect();
        state.epochs = Epochs::restored(
            timeline
                .epochs
                .iter()
                .map(|e| Epoch {
                    id: e.id,
                    first_encoder_msn: e.first_encoder_msn,
                    first_msn: e.first_msn,
                    members: e.members.clone(),
                    closed: e.closed,
                    inits: e.inits.iter().enumerate().map(|(r, has)| has.then(|| inits(e.id, r)).flatten()).collect(),
                    shift: e.shift,
                    timescales: e.timescales.clone(),
                })
                .collect(),
        );
        for v in &timeline.variants {
            let (init_bytes, init) = match v.has_init.then(|| sources(&v.path)).flatten() {
                Some((b, i)) => (Some(b), Some(i)),
                None => (None, None),
            };
            state.variants.insert(
                v.path.clone(),
                Variant {
                    init_path: v.init_path.clone(),
                    init,
                    init_bytes,
                    tracks: v.tracks.clone(),
                    epoch: v.epoch,
                    last_encoder_msn: v.last_encoder_msn,
                    ended: v.ended,
                    restarted: false,
                    committed: Default::default(),
                    last_playlist: None,
                },
            );
        }
        let slots = timeline
            .slots
            .iter()
            .map(|s| {
                Arc::new(Slot {
                    msn: s.msn,
                    epoch: s.epoch,
                    discontinuity: s.discontinuity,
                    pdt: from_ms(s.pdt_ms),
                    duration: s.duration,
                    parts: s
                        .parts
                        .iter()
                        .map(|p| {
                            p.as_ref().map(|p| Part {
                                decode_time: p.decode_time,
                                duration: p.duration,
                                size: p.size,
                                bytes: None,
                                stored: true,
                                at_owner: p.held,
                                keyframes: p.keyframes.clone().map(Arc::new),
                            })
                        })
                        .collect(),
                })
            })
            .collect();
        state.window = Window::restored(slots, timeline.next_msn, timeline.discontinuity_base);
        state
    }
}
