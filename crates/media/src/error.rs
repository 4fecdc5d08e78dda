//! `PackagingError`: why a source file cannot be packaged, in words an operator can act on.

/// A problem with the media itself (as opposed to storage or the request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackagingError {
    /// Not an ISO-BMFF/MP4 file at all, or no `moov`.
    #[error("not an MP4 file: {0}")]
    NotMp4(String),
    /// The file ends before what its boxes or tables promise.
    #[error("truncated MP4: {0}")]
    Truncated(String),
    /// Structure or tables that contradict themselves.
    #[error("malformed MP4: {0}")]
    Malformed(String),
    /// A codec (sample entry) we cannot describe to players.
    #[error("unsupported codec '{0}'")]
    UnsupportedCodec(String),
    /// Valid, but nothing we can stream (no samples, no audio or video track).
    #[error("nothing to stream: {0}")]
    Empty(String),
    /// Over a configured limit (moov size, sample count).
    #[error("too large: {0}")]
    TooLarge(String),
    /// An asset-set JSON file that does not parse or names files wrongly.
    #[error("bad asset set: {0}")]
    BadAssetSet(String),
}

impl PackagingError {
    pub fn malformed(what: impl Into<String>) -> Self {
        PackagingError::Malformed(what.into())
    }

    /// Names the source file in the message (an asset may have several).
    pub fn in_file(self, file: &str) -> Self {
        use PackagingError::*;
        match self {
            NotMp4(m) => NotMp4(format!("{file}: {m}")),
            Truncated(m) => Truncated(format!("{file}: {m}")),
            Malformed(m) => Malformed(format!("{file}: {m}")),
            Empty(m) => Empty(format!("{file}: {m}")),
            TooLarge(m) => TooLarge(format!("{file}: {m}")),
            other => other,
        }
    }
}
