//! Turning an object into a response: validators, 304/412, ranges (206/416), content coding, HEAD, cache headers.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LAST_MODIFIED, RANGE, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::cache::{CacheOutcome, CachedObject};
use crate::http::conditional::{self, ETag, Precondition};
use crate::http::encoding::{self, Coding};
use crate::http::file_body::FileBody;
use crate::http::policy::{ObjectKind, cache_control_header};
use crate::http::range::{self, RangeOutcome};
use crate::storage::{ObjectMeta, Storage, StorageKey};

/// Size of each storage read when streaming an object too large for the cache.
const STREAM_CHUNK: u64 = 1 << 20;

/// The facts about a representation that shape its response headers.
struct Entity<'a> {
    len: u64,
    etag: &'a ETag,
    last_modified: Option<SystemTime>,
    last_modified_value: Option<HeaderValue>,
    content_type: &'static str,
    coding: Coding,
    vary: bool,
    kind: ObjectKind,
}

enum Decision {
    NotModified,
    PreconditionFailed,
    Unsatisfiable,
    Full,
    Partial(Range<u64>),
}

fn decide(method: &Method, headers: &HeaderMap, e: &Entity<'_>) -> Decision {
    match conditional::evaluate(headers, e.etag, e.last_modified) {
        Precondition::NotModified => return Decision::NotModified,
        Precondition::Failed => return Decision::PreconditionFailed,
        Precondition::Proceed => {}
    }
    let range = headers.get(RANGE).and_then(|v| v.to_str().ok());
    if method != Method::GET || range.is_none() || !conditional::if_range_allows(headers, e.etag, e.last_modified) {
        return Decision::Full;
    }
    match range::resolve(range, e.len) {
        RangeOutcome::Full => Decision::Full,
        RangeOutcome::Partial(r) => Decision::Partial(r),
        RangeOutcome::Unsatisfiable => Decision::Unsatisfiable,
    }
}

/// Headers every 200/206/304 of this entity carries.
fn entity_headers(e: &Entity<'_>, headers: &mut HeaderMap) {
    headers.insert(ETAG, e.etag.header_value());
    if let Some(lm) = &e.last_modified_value {
        headers.insert(LAST_MODIFIED, lm.clone());
    }
    headers.insert(CACHE_CONTROL, cache_control_header(e.kind));
    if e.vary {
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// Builds the response for `e`, taking the body bytes of `range` from `body`, and from `file` too
/// when the same bytes lie in a file (the edge's writer then sends them from there).
fn respond(
    method: &Method,
    headers: &HeaderMap,
    e: &Entity<'_>,
    body: impl FnOnce(Range<u64>) -> Body,
    file: Option<FileBody>,
) -> Response {
    let decision = decide(method, headers, e);
    let mut response = Response::new(Body::empty());
    response.headers_mut().reserve(12);
    let (status, range) = match decision {
        Decision::NotModified => {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            entity_headers(e, response.headers_mut());
            return response;
        }
        Decision::PreconditionFailed => {
            *response.status_mut() = StatusCode::PRECONDITION_FAILED;
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return response;
        }
        Decision::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = response.headers_mut();
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", e.len)) {
                h.insert(CONTENT_RANGE, v);
            }
            return response;
        }
        Decision::Full => (StatusCode::OK, 0..e.len),
        Decision::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
    };
    *response.status_mut() = status;
    let h = response.headers_mut();
    entity_headers(e, h);
    h.insert(CONTENT_TYPE, HeaderValue::from_static(e.content_type));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(coding) = e.coding.header_value() {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&range::content_range(&range, e.len))
    {
        h.insert(CONTENT_RANGE, v);
    }
    h.insert(CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
    if method != Method::HEAD {
        let whole = range == (0..e.len);
        if let Some(file) = file.and_then(|f| if whole { Some(f) } else { f.slice(range.clone()) }) {
            response.extensions_mut().insert(file);
        }
        *response.body_mut() = body(range);
    }
    response
}

/// A response for an object held in memory.
pub fn cached(
    method: &Method,
    headers: &HeaderMap,
    obj: &CachedObject,
    kind: ObjectKind,
    outcome: CacheOutcome,
) -> Response {
    let wanted = if headers.contains_key(RANGE) {
        Coding::Identity
    } else {
        coding_for(headers.get(ACCEPT_ENCODING).map(HeaderValue::as_bytes), obj)
    };
    let (rep, coding) = match (wanted, &obj.gzip, &obj.brotli) {
        (Coding::Gzip, Some(g), _) => (g, Coding::Gzip),
        (Coding::Brotli, _, Some(b)) => (b, Coding::Brotli),
        _ => (&obj.identity, Coding::Identity),
    };
    let entity = Entity {
        len: rep.body.len() as u64,
        etag: &rep.etag,
        last_modified: obj.last_modified,
        last_modified_value: obj.last_modified_value.clone(),
        content_type: obj.content_type,
        coding,
        vary: obj.is_negotiable(),
        kind,
    };
    let file = match (coding, &obj.resident) {
        (Coding::Identity, Some(file)) => Some(FileBody::span(file.clone(), 0..rep.body.len() as u64)),
        _ => None,
    };
    let mut response = respond(method, headers, &entity, |r| Body::from(slice(&rep.body, r)), file);
    response.extensions_mut().insert(outcome);
    response
}

/// The coding `obj` is sent in for an `Accept-Encoding` value (the edge's shortcut asks the same).
pub fn coding_for(accept: Option<&[u8]>, obj: &CachedObject) -> Coding {
    // As `HeaderValue::to_str`: a value with other than visible ASCII counts as absent.
    let accept = accept.filter(|v| v.iter().all(|&b| b == b'\t' || (32..127).contains(&b)));
    let accept = accept.and_then(|v| std::str::from_utf8(v).ok());
    encoding::negotiate(accept, encoding::Compressed { gzip: obj.gzip.is_some(), brotli: obj.brotli.is_some() })
}

fn slice(body: &Bytes, r: Range<u64>) -> Bytes {
    body.slice(r.start as usize..r.end as usize)
}

/// The validator of an object streamed from storage: the backend's own, or size and modification time.
pub fn storage_etag(meta: &ObjectMeta) -> ETag {
    match &meta.etag {
        Some(tag) => ETag::opaque(tag),
        None => {
            let mtime =
                meta.modified.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
            ETag::opaque(&format!("{:x}-{mtime:x}", meta.size))
        }
    }
}

/// A response for a segment packaged as it is sent (`body`: its whole content, produced lazily;
/// `file`: the same bytes as a header and ranges of the source file, where the backend has one);
/// validators and conditional requests as for any object. Never partial: the caller answers a
/// request with `Range` from a built segment instead.
#[allow(clippy::too_many_arguments)]
pub fn packaged(
    method: &Method,
    headers: &HeaderMap,
    len: u64,
    etag: &ETag,
    last_modified: Option<SystemTime>,
    content_type: &'static str,
    kind: ObjectKind,
    body: impl FnOnce() -> Body,
    file: Option<FileBody>,
) -> Response {
    let entity = Entity {
        len,
        etag,
        last_modified,
        last_modified_value: last_modified.and_then(|t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()),
        content_type,
        coding: Coding::Identity,
        vary: false,
        kind,
    };
    let mut response = respond(method, headers, &entity, |_| body(), file);
    response.extensions_mut().insert(CacheOutcome::Bypass);
    response
}

/// A response for an object too large for the cache, read from storage in chunks as the client
/// takes them; or sent from `file` (the object's local file, opened by the caller) where there is one.
#[allow(clippy::too_many_arguments)]
pub fn streamed(
    method: &Method,
    headers: &HeaderMap,
    storage: Arc<dyn Storage>,
    key: StorageKey,
    meta: &ObjectMeta,
    content_type: &'static str,
    kind: ObjectKind,
    file: Option<Arc<std::fs::File>>,
) -> Response {
    let etag = storage_etag(meta);
    let entity = Entity {
        len: meta.size,
        etag: &etag,
        last_modified: meta.modified,
        last_modified_value: meta.modified.and_then(|t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()),
        content_type,
        coding: Coding::Identity,
        vary: false,
        kind,
    };
    let mut response = respond(
        method,
        headers,
        &entity,
        move |r| {
            let chunks = futures_util::stream::unfold((storage, key, r.start), move |(storage, key, pos)| async move {
                if pos >= r.end {
                    return None;
                }
                let end = (pos + STREAM_CHUNK).min(r.end);
                match storage.get_range(&key, pos..end).await {
                    Ok(obj) if obj.body.is_empty() => {
                        let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object shrank while streaming");
                        Some((Err(e), (storage, key, r.end)))
                    }
                    Ok(obj) => {
                        let next = pos + obj.body.len() as u64;
                        Some((Ok(obj.body), (storage, key, next)))
                    }
                    Err(e) => Some((Err(std::io::Error::other(e)), (storage, key, r.end))),
                }
            });
            Body::from_stream(chunks)
        },
        file.map(|f| FileBody::span(f, 0..meta.size)),
    );
    response.extensions_mut().insert(CacheOutcome::Bypass);
    response
}

/// A response whose body is made as it is sent (the segment an encoder is uploading): no length,
/// no validators, so HTTP/1.1 frames it chunked; preconditions and ranges are not applied (a server
/// may answer a range request with the whole). A body that breaks off ends the connection.
pub fn growing<S>(method: &Method, content_type: &'static str, kind: ObjectKind, body: S) -> Response
where
    S: futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, cache_control_header(kind));
    if method != Method::HEAD {
        *response.body_mut() = Body::from_stream(body);
    }
    response.extensions_mut().insert(CacheOutcome::Bypass);
    response
}
