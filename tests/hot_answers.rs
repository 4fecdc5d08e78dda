//! The edge's hot answers: a repeated plain GET/HEAD of a small cached object is answered from the
//! head the full path rendered. These tests hold it to the full path's bytes, and show that it
//! ends with a purge, with a change of the files it was made from, and never passes the origin lock.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{get, request, send_body};
use common::media::media;
use common::{TestServer, test_config, test_config_in};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The bytes of one exchange on a new connection, with the `date` line taken out.
async fn exchange(addr: SocketAddr, method: &str, target: &str, headers: &[&str]) -> String {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: o\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.split("\r\n").filter(|l| !l.starts_with("date: ")).collect::<Vec<_>>().join("\r\n")
}

async fn cache_stat(api: SocketAddr, name: &str) -> u64 {
    let stats: serde_json::Value = serde_json::from_slice(&get(api, "/api/v1/stats").await.body).unwrap();
    stats["cache"][name].as_u64().unwrap()
}

#[tokio::test]
async fn a_repeated_request_gets_the_full_paths_bytes_from_its_hot_answer() {
    let s = TestServer::start(test_config()).await;
    let targets = [
        "/vod/sample/sample.mp4/master.m3u8",
        "/vod/sample/sample.mp4/v0.m3u8",
        "/vod/sample/sample.mp4/manifest.mpd",
        "/vod/sample/sample.mp4/v0/init.mp4",
        "/static/sample/hls/media.m3u8",
    ];
    let variants: [(&str, &[&str]); 5] = [
        ("GET", &[]),
        ("GET", &["Accept-Encoding: gzip"]),
        ("GET", &["Accept-Encoding: gzip, deflate, br", "X-Forwarded-For: 10.0.0.1"]),
        ("GET", &["Accept-Encoding: br;q=0"]),
        ("HEAD", &[]),
    ];
    let mut repeats = 0;
    for target in targets {
        for (method, headers) in variants {
            // The first of each kind renders its head on the full path; the repeats are hot.
            let full = exchange(s.edge, method, target, headers).await;
            assert!(full.starts_with("HTTP/1.1 200 OK\r\n"), "{target} {headers:?}: {full}");
            for _ in 0..3 {
                assert_eq!(exchange(s.edge, method, target, headers).await, full, "{method} {target} {headers:?}");
                repeats += 1;
            }
        }
    }
    assert!(cache_stat(s.api, "hot_hits").await >= repeats, "the repeats were answered hot");

    // What the hot answer cannot send still gets its own answer: a range, a revalidation.
    let target = "/vod/sample/sample.mp4/v0.m3u8";
    let whole = get(s.edge, target).await;
    let ranged = request(s.edge, "GET", target, &[("Range", "bytes=0-6")]).await;
    assert_eq!((ranged.status, ranged.text().as_str()), (206, "#EXTM3U"));
    let etag = whole.header("etag").unwrap();
    let revalidated = request(s.edge, "GET", target, &[("If-None-Match", etag)]).await;
    assert_eq!(revalidated.status, 304);
    // The requests were counted under their route, hot or not.
    let metrics = get(s.api, "/metrics").await.text();
    // Every kind of object the route served (playlists, the MPD, init segments).
    let series = |l: &&str| {
        l.starts_with("estuary_http_requests_total{") && l.contains(r#"route="/vod/{*path}",status="200",tier="edge"}"#)
    };
    let counted: u64 =
        metrics.lines().filter(series).map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum();
    assert!(counted > 4 * 5 * 4, "{counted}");
}

#[tokio::test]
async fn a_purge_ends_hot_answers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("hls")).unwrap();
    let playlist = dir.path().join("hls/index.m3u8");
    std::fs::write(&playlist, "#EXTM3U\n#EXT-X-VERSION:7\n# first\n").unwrap();
    let mut config = test_config_in(dir.path());
    config.static_files.manifest_max_age = Duration::from_secs(60);
    let s = TestServer::start(config).await;
    for _ in 0..3 {
        assert!(get(s.edge, "/static/hls/index.m3u8").await.text().ends_with("# first\n"));
    }
    assert!(cache_stat(s.api, "hot_hits").await >= 2);
    std::fs::write(&playlist, "#EXTM3U\n#EXT-X-VERSION:7\n# second\n").unwrap();
    let purged =
        send_body(s.api, "POST", "/api/v1/cache/purge", &[("Content-Type", "application/json")], br#"{"all":true}"#)
            .await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    // Well within the hot answer's one second: only the purge can have ended it.
    assert!(get(s.edge, "/static/hls/index.m3u8").await.text().ends_with("# second\n"));
}

#[tokio::test]
async fn a_changed_source_is_served_once_its_revalidation_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("a.mp4");
    std::fs::copy(media().join("sample.mp4"), &source).unwrap();
    let mut config = test_config_in(dir.path());
    config.vod.revalidate_after = Duration::from_millis(300);
    let s = TestServer::start(config).await;
    let target = "/vod/a.mp4/v0.m3u8";
    let before = get(s.edge, target).await.text();
    for _ in 0..3 {
        assert_eq!(get(s.edge, target).await.text(), before);
    }
    // A different cut of the asset, put in place the way an upload tool does.
    let next = dir.path().join("a.mp4.new");
    std::fs::copy(media().join("irregular.mp4"), &next).unwrap();
    std::fs::rename(&next, &source).unwrap();
    let changed = Instant::now();
    let after = loop {
        let text = get(s.edge, target).await.text();
        if text != before {
            break text;
        }
        assert!(changed.elapsed() < Duration::from_secs(10), "the old playlist is still served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(after.starts_with("#EXTM3U") && after.contains("#EXTINF"), "{after}");
}

#[tokio::test]
async fn the_origin_lock_holds_for_hot_answers() {
    let mut config = test_config();
    config.edge.origin_lock_header = "x-origin-secret".into();
    config.edge.origin_lock_secret = "s3cret-value".into();
    let s = TestServer::start(config).await;
    let target = "/vod/sample/sample.mp4/v0.m3u8";
    for _ in 0..3 {
        let r = request(s.edge, "GET", target, &[("X-Origin-Secret", "s3cret-value")]).await;
        assert_eq!(r.status, 200);
    }
    assert!(cache_stat(s.api, "hot_hits").await >= 2);
    assert_eq!(get(s.edge, target).await.status, 403);
    assert_eq!(request(s.edge, "GET", target, &[("X-Origin-Secret", "s3cret-valuf")]).await.status, 403);
    // The first header of the name counts, on both paths.
    let r = request(s.edge, "GET", target, &[("X-Origin-Secret", "nope"), ("X-Origin-Secret", "s3cret-value")]).await;
    assert_eq!(r.status, 403);
}
