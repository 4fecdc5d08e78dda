//! `EdgeError`: every way an edge request can fail, and the one place that maps each to a status.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};

use crate::http::content_type;
use crate::http::policy::{ObjectKind, cache_control};
use crate::packaging::PackagingError;
use crate::storage::StorageError;
use crate::telemetry::ErrorDetail;

/// An edge failure, classified by where the fault came from: the client
/// (4xx), missing media (404, never 502), or storage (502/503/504).
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("not found")]
    NotFound,
    /// Not found, and why (an object this kind of channel or asset never has).
    #[error("not found: {0}")]
    NotHere(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden")]
    Forbidden,
    /// Not available yet and not worth waiting longer for (blocking reload timed out).
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Storage(Arc<StorageError>),
    /// A source file that cannot be packaged: 415 for codecs, 422 otherwise.
    #[error(transparent)]
    Packaging(PackagingError),
}

impl From<StorageError> for EdgeError {
    fn from(e: StorageError) -> Self {
        EdgeError::Storage(Arc::new(e))
    }
}

impl EdgeError {
    pub fn status(&self) -> StatusCode {
        match self {
            EdgeError::NotFound | EdgeError::NotHere(_) => StatusCode::NOT_FOUND,
            EdgeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EdgeError::Forbidden => StatusCode::FORBIDDEN,
            EdgeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            EdgeError::Packaging(PackagingError::UnsupportedCodec(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EdgeError::Packaging(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EdgeError::Storage(e) => match &**e {
                StorageError::NotFound(_) => StatusCode::NOT_FOUND,
                StorageError::InvalidKey(_) => StatusCode::BAD_REQUEST,
                StorageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                StorageError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                StorageError::Io { .. } => StatusCode::BAD_GATEWAY,
                StorageError::Exhausted(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

impl IntoResponse for EdgeError {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = if status == StatusCode::NOT_FOUND { ObjectKind::NotFound } else { ObjectKind::Uncacheable };
        // Storage faults are logged with their cause but not shown to the public.
        let public = match &self {
            EdgeError::Storage(e) if e.is_outage() || matches!(**e, StorageError::Exhausted(_)) => {
                status.canonical_reason().unwrap_or("error").to_ascii_lowercase()
            }
            other => other.to_string(),
        };
        let detail = ErrorDetail(self.to_string().into());
        let mut response = (status, format!("{public}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type::TEXT));
        if let Ok(v) = HeaderValue::from_str(&cache_control(kind)) {
            headers.insert(CACHE_CONTROL, v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(detail);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_by_source() {
        let storage = |e| EdgeError::from(e).status();
        assert_eq!(storage(StorageError::NotFound("k".into())), StatusCode::NOT_FOUND);
        assert_eq!(storage(StorageError::Unavailable("s3".into())), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(storage(StorageError::Timeout("s3".into())), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            storage(StorageError::Io { key: "k".into(), source: std::io::Error::other("disk") }),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(EdgeError::BadRequest("x".into()).status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn errors_are_not_cached_and_404s_briefly() {
        let r = EdgeError::NotFound.into_response();
        assert_eq!(r.headers()[CACHE_CONTROL], "public, max-age=1");
        let r = EdgeError::from(StorageError::Unavailable("down".into())).into_response();
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert!(r.extensions().get::<ErrorDetail>().unwrap().0.contains("down"));
    }
}
