//! The channel registry in the control store: one record per channel in the hash
//! `estuary:live:channels`, created, changed and deleted atomically (Lua scripts: a create never
//! replaces a channel another pod made, a change is a compare-and-set), each change announced on
//! `estuary:live:records` so every pod holding the channel applies it (a rotated key, a stop), and a
//! deleted id marked (`estuary:live:{id}:deleted`) so no pod shares it back.

use std::sync::LazyLock;
use std::time::Duration;

use redis::AsyncCommands;

use super::scripts::{CREATE_CHANNEL, FORGET_CHANNEL, RESTORE_CHANNEL, UPDATE_CHANNEL};
use super::{ClusterError, ControlStore, DEADLINE, progress_key, tail_key, timeline_key, within};
use estuary_live::model::ChannelId;
use estuary_live::record::ChannelRecord;

const CHANNELS: &str = "estuary:live:channels";

/// How long a deleted channel's id stays marked.
const DELETED_FOR: Duration = Duration::from_secs(3600);
/// Compare-and-set attempts before a change gives up (another pod changing the same record each time).
const UPDATE_TRIES: usize = 8;

static CREATE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(CREATE_CHANNEL));
static UPDATE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(UPDATE_CHANNEL));
static FORGET: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(FORGET_CHANNEL));
static RESTORE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RESTORE_CHANNEL));

/// The pub/sub channel every change of a channel record is announced on (the message: its id).
pub fn records_channel() -> &'static str {
    "estuary:live:records"
}

fn deleted_key(id: &ChannelId) -> String {
    format!("estuary:live:{id}:deleted")
}

/// What creating a channel found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    Created,
    Exists,
    /// `live.max_channels` channels exist across the cluster.
    TooMany,
}

impl ControlStore {
    /// Adds a channel unless one with its id exists or `max` do.
    pub async fn create_channel(&self, record: &ChannelRecord, max: usize) -> Result<Creation, ClusterError> {
        let json = serde_json::to_string(record)?;
        let max = max.min(i64::MAX as usize) as i64;
        within(DEADLINE, async {
            let created: i64 = CREATE
                .key(CHANNELS)
                .key(deleted_key(&record.id))
                .key(records_channel())
                .arg(record.id.as_str())
                .arg(json)
                .arg(max)
                .invoke_async(&mut self.connection.clone())
                .await?;
            Ok(match created {
                1 => Creation::Created,
                0 => Creation::Exists,
                _ => Creation::TooMany,
            })
        })
        .await
    }

    /// Changes a channel's record with `change` (compare-and-set, retried while other pods change
    /// it too); the record as written, `None` when there is no such channel.
    pub async fn update_channel(
        &self,
        id: &ChannelId,
        change: impl Fn(&mut ChannelRecord),
    ) -> Result<Option<ChannelRecord>, ClusterError> {
        for _ in 0..UPDATE_TRIES {
            let Some(old) = self.channel_json(id).await? else { return Ok(None) };
            let mut record: ChannelRecord = serde_json::from_str(&old)?;
            change(&mut record);
            let new = serde_json::to_string(&record)?;
            let written: i64 = within(DEADLINE, async {
                let mut invocation = UPDATE.key(CHANNELS);
                invocation.key(records_channel()).arg(id.as_str()).arg(old).arg(new);
                Ok(invocation.invoke_async(&mut self.connection.clone()).await?)
            })
            .await?;
            if written == 1 {
                return Ok(Some(record));
            }
        }
        Err(ClusterError::Contended)
    }

    /// Removes a channel and its shared timeline and marks its id deleted; whether it existed.
    pub async fn forget_channel(&self, id: &ChannelId) -> Result<bool, ClusterError> {
        within(DEADLINE, async {
            let existed: i64 = FORGET
                .key(CHANNELS)
                .key(timeline_key(id))
                .key(progress_key(id))
                .key(deleted_key(id))
                .key(records_channel())
                .key(super::events_channel(id))
                .key(tail_key(id))
                .arg(id.as_str())
                .arg(DELETED_FOR.as_millis() as u64)
                .invoke_async(&mut self.connection.clone())
                .await?;
            Ok(existed == 1)
        })
        .await
    }

    /// Shares a record this pod holds back into a control store that lost it (restarted without
    /// persistence), unless the channel was deleted meanwhile; whether it was written.
    pub async fn restore_channel(&self, record: &ChannelRecord) -> Result<bool, ClusterError> {
        let json = serde_json::to_string(record)?;
        within(DEADLINE, async {
            let written: i64 = RESTORE
                .key(CHANNELS)
                .key(deleted_key(&record.id))
                .arg(record.id.as_str())
                .arg(json)
                .invoke_async(&mut self.connection.clone())
                .await?;
            Ok(written == 1)
        })
        .await
    }

    /// Whether the channel was deleted (within the last hour).
    pub async fn is_deleted(&self, id: &ChannelId) -> Result<bool, ClusterError> {
        within(DEADLINE, async { Ok(self.connection.clone().exists(deleted_key(id)).await?) }).await
    }

    /// Every channel of the cluster.
    pub async fn channels(&self) -> Result<Vec<ChannelRecord>, ClusterError> {
        within(DEADLINE, async {
            let all: Vec<(String, String)> = self.connection.clone().hgetall(CHANNELS).await?;
            let mut records = Vec::with_capacity(all.len());
            for (_, json) in all {
                records.push(serde_json::from_str(&json)?);
            }
            Ok(records)
        })
        .await
    }

    pub async fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>, ClusterError> {
        Ok(self.channel_json(id).await?.map(|j| serde_json::from_str(&j)).transpose()?)
    }

    async fn channel_json(&self, id: &ChannelId) -> Result<Option<String>, ClusterError> {
        within(DEADLINE, async { Ok(self.connection.clone().hget(CHANNELS, id.as_str()).await?) }).await
    }

    /// A subscription to the announcements of channel records changing.
    pub async fn subscribe_records(&self) -> Result<redis::aio::PubSub, ClusterError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(records_channel()).await?;
        Ok(pubsub)
    }
}
