//! PURE live model: a channel's state machine (its window, sessions and low-latency parts), the
//! records it persists, stream keys, and the live HLS and DASH manifests rendered from a snapshot.
//!
//! Invariants: no I/O, no async, no clocks read here (callers pass `now`). The channel task of
//! estuary's `live` module owns a [`channel::ChannelState`], feeds it uploads and applies the
//! [`channel::Effect`]s it returns; the edge renders manifests from an immutable
//! [`model::ChannelSnapshot`]. Must never import estuary's I/O crates or tokio.

pub mod blocking;
pub mod channel;
pub mod cmaf_ingest;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod key;
pub mod keys;
mod ll_dash;
mod ll_hls;
pub mod manifests;
pub mod model;
mod offer;
pub mod record;
mod trick_play;
pub mod upload;

#[cfg(test)]
mod tests;
