//! `StorageKey`: a validated, relative object key that cannot name anything outside the storage root.

use std::fmt;

/// Where estuary keeps its own records (channel settings, key hashes, timelines). Like every key
/// with a segment that starts with a dot, the edge never serves it ([`StorageKey::is_public`]).
pub const RECORDS: &str = ".estuary";

/// Longest key we accept, in bytes (S3's own limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Why a string is not a usable storage key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("empty key")]
    Empty,
    #[error("key longer than {MAX_KEY_LEN} bytes")]
    TooLong,
    #[error("key must be relative (no leading '/')")]
    Absolute,
    #[error("key contains a backslash")]
    Backslash,
    #[error("key contains a NUL or control character")]
    ControlCharacter,
    #[error("key contains an empty path segment")]
    EmptySegment,
    #[error("key contains a '.' or '..' path segment")]
    DotSegment,
    /// A folder on the way is a symlink that leaves the storage root (local storage only).
    #[error("key's folder resolves outside the storage root")]
    OutsideRoot,
}

/// A relative, '/'-separated object key made only of normal path segments.
///
/// Invariant: no segment is empty, `.` or `..`; no backslash, NUL or control
/// character; never absolute. Joined onto a root folder it stays below it
/// (symlinks are the local backend's business).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey(Box<str>);

impl StorageKey {
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        if raw.is_empty() {
            return Err(KeyError::Empty);
        }
        if raw.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        if raw.starts_with('/') {
            return Err(KeyError::Absolute);
        }
        if raw.contains('\\') {
            return Err(KeyError::Backslash);
        }
        if raw.chars().any(char::is_control) {
            return Err(KeyError::ControlCharacter);
        }
        for segment in raw.split('/') {
            match segment {
                "" => return Err(KeyError::EmptySegment),
                "." | ".." => return Err(KeyError::DotSegment),
                _ => {}
            }
        }
        Ok(StorageKey(raw.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the edge may serve this key: no segment is hidden (starts with a dot), so estuary's
    /// records ([`RECORDS`]), temporary files and dot-files an operator left (`.git`, `.env`) are
    /// never public.
    pub fn is_public(&self) -> bool {
        !self.0.starts_with('.') && !self.0.contains("/.")
    }

    /// The key of `name` in the same folder as this key (`a/b.m3u8` + `c.m4s` = `a/c.m4s`).
    pub fn sibling(&self, name: &str) -> Result<StorageKey, KeyError> {
        match self.0.rfind('/') {
            Some(i) => StorageKey::parse(&format!("{}/{}", &self.0[..i], name)),
            None => StorageKey::parse(name),
        }
    }

    /// `self/child`.
    pub fn join(&self, child: &str) -> Result<StorageKey, KeyError> {
        StorageKey::parse(&format!("{}/{}", self.0, child))
    }

    /// The file extension as written (no dot), if the last segment has one.
    pub fn extension(&self) -> Option<&str> {
        let name = self.0.rsplit('/').next().unwrap_or(&self.0);
        name.rsplit_once('.').map(|(_, ext)| ext)
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_keys() {
        for ok in ["a", "sample/hls/seg_000.m4s", "a b/c%2e.mp4", "x/.hidden", "a..b/c"] {
            assert_eq!(StorageKey::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_keys_that_could_escape() {
        let cases = [
            ("", KeyError::Empty),
            ("/etc/passwd", KeyError::Absolute),
            ("..", KeyError::DotSegment),
            ("../etc/passwd", KeyError::DotSegment),
            ("a/../../etc/passwd", KeyError::DotSegment),
            ("a/./b", KeyError::DotSegment),
            ("a/..", KeyError::DotSegment),
            ("a//b", KeyError::EmptySegment),
            ("a/", KeyError::EmptySegment),
            ("..\\..\\windows", KeyError::Backslash),
            ("a\0b", KeyError::ControlCharacter),
            ("a\nb", KeyError::ControlCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(StorageKey::parse(raw), Err(want), "{raw:?}");
        }
        assert_eq!(StorageKey::parse(&"a".repeat(MAX_KEY_LEN + 1)), Err(KeyError::TooLong));
    }

    #[test]
    fn hidden_segments_are_not_public() {
        for private in [".estuary/live/channels.json", "a/.env", ".git/config", "x/.estuary-tmp-1-seg.m4s"] {
            assert!(!StorageKey::parse(private).unwrap().is_public(), "{private}");
        }
        for public in ["live/news/1/v0/3.m4s", "sample/hls/master.m3u8", "a.b/c..d"] {
            assert!(StorageKey::parse(public).unwrap().is_public(), "{public}");
        }
    }

    #[test]
    fn siblings_and_extensions() {
        let k = StorageKey::parse("a/b/index.m3u8").unwrap();
        assert_eq!(k.sibling("seg.m4s").unwrap().as_str(), "a/b/seg.m4s");
        assert!(k.sibling("../x").is_err());
        assert_eq!(k.extension(), Some("m3u8"));
        assert_eq!(StorageKey::parse("noext").unwrap().extension(), None);
        assert_eq!(StorageKey::parse("top.mp4").unwrap().sibling("x").unwrap().as_str(), "x");
    }
}
