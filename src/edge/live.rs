//! `GET/HEAD /live/{channel}/...` and `/time`: the edge's side of [`Live`](crate::live::service::Live)
//! (live HLS with blocking reload and DVR ranges, the live MPD, init and media segments), and the
//! clock for DASH `UTCTiming`.

use std::time::SystemTime;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use super::{EdgeError, EdgeState, respond};
use crate::http::content_type;
use crate::http::policy::ObjectKind;
use crate::live::service::{Answer, ServeError};
use crate::packaging::manifest::iso_time;
use crate::packaging::url::{LivePath, LiveQuery};

impl From<ServeError> for EdgeError {
    fn from(e: ServeError) -> Self {
        match e {
            ServeError::NotFound => EdgeError::NotFound,
            ServeError::NotHere(why) => EdgeError::NotHere(why.into()),
            ServeError::BadRequest(m) => EdgeError::BadRequest(m),
            ServeError::Unavailable(m) => EdgeError::Unavailable(m),
            ServeError::Storage(s) => EdgeError::Storage(s),
        }
    }
}

/// `GET/HEAD /live/{path}`, `path` percent-decoded (`{channel}/{object}`), `query` raw.
pub(super) async fn serve(
    state: &EdgeState,
    path: &str,
    query: &str,
    method: &http::Method,
    headers: &http::HeaderMap,
) -> Result<Response, EdgeError> {
    let (channel, rest) = path.split_once('/').ok_or(EdgeError::NotFound)?;
    let object = LivePath::parse(rest).ok_or(EdgeError::NotFound)?;
    let query = LiveQuery::parse(query).map_err(|e| EdgeError::BadRequest(e.to_string()))?;
    match state.live.object(channel, object, query).await? {
        Answer::Whole(served) => Ok(respond::cached(method, headers, &served.object, served.kind, served.outcome)),
        Answer::Growing(growing) => {
            Ok(respond::growing(method, content_type::MEDIA_SEGMENT, ObjectKind::LiveSegment, growing.into_stream()))
        }
    }
}

/// `GET /time`: the server's clock for DASH `UTCTiming` (http-iso), never cached.
pub(super) fn time() -> Response {
    (StatusCode::OK, [(CONTENT_TYPE, content_type::TEXT), (CACHE_CONTROL, "no-store")], iso_time(SystemTime::now()))
        .into_response()
}
