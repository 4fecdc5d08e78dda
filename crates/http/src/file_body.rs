//! `FileBody`: a response body whose bytes lie in an open file, after an optional prefix from
//! memory (a cached object in its memory file; a packaged segment's header, then its samples in the
//! source). The edge's own HTTP/1 writer sends the file's part with `sendfile`, so those bytes never
//! pass through user space; the response's ordinary body carries the same bytes for any other writer.

use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

/// Rides in a response's extensions, beside a body with the same bytes.
#[derive(Debug, Clone)]
pub struct FileBody {
    /// Sent first, from memory.
    pub prefix: Bytes,
    pub file: Arc<File>,
    /// Byte ranges of `file`, sent in this order after `prefix`.
    pub spans: Arc<[Range<u64>]>,
}

impl FileBody {
    /// `span` of `file`, nothing before it.
    pub fn span(file: Arc<File>, span: Range<u64>) -> FileBody {
        FileBody { prefix: Bytes::new(), file, spans: std::iter::once(span).collect() }
    }

    /// The whole body's length.
    pub fn len(&self) -> u64 {
        self.prefix.len() as u64 + self.spans.iter().map(|s| s.end - s.start).sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The part `range` of this body (a `Range` request), when it lies in one span.
    pub fn slice(&self, range: Range<u64>) -> Option<FileBody> {
        match &self.spans[..] {
            [span] if self.prefix.is_empty() && span.start + range.end <= span.end => {
                Some(FileBody::span(self.file.clone(), span.start + range.start..span.start + range.end))
            }
            _ => None,
        }
    }
}
