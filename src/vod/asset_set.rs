//! Asset-set JSON: several MP4 renditions of one title (and optional separate audio), as one VOD asset.
//!
//! ```json
//! {
//!   "video": ["360p.mp4", "720p.mp4", {"file": "1080p.mp4"}],
//!   "audio": [{"file": "audio-en.mp4", "language": "en", "name": "English"}],
//!   "subtitles": [{"file": "en.vtt", "language": "en", "name": "English"}]
//! }
//! ```
//!
//! Paths are relative to the JSON file's folder. Each `video` file gives its
//! first video track; each `audio` file its first audio track. Without
//! `audio`, the audio of the first video file that has some is used.
//! `subtitles` are WebVTT files, after the subtitle tracks of the first
//! listed MP4 that has any.

use serde::Deserialize;

use crate::packaging::PackagingError;

/// The largest asset-set JSON read (1 MiB: thousands of renditions).
pub const MAX_BYTES: u64 = 1024 * 1024;
use crate::storage::StorageKey;

/// Most renditions one asset set may list.
const MAX_ENTRIES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEntry {
    pub file: StorageKey,
    pub name: Option<String>,
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetSet {
    pub video: Vec<SetEntry>,
    pub audio: Vec<SetEntry>,
    /// WebVTT sidecar files.
    pub subtitles: Vec<SetEntry>,
    /// Served encrypted (`"encrypted": true`), as `[encryption]` says, wherever the set lies; a set
    /// cannot serve in the clear what the config's prefixes protect.
    pub encrypted: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    #[serde(default)]
    video: Vec<RawEntry>,
    #[serde(default)]
    audio: Vec<RawEntry>,
    #[serde(default)]
    subtitles: Vec<RawEntry>,
    #[serde(default)]
    encrypted: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Path(String),
    Detailed(Detailed),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Detailed {
    file: String,
    name: Option<String>,
    language: Option<String>,
}

impl AssetSet {
    /// Parses the JSON stored at `key`, resolving file paths against its folder.
    pub fn parse(key: &StorageKey, json: &[u8]) -> Result<AssetSet, PackagingError> {
        let bad = |m: String| PackagingError::BadAssetSet(m);
        let raw: RawSet = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        if raw.video.is_empty() && raw.audio.is_empty() {
            return Err(bad("lists no \"video\" or \"audio\" file".into()));
        }
        if raw.video.len() + raw.audio.len() + raw.subtitles.len() > MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} files")));
        }
        let entry = |raw: RawEntry| -> Result<SetEntry, PackagingError> {
            let (file, name, language) = match raw {
                RawEntry::Path(f) => (f, None, None),
                RawEntry::Detailed(d) => (d.file, d.name, d.language),
            };
            let file = key.sibling(&file).map_err(|e| bad(format!("file {file:?}: {e}")))?;
            if let Some(l) = &language
                && (l.is_empty() || l.len() > 35 || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(bad(format!("language {l:?} is not a BCP 47 tag")));
            }
            if let Some(n) = &name
                && (n.is_empty() || n.chars().count() > 64 || n.chars().any(|c| c.is_control() || c == '"'))
            {
                return Err(bad(format!("name {n:?} must be 1 to 64 printable characters without quotes")));
            }
            Ok(SetEntry { file, name, language })
        };
        Ok(AssetSet {
            video: raw.video.into_iter().map(entry).collect::<Result<_, _>>()?,
            audio: raw.audio.into_iter().map(entry).collect::<Result<_, _>>()?,
            subtitles: raw.subtitles.into_iter().map(entry).collect::<Result<_, _>>()?,
            encrypted: raw.encrypted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> StorageKey {
        StorageKey::parse(s).unwrap()
    }

    #[test]
    fn parses_short_and_long_forms() {
        let json = br#"{"video": ["360p.mp4", {"file": "hd/720p.mp4"}], "audio": [{"file": "en.mp4", "language": "en", "name": "English"}],
                        "subtitles": [{"file": "subs/fr.vtt", "language": "fr-CA", "name": "Fran\u00e7ais"}]}"#;
        let set = AssetSet::parse(&key("titles/x/set.json"), json).unwrap();
        assert_eq!(set.video[0].file.as_str(), "titles/x/360p.mp4");
        assert_eq!(set.video[1].file.as_str(), "titles/x/hd/720p.mp4");
        assert_eq!(set.audio[0].language.as_deref(), Some("en"));
        assert_eq!(set.audio[0].name.as_deref(), Some("English"));
        assert_eq!(set.subtitles[0].file.as_str(), "titles/x/subs/fr.vtt");
        assert_eq!(set.subtitles[0].language.as_deref(), Some("fr-CA"));
        assert_eq!(set.subtitles[0].name.as_deref(), Some("Fran\u{e7}ais"));
        assert!(!set.encrypted, "clear unless it says");
        let set = AssetSet::parse(&key("t/set.json"), br#"{"video": ["a.mp4"], "encrypted": true}"#).unwrap();
        assert!(set.encrypted);
        assert!(AssetSet::parse(&key("t/set.json"), br#"{"video": ["a.mp4"], "encrypted": "yes"}"#).is_err());
    }

    #[test]
    fn refuses_bad_sets() {
        let k = key("t/set.json");
        for json in [
            &br#"{"video": ["../../secret.mp4"]}"#[..],
            br#"{"video": []}"#,
            br#"{"video": ["a.mp4"], "subtitles": ["../../../etc/passwd"]}"#,
            br#"{"video": ["a.mp4"], "subtitles": [{"file": "en.vtt", "kind": "x"}]}"#,
            br#"{"video": ["a.mp4"], "extra": 1}"#,
            br#"{"audio": [{"file": "a.mp4", "language": "en\"x"}]}"#,
            br#"not json"#,
        ] {
            assert!(
                matches!(AssetSet::parse(&k, json), Err(PackagingError::BadAssetSet(_))),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }
}
