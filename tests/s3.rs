//! S3 storage against a real S3-compatible server on loopback: VOD from a bucket (same packets as from
//! disk, reading only what segments need), an S3 outage (cached content still served, uncached fails
//! fast, readiness unaffected, recovery without a restart), protected assets the same bytes as from a
//! folder, and live write-through to the bucket.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestServer;
use common::client::{get, send_body};
use common::compare::{assert_same_packets, framemd5};
use common::encoder::{Encoder, Push};
use common::media::media;
use common::s3::S3Server;
use estuary::storage::s3::S3Storage;
use estuary::storage::{Storage, StorageKey};

async fn upload(server: &S3Server, files: &[(&str, std::path::PathBuf)]) {
    let s3 = S3Storage::new(&server.s3_config()).await;
    for (key, path) in files {
        s3.put(&StorageKey::parse(key).unwrap(), Bytes::from(std::fs::read(path).unwrap())).await.unwrap();
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_from_a_bucket_reads_only_what_segments_need() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(dir.path());
    let clips = ["sample.mp4", "bframes.mp4", "moov_end.mp4"];
    let mut files: Vec<_> = clips.iter().map(|c| (*c, media().join(c))).collect();
    // A copy nothing plays, for counting the bytes one segment costs.
    files.push(("untouched.mp4", media().join("moov_end.mp4")));
    upload(&server, &files).await;
    let s = TestServer::start(server.estuary_config()).await;

    for clip in clips {
        let (src, url) =
            (media().join(clip).to_str().unwrap().to_owned(), format!("http://{}/vod/{clip}/master.m3u8", s.edge));
        let (expected, ours) = tokio::task::spawn_blocking(move || (framemd5(&src), framemd5(&url))).await.unwrap();
        assert_same_packets(&expected, &ours, &format!("{clip} from S3"));
    }

    // Bytes read from S3 for one segment that nothing has read yet.
    let size = std::fs::metadata(media().join("moov_end.mp4")).unwrap().len();
    assert_eq!(get(s.edge, "/vod/untouched.mp4/master.m3u8").await.status, 200);
    let before = get(s.api, "/metrics").await.text();
    let seg = get(s.edge, "/vod/untouched.mp4/a0/2.m4s").await;
    assert_eq!(seg.status, 200);
    let video = get(s.edge, "/vod/untouched.mp4/v0/2.m4s").await;
    let after = get(s.api, "/metrics").await.text();
    let name = r#"estuary_storage_read_bytes_total{backend="s3"}"#;
    let read = metric(&after, name) - metric(&before, name);
    let gets = r#"estuary_storage_reads_total{backend="s3"}"#;
    let requests = metric(&after, gets) - metric(&before, gets);
    eprintln!(
        "S3 for an audio and a video segment ({} + {} bytes): {read} bytes in {requests} ranged GETs (file: {size} bytes)",
        seg.body.len(),
        video.body.len()
    );
    let read = read - video.body.len() as f64 * 1.25;
    assert!(
        read <= seg.body.len() as f64 * 1.25 && read * 10.0 < size as f64,
        "read {read} for {} of {size}",
        seg.body.len()
    );

    // With the cache off, segments are streamed from the bucket (ranged GETs of up to 1 MiB as the
    // client takes them): the same bytes and validators as the built ones.
    let mut config = server.estuary_config();
    config.cache.bytes = estuary::config::ByteSize(0);
    let streaming = TestServer::start(config).await;
    for path in ["/vod/untouched.mp4/a0/2.m4s", "/vod/untouched.mp4/v0/2.m4s", "/vod/sample.mp4/v0/1.m4s"] {
        let (built, streamed) = (get(s.edge, path).await, get(streaming.edge, path).await);
        assert_eq!((built.status, streamed.status), (200, 200), "{path}");
        assert!(built.body == streamed.body, "{path}: the streamed segment differs from the built one");
        assert_eq!(built.header("etag"), streamed.header("etag"), "{path}");
    }
}

/// A protected asset's segments are the same bytes from a bucket as from a folder: gathered and
/// encrypted in place either way (copied out of ranged GETs from S3, read straight into place from a
/// file), so pods on either backend serve one object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_asset_is_the_same_bytes_from_a_bucket_and_a_folder() {
    let (bucket, folder) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = S3Server::start(bucket.path());
    let clips = ["bframes.mp4", "moov_end.mp4"];
    std::fs::create_dir(folder.path().join("drm")).unwrap();
    for clip in clips {
        std::fs::copy(media().join(clip), folder.path().join("drm").join(clip)).unwrap();
    }
    let files: Vec<_> = clips.iter().map(|c| (format!("drm/{c}"), media().join(c))).collect();
    upload(&server, &files.iter().map(|(k, p)| (k.as_str(), p.clone())).collect::<Vec<_>>()).await;
    let protect = |mut c: estuary::config::Config, scheme| {
        c.encryption.vod_prefixes = vec!["drm/".into()];
        c.encryption.key_id = "0123456789abcdef0123456789abcdef".into();
        c.encryption.key = "00112233445566778899aabbccddeeff".into();
        c.encryption.scheme = scheme;
        c
    };
    for scheme in [estuary::config::EncryptionScheme::Cenc, estuary::config::EncryptionScheme::Cbcs] {
        let from_bucket = TestServer::start(protect(server.estuary_config(), scheme)).await;
        let from_folder = TestServer::start(protect(common::test_config_in(folder.path()), scheme)).await;
        for clip in clips {
            for path in ["v0/1.m4s", "v0/2.m4s", "a0/2.m4s", "v0/init.mp4"] {
                let path = format!("/vod/drm/{clip}/{path}");
                let (a, b) = (get(from_bucket.edge, &path).await, get(from_folder.edge, &path).await);
                assert_eq!((a.status, b.status), (200, 200), "{path}");
                assert!(a.body == b.body, "{path} ({scheme:?}): the bucket's bytes differ from the folder's");
                // (The ETags differ: they carry the source's version, which each backend tells
                // its own way.)
                if path.ends_with(".m4s") {
                    assert!(a.body.windows(4).any(|w| w == b"senc"), "{path} is encrypted");
                }
            }
        }
    }
}

#[tokio::test]
async fn an_s3_that_hangs_times_out() {
    // Accepts connections and never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hole.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in hole.incoming().take(8) {
            open.push(stream);
        }
    });
    let config = estuary::config::S3Config {
        bucket: "media".into(),
        endpoint: format!("http://{addr}"),
        path_style: true,
        access_key_id: "a".into(),
        secret_access_key: "b".into(),
        request_timeout: Duration::from_millis(300),
        max_attempts: 2,
        ..Default::default()
    };
    let s3 = S3Storage::new(&config).await;
    let asked = Instant::now();
    let result = s3.get(&StorageKey::parse("x.mp4").unwrap()).await;
    eprintln!("hanging S3: {result:?} after {:?}", asked.elapsed());
    assert!(matches!(result, Err(estuary::storage::StorageError::Timeout(_))), "{result:?}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_is_survived_and_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = S3Server::start(dir.path());
    upload(
        &server,
        &[
            ("sample.mp4", media().join("sample.mp4")),
            ("hls/index.m3u8", common::assets_dir().join("sample/hls/media.m3u8")),
        ],
    )
    .await;
    let mut config = server.estuary_config();
    config.vod.revalidate_after = Duration::from_millis(500);
    config.static_files.manifest_max_age = Duration::from_millis(500);
    let s = TestServer::start(config).await;

    // Warm: the asset is indexed, its playlists and first segment cached; a static playlist too.
    for path in
        ["/vod/sample.mp4/master.m3u8", "/vod/sample.mp4/v0.m3u8", "/vod/sample.mp4/v0/1.m4s", "/static/hls/index.m3u8"]
    {
        assert_eq!(get(s.edge, path).await.status, 200, "{path}");
    }

    server.stop();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Cached objects keep being served (the static playlist's lifetime passed: served stale).
    for path in ["/vod/sample.mp4/master.m3u8", "/vod/sample.mp4/v0/1.m4s", "/static/hls/index.m3u8"] {
        let r = get(s.edge, path).await;
        assert_eq!(r.status, 200, "{path} during the outage");
    }
    // Uncached objects fail with 503/504, not cached by the CDN.
    let asked = Instant::now();
    let r = get(s.edge, "/vod/sample.mp4/v0/3.m4s").await;
    eprintln!("uncached segment during the S3 outage: {} after {:?}", r.status, asked.elapsed());
    assert!(matches!(r.status, 503 | 504), "{} {}", r.status, r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    for _ in 0..4 {
        let r = get(s.edge, "/vod/sample.mp4/a0/3.m4s").await;
        assert!(matches!(r.status, 503 | 504));
    }
    let asked = Instant::now();
    let fast = get(s.edge, "/vod/sample.mp4/a0/2.m4s").await;
    eprintln!("with the circuit open: {} after {:?}", fast.status, asked.elapsed());
    assert_eq!(fast.status, 503);
    assert_eq!(fast.header("retry-after"), Some("1"));
    // Readiness does not follow a shared dependency; stats and metrics do.
    assert_eq!(get(s.api, "/readyz").await.status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/stats").await.body).unwrap();
    assert_eq!(stats["storage"]["healthy"], false);
    assert_eq!(stats["storage_circuit"], "open");
    assert!(stats["cache"]["stale_served"].as_u64().unwrap() >= 1);
    assert_eq!(metric(&get(s.api, "/metrics").await.text(), "estuary_storage_circuit_open"), 1.0);

    // S3 comes back: estuary recovers by itself.
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(s.edge, "/vod/sample.mp4/v0/3.m4s").await;
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/stats").await.body).unwrap();
    assert_eq!((stats["storage"]["healthy"].clone(), stats["storage_circuit"].clone()), (true.into(), "closed".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_segments_go_to_the_bucket_and_the_recording_plays_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(dir.path());
    let s = TestServer::start(server.estuary_config()).await;
    let token = "s3-live-token-0123456789";
    let body = format!(r#"{{"id":"s3live","token":"{token}","target_duration":"2s","window":"10s"}}"#);
    assert_eq!(
        send_body(s.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body.as_bytes())
            .await
            .status,
        201
    );
    let encoder = Encoder::start(s.ingest, "s3live", token, Push { seconds: 10, ..Push::default() });
    tokio::task::spawn_blocking(move || encoder.wait()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(send_body(s.api, "POST", "/api/v1/channels/s3live/stop", &[], b"").await.status, 200);

    let s3 = S3Storage::new(&server.s3_config()).await;
    let objects = s3.list("live/s3live/").await.unwrap();
    let segments = objects.iter().filter(|o| o.key.as_str().ends_with(".m4s")).count();
    assert!(segments >= 12, "{segments} segments in the bucket");
    // A bounded listing (the preview page's) stops early, and its first objects are the listing's.
    let (first, more) = s3.list_at_most("live/s3live/", 5).await.unwrap();
    assert!(more && first.len() == 5, "{} {more}", first.len());
    assert_eq!(first[..], objects[..5]);
    let records = s3.list(".estuary/live/s3live/").await.unwrap();
    assert!(records.iter().any(|o| o.key.as_str().ends_with("timeline.json")), "{records:?}");
    drop(s);

    // A new estuary on the same bucket: the ended channel and its recording come from S3.
    let s = TestServer::start(server.estuary_config()).await;
    let before = metric(&get(s.api, "/metrics").await.text(), r#"estuary_storage_reads_total{backend="s3"}"#);
    let url = format!("http://{}/live/s3live/master.m3u8?start=0", s.edge);
    let recording = tokio::task::spawn_blocking(move || framemd5(&url)).await.unwrap();
    let (_, video) = &recording.streams["video"];
    assert!(video.len() >= 2 * 8 * 25, "{} video packets of two variants", video.len());
    let after = metric(&get(s.api, "/metrics").await.text(), r#"estuary_storage_reads_total{backend="s3"}"#);
    assert!(after - before >= 12.0, "the recording was read from the bucket ({} reads)", after - before);
    let _ = Arc::new(());
}
