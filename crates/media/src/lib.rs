//! PURE media packaging: MP4 sample indexes, segment plans, fMP4 muxing, the manifest model and its
//! HLS and DASH writers, and the edge's URL grammar.
//!
//! Invariants: no I/O, no async, no axum types. Every length, offset and
//! count read from a file is checked before use; malformed input gives a
//! [`PackagingError`], never a panic. Callers fetch bytes and hand them in.

pub mod aes128;
pub mod cenc;
pub mod codec;
mod error;
pub mod fmp4;
pub mod inspect;
pub mod manifest;
pub mod mp4;
mod nal;
pub mod plan;
pub mod presentation;
pub mod reads;
pub mod storage_key;
pub mod subtitles;
pub mod ts;
pub mod url;
pub mod vod_manifests;

pub use error::PackagingError;

/// The bundled sample clip, indexed: shared by the unit tests of the packaging modules.
#[cfg(test)]
pub(crate) mod sample {
    use super::mp4::{IndexLimits, MediaIndex, build_index};

    pub(crate) const SAMPLE_MP4: &[u8] = include_bytes!("../../../assets/sample/sample.mp4");

    pub(crate) fn index() -> MediaIndex {
        let moov = super::inspect::moov_of(SAMPLE_MP4, 64 << 20).unwrap();
        build_index(moov, SAMPLE_MP4.len() as u64, IndexLimits::default()).unwrap()
    }
}
