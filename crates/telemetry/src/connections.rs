//! Open connections per tier: each listener registers its connection slots, a scrape counts the
//! slots taken. A listener that is gone drops out.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::Semaphore;

use super::metrics::{head, write_value};

/// A listener's slots: `max` permits, one held per open connection.
struct Listener {
    tier: &'static str,
    slots: Weak<Semaphore>,
    max: usize,
}

static LISTENERS: Mutex<Vec<Listener>> = Mutex::new(Vec::new());

/// Registers a listener of `tier` whose open connections each hold one of `max` permits of `slots`.
pub fn register(tier: &'static str, slots: &Arc<Semaphore>, max: usize) {
    let mut listeners = LISTENERS.lock().unwrap_or_else(PoisonError::into_inner);
    listeners.retain(|l| l.slots.strong_count() > 0);
    // The listeners of one tier (the edge's, one per core) share their slots: counted once.
    if listeners.iter().any(|l| std::ptr::eq(l.slots.as_ptr(), Arc::as_ptr(slots))) {
        return;
    }
    listeners.push(Listener { tier, slots: Arc::downgrade(slots), max });
}

/// Appends `estuary_http_connections_open{tier}`: the open connections of every live listener.
pub fn render(out: &mut String) {
    let mut open: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for l in LISTENERS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        if let Some(slots) = l.slots.upgrade() {
            *open.entry(l.tier).or_default() += l.max.saturating_sub(slots.available_permits());
        }
    }
    head(out, "estuary_http_connections_open", "gauge", "Open client connections, by tier");
    for (tier, n) in open {
        write_value(out, "estuary_http_connections_open", &[("tier", tier)], n as f64);
    }
}
