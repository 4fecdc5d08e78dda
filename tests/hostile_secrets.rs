//! Hostile clients, part one: what must stay secret stays secret, and what must not be changed by a
//! stranger is not. Each test drives the real server over sockets the way an attacker would.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::{get, request, send_body};
use common::live_push::{self, push_sample as push, sample_hls as asset};
use common::process::Estuary;
use common::{TestServer, files_below, test_config_in};

const KEY: &str = "hostile-stream-key-0123456789";

async fn create_channel(api: SocketAddr, id: &str) -> serde_json::Value {
    let json = format!(r#"{{"id":"{id}","stream_key":"{KEY}","target_duration":"2s","window":"10s"}}"#);
    live_push::create_channel(api, &json).await
}

/// A server on its own storage folder, with channel `news` live (one rendition, one segment).
async fn server_with_a_live_channel() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    create_channel(s.api, "news").await;
    push(s.ingest, &format!("/ingest/news/{KEY}/v0"), &[], 201).await;
    (dir, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_never_serves_records_and_no_one_sees_a_stream_key_twice() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    let created = create_channel(s.api, "news").await;
    assert_eq!(created["stream_key"], KEY);
    assert!(created["ingest_url"].as_str().unwrap().ends_with(&format!("/ingest/news/{KEY}/")));
    push(s.ingest, &format!("/ingest/news/{KEY}/v0"), &[], 201).await;

    // Every record estuary keeps, by every edge route and spelling, is 404 and carries no key.
    for path in [
        "/static/.estuary/live/channels.json",
        "/static/.estuary/live/news/channel.json",
        "/static/.estuary/live/news/timeline.json",
        "/static/%2Eestuary/live/news/channel.json",
        "/static/live/channels.json",
        "/static/live/news/channel.json",
        "/vod/.estuary/live/news/channel.json/master.m3u8",
    ] {
        let r = get(s.edge, path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains(KEY), "{path}");
    }
    // Nothing in storage holds the key in clear: only its hash.
    for file in files_below(dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(KEY), "{file} holds the stream key");
    }
    let record = std::fs::read_to_string(dir.path().join(".estuary/live/news/channel.json")).unwrap();
    assert!(record.contains("key_sha256"), "{record}");

    // The API shows it once, at creation: not in show or list.
    for path in ["/api/v1/channels/news", "/api/v1/channels"] {
        let r = get(s.api, path).await;
        assert_eq!(r.status, 200);
        assert!(!r.text().contains(KEY), "{path}: {}", r.text());
    }
    // Rotation: the new key works at once, the old one never again.
    let r = send_body(s.api, "POST", "/api/v1/channels/news/rotate-key", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let new_key = rotated["stream_key"].as_str().unwrap();
    assert_ne!(new_key, KEY);
    let seg = asset("seg_000.m4s");
    assert_eq!(send_body(s.ingest, "PUT", &format!("/ingest/news/{KEY}/v0/seg_001.m4s"), &[], &seg).await.status, 401);
    assert_eq!(
        send_body(s.ingest, "PUT", &format!("/ingest/news/{new_key}/v0/seg_001.m4s"), &[], &seg).await.status,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_before_are_moved_out_of_reach_and_their_keys_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live/news");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(dir.path().join("live/channels.json"), r#"{"channels":["news"]}"#).unwrap();
    let old = format!(
        r#"{{"id":"news","token":"{KEY}","settings":{{"window":"10s","dvr":"1h","target_duration":"2s","idle_timeout":"30s"}},"created_ms":1700000000000}}"#
    );
    std::fs::write(live.join("channel.json"), old).unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    assert!(!live.join("channel.json").exists() && !dir.path().join("live/channels.json").exists());
    assert_eq!(get(s.edge, "/static/live/news/channel.json").await.status, 404);
    for file in files_below(dir.path()) {
        assert!(!std::fs::read_to_string(&file).unwrap_or_default().contains(KEY), "{file} holds the key");
    }
    // The encoder's key keeps working.
    push(s.ingest, &format!("/ingest/news/{KEY}/v0"), &[], 201).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_without_valid_credentials_changes_nothing_ever() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    create_channel(s.api, "news").await;
    // A stranger behind the same address as the encoder pushes a rogue rendition and deletes
    // things: every request is 401, and unknown channels look exactly the same.
    push(s.ingest, "/ingest/news/rogue", &[], 401).await;
    push(s.ingest, "/ingest/news/not-the-key-0123456789/rogue", &[], 401).await;
    push(s.ingest, "/ingest/news/rogue", &[("Authorization", "Bearer not-the-key-0123456789")], 401).await;
    push(s.ingest, &format!("/ingest/nope/{KEY}/v0"), &[], 401).await;
    let del = request(s.ingest, "DELETE", "/ingest/news/v0/seg_000.m4s", &[]).await;
    assert_eq!(del.status, 401);
    // Then the real encoder authenticates from the same address.
    push(s.ingest, &format!("/ingest/news/{KEY}/v0"), &[], 201).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let master = get(s.edge, "/live/news/master.m3u8").await.text();
    let variants = master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")).count();
    assert_eq!(variants, 1, "only the authenticated rendition: {master}");
    let channel: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/channels/news").await.body).unwrap();
    // The one pushed variant: its video and its muxed audio, nothing else.
    assert_eq!(channel["renditions"].as_array().map(Vec::len), Some(2), "{channel}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_mpd_never_carries_a_requests_host() {
    let (_dir, s) = server_with_a_live_channel().await;
    let poisoned =
        request(s.edge, "GET", "/live/news/manifest.mpd", &[("Host", "evil.example"), ("X-Forwarded-Proto", "https")])
            .await;
    assert_eq!(poisoned.status, 200, "{}", poisoned.text());
    let honest = get(s.edge, "/live/news/manifest.mpd").await;
    for mpd in [poisoned.text(), honest.text()] {
        assert!(!mpd.contains("evil.example"), "{mpd}");
        assert!(mpd.contains("<UTCTiming") && mpd.contains("value=\"../../time\""), "{mpd}");
    }
    assert_eq!(poisoned.header("etag"), honest.header("etag"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_a_channel_leaves_nothing_behind() {
    let (dir, s) = server_with_a_live_channel().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(request(s.api, "DELETE", "/api/v1/channels/news?purge=true", &[]).await.status, 204);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let left: Vec<String> = files_below(dir.path()).into_iter().filter(|f| f.contains("/news/")).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_is_closed_to_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config_in(dir.path());
    config.live.max_channels = 1;
    let s = TestServer::start(config).await;
    // DNS rebinding: a page on another name that resolves here gets nothing.
    let rebound = request(s.api, "GET", "/api/v1/channels", &[("Host", "evil.example:9090")]).await;
    assert_eq!(rebound.status, 403, "{}", rebound.text());
    assert_eq!(request(s.api, "GET", "/api/v1/channels", &[("Host", "localhost:9090")]).await.status, 200);
    // A cap on channels.
    create_channel(s.api, "one").await;
    let body = br#"{"id":"two"}"#;
    let r = send_body(s.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body).await;
    assert_eq!(r.status, 409, "{}", r.text());
}

#[test]
fn an_exposed_api_without_a_token_refuses_to_start_and_secrets_are_never_printed() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_estuary"))
        .args(["serve", "--api-addr", "0.0.0.0:0", "--edge-addr", "127.0.0.1:0", "--ingest-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("api.token") && stderr.contains("ESTUARY_API_TOKEN"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_estuary"))
        .arg("check-config")
        .env("ESTUARY_API_TOKEN", "api-secret-123456")
        .env("ESTUARY_EDGE_ORIGIN_LOCK_HEADER", "x-origin-verify")
        .env("ESTUARY_EDGE_ORIGIN_LOCK_SECRET", "lock-secret-123456")
        .env("ESTUARY_STORAGE_S3_SECRET_ACCESS_KEY", "s3-secret-123456")
        .env("ESTUARY_STORAGE_S3_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("ESTUARY_ENCRYPTION_VOD_PREFIXES", "[\"premium/\"]")
        .env("ESTUARY_ENCRYPTION_KEY_ID", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
        .env("ESTUARY_ENCRYPTION_KEY", "5ec2e75ec2e75ec2e75ec2e75ec2e7aa")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for secret in ["api-secret-123456", "lock-secret-123456", "s3-secret-123456", "5ec2e75ec2e75ec2e75ec2e75ec2e7aa"] {
        assert!(!printed.contains(secret), "check-config printed {secret}");
    }
    assert!(printed.contains("<redacted>"));
}

#[test]
fn kubernetes_service_links_do_not_stop_the_process() {
    let estuary = Estuary::spawn(
        &[],
        &[
            ("ESTUARY_PORT", "tcp://10.96.0.10:8080"),
            ("ESTUARY_PORT_8080_TCP", "tcp://10.96.0.10:8080"),
            ("ESTUARY_PORT_8080_TCP_ADDR", "10.96.0.10"),
            ("ESTUARY_SERVICE_HOST", "10.96.0.10"),
            ("ESTUARY_SERVICE_PORT", "8080"),
        ],
    );
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_estuary"))
        .args(["health", "--addr", &estuary.api.to_string(), "--path", "/readyz"])
        .status()
        .unwrap();
    assert!(status.success());
}
