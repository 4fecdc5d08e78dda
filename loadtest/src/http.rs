//! One player's HTTP connection: GETs with time-to-first-byte measured, bodies read to the end, every
//! outcome recorded by request kind.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::stats::{Kind, Stats};

/// Requests give up after this long (a blocking playlist reload waits at most ~20 s on estuary).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A player's own keep-alive connection(s), as a real player has.
pub struct Player {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    stats: std::sync::Arc<Stats>,
    headers: std::sync::Arc<[(http::HeaderName, http::HeaderValue)]>,
}

/// A successful GET.
pub struct Fetched {
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Player {
    pub fn new(
        stats: std::sync::Arc<Stats>,
        headers: std::sync::Arc<[(http::HeaderName, http::HeaderValue)]>,
    ) -> Player {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // http:// and https:// alike; https trusts the system's roots (and `SSL_CERT_FILE`).
        connector.enforce_http(false);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .unwrap_or_else(|_| hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(empty_roots()))
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(4).build(tls);
        Player { client, stats, headers }
    }

    /// A GET of `uri` with the run's headers.
    fn request(&self, uri: http::Uri) -> http::Request<Empty<Bytes>> {
        let mut request = http::Request::new(Empty::new());
        *request.uri_mut() = uri;
        for (name, value) in self.headers.iter() {
            request.headers_mut().append(name.clone(), value.clone());
        }
        request
    }

    pub fn stats(&self) -> &crate::stats::Stats {
        &self.stats
    }

    /// Opens the player's connection ahead of time with an unrecorded GET of the origin's `/`, whatever it
    /// answers, so that a later request measures the server and not the TCP handshake.
    pub async fn connect(&self, url: &str) {
        let origin = resolve(url, "/");
        if let Ok(uri) = origin.parse::<http::Uri>()
            && let Ok(Ok(response)) =
                tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(self.request(uri))).await
        {
            let _ = response.into_body().collect().await;
        }
    }

    /// GETs `url`; `None` (and a recorded error) unless it answered 2xx.
    pub async fn get(&self, kind: Kind, url: &str) -> Option<Fetched> {
        let start = Instant::now();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let uri: http::Uri = url.parse().map_err(|_| "bad url".to_owned())?;
            let response = self
                .client
                .request(self.request(uri))
                .await
                .map_err(|e| if e.is_connect() { "connect".to_owned() } else { "io".to_owned() })?;
            let ttfb = start.elapsed();
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|_| "io".to_owned())?.to_bytes();
            Ok::<_, String>((status, ttfb, body))
        })
        .await;
        match result {
            Ok(Ok((status, ttfb, body))) if status.is_success() => {
                self.stats.record(kind, ttfb, body.len() as u64);
                Some(Fetched { body, elapsed: start.elapsed() })
            }
            Ok(Ok((status, ..))) => {
                self.stats.error(kind, status.as_u16().to_string());
                None
            }
            Ok(Err(e)) => {
                self.stats.error(kind, e);
                None
            }
            Err(_) => {
                self.stats.error(kind, "timeout".into());
                None
            }
        }
    }
}

/// A TLS configuration that trusts nothing: what a machine without root certificates gets (every
/// https request then fails, and is counted, rather than the run not starting).
fn empty_roots() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// Resolves a playlist or manifest URI against the URL of the document that holds it.
pub fn resolve(base: &str, uri: &str) -> String {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return uri.to_owned();
    }
    let base = base.split(['?', '#']).next().unwrap_or(base);
    if let Some(path) = uri.strip_prefix('/') {
        let origin_end = base.find("://").map_or(0, |i| i + 3);
        let host_end = base[origin_end..].find('/').map_or(base.len(), |i| origin_end + i);
        return format!("{}/{path}", &base[..host_end]);
    }
    match base.rfind('/') {
        Some(i) => format!("{}/{uri}", &base[..i]),
        None => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn resolves_relative_uris() {
        let base = "http://h:1/vod/a.mp4/master.m3u8?start=1";
        assert_eq!(resolve(base, "v0.m3u8"), "http://h:1/vod/a.mp4/v0.m3u8");
        assert_eq!(resolve(base, "v0/1.m4s"), "http://h:1/vod/a.mp4/v0/1.m4s");
        assert_eq!(resolve(base, "/time"), "http://h:1/time");
        assert_eq!(resolve(base, "http://x/y"), "http://x/y");
    }
}
