//! PURE: what a channel persists in storage: its record and its timeline (the state is rebuilt from
//! it by [`ChannelState::restore`](super::channel::ChannelState::restore)).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::channel::RenditionKey;
use super::model::{ChannelId, ChannelSettings, Container, LiveRendition, Status};

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
}

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

impl TimelineRecord {
    pub fn progress(&self) -> TimelineProgress {
        TimelineProgress { next_msn: self.next_msn, last_upload_ms: self.last_upload_ms }
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
