//! The segment an encoder is still uploading, sent to a player (LL-DASH) as its parts arrive: the
//! first part whole, each later one without its `styp`, so the body is byte for byte the segment
//! committed later. The body ends when the segment is committed with exactly those bytes; anything
//! else (the upload broke off, the segment was built otherwise, no part for too long) breaks the
//! body off unterminated, so no client or CDN keeps a truncated segment. A protected channel's
//! pieces are sealed one by one, as its whole segment is (fragment by fragment).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::blocking::blocking_timeout;
use super::model::{ChannelSnapshot, Status};

/// What a protected channel's growing segment does to each piece before it is sent: `(bytes, k)`,
/// `k` the piece's place in the segment (its first fragment's).
pub type PieceSeal = Arc<dyn Fn(&Bytes, u32) -> Result<Bytes, String> + Send + Sync>;

/// One rendition's segment being uploaded, followed through the channel's snapshots.
pub struct Growing {
    snapshots: watch::Receiver<Arc<ChannelSnapshot>>,
    rendition: usize,
    epoch: u64,
    msn: u64,
    /// A protected channel's: each piece sealed as the whole segment will be.
    seal: Option<PieceSeal>,
}

/// What the body does next, having sent `sent` parts making `sent_bytes` bytes.
#[derive(Debug, PartialEq)]
enum Step {
    Send(Bytes),
    /// The segment is committed and the body was all of it.
    Done,
    /// Wait for the next snapshot.
    Wait,
    Broken(&'static str),
}

impl Growing {
    pub fn new(snapshots: watch::Receiver<Arc<ChannelSnapshot>>, rendition: usize, epoch: u64, msn: u64) -> Self {
        Growing { snapshots, rendition, epoch, msn, seal: None }
    }

    /// Each piece sealed by `seal` before it is sent (a protected channel's segment).
    pub fn sealed(self, seal: PieceSeal) -> Self {
        Growing { seal: Some(seal), ..self }
    }

    fn step(&self, snap: &ChannelSnapshot, sent: usize, sent_bytes: u64) -> Step {
        let (r, epoch, msn) = (self.rendition, self.epoch, self.msn);
        if let Some(segment) = snap.low_latency.segment(r, msn).filter(|s| s.epoch == epoch)
            && let Some(part) = segment.parts.get(sent)
        {
            return Step::Send(part.in_segment(sent));
        }
        let whole = snap.slot(msn).filter(|s| s.epoch == epoch).and_then(|s| s.part(r));
        match whole {
            Some(part) if part.size == sent_bytes && sent > 0 => Step::Done,
            // Committed before any part was sent: the whole segment, when held.
            Some(part) if sent == 0 => match &part.bytes {
                Some(bytes) => Step::Send(bytes.clone()),
                None => Step::Broken("the segment was committed before its first part"),
            },
            Some(_) => Step::Broken("the segment was committed with other bytes than its parts"),
            None if snap.status == Status::Ended => Step::Broken("the channel ended"),
            None => Step::Wait,
        }
    }

    /// The body: each part as it arrives, until the segment is whole.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        futures_util::stream::unfold(Some((self, 0usize, 0u64)), |state| async move {
            let (mut growing, sent, sent_bytes) = state?;
            loop {
                let snap = growing.snapshots.borrow_and_update().clone();
                match growing.step(&snap, sent, sent_bytes) {
                    Step::Send(bytes) => {
                        let piece = match &growing.seal {
                            Some(seal) => match seal(&bytes, sent as u32) {
                                Ok(sealed) => sealed,
                                Err(why) => return Some((Err(std::io::Error::other(why)), None)),
                            },
                            None => bytes.clone(),
                        };
                        let next = (growing, sent + 1, sent_bytes + bytes.len() as u64);
                        return Some((Ok(piece), Some(next)));
                    }
                    Step::Done => return None,
                    Step::Broken(why) => return Some((Err(std::io::Error::other(why)), None)),
                    Step::Wait => {
                        let limit = blocking_timeout(&snap);
                        match tokio::time::timeout(limit, growing.snapshots.changed()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return Some((Err(std::io::Error::other("the channel closed")), None)),
                            Err(_) => return Some((Err(std::io::Error::other("no part arrived in time")), None)),
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::live::model::{LivePart, LowLatency, Part, SegmentParts};
    use estuary_live::fixtures::{slot, snapshot};

    fn part(body: &'static [u8]) -> LivePart {
        LivePart { duration: 0.5, bytes: Bytes::from_static(body), size: body.len() as u64, independent: true }
    }

    fn with_parts(parts: Vec<LivePart>) -> ChannelSnapshot {
        let mut snap = snapshot((20..23).map(|msn| slot(msn, 2.0, 1)).collect());
        let segments = VecDeque::from([SegmentParts { msn: 23, epoch: 7, parts }]);
        snap.low_latency = Arc::new(LowLatency { renditions: vec![segments], part_target: 0.5 });
        snap
    }

    fn committed(snap: &mut ChannelSnapshot, size: u64, bytes: Option<&'static [u8]>) {
        let mut whole = (*slot(23, 2.0, 1)).clone();
        whole.parts[0] =
            Some(Part { size, bytes: bytes.map(Bytes::from_static), ..whole.parts[0].clone().expect("part") });
        snap.slots.push(Arc::new(whole));
    }

    #[test]
    fn parts_are_sent_as_they_come_then_the_body_ends_with_the_segment() {
        let (_tx, rx) = watch::channel(Arc::new(with_parts(Vec::new())));
        let growing = Growing::new(rx, 0, 7, 23);
        let mut snap = with_parts(Vec::new());
        assert_eq!(growing.step(&snap, 0, 0), Step::Wait);
        let first: &'static [u8] = b"\0\0\0\x0cstypmsdhmoof1";
        snap = with_parts(vec![part(first), part(b"\0\0\0\x0cstypmsdhmoof2")]);
        assert_eq!(growing.step(&snap, 0, 0), Step::Send(Bytes::from_static(first)));
        assert_eq!(growing.step(&snap, 1, 17), Step::Send(Bytes::from_static(b"moof2")), "no second styp");
        assert_eq!(growing.step(&snap, 2, 22), Step::Wait);
        committed(&mut snap, 22, None);
        assert_eq!(growing.step(&snap, 2, 22), Step::Done);
    }

    #[test]
    fn a_segment_committed_otherwise_breaks_the_body_off() {
        let (_tx, rx) = watch::channel(Arc::new(with_parts(Vec::new())));
        let growing = Growing::new(rx, 0, 7, 23);
        let mut snap = with_parts(vec![part(b"\0\0\0\x0cstypmsdhmoof1")]);
        committed(&mut snap, 999, None);
        assert!(matches!(growing.step(&snap, 1, 17), Step::Broken(_)));
        // Nothing sent yet: the segment itself, when held.
        let mut snap = with_parts(Vec::new());
        committed(&mut snap, 4, Some(b"seg!"));
        assert_eq!(growing.step(&snap, 0, 0), Step::Send(Bytes::from_static(b"seg!")));
        assert_eq!(growing.step(&snap, 1, 4), Step::Done);
        // Another epoch's parts are not this segment's.
        let other = Growing::new(watch::channel(Arc::new(snap.clone())).1, 0, 8, 23);
        assert_eq!(other.step(&with_parts(vec![part(b"x")]), 0, 0), Step::Wait);
        let mut ended = with_parts(Vec::new());
        ended.status = Status::Ended;
        assert!(matches!(growing.step(&ended, 0, 0), Step::Broken(_)));
    }
}
