//! The edge tier, estuary's hot path: everything players and the CDN fetch (GET/HEAD), plus `/healthz`
//! for load balancers. One dispatcher ([`EdgeService`]) routes every request by the URL grammar
//! ([`route::EdgeRoute`]).
//!
//! Invariant: handlers only read; they never wait on a lock held by the API
//! or ingest tiers for longer than a pointer swap.

mod dispatch;
mod error;
mod guard;
mod keys;
mod live;
pub mod respond;
mod route;
mod shortcut;
mod static_files;
mod vod;

use std::sync::Arc;

pub use dispatch::EdgeService;
pub use error::EdgeError;
pub use guard::OriginLock;

use crate::cache::SegmentCache;
use crate::config::StaticFilesConfig;
use crate::health::Health;
use crate::live::service::Live;
use crate::storage::Storage;
use crate::vod::Vod;

/// What edge handlers share. Cloned for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct EdgeState(Arc<EdgeShared>);

impl EdgeState {
    pub fn new(shared: EdgeShared) -> Self {
        EdgeState(Arc::new(shared))
    }
}

impl std::ops::Deref for EdgeState {
    type Target = EdgeShared;

    fn deref(&self) -> &EdgeShared {
        &self.0
    }
}

pub struct EdgeShared {
    pub storage: Arc<dyn Storage>,
    pub cache: SegmentCache,
    pub static_files: StaticFilesConfig,
    pub vod: Vod,
    pub live: Live,
    pub health: Health,
}
