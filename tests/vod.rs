//! On-the-fly VOD packaging against real clients: ffprobe and ffmpeg read our HLS and DASH and get the source's packets.

mod common;

use std::sync::Arc;

use common::client::{get, request};
use common::compare::{assert_same_packets, assert_same_stream, framemd5};
use common::counting::CountingStorage;
use common::media::{media, moov_after_mdat};
use common::tools::probe_streams;
use common::{TestServer, test_config};
use estuary::storage::local::LocalStorage;

async fn server() -> TestServer {
    let mut config = test_config();
    config.storage.root = media().to_owned();
    TestServer::start(config).await
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

/// Every round(EXTINF) of a media playlist is at most its target duration (RFC 8216 4.3.3.1).
fn assert_extinf_within_target(text: &str, label: &str) {
    let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap_or_else(|e| panic!("{label}: {e:?}"));
    assert!(!parsed.segments.is_empty(), "{label}");
    for s in &parsed.segments {
        assert!(
            (s.duration.round() as u64) <= parsed.target_duration,
            "{label}: EXTINF {} over target {}",
            s.duration,
            parsed.target_duration
        );
    }
    assert!(parsed.end_list, "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clip_gives_the_source_packets_over_hls_and_dash() {
    let s = server().await;
    let dir = media();
    assert!(moov_after_mdat(&dir.join("moov_end.mp4")), "the no-faststart clip really has moov at the end");
    for clip in ["sample.mp4", "bframes.mp4", "moov_end.mp4", "irregular.mp4", "audio_only.m4a", "video_only.mp4"] {
        let base = format!("http://{}/vod/{clip}", s.edge);
        let source = dir.join(clip).to_str().unwrap().to_owned();
        let (b, src) = (base.clone(), source.clone());
        let (expected, hls, dash) = blocking(move || {
            (framemd5(&src), framemd5(&format!("{b}/master.m3u8")), framemd5(&format!("{b}/manifest.mpd")))
        })
        .await
        .unwrap();
        assert_same_packets(&expected, &hls, &format!("{clip} over HLS"));
        assert_same_packets(&expected, &dash, &format!("{clip} over DASH"));

        // ffprobe reads the master, every media playlist and the MPD without error.
        let master = get(s.edge, &format!("/vod/{clip}/master.m3u8")).await.text();
        let mut urls = vec![format!("{base}/master.m3u8"), format!("{base}/manifest.mpd")];
        for uri in master
            .lines()
            .filter(|l| l.ends_with(".m3u8") && !l.starts_with('#'))
            .chain(master.lines().filter_map(|l| l.split("URI=\"").nth(1)).map(|u| u.trim_end_matches('"')))
        {
            let text = get(s.edge, &format!("/vod/{clip}/{uri}")).await.text();
            assert_extinf_within_target(&text, &format!("{clip}/{uri}"));
            urls.push(format!("{base}/{uri}"));
        }
        for url in urls {
            blocking(move || probe_streams(&url)).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_rendition_asset_set() {
    let s = server().await;
    let master = get(s.edge, "/vod/set/title.json/master.m3u8").await;
    assert_eq!(master.status, 200, "{}", master.text());
    let text = master.text();
    let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
    let variants: Vec<_> = parsed.variants.iter().filter(|v| !v.is_i_frame).collect();
    let resolutions: Vec<_> = variants.iter().map(|v| v.resolution.unwrap()).map(|r| (r.width, r.height)).collect();
    assert_eq!(resolutions, [(320, 180), (480, 270), (640, 360)]);
    assert!(
        variants.iter().all(|v| v.codecs.as_deref().is_some_and(|c| c.contains("avc1") && c.contains("mp4a.40.2")))
    );
    assert!(variants.windows(2).all(|w| w[0].bandwidth < w[1].bandwidth), "{text}");
    assert!(variants.iter().all(|v| v.average_bandwidth.unwrap() <= v.bandwidth));
    // One I-frame playlist per video rendition.
    assert_eq!(parsed.variants.iter().filter(|v| v.is_i_frame).count(), 3, "{text}");
    assert_eq!(parsed.alternatives.len(), 1);
    assert_eq!(parsed.alternatives[0].language.as_deref(), Some("en"));
    assert_eq!(parsed.alternatives[0].name, "English");

    // Renditions are cut at the same times: identical EXTINF lists.
    let mut extinfs = Vec::new();
    for v in ["v0", "v1", "v2"] {
        let p = get(s.edge, &format!("/vod/set/title.json/{v}.m3u8")).await.text();
        extinfs.push(p.lines().filter(|l| l.starts_with("#EXTINF")).map(str::to_owned).collect::<Vec<_>>());
    }
    assert!(extinfs.windows(2).all(|w| w[0] == w[1]));

    let dir = media();
    let base = format!("http://{}/vod/set/title.json", s.edge);
    for (id, file) in [("v0", "180p.mp4"), ("v1", "270p.mp4"), ("v2", "360p.mp4")] {
        let (url, src) = (format!("{base}/{id}.m3u8"), dir.join("set").join(file).to_str().unwrap().to_owned());
        let (expected, ours) = blocking(move || (framemd5(&src), framemd5(&url))).await.unwrap();
        assert_same_stream(&expected, &ours, "video", &format!("set {id}"));
    }
    let (url, src) = (format!("{base}/a0.m3u8"), dir.join("set/360p.mp4").to_str().unwrap().to_owned());
    let (expected, ours) = blocking(move || (framemd5(&src), framemd5(&url))).await.unwrap();
    assert_same_stream(&expected, &ours, "audio", "set a0");

    let mpd = get(s.edge, "/vod/set/title.json/manifest.mpd").await.text();
    assert_eq!(mpd.matches("<Representation id=\"v").count(), 3);
    assert!(mpd.contains("lang=\"en\""));
    let url = format!("{base}/manifest.mpd");
    let probe = blocking(move || probe_streams(&url)).await.unwrap();
    assert_eq!(probe["streams"].as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_get_clear_errors_and_the_server_stays_up() {
    let s = server().await;
    let cases = [
        ("/vod/mp4v.mp4/master.m3u8", 415, "unsupported codec 'mp4v'"),
        ("/vod/truncated.mp4/master.m3u8", 422, "truncated"),
        ("/vod/cut_moov.mp4/master.m3u8", 422, "truncated"),
        ("/vod/garbage.mp4/master.m3u8", 422, "not an MP4"),
        ("/vod/no_moov.mp4/manifest.mpd", 422, "no 'moov'"),
        ("/vod/zero_samples.mp4/master.m3u8", 422, "nothing to stream"),
        ("/vod/set/broken.json/master.m3u8", 422, "bad asset set"),
        ("/vod/set/missing.json/master.m3u8", 422, "nope.mp4 does not exist"),
        ("/vod/absent.mp4/master.m3u8", 404, "not found"),
        ("/vod/sample.mp4/v0/99.m4s", 404, "not found"),
        ("/vod/sample.mp4/v7.m3u8", 404, "not found"),
        ("/vod/sample.mp4/a0/0.m4s", 404, "not found"),
        ("/vod/sample.mp4/index.html", 404, "not found"),
    ];
    for (path, status, message) in cases {
        let r = get(s.edge, path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.text().contains(message), "{path}: {}", r.text());
        let cc = r.header("cache-control").unwrap();
        assert!(if status == 404 { cc == "public, max-age=1" } else { cc == "no-store" }, "{path}: {cc}");
    }
    // A second request for a broken file is answered from what was learnt, and still clearly.
    assert_eq!(get(s.edge, "/vod/mp4v.mp4/manifest.mpd").await.status, 415);
    assert_eq!(get(s.edge, "/vod/sample.mp4/master.m3u8").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_objects_are_cdn_friendly() {
    let s = server().await;
    let master = get(s.edge, "/vod/sample.mp4/master.m3u8").await;
    assert_eq!(master.header("content-type"), Some("application/vnd.apple.mpegurl"));
    assert_eq!(master.header("cache-control"), Some("public, max-age=86400"));
    let seg = get(s.edge, "/vod/sample.mp4/v0/2.m4s").await;
    assert_eq!(seg.status, 200);
    assert_eq!(seg.header("content-type"), Some("video/iso.segment"));
    assert_eq!(seg.header("cache-control"), Some("public, max-age=86400"));
    let init = get(s.edge, "/vod/sample.mp4/v0/init.mp4").await;
    assert_eq!(init.header("content-type"), Some("video/mp4"));

    let etag = seg.header("etag").unwrap().to_owned();
    assert_eq!(request(s.edge, "GET", "/vod/sample.mp4/v0/2.m4s", &[("If-None-Match", &etag)]).await.status, 304);
    let part = request(s.edge, "GET", "/vod/sample.mp4/v0/2.m4s", &[("Range", "bytes=0-99")]).await;
    assert_eq!((part.status, part.body.as_slice()), (206, &seg.body[..100]));
    let head = request(s.edge, "HEAD", "/vod/sample.mp4/v0/2.m4s", &[]).await;
    assert_eq!(head.header("content-length"), Some(seg.body.len().to_string().as_str()));
    let mpd = request(s.edge, "GET", "/vod/sample.mp4/manifest.mpd", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(mpd.header("content-encoding"), Some("gzip"));
    assert_eq!(mpd.header("vary"), Some("Accept-Encoding"));

    // The same bytes from a second server: validators are derived from content.
    let other = server().await;
    assert_eq!(get(other.edge, "/vod/sample.mp4/v0/2.m4s").await.header("etag"), Some(etag.as_str()));

    // With the segment cache off, segments are streamed from the source as they are sent (nothing
    // built in memory): the same bytes, the same validators, conditional requests and HEAD alike; a
    // range is answered from a built segment.
    let mut config = test_config();
    config.storage.root = media().to_owned();
    config.cache.bytes = estuary::config::ByteSize(0);
    let streaming = TestServer::start(config).await;
    for path in ["/vod/sample.mp4/v0/1.m4s", "/vod/sample.mp4/v0/2.m4s", "/vod/sample.mp4/a0/2.m4s"] {
        let cached = get(s.edge, path).await;
        let streamed = get(streaming.edge, path).await;
        assert_eq!(streamed.status, 200, "{path}");
        assert!(streamed.body == cached.body, "{path}: the streamed segment differs from the built one");
        assert_eq!(streamed.header("etag"), cached.header("etag"), "{path}");
        assert_eq!(streamed.header("content-length"), Some(cached.body.len().to_string().as_str()), "{path}");
        assert_eq!(streamed.header("cache-control"), cached.header("cache-control"), "{path}");
    }
    let path = "/vod/sample.mp4/v0/2.m4s";
    assert_eq!(request(streaming.edge, "GET", path, &[("If-None-Match", &etag)]).await.status, 304);
    let head = request(streaming.edge, "HEAD", path, &[]).await;
    assert_eq!((head.status, head.header("content-length")), (200, Some(seg.body.len().to_string().as_str())));
    assert!(head.body.is_empty());
    let part = request(streaming.edge, "GET", path, &[("Range", "bytes=100-199")]).await;
    assert_eq!((part.status, part.body.as_slice()), (206, &seg.body[100..200]));
    // Nothing kept, nothing precompressed: manifests go out as rendered (compressing every request
    // cost several times the rendering).
    let mpd = request(streaming.edge, "GET", "/vod/sample.mp4/manifest.mpd", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!((mpd.status, mpd.header("content-encoding")), (200, None));
    assert_eq!(mpd.body, get(s.edge, "/vod/sample.mp4/manifest.mpd").await.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_read_only_moov_and_segments_only_their_samples() {
    let local = Arc::new(LocalStorage::new(media()).unwrap());
    let counting = CountingStorage::new(local, std::time::Duration::ZERO);
    let mut config = test_config();
    config.storage.root = media().to_owned();
    let s = TestServer::start_with(config, Some(counting.clone())).await;

    for clip in ["sample.mp4", "moov_end.mp4"] {
        let size = std::fs::metadata(media().join(clip)).unwrap().len();
        assert_eq!(get(s.edge, &format!("/vod/{clip}/master.m3u8")).await.status, 200);
        // Indexing reads one 64 KiB probe at the start, then (when it is not in there) the moov itself.
        let index_bytes = counting.bytes_of(clip);
        let moov = top_level_box_size(&media().join(clip), b"moov");
        assert!(
            index_bytes <= 64 * 1024 + moov,
            "{clip}: indexing read {index_bytes} of {size} bytes (moov is {moov})"
        );

        let seg = get(s.edge, &format!("/vod/{clip}/v0/2.m4s")).await;
        assert_eq!(seg.status, 200);
        let seg_bytes = counting.bytes_of(clip) - index_bytes;
        let seg_len = seg.body.len() as u64;
        assert!(
            seg_bytes <= seg_len * 5 / 4 && seg_bytes * 2 < size,
            "{clip}: a {seg_len} byte segment read {seg_bytes} bytes of {size}"
        );

        // Concurrent requests for another segment build it once: as many reads as one request.
        let before = counting.reads_of(clip);
        assert_eq!(get(s.edge, &format!("/vod/{clip}/a0/2.m4s")).await.status, 200);
        let one = counting.reads_of(clip) - before;
        let purge = br#"{"prefix":"vod/"}"#;
        let purged = common::client::send_body(
            s.api,
            "POST",
            "/api/v1/cache/purge",
            &[("Content-Type", "application/json")],
            purge,
        )
        .await;
        assert_eq!(purged.status, 200);
        let before = counting.reads_of(clip);
        let edge = s.edge;
        let many: Vec<_> = (0..50)
            .map(|_| {
                let path = format!("/vod/{clip}/a0/2.m4s");
                tokio::spawn(async move { get(edge, &path).await })
            })
            .collect();
        let mut bodies = Vec::new();
        for r in many {
            bodies.push(r.await.unwrap().body);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
        let reads = counting.reads_of(clip) - before;
        assert_eq!(reads, one, "{clip}: 50 concurrent requests for one segment read storage as often as one request");
        assert_eq!(get(s.edge, &format!("/vod/{clip}/a0/2.m4s")).await.body, bodies[0]);
        assert_eq!(counting.reads_of(clip) - before, reads, "a cached segment reads nothing");
    }
}

fn top_level_box_size(path: &std::path::Path, kind: &[u8; 4]) -> u64 {
    let data = std::fs::read(path).unwrap();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        if &data[pos + 4..pos + 8] == kind {
            return size as u64;
        }
        pos += size.max(8);
    }
    panic!("no {kind:?} box");
}

#[tokio::test]
async fn golden_playlists_and_manifest_of_the_sample() {
    let s = TestServer::start(test_config()).await;
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (path, file) in [
        ("/vod/sample/sample.mp4/master.m3u8", "sample-master.m3u8"),
        ("/vod/sample/sample.mp4/v0.m3u8", "sample-v0.m3u8"),
        ("/vod/sample/sample.mp4/a0.m3u8", "sample-a0.m3u8"),
        ("/vod/sample/sample.mp4/manifest.mpd", "sample-manifest.mpd"),
    ] {
        let text = get(s.edge, path).await.text();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(golden.join(file), &text).unwrap();
        }
        let want = std::fs::read_to_string(golden.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} (run with UPDATE_GOLDEN=1)"));
        assert_eq!(text, want, "{path} differs from tests/golden/{file}");
        if path.ends_with(".m3u8") && !path.ends_with("master.m3u8") {
            let problems = estuary::packaging::manifest::rules::media_playlist_problems(&text);
            assert!(problems.is_empty(), "{path}: {problems:?}");
        }
    }
    // An independent parser agrees with what the golden files say.
    let master =
        m3u8_rs::parse_master_playlist_res(get(s.edge, "/vod/sample/sample.mp4/master.m3u8").await.body.as_slice())
            .unwrap();
    let (i_frames, variants): (Vec<_>, Vec<_>) = master.variants.iter().partition(|v| v.is_i_frame);
    assert_eq!((variants.len(), i_frames.len()), (1, 1));
    assert_eq!(variants[0].codecs.as_deref(), Some("avc1.64001e,mp4a.40.2"));
    assert_eq!(variants[0].frame_rate, Some(25.0));
    assert_eq!(i_frames[0].uri, "v0-iframes.m3u8");
    let media =
        m3u8_rs::parse_media_playlist_res(get(s.edge, "/vod/sample/sample.mp4/v0.m3u8").await.body.as_slice()).unwrap();
    assert_eq!(media.target_duration, 6);
    assert_eq!(media.segments.iter().map(|s| s.duration).collect::<Vec<_>>(), [6.0, 6.0, 4.0]);
    assert_eq!(media.segments[0].map.as_ref().map(|m| m.uri.as_str()), Some("v0/init.mp4"));
}
