//! The low-latency objects of a live channel beside its segments: the LL-DASH segment still being
//! uploaded (sent as its parts arrive), and LL-HLS parts, waited for where the preload hint named
//! them before they exist. Shared by clear and protected channels.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::{Live, ServeError};
use crate::live::growing::Growing;
use crate::live::model::ChannelSnapshot;

impl Live {
    /// LL-DASH: the segment after the rendition's newest (the one the MPD announces) is sent as it
    /// is uploaded, by the pod taking the upload (`Some`); a pod following the channel answers once
    /// it is whole. Anything further ahead is 404, as before. Looked at only for a segment that is
    /// not whole yet (a whole one, nearly every request, costs one slot lookup more than before).
    /// The snapshot, waited for where the segment was not there yet.
    pub(super) async fn growing(
        &self,
        source: &watch::Receiver<Arc<ChannelSnapshot>>,
        snap: Arc<ChannelSnapshot>,
        r: usize,
        epoch: u64,
        msn: u64,
    ) -> Result<(Arc<ChannelSnapshot>, Option<Growing>), ServeError> {
        let whole = |s: &ChannelSnapshot| s.slot(msn).is_some_and(|s| s.epoch == epoch && s.part(r).is_some());
        if !whole(&snap)
            && let Some(newest) = snap.low_latency.renditions.get(r).and_then(|s| s.back())
            && newest.epoch == epoch
            && snap.offers_parts()
            && snap.edge_of(r).is_some_and(|edge| msn == edge + 1)
        {
            let here = newest.parts.iter().all(|p| !p.bytes.is_empty());
            let snap = self.wait_for_segment(source.clone(), snap, r, msn, here.then_some(0)).await?;
            let growing = (here && !whole(&snap)).then(|| Growing::new(source.clone(), r, epoch, msn));
            return Ok((snap, growing));
        }
        Ok((snap, None))
    }

    /// LL-HLS part `part` of segment `msn` (`epoch`) of rendition `r`: its bytes (empty on a pod
    /// following the channel: the owner has them) and size. The preload hint names the next part
    /// before it exists: held until it does.
    pub(super) async fn part(
        &self,
        source: &watch::Receiver<Arc<ChannelSnapshot>>,
        snap: Arc<ChannelSnapshot>,
        r: usize,
        (epoch, msn, part): (u64, u64, u32),
    ) -> Result<(Arc<ChannelSnapshot>, Bytes, u64), ServeError> {
        let find = |s: &ChannelSnapshot| {
            let segment = s.low_latency.segment(r, msn).filter(|seg| seg.epoch == epoch)?;
            segment.parts.get(part as usize).map(|p| (p.bytes.clone(), p.size))
        };
        match find(&snap) {
            Some((bytes, size)) => Ok((snap, bytes, size)),
            None if snap.edge_of(r).is_none_or(|edge| msn > edge) => {
                let snap = self.wait_for_segment(source.clone(), snap, r, msn, Some(part)).await?;
                let (bytes, size) = find(&snap).ok_or(ServeError::NotFound)?;
                Ok((snap, bytes, size))
            }
            None => Err(ServeError::NotFound),
        }
    }
}
