//! `GET/HEAD /static/{key}`: pass-through serving of stored objects (pre-packaged HLS/DASH), through the segment cache.

use std::sync::Arc;

use axum::response::Response;

use super::{EdgeError, EdgeState, respond, shortcut};
use crate::cache::{CacheKey, CachedObject};
use crate::http::content_type;
use crate::http::policy::ObjectKind;
use crate::storage::{ObjectMeta, Storage, StorageError, StorageKey};

/// Why a static object could not be loaded into the cache.
#[derive(Debug)]
enum LoadError {
    Storage(Arc<StorageError>),
    /// Larger than the cache's object limit: stream it instead.
    TooLarge(ObjectMeta),
}

/// Extensions of files that are nearly always small enough to cache; these
/// are read in one go, others are measured with a `head` first.
fn usually_small(ext: Option<&str>) -> bool {
    let mut buf = [0u8; 8];
    matches!(
        ext.and_then(|e| content_type::lower_ascii(e, &mut buf)),
        Some(
            "m3u8"
                | "m3u"
                | "mpd"
                | "m4s"
                | "ts"
                | "aac"
                | "ac3"
                | "ec3"
                | "vtt"
                | "webvtt"
                | "ttml"
                | "key"
                | "cmfv"
                | "cmfa"
        )
    )
}

/// `GET/HEAD /static/{raw}`, `raw` percent-decoded: called by the edge's fast path.
pub(super) async fn serve(
    state: &EdgeState,
    raw: &str,
    method: &http::Method,
    headers: &http::HeaderMap,
) -> Result<Response, EdgeError> {
    let key = StorageKey::parse(raw).map_err(|e| EdgeError::BadRequest(e.to_string()))?;
    if !key.is_public() {
        // estuary's own records (`.estuary/`), temporary files, dot-files: not there for the edge.
        return Err(EdgeError::NotFound);
    }
    let content_type = content_type::for_extension(key.extension());
    let is_manifest = content_type::is_manifest(content_type);
    let cfg = &state.static_files;
    let kind = if is_manifest {
        ObjectKind::StaticManifest { max_age: cfg.manifest_max_age }
    } else {
        ObjectKind::StaticFile { max_age: cfg.file_max_age }
    };
    let ttl = if is_manifest { cfg.manifest_max_age } else { cfg.file_max_age };
    let limit = state.cache.max_object_bytes();
    let load = load(state.storage.clone(), key.clone(), content_type, limit, ttl, state.cache.is_on());
    let outage = |e: &LoadError| matches!(e, LoadError::Storage(s) if s.is_outage());
    match state.cache.get_or_load(CacheKey::new("static", key.as_str(), 0), load, outage).await {
        Ok((obj, outcome)) => {
            let response = respond::cached(method, headers, &obj, kind, outcome);
            Ok(shortcut::candidate(response, &obj, headers, outcome, None))
        }
        Err(e) => match &*e {
            LoadError::TooLarge(meta) => {
                state.cache.record_bypass();
                // From the local file with `sendfile` where the backend has one.
                let file = match *method == http::Method::GET {
                    true => state.storage.reader(&key).await.ok().flatten().and_then(|r| r.file_for(meta.size)),
                    false => None,
                };
                let storage = state.storage.clone();
                Ok(respond::streamed(method, headers, storage, key, meta, content_type, kind, file))
            }
            LoadError::Storage(e) => Err(EdgeError::Storage(e.clone())),
        },
    }
}

async fn load(
    storage: Arc<dyn Storage>,
    key: StorageKey,
    content_type: &'static str,
    limit: u64,
    ttl: std::time::Duration,
    kept: bool,
) -> Result<CachedObject, LoadError> {
    let storage_err = |e| LoadError::Storage(Arc::new(e));
    if !usually_small(key.extension()) {
        let meta = storage.head(&key).await.map_err(storage_err)?;
        if meta.size > limit {
            return Err(LoadError::TooLarge(meta));
        }
    }
    let obj = storage.get_range(&key, 0..limit.saturating_add(1)).await.map_err(storage_err)?;
    if obj.meta.size > limit {
        return Err(LoadError::TooLarge(obj.meta));
    }
    let cached = CachedObject::new(obj.body, content_type, obj.meta.modified).with_ttl(Some(ttl));
    // Compressed forms only for an object the cache keeps: compressing costs several times serving.
    if kept && content_type::is_compressible(content_type) {
        tokio::task::spawn_blocking(move || cached.compressed())
            .await
            .map_err(|e| storage_err(StorageError::Unavailable(e.to_string())))
    } else {
        Ok(cached)
    }
}
