//! The edge's HTTP behaviour over a real socket: media types, validators, ranges, HEAD, CORS, compression, origin lock, limits.

mod common;

use std::io::Read;
use std::time::Duration;

use common::client::{self, get, request};
use common::{TestServer, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MASTER: &str = "/static/sample/hls/master.m3u8";
const MEDIA: &str = "/static/sample/hls/media.m3u8";
const SEGMENT: &str = "/static/sample/hls/seg_000.m4s";
const MPD: &str = "/static/sample/dash/manifest.mpd";

#[tokio::test]
async fn content_types_and_cache_headers() {
    let s = TestServer::start(test_config()).await;
    let cases = [
        (MASTER, "application/vnd.apple.mpegurl", "public, max-age=2"),
        (MPD, "application/dash+xml", "public, max-age=2"),
        (SEGMENT, "video/iso.segment", "public, max-age=86400"),
        ("/static/sample/hls/init.mp4", "video/mp4", "public, max-age=86400"),
        ("/static/sample/dash/init-0.m4s", "video/iso.segment", "public, max-age=86400"),
        ("/static/sample/sample.mp4", "video/mp4", "public, max-age=86400"),
    ];
    for (path, content_type, cache_control) in cases {
        let r = get(s.edge, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(r.header("cache-control"), Some(cache_control), "{path}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{path}");
        let on_disk = std::fs::read(common::assets_dir().join(path.trim_start_matches("/static/"))).unwrap();
        assert_eq!(r.body, on_disk, "{path}");
        assert_eq!(r.header("content-length"), Some(on_disk.len().to_string().as_str()));
        assert!(r.header("etag").is_some_and(|e| e.starts_with('"')), "{path}");
        assert!(r.header("last-modified").is_some(), "{path}");
    }
    let missing = get(s.edge, "/static/sample/nope.m4s").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("cache-control"), Some("public, max-age=1"));
    assert_eq!(get(s.edge, "/elsewhere").await.status, 404);
    assert_eq!(request(s.edge, "DELETE", SEGMENT, &[]).await.status, 405);
}

#[tokio::test]
async fn etags_are_identical_across_replicas() {
    let a = TestServer::start(test_config()).await;
    let b = TestServer::start(test_config()).await;
    for path in [MEDIA, SEGMENT, MPD] {
        let (ra, rb) = (get(a.edge, path).await, get(b.edge, path).await);
        assert_eq!(ra.header("etag"), rb.header("etag"), "{path}");
    }
}

#[tokio::test]
async fn conditional_requests_give_304() {
    let s = TestServer::start(test_config()).await;
    let first = get(s.edge, SEGMENT).await;
    let etag = first.header("etag").unwrap().to_owned();
    let last_modified = first.header("last-modified").unwrap().to_owned();

    let r = request(s.edge, "GET", SEGMENT, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("cache-control"), Some("public, max-age=86400"));

    let r = request(s.edge, "GET", SEGMENT, &[("If-Modified-Since", &last_modified)]).await;
    assert_eq!(r.status, 304);

    let r = request(s.edge, "GET", SEGMENT, &[("If-None-Match", "\"something-else\"")]).await;
    assert_eq!(r.status, 200);
    let r = request(s.edge, "HEAD", SEGMENT, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304);
    let r = request(s.edge, "GET", SEGMENT, &[("If-Match", "\"something-else\"")]).await;
    assert_eq!(r.status, 412);
}

#[tokio::test]
async fn ranges_and_head() {
    let s = TestServer::start(test_config()).await;
    let full = get(s.edge, SEGMENT).await.body;
    let len = full.len();

    let r = request(s.edge, "GET", SEGMENT, &[("Range", "bytes=100-199")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some(format!("bytes 100-199/{len}").as_str()));
    assert_eq!(r.body, &full[100..200]);

    let r = request(s.edge, "GET", SEGMENT, &[("Range", "bytes=-10")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &full[len - 10..]);

    let r = request(s.edge, "GET", SEGMENT, &[("Range", &format!("bytes={len}-"))]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{len}").as_str()));

    // A stale If-Range gives the whole object.
    let r = request(s.edge, "GET", SEGMENT, &[("Range", "bytes=0-9"), ("If-Range", "\"old\"")]).await;
    assert_eq!((r.status, r.body.len()), (200, len));

    let r = request(s.edge, "HEAD", SEGMENT, &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
    assert_eq!(r.header("content-type"), Some("video/iso.segment"));

    // Ranges work on objects streamed around the cache too.
    let mut config = test_config();
    config.cache.max_object_bytes = estuary::config::ByteSize(64 * 1024);
    let small_cache = TestServer::start(config).await;
    let mp4 = std::fs::read(common::assets_dir().join("sample/sample.mp4")).unwrap();
    let r = get(small_cache.edge, "/static/sample/sample.mp4").await;
    assert_eq!((r.status, r.body.len()), (200, mp4.len()));
    assert_eq!(r.body, mp4);
    let r = request(small_cache.edge, "GET", "/static/sample/sample.mp4", &[("Range", "bytes=1000000-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &mp4[1_000_000..]);
    let etag = r.header("etag").unwrap().to_owned();
    let r = request(small_cache.edge, "GET", "/static/sample/sample.mp4", &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304);
    let stats = small_cache.server.cache.stats().await;
    assert_eq!(stats.bypassed, 3);
}

#[tokio::test]
async fn cors_for_browser_players() {
    let s = TestServer::start(test_config()).await;
    let r = request(
        s.edge,
        "OPTIONS",
        SEGMENT,
        &[
            ("Origin", "https://player.example"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range"),
        ],
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-methods").unwrap().contains("GET"));
    assert_eq!(r.header("access-control-allow-headers"), Some("range"));

    let r = request(s.edge, "GET", SEGMENT, &[("Origin", "https://player.example")]).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let exposed = r.header("access-control-expose-headers").unwrap();
    for h in ["Content-Length", "Content-Range", "ETag"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    // Errors are readable by the player too.
    let r = get(s.edge, "/static/missing.m3u8").await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn manifests_are_compressed_and_segments_never() {
    let s = TestServer::start(test_config()).await;
    let plain = get(s.edge, MPD).await;
    let r = request(s.edge, "GET", MPD, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.len() < plain.body.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, plain.body);
    // The compressed representation has its own validator.
    assert_ne!(r.header("etag"), plain.header("etag"));
    let gz_etag = r.header("etag").unwrap().to_owned();
    let again = request(s.edge, "GET", MPD, &[("Accept-Encoding", "gzip"), ("If-None-Match", &gz_etag)]).await;
    assert_eq!(again.status, 304);

    let r = request(s.edge, "GET", MPD, &[("Accept-Encoding", "gzip, br")]).await;
    assert_eq!(r.header("content-encoding"), Some("br"));
    let mut unbr = Vec::new();
    brotli::BrotliDecompress(&mut &r.body[..], &mut unbr).unwrap();
    assert_eq!(unbr, plain.body);

    let seg = request(s.edge, "GET", SEGMENT, &[("Accept-Encoding", "gzip, br")]).await;
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("content-encoding"), None);
    assert_eq!(seg.header("vary"), None);
}

#[tokio::test]
async fn origin_lock_needs_the_cdn_header() {
    let mut config = test_config();
    config.edge.origin_lock_header = "X-Origin-Verify".into();
    config.edge.origin_lock_secret = "from-cloudfront".into();
    let s = TestServer::start(config).await;
    assert_eq!(get(s.edge, SEGMENT).await.status, 403);
    let wrong = request(s.edge, "GET", SEGMENT, &[("X-Origin-Verify", "guess")]).await;
    assert_eq!(wrong.status, 403);
    let right = request(s.edge, "GET", SEGMENT, &[("X-Origin-Verify", "from-cloudfront")]).await;
    assert_eq!(right.status, 200);
    // Load-balancer probes carry no CDN header.
    assert_eq!(get(s.edge, "/healthz").await.status, 200);
}

/// A rotation: while CloudFront's distributions pick up the new secret, the old one still opens the
/// lock, cold and hot; anything else still does not.
#[tokio::test]
async fn the_origin_lock_rotates_without_a_403() {
    let mut config = test_config();
    config.edge.origin_lock_header = "X-Origin-Verify".into();
    config.edge.origin_lock_secret = "new-secret".into();
    config.edge.origin_lock_previous_secret = "old-secret".into();
    let s = TestServer::start(config).await;
    for _ in 0..2 {
        for (secret, status) in [("new-secret", 200), ("old-secret", 200), ("older-secret", 403), ("", 403)] {
            let reply =
                request(s.edge, "GET", "/vod/sample/sample.mp4/master.m3u8", &[("X-Origin-Verify", secret)]).await;
            assert_eq!(reply.status, status, "{secret:?}");
        }
    }
    let mut lone = test_config();
    lone.edge.origin_lock_previous_secret = "old-secret".into();
    assert_eq!(lone.validate().unwrap_err().field, "edge.origin_lock_previous_secret");
}

#[tokio::test]
async fn oversized_headers_get_431_and_slow_headers_are_cut_off() {
    let mut config = test_config();
    config.http.header_read_timeout = Duration::from_secs(1);
    let s = TestServer::start(config).await;
    let huge = "a".repeat(64 * 1024);
    let r = request(s.edge, "GET", SEGMENT, &[("X-Big", &huge)]).await;
    assert_eq!(r.status, 431);

    // A client that never finishes its headers is disconnected.
    let mut stream = tokio::net::TcpStream::connect(s.edge).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the slow client was not disconnected");
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "{text}");
}

#[tokio::test]
async fn api_probes_metrics_and_token() {
    let mut config = test_config();
    config.api.token = "op-token-0123456789".into();
    let s = TestServer::start(config).await;
    assert_eq!(get(s.api, "/healthz").await.status, 200);
    assert_eq!(get(s.api, "/readyz").await.status, 200);
    let reads = |text: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(r#"estuary_storage_reads_total{backend="local"}"#)).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let reads_before = reads(&get(s.api, "/metrics").await.text());
    get(s.edge, SEGMENT).await;
    get(s.edge, SEGMENT).await;
    let metrics = get(s.api, "/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains(
            r#"estuary_http_requests_total{kind="segment",route="/static/{*key}",status="200",tier="edge"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains("estuary_http_request_duration_seconds_bucket"));
    assert!(text.contains("estuary_cache_hits_total 1"));
    assert!(text.contains("estuary_cache_misses_total 1"));
    assert_eq!(reads(&text) - reads_before, 1, "two requests, one storage read");

    assert_eq!(get(s.api, "/api/v1/stats").await.status, 401);
    let wrong = request(s.api, "GET", "/api/v1/stats", &[("Authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status, 403);
    let stats = request(s.api, "GET", "/api/v1/stats", &[("Authorization", "Bearer op-token-0123456789")]).await;
    assert_eq!(stats.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    assert_eq!(json["cache"]["hits"], 1);
    assert_eq!(json["storage"]["healthy"], true);
    assert_eq!(json["ready"], true);

    // VOD goes through the edge's fast path too, which reports the router's route templates.
    assert_eq!(get(s.edge, "/vod/sample/sample.mp4/master.m3u8").await.status, 200);
    assert_eq!(get(s.edge, "/vod/sample/nothing.mp4/master.m3u8").await.status, 404);
    let text = get(s.api, "/metrics").await.text();
    for status in ["200", "404"] {
        let line = format!(
            r#"estuary_http_requests_total{{kind="playlist",route="/vod/{{*path}}",status="{status}",tier="edge"}} 1"#
        );
        assert!(text.contains(&line), "{line}\n{text}");
    }

    let bad = client::send_body(
        s.api,
        "POST",
        "/api/v1/cache/purge",
        &[("Authorization", "Bearer op-token-0123456789"), ("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(bad.status, 400);
}
