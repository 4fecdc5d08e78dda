//! estuary: an HLS/DASH streaming origin. The binary (`main.rs`) is a thin shell around
//! [`server::start`]; this crate holds the tiers (edge, ingest, api, internal), VOD, live's I/O and
//! the config, and re-exports the crates below it under their module names: `estuary-http` as
//! [`http`], `estuary-media` as [`packaging`], `estuary-budget`, `-storage`, `-cache`, `-cluster`
//! and `-telemetry` as [`budget`], [`storage`], [`cache`], [`cluster`] and [`telemetry`]; live's pure
//! model (`estuary-live`) is inside [`live`]. System calls are `estuary-sys`'s, the one crate where
//! the compiler allows raw blocks (ARCHITECTURE.md, "The crates").

pub mod api;
pub use estuary_budget as budget;
pub use estuary_cache as cache;
pub use estuary_cluster as cluster;
pub mod config;
pub mod edge;
pub mod health;
pub use estuary_http as http;
pub mod ingest;
pub mod internal;
pub mod keys;
pub mod live;
pub use estuary_media as packaging;
pub mod server;
pub use estuary_storage as storage;
pub use estuary_telemetry as telemetry;
pub mod vod;
