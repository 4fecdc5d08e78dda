//! Reading MP4 sources: box walking, finding `moov`, and the compact sample index built from it.

pub mod boxes;
pub mod headers;
pub mod index;
pub mod locate;
pub mod tables;

pub use index::{Edit, IndexLimits, MediaIndex, TextTrack, Track, TrackKind, build_index};
pub use locate::{MoovLocator, Probe};
pub use tables::SampleTable;
