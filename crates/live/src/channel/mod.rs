//! PURE: one channel's state and its transitions: uploads in, slots and snapshots out, plus the
//! storage effects the owner must carry out. No I/O and no clocks: `now` is always passed in.
//!
//! Split by concern: uploads and the snapshot here; [`commit`] turns pushed playlists into slots,
//! [`sessions`] tracks encoder sessions (renditions, epochs, inits), [`retention`] what is kept how
//! long, [`persist`] the timeline record.

mod commit;
mod epochs;
mod latency;
mod low_latency;
mod parts;
mod persist;
mod retention;
mod sessions;
mod window;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::model::{
    ChannelId, ChannelSettings, ChannelSnapshot, Container, EpochInits, LiveRendition, LowLatency, Status,
};
use super::upload::{self, Upload, UploadError};
use epochs::Epochs;
use estuary_media::fmp4::parse::InitInfo;
use estuary_media::mp4::TrackKind;
use estuary_media::storage_key::StorageKey;
use window::Window;

/// Uploads waiting for a playlist that lists them; more are dropped, oldest first.
const MAX_PENDING: usize = 256;
/// Variants (media playlists, or CMAF ingest tracks) one channel may have: a ladder is a handful,
/// and each costs every pod memory and every player a master-playlist line.
pub const MAX_VARIANTS: usize = 32;

/// I/O the owner carries out after a transition.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Write through to storage; `part` says which part to mark stored afterwards.
    Put {
        key: StorageKey,
        body: Bytes,
        part: Option<(u64, usize)>,
    },
    Delete {
        key: StorageKey,
    },
    /// A pushed segment that will never be served: the owner logs and counts it.
    Dropped {
        segment: String,
        reason: DropReason,
    },
}

/// Why a pushed segment was not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    #[error("listed by the encoder's playlist but never uploaded")]
    NeverUploaded,
    #[error("its bytes do not match its variant's init segment")]
    Unparsable,
    #[error("its variant has no init segment")]
    NoInit,
    #[error("it carries no track of the channel")]
    NoTracks,
    #[error("it is older than the channel's DVR window")]
    TooOld,
    #[error("it is too far ahead of the channel's other variants")]
    TooFarAhead,
    #[error("its slot belongs to another encoder session")]
    OtherSession,
    #[error("it waited for a playlist listing it until newer uploads pushed it out")]
    Overflow,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::NeverUploaded,
        DropReason::Unparsable,
        DropReason::NoInit,
        DropReason::NoTracks,
        DropReason::TooOld,
        DropReason::TooFarAhead,
        DropReason::OtherSession,
        DropReason::Overflow,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NeverUploaded => "never_uploaded",
            DropReason::Unparsable => "unparsable",
            DropReason::NoInit => "no_init",
            DropReason::NoTracks => "no_tracks",
            DropReason::TooOld => "too_old",
            DropReason::TooFarAhead => "too_far_ahead",
            DropReason::OtherSession => "other_session",
            DropReason::Overflow => "overflow",
        }
    }
}

/// Who ended a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The encoder went quiet for longer than the channel's idle timeout; its next upload resumes it.
    Idle,
    /// An operator stopped it: uploads are refused until it is started again.
    Operator,
}

/// Identifies a rendition across encoder restarts: which pushed variant, which kind, which one of that kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenditionKey {
    pub variant: String,
    pub kind: TrackKind,
    pub nth: usize,
}

#[derive(Debug, Clone)]
pub(super) struct RenditionEntry {
    pub key: RenditionKey,
    pub info: LiveRendition,
    /// (bytes, seconds) of its newest parts, for bit rates.
    pub recent: VecDeque<(u64, f64)>,
}

/// A pushed variant (one media playlist of the encoder).
#[derive(Debug, Clone, Default)]
pub(super) struct Variant {
    pub init_path: Option<String>,
    pub init: Option<Arc<InitInfo>>,
    pub init_bytes: Option<Bytes>,
    /// Rendition index of each init track (parallel to `init.tracks`).
    pub tracks: Vec<Option<usize>>,
    pub epoch: Option<u64>,
    pub last_encoder_msn: Option<u64>,
    /// The encoder closed this playlist (`EXT-X-ENDLIST`): whatever comes next is a new session.
    pub ended: bool,
    /// A committed segment name was uploaded again with other bytes: the encoder restarted.
    pub restarted: bool,
    /// Recently committed names and a hash of their bytes.
    pub committed: VecDeque<(String, u64)>,
    /// The newest playlist, to commit a segment that arrives after the playlist listing it.
    pub last_playlist: Option<Arc<m3u8_rs::MediaPlaylist>>,
}

#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub bytes: Bytes,
    pub container: Container,
    pub arrived: SystemTime,
}

pub use latency::PublishLatency;

/// Where a new channel state's versions start: a different range for every state this process makes
/// (2^32 versions each), so a channel deleted and created again, or followed again, never renders
/// under a version an earlier one used (rendered playlists are cached by channel, path and version).
fn first_version() -> u64 {
    static STATES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // Below the followed-snapshot bit (1 << 63); wraps after 2^31 states.
    (STATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0x7FFF_FFFF) << 32
}

/// Everything the owner of a channel knows.
#[derive(Debug, Clone)]
pub struct ChannelState {
    pub id: ChannelId,
    pub settings: ChannelSettings,
    pub status: Status,
    /// False after an API stop: uploads are refused until the channel is started again.
    pub accepting: bool,
    pub availability_start: SystemTime,
    pub last_upload: Option<SystemTime>,
    pub version: u64,
    pub(super) container: Option<Container>,
    pub(super) renditions: Vec<RenditionEntry>,
    pub(super) variants: BTreeMap<String, Variant>,
    pub(super) pending_segments: HashMap<String, Pending>,
    pub(super) pending_inits: HashMap<String, (Bytes, Arc<InitInfo>)>,
    pub(super) epochs: Epochs,
    pub(super) window: Window,
    /// From a segment's upload to the playlist listing it.
    pub(super) latencies: latency::Latencies,
    /// From a chunk's arrival to its part's publication.
    pub(super) part_latencies: latency::Latencies,
    /// Parts of the segments being uploaded and of the newest ones ([`low_latency`]).
    pub(super) low_latency: Arc<LowLatency>,
    /// Subtitle variants' languages and names from the encoder's master playlist, by playlist path
    /// (at most [`MAX_LABELS`]).
    pub(super) subtitle_labels: HashMap<String, crate::upload::SubtitleLabel>,
}

/// Most subtitle labels a channel remembers from its encoder's master playlist.
const MAX_LABELS: usize = 32;

pub use low_latency::OpenUpload;

impl ChannelState {
    pub fn new(id: ChannelId, settings: ChannelSettings, now: SystemTime) -> Self {
        ChannelState {
            id,
            settings,
            status: Status::Waiting,
            accepting: true,
            availability_start: now,
            last_upload: None,
            version: first_version(),
            container: None,
            renditions: Vec::new(),
            variants: BTreeMap::new(),
            pending_segments: HashMap::new(),
            pending_inits: HashMap::new(),
            epochs: Epochs::default(),
            window: Window::default(),
            latencies: Default::default(),
            part_latencies: Default::default(),
            low_latency: Arc::default(),
            subtitle_labels: HashMap::new(),
        }
    }

    /// Applies one upload. An `Err` changes nothing players can see.
    pub fn apply(&mut self, upload: Upload, now: SystemTime) -> Result<Vec<Effect>, UploadError> {
        if !self.accepting {
            return Err(UploadError::Stopped);
        }
        self.last_upload = Some(now);
        let effects = match upload {
            Upload::Init { path, bytes, info } => {
                self.pending_inits.insert(path, (bytes, info));
                Vec::new()
            }
            Upload::Segment { path, bytes, container } => {
                self.note_reupload(&path, &bytes);
                let mut effects = Vec::new();
                if self.pending_segments.len() >= MAX_PENDING
                    && let Some(oldest) =
                        self.pending_segments.iter().min_by_key(|(_, p)| p.arrived).map(|(k, _)| k.clone())
                {
                    self.pending_segments.remove(&oldest);
                    effects.push(Effect::Dropped { segment: oldest, reason: DropReason::Overflow });
                }
                self.pending_segments.insert(path.clone(), Pending { bytes, container, arrived: now });
                // Uploaded after the playlist that lists it: commit now rather than at the next playlist.
                let listed = self.variants.iter().find_map(|(variant, v)| {
                    let dir = variant.rsplit_once('/').map_or("", |(d, _)| d);
                    let pl = v.last_playlist.as_ref().filter(|_| !v.restarted)?;
                    let i = pl
                        .segments
                        .iter()
                        .position(|s| upload::resolve(dir, &s.uri).as_deref() == Some(path.as_str()))?;
                    // Only a playlist of the running session says where a new upload belongs. A closed
                    // one still takes the segments it listed that had not arrived (an encoder uploading
                    // in parallel, as ffmpeg without -http_persistent does, sends its last playlist
                    // before its last segment); any other upload after it starts a new session.
                    let awaited = v.last_encoder_msn.is_none_or(|last| pl.media_sequence + i as u64 > last);
                    (!pl.end_list || awaited).then(|| (variant.clone(), pl.clone()))
                });
                if let Some((variant, pl)) = listed {
                    effects.extend(self.on_media_playlist(&variant, &pl, now)?);
                }
                effects
            }
            Upload::MediaPlaylist { path, playlist } => {
                let playlist: Arc<m3u8_rs::MediaPlaylist> = Arc::from(playlist);
                let effects = self.on_media_playlist(&path, &playlist, now)?;
                if let Some(v) = self.variants.get_mut(&path) {
                    v.last_playlist = Some(playlist);
                }
                effects
            }
            Upload::MasterPlaylist { subtitles, .. } => {
                for label in subtitles {
                    self.label_subtitles(label);
                }
                Vec::new()
            }
        };
        Ok(effects)
    }

    /// Bytes of media this channel holds in memory: uploads not yet listed, and the segments of its
    /// window (and any not yet stored).
    pub fn held_bytes(&self) -> u64 {
        let pending: u64 = self.pending_segments.values().map(|p| p.bytes.len() as u64).sum();
        let inits: u64 = self.pending_inits.values().map(|(b, _)| b.len() as u64).sum();
        pending + inits + self.window_bytes()
    }

    /// Bytes of the committed segments kept in memory (the window, and any not yet stored).
    pub fn window_bytes(&self) -> u64 {
        self.window.bytes_in_memory()
    }

    /// Keeps init segments an encoder sent before this pod owned the channel, as if uploaded here.
    pub fn keep_inits(&mut self, inits: HashMap<String, (Bytes, Arc<InitInfo>)>) {
        self.pending_inits.extend(inits);
    }

    /// Forgets an upload that was never listed (encoders delete old segments; listed ones follow our own window).
    pub fn delete(&mut self, path: &str) {
        self.pending_segments.remove(path);
        self.pending_inits.remove(path);
    }

    /// A name that was committed, uploaded again with different bytes, means the encoder restarted.
    fn note_reupload(&mut self, path: &str, bytes: &[u8]) {
        let hash = xxhash_rust::xxh3::xxh3_64(bytes);
        for v in self.variants.values_mut() {
            if v.committed.iter().any(|(p, h)| p == path && *h != hash) {
                v.restarted = true;
            }
        }
    }

    /// Ends the channel: playlists close with `EXT-X-ENDLIST`. An operator's end also refuses
    /// further uploads.
    pub fn end(&mut self, by: EndedBy) {
        if self.status != Status::Ended {
            self.status = Status::Ended;
            self.version += 1;
        }
        if by == EndedBy::Operator {
            self.accepting = false;
        }
        // Whatever the encoder sends next starts a new epoch.
        self.epochs.close_current();
        for v in self.variants.values_mut() {
            v.epoch = None;
        }
    }

    /// Whether the channel has numbered a segment (a timeline to continue, not a fresh start).
    pub fn has_history(&self) -> bool {
        self.window.next_msn() > 0
    }

    /// Lets a stopped channel take uploads again.
    pub fn resume(&mut self) {
        if !self.accepting {
            self.accepting = true;
            self.version += 1;
        }
    }

    /// The variant pushed at `path`, created on first sight.
    pub(super) fn variant(&mut self, path: &str) -> &mut Variant {
        self.variants.entry(path.to_owned()).or_default()
    }

    /// The immutable view the edge serves from.
    pub fn snapshot(&self, now: SystemTime) -> ChannelSnapshot {
        ChannelSnapshot {
            id: self.id.clone(),
            settings: self.settings.clone(),
            version: self.version,
            status: self.status,
            accepting: self.accepting,
            last_upload: self.last_upload,
            container: self.container,
            renditions: self.renditions.iter().map(|r| r.info.clone()).collect(),
            epochs: self.epochs.iter().map(|e| EpochInits { epoch: e.id, inits: e.inits.clone() }).collect(),
            slots: self.window.slots().iter().cloned().collect(),
            discontinuity_base: self.window.discontinuity_base(),
            availability_start: self.availability_start,
            published: now,
            publish_latency: self.latencies.summary(),
            part_publish_latency: self.part_latencies.summary(),
            owner_url: None,
            low_latency: self.low_latency.clone(),
        }
    }
}
