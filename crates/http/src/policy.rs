//! Cache policy: the one place that decides the `Cache-Control` of every kind of object the edge serves.
//!
//! The table lives in DESIGN.md; this is its executable form. CDN TTLs
//! follow AWS MediaPackage's guidance: live playlists about half a target
//! duration (1 s for LL-HLS), segments 14 days, VOD days.

use std::time::Duration;

/// Lifetime of anything whose URL never changes meaning (live segments, init segments).
pub const SEGMENT_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);
/// Lifetime of a live master playlist.
pub const LIVE_MASTER_MAX_AGE: Duration = Duration::from_secs(5);
/// Lifetime of a 404 (long enough to absorb a burst, short enough for "not yet").
pub const NOT_FOUND_MAX_AGE: Duration = Duration::from_secs(1);

/// What an edge response carries, as far as caching is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A pass-through playlist or manifest from the static folder.
    StaticManifest { max_age: Duration },
    /// A pass-through segment or any other static file.
    StaticFile { max_age: Duration },
    /// A VOD playlist or MPD rendered from a source file.
    VodManifest { max_age: Duration },
    /// A VOD init or media segment.
    VodSegment { max_age: Duration },
    /// A live media playlist or dynamic MPD; `target` is the target segment duration.
    LiveManifest { target: Duration, low_latency: bool },
    /// A live master playlist.
    LiveMaster,
    /// A live init or media segment: its URL carries the stream epoch, so it never changes.
    LiveSegment,
    /// 404: the object does not exist (or not yet).
    NotFound,
    /// Anything else that must not be cached: errors, health, time.
    Uncacheable,
}

/// The `Cache-Control` header for `kind`, formatted once per thread and kind.
pub fn cache_control_header(kind: ObjectKind) -> http::HeaderValue {
    thread_local! {
        static MEMO: std::cell::RefCell<std::collections::HashMap<ObjectKind, http::HeaderValue>> = Default::default();
    }
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.len() > 256 {
            memo.clear();
        }
        memo.entry(kind)
            .or_insert_with(|| {
                http::HeaderValue::from_str(&cache_control(kind)).unwrap_or(http::HeaderValue::from_static("no-store"))
            })
            .clone()
    })
}

/// The `Cache-Control` value for `kind`.
pub fn cache_control(kind: ObjectKind) -> String {
    match kind {
        ObjectKind::StaticManifest { max_age }
        | ObjectKind::StaticFile { max_age }
        | ObjectKind::VodManifest { max_age }
        | ObjectKind::VodSegment { max_age } => public(max_age),
        ObjectKind::LiveManifest { low_latency: true, .. } => public(Duration::from_secs(1)),
        ObjectKind::LiveManifest { target, .. } => public(target / 2),
        ObjectKind::LiveMaster => public(LIVE_MASTER_MAX_AGE),
        ObjectKind::LiveSegment => format!("{}, immutable", public(SEGMENT_MAX_AGE)),
        ObjectKind::NotFound => public(NOT_FOUND_MAX_AGE),
        ObjectKind::Uncacheable => "no-store".to_owned(),
    }
}

fn public(max_age: Duration) -> String {
    if max_age.is_zero() {
        return "no-cache".to_owned();
    }
    // Round up so that a sub-second lifetime is still a cacheable 1 s.
    let secs = max_age.as_secs() + u64::from(max_age.subsec_nanos() > 0);
    format!("public, max-age={secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let s = Duration::from_secs;
        assert_eq!(cache_control(ObjectKind::VodManifest { max_age: s(86400) }), "public, max-age=86400");
        assert_eq!(cache_control(ObjectKind::LiveManifest { target: s(6), low_latency: false }), "public, max-age=3");
        assert_eq!(cache_control(ObjectKind::LiveManifest { target: s(1), low_latency: false }), "public, max-age=1");
        assert_eq!(cache_control(ObjectKind::LiveManifest { target: s(4), low_latency: true }), "public, max-age=1");
        assert_eq!(cache_control(ObjectKind::LiveMaster), "public, max-age=5");
        assert_eq!(cache_control(ObjectKind::LiveSegment), "public, max-age=1209600, immutable");
        assert_eq!(cache_control(ObjectKind::NotFound), "public, max-age=1");
        assert_eq!(cache_control(ObjectKind::Uncacheable), "no-store");
        assert_eq!(cache_control(ObjectKind::StaticFile { max_age: Duration::ZERO }), "no-cache");
    }
}
