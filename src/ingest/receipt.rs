//! `Receipt`: what an upload in progress holds and how fast it must come. Its bytes are charged as
//! they arrive, never as declared, to the ingest total and to its channel's share, so one stream
//! key cannot reserve what other channels need with `Content-Length`s it never sends; and a body
//! that falls behind a minimum rate is cut, so a trickle cannot hold a charge for ever.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::IngestError;
use crate::budget::{ByteBudget, Charge};

/// How fast a body must come.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    /// A body that sends nothing for this long is cut (408); also the grace before `min_rate` holds.
    pub idle: Duration,
    /// Bytes per second a body must average once its first `idle` is over (0: no minimum).
    pub min_rate: u64,
}

/// One body being received.
pub(super) struct Receipt {
    total: Charge,
    channel: Charge,
    pace: Pace,
    started: Instant,
    received: u64,
}

impl Receipt {
    /// A body charged to `total` (`ingest.max_total_bytes`) and to `channel` (its channel's
    /// `ingest.max_channel_bytes`).
    pub(super) fn new(total: &Arc<ByteBudget>, channel: &Arc<ByteBudget>, pace: Pace) -> Self {
        Receipt { total: total.nothing(), channel: channel.nothing(), pace, started: Instant::now(), received: 0 }
    }

    /// The next piece of the body; `None` at its end. 408 when it sends nothing for `idle`, or has
    /// fallen behind the minimum rate.
    pub(super) async fn next(&mut self, body: &mut Body) -> Result<Option<Bytes>, IngestError> {
        loop {
            let frame = match tokio::time::timeout(self.pace.idle, body.frame()).await {
                Err(_) => return Err(IngestError::Stalled(self.pace.idle)),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(IngestError::Body(e.to_string())),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            self.received += data.len() as u64;
            if let Some(behind) = behind(self.pace, self.started.elapsed(), self.received) {
                return Err(IngestError::TooSlow { rate: self.pace.min_rate, behind });
            }
            return Ok(Some(data));
        }
    }

    /// Holds `bytes` from now on (more or fewer than before); 413 when the ingest total or the
    /// channel's share has no room for them.
    pub(super) fn hold(&mut self, bytes: u64) -> Result<(), IngestError> {
        for (charge, what) in
            [(&mut self.channel, "ingest.max_channel_bytes"), (&mut self.total, "ingest.max_total_bytes")]
        {
            if bytes > charge.bytes() {
                charge.grow(bytes - charge.bytes()).map_err(|e| IngestError::Full(format!("{e} ({what})")))?;
            } else {
                charge.shrink_to(bytes);
            }
        }
        Ok(())
    }

    /// `body` carrying the total's charge (kept with the bytes wherever they go); the channel's share
    /// of a received body ends with the receipt, once the channel counts the body itself.
    pub(super) fn attach(self, body: Bytes) -> Bytes {
        self.total.attach(body)
    }
}

/// How many bytes a body of `received` after `elapsed` is short of the minimum rate, if it is.
fn behind(pace: Pace, elapsed: Duration, received: u64) -> Option<u64> {
    let due = elapsed.saturating_sub(pace.idle).as_secs_f64() * pace.min_rate as f64;
    let due = due as u64;
    (received < due).then(|| due - received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_must_keep_up_once_its_grace_is_over() {
        let pace = Pace { idle: Duration::from_secs(10), min_rate: 1024 };
        assert_eq!(behind(pace, Duration::from_secs(9), 0), None, "inside the grace");
        assert_eq!(behind(pace, Duration::from_secs(12), 2048), None, "on the rate");
        assert_eq!(behind(pace, Duration::from_secs(15), 4), Some(5 * 1024 - 4), "a trickle");
        let none = Pace { min_rate: 0, ..pace };
        assert_eq!(behind(none, Duration::from_secs(3600), 1), None);
    }

    #[test]
    fn held_bytes_are_charged_to_both_budgets_and_given_back() {
        let total = ByteBudget::new(1000, Duration::ZERO);
        let channel = ByteBudget::new(300, Duration::ZERO);
        let pace = Pace { idle: Duration::from_secs(1), min_rate: 0 };
        let mut receipt = Receipt::new(&total, &channel, pace);
        receipt.hold(250).unwrap();
        assert_eq!((total.in_use(), channel.in_use()), (250, 250));
        let e = receipt.hold(400).unwrap_err();
        assert!(e.to_string().contains("ingest.max_channel_bytes"), "{e}");
        receipt.hold(100).unwrap();
        assert_eq!((total.in_use(), channel.in_use()), (100, 100));
        let body = receipt.attach(Bytes::from(vec![0u8; 100]));
        assert_eq!((total.in_use(), channel.in_use()), (100, 0), "the body keeps the total's charge");
        drop(body);
        assert_eq!(total.in_use(), 0);
    }
}
