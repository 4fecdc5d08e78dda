//! estuary: an HLS/DASH streaming origin. The binary (`main.rs`) is a thin
//! shell around [`server::start`]; everything else lives in these modules.

pub mod api;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod edge;
pub mod health;
pub mod http;
pub mod ingest;
pub mod internal;
pub mod live;
pub mod packaging;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod vod;
