//! A SPEKE v2 client: one POST of a CPIX request per key (`X-Speke-Version: 2.0`), over HTTP or
//! HTTPS (rustls with the system's roots, `SSL_CERT_FILE` honoured), retried with backoff until a
//! deadline; the answer is bounded and read by [`super::cpix`].
//!
//! Invariants: the key never reaches a log line or an error message; a key server that answers
//! 4xx is not asked again within the same request (the request is wrong, not the server busy).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::cpix::{self, KeyAnswer, KeyRequest};
use super::metrics;

/// Largest CPIX answer read (a few DRM systems' signalling is a few KiB).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// First wait between attempts; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Why no key came back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpekeError {
    #[error("key server unreachable: {0}")]
    Unreachable(String),
    #[error("key server answered {0}")]
    Status(StatusCode),
    #[error("key server gave no answer within {0:?}")]
    Deadline(Duration),
    #[error(transparent)]
    Answer(#[from] cpix::CpixError),
}

/// Where keys are asked for, and how patiently.
#[derive(Clone)]
pub struct SpekeClient {
    url: Uri,
    /// `Authorization` header value (a secret; never printed).
    authorization: Option<String>,
    attempt_timeout: Duration,
    deadline: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for SpekeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpekeClient {{ url: {}, deadline: {:?} }}", self.url, self.deadline)
    }
}

impl SpekeClient {
    /// A client for `url` (`http://` or `https://`), each attempt cut at `attempt_timeout` and all
    /// of one request's attempts at `deadline`.
    pub fn new(
        url: &str,
        token: Option<String>,
        attempt_timeout: Duration,
        deadline: Duration,
    ) -> Result<SpekeClient, String> {
        let url: Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let tls = match url.scheme_str() {
            Some("http") => None,
            Some("https") => Some(tls_connector()?),
            _ => return Err("must be http:// or https://".into()),
        };
        if url.host().is_none() {
            return Err("has no host".into());
        }
        let authorization = token.filter(|t| !t.is_empty()).map(|t| format!("Bearer {t}"));
        Ok(SpekeClient { url, authorization, attempt_timeout, deadline, tls })
    }

    /// The key and signalling for `r`, asked until an answer or the deadline.
    pub async fn fetch(&self, r: &KeyRequest<'_>) -> Result<KeyAnswer, SpekeError> {
        let body = Bytes::from(cpix::request(r));
        let give_up = Instant::now() + self.deadline;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = Instant::now();
            let attempt = tokio::time::timeout(self.attempt_timeout, self.post(body.clone())).await;
            let result = match attempt {
                Ok(Ok(text)) => cpix::parse_answer(&text, r.kid).map_err(SpekeError::from),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(SpekeError::Unreachable(format!("no answer within {:?}", self.attempt_timeout))),
            };
            metrics::observe_fetch(started.elapsed(), result.is_ok());
            match result {
                Ok(answer) => return Ok(answer),
                // A refusal or an answer we cannot read will not change by asking again now.
                Err(e @ SpekeError::Status(s)) if s.is_client_error() => return Err(e),
                Err(e @ SpekeError::Answer(_)) => return Err(e),
                Err(e) if Instant::now() + backoff >= give_up => {
                    tracing::warn!(content_id = r.content_id, kid = %r.kid, error = %e, "key server: giving up");
                    return Err(SpekeError::Deadline(self.deadline));
                }
                Err(e) => {
                    tracing::debug!(content_id = r.content_id, kid = %r.kid, error = %e, "key server: retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
    }

    /// One POST of `body`; the answer's text when 200.
    async fn post(&self, body: Bytes) -> Result<String, SpekeError> {
        let unreachable = |e: &dyn std::fmt::Display| SpekeError::Unreachable(e.to_string());
        let host = self.url.host().unwrap_or_default();
        let tls = self.tls.as_ref();
        let port = self.url.port_u16().unwrap_or(if tls.is_some() { 443 } else { 80 });
        let stream = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| unreachable(&e))?;
        let _ = stream.set_nodelay(true);
        let path = self.url.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(http::header::HOST, self.url.authority().map_or(host, |a| a.as_str()))
            .header(http::header::CONTENT_TYPE, "application/xml")
            .header("X-Speke-Version", "2.0")
            .header("X-Speke-User-Agent", concat!("estuary/", env!("CARGO_PKG_VERSION")));
        if let Some(auth) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, auth);
        }
        let request = request.body(Full::new(body)).map_err(|e| unreachable(&e))?;
        let response = match tls {
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| unreachable(&e))?;
                let stream = connector.connect(name, stream).await.map_err(|e| unreachable(&e))?;
                send(TokioIo::new(stream), request).await
            }
            None => send(TokioIo::new(stream), request).await,
        }?;
        String::from_utf8(response.to_vec()).map_err(|_| SpekeError::Unreachable("the answer is not UTF-8".into()))
    }
}

/// Sends `request` on a fresh HTTP/1.1 connection; the body of a 200 answer, bounded.
async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<Bytes, SpekeError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let unreachable = |e: &dyn std::fmt::Display| SpekeError::Unreachable(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| unreachable(&e))?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| unreachable(&e))?;
        if response.status() != StatusCode::OK {
            return Err(SpekeError::Status(response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await;
        Ok(body.map_err(|e| unreachable(&e))?.to_bytes())
    }
    .await;
    driver.abort();
    result
}

/// rustls with ring and the system's roots (`SSL_CERT_FILE` and `SSL_CERT_DIR` honoured).
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("no trusted root certificates found for https".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
