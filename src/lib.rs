//! estuary: an HLS/DASH streaming origin. The binary (`main.rs`) is a thin
//! shell around [`server::start`]; everything else lives in these modules and in the crates below
//! them: `estuary-media` (pure packaging, here as [`packaging`]), `estuary-http` (pure HTTP
//! semantics, here as [`http`]) and `estuary-sys` (the only crate with `unsafe`).

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
pub mod live;
pub use estuary_media as packaging;
pub mod server;
pub use estuary_storage as storage;
pub use estuary_telemetry as telemetry;
pub mod vod;
