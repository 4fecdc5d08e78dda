//! The segment cache's single flight over real sockets: 200 concurrent misses, one storage read; purge forces a re-read.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::client::{get, send_body};
use common::counting::CountingStorage;
use common::{TestServer, assets_dir, test_config};
use estuary::storage::local::LocalStorage;

const SEGMENT: &str = "/static/sample/hls/seg_001.m4s";
const KEY: &str = "sample/hls/seg_001.m4s";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_misses_cause_one_storage_read() {
    let local = Arc::new(LocalStorage::new(assets_dir()).unwrap());
    // Slow storage widens the window in which requests pile up behind the first load.
    let counting = CountingStorage::new(local, Duration::from_millis(300));
    let s = TestServer::start_with(test_config(), Some(counting.clone())).await;

    let requests: Vec<_> = (0..200).map(|_| tokio::spawn(get(s.edge, SEGMENT))).collect();
    let mut bodies = Vec::new();
    for r in requests {
        let reply = r.await.unwrap();
        assert_eq!(reply.status, 200);
        bodies.push(reply.body);
    }
    let on_disk = std::fs::read(assets_dir().join(KEY)).unwrap();
    assert!(bodies.iter().all(|b| *b == on_disk), "every request got the same, correct bytes");
    assert_eq!(counting.reads_of(KEY), 1, "exactly one storage read for 200 concurrent requests");

    let stats = s.server.cache.stats().await;
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.hits + stats.coalesced, 199);

    // Cached now: no further reads.
    assert_eq!(get(s.edge, SEGMENT).await.status, 200);
    assert_eq!(counting.reads_of(KEY), 1);

    // Purge by prefix, then the next request reads storage again.
    let purge = send_body(
        s.api,
        "POST",
        "/api/v1/cache/purge",
        &[("Content-Type", "application/json")],
        br#"{"prefix":"static/sample/hls/"}"#,
    )
    .await;
    assert_eq!(purge.status, 200, "{}", purge.text());
    let json: serde_json::Value = serde_json::from_slice(&purge.body).unwrap();
    assert_eq!(json["purged"], 1);
    assert_eq!(get(s.edge, SEGMENT).await.status, 200);
    assert_eq!(counting.reads_of(KEY), 2);

    // Purge everything.
    let purge =
        send_body(s.api, "POST", "/api/v1/cache/purge", &[("Content-Type", "application/json")], br#"{"all":true}"#)
            .await;
    assert_eq!(purge.status, 200);
    assert_eq!(get(s.edge, SEGMENT).await.status, 200);
    assert_eq!(counting.reads_of(KEY), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_load_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalStorage::new(dir.path()).unwrap());
    let counting = CountingStorage::new(local, Duration::ZERO);
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    let s = TestServer::start_with(config, Some(counting.clone())).await;

    assert_eq!(get(s.edge, "/static/late.m4s").await.status, 404);
    std::fs::write(dir.path().join("late.m4s"), b"now it exists").unwrap();
    let r = get(s.edge, "/static/late.m4s").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"now it exists");
    assert_eq!(counting.reads_of("late.m4s"), 2);
}
