//! DASH-IF Live Media Ingest, interface 1 (CMAF): `POST /ingest/{channel}/{key}/Streams({track})`,
//! one long-running POST per track (chunked transfer): the CMAF header, then CMAF fragments as the
//! encoder makes them. An empty POST is the source checking the endpoint and its credentials (200).
//!
//! Each track is read by a [`TrackIngest`] and turned into what an HLS-pushing encoder uploads
//! (`cmaf/{track}/init.mp4`, `seg_{n}.m4s`, `index.m3u8`), so the channel takes it like any push:
//! renditions, epochs, storage, the cluster. Fragments of the segment being received are listed as
//! LL-HLS parts as they arrive. A broken stream is refused (422) and ends that track's POST; what it
//! already delivered stays.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Method, StatusCode};

use super::receipt::Receipt;
use super::{IngestError, IngestState, apply};
use crate::live::ChannelHandle;
use crate::live::channel::OpenUpload;
use crate::live::cmaf_ingest::{TrackEvent, TrackIngest, segment_name};
use crate::live::upload::UploadError;
use crate::packaging::fmp4::chunks::ChunkError;

/// The track named by a `Streams({name})` path (its last component); `None` for other paths, 400
/// for a `Streams(` path whose name is not a plain name.
pub(super) fn track_name(path: &str) -> Result<Option<&str>, IngestError> {
    let Some(at) = path.find("Streams(") else { return Ok(None) };
    let name = path[at + "Streams(".len()..].strip_suffix(')').unwrap_or("");
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) || name.starts_with('.') {
        return Err(IngestError::BadPath(format!("{path}: a track name is up to 64 letters, digits, '_', '-' or '.'")));
    }
    Ok(Some(name))
}

/// One track's POST, to its end.
pub(super) async fn track(
    state: &IngestState,
    handle: &ChannelHandle,
    name: &str,
    body: Body,
) -> Result<Response, IngestError> {
    let target = handle.snapshot().settings.target_duration.as_secs_f64();
    let limits = &state.limits;
    let mut session = Session {
        handle,
        state,
        dir: format!("cmaf/{name}"),
        track: TrackIngest::new(target, limits.max_init_bytes, limits.max_body_bytes),
        open: None,
    };
    // What the track holds (its header until complete, then its open segment) is charged here, to
    // the ingest total and to the channel's share.
    let mut receipt = Receipt::new(&state.budget, handle.receiving(), limits.pace());
    let mut body = body;
    while let Some(data) = receipt.next(&mut body).await? {
        let events = session.track.push(&data).map_err(|e| match e {
            ChunkError::TooLarge { limit, .. } => IngestError::TooLarge(limit),
            e => invalid(e),
        })?;
        // Charged before the events are applied, so a track over its share changes nothing; what a
        // closed segment gave back is released at the next piece (or the end of the POST).
        receipt.hold(session.track.held())?;
        for event in events {
            session.take(event).await?;
        }
    }
    if let Some(last) = session.track.finish().map_err(invalid)? {
        session.take(last).await?;
    }
    Ok(StatusCode::OK.into_response())
}

fn invalid(e: impl std::fmt::Display) -> IngestError {
    IngestError::Upload(UploadError::Invalid(format!("CMAF ingest: {e}")))
}

struct Session<'a> {
    handle: &'a ChannelHandle,
    state: &'a IngestState,
    dir: String,
    track: TrackIngest,
    /// The segment being received, when the channel lists its fragments as parts.
    open: Option<(u64, OpenUpload)>,
}

impl Session<'_> {
    async fn take(&mut self, event: TrackEvent) -> Result<(), IngestError> {
        match event {
            TrackEvent::Header(bytes) => self.put("init.mp4", bytes).await,
            TrackEvent::Fragment { number, chunk } => {
                if self.open.as_ref().is_none_or(|(n, _)| *n != number) {
                    let path = format!("{}/{}", self.dir, segment_name(number));
                    self.open = self.handle.open_upload(&path).await.map(|open| (number, open));
                }
                if let Some((_, open)) = &self.open {
                    self.handle.chunk(open, chunk).await;
                }
                Ok(())
            }
            TrackEvent::Segment { number, bytes, .. } => {
                self.put(&segment_name(number), bytes).await?;
                let playlist = Bytes::from(self.track.playlist());
                self.put("index.m3u8", playlist).await
            }
        }
    }

    /// Uploads `bytes` as `{dir}/{name}`, charged to the ingest budget as any upload body is.
    async fn put(&self, name: &str, bytes: Bytes) -> Result<(), IngestError> {
        let charge = self.state.budget.try_charge(bytes.len() as u64).map_err(|e| IngestError::Full(e.to_string()))?;
        let path = format!("{}/{name}", self.dir);
        apply(self.handle, &Method::PUT, &path, charge.attach(bytes)).await.map(drop)
    }
}

/// An empty POST: the source checking the endpoint (and, having got here, its credentials).
pub(super) fn is_probe(headers: &http::HeaderMap) -> bool {
    headers.get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0")
}

#[cfg(test)]
mod tests {
    use super::track_name;

    #[test]
    fn tracks_are_named_by_their_streams_path() {
        assert_eq!(track_name("Streams(video_1)").unwrap(), Some("video_1"));
        assert_eq!(track_name("live/Streams(audio-en.aac)").unwrap(), Some("audio-en.aac"));
        assert_eq!(track_name("v0/seg_00001.m4s").unwrap(), None);
        for bad in ["Streams()", "Streams(a/b)", "Streams(..)", "Streams(x", "Streams(a b)", "Streams(a)/x"] {
            assert!(track_name(bad).is_err(), "{bad}");
        }
    }
}
