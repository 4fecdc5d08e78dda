//! `ApiError`: failures of operator API calls, rendered as JSON `{"error": ...}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::WWW_AUTHENTICATE;

use crate::telemetry::ErrorDetail;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("missing bearer token")]
    Unauthorized,
    #[error("wrong bearer token")]
    Forbidden,
    #[error("this Host is not one the API answers to (add it to api.allowed_hosts)")]
    MisdirectedHost,
    /// A browser says the call comes from a page of another site (`Sec-Fetch-Site`, `Origin`).
    #[error("cross-site calls are refused: {0}")]
    CrossSite(String),
    /// A state-changing call with a body a web form could send: calls take JSON or no body.
    #[error("a {0} body is refused: send application/json or no body")]
    NotJson(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A dependency (the cluster's control store) is away: retry shortly.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::MisdirectedHost | ApiError::CrossSite(_) => StatusCode::FORBIDDEN,
            ApiError::NotJson(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let mut response = (self.status(), Json(serde_json::json!({ "error": message }))).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(ErrorDetail(message.into()));
        response
    }
}
