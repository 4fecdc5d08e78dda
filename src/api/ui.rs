//! The preview page on the API tier (`/ui`): channels and their status, VOD assets under a prefix,
//! cache and storage health, and a player (hls.js and dash.js, served from here, never from a CDN)
//! that plays any of them with its latency and bit rate shown. The page holds no data of its own:
//! it reads `/api/v1/*` with the operator's token.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderName, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState};
use crate::packaging::url::{self, VodPath};
use crate::storage::{Storage, StorageError};

const PAGE: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");
const HLS_JS: &[u8] = include_bytes!("ui/hls.min.js");
const DASH_JS: &[u8] = include_bytes!("ui/dash.all.min.js");

/// The page runs only its own scripts and styles (no inline code, nothing from elsewhere), may not
/// be framed, and reaches out only to fetch and play streams (the edge may be another origin) and
/// to post the browser test's report.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' http: https:; media-src 'self' blob: http: https:; worker-src 'self' blob:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Assets listed at most per answer.
const MAX_ASSETS: usize = 500;

/// The headers every answer of the page's carries.
fn page_headers(content_type: &'static str, cache: &'static str) -> [(HeaderName, &'static str); 6] {
    [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, cache),
        (CONTENT_SECURITY_POLICY, CSP),
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
    ]
}

/// `GET /ui`: the page.
pub(super) async fn page() -> Response {
    (StatusCode::OK, page_headers("text/html; charset=utf-8", "no-cache"), PAGE).into_response()
}

/// `GET /ui/{file}`: the page's script and style, and the players (pinned versions, bundled into the
/// binary).
pub(super) async fn script(Path(name): Path<String>) -> Response {
    let (body, kind, cache): (&[u8], _, _) = match name.as_str() {
        "app.js" => (APP_JS.as_bytes(), "text/javascript; charset=utf-8", "no-cache"),
        "app.css" => (APP_CSS.as_bytes(), "text/css; charset=utf-8", "no-cache"),
        "hls.min.js" => (HLS_JS, "text/javascript; charset=utf-8", "public, max-age=86400"),
        "dash.all.min.js" => (DASH_JS, "text/javascript; charset=utf-8", "public, max-age=86400"),
        _ => return ApiError::NotFound.into_response(),
    };
    (StatusCode::OK, page_headers(kind, cache), body).into_response()
}

#[derive(Deserialize)]
pub(super) struct AssetQuery {
    #[serde(default)]
    prefix: String,
}

/// `GET /api/v1/assets?prefix=`: the VOD assets (MP4 files and asset sets) under a prefix, with their
/// HLS and DASH URLs on the edge.
pub(super) async fn assets(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<AssetQuery>,
) -> Result<Response, ApiError> {
    let prefix = query.prefix.trim_start_matches('/');
    if prefix.len() > 512
        || prefix.split('/').any(|part| part == "..")
        || prefix.chars().any(|c| c.is_control() || c == '\\')
    {
        return Err(ApiError::BadRequest("prefix: at most 512 characters, no '..', control character or '\\'".into()));
    }
    // A prefix may hold a whole bucket: the listing stops a little past what is shown (objects that
    // are not assets are skipped, so it reads a few times more).
    let (listed, more) = state.storage.list_at_most(prefix, 4 * MAX_ASSETS).await.map_err(|e| match e {
        // A prefix that is no key (a bad character, an empty part) is the caller's, not the backend's.
        StorageError::InvalidKey(e) => ApiError::BadRequest(format!("prefix: {e}")),
        e if e.is_outage() || matches!(e, StorageError::Exhausted(_)) => ApiError::Unavailable(e.to_string()),
        // A prefix that names nothing a folder can hold lists nothing.
        _ => ApiError::BadRequest(format!("prefix: {e}")),
    })?;
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
