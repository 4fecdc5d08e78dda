//! Live end to end with a real encoder: ffmpeg pushes HLS (two variants, 2 s GOPs) in real time while
//! players (ffprobe, ffmpeg, plain HTTP) read the live HLS and DASH.

mod common;

use std::time::{Duration, Instant};

use common::client::{get, request, send_body};
use common::encoder::{Encoder, Push};
use common::live_push::{sample_hls as asset, sample_playlist as playlist};
use common::tools::probe_live;
use common::{TestServer, test_config};

const TOKEN: &str = "test-token-0123456789abcdef";

async fn create_channel(api: std::net::SocketAddr, id: &str, extra: &str) -> serde_json::Value {
    let body = format!(r#"{{"id":"{id}","token":"{TOKEN}","target_duration":"2s","window":"10s"{extra}}}"#);
    let r = send_body(api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body.as_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// (media sequence, segment URIs) of a media playlist.
fn parse_media(text: &str) -> m3u8_rs::MediaPlaylist {
    m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}: {text}"))
}

/// Polls `path` until `ready` says yes.
async fn wait_for(edge: std::net::SocketAddr, path: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let r = get(edge, path).await;
        if r.status == 200 && ready(&r.text()) {
            return r.text();
        }
        assert!(Instant::now() < deadline, "{path} not ready in {limit:?}: {} {}", r.status, r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn last_msn(p: &m3u8_rs::MediaPlaylist) -> u64 {
    p.media_sequence + p.segments.len() as u64 - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_fmp4_push_plays_live_with_blocking_reload_then_as_vod() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    let s = TestServer::start(config).await;
    let channel = create_channel(s.api, "news", "").await;
    assert!(channel["ingest_url"].as_str().unwrap().ends_with(&format!("/ingest/news/{TOKEN}/")));
    let encoder = Encoder::start(s.ingest, "news", TOKEN, Push { seconds: 24, ..Push::default() });

    let first =
        wait_for(s.edge, "/live/news/v0.m3u8", Duration::from_secs(25), |t| parse_media(t).segments.len() >= 2).await;
    let first = parse_media(&first);
    assert!(first.segments.iter().all(|seg| (seg.duration.round() as u64) <= first.target_duration));
    let master = get(s.edge, "/live/news/master.m3u8").await;
    assert_eq!(master.header("cache-control"), Some("public, max-age=5"));
    let parsed = m3u8_rs::parse_master_playlist_res(&master.body).unwrap();
    assert_eq!(parsed.variants.len(), 2, "{}", master.text());
    assert!(parsed.variants[0].codecs.as_deref().unwrap().starts_with("avc1."));
    assert_eq!(parsed.alternatives.len(), 1);

    // Blocking reload: many requests for the next segment, all released by its arrival.
    let current = parse_media(&get(s.edge, "/live/news/v0.m3u8").await.text());
    let next = last_msn(&current) + 1;
    let too_far = get(s.edge, &format!("/live/news/v0.m3u8?_HLS_msn={}", next + 5)).await;
    assert_eq!(too_far.status, 400);
    let asked = Instant::now();
    let edge = s.edge;
    let blocked: Vec<_> = (0..60)
        .map(|i| {
            let r = ["v0", "v1", "a0"][i % 3];
            tokio::spawn(async move {
                let reply = get(edge, &format!("/live/news/{r}.m3u8?_HLS_msn={next}")).await;
                (reply, Instant::now())
            })
        })
        .collect();
    let mut done = Vec::new();
    for b in blocked {
        let (reply, at) = b.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(last_msn(&parse_media(&reply.text())) >= next);
        done.push(at.duration_since(asked));
    }
    done.sort();
    eprintln!(
        "blocking reload: 60 requests for msn {next} released between {:?} and {:?} after they were sent",
        done[0],
        done[done.len() - 1]
    );
    let metrics = get(s.api, "/metrics").await.text();
    let released: f64 = metrics
        .lines()
        .find(|l| l.starts_with("estuary_live_blocked_released_total"))
        .and_then(|l| l.split(' ').nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(released >= 60.0, "{released}");

    // Real players read the live HLS and DASH.
    for path in ["/live/news/master.m3u8", "/live/news/manifest.mpd"] {
        let url = format!("http://{}{path}", s.edge);
        let probe = tokio::task::spawn_blocking(move || probe_live(&url)).await.unwrap();
        assert!(probe["streams"].as_array().unwrap().len() >= 2, "{path}: {probe}");
    }
    let mpd = get(s.edge, "/live/news/manifest.mpd").await.text();
    for needle in [
        "type=\"dynamic\"",
        "availabilityStartTime",
        "publishTime",
        "minimumUpdatePeriod",
        "timeShiftBufferDepth",
        "UTCTiming",
        "SegmentTimeline",
    ] {
        assert!(mpd.contains(needle), "{needle}: {mpd}");
    }

    // The window slides, the media sequence only goes up, and every listed segment is there.
    let mut sequences = Vec::new();
    for _ in 0..4 {
        for r in ["v0", "v1", "a0"] {
            let reply = get(s.edge, &format!("/live/news/{r}.m3u8")).await;
            assert_eq!(reply.header("cache-control"), Some("public, max-age=1"));
            let p = parse_media(&reply.text());
            if r == "v0" {
                sequences.push(p.media_sequence);
            }
            for seg in &p.segments {
                let got = get(s.edge, &format!("/live/news/{}", seg.uri)).await;
                assert_eq!(got.status, 200, "{r}: {}", seg.uri);
                assert_eq!(got.header("content-type"), Some("video/iso.segment"));
                assert_eq!(got.header("cache-control"), Some("public, max-age=1209600, immutable"));
            }
            let init = p.segments[0].map.as_ref().unwrap().uri.clone();
            assert_eq!(get(s.edge, &format!("/live/news/{init}")).await.status, 200);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(sequences.windows(2).all(|w| w[0] <= w[1]), "{sequences:?}");
    assert!(sequences.last() > sequences.first(), "the window slid: {sequences:?}");
    let p = parse_media(&get(s.edge, "/live/news/v0.m3u8").await.text());
    let epoch = p.segments[0].uri.split('/').nth(1).unwrap().to_owned();
    let future = get(s.edge, &format!("/live/news/v0/{epoch}/{}.m4s", last_msn(&p) + 3)).await;
    assert_eq!((future.status, future.header("cache-control")), (404, Some("public, max-age=1")));

    let view: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/channels/news").await.body).unwrap();
    let latency = &view["publish_latency"];
    eprintln!(
        "upload to playlist: median {} ms, p99 {} ms, max {} ms over {} segments",
        latency["median_ms"], latency["p99_ms"], latency["max_ms"], latency["samples"]
    );
    assert!(latency["samples"].as_u64().unwrap() > 10);
    // fMP4 tracks pushed in one variant are served as renditions of their own: none is muxed, and
    // each is named for what it is.
    for r in view["renditions"].as_array().unwrap() {
        assert_eq!(r["muxed"], false, "{r}");
        let name = r["name"].as_str().unwrap();
        match r["kind"].as_str().unwrap() {
            "video" => assert!(name.ends_with('p'), "{r}"),
            _ => assert_ne!(name, "Video", "{r}"),
        }
    }

    // The encoder finishes; the operator stops the channel.
    tokio::task::spawn_blocking(move || encoder.wait()).await.unwrap();
    let stop = send_body(s.api, "POST", "/api/v1/channels/news/stop", &[], b"").await;
    assert_eq!(stop.status, 200);
    let ended = get(s.edge, "/live/news/v0.m3u8").await.text();
    assert!(ended.ends_with("#EXT-X-ENDLIST\n"), "{ended}");
    assert!(get(s.edge, "/live/news/manifest.mpd").await.text().contains("type=\"static\""));
    let refused = request(
        s.ingest,
        "PUT",
        "/ingest/news/v0/index.m3u8",
        &[("Authorization", &format!("Bearer {TOKEN}")), ("Content-Length", "0")],
    )
    .await;
    assert_eq!(refused.status, 409);

    // The recorded event plays as VOD, from the first segment, with every video frame.
    let url = format!("http://{}/live/news/master.m3u8?start=0", s.edge);
    let recording = tokio::task::spawn_blocking(move || common::compare::framemd5(&url)).await.unwrap();
    let (_, video) = &recording.streams["video"];
    eprintln!("recording: {} video packets", video.len());
    assert!(video.len() >= 20 * 25, "a 24 s push recorded at least 20 s of video: {}", video.len());
    // And it was written through to storage.
    let stored = common::files_below(&dir.path().join("live/news")).iter().filter(|p| p.ends_with(".m4s")).count();
    assert!(stored >= 30, "{stored} segment files in storage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mpegts_push_serves_live_hls() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    let s = TestServer::start(config).await;
    create_channel(s.api, "ts", "").await;
    let _encoder = Encoder::start(s.ingest, "ts", TOKEN, Push { seconds: 14, ts: true, ..Push::default() });
    let text =
        wait_for(s.edge, "/live/ts/v0.m3u8", Duration::from_secs(25), |t| parse_media(t).segments.len() >= 2).await;
    let p = parse_media(&text);
    assert!(p.segments.iter().all(|seg| seg.uri.ends_with(".ts") && seg.map.is_none()));
    let seg = get(s.edge, &format!("/live/ts/{}", p.segments[0].uri)).await;
    assert_eq!((seg.status, seg.header("content-type")), (200, Some("video/mp2t")));
    let master = get(s.edge, "/live/ts/master.m3u8").await.text();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2, "{master}");
    // What the streams are, read from their first segments: codecs (video, then the audio muxed
    // in) and picture size.
    for line in master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")) {
        assert!(line.contains("CODECS=\"avc1.") && line.contains(",mp4a.40.2\""), "{master}");
        assert!(line.contains(",RESOLUTION="), "{master}");
    }
    let url = format!("http://{}/live/ts/master.m3u8", s.edge);
    tokio::task::spawn_blocking(move || probe_live(&url)).await.unwrap();
    let mpd = get(s.edge, "/live/ts/manifest.mpd").await;
    assert_eq!(mpd.status, 404);
    assert!(mpd.text().contains("DASH needs fMP4"), "the answer says why: {}", mpd.text());
    let view: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/channels/ts").await.body).unwrap();
    for r in view["renditions"].as_array().unwrap() {
        assert_eq!(r["muxed"], true, "TS carries its audio in the video: {r}");
        assert!(r["name"].as_str().unwrap().ends_with('p'), "{r}");
    }
    // Trick play: each variant's keyframes (2 s GOPs) as byte ranges of its segments, after the
    // segment's PAT and PMT; ffprobe decodes each to exactly one picture.
    let i_frame_lines: Vec<&str> = master.lines().filter(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:")).collect();
    assert_eq!(i_frame_lines.len(), 2, "{master}");
    assert!(i_frame_lines[0].contains("CODECS=\"avc1.") && !i_frame_lines[0].contains("mp4a"), "{master}");
    assert!(i_frame_lines.iter().any(|l| l.ends_with("URI=\"v0-iframes.m3u8\"")), "{master}");
    let playlist = get(s.edge, "/live/ts/v0-iframes.m3u8").await.text();
    assert!(playlist.contains("#EXT-X-I-FRAMES-ONLY\n") && !playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let problems = estuary::packaging::manifest::rules::media_playlist_problems(&playlist);
    assert!(problems.is_empty(), "{problems:?}");
    let lines: Vec<&str> = playlist.lines().collect();
    let map_uri = lines.iter().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).unwrap().split('"').next().unwrap();
    // ffmpeg opens each segment with an SDT, the PAT and the PMT: three packets.
    assert!(playlist.contains(&format!("#EXT-X-MAP:URI=\"{map_uri}\",BYTERANGE=\"564@0\"")), "{playlist}");
    let map = request(s.edge, "GET", &format!("/live/ts/{map_uri}"), &[("Range", "bytes=0-563")]).await;
    assert_eq!(map.status, 206);
    let mut frames = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(range) = l.strip_prefix("#EXT-X-BYTERANGE:") else { continue };
        let (len, offset) = range.split_once('@').unwrap();
        let (len, offset): (u64, u64) = (len.parse().unwrap(), offset.parse().unwrap());
        let bytes = format!("bytes={offset}-{}", offset + len - 1);
        let part = request(s.edge, "GET", &format!("/live/ts/{}", lines[i + 1]), &[("Range", bytes.as_str())]).await;
        assert_eq!((part.status, part.body.len() as u64), (206, len));
        let file = dir.path().join(format!("iframe-{i}.ts"));
        std::fs::write(&file, [map.body.as_slice(), &part.body].concat()).unwrap();
        let path = file.to_str().unwrap().to_owned();
        let out = tokio::task::spawn_blocking(move || {
            let args =
                ["-v", "error", "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames"];
            common::tools::run("ffprobe", &[&args[..], &["-of", "csv=p=0", &path]].concat())
        })
        .await
        .unwrap();
        let count = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_owned();
        assert_eq!(count, "1", "{} {range}: one picture", lines[i + 1]);
        frames += 1;
    }
    assert!(frames >= 2, "{playlist}");
    // Each keyframe lasts until the next: the 2 s GOP.
    let durations: Vec<f64> = parse_media(&playlist).segments.iter().map(|s| f64::from(s.duration)).collect();
    assert!(durations.iter().all(|d| (d - 2.0).abs() < 0.05), "{playlist}");
    assert_eq!(get(s.edge, "/live/ts/a0-iframes.m3u8").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_refuses_what_it_must_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    config.ingest.max_body_bytes = estuary::config::ByteSize(1 << 20);
    let s = TestServer::start(config).await;
    create_channel(s.api, "news", "").await;
    let auth = format!("Bearer {TOKEN}");
    let put = |path: &'static str, body: Vec<u8>, auth: Option<String>| {
        let ingest = s.ingest;
        async move {
            let mut headers = vec![];
            if let Some(a) = &auth {
                headers.push(("Authorization", a.as_str()));
            }
            send_body(ingest, "PUT", path, &headers, &body).await
        }
    };

    let r = put("/ingest/news/v0/init.mp4", asset("init.mp4"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"estuary ingest\""));
    assert_eq!(
        put("/ingest/news/v0/init.mp4", asset("init.mp4"), Some("Bearer wrong-token-xxxxxxxx".into())).await.status,
        401
    );
    // Whether a channel exists is told to no one without its key.
    assert_eq!(put("/ingest/nope/v0/init.mp4", asset("init.mp4"), Some(auth.clone())).await.status, 401);

    assert_eq!(put("/ingest/news/v0/init.mp4", asset("init.mp4"), Some(auth.clone())).await.status, 201);
    assert_eq!(put("/ingest/news/v0/seg_000.m4s", asset("seg_000.m4s"), Some(auth.clone())).await.status, 201);
    assert_eq!(put("/ingest/news/v0/index.m3u8", playlist(&["seg_000.m4s"]), Some(auth.clone())).await.status, 201);
    let before = get(s.edge, "/live/news/v0.m3u8").await.text();
    assert_eq!(parse_media(&before).segments.len(), 1);

    // Garbage instead of a segment: refused, and the playlist that lists it changes nothing.
    let garbage =
        put("/ingest/news/v0/seg_001.m4s", b"this is not an fMP4 segment at all".repeat(100), Some(auth.clone())).await;
    assert_eq!(garbage.status, 422, "{}", garbage.text());
    assert_eq!(
        put("/ingest/news/v0/index.m3u8", playlist(&["seg_000.m4s", "seg_001.m4s"]), Some(auth.clone())).await.status,
        201
    );
    assert_eq!(get(s.edge, "/live/news/v0.m3u8").await.text(), before);
    assert_eq!(put("/ingest/news/v0/index.m3u8", b"not a playlist".to_vec(), Some(auth.clone())).await.status, 422);

    let big = put("/ingest/news/v0/seg_002.m4s", vec![0u8; 2 << 20], Some(auth.clone())).await;
    assert_eq!(big.status, 413);
    assert_eq!(put("/ingest/news/notes.txt", b"hello".to_vec(), Some(auth.clone())).await.status, 415);
    assert_eq!(put("/ingest/news/../escape.m4s", asset("seg_000.m4s"), Some(auth.clone())).await.status, 400);

    let delete = request(s.ingest, "DELETE", "/ingest/news/v0/seg_000.m4s", &[("Authorization", auth.as_str())]).await;
    assert_eq!(delete.status, 204);
    assert_eq!(
        get(s.edge, "/live/news/v0.m3u8").await.text(),
        before,
        "deleting an old upload does not shrink our window"
    );
}

/// A channel deleted and created again under the same id gets playlists of its own at once, never
/// one the cache rendered for the one before (they were cached by version, and the new channel's
/// versions counted the same way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_created_again_never_gets_the_playlists_of_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.storage.root = dir.path().to_owned();
    let s = TestServer::start(config).await;
    let prefix = format!("/ingest/again/{TOKEN}/v0");
    let mut uris = Vec::new();
    for round in 0..2 {
        create_channel(s.api, "again", "").await;
        common::live_push::push_sample(s.ingest, &prefix, &[], 201).await;
        let p = parse_media(&get(s.edge, "/live/again/v0.m3u8").await.text());
        let uri = p.segments[0].uri.clone();
        assert_eq!(get(s.edge, &format!("/live/again/{uri}")).await.status, 200, "round {round}: {uri}");
        uris.push(uri);
        let deleted = request(s.api, "DELETE", "/api/v1/channels/again?purge=true", &[]).await;
        assert_eq!(deleted.status, 204);
        // Epochs are numbered from the clock in milliseconds: the next channel's differs.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_ne!(uris[0], uris[1], "each channel's own segment URLs");
}
