//! Where a channel's objects live in storage: its media (`live/{channel}/...`, what the edge reads
//! back) and estuary's own records (below [`estuary_media::storage_key::RECORDS`], which no edge route reads).

use super::model::ChannelId;
use estuary_media::presentation::RenditionId;
use estuary_media::storage_key::StorageKey;
use estuary_media::url::Container;

fn key(s: String) -> StorageKey {
    // Channel ids, rendition ids and numbers only ever make valid keys.
    StorageKey::parse(&s).unwrap_or_else(|_| StorageKey::parse("live/invalid").expect("static key"))
}

pub fn part(ch: &ChannelId, epoch: u64, r: RenditionId, msn: u64, container: Container) -> StorageKey {
    key(format!("live/{ch}/{epoch}/{r}/{msn}.{}", container.extension()))
}

pub fn init(ch: &ChannelId, epoch: u64, r: RenditionId) -> StorageKey {
    key(format!("live/{ch}/{epoch}/{r}/init.mp4"))
}

/// estuary's own records of a channel: below [`estuary_media::storage_key::RECORDS`], which no edge
/// route reads.
pub fn records(ch: &ChannelId) -> String {
    format!("{}/live/{ch}/", estuary_media::storage_key::RECORDS)
}

pub fn index() -> StorageKey {
    key(format!("{}/live/channels.json", estuary_media::storage_key::RECORDS))
}

pub fn channel(ch: &ChannelId) -> StorageKey {
    key(format!("{}channel.json", records(ch)))
}

pub fn timeline(ch: &ChannelId) -> StorageKey {
    key(format!("{}timeline.json", records(ch)))
}

/// A pushed variant's own (multi-track) init segment, to continue its session after a restart.
pub fn source_init(ch: &ChannelId, variant: &str) -> StorageKey {
    let safe: String =
        variant.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    key(format!("{}sources/{safe}.init.mp4", records(ch)))
}

/// Where records were kept before they moved below [`estuary_media::storage_key::RECORDS`] (edge-readable).
pub mod legacy {
    use super::*;

    pub fn index() -> StorageKey {
        key("live/channels.json".into())
    }

    pub fn channel(ch: &ChannelId) -> StorageKey {
        key(format!("live/{ch}/channel.json"))
    }

    pub fn timeline(ch: &ChannelId) -> StorageKey {
        key(format!("live/{ch}/timeline.json"))
    }
}
