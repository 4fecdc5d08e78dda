//! `GET/HEAD /vod/{asset}/{object}`: MP4 files packaged on the fly as HLS (`master.m3u8`) and DASH (`manifest.mpd`).

use axum::body::Body;
use axum::response::Response;
use http::header::RANGE;

use super::{EdgeError, EdgeState, respond, shortcut};
use crate::http::content_type;
use crate::http::policy::ObjectKind;
use crate::storage::StorageKey;
use crate::vod::{Served, VodError, VodPath, Wanted};

/// Splits `sample/clip.mp4/v0/1.m4s` into the asset key and the object after it. estuary's records and
/// other hidden keys are never assets.
pub(super) fn parse_vod_path(path: &str) -> Option<(StorageKey, VodPath)> {
    let (asset, object) = VodPath::split(path)?;
    let key = StorageKey::parse(asset).ok().filter(StorageKey::is_public)?;
    Some((key, object))
}

impl From<VodError> for EdgeError {
    fn from(e: VodError) -> Self {
        match e {
            VodError::NotFound => EdgeError::NotFound,
            VodError::Packaging(p) => EdgeError::Packaging(p),
            VodError::Storage(s) => EdgeError::Storage(s),
            VodError::Key(k) => EdgeError::Unavailable(k.to_string()),
            e @ VodError::Unprotected => EdgeError::Unavailable(e.to_string()),
        }
    }
}

/// `GET/HEAD /vod/{path}`, `path` percent-decoded: called by the edge's fast path.
pub(super) async fn serve(
    state: &EdgeState,
    path: &str,
    method: &http::Method,
    headers: &http::HeaderMap,
) -> Result<Response, EdgeError> {
    let (asset, object) = parse_vod_path(path).ok_or(EdgeError::NotFound)?;
    let max_age = state.vod.config().max_age;
    let kind =
        if object.is_manifest() { ObjectKind::VodManifest { max_age } } else { ObjectKind::VodSegment { max_age } };
    // A segment the cache would not keep is streamed from its source rather than built in memory
    // (a range request gets a built one).
    match state
        .vod
        .serve(&asset, object, if headers.contains_key(RANGE) { Wanted::Range } else { Wanted::Whole })
        .await?
    {
        Served::Cached(obj, outcome, until) => {
            let response = respond::cached(method, headers, &obj, kind, outcome);
            Ok(shortcut::candidate(response, &obj, headers, outcome, until))
        }
        Served::Streamed(plan, modified) => {
            let (len, etag, media_type) = (plan.len, plan.etag.clone(), content_type::MEDIA_SEGMENT);
            let file = if method == http::Method::GET { state.vod.file_body(&plan).await } else { None };
            let body = || Body::from_stream(state.vod.stream(plan));
            Ok(respond::packaged(method, headers, len, &etag, modified, media_type, kind, body, file))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packaging::mp4::TrackKind;
    use crate::packaging::presentation::RenditionId;

    #[test]
    fn vod_paths() {
        let (k, o) = parse_vod_path("sample/sample.mp4/master.m3u8").unwrap();
        assert_eq!((k.as_str(), o), ("sample/sample.mp4", VodPath::Master));
        let (k, o) = parse_vod_path("a/b/set.json/v1/12.m4s").unwrap();
        let v1 = RenditionId { kind: TrackKind::Video, index: 1 };
        assert_eq!((k.as_str(), o), ("a/b/set.json", VodPath::Segment(v1, 12)));
        let (k, o) = parse_vod_path("x.MP4/v0/init.mp4").unwrap();
        assert_eq!((k.as_str(), o), ("x.MP4", VodPath::Init(RenditionId { kind: TrackKind::Video, index: 0 })));
        for bad in [
            "sample/sample.mp4",
            "sample/sample.mp4/",
            "sample/master.m3u8",
            "../x.mp4/master.m3u8",
            ".mp4/master.m3u8",
            "a.mp4/v0/0.m4s",
        ] {
            assert!(parse_vod_path(bad).is_none(), "{bad}");
        }
    }
}
