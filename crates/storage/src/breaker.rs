//! `CircuitBreaker`: after repeated storage failures, fail fast for a while instead of piling requests
//! on a sick backend; then let one request through as a probe and recover on its success. It also
//! holds every call to a total deadline, so a hung backend costs a player seconds, not minutes, and
//! each call that runs out of time counts as a failure.

use std::ops::Range;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

use super::{ListedObject, Object, ObjectMeta, Storage, StorageError, StorageKey};
use estuary_budget::BudgetWaits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once until the cool-down ends.
    Open,
    /// One call is probing the backend; the others fail at once.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    open_until: Instant,
}

/// Wraps a backend with a circuit breaker. Only outages count as failures; "not found" does not.
pub struct CircuitBreaker {
    inner: Arc<dyn Storage>,
    state: Mutex<Inner>,
    threshold: u32,
    cooldown: Duration,
    deadlines: Deadlines,
}

/// The longest a whole storage call may take, retries included.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Reads, heads and listings: a player is waiting.
    pub read: Duration,
    /// Writes and deletes (live write-through, records): bigger bodies, nobody waiting.
    pub write: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines { read: Duration::from_secs(3600), write: Duration::from_secs(3600) }
    }
}

/// What a call may do.
enum Admission {
    Go,
    Probe,
    Refuse,
}

impl CircuitBreaker {
    pub fn new(inner: Arc<dyn Storage>, threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            inner,
            state: Mutex::new(Inner { state: BreakerState::Closed, failures: 0, open_until: Instant::now() }),
            threshold: threshold.max(1),
            cooldown,
            deadlines: Deadlines::default(),
        }
    }

    pub fn with_deadlines(self, deadlines: Deadlines) -> Self {
        CircuitBreaker { deadlines, ..self }
    }

    pub fn state(&self) -> BreakerState {
        self.state.lock().map(|s| s.state).unwrap_or(BreakerState::Closed)
    }

    fn admit(&self) -> Admission {
        let Ok(mut s) = self.state.lock() else { return Admission::Go };
        match s.state {
            BreakerState::Closed => Admission::Go,
            // Time for a probe; or the last probe never came back (its request was dropped).
            BreakerState::Open | BreakerState::HalfOpen if Instant::now() >= s.open_until => {
                s.state = BreakerState::HalfOpen;
                s.open_until = Instant::now() + self.cooldown;
                Admission::Probe
            }
            BreakerState::Open | BreakerState::HalfOpen => Admission::Refuse,
        }
    }

    fn settle<T>(&self, result: &Result<T, StorageError>) {
        let Ok(mut s) = self.state.lock() else { return };
        match result {
            Err(e) if e.is_outage() => {
                s.failures += 1;
                if s.state == BreakerState::HalfOpen || s.failures >= self.threshold {
                    if s.state != BreakerState::Open {
                        tracing::warn!(
                            failures = s.failures,
                            cooldown_s = self.cooldown.as_secs_f64(),
                            "storage circuit open: failing fast"
                        );
                    }
                    s.state = BreakerState::Open;
                    s.open_until = Instant::now() + self.cooldown;
                }
            }
            _ => {
                if s.state != BreakerState::Closed {
                    tracing::info!("storage circuit closed: the backend answers again");
                }
                s.state = BreakerState::Closed;
                s.failures = 0;
            }
        }
    }

    async fn call<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        F: std::future::Future<Output = Result<T, StorageError>>,
    {
        self.within(self.deadlines.read, f).await
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        F: std::future::Future<Output = Result<T, StorageError>>,
    {
        self.within(self.deadlines.write, f).await
    }

    async fn within<T, F>(&self, deadline: Duration, f: F) -> Result<T, StorageError>
    where
        F: std::future::Future<Output = Result<T, StorageError>>,
    {
        match self.admit() {
            Admission::Refuse => Err(StorageError::Unavailable("storage circuit open after repeated failures".into())),
            Admission::Go | Admission::Probe => {
                let result = without_budget_waits(deadline, f).await;
                self.settle(&result);
                result
            }
        }
    }
}

/// Runs `call` to `deadline`, leaving out the time its charges waited for room in the byte budget:
/// that wait is this process's congestion (its own bound, `limits.in_flight_wait`), not the backend's.
async fn without_budget_waits<T, F>(deadline: Duration, call: F) -> Result<T, StorageError>
where
    F: std::future::Future<Output = Result<T, StorageError>>,
{
    let waits = std::sync::Arc::new(BudgetWaits::default());
    let call = waits.scope(call);
    tokio::pin!(call);
    let mut until = tokio::time::Instant::now() + deadline;
    loop {
        tokio::select! {
            biased;
            result = &mut call => return result,
            () = tokio::time::sleep_until(until) => match waits.take() {
                waited if waited.is_zero() => {
                    return Err(StorageError::Timeout(format!("no answer within {} ms", deadline.as_millis())));
                }
                waited => until += waited,
            },
        }
    }
}

#[async_trait]
impl Storage for CircuitBreaker {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn max_reads_per_segment(&self) -> usize {
        self.inner.max_reads_per_segment()
    }

    async fn probe(&self) -> Result<(), StorageError> {
        self.call(self.inner.probe()).await
    }

    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
        self.call(self.inner.get(key)).await
    }

    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError> {
        self.call(self.inner.get_range(key, range)).await
    }

    async fn get_ranges(&self, key: &StorageKey, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, StorageError> {
        self.call(self.inner.get_ranges(key, ranges)).await
    }

    async fn gather(&self, key: &StorageKey, at: super::Gather<'_>, into: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        self.call(self.inner.gather(key, at, into)).await
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        self.call(self.inner.head(key)).await
    }

    async fn reader(&self, key: &StorageKey) -> Result<Option<Arc<dyn super::ChunkReader>>, StorageError> {
        self.call(self.inner.reader(key)).await
    }

    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError> {
        self.write(self.inner.put(key, body)).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        self.write(self.inner.delete(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.call(self.inner.list(prefix)).await
    }

    async fn list_past(&self, prefix: &str, limit: usize) -> Result<Vec<ListedObject>, StorageError> {
        self.call(self.inner.list_past(prefix, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A backend that is up or down on command and counts the calls that reach it.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicU32,
    }

    #[async_trait]
    impl Storage for Flaky {
        fn backend(&self) -> &'static str {
            "flaky"
        }
        async fn probe(&self) -> Result<(), StorageError> {
            self.head(&StorageKey::parse("x").unwrap()).await.map(|_| ())
        }
        async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
            self.head(key).await.map(|meta| Object { body: Bytes::new(), meta })
        }
        async fn get_range(&self, key: &StorageKey, _: Range<u64>) -> Result<Object, StorageError> {
            self.get(key).await
        }
        async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if key.as_str() == "hang" {
                std::future::pending::<()>().await;
            }
            if key.as_str() == "emfile" {
                return Err(StorageError::Exhausted("descriptors".into()));
            }
            if self.down.load(Ordering::SeqCst) {
                Err(StorageError::Unavailable("down".into()))
            } else if key.as_str() == "missing" {
                Err(StorageError::NotFound(key.to_string()))
            } else {
                Ok(ObjectMeta { size: 0, modified: None, etag: None })
            }
        }
        async fn put(&self, _: &StorageKey, _: Bytes) -> Result<(), StorageError> {
            Ok(())
        }
        async fn delete(&self, _: &StorageKey) -> Result<(), StorageError> {
            Ok(())
        }
        async fn list(&self, _: &str) -> Result<Vec<ListedObject>, StorageError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn opens_fails_fast_probes_and_recovers() {
        let flaky = Arc::new(Flaky::default());
        let breaker = CircuitBreaker::new(flaky.clone(), 3, Duration::from_millis(50));
        let key = StorageKey::parse("x").unwrap();
        // Missing objects are not failures.
        for _ in 0..5 {
            assert!(matches!(
                breaker.head(&StorageKey::parse("missing").unwrap()).await,
                Err(StorageError::NotFound(_))
            ));
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            assert!(breaker.head(&key).await.is_err());
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        let reached = flaky.calls.load(Ordering::SeqCst);
        for _ in 0..100 {
            assert!(breaker.head(&key).await.is_err());
        }
        assert_eq!(flaky.calls.load(Ordering::SeqCst), reached, "an open circuit does not touch the backend");
        // After the cool-down one probe goes through; it fails, so the circuit opens again.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(breaker.head(&key).await.is_err());
        assert_eq!(flaky.calls.load(Ordering::SeqCst), reached + 1);
        assert_eq!(breaker.state(), BreakerState::Open);
        // The backend recovers: the next probe closes the circuit.
        flaky.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(breaker.head(&key).await.is_ok());
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn hung_calls_end_at_the_deadline_and_count_while_local_exhaustion_does_not() {
        let flaky = Arc::new(Flaky::default());
        let breaker = CircuitBreaker::new(flaky.clone(), 3, Duration::from_secs(60))
            .with_deadlines(Deadlines { read: Duration::from_millis(30), write: Duration::from_secs(1) });
        for _ in 0..10 {
            assert!(matches!(
                breaker.head(&StorageKey::parse("emfile").unwrap()).await,
                Err(StorageError::Exhausted(_))
            ));
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "running out of descriptors is not the backend's fault");
        let hang = StorageKey::parse("hang").unwrap();
        let calls = (0..3).map(|_| breaker.head(&hang));
        for result in futures_util::future::join_all(calls).await {
            assert!(matches!(result, Err(StorageError::Timeout(_))));
        }
        assert_eq!(breaker.state(), BreakerState::Open, "parallel timeouts each count");
    }

    #[tokio::test]
    async fn a_wait_for_the_byte_budget_is_not_storage_time() {
        use estuary_budget::ByteBudget;
        let flaky = Arc::new(Flaky::default());
        let deadline = Duration::from_millis(200);
        let breaker = CircuitBreaker::new(flaky.clone(), 1, Duration::from_secs(60))
            .with_deadlines(Deadlines { read: deadline, write: deadline });
        let budget = ByteBudget::new(10, Duration::from_secs(30));
        let held = budget.try_charge(10).unwrap();
        // A read that waits twice its deadline for room, then answers at once: inside its deadline.
        let read = breaker.call(async {
            let charge = budget.charge(5).await.map_err(StorageError::from)?;
            Ok::<_, StorageError>(charge.bytes())
        });
        let release = async {
            tokio::time::sleep(deadline * 2).await;
            drop(held);
        };
        let (read, ()) = tokio::join!(read, release);
        assert_eq!(read.unwrap(), 5);
        // One that never gets room is refused for this request (503), and the circuit stays closed.
        let short = ByteBudget::new(10, deadline * 2);
        let _all = short.try_charge(10).unwrap();
        let starved = breaker.call(async { short.charge(5).await.map(|_| ()).map_err(StorageError::from) }).await;
        assert!(matches!(starved, Err(StorageError::Exhausted(_))), "{starved:?}");
        assert_eq!(breaker.state(), BreakerState::Closed);
        // The backend's own time still counts: a hung call times out and opens the circuit.
        let slow = breaker.call(flaky.head(&StorageKey::parse("hang").unwrap())).await;
        assert!(matches!(slow, Err(StorageError::Timeout(_))));
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}
