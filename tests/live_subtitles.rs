//! Live subtitles: an encoder pushes a WebVTT subtitle rendition beside its video (as ffmpeg's HLS
//! muxer or a caption inserter does: `.vtt` segments, their playlist, and a master playlist that
//! names the group). The channel offers it as `s0` in its master's `SUBTITLES` group, on the same
//! sequence numbers as the video, and serves the segments as pushed; DASH leaves it out.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{get, send_body};
use common::cluster::Cluster;
use common::live_push::{create_channel, sample_hls, sample_playlist};
use common::{TestServer, test_config_in};

const TOKEN: &str = "subtitle-key-0123456789abcdef";

/// The encoder's WebVTT segment `n` (4 s from `4 n`): one cue at 0.5 s into it.
fn vtt_segment(n: u64) -> String {
    let start = n * 4000 + 500;
    let ts = |ms: u64| format!("00:{:02}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000);
    format!(
        "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n{} --> {}\nSous-titre {n}\n",
        ts(start),
        ts(start + 2000)
    )
}

fn vtt_playlist(count: u64) -> String {
    let mut p = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n".to_owned();
    for n in 0..count {
        p.push_str(&format!("#EXTINF:4.0,\nfr_{n:03}.vtt\n"));
    }
    p
}

const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
    #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Fran\u{e7}ais\",LANGUAGE=\"fr\",DEFAULT=NO,URI=\"subs/fr.m3u8\"\n\
    #EXT-X-STREAM-INF:BANDWIDTH=600000,CODECS=\"avc1.64001e,mp4a.40.2\",SUBTITLES=\"subs\"\nv0/index.m3u8\n";

const SETTINGS: &str = r#""target_duration":"4s","window":"60s""#;

/// Pushes the master, three video segments and three subtitle segments, as an encoder would.
async fn push(ingest: SocketAddr) {
    let put = |path: String, body: Vec<u8>| async move {
        let r = send_body(ingest, "PUT", &format!("/ingest/subs/{TOKEN}/{path}"), &[], &body).await;
        assert_eq!(r.status, 201, "PUT {path}: {}", r.text());
    };
    put("master.m3u8".into(), MASTER.as_bytes().to_vec()).await;
    put("v0/init.mp4".into(), sample_hls("init.mp4")).await;
    let names = ["seg_000.m4s", "seg_001.m4s", "seg_002.m4s"];
    for (n, name) in names.iter().enumerate() {
        put(format!("v0/{name}"), sample_hls(name)).await;
        put("v0/index.m3u8".into(), sample_playlist(&names[..=n])).await;
        put(format!("subs/fr_{n:03}.vtt"), vtt_segment(n as u64).into_bytes()).await;
        put("subs/fr.m3u8".into(), vtt_playlist(n as u64 + 1).into_bytes()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_subtitle_rendition_is_offered_beside_the_video() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(test_config_in(dir.path())).await;
    create_channel(s.api, &format!(r#"{{"id":"subs","token":"{TOKEN}",{SETTINGS}}}"#)).await;
    push(s.ingest).await;
    // Not WebVTT: refused, and nothing is lost.
    let bad = send_body(s.ingest, "PUT", &format!("/ingest/subs/{TOKEN}/subs/x.vtt"), &[], b"1\n00:00:01,000").await;
    assert_eq!(bad.status, 422, "{}", bad.text());

    let master = get(s.edge, "/live/subs/master.m3u8").await.text();
    assert!(
        master.contains(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Fran\u{e7}ais\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"s0.m3u8\""
        ),
        "{master}"
    );
    let parsed = m3u8_rs::parse_master_playlist_res(master.as_bytes()).unwrap();
    assert!(parsed.variants.iter().all(|v| v.subtitles.as_deref() == Some("subs")), "{master}");

    // The subtitle playlist: the video's sequence numbers and times, WebVTT segments, no map.
    let video = m3u8_rs::parse_media_playlist_res(get(s.edge, "/live/subs/v0.m3u8").await.body.as_slice()).unwrap();
    let text = get(s.edge, "/live/subs/s0.m3u8").await.text();
    let subs = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
    assert_eq!((subs.media_sequence, subs.segments.len()), (video.media_sequence, 3), "{text}");
    assert!(!text.contains("EXT-X-MAP"), "{text}");
    for (sub, vid) in subs.segments.iter().zip(&video.segments) {
        assert_eq!(sub.program_date_time, vid.program_date_time);
        assert!(sub.uri.ends_with(".vtt"), "{text}");
    }
    let problems = estuary::packaging::manifest::rules::media_playlist_problems(&text);
    assert!(problems.is_empty(), "{problems:?}");
    for (n, seg) in subs.segments.iter().enumerate() {
        let reply = get(s.edge, &format!("/live/subs/{}", seg.uri)).await;
        assert_eq!(reply.status, 200, "{}", seg.uri);
        assert_eq!(reply.header("content-type"), Some("text/vtt"));
        assert_eq!(reply.text(), vtt_segment(n as u64), "one session: the encoder's timestamp map as it was");
    }
    // A subtitle URI with a media container is no object; the MPD offers no text (DASH has no WebVTT
    // segments) and is otherwise as before.
    let wrong = subs.segments[0].uri.replace(".vtt", ".m4s");
    assert_eq!(get(s.edge, &format!("/live/subs/{wrong}")).await.status, 404);
    let mpd = get(s.edge, "/live/subs/manifest.mpd").await.text();
    assert!(mpd.contains("contentType=\"video\"") && !mpd.contains("contentType=\"text\""), "{mpd}");
    // The API names it.
    let api = get(s.api, "/api/v1/channels/subs").await;
    let channel: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    let renditions = channel["renditions"].as_array().unwrap();
    let s0 = renditions.iter().find(|r| r["id"] == "s0").unwrap_or_else(|| panic!("{channel}"));
    assert_eq!((s0["kind"].as_str(), s0["language"].as_str()), (Some("text"), Some("fr")), "{s0}");
}

/// Any pod serves the subtitles the owner took: the same playlist and segments, from storage.
#[tokio::test(flavor = "multi_thread")]
async fn another_pod_serves_the_subtitles() {
    let cluster = Cluster::start(2, &[]);
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    create_channel(a.api, &format!(r#"{{"id":"subs","token":"{TOKEN}",{SETTINGS}}}"#)).await;
    push(a.ingest.unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let on_b = loop {
        let r = get(b.edge, "/live/subs/s0.m3u8").await;
        if r.status == 200 && r.text().matches("#EXTINF").count() == 3 {
            break r.text();
        }
        assert!(Instant::now() < deadline, "pod B never listed the subtitles: {} {}", r.status, r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let master = get(b.edge, "/live/subs/master.m3u8").await.text();
    assert!(master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"fr\""), "{master}");
    let subs = m3u8_rs::parse_media_playlist_res(on_b.as_bytes()).unwrap();
    for (n, seg) in subs.segments.iter().enumerate() {
        let reply = get(b.edge, &format!("/live/subs/{}", seg.uri)).await;
        assert_eq!((reply.status, reply.text()), (200, vtt_segment(n as u64)), "{}", seg.uri);
    }
}
