//! A channel's records in storage (`.estuary/live/...`): JSON read with a size cap (nothing is
//! parsed whole without one), written whole, and the one-time move of records that older versions
//! kept where the edge could read them, with stream keys in clear; a channel's state rebuilt from them.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::channel::ChannelState;
use super::key::KeyHash;
use super::keys::{self, legacy};
use super::model::ChannelId;
use super::record::{ChannelIndex, ChannelRecord, TimelineRecord};
use crate::packaging::fmp4::parse::parse_init;
use crate::storage::{Storage, StorageError, StorageKey};

/// The largest record read (a timeline of a day-long DVR window at 1 s segments is ~20 MiB).
pub(super) const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// The record at `key`, `None` when there is none (or it is unreadable or too large, which is logged).
pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    storage: &dyn Storage,
    key: &StorageKey,
) -> Result<Option<T>, StorageError> {
    match storage.get_range(key, 0..MAX_RECORD_BYTES + 1).await {
        Ok(o) if o.meta.size > MAX_RECORD_BYTES => {
            tracing::warn!(%key, size = o.meta.size, limit = MAX_RECORD_BYTES, "record too large; ignored");
            Ok(None)
        }
        Ok(o) => {
            Ok(serde_json::from_slice(&o.body).map_err(|e| tracing::warn!(%key, error = %e, "unreadable record")).ok())
        }
        Err(StorageError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn write_json<T: serde::Serialize>(
    storage: &dyn Storage,
    key: &StorageKey,
    value: &T,
) -> Result<(), StorageError> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| StorageError::Unavailable(e.to_string()))?;
    storage.put(key, Bytes::from(body)).await
}

/// Moves records from `live/` (readable through `/static/`, keys in clear) below `.estuary/live/`,
/// hashing each stream key. Idempotent: a crash half-way is finished at the next start.
pub(super) async fn migrate_legacy(storage: &dyn Storage) -> Result<(), StorageError> {
    let Some(old) = read_json::<ChannelIndex>(storage, &legacy::index()).await? else { return Ok(()) };
    let mut index = read_json::<ChannelIndex>(storage, &keys::index()).await?.unwrap_or_default();
    for id in &old.channels {
        if let Some(mut record) = read_json::<ChannelRecord>(storage, &legacy::channel(id)).await? {
            hash_clear_key(&mut record);
            write_json(storage, &keys::channel(id), &record).await?;
        }
        if let Ok(timeline) = storage.get(&legacy::timeline(id)).await {
            storage.put(&keys::timeline(id), timeline.body).await?;
        }
        for source in storage.list(&format!("live/{id}/sources/")).await? {
            let name = source.key.as_str().rsplit('/').next().unwrap_or_default();
            let moved = StorageKey::parse(&format!("{}sources/{name}", keys::records(id)))?;
            storage.put(&moved, storage.get(&source.key).await?.body).await?;
            storage.delete(&source.key).await?;
        }
        storage.delete(&legacy::timeline(id)).await?;
        storage.delete(&legacy::channel(id)).await?;
        if !index.channels.contains(id) {
            index.channels.push(id.clone());
        }
    }
    index.channels.sort();
    write_json(storage, &keys::index(), &index).await?;
    storage.delete(&legacy::index()).await?;
    tracing::info!(
        channels = old.channels.len(),
        "moved live channel records below .estuary/ (stream keys now hashed)"
    );
    Ok(())
}

/// A record written before keys were hashed: hash its key and forget the clear one.
pub(super) fn hash_clear_key(record: &mut ChannelRecord) {
    if let Some(clear) = record.token.take() {
        record.key_sha256 = KeyHash::of(&clear).to_hex();
    }
}

/// The ids of every channel on record.
pub(super) async fn channel_ids(storage: &dyn Storage) -> Result<Vec<ChannelId>, StorageError> {
    Ok(read_json::<ChannelIndex>(storage, &keys::index()).await?.unwrap_or_default().channels)
}

/// A channel's state from its records, with its init segments read back from storage.
pub(super) async fn restore(storage: &dyn Storage, record: &ChannelRecord, timeline: TimelineRecord) -> ChannelState {
    let id = &record.id;
    let mut inits = HashMap::new();
    for e in &timeline.epochs {
        for (r, has) in e.inits.iter().enumerate() {
            let Some((_, info)) = timeline.renditions.get(r) else { continue };
            if *has && let Ok(o) = storage.get(&keys::init(id, e.id, info.id)).await {
                inits.insert((e.id, r), o.body);
            }
        }
    }
    let mut sources = HashMap::new();
    for v in timeline.variants.iter().filter(|v| v.has_init) {
        if let Ok(o) = storage.get(&keys::source_init(id, &v.path)).await
            && let Ok(info) = parse_init(&o.body)
        {
            sources.insert(v.path.clone(), (o.body, Arc::new(info)));
        }
    }
    ChannelState::restore(record, &timeline, |e, r| inits.get(&(e, r)).cloned(), |p| sources.get(p).cloned())
}
