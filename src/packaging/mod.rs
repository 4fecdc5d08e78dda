//! PURE media packaging: MP4 sample indexes, segment plans, fMP4 muxing, HLS and DASH rendering.
//!
//! Invariants: no I/O, no async, no axum types. Every length, offset and
//! count read from a file is checked before use; malformed input gives a
//! [`PackagingError`], never a panic. Callers fetch bytes and hand them in.

pub mod codec;
pub mod dash;
mod error;
pub mod fmp4;
pub mod hls;
pub mod mp4;
pub mod plan;
pub mod presentation;
pub mod reads;

pub use error::PackagingError;

/// The bundled sample clip, indexed: shared by the unit tests of the packaging modules.
#[cfg(test)]
pub(crate) mod sample {
    use super::mp4::{IndexLimits, MediaIndex, MoovLocator, Probe, build_index};

    pub const SAMPLE_MP4: &[u8] = include_bytes!("../../assets/sample/sample.mp4");

    /// The `moov` bytes of an in-memory file, found the way the server finds them.
    pub fn moov_of(file: &[u8]) -> Result<&[u8], super::PackagingError> {
        let mut loc = MoovLocator::new(file.len() as u64, 64 << 20);
        let mut range = loc.start()?;
        loop {
            match loc.feed(range.start, &file[range.start as usize..range.end as usize])? {
                Probe::Read(r) => range = r,
                Probe::Found(r) => return Ok(&file[r.start as usize..r.end as usize]),
            }
        }
    }

    pub fn index() -> MediaIndex {
        build_index(moov_of(SAMPLE_MP4).unwrap(), SAMPLE_MP4.len() as u64, IndexLimits::default()).unwrap()
    }
}
