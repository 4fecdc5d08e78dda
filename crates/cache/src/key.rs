//! `CacheKey`: what the cache knows of a key, opaque to it: a namespace, a path in the URL space
//! (what purge prefixes match), and a version (the source's or snapshot's), the way pingora keys its
//! cache. Its clients build keys; the cache never names them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    namespace: &'static str,
    path: Box<str>,
    version: u64,
}

impl CacheKey {
    /// `namespace` is a URL route's first segment (`static`, `vod`, `live`); `path` the rest of the
    /// object's URL, with its canonical query where that selects content.
    pub fn new(namespace: &'static str, path: impl Into<Box<str>>, version: u64) -> Self {
        CacheKey { namespace, path: path.into(), version }
    }

    pub fn namespace(&self) -> &'static str {
        self.namespace
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether purge `prefix` names this key: it is matched against `{namespace}/{path}`.
    pub fn matches(&self, prefix: &str) -> bool {
        match prefix.strip_prefix(self.namespace) {
            Some("") => true,
            Some(rest) => rest.strip_prefix('/').is_some_and(|rest| self.path.starts_with(rest)),
            None => self.namespace.starts_with(prefix),
        }
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_prefixes_match_the_url_path() {
        let key = CacheKey::new("static", "sample/hls/seg_000.m4s", 0);
        assert_eq!(key.to_string(), "static/sample/hls/seg_000.m4s");
        for yes in ["", "s", "static", "static/", "static/sample/", "static/sample/hls/seg"] {
            assert!(key.matches(yes), "{yes}");
        }
        for no in ["vod", "static/other", "staticx", "static/sample/hls/seg_000.m4s/x", "statics/"] {
            assert!(!key.matches(no), "{no}");
        }
        assert_ne!(CacheKey::new("vod", "a.mp4/v0/1.m4s", 1), CacheKey::new("vod", "a.mp4/v0/1.m4s", 2));
    }
}
