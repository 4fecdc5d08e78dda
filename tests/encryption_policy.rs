//! Encryption by policy besides the config's prefixes: an asset set that says `"encrypted": true`
//! and a channel made with `"encrypted": true` are served encrypted wherever they lie (and decrypt
//! to the clear media), their keys given by the licence server; what does not say so stays clear;
//! and with no key configured, such an asset is 503 and such a channel cannot be made, never
//! served clear.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::client::{get, send_body};
use common::compare::framemd5_decrypted;
use common::encoder::Encoder;
use common::live_push::create_channel;
use common::media::media;
use common::{TestServer, test_config_in};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const KID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEY: &str = "00112233445566778899aabbccddeeff";

fn storage_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("titles")).unwrap();
    std::fs::copy(media().join("bframes.mp4"), dir.path().join("titles/bframes.mp4")).unwrap();
    let set = |encrypted: bool| {
        format!(r#"{{"video": ["bframes.mp4"], "audio": ["bframes.mp4"], "encrypted": {encrypted}}}"#)
    };
    std::fs::write(dir.path().join("titles/locked.json"), set(true)).unwrap();
    std::fs::write(dir.path().join("titles/open.json"), set(false)).unwrap();
    dir
}

/// Keys configured (a static key, the edge delivering it), protecting by prefix only `drm/` and
/// channels whose id starts with `secure`.
async fn server(root: &Path, keys: bool) -> TestServer {
    let mut config = test_config_in(root);
    if keys {
        config.encryption.vod_prefixes = vec!["drm/".into()];
        config.encryption.live_prefixes = vec!["secure".into()];
        config.encryption.key_id = KID.into();
        config.encryption.key = KEY.into();
        config.encryption.key_delivery = true;
    }
    TestServer::start(config).await
}

/// The init segment of `playlist` under `base`, and its media segments.
async fn rendition(s: &TestServer, base: &str, playlist: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    let text = get(s.edge, &format!("{base}/{playlist}")).await.text();
    let init = text.lines().find_map(|l| l.split("#EXT-X-MAP:URI=\"").nth(1)).unwrap().trim_end_matches('"');
    let init = get(s.edge, &format!("{base}/{init}")).await.body;
    let mut segments = Vec::new();
    for segment in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let reply = get(s.edge, &format!("{base}/{segment}")).await;
        assert_eq!(reply.status, 200, "{base}/{segment}");
        segments.push(reply.body);
    }
    (init, segments)
}

/// The video packets' hashes of `init` + `segment`, decrypted with `key` (ffmpeg reads one
/// fragment of a protected file).
fn video_hashes(dir: &Path, init: &[u8], segment: &[u8], key: Option<&str>) -> Vec<String> {
    let file = dir.join(format!("{}.mp4", key.is_some()));
    std::fs::write(&file, [init, segment].concat()).unwrap();
    let packets = framemd5_decrypted(&file, key).unwrap();
    packets.streams["video"].1.iter().map(|p| p.hash.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_set_that_asks_for_encryption_is_encrypted_wherever_it_lies() {
    let root = storage_root();
    let s = server(root.path(), true).await;
    let master = get(s.edge, "/vod/titles/locked.json/master.m3u8").await.text();
    assert!(master.contains("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR"), "{master}");
    let open = get(s.edge, "/vod/titles/open.json/master.m3u8").await.text();
    assert!(!open.contains("KEY"), "{open}");
    let mpd = get(s.edge, "/vod/titles/locked.json/manifest.mpd").await.text();
    assert!(mpd.contains(&format!("cenc:default_KID=\"{}", &KID[..8])), "{mpd}");
    // Its video decrypts, with the configured key, to the clear set's packets.
    let work = tempfile::tempdir().unwrap();
    let (init, sealed) = rendition(&s, "/vod/titles/locked.json", "v0.m3u8").await;
    let (clear_init, clear) = rendition(&s, "/vod/titles/open.json", "v0.m3u8").await;
    assert_eq!(sealed.len(), clear.len());
    for (segment, clear_segment) in sealed.iter().zip(&clear) {
        assert!(segment.windows(4).any(|w| w == b"senc") && segment != clear_segment);
        let ours = video_hashes(work.path(), &init, segment, Some(KEY));
        assert_eq!(ours, video_hashes(work.path(), &clear_init, clear_segment, None), "decrypts to the clear set");
    }
    // The licence server gives its key; not for the clear set.
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let body = format!(r#"{{"kids":["{}"],"type":"temporary"}}"#, b64(&common::unhex(KID)));
    let json = [("Content-Type", "application/json")];
    let licence = send_body(s.edge, "POST", "/keys/titles/locked.json/clearkey", &json, body.as_bytes()).await;
    assert_eq!(licence.status, 200, "{}", licence.text());
    assert!(licence.text().contains(&b64(&common::unhex(KEY))));
    let refused = send_body(s.edge, "POST", "/keys/titles/open.json/clearkey", &json, body.as_bytes()).await;
    assert_eq!(refused.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_an_asset_set_that_asks_for_encryption_is_never_served_clear() {
    let root = storage_root();
    let s = server(root.path(), false).await;
    for object in ["master.m3u8", "manifest.mpd", "v0.m3u8", "v0/init.mp4", "v0/1.m4s", "ts/v0/1.ts"] {
        let reply = get(s.edge, &format!("/vod/titles/locked.json/{object}")).await;
        assert_eq!(reply.status, 503, "{object}: {}", reply.text());
        assert!(reply.text().contains("encrypted"), "{object}: says why: {}", reply.text());
        assert_eq!(get(s.edge, &format!("/vod/titles/open.json/{object}")).await.status, 200, "{object}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_made_encrypted_is_encrypted_whatever_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), true).await;
    let made = create_channel(s.api, &format!(r#"{{"id":"news","token":"{TOKEN}","encrypted":true}}"#)).await;
    assert_eq!(made["settings"]["encrypted"], true, "{made}");
    create_channel(s.api, &format!(r#"{{"id":"sports","token":"{TOKEN}"}}"#)).await;
    let ingest = s.ingest;
    tokio::task::spawn_blocking(move || {
        Encoder::start_low_latency(ingest, "news", TOKEN, 4).wait();
        Encoder::start_low_latency(ingest, "sports", TOKEN, 4).wait();
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let playlist = loop {
        let text = get(s.edge, "/live/news/v0.m3u8").await.text();
        if text.contains("#EXTINF") {
            break text;
        }
        assert!(Instant::now() < deadline, "no segment: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(playlist.contains("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR") && !playlist.contains("#EXT-X-PART"), "{playlist}");
    let sports = get(s.edge, "/live/sports/v0.m3u8").await.text();
    assert!(sports.contains("#EXTINF") && !sports.contains("KEY"), "{sports}");
    // Its segments decrypt with the configured key to the clear segments the encoder pushed (as
    // the channel keeps them in storage).
    let work = tempfile::tempdir().unwrap();
    let (init, segments) = rendition(&s, "/live/news", "v0.m3u8").await;
    let uris: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".m4s")).collect();
    let epoch = uris[0].split('/').nth(1).unwrap();
    let stored = |name: &str| std::fs::read(dir.path().join(format!("live/news/{epoch}/v0/{name}")));
    let deadline = Instant::now() + Duration::from_secs(10);
    let clear_init = loop {
        match stored("init.mp4") {
            Ok(bytes) => break bytes,
            Err(e) => assert!(Instant::now() < deadline, "no init in storage: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(segments.len(), uris.len());
    for (segment, uri) in segments.iter().zip(&uris) {
        assert!(segment.windows(4).any(|w| w == b"senc"), "{uri}");
        let clear = stored(uri.rsplit('/').next().unwrap()).unwrap();
        let ours = video_hashes(work.path(), &init, segment, Some(KEY));
        assert!(!ours.is_empty());
        assert_eq!(ours, video_hashes(work.path(), &clear_init, &clear, None), "{uri} decrypts to the pushed segment");
    }
    // The licence server knows the channel as protected.
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let body = format!(r#"{{"kids":["{}"],"type":"temporary"}}"#, b64(&common::unhex(KID)));
    let json = [("Content-Type", "application/json")];
    let licence = send_body(s.edge, "POST", "/keys/live:news/clearkey", &json, body.as_bytes()).await;
    assert_eq!(licence.status, 200, "{}", licence.text());
    let refused = send_body(s.edge, "POST", "/keys/live:sports/clearkey", &json, body.as_bytes()).await;
    assert_eq!(refused.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_channel_cannot_be_made_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), false).await;
    let json = format!(r#"{{"id":"news","token":"{TOKEN}","encrypted":true}}"#);
    let reply =
        send_body(s.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], json.as_bytes()).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("[encryption]"), "{}", reply.text());
    let bad = r#"{"id":"news","encrypted":"yes"}"#;
    let reply =
        send_body(s.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], bad.as_bytes()).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
}

/// An encoder pushing video and audio muxed in one variant (the bundled sample's HLS): estuary
/// splits it into one rendition per track, and each is protected and decrypts to the clear one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muxed_push_is_protected_track_by_track() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), true).await;
    for id in ["securemux", "plainmux"] {
        create_channel(s.api, &format!(r#"{{"id":"{id}","token":"{TOKEN}"}}"#)).await;
        common::live_push::push_sample(s.ingest, &format!("/ingest/{id}/{TOKEN}/v0"), &[], 201).await;
    }
    let work = tempfile::tempdir().unwrap();
    for (playlist, kind) in [("v0.m3u8", "video"), ("a0.m3u8", "audio")] {
        let (init, sealed) = rendition(&s, "/live/securemux", playlist).await;
        let (clear_init, clear) = rendition(&s, "/live/plainmux", playlist).await;
        assert!(init.windows(4).any(|w| w == b"tenc"), "{playlist}: a protected init");
        assert_eq!((sealed.len(), clear.len()), (1, 1), "{playlist}");
        let files = [(&init, &sealed[0], Some(KEY), "p.mp4"), (&clear_init, &clear[0], None, "c.mp4")];
        let mut hashes = Vec::new();
        for (init, segment, key, name) in files {
            let file = work.path().join(name);
            std::fs::write(&file, [&init[..], &segment[..]].concat()).unwrap();
            let packets = framemd5_decrypted(&file, key).unwrap();
            hashes.push(packets.streams[kind].1.iter().map(|p| p.hash.clone()).collect::<Vec<_>>());
        }
        assert!(!hashes[0].is_empty() && hashes[0] == hashes[1], "{playlist} decrypts to the clear {kind}");
    }
}
