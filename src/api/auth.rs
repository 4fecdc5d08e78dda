//! Bearer-token check for the operator API.

use axum::extract::{Request, State};
use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};

/// Passes the request on when no token is configured or `Authorization: Bearer <token>` matches.
pub async fn require_token(State(state): State<ApiState>, request: Request) -> Result<Request, ApiError> {
    let Some(token) = &state.token else {
        return Ok(request);
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if bool::from(p.as_bytes().ct_eq(token.as_bytes())) => Ok(request),
        Some(_) => Err(ApiError::Forbidden),
        None => Err(ApiError::Unauthorized),
    }
}
