//! Validators and preconditions: content-derived strong ETags, `If-None-Match`, `If-Modified-Since`, `If-Match`, `If-Range`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use http::{HeaderMap, HeaderValue};

/// A strong entity tag, quotes included (`"2a1f-9c0e…"`), kept as a ready header value.
///
/// Derived from the bytes themselves, so every replica that serves the same
/// content gives the same tag.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(HeaderValue);

impl ETag {
    /// The tag of a body: its length and 64-bit xxh3 hash.
    pub fn of(body: &[u8]) -> ETag {
        let hash = xxhash_rust::xxh3::xxh3_64(body);
        ETag::from_inner(&format!("{:x}-{hash:016x}", body.len()))
    }

    /// A tag built from an opaque validator (e.g. S3's ETag or size+mtime);
    /// anything but `[A-Za-z0-9._-]` is dropped.
    pub fn opaque(value: &str) -> ETag {
        let inner: String =
            value.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
        ETag::from_inner(&inner)
    }

    /// The tag of another representation of the same content (`"…-gz"`).
    pub fn variant(&self, suffix: &str) -> ETag {
        let inner = self.as_str().trim_matches('"');
        ETag::from_inner(&format!("{inner}-{suffix}"))
    }

    fn from_inner(inner: &str) -> ETag {
        // Only [A-Za-z0-9._-] reaches here, which is always a valid header value.
        ETag(HeaderValue::from_str(&format!("\"{inner}\"")).unwrap_or(HeaderValue::from_static("\"\"")))
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }

    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the request's preconditions say about serving the selected representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve it.
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: an `If-Match`/`If-Unmodified-Since` failed.
    Failed,
}

/// Evaluates preconditions in RFC 9110 §13.2.2 order for a GET or HEAD.
pub fn evaluate(headers: &HeaderMap, etag: &ETag, last_modified: Option<SystemTime>) -> Precondition {
    let last_modified = last_modified.map(truncate_to_secs);
    if let Some(v) = header_str(headers, IF_MATCH) {
        if !list_matches(v, etag, true) {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(lm)) = (header_date(headers, IF_UNMODIFIED_SINCE), last_modified)
        && lm > since
    {
        return Precondition::Failed;
    }
    if let Some(v) = header_str(headers, IF_NONE_MATCH) {
        if list_matches(v, etag, false) {
            return Precondition::NotModified;
        }
    } else if let (Some(since), Some(lm)) = (header_date(headers, IF_MODIFIED_SINCE), last_modified)
        && lm <= since
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Whether a `Range` may be honoured: no `If-Range`, or one that still matches (RFC 9110 §13.1.5).
pub fn if_range_allows(headers: &HeaderMap, etag: &ETag, last_modified: Option<SystemTime>) -> bool {
    let Some(v) = header_str(headers, IF_RANGE) else {
        return true;
    };
    let v = v.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        return !v.starts_with("W/") && v == etag.as_str();
    }
    match (httpdate::parse_http_date(v), last_modified) {
        (Ok(date), Some(lm)) => truncate_to_secs(lm) == date,
        _ => false,
    }
}

fn header_str(headers: &HeaderMap, name: http::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_date(headers: &HeaderMap, name: http::HeaderName) -> Option<SystemTime> {
    header_str(headers, name).and_then(|v| httpdate::parse_http_date(v).ok())
}

/// `*` or a comma-separated list of entity tags; weak comparison ignores `W/`.
fn list_matches(list: &str, etag: &ETag, strong: bool) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        if tag == "*" {
            return true;
        }
        match tag.strip_prefix("W/") {
            Some(weak) => !strong && weak == etag.as_str(),
            None => tag == etag.as_str(),
        }
    })
}

fn truncate_to_secs(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn etags_are_derived_from_content() {
        assert_eq!(ETag::of(b"abc"), ETag::of(b"abc"));
        assert_ne!(ETag::of(b"abc"), ETag::of(b"abd"));
        assert!(ETag::of(b"abc").as_str().starts_with("\"3-"));
        assert_eq!(ETag::opaque("\"x\"").variant("gz").as_str(), "\"x-gz\"");
        assert_eq!(ETag::opaque("a\"b\nc").as_str(), "\"abc\"");
    }

    #[test]
    fn none_match_and_modified_since() {
        let tag = ETag::of(b"body");
        let lm = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let lm_text = httpdate::fmt_http_date(lm);
        let earlier = httpdate::fmt_http_date(lm - Duration::from_secs(10));
        assert_eq!(evaluate(&headers(&[]), &tag, Some(lm)), Precondition::Proceed);
        assert_eq!(evaluate(&headers(&[(IF_NONE_MATCH, tag.as_str())]), &tag, Some(lm)), Precondition::NotModified);
        let weak = format!("\"other\", W/{}", tag.as_str());
        assert_eq!(evaluate(&headers(&[(IF_NONE_MATCH, &weak)]), &tag, Some(lm)), Precondition::NotModified);
        assert_eq!(evaluate(&headers(&[(IF_NONE_MATCH, "\"nope\"")]), &tag, Some(lm)), Precondition::Proceed);
        assert_eq!(evaluate(&headers(&[(IF_MODIFIED_SINCE, &lm_text)]), &tag, Some(lm)), Precondition::NotModified);
        assert_eq!(evaluate(&headers(&[(IF_MODIFIED_SINCE, &earlier)]), &tag, Some(lm)), Precondition::Proceed);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            evaluate(&headers(&[(IF_NONE_MATCH, "\"nope\""), (IF_MODIFIED_SINCE, &lm_text)]), &tag, Some(lm)),
            Precondition::Proceed
        );
    }

    #[test]
    fn match_preconditions_and_if_range() {
        let tag = ETag::of(b"body");
        let lm = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(evaluate(&headers(&[(IF_MATCH, "\"nope\"")]), &tag, Some(lm)), Precondition::Failed);
        assert_eq!(evaluate(&headers(&[(IF_MATCH, "*")]), &tag, Some(lm)), Precondition::Proceed);
        let before = httpdate::fmt_http_date(lm - Duration::from_secs(1));
        assert_eq!(evaluate(&headers(&[(IF_UNMODIFIED_SINCE, &before)]), &tag, Some(lm)), Precondition::Failed);
        assert!(if_range_allows(&headers(&[]), &tag, Some(lm)));
        assert!(if_range_allows(&headers(&[(IF_RANGE, tag.as_str())]), &tag, Some(lm)));
        assert!(!if_range_allows(&headers(&[(IF_RANGE, "\"old\"")]), &tag, Some(lm)));
        assert!(if_range_allows(&headers(&[(IF_RANGE, &httpdate::fmt_http_date(lm))]), &tag, Some(lm)));
        assert!(!if_range_allows(&headers(&[(IF_RANGE, &before)]), &tag, Some(lm)));
    }
}
