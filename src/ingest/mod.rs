//! The ingest tier: encoders PUT (or POST) init segments, media segments and playlists to
//! `/ingest/{channel}/{path}` and DELETE old ones, authenticated with the channel's credential.
//!
//! Invariant: an upload that is refused (auth, size, type, content) changes nothing players see.

mod auth;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};

use auth::Credentials;
pub use auth::HeldUploads;

use crate::live::LiveRegistry;
use crate::live::upload::{UploadError, classify};
use crate::server::listener::PeerAddr;
use crate::storage::StorageKey;
use crate::telemetry::{AccessLog, ErrorDetail, access};

/// What ingest handlers share. Cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    pub live: LiveRegistry,
    pub max_body_bytes: u64,
    /// Uploads refused for missing credentials, kept briefly (`ingest.hold_unauthenticated`).
    pub held: Option<Arc<HeldUploads>>,
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
    #[error(transparent)]
    Upload(#[from] UploadError),
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::NoChannel => StatusCode::NOT_FOUND,
            IngestError::Unauthorized => StatusCode::UNAUTHORIZED,
            IngestError::BadPath(_) | IngestError::Body(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Upload(UploadError::UnsupportedType(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Upload(UploadError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::Upload(UploadError::Stopped) => StatusCode::CONFLICT,
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

/// Reads a body of at most `limit` bytes; 413 above it.
async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, IngestError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(IngestError::TooLarge(limit));
    }
    match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(IngestError::TooLarge(limit)),
        Err(e) => Err(IngestError::Body(e.to_string())),
    }
}

async fn upload(
    State(state): State<IngestState>,
    Path((channel, path)): Path<(String, String)>,
    method: Method,
    peer: Option<axum::Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let handle = state.live.get(&channel).ok_or(IngestError::NoChannel)?;
    StorageKey::parse(&path).map_err(|e| IngestError::BadPath(e.to_string()))?;
    let held = state.held.as_ref().zip(peer.map(|p| p.0.0.ip()));
    match Credentials::check(&headers, &handle.id, &handle.token) {
        Credentials::Missing => {
            // ffmpeg sends its first upload without the credentials in its URL and never repeats
            // it: hold it, and apply it once the same client authenticates for this channel.
            if let Some((held, client)) = held
                && let Ok(body) = read_body(&headers, body, auth::HOLD_LIMIT).await
            {
                held.hold(client, handle.id.clone(), method, path, body);
            }
            return Err(IngestError::Unauthorized);
        }
        Credentials::Wrong => return Err(IngestError::Unauthorized),
        Credentials::Valid => {}
    }
    if let Some((held, client)) = held {
        for held in held.take(client, &handle.id) {
            let outcome = apply(&handle, &held.method, &held.path, held.body).await;
            tracing::info!(channel = %handle.id, path = %held.path, ok = outcome.is_ok(), "applied an upload held until its connection authenticated");
        }
    }
    let body = read_body(&headers, body, state.max_body_bytes).await?;
    apply(&handle, &method, &path, body).await
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
