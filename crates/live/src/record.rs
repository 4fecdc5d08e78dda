//! PURE: what a channel persists in storage: its record and its timeline (the state is rebuilt from
//! it by [`ChannelState::restore`](super::channel::ChannelState::restore)).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::channel::RenditionKey;
use super::model::{ChannelId, ChannelSettings, Container, LivePart, LiveRendition, LowLatency, SegmentParts, Status};

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
    /// In a shared timeline: the owner still holds the segment in memory (pods following the channel
    /// read it from there, over the owner's internal listener, before storage).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// MPEG-TS video: its keyframes (for the I-frame playlist every pod serves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframes: Option<crate::model::Keyframes>,
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
    /// Seconds added to the epoch's decode times (absent in records of older versions).
    #[serde(default)]
    pub shift: Option<f64>,
    #[serde(default)]
    pub timescales: Vec<u32>,
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
    /// In a shared timeline: the owner's internal listener (`http://10.0.3.7:8083`), where the
    /// segments it holds are read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_url: Option<String>,
    /// In a tail ([`TimelineRecord::tail`]): the sequence number of the slot just before its first
    /// (what a follower must already know to merge it), and of the oldest slot the whole timeline
    /// keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_of: Option<TailOf>,
    /// In a shared timeline: the LL-HLS parts the owner holds (pods following the channel list them
    /// and read their bytes from the owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_latency: Option<PartsRecord>,
}

/// The parts of a channel's newest segments, without their bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartsRecord {
    pub part_target: f64,
    /// By rendition index: its segments with parts, oldest first.
    pub renditions: Vec<Vec<SegmentPartsRecord>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentPartsRecord {
    pub msn: u64,
    pub epoch: u64,
    /// Each part's duration (seconds), whether it starts on a sync sample, and its size.
    pub parts: Vec<(f64, bool, u64)>,
}

/// Where a tail sits in the whole timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailOf {
    pub previous_msn: Option<u64>,
    pub oldest_msn: Option<u64>,
}

/// Slots a tail keeps at least, and beyond the oldest slot whose segment the owner holds (those whose
/// `held` mark changes).
const TAIL_SLOTS: usize = 64;
const TAIL_MARGIN: usize = 16;

/// How far a timeline got: what decides whether one may replace another in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineProgress {
    pub next_msn: u64,
    pub last_upload_ms: Option<u64>,
}

impl TimelineProgress {
    /// Whether a timeline this far along may replace `stored`: never one that counted further, or as
    /// far but saw a later upload (a process holding an old copy of a channel another process is
    /// writing must not turn it back).
    pub fn may_replace(self, stored: TimelineProgress) -> bool {
        self.next_msn > stored.next_msn
            || (self.next_msn == stored.next_msn && self.last_upload_ms >= stored.last_upload_ms)
    }
}

impl PartsRecord {
    /// The parts `ll` holds, without their bytes; `None` when there are none.
    pub fn of(ll: &LowLatency) -> Option<PartsRecord> {
        if ll.renditions.iter().all(|segments| segments.is_empty()) {
            return None;
        }
        let segment = |s: &SegmentParts| SegmentPartsRecord {
            msn: s.msn,
            epoch: s.epoch,
            parts: s.parts.iter().map(|p| (p.duration, p.independent, p.size)).collect(),
        };
        let renditions = ll.renditions.iter().map(|segments| segments.iter().map(segment).collect()).collect();
        Some(PartsRecord { part_target: ll.part_target, renditions })
    }

    /// The parts as a pod following the channel lists them: no bytes (they are read from the owner).
    pub fn to_low_latency(&self) -> LowLatency {
        let part = |&(duration, independent, size): &(f64, bool, u64)| LivePart {
            duration,
            bytes: bytes::Bytes::new(),
            size,
            independent,
        };
        let segment = |s: &SegmentPartsRecord| SegmentParts {
            msn: s.msn,
            epoch: s.epoch,
            parts: s.parts.iter().map(part).collect(),
        };
        let renditions = self.renditions.iter().map(|segments| segments.iter().map(segment).collect()).collect();
        LowLatency { renditions, part_target: self.part_target }
    }
}

impl TimelineRecord {
    pub fn progress(&self) -> TimelineProgress {
        TimelineProgress { next_msn: self.next_msn, last_upload_ms: self.last_upload_ms }
    }

    /// The timeline with only its newest slots (every slot that changes between two publications is
    /// among them: new ones, late parts, `held` marks): what a pod following the channel reads on an
    /// announcement, instead of the whole DVR window.
    pub fn tail(&self) -> TimelineRecord {
        let oldest_held = self.slots.iter().position(|s| s.parts.iter().flatten().any(|p| p.held));
        let keep = oldest_held.map_or(0, |i| self.slots.len() - i + TAIL_MARGIN).max(TAIL_SLOTS);
        let from = self.slots.len().saturating_sub(keep);
        let tail_of = TailOf {
            previous_msn: from.checked_sub(1).map(|i| self.slots[i].msn),
            oldest_msn: self.slots.first().map(|s| s.msn),
        };
        let slots = self.slots[from..].to_vec();
        TimelineRecord { slots, tail_of: Some(tail_of), ..self.clone_without_slots() }
    }

    /// `known` (a whole timeline as merged before) brought up to date by `tail`; `None` when the tail
    /// does not follow on from it (announcements were missed): read the whole timeline then.
    pub fn merge_tail(known: TimelineRecord, tail: TimelineRecord) -> Option<TimelineRecord> {
        let at = tail.tail_of?;
        let mut slots = match at.previous_msn {
            None => Vec::new(),
            Some(previous) => {
                let end = known.slots.iter().position(|s| s.msn == previous)? + 1;
                let oldest = at.oldest_msn.unwrap_or(0);
                let mut kept = known.slots;
                kept.truncate(end);
                kept.retain(|s| s.msn >= oldest);
                kept
            }
        };
        slots.extend(tail.slots.iter().cloned());
        Some(TimelineRecord { slots, tail_of: None, ..tail.clone_without_slots() })
    }

    fn clone_without_slots(&self) -> TimelineRecord {
        TimelineRecord {
            status: self.status,
            container: self.container,
            next_msn: self.next_msn,
            discontinuity_base: self.discontinuity_base,
            availability_start_ms: self.availability_start_ms,
            last_upload_ms: self.last_upload_ms,
            renditions: self.renditions.clone(),
            epochs: self.epochs.clone(),
            variants: self.variants.clone(),
            slots: Vec::new(),
            owner_url: self.owner_url.clone(),
            tail_of: None,
            low_latency: self.low_latency.clone(),
        }
    }
}

pub fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

pub fn from_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_shared_without_their_bytes() {
        assert_eq!(PartsRecord::of(&LowLatency::default()), None);
        let part = |size: usize| LivePart {
            duration: 0.52,
            bytes: bytes::Bytes::from(vec![7; size]),
            size: size as u64,
            independent: size == 10,
        };
        let segment = SegmentParts { msn: 4, epoch: 9, parts: vec![part(10), part(20)] };
        let ll = LowLatency { renditions: vec![[segment].into(), Default::default()], part_target: 0.6 };
        let record = PartsRecord::of(&ll).expect("parts");
        let json = serde_json::to_string(&record).unwrap();
        let followed = serde_json::from_str::<PartsRecord>(&json).unwrap().to_low_latency();
        let parts = &followed.segment(0, 4).expect("segment 4").parts;
        assert_eq!(followed.part_target, 0.6);
        assert_eq!(
            parts.iter().map(|p| (p.size, p.independent, p.bytes.len())).collect::<Vec<_>>(),
            [(10, true, 0), (20, false, 0)]
        );
    }

    fn timeline(msns: std::ops::Range<u64>, held_from: u64) -> TimelineRecord {
        let slot = |msn: u64| SlotRecord {
            msn,
            epoch: 1,
            discontinuity: false,
            pdt_ms: msn * 2000,
            duration: 2.0,
            parts: vec![Some(PartRecord {
                decode_time: msn,
                duration: 1,
                size: 1,
                held: msn >= held_from,
                keyframes: None,
            })],
        };
        let json = r#"{"status":"live","container":"fmp4","next_msn":0,"discontinuity_base":0,
            "availability_start_ms":0,"last_upload_ms":null,"renditions":[],"epochs":[],"variants":[],"slots":[]}"#;
        let mut t: TimelineRecord = serde_json::from_str(json).unwrap();
        t.next_msn = msns.end;
        t.slots = msns.map(slot).collect();
        t
    }

    fn msns(t: &TimelineRecord) -> Vec<u64> {
        t.slots.iter().map(|s| s.msn).collect()
    }

    #[test]
    fn a_follower_merges_tails_into_the_whole_timeline() {
        let whole = timeline(0..1000, 990);
        let tail = whole.tail();
        assert_eq!(tail.slots.len(), 64, "at least 64 slots");
        assert_eq!(tail.tail_of.unwrap().previous_msn, Some(935));
        let held_long = timeline(0..1000, 900).tail();
        assert_eq!(held_long.slots.first().unwrap().msn, 884, "every held slot and a margin");

        // Later: 20 more slots, the 10 oldest evicted, a held mark gone: the tail brings it all.
        let known = timeline(0..1000, 990);
        let mut later = timeline(10..1020, 1000);
        later.slots[0].parts[0] = None;
        let merged = TimelineRecord::merge_tail(known, later.tail()).unwrap();
        assert_eq!(msns(&merged), msns(&later));
        let held = |t: &TimelineRecord| t.slots.iter().filter(|s| s.parts[0].as_ref().is_some_and(|p| p.held)).count();
        assert_eq!(held(&merged), held(&later));
        assert!(merged.tail_of.is_none());

        // Missed too much (the tail starts past what is known): read the whole timeline.
        assert!(TimelineRecord::merge_tail(timeline(0..100, 90), later.tail()).is_none());
        // A short timeline's tail is all of it.
        let short = timeline(5..20, 0);
        assert_eq!(msns(&TimelineRecord::merge_tail(timeline(0..0, 0), short.tail()).unwrap()), msns(&short));
    }

    #[test]
    fn a_timeline_never_replaces_one_that_got_further() {
        let at = |next_msn, last_upload_ms| TimelineProgress { next_msn, last_upload_ms };
        assert!(at(15, Some(9)).may_replace(at(3, Some(20))), "counted further");
        assert!(!at(3, Some(20)).may_replace(at(15, Some(9))), "the stale copy of a busy channel");
        assert!(at(15, Some(9)).may_replace(at(15, Some(9))), "the same progress (an idle end, a stop)");
        assert!(!at(15, Some(8)).may_replace(at(15, Some(9))));
        assert!(at(1, None).may_replace(at(0, None)));
        let json = r#"{"next_msn": 7, "last_upload_ms": 5, "slots": [], "status": "live"}"#;
        assert_eq!(serde_json::from_str::<TimelineProgress>(json).unwrap(), at(7, Some(5)));
    }
}
