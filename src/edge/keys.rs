//! Key delivery (`/keys/{kid}.key`): the 16 bytes of an HLS AES-128 key, when `[encryption]
//! key_delivery` is on and the KID is one estuary encrypts with; 404 otherwise. Never cached: not
//! by the CDN, not by a browser, not by estuary's own caches (`Cache-Control: private, no-store`,
//! built per request, never offered as a hot answer).

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode};

use super::EdgeState;
use super::error::EdgeError;

pub(super) async fn serve(state: &EdgeState, file: &str, method: &Method) -> Result<Response, EdgeError> {
    let key = state.vod.delivered_key(file).await.ok_or(EdgeError::NotFound)?;
    let bytes = key.expose_for_delivery();
    let body = if method == Method::HEAD { Vec::new() } else { bytes.to_vec() };
    let headers = [
        (CONTENT_TYPE, "application/octet-stream".to_owned()),
        (CACHE_CONTROL, "private, no-store".to_owned()),
        (CONTENT_LENGTH, bytes.len().to_string()),
    ];
    Ok((StatusCode::OK, headers, body).into_response())
}
