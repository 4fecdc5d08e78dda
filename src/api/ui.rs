//! The preview page on the API tier (`/ui`): channels and their status, VOD assets under a prefix,
//! cache and storage health, and a player (hls.js and dash.js, served from here, never from a CDN)
//! that plays any of them with its latency and bit rate shown. The page holds no data of its own:
//! it reads `/api/v1/*` with the operator's token.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState};
use crate::packaging::url::{self, VodPath};
use crate::storage::Storage;

const PAGE: &str = include_str!("ui/index.html");
const HLS_JS: &[u8] = include_bytes!("ui/hls.min.js");
const DASH_JS: &[u8] = include_bytes!("ui/dash.all.min.js");

/// Assets listed at most per answer.
const MAX_ASSETS: usize = 500;

/// `GET /ui`: the page.
pub async fn page() -> Response {
    let headers = [(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, "no-cache")];
    (StatusCode::OK, headers, PAGE).into_response()
}

/// `GET /ui/{script}`: the players (pinned versions, bundled into the binary).
pub async fn script(Path(name): Path<String>) -> Response {
    let body = match name.as_str() {
        "hls.min.js" => HLS_JS,
        "dash.all.min.js" => DASH_JS,
        _ => return ApiError::NotFound.into_response(),
    };
    let headers = [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "public, max-age=86400")];
    (StatusCode::OK, headers, body).into_response()
}

#[derive(Deserialize)]
pub struct AssetQuery {
    #[serde(default)]
    prefix: String,
}

/// `GET /api/v1/assets?prefix=`: the VOD assets (MP4 files and asset sets) under a prefix, with their
/// HLS and DASH URLs on the edge.
pub async fn assets(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<AssetQuery>,
) -> Result<Response, ApiError> {
    let prefix = query.prefix.trim_start_matches('/');
    if prefix.len() > 512 || prefix.split('/').any(|part| part == "..") {
        return Err(ApiError::BadRequest("prefix: at most 512 characters, no '..'".into()));
    }
    // A prefix may hold a whole bucket: the listing stops a little past what is shown (objects that
    // are not assets are skipped, so it reads a few times more).
    let (listed, more) =
        state.storage.list_at_most(prefix, 4 * MAX_ASSETS).await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let is_asset = |key: &str| {
        let name = key.rsplit('/').next().unwrap_or_default();
        // Not estuary's own records, live segments, or the init segments of pre-packaged folders.
        url::is_asset_name(name)
            && !name.starts_with("init")
            && !key.starts_with(".estuary")
            && !key.starts_with("live/")
    };
    let edge = state.edge.base(&headers);
    let found: Vec<_> = listed.iter().filter(|o| is_asset(o.key.as_str())).collect();
    let assets: Vec<_> = found
        .iter()
        .take(MAX_ASSETS)
        .map(|o| {
            let key = o.key.as_str();
            json!({
                "key": key,
                "size": o.size,
                "hls": format!("{edge}{}", url::vod(key, VodPath::Master)),
                "dash": format!("{edge}{}", url::vod(key, VodPath::Manifest)),
            })
        })
        .collect();
    let truncated = more || found.len() > MAX_ASSETS;
    Ok(Json(json!({ "edge_url": edge, "assets": assets, "truncated": truncated })).into_response())
}
