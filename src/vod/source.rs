//! Reading one source MP4 from storage: its `moov` by range (front or end of the file), then the index.

use bytes::Bytes;

use super::VodError;
use crate::config::VodConfig;
use crate::packaging::PackagingError;
use crate::packaging::mp4::{IndexLimits, MediaIndex, MoovLocator, Probe, build_index};
use crate::storage::{ObjectMeta, Storage, StorageKey};

/// Reads only the `moov` box: one read for a faststart file, a few small ones when it sits at the end.
pub(super) async fn read_moov(
    storage: &dyn Storage,
    key: &StorageKey,
    meta: &ObjectMeta,
    max_moov: u64,
) -> Result<Bytes, VodError> {
    let mut locator = MoovLocator::new(meta.size, max_moov);
    let mut range = locator.start()?;
    for _ in 0..1100 {
        let read = storage.get_range(key, range.clone()).await?;
        if read.body.len() as u64 != range.end - range.start || read.meta.size != meta.size {
            return Err(PackagingError::Truncated(format!("{key} changed while it was being read")).into());
        }
        match locator.feed(range.start, &read.body)? {
            Probe::Read(next) => range = next,
            Probe::Found(moov) if moov.start >= range.start && moov.end <= range.end => {
                let at = (moov.start - range.start) as usize;
                return Ok(read.body.slice(at..at + (moov.end - moov.start) as usize));
            }
            Probe::Found(moov) => {
                let len = moov.end - moov.start;
                let read = storage.get_range(key, moov).await?;
                if read.body.len() as u64 != len {
                    return Err(PackagingError::Truncated(format!("{key} changed while it was being read")).into());
                }
                return Ok(read.body);
            }
        }
    }
    Err(PackagingError::NotMp4("no 'moov' box".into()).into())
}

/// Reads and indexes one source file. The index is built off the async threads.
pub(super) async fn index(
    storage: &dyn Storage,
    key: &StorageKey,
    meta: &ObjectMeta,
    config: &VodConfig,
) -> Result<MediaIndex, VodError> {
    let moov = match read_moov(storage, key, meta, config.max_moov_bytes.0).await {
        Err(VodError::Packaging(e)) => return Err(e.in_file(key.as_str()).into()),
        other => other?,
    };
    let limits = IndexLimits { max_samples_per_track: config.max_samples_per_track };
    let size = meta.size;
    let built = tokio::task::spawn_blocking(move || build_index(&moov, size, limits)).await;
    match built {
        Ok(result) => Ok(result.map_err(|e| e.in_file(key.as_str()))?),
        Err(join) => {
            // Never expected: the index builder checks its input. Contain it rather than fail the process.
            tracing::error!(%key, error = %join, "index builder failed");
            Err(PackagingError::malformed(format!("{key}: the index builder failed")).into())
        }
    }
}
