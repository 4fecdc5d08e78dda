//! The load generator against an https origin (estuary behind a TLS front, as behind a CDN): it
//! plays when it trusts the certificate (`SSL_CERT_FILE`, as the system's roots), and a run whose
//! every request fails the handshake exits 2.

#[path = "../../tests/common/tls.rs"]
mod tls;

use std::process::Command;
use std::sync::Arc;

use estuary::config::Config;
use estuary::server::{self, StartOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Terminates TLS on a loopback port and passes each connection to `origin`; the port.
async fn tls_front(issued: &tls::Issued, origin: std::net::SocketAddr) -> u16 {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&issued.cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut client), Ok(mut upstream)) =
                    (acceptor.accept(client).await, tokio::net::TcpStream::connect(origin).await)
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_fetch_over_https() {
    let mut c = Config::default();
    c.edge.addr = "127.0.0.1:0".parse().unwrap();
    c.api.addr = "127.0.0.1:0".parse().unwrap();
    c.ingest.addr = "127.0.0.1:0".parse().unwrap();
    c.storage.root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    c.log.access = false;
    let s = server::start(&c, StartOptions::default()).await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    let issued = tls::issue(certs.path(), "front");
    let port = tls_front(&issued, s.edge_addr.unwrap()).await;
    let url = format!("https://127.0.0.1:{port}/vod/sample/sample.mp4/master.m3u8");
    let run = |trusted: Option<std::path::PathBuf>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_estuary-load"));
            cmd.args(["vod", "--url", &url, "--players", "2", "--duration", "2s", "--pace", "fast", "--threads", "1"]);
            match trusted {
                Some(ca) => cmd.env("SSL_CERT_FILE", ca),
                None => cmd.env_remove("SSL_CERT_FILE"),
            };
            cmd.output().unwrap()
        })
    };
    let trusted = run(Some(issued.ca.clone())).await.unwrap();
    let table = String::from_utf8_lossy(&trusted.stdout).into_owned();
    assert!(trusted.status.success(), "{trusted:?}");
    assert!(table.contains("errors=0") && !table.contains("requests=0 "), "{table}");
    // The system's roots do not know the test CA: every handshake fails, and the run says so.
    let untrusted = run(None).await.unwrap();
    assert_eq!(untrusted.status.code(), Some(2), "{untrusted:?}");
    s.shutdown().await;
}
