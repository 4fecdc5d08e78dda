//! The edge's per-core shape (`edge.runtime = "per-core"`, the default): one single-threaded runtime
//! and one listener per worker on a shared port. The kernel spreads connections over the listeners,
//! each runtime serves the connections its listener took, and a drain stops them all.

mod common;

use std::time::Duration;

use common::client::get;
use common::test_config;
use estuary::server::per_core::Runtimes;
use estuary::server::{self, StartOptions};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

const MEDIA: &str = "/static/sample/hls/media.m3u8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_core_serves_the_connections_its_listener_took() {
    let cores = Runtimes::start(2).unwrap();
    let options = StartOptions { storage: None, edge_runtimes: cores.handles() };
    let running = server::start(&test_config(), options).await.unwrap();
    let edge = running.edge_addr.unwrap();
    for _ in 0..16 {
        assert_eq!(get(edge, MEDIA).await.status, 200);
    }

    // Hold the second core's thread: connections the kernel gives its listener wait for it, the
    // first core answers its own meanwhile.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (stalled_tx, stalled) = tokio::sync::oneshot::channel();
    cores.handles()[1].spawn(async move {
        let _ = stalled_tx.send(());
        let _ = held.recv();
    });
    stalled.await.unwrap();
    let mut replies: FuturesUnordered<_> = (0..24).map(|_| get(edge, MEDIA)).collect();
    assert_eq!(replies.next().await.unwrap().status, 200, "the free core answers");
    let mut answered = 1;
    while tokio::time::timeout(Duration::from_millis(300), replies.next()).await.is_ok_and(|r| r.is_some()) {
        answered += 1;
    }
    // 24 connections spread by the kernel's hash: all on one listener has odds of 2^-23.
    assert!(answered < 24, "every connection went to the free core");
    release.send(()).unwrap();
    while let Some(reply) = replies.next().await {
        assert_eq!(reply.status, 200);
        answered += 1;
    }
    assert_eq!(answered, 24);

    running.shutdown().await;
    cores.stop();
}
