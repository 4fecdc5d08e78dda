//! Fixtures for unit tests of what reads a snapshot (manifests here, the edge's readers in
//! estuary): a slot of stored parts and a live snapshot holding given slots. Built for tests only
//! (`cfg(test)` here, the `fixtures` feature for estuary's tests).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::model::{ChannelId, ChannelSettings, ChannelSnapshot, Container, Part, Slot, Status};

/// Slot `msn` of epoch 7 lasting `secs`, with `parts` stored renditions (a discontinuity at 12).
pub fn slot(msn: u64, secs: f64, parts: usize) -> Arc<Slot> {
    Arc::new(Slot {
        msn,
        epoch: 7,
        discontinuity: msn == 12,
        pdt: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + msn * 2),
        duration: secs,
        parts: (0..parts)
            .map(|_| {
                Some(Part {
                    decode_time: msn * 180_000,
                    duration: 180_000,
                    size: 10,
                    bytes: None,
                    stored: true,
                    at_owner: false,
                    keyframes: None,
                })
            })
            .collect(),
    })
}

/// A live fMP4 snapshot of channel `news` (2 s target, 10 s window) holding `slots`.
pub fn snapshot(slots: Vec<Arc<Slot>>) -> ChannelSnapshot {
    ChannelSnapshot {
        id: ChannelId::parse("news").unwrap(),
        settings: ChannelSettings {
            window: Duration::from_secs(10),
            target_duration: Duration::from_secs(2),
            ..Default::default()
        },
        version: 1,
        status: Status::Live,
        accepting: true,
        last_upload: None,
        container: Some(Container::Fmp4),
        renditions: Vec::new(),
        epochs: Vec::new(),
        slots,
        discontinuity_base: 3,
        availability_start: SystemTime::UNIX_EPOCH,
        published: SystemTime::UNIX_EPOCH,
        publish_latency: Default::default(),
        part_publish_latency: Default::default(),
        owner_url: None,
        low_latency: Default::default(),
    }
}
