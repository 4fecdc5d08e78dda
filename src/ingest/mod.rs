//! The ingest tier: encoders PUT (or POST) init segments, media segments and playlists to
//! `/ingest/{channel}/{key}/{path}` (or `/ingest/{channel}/{path}` with the key in an
//! `Authorization` header) and DELETE old ones; or POST each track as a CMAF stream to
//! `.../Streams({track})` (DASH-IF Live Media Ingest, [`cmaf`]).
//!
//! Invariants: an upload that is refused (auth, size, type, content, time) changes nothing players
//! see, and one that never carried valid credentials is never read, kept or applied; whether a
//! channel exists is only told to a client with its key; every byte ingest holds is charged to its
//! budget.

mod auth;
mod cmaf;
mod receipt;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use auth::Credentials;
use receipt::{Pace, Receipt};

use crate::budget::ByteBudget;
use crate::live::LiveRegistry;
use crate::live::key::KeyHash;
use crate::live::upload::{UploadError, classify};
use crate::packaging::fmp4::chunks::ChunkReader;
use crate::storage::StorageKey;
use crate::telemetry::{AccessLog, ErrorDetail, access};

/// What ingest handlers share. Cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    pub live: LiveRegistry,
    pub limits: UploadLimits,
    /// Every body ingest reads is charged here until the last piece of it is dropped
    /// (`ingest.max_total_bytes`).
    pub budget: Arc<ByteBudget>,
}

/// Bounds on one upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_body_bytes: u64,
    pub max_init_bytes: u64,
    pub max_playlist_bytes: u64,
    /// A body that sends nothing for this long gets 408.
    pub body_timeout: Duration,
    /// Bytes per second a body must average after its first `body_timeout` (408 below it).
    pub min_body_rate: u64,
}

/// The buffer a body starts with, whatever length it declares; it grows as bytes arrive.
const FIRST_BUFFER: u64 = 64 * 1024;

impl UploadLimits {
    fn pace(&self) -> Pace {
        Pace { idle: self.body_timeout, min_rate: self.min_body_rate }
    }

    /// The largest body accepted for a file of this name.
    fn for_path(&self, path: &str) -> u64 {
        match path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
            Some("m3u8" | "m3u") => self.max_playlist_bytes,
            Some("mp4") => self.max_init_bytes,
            _ => self.max_body_bytes,
        }
    }
}

pub fn ingest_router(state: IngestState, access_log: AccessLog) -> Router {
    Router::new()
        .route("/ingest/{channel}/{*path}", put(upload).post(upload).delete(upload))
        .fallback(|| async { IngestError::NoChannel })
        .with_state(state)
        .layer(from_fn_with_state(access_log, access::record))
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no such channel")]
    NoChannel,
    #[error("missing or wrong credentials")]
    Unauthorized,
    #[error("bad path: {0}")]
    BadPath(String),
    #[error("upload larger than {0} bytes")]
    TooLarge(u64),
    #[error("could not read the upload: {0}")]
    Body(String),
    #[error("the upload sent nothing for {0:?}")]
    Stalled(Duration),
    #[error("the upload is {behind} bytes behind the {rate} bytes/s every body must keep up (ingest.min_body_rate)")]
    TooSlow { rate: u64, behind: u64 },
    #[error("ingest is holding all the bytes it may ({0}); try again shortly")]
    Full(String),
    #[error(transparent)]
    Upload(#[from] UploadError),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::NoChannel => StatusCode::NOT_FOUND,
            IngestError::Unauthorized => StatusCode::UNAUTHORIZED,
            IngestError::BadPath(_) | IngestError::Body(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_)
            | IngestError::Full(_)
            | IngestError::Upload(UploadError::Full { .. } | UploadError::IngestFull { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::Stalled(_) | IngestError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            IngestError::Upload(UploadError::UnsupportedType(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Upload(UploadError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::Upload(UploadError::Stopped | UploadError::OwnedElsewhere) => StatusCode::CONFLICT,
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let mut response = (self.status(), format!("{message}\n")).into_response();
        if matches!(self, IngestError::Unauthorized) {
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"estuary ingest\""));
        }
        response.extensions_mut().insert(ErrorDetail(message.into()));
        response
    }
}

/// Reads a body of at most `limit` bytes (413 above it, or when its bytes find no room in the ingest
/// total or its channel's share), charged as it arrives, cut when it stalls or trickles (408).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    mut receipt: Receipt,
    chunks: &mut Option<LiveChunks<'_>>,
) -> Result<Bytes, IngestError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(IngestError::TooLarge(limit));
    }
    // A declared length is a claim, not bytes: memory is reserved only for what arrives.
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(FIRST_BUFFER) as usize);
    let mut body = body;
    while let Some(data) = receipt.next(&mut body).await? {
        let len = (buf.len() + data.len()) as u64;
        if len > limit {
            return Err(IngestError::TooLarge(limit));
        }
        receipt.hold(len)?;
        buf.extend_from_slice(&data);
        if let Some(live) = chunks
            && !live.take(&data).await
        {
            *chunks = None;
        }
    }
    Ok(receipt.attach(buf.freeze()))
}

async fn upload(
    State(state): State<IngestState>,
    Path((channel, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    // Credentials come before anything else: without them a client learns nothing, not even
    // whether the channel exists, and its body is never read.
    let Some(handle) = state.live.get_or_take(&channel).await else {
        // One hash, as a real check costs, so the answer's timing tells nothing either.
        let _ = KeyHash::unusable().matches(&path);
        return Err(IngestError::Unauthorized);
    };
    let path = match auth::key_in_path(&path, &handle.key) {
        Some(rest) => rest,
        None => match Credentials::check(&headers, &handle.id, &handle.key) {
            Credentials::Valid => path.as_str(),
            Credentials::Missing | Credentials::Wrong => return Err(IngestError::Unauthorized),
        },
    };
    // DASH-IF Live Media Ingest (CMAF): a long-running POST per track.
    if let Some(track) = cmaf::track_name(path)?.filter(|_| method == Method::POST) {
        if cmaf::is_probe(&headers) {
            return Ok(StatusCode::OK.into_response());
        }
        if !handle.snapshot().accepting {
            return Err(UploadError::Stopped.into());
        }
        return cmaf::track(&state, &handle, track, body).await;
    }
    StorageKey::parse(path).map_err(|e| IngestError::BadPath(e.to_string()))?;
    let limit = state.limits.for_path(path);
    // A segment that continues a variant is also read chunk by chunk as it arrives: each chunk is
    // listed as an LL-HLS part before the segment is whole.
    let mut chunks = match method == Method::PUT && path.ends_with(".m4s") {
        true => handle.open_upload(path).await.map(|open| LiveChunks::new(&handle, open, limit)),
        false => None,
    };
    let receipt = Receipt::new(&state.budget, handle.receiving(), state.limits.pace());
    let body = read_body(&headers, body, limit, receipt, &mut chunks).await?;
    apply(&handle, &method, path, body).await
}

/// The chunks of a segment upload as they arrive, listed as parts of the channel.
struct LiveChunks<'a> {
    handle: &'a crate::live::ChannelHandle,
    open: crate::live::channel::OpenUpload,
    reader: ChunkReader,
}

impl<'a> LiveChunks<'a> {
    fn new(handle: &'a crate::live::ChannelHandle, open: crate::live::channel::OpenUpload, limit: u64) -> Self {
        LiveChunks { handle, reader: ChunkReader::new(open.init.clone(), limit), open }
    }

    /// Reads `data`; `false` once the stream is broken (the whole upload is still judged as before).
    async fn take(&mut self, data: &[u8]) -> bool {
        match self.reader.push(data) {
            Ok(chunks) => {
                for chunk in chunks {
                    self.handle.chunk(&self.open, chunk).await;
                }
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "segment upload is not a clean CMAF stream: no parts from it");
                false
            }
        }
    }
}
async fn apply(
    handle: &crate::live::ChannelHandle,
    method: &Method,
    path: &str,
    body: Bytes,
) -> Result<Response, IngestError> {
    if !handle.snapshot().accepting {
        return Err(UploadError::Stopped.into());
    }
    if method == Method::DELETE {
        handle.forget(path.to_owned()).await;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let upload = classify(path, body)?;
    handle.upload(upload).await?;
    Ok(StatusCode::CREATED.into_response())
}
