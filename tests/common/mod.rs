//! Test harness shared by the integration tests: a raw HTTP client, in-process and out-of-process servers, counting storage, media tools.
#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod client;
pub mod cluster;
pub mod compare;
pub mod counting;
pub mod encoder;
pub mod live_push;
pub mod media;
pub mod process;
pub mod redis;
pub mod s3;
pub mod speke;
pub mod tls;
pub mod tools;
pub mod ts;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use estuary::config::Config;
use estuary::server::{self, Server, StartOptions};
use estuary::storage::Storage;

/// The repository's bundled sample assets.
pub fn assets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// A config for tests: loopback on free ports, the bundled assets, no access log.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.edge.addr = "127.0.0.1:0".parse().unwrap();
    c.api.addr = "127.0.0.1:0".parse().unwrap();
    c.ingest.addr = "127.0.0.1:0".parse().unwrap();
    c.storage.root = assets_dir();
    c.log.access = false;
    c
}

/// [`test_config`] with its own storage folder (for tests that write: channels, records).
pub fn test_config_in(dir: &std::path::Path) -> Config {
    let mut c = test_config();
    c.storage.root = dir.to_owned();
    c
}

/// Every file below `dir`, recursively (none when it does not exist).
pub fn files_below(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path.to_string_lossy().into_owned());
        }
    }
    out
}

/// An estuary running inside the test's runtime, on real sockets.
pub struct TestServer {
    pub server: Server,
    pub edge: SocketAddr,
    pub api: SocketAddr,
    pub ingest: SocketAddr,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        Self::start_with(config, None).await
    }

    pub async fn start_with(config: Config, storage: Option<Arc<dyn Storage>>) -> TestServer {
        config.validate().expect("test config is valid");
        let server =
            server::start(&config, StartOptions { storage, edge_runtimes: Vec::new() }).await.expect("estuary starts");
        TestServer {
            edge: server.edge_addr.expect("edge enabled"),
            api: server.api_addr.expect("api enabled"),
            ingest: server.ingest_addr.expect("ingest enabled"),
            server,
        }
    }
}

/// Hex digits (an even number of them) as bytes: the tests' keys and KIDs.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}
