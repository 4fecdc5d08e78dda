//! `CachedObject`: a ready-to-send body with its validators and precompressed representations.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderValue;

use super::conditional::ETag;
use super::encoding::Coding;
use super::{content_type, encoding};

/// Compressed forms are kept only when they save at least this share of the bytes.
const MIN_SAVING: f64 = 0.1;

/// One encoding of an object's content, with its own strong ETag.
#[derive(Debug, Clone)]
pub struct Representation {
    pub body: Bytes,
    pub etag: ETag,
}

/// An object as the edge sends it: body, validators and (for manifests) gzip and brotli forms.
///
/// Header values are computed once, when the object is built, not per request.
#[derive(Debug, Clone)]
pub struct CachedObject {
    pub identity: Representation,
    pub gzip: Option<Representation>,
    pub brotli: Option<Representation>,
    pub content_type: &'static str,
    pub last_modified: Option<SystemTime>,
    pub last_modified_value: Option<HeaderValue>,
    /// How long it is fresh in estuary's own cache; `None` until evicted or purged. After that it
    /// is reloaded, but still served while storage fails (stale-if-error).
    pub ttl: Option<Duration>,
    pub created: Instant,
    /// The memory file the identity body is mapped from, when the cache moved it into one: responses
    /// send from it with `sendfile` ([`super::file_body::FileBody`]).
    pub resident: Option<Arc<File>>,
}

impl CachedObject {
    /// Wraps a body, deriving its ETag from the content.
    pub fn new(body: Bytes, content_type: &'static str, last_modified: Option<SystemTime>) -> Self {
        let etag = ETag::of(&body);
        CachedObject::tagged(body, etag, content_type, last_modified)
    }

    /// Wraps a body whose ETag is known without reading it (a packaged segment's, the same whether
    /// it is built or streamed): a large body is not hashed for nothing.
    pub fn tagged(body: Bytes, etag: ETag, content_type: &'static str, last_modified: Option<SystemTime>) -> Self {
        CachedObject {
            identity: Representation { etag, body },
            gzip: None,
            brotli: None,
            content_type,
            last_modified_value: last_modified.and_then(|t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()),
            last_modified,
            ttl: None,
            created: Instant::now(),
            resident: None,
        }
    }

    /// Still within its time to live.
    pub fn is_fresh(&self) -> bool {
        self.fresh_until().is_none_or(|until| Instant::now() < until)
    }

    /// When it stops being fresh; `None` while it has no time to live.
    pub fn fresh_until(&self) -> Option<Instant> {
        self.ttl.map(|ttl| self.created + ttl)
    }

    pub fn body(&self) -> &Bytes {
        &self.identity.body
    }

    pub fn with_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Adds gzip and brotli forms when the media type is compressible and it pays off.
    pub fn compressed(mut self) -> Self {
        let body = &self.identity.body;
        if !content_type::is_compressible(self.content_type) || body.len() < 64 {
            return self;
        }
        let worth = |c: Vec<u8>, suffix: &str| {
            ((c.len() as f64) < body.len() as f64 * (1.0 - MIN_SAVING))
                .then(|| Representation { body: Bytes::from(c), etag: self.identity.etag.variant(suffix) })
        };
        let gzip = worth(encoding::gzip(body), "gz");
        let brotli = worth(encoding::brotli(body), "br");
        self.gzip = gzip;
        self.brotli = brotli;
        self
    }

    /// Whether the object has compressed forms, i.e. responses vary on `Accept-Encoding`.
    pub fn is_negotiable(&self) -> bool {
        content_type::is_compressible(self.content_type)
    }

    pub fn representation(&self, coding: Coding) -> &Representation {
        let chosen = match coding {
            Coding::Identity => None,
            Coding::Gzip => self.gzip.as_ref(),
            Coding::Brotli => self.brotli.as_ref(),
        };
        chosen.unwrap_or(&self.identity)
    }

    /// Bytes this entry holds, for the cache's weigher.
    pub fn weight(&self) -> u32 {
        let len = |r: &Option<Representation>| r.as_ref().map_or(0, |r| r.body.len());
        let total = self.identity.body.len() + len(&self.gzip) + len(&self.brotli) + 256;
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}
