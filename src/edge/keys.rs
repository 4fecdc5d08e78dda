//! Key delivery, when `[encryption] key_delivery` is on: `GET /keys/{kid}.key` (the static key)
//! and `/keys/{content id}/[{period}/]{kid}.key` give the 16 bytes of an HLS AES-128 key;
//! `POST /keys/{content id}/clearkey` is a ClearKey licence server (W3C EME: a JSON list of KIDs
//! in, a JSON Web Key set out, with the keys of that content among them). 404 for anything that
//! is not one of ours. Never cached: not by the CDN, not by a browser, not by estuary's own caches
//! (`Cache-Control: private, no-store`, built per request, never offered as a hot answer).

use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode};

use super::EdgeState;
use super::error::EdgeError;
use crate::packaging::cenc::KeyId;

/// Most KIDs one licence request may ask for.
const MAX_LICENCE_KIDS: usize = 64;

pub(super) async fn serve(
    state: &EdgeState,
    file: &str,
    method: &Method,
    body: Option<&Bytes>,
) -> Result<Response, EdgeError> {
    if method == Method::POST {
        let content = file.strip_suffix("/clearkey").ok_or(EdgeError::NotFound)?;
        return licence(state, content, body.map_or(&[][..], |b| &b[..])).await;
    }
    // A key named by its asset: only for an asset that is there (no key server request for a name
    // that is not). Live channels' keys are checked against the channel by their period.
    let flagged = match file.rsplit_once('/') {
        Some((content, _)) => match content.strip_prefix("live:") {
            Some(channel) => {
                let channel = channel.rsplit_once('/').map_or(channel, |(c, _)| c);
                state.live.licence_window(channel).await.is_some()
            }
            None => asset_exists(state, content).await?,
        },
        None => false,
    };
    let key = state.vod.delivered_key(file, flagged).await.ok_or(EdgeError::NotFound)?;
    let bytes = key.expose_for_delivery();
    let body = if method == Method::HEAD { Vec::new() } else { bytes.to_vec() };
    Ok((StatusCode::OK, private(bytes.len(), "application/octet-stream"), body).into_response())
}

fn private(len: usize, content_type: &str) -> [(http::HeaderName, String); 3] {
    [
        (CONTENT_TYPE, content_type.to_owned()),
        (CACHE_CONTROL, "private, no-store".to_owned()),
        (CONTENT_LENGTH, len.to_string()),
    ]
}

/// A ClearKey licence request's body: `{"kids": [base64url KID, ...], "type": "temporary"}`.
#[derive(serde::Deserialize)]
struct LicenceRequest {
    kids: Vec<String>,
}

async fn licence(state: &EdgeState, content: &str, body: &[u8]) -> Result<Response, EdgeError> {
    let protection = state.vod.protection().ok_or(EdgeError::NotFound)?;
    let request: LicenceRequest = serde_json::from_slice(body)
        .map_err(|e| EdgeError::BadRequest(format!("not a ClearKey licence request: {e}")))?;
    if request.kids.is_empty() || request.kids.len() > MAX_LICENCE_KIDS {
        return Err(EdgeError::BadRequest(format!("a licence request names 1 to {MAX_LICENCE_KIDS} KIDs")));
    }
    let kids = request
        .kids
        .iter()
        .map(|k| URL_SAFE_NO_PAD.decode(k.trim_end_matches('=')).ok().and_then(|b| b.try_into().ok()).map(KeyId))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| EdgeError::BadRequest("a KID is not 16 bytes of base64url".into()))?;
    let (window, flagged) = match content.strip_prefix("live:") {
        Some(channel) => (Some(state.live.licence_window(channel).await.ok_or(EdgeError::NotFound)?), true),
        // An asset that is there: no licence for a name that is not.
        None => (None, asset_exists(state, content).await?),
    };
    let keys = protection.licence(content, &kids, window, flagged).await;
    if keys.is_empty() {
        return Err(EdgeError::NotFound);
    }
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "kty": "oct",
                "kid": URL_SAFE_NO_PAD.encode(k.kid.0),
                "k": URL_SAFE_NO_PAD.encode(k.expose_for_delivery()),
            })
        })
        .collect();
    let json = serde_json::json!({ "keys": keys, "type": "temporary" }).to_string();
    Ok((StatusCode::OK, private(json.len(), "application/json"), json).into_response())
}

/// 404 unless `content` names an asset in storage (storage faults answered as such); whether its
/// asset set asks for encryption.
async fn asset_exists(state: &EdgeState, content: &str) -> Result<bool, EdgeError> {
    let asset = crate::storage::StorageKey::parse(content).ok().filter(|k| k.is_public()).ok_or(EdgeError::NotFound)?;
    Ok(state.vod.catalog().resolve(&asset).await?.encrypted)
}
