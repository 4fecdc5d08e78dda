//! `ByteBudget`: a cap on the bytes of bodies held in memory (read from storage, built, being sent, or
//! kept by ingest). Every buffer is charged once, when it is allocated, and the charge rides with the
//! buffer (`Bytes::from_owner`), so it is released when the last clone is dropped, however many
//! responses or cache entries shared it.
//!
//! A wait for room is this process's own congestion, never the backend's: a storage call that waited
//! runs inside [`BudgetWaits::scope`], and the storage deadline (the circuit breaker's) is moved on by
//! the time it waited, so a full budget never reads as a storage outage.

pub mod recycle;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

/// A byte budget shared by everything that allocates bodies of one kind. Cheap to share (`Arc`).
pub struct ByteBudget {
    limit: u64,
    used: Mutex<u64>,
    freed: Notify,
    /// How long a charge may wait for room before it gives up.
    wait: Duration,
    /// Large buffers kept for the next body, charged ([`recycle`]).
    idle: Mutex<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for ByteBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let f = &mut f.debug_struct("ByteBudget");
        f.field("limit", &self.limit).field("in_use", &self.in_use()).field("idle_bytes", &self.idle_bytes()).finish()
    }
}

/// Bytes held against a [`ByteBudget`]; released on drop.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<ByteBudget>,
    bytes: u64,
}

/// The budget had no room in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{wanted} bytes did not fit the {limit}-byte budget ({used} in use)")]
pub struct OverBudget {
    pub wanted: u64,
    pub used: u64,
    pub limit: u64,
}

impl ByteBudget {
    pub fn new(limit: u64, wait: Duration) -> Arc<ByteBudget> {
        Arc::new(ByteBudget {
            limit: limit.max(1),
            used: Mutex::new(0),
            freed: Notify::new(),
            wait,
            idle: Mutex::default(),
        })
    }

    /// No limit: for tools and tests that build a backend by hand.
    pub fn unlimited() -> Arc<ByteBudget> {
        ByteBudget::new(u64::MAX, Duration::ZERO)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn in_use(&self) -> u64 {
        self.used.lock().map(|u| *u).unwrap_or(0)
    }

    /// A charge of nothing, to grow later.
    pub fn nothing(self: &Arc<Self>) -> Charge {
        Charge { budget: self.clone(), bytes: 0 }
    }

    /// Charges `bytes` if they fit now (idle buffers freed first if they are in the way). A request
    /// larger than the whole budget takes the whole budget (it fits once nothing else is held), so
    /// one oversized body is slow, never stuck.
    pub fn try_charge(self: &Arc<Self>, bytes: u64) -> Result<Charge, OverBudget> {
        match self.charge_now(bytes) {
            Err(_) if self.drop_idle() => self.charge_now(bytes),
            charged => charged,
        }
    }

    fn charge_now(self: &Arc<Self>, bytes: u64) -> Result<Charge, OverBudget> {
        let wanted = bytes.min(self.limit);
        let Ok(mut used) = self.used.lock() else {
            return Ok(Charge { budget: self.clone(), bytes: 0 });
        };
        if *used + wanted > self.limit {
            return Err(OverBudget { wanted: bytes, used: *used, limit: self.limit });
        }
        *used += wanted;
        Ok(Charge { budget: self.clone(), bytes: wanted })
    }

    /// Charges `bytes`, waiting up to the budget's wait for others to release theirs. The time it
    /// waits is told to the [`BudgetWaits`] of the storage call it runs in, if any.
    pub async fn charge(self: &Arc<Self>, bytes: u64) -> Result<Charge, OverBudget> {
        if let Ok(charge) = self.try_charge(bytes) {
            return Ok(charge);
        }
        let _waiting = WAITS.try_with(|waits| waits.begin()).ok();
        let deadline = Instant::now() + self.wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match self.try_charge(bytes) {
                Ok(charge) => return Ok(charge),
                Err(over) if Instant::now() >= deadline => return Err(over),
                Err(_) => {
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        return self.try_charge(bytes);
                    }
                }
            }
        }
    }
}

impl Charge {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds `extra` bytes to this charge if they fit now (a body that arrives in pieces).
    pub fn grow(&mut self, extra: u64) -> Result<(), OverBudget> {
        let mut more = self.budget.try_charge(extra)?;
        self.bytes += std::mem::take(&mut more.bytes);
        Ok(())
    }

    /// Gives back what is above `bytes` (the body turned out smaller than charged).
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes < self.bytes {
            self.budget.release(self.bytes - bytes);
            self.bytes = bytes;
        }
    }

    /// `body` carrying this charge: released when its last clone is dropped.
    pub fn attach(mut self, body: Bytes) -> Bytes {
        self.shrink_to(body.len() as u64);
        if self.bytes == 0 {
            return body;
        }
        Bytes::from_owner(Charged { body, _charge: Arc::new(self) })
    }

    /// `parts` (slices of one charged allocation) sharing this charge.
    pub fn attach_all(self, parts: Vec<Bytes>) -> Vec<Bytes> {
        if self.bytes == 0 {
            return parts;
        }
        let shared = Arc::new(self);
        parts.into_iter().map(|body| Bytes::from_owner(Charged { body, _charge: shared.clone() })).collect()
    }
}

impl ByteBudget {
    fn release(&self, bytes: u64) {
        if let Ok(mut used) = self.used.lock() {
            *used = used.saturating_sub(bytes);
        }
        self.freed.notify_waiters();
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

tokio::task_local! {
    /// The budget waits of the storage call this task is running, set by [`BudgetWaits::scope`].
    static WAITS: Arc<BudgetWaits>;
}

/// How long the charges of one storage call have waited for room, so that its deadline can leave
/// that time out.
#[derive(Debug, Default)]
pub struct BudgetWaits {
    state: Mutex<WaitState>,
}

#[derive(Debug, Default)]
struct WaitState {
    /// Charges waiting now.
    waiting: u32,
    /// Since when time has been counted for the charges waiting now.
    since: Option<Instant>,
    /// Time waited, not yet taken.
    total: Duration,
}

/// One charge's wait; ends on drop.
struct Waiting(Arc<BudgetWaits>);

impl BudgetWaits {
    /// Runs `call` with its charges' waits counted here.
    pub async fn scope<F: std::future::Future>(self: &Arc<Self>, call: F) -> F::Output {
        WAITS.scope(self.clone(), call).await
    }

    fn begin(self: &Arc<Self>) -> Waiting {
        if let Ok(mut s) = self.state.lock() {
            if s.waiting == 0 {
                s.since = Some(Instant::now());
            }
            s.waiting += 1;
        }
        Waiting(self.clone())
    }

    /// The time some charge was waiting since the last call (overlapping waits count once).
    pub fn take(&self) -> Duration {
        let Ok(mut s) = self.state.lock() else { return Duration::ZERO };
        let now = Instant::now();
        if let Some(since) = s.since.as_mut() {
            let ongoing = now.saturating_duration_since(*since);
            *since = now;
            s.total += ongoing;
        }
        std::mem::take(&mut s.total)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.waiting = s.waiting.saturating_sub(1);
            if s.waiting == 0
                && let Some(since) = s.since.take()
            {
                s.total += Instant::now().saturating_duration_since(since);
            }
        }
    }
}

struct Charged {
    body: Bytes,
    _charge: Arc<Charge>,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_lives_as_long_as_the_last_clone_of_its_body() {
        let budget = ByteBudget::new(100, Duration::ZERO);
        let body = budget.try_charge(80).unwrap().attach(Bytes::from(vec![7u8; 60]));
        assert_eq!(budget.in_use(), 60, "shrunk to the body's size");
        assert!(budget.try_charge(50).is_err());
        let clone = body.slice(10..20);
        drop(body);
        assert_eq!(budget.in_use(), 60, "a slice still holds the allocation");
        drop(clone);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn parts_share_one_charge() {
        let budget = ByteBudget::new(100, Duration::ZERO);
        let parts = budget.try_charge(30).unwrap().attach_all(vec![Bytes::from_static(b"abc"), Bytes::new()]);
        assert_eq!(budget.in_use(), 30);
        drop(parts);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn oversized_requests_take_the_whole_budget() {
        let budget = ByteBudget::new(100, Duration::ZERO);
        let all = budget.try_charge(1000).unwrap();
        assert_eq!(all.bytes(), 100);
        assert!(budget.try_charge(1).is_err());
    }

    #[tokio::test]
    async fn a_waiting_charge_gets_room_when_another_is_released() {
        let budget = ByteBudget::new(100, Duration::from_secs(5));
        let first = budget.try_charge(100).unwrap();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.charge(40).await.map(|c| c.bytes()) }
        });
        tokio::task::yield_now().await;
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(40));
        let short = ByteBudget::new(10, Duration::from_millis(20));
        let _held = short.try_charge(10).unwrap();
        assert!(short.charge(5).await.is_err(), "gives up after its wait");
    }

    #[tokio::test]
    async fn a_storage_call_learns_how_long_its_charges_waited() {
        let budget = ByteBudget::new(10, Duration::from_secs(30));
        let waits = Arc::new(BudgetWaits::default());
        let held = budget.try_charge(10).unwrap();
        let hold = Duration::from_millis(300);
        let release = async {
            tokio::time::sleep(hold).await;
            drop(held);
        };
        let both = futures_util::future::join(budget.charge(4), budget.charge(4));
        let ((a, b), ()) = tokio::join!(waits.scope(both), release);
        assert!(a.is_ok() && b.is_ok());
        let waited = waits.take();
        assert!(waited >= hold, "the wait is counted: {waited:?}");
        assert!(waited < hold * 2, "two overlapping waits count once: {waited:?}");
        assert_eq!(waits.take(), Duration::ZERO, "taken once");
        let _room = budget.charge(2).await.unwrap();
        assert_eq!(waits.take(), Duration::ZERO, "a charge that fit at once tells nothing");
    }
}
