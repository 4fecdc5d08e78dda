//! Live channels without sockets: rendering a full live playlist and MPD, and publishing one segment
//! (or one LL-HLS part) to 0, 1,000 and 10,000 parked `_HLS_msn` (`_HLS_part`) waiters (what the edge
//! does for blocking reloads).
//!
//! The channel is real: a `LiveRegistry` on local storage in a temporary directory, fed the bundled
//! sample's fMP4 segments through the same `classify` + `upload` path as `PUT /ingest`. The four
//! sample segments are pushed in a loop, so every fourth slot starts a discontinuity.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use estuary::live::channel::OpenUpload as ChannelOpen;
use estuary::live::manifests::Delta;
use estuary::live::model::WindowRequest;
use estuary::live::upload::classify;
use estuary::live::{ChannelHandle, ChannelSettings, LiveRegistry, manifests};
use estuary::packaging::fmp4::chunks::{Chunk, ChunkReader};
use estuary::storage::local::LocalStorage;
use tokio::runtime::Runtime;

const INIT: &[u8] = include_bytes!("../assets/sample/hls/init.mp4");
const SEGMENTS: [&[u8]; 4] = [
    include_bytes!("../assets/sample/hls/seg_000.m4s"),
    include_bytes!("../assets/sample/hls/seg_001.m4s"),
    include_bytes!("../assets/sample/hls/seg_002.m4s"),
    include_bytes!("../assets/sample/hls/seg_003.m4s"),
];
/// The sample's segment length; the window holds `WINDOW_SEGMENTS` of them.
const SEGMENT_SECS: u64 = 4;
const WINDOW_SEGMENTS: u64 = 60;

/// A live channel with a full window, and the encoder sequence number of its next segment.
struct Channel {
    _dir: tempfile::TempDir,
    handle: ChannelHandle,
    next: u64,
}

impl Channel {
    async fn new() -> Channel {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(LocalStorage::new(dir.path()).unwrap());
        let registry = LiveRegistry::load(storage, Default::default()).await.unwrap();
        let settings = ChannelSettings {
            target_duration: Duration::from_secs(SEGMENT_SECS),
            window: Duration::from_secs(SEGMENT_SECS * WINDOW_SEGMENTS),
            ..Default::default()
        };
        let (handle, _key) = registry.create("bench", settings, None).await.unwrap();
        let mut channel = Channel { _dir: dir, handle, next: 0 };
        channel.put("v0/init_0.mp4", INIT).await;
        for _ in 0..WINDOW_SEGMENTS + 5 {
            channel.push().await;
        }
        channel
    }

    async fn put(&self, path: &str, body: &[u8]) {
        self.handle.upload(classify(path, Bytes::copy_from_slice(body)).unwrap()).await.unwrap();
    }

    /// What ffmpeg's HLS muxer does per segment: the segment, then its media playlist.
    async fn push(&mut self) {
        let e = self.next;
        self.put(&format!("v0/seg_{e:05}.m4s"), SEGMENTS[(e % 4) as usize]).await;
        let first = e.saturating_sub(2);
        let mut playlist = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{SEGMENT_SECS}\n#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init_0.mp4\"\n"
        );
        for k in first..=e {
            playlist.push_str(&format!("#EXTINF:{SEGMENT_SECS}.000000,\nseg_{k:05}.m4s\n"));
        }
        self.put("v0/index.m3u8", playlist.as_bytes()).await;
        self.next += 1;
    }

    /// The first chunk of the next segment, as the ingest hands it on while the segment uploads.
    async fn open_part(&self) -> (ChannelOpen, Chunk) {
        let e = self.next;
        let open = self.handle.open_upload(&format!("v0/seg_{e:05}.m4s")).await.expect("the next segment continues v0");
        let mut reader = ChunkReader::new(open.init.clone(), 16 << 20);
        let chunk = reader.push(SEGMENTS[(e % 4) as usize]).unwrap().remove(0);
        (open, chunk)
    }

    /// Parks `n` tasks the way the edge parks `_HLS_msn` requests for the next segment (with
    /// `part`, `_HLS_part` requests for that part of it).
    async fn park(&self, n: usize, part: Option<u32>) -> Vec<tokio::task::JoinHandle<()>> {
        let msn = self.handle.snapshot().last_msn().unwrap() + 1;
        let waiters: Vec<_> = (0..n)
            .map(|_| {
                let mut rx = self.handle.subscribe();
                tokio::spawn(async move {
                    let reached = |s: &Arc<estuary::live::model::ChannelSnapshot>| match part {
                        Some(p) => s.has_part(0, msn, p),
                        None => s.has_reached(0, msn),
                    };
                    let snap = rx.wait_for(reached).await.unwrap().clone();
                    black_box(snap);
                })
            })
            .collect();
        // On a current-thread runtime one sleep runs every spawned task to its first await.
        tokio::time::sleep(Duration::from_millis(1)).await;
        waiters
    }
}

/// One worker, like the edge runtime in the benchmarks.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn render(c: &mut Criterion) {
    let rt = runtime();
    let channel = rt.block_on(Channel::new());
    let snap = channel.handle.snapshot();
    let parked = rt.block_on(channel.park(10_000, None));
    let mut group = c.benchmark_group("live_render");
    let playlist = manifests::render_media_playlist(&snap, 0, WindowRequest::default(), Delta::Full).unwrap();
    assert_eq!(playlist.matches("#EXTINF").count() as u64, WINDOW_SEGMENTS);
    group.bench_function("media_playlist_60_segments_10k_waiters", |b| {
        b.iter(|| {
            black_box(manifests::render_media_playlist(black_box(&snap), 0, WindowRequest::default(), Delta::Full))
        })
    });
    group.bench_function("mpd_60_segments_10k_waiters", |b| {
        b.iter(|| black_box(manifests::render_mpd(black_box(&snap), WindowRequest::default(), "/time")))
    });
    group.finish();
    for w in parked {
        w.abort();
    }
}

/// From the encoder's playlist upload to the last parked waiter holding the new snapshot.
fn publish(c: &mut Criterion) {
    let rt = runtime();
    let mut channel = rt.block_on(Channel::new());
    let mut group = c.benchmark_group("live_publish");
    group.sample_size(20);
    for waiters in [0usize, 1_000, 10_000] {
        group.bench_with_input(BenchmarkId::new("segment_to_all_waiters", waiters), &waiters, |b, &n| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let parked = channel.park(n, None).await;
                        let start = Instant::now();
                        channel.push().await;
                        for w in parked {
                            w.await.unwrap();
                        }
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
    }
    // At least one waiter: a part is handed to the channel task without a reply, so only a waiter
    // sees when it is published.
    for waiters in [1usize, 1_000, 10_000] {
        group.bench_with_input(BenchmarkId::new("part_to_all_waiters", waiters), &waiters, |b, &n| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (open, chunk) = channel.open_part().await;
                        let parked = channel.park(n, Some(0)).await;
                        let start = Instant::now();
                        channel.handle.chunk(&open, chunk).await;
                        for w in parked {
                            w.await.unwrap();
                        }
                        total += start.elapsed();
                        // The segment completes, outside the measurement.
                        channel.push().await;
                    }
                    total
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, render, publish);
criterion_main!(benches);
