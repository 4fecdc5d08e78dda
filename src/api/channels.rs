//! `/api/v1/channels`: create, list, show, stop, start, delete live channels and rotate their stream
//! keys. A stream key is shown twice at most: in the answer that created it, and in the answer of
//! the rotation that replaced it; estuary keeps only its hash.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiError, ApiState};
use crate::live::model::ChannelId;
use crate::live::model::Container;
use crate::live::record::ChannelRecord;
use crate::live::{ChannelHandle, ChannelSettings, LiveError, Removal};
use crate::packaging::manifest::iso_time;
use crate::packaging::url::{self, LivePath};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateChannel {
    id: String,
    /// 16 to 128 characters of `[A-Za-z0-9_-]`; generated when absent.
    #[serde(alias = "token")]
    stream_key: Option<String>,
    #[serde(default, with = "humantime_serde::option")]
    window: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    dvr: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    target_duration: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    idle_timeout: Option<Duration>,
    /// Served encrypted as `[encryption]` says, whatever the channel's id (the config's
    /// `live_prefixes` protect channels by id besides).
    #[serde(default)]
    encrypted: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateKey {
    /// The new key; generated when absent.
    stream_key: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteQuery {
    #[serde(default)]
    purge: bool,
}

impl From<LiveError> for ApiError {
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::TooMany(_) => ApiError::Conflict(e.to_string()),
            LiveError::NotFound => ApiError::NotFound,
            LiveError::Exists(id) => ApiError::Conflict(format!("channel {id} already exists")),
            LiveError::BadRequest(m) => ApiError::BadRequest(m),
            LiveError::Unavailable(m) => ApiError::Unavailable(m),
            LiveError::Key(e @ crate::live::key::KeyError::BadChoice) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The base URL encoders push to.
fn ingest_base(state: &ApiState, headers: &HeaderMap) -> String {
    state.ingest.base(headers)
}

#[derive(Serialize)]
struct Playback {
    hls: String,
    dash: String,
    /// The whole recording (DVR window) as a closed playlist, once the channel has ended.
    recording_hls: String,
}

impl Playback {
    fn of(id: &ChannelId) -> Playback {
        Playback {
            hls: url::live(id.as_str(), LivePath::Master),
            dash: url::live(id.as_str(), LivePath::Mpd),
            recording_hls: format!("{}?start=0", url::live(id.as_str(), LivePath::Master)),
        }
    }
}

/// A channel as the API shows it. `stream_key` is given only by the calls that made it.
fn view(state: &ApiState, headers: &HeaderMap, handle: &ChannelHandle, stream_key: Option<&str>) -> Value {
    let snap = handle.snapshot();
    let id = &handle.id;
    let mut v = json!({
        "id": id,
        "status": snap.status,
        "accepting_uploads": snap.accepting,
        "settings": snap.settings,
        "created": iso_time(crate::live::record::from_ms(handle.created_ms)),
        "ingest_url_prefix": format!("{}/ingest/{id}/", ingest_base(state, headers)),
        "playback": Playback::of(id),
        "container": snap.container.map(|c| match c {
            Container::Fmp4 => "fmp4",
            Container::Ts => "ts",
            Container::WebVtt => "webvtt",
        }),
        "renditions": renditions(&snap),
        "media_sequence": snap.last_msn(),
        "segments_retained": snap.slots.len(),
        "discontinuity_sequence": snap.discontinuity_sequence(snap.slots.len()),
        "last_upload": snap.last_upload.map(iso_time),
        "publish_latency": snap.publish_latency,
        "part_publish_latency": snap.part_publish_latency,
        "live_edge_age_ms": snap.live_edge_age_ms(std::time::SystemTime::now()),
    });
    if let Some(key) = stream_key {
        add_key(state, headers, &mut v, id, key);
    }
    v
}

/// The renditions as players get them: `muxed` says whether the audio travels inside the video's
/// segments (MPEG-TS); fMP4 tracks pushed together are served as renditions of their own.
fn renditions(snap: &crate::live::model::ChannelSnapshot) -> Vec<Value> {
    let ts = snap.container == Some(Container::Ts);
    snap.renditions
        .iter()
        .filter_map(|r| {
            let mut v = serde_json::to_value(r).ok()?;
            v["muxed"] = json!(ts);
            Some(v)
        })
        .collect()
}

/// The stream key a call made, and the URL to paste into an encoder: the key rides in the path, so
/// the first request of any encoder is already authenticated.
fn add_key(state: &ApiState, headers: &HeaderMap, v: &mut Value, id: &ChannelId, key: &str) {
    v["stream_key"] = json!(key);
    v["ingest_url"] = json!(format!("{}/ingest/{id}/{key}/", ingest_base(state, headers)));
}

pub(super) async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Json<CreateChannel>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let d = &state.channel_defaults;
    let settings = ChannelSettings {
        window: req.window.unwrap_or(d.window),
        dvr: req.dvr.unwrap_or(d.dvr),
        target_duration: req.target_duration.unwrap_or(d.target_duration),
        idle_timeout: req.idle_timeout.unwrap_or(d.idle_timeout),
        encrypted: req.encrypted,
    };
    if req.encrypted && !state.encryption {
        return Err(ApiError::BadRequest(
            "\"encrypted\": true needs [encryption] keys (a static key or a key server)".into(),
        ));
    }
    let (handle, key) = state.live.create(&req.id, settings, req.stream_key).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &headers, &handle, Some(&key)))).into_response())
}

pub(super) async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let local = state.live.list();
    let mut channels: Vec<Value> = Vec::with_capacity(local.len());
    for handle in &local {
        channels
            .push(cluster_fields(&state, view(&state, &headers, handle, None), handle.is_owner(), &handle.id).await);
    }
    // In a cluster, the channels other pods share as well.
    if let Some(cluster) = state.live.cluster() {
        match cluster.channels().await {
            Ok(records) => {
                for record in records.iter().filter(|r| !local.iter().any(|h| h.id == r.id)) {
                    channels
                        .push(cluster_fields(&state, shared_view(&state, &headers, record), false, &record.id).await);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the channels other pods share"),
        }
        channels.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    }
    Json(json!({ "channels": channels })).into_response()
}

/// A channel another pod writes, as the control store has it.
fn shared_view(state: &ApiState, headers: &HeaderMap, record: &ChannelRecord) -> Value {
    let id = &record.id;
    json!({
        "id": id,
        "accepting_uploads": !record.stopped,
        "settings": record.settings,
        "created": iso_time(crate::live::record::from_ms(record.created_ms)),
        "ingest_url_prefix": format!("{}/ingest/{id}/", ingest_base(state, headers)),
        "playback": Playback::of(id),
    })
}

/// In a cluster: whether this pod writes the channel, and which pod does.
async fn cluster_fields(state: &ApiState, mut view: Value, owned_here: bool, id: &ChannelId) -> Value {
    if let Some(cluster) = state.live.cluster() {
        view["owned_here"] = json!(owned_here);
        view["owner"] = json!(cluster.lease_holder(id).await.ok().flatten());
    }
    view
}

pub(super) async fn show(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(describe(&state, &headers, &id, None).await?).into_response())
}

/// A channel as this pod holds it, else as the control store has it (in a cluster); `stream_key`
/// added when the call made one.
async fn describe(
    state: &ApiState,
    headers: &HeaderMap,
    id: &str,
    stream_key: Option<&str>,
) -> Result<Value, ApiError> {
    if let Some(handle) = state.live.get(id) {
        return Ok(
            cluster_fields(state, view(state, headers, &handle, stream_key), handle.is_owner(), &handle.id).await
        );
    }
    let cluster = state.live.cluster().ok_or(ApiError::NotFound)?;
    let id = ChannelId::parse(id).map_err(|_| ApiError::NotFound)?;
    let record = cluster
        .channel(&id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the control store: {e}")))?
        .ok_or(ApiError::NotFound)?;
    let mut v = shared_view(state, headers, &record);
    if let Some(key) = stream_key {
        add_key(state, headers, &mut v, &id, key);
    }
    Ok(cluster_fields(state, v, false, &id).await)
}

/// `POST /api/v1/channels/{id}/stop`, on any pod: the pod writing the channel ends it.
pub(super) async fn stop(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.live.stop(&id).await?;
    Ok(Json(describe(&state, &headers, &id, None).await?).into_response())
}

pub(super) async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.live.start(&id).await?;
    Ok(Json(describe(&state, &headers, &id, None).await?).into_response())
}

/// `POST /api/v1/channels/{id}/rotate-key` (`{"stream_key": ...}` optional): the old key stops
/// working at once; the answer carries the new one, the only time it is shown.
pub(super) async fn rotate_key(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<RotateKey>>,
) -> Result<Response, ApiError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let key = state.live.rotate_key(&id, req.stream_key).await?;
    Ok(Json(describe(&state, &headers, &id, Some(&key)).await?).into_response())
}

pub(super) async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Response, ApiError> {
    let removal = if q.purge { Removal::Purge } else { Removal::KeepRecordings };
    state.live.remove(&id, removal).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
