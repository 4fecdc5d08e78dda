//! Low-latency live (issue 13) with ffmpeg's DASH muxer in streaming mode as the encoder (0.5 s
//! CMAF chunks, each segment uploaded with chunked transfer while it is encoded, HLS playlists beside
//! the MPD): whole segments for every player, LL-HLS parts listed while their segment is still
//! uploading, parts and blocking `_HLS_part` reloads served, delta playlists; the LL-DASH MPD and the
//! segment being uploaded sent as it is made.

mod common;

use std::time::{Duration, Instant};

use common::client::{Incoming, Reply, get};
use common::encoder::Encoder;
use common::live_push::create_channel;
use common::tools::probe_live;
use common::{TestServer, test_config_in};
use estuary::packaging::manifest::rules::media_playlist_problems;

const TOKEN: &str = "test-token-0123456789abcdef";

async fn live_channel(api: std::net::SocketAddr, id: &str) {
    create_channel(api, &format!(r#"{{"id":"{id}","token":"{TOKEN}","target_duration":"2s","window":"10s"}}"#)).await;
}

/// A server with channel `id` fed by the low-latency encoder for `seconds` (bind in this order:
/// the encoder stops first, the folder goes last).
async fn pushed_channel(id: &str, seconds: u32) -> (tempfile::TempDir, TestServer, Encoder) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    live_channel(s.api, id).await;
    let encoder = Encoder::start_low_latency(s.ingest, id, TOKEN, seconds);
    (dir, s, encoder)
}

/// The numbers in a part URI (`v0/{epoch}/{msn}.{part}.m4s`).
fn part_numbers(uri: &str) -> (u64, u32) {
    let name = uri.rsplit('/').next().unwrap();
    let mut numbers = name.split('.');
    (numbers.next().unwrap().parse().unwrap(), numbers.next().unwrap().parse().unwrap())
}

fn uri_of(line: &str) -> &str {
    line.split("URI=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_latency_dash_push_plays_as_hls_and_dash() {
    let (_dir, s, _encoder) = pushed_channel("final", 12).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let (video, audio) = loop {
        let master = get(s.edge, "/live/final/master.m3u8").await.text();
        let playlist = |id: &str| format!("/live/final/{id}.m3u8");
        let (v0, a0) = (get(s.edge, &playlist("v0")).await, get(s.edge, &playlist("a0")).await);
        let segments = |text: &str| text.matches("#EXTINF").count();
        if master.contains("#EXT-X-STREAM-INF") && segments(&v0.text()) >= 2 && segments(&a0.text()) >= 2 {
            break (v0.text(), a0.text());
        }
        assert!(Instant::now() < deadline, "no two segments in 30 s:\n{master}\n{}\n{}", v0.text(), a0.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for text in [&video, &audio] {
        assert_eq!(media_playlist_problems(text), Vec::<String>::new(), "{text}");
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert!(parsed.segments.iter().all(|seg| (seg.duration - 2.0).abs() < 0.1), "2 s segments: {text}");
        let first = &parsed.segments[0].uri;
        let segment = get(s.edge, &format!("/live/final/{first}")).await;
        assert_eq!((segment.status, segment.header("content-type")), (200, Some("video/iso.segment")));
    }
    // Delta playlists are offered; this 10 s window is shorter than their 12 s skip boundary, so
    // a delta request gets the whole playlist (the unit tests skip for real).
    assert!(video.contains("CAN-SKIP-UNTIL=12.000"), "{video}");
    let delta = get(s.edge, "/live/final/v0.m3u8?_HLS_skip=YES").await;
    assert_eq!(delta.status, 200);
    assert_eq!(media_playlist_problems(&delta.text()), Vec::<String>::new(), "{}", delta.text());
    for bad in ["_HLS_part=1", "_HLS_skip=no", "_HLS_msn=1&_HLS_part=x"] {
        assert_eq!(get(s.edge, &format!("/live/final/v0.m3u8?{bad}")).await.status, 400, "{bad}");
    }
    let mpd = get(s.edge, "/live/final/manifest.mpd").await;
    assert_eq!(mpd.status, 200);
    assert!(mpd.text().contains("type=\"dynamic\""), "{}", mpd.text());
    let url = format!("http://{}/live/final/master.m3u8", s.edge);
    let streams = tokio::task::spawn_blocking(move || probe_live(&url)).await.unwrap();
    let kinds: Vec<_> = streams["streams"].as_array().unwrap().iter().map(|s| s["codec_type"].clone()).collect();
    assert!(kinds.contains(&"video".into()) && kinds.contains(&"audio".into()), "{streams}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_listed_and_served_while_their_segment_uploads() {
    let (_dir, s, _encoder) = pushed_channel("ll", 16).await;

    // Parts of a segment no `EXTINF` lists yet: the segment is still being uploaded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = get(s.edge, "/live/ll/v0.m3u8").await.text();
        let after_last_segment = text.rsplit_once(".m4s\n").map_or("", |(_, tail)| tail);
        if after_last_segment.contains("#EXT-X-PART:") {
            break text;
        }
        assert!(Instant::now() < deadline, "no open parts in 30 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(media_playlist_problems(&text), Vec::<String>::new(), "{text}");
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=") && text.contains("PART-HOLD-BACK="), "{text}");
    assert!(text.contains("#EXT-X-RENDITION-REPORT:URI=\"a0.m3u8\""), "{text}");
    let last_extinf_msn = text.lines().filter(|l| l.ends_with(".m4s") && !l.starts_with('#')).count() as u64 - 1;
    let open: Vec<&str> =
        text.rsplit_once(".m4s\n").unwrap().1.lines().filter(|l| l.starts_with("#EXT-X-PART:")).collect();
    let (open_msn, _) = part_numbers(uri_of(open[0]));
    assert!(open_msn > last_extinf_msn, "{text}");
    assert!(open[0].contains("INDEPENDENT=YES"), "a segment's first part starts on its keyframe: {text}");

    // A listed part is an fMP4 fragment of the rendition.
    let part = get(s.edge, &format!("/live/ll/{}", uri_of(open[0]))).await;
    assert_eq!((part.status, part.header("content-type")), (200, Some("video/iso.segment")));
    assert_eq!(&part.body[4..8], b"styp");
    assert!(part.body.windows(4).any(|w| w == b"moof") && part.body.windows(4).any(|w| w == b"mdat"));

    // The hinted part, asked for before it exists, is held until it arrives; a blocking reload for
    // it is released with it.
    let hint = text.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:")).expect("a preload hint");
    let (msn, next) = part_numbers(uri_of(hint));
    let blocked = format!("/live/ll/v0.m3u8?_HLS_msn={msn}&_HLS_part={next}");
    let hinted = format!("/live/ll/{}", uri_of(hint));
    let (held, reload): (Reply, Reply) = tokio::join!(get(s.edge, &hinted), get(s.edge, &blocked));
    assert_eq!(held.status, 200, "{}", held.text());
    assert_eq!(reload.status, 200);
    assert!(reload.text().contains(&format!("/{msn}.{next}.m4s\"")), "{}", reload.text());
    assert_eq!(media_playlist_problems(&reload.text()), Vec::<String>::new());

    // The segment, once whole, lists the parts it was made of; a part that never was is 404.
    let whole = loop {
        let text = get(s.edge, "/live/ll/v0.m3u8").await.text();
        if text.contains(&format!("/{open_msn}.m4s\n")) {
            break text;
        }
        assert!(Instant::now() < deadline + Duration::from_secs(10), "segment {open_msn} never listed:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let before_segment = whole.split(&format!("/{open_msn}.m4s\n")).next().unwrap();
    assert!(before_segment.contains(&format!("/{open_msn}.0.m4s\"")), "{whole}");
    let epoch = uri_of(open[0]).split('/').nth(1).unwrap().to_owned();
    assert_eq!(get(s.edge, &format!("/live/ll/v0/{epoch}/{open_msn}.9.m4s")).await.status, 404);
    // The whole segment is its parts, one after the other (one `styp`, then each `moof` + `mdat`).
    let listed = before_segment.matches(&format!("/{open_msn}.")).count();
    let mut parts = Vec::new();
    for i in 0..listed {
        let part = get(s.edge, &format!("/live/ll/v0/{epoch}/{open_msn}.{i}.m4s")).await;
        assert_eq!(part.status, 200);
        let styp = if i == 0 { 0 } else { u32::from_be_bytes(part.body[..4].try_into().unwrap()) as usize };
        parts.extend_from_slice(&part.body[styp..]);
    }
    let segment = get(s.edge, &format!("/live/ll/v0/{epoch}/{open_msn}.m4s")).await;
    assert!(listed >= 3, "{whole}");
    assert!(segment.body == parts, "segment {open_msn} is not the concatenation of its {listed} parts");

    // The channel API and the metrics give each part's delay from ingest to publication, and how far
    // the live edge is behind the clock.
    let channel: serde_json::Value = serde_json::from_slice(&get(s.api, "/api/v1/channels/ll").await.body).unwrap();
    let parts = &channel["part_publish_latency"];
    assert!(parts["samples"].as_u64().unwrap() >= listed as u64, "{channel}");
    assert!(parts["p99_ms"].as_f64().unwrap() <= parts["max_ms"].as_f64().unwrap(), "{channel}");
    let age = channel["live_edge_age_ms"].as_u64().expect("a live channel has an edge age");
    // The edge moves one 0.52 s part at a time; a few seconds behind would mean parts are not counted.
    assert!(age < 5_000, "{channel}");
    let metrics = get(s.api, "/metrics").await.text();
    for sample in [
        "estuary_live_part_publish_seconds{channel=\"ll\",quantile=\"0.99\"} ",
        "estuary_live_segment_publish_seconds{channel=\"ll\",quantile=\"0.5\"} ",
        "estuary_live_edge_age_seconds{channel=\"ll\"} ",
    ] {
        assert!(metrics.contains(sample), "{sample} missing:\n{metrics}");
    }
}

/// A representation's segment numbers in a live MPD: the first and the last its timeline lists.
fn numbers_of(mpd: &str, id: &str) -> (u64, u64) {
    let doc = roxmltree::Document::parse(mpd).unwrap();
    let rep = doc.descendants().find(|n| n.has_tag_name("Representation") && n.attribute("id") == Some(id)).unwrap();
    let template = rep.children().find(|n| n.has_tag_name("SegmentTemplate")).unwrap();
    let first: u64 = template.attribute("startNumber").unwrap().parse().unwrap();
    let count: u64 = template
        .descendants()
        .filter(|n| n.has_tag_name("S"))
        .map(|s| 1 + s.attribute("r").map_or(0, |r| r.parse::<u64>().unwrap()))
        .sum();
    (first, first + count - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ll_dash_sends_the_segment_being_uploaded_as_it_is_made() {
    let (_dir, s, _encoder) = pushed_channel("lld", 20).await;

    // Wait for a segment's first part: the rest of the segment is still to be encoded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (epoch, msn) = loop {
        let text = get(s.edge, "/live/lld/v0.m3u8").await.text();
        if let Some(hint) = text.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:")) {
            let (msn, part) = part_numbers(uri_of(hint));
            let msn = if part == 0 { msn } else { msn + 1 };
            let reload = get(s.edge, &format!("/live/lld/v0.m3u8?_HLS_msn={msn}&_HLS_part=0")).await;
            let second = format!("/{msn}.1.m4s\"");
            let listed = |l: &str| l.starts_with("#EXT-X-PART:") && l.contains(&second);
            if reload.status == 200 && !reload.text().lines().any(listed) {
                break (uri_of(hint).split('/').nth(1).unwrap().to_owned(), msn);
            }
        }
        assert!(Instant::now() < deadline, "no segment caught at its first part in 30 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The MPD is low latency and announces that segment.
    let mpd = get(s.edge, "/live/lld/manifest.mpd").await.text();
    for attribute in [
        "availabilityTimeOffset=\"1.",
        "availabilityTimeComplete=\"false\"",
        "<ServiceDescription id=\"0\">",
        "<Latency referenceId=\"0\" target=\"",
        "<ProducerReferenceTime id=\"0\" type=\"encoder\" wallClockTime=",
        "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\"",
    ] {
        assert!(mpd.contains(attribute), "{attribute} missing:\n{mpd}");
    }
    assert_eq!(numbers_of(&mpd, "v0").1, msn, "the segment being uploaded is the last announced:\n{mpd}");

    // Its first chunk arrives while the encoder is still making it (no playlist lists it yet).
    let path = format!("/live/lld/v0/{epoch}/{msn}.m4s");
    let mut incoming = Incoming::get(s.edge, &path).await;
    incoming.first_body_bytes(64).await;
    let playlist = get(s.edge, "/live/lld/v0.m3u8").await.text();
    assert!(!playlist.contains(&format!("/{msn}.m4s\n")), "segment {msn} was already whole:\n{playlist}");
    let streamed = incoming.finish().await.unwrap();
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
    assert!(streamed.header("cache-control").is_some_and(|c| c.contains("max-age")), "{:?}", streamed.headers);
    assert_eq!(&streamed.body[4..8], b"styp");
    // The body is the segment committed afterwards, byte for byte.
    let whole = get(s.edge, &path).await;
    assert_eq!(whole.status, 200);
    assert!(
        whole.body == streamed.body,
        "the streamed body ({} bytes) is not the segment ({} bytes)",
        streamed.body.len(),
        whole.body.len()
    );
    assert!(whole.header("content-length").is_some());
}

/// In a cluster, a pod that follows the channel lists the parts the owner holds and serves them from
/// the owner's memory (so a CDN may send any part request to any pod); its MPD stays classic, and a
/// request for the segment the owner's MPD announces is answered once the segment is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_pod_lists_and_serves_the_owners_parts() {
    let cluster = common::cluster::Cluster::start(2, &[]);
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    live_channel(a.api, "cup").await;
    let _encoder = Encoder::start_low_latency(a.ingest.unwrap(), "cup", TOKEN, 30);

    let deadline = Instant::now() + Duration::from_secs(40);
    let (text, part_uri) = loop {
        let text = get(b.edge, "/live/cup/v0.m3u8").await.text();
        if let Some(line) = text.lines().rev().find(|l| l.starts_with("#EXT-X-PART:")) {
            break (text.clone(), uri_of(line).to_owned());
        }
        assert!(Instant::now() < deadline, "pod B never listed parts:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(media_playlist_problems(&text), Vec::<String>::new(), "{text}");
    assert!(text.contains("#EXT-X-PRELOAD-HINT:") && text.contains("PART-HOLD-BACK="), "{text}");
    let (from_b, from_a) =
        (get(b.edge, &format!("/live/cup/{part_uri}")).await, get(a.edge, &format!("/live/cup/{part_uri}")).await);
    assert_eq!((from_b.status, from_a.status), (200, 200), "{part_uri}");
    assert!(from_b.body == from_a.body, "the same part from both pods");
    // The owner's internal listener gives the part; a part it never had is 404 on B.
    let internal = get(a.internal.unwrap(), &format!("/internal/v1/live/cup/{part_uri}")).await;
    assert!(internal.status == 200 && internal.body == from_a.body);
    let (msn, _) = part_numbers(&part_uri);
    let epoch = part_uri.split('/').nth(1).unwrap();
    assert_eq!(get(b.edge, &format!("/live/cup/v0/{epoch}/{msn}.9.m4s")).await.status, 404);

    // A's MPD is LL-DASH; B's is classic, and B answers A's announced segment once it is whole.
    let mpd_a = get(a.edge, "/live/cup/manifest.mpd").await.text();
    let mpd_b = get(b.edge, "/live/cup/manifest.mpd").await.text();
    assert!(mpd_a.contains("availabilityTimeComplete=\"false\""), "{mpd_a}");
    assert!(!mpd_b.contains("availabilityTimeOffset"), "{mpd_b}");
    let (_, announced) = numbers_of(&mpd_a, "v0");
    let path = format!("/live/cup/v0/{epoch}/{announced}.m4s");
    let (on_b, on_a) = tokio::join!(get(b.edge, &path), get(a.edge, &path));
    assert_eq!((on_b.status, on_a.status), (200, 200), "{path}");
    assert!(on_b.body == on_a.body, "segment {announced}: B's whole segment is what A streamed");
}
