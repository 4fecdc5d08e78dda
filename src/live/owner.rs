//! Reading a segment from the memory of the pod that owns a channel, over its internal listener
//! (`GET {owner_url}/internal/v1/live/{channel}/{object}`): the newest segments of a channel followed
//! here come from there before storage. One request per object per pod (the segment cache coalesces
//! concurrent misses); a body is accepted only at the size the shared timeline gives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

/// The path prefix of the internal listener's segment route.
pub const INTERNAL_PREFIX: &str = "/internal/v1";

/// How long one read from the owner may take before storage is asked instead.
const DEADLINE: Duration = Duration::from_millis(1500);

/// Where followed segments came from (cache hits are counted by the cache): the owner's memory, or
/// storage (after the owner failed or no longer held them).
#[derive(Debug, Default)]
pub(super) struct FetchStats {
    pub owner: AtomicU64,
    pub owner_failed: AtomicU64,
    pub storage: AtomicU64,
}

pub(super) static FETCHES: FetchStats =
    FetchStats { owner: AtomicU64::new(0), owner_failed: AtomicU64::new(0), storage: AtomicU64::new(0) };

/// Why the owner did not give a segment.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("bad owner URL {0}")]
    Url(String),
    #[error("connecting: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("sent {got} bytes, not the {expected} the timeline lists")]
    Size { got: usize, expected: u64 },
    #[error("body: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The object at `path` (`/live/{channel}/{object}`) from the owner at `base`, exactly `expected`
/// bytes long.
pub async fn fetch(base: &str, path: &str, expected: u64) -> Result<Bytes, OwnerError> {
    let result = tokio::time::timeout(DEADLINE, get(base, path, expected)).await;
    let result = result.unwrap_or(Err(OwnerError::Timeout(DEADLINE)));
    let counter = if result.is_ok() { &FETCHES.owner } else { &FETCHES.owner_failed };
    counter.fetch_add(1, Ordering::Relaxed);
    result
}

async fn get(base: &str, path: &str, expected: u64) -> Result<Bytes, OwnerError> {
    let uri: Uri = format!("{}{INTERNAL_PREFIX}{path}", base.trim_end_matches('/'))
        .parse()
        .map_err(|_| OwnerError::Url(base.to_owned()))?;
    let authority = uri.authority().ok_or_else(|| OwnerError::Url(base.to_owned()))?.clone();
    if uri.scheme_str() != Some("http") {
        return Err(OwnerError::Url(base.to_owned()));
    }
    let address = (authority.host(), authority.port_u16().unwrap_or(80));
    let stream = tokio::net::TcpStream::connect(address).await.map_err(OwnerError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::GET)
        .uri(uri.path())
        .header(http::header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| OwnerError::Body(e.to_string()))?;
    let response = sender.send_request(request).await;
    let result = async {
        let response = response?;
        if response.status() != StatusCode::OK {
            return Err(OwnerError::Status(response.status()));
        }
        let limit = usize::try_from(expected).unwrap_or(usize::MAX).saturating_add(1);
        let body = Limited::new(response.into_body(), limit).collect().await;
        let body = body.map_err(|e| OwnerError::Body(e.to_string()))?.to_bytes();
        if body.len() as u64 != expected {
            return Err(OwnerError::Size { got: body.len(), expected });
        }
        Ok(body)
    }
    .await;
    driver.abort();
    result
}
