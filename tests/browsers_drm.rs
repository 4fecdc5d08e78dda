//! Encrypted media in real players: headless Chromium grants ClearKey to pages on 127.0.0.1, so
//! dash.js and Shaka play the bundled sample packaged and encrypted on the fly (`cenc`, and `cbcs`),
//! given the key by the page; hls.js plays its MPEG-TS ladder in AES-128 and in SAMPLE-AES with the
//! key the edge hands out.
//! Each seeks halfway and reports the frames and sound it decoded.

mod common;

use common::browser::PageServer;
use common::client::get;
use common::{TestServer, test_config};

const KID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEY: &str = "00112233445566778899aabbccddeeff";
const WIDEVINE: [u8; 16] =
    [0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed];

/// A config serving the bundled sample protected with the test key (`cenc`).
fn protected_sample() -> estuary::config::Config {
    let mut config = test_config();
    config.encryption.vod_prefixes = vec!["sample/".into()];
    config.encryption.key_id = KID.into();
    config.encryption.key = KEY.into();
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_js_and_shaka_play_cenc_with_clearkey_and_hls_js_plays_aes_128() {
    let mut config = protected_sample();
    config.encryption.key_delivery = true;
    // A Widevine box beside ClearKey: the players pick the system they have (ClearKey here).
    let widevine =
        [&42u32.to_be_bytes()[..], b"pssh\0\0\0\0", &WIDEVINE, &10u32.to_be_bytes(), b"\x12\x10widevine"].concat();
    config.encryption.pssh = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, widevine);
    let s = TestServer::start(config).await;
    let src = format!("http://{}/vod/sample/sample.mp4/manifest.mpd", s.edge);
    let mpd = get(s.edge, "/vod/sample/sample.mp4/manifest.mpd").await.text();
    assert!(mpd.contains("cenc:default_KID"), "{mpd}");
    let page = PageServer::start();
    let ts = format!("http://{}/vod/sample/sample.mp4/ts/master.m3u8", s.edge);
    let fmp4 = format!("http://{}/vod/sample/sample.mp4/master.m3u8", s.edge);
    let licence = format!("http://{}/keys/sample/sample.mp4/clearkey", s.edge);
    let runs = [
        ("dash", format!("clearkey={KID}:{KEY}&src={src}")),
        ("shaka", format!("clearkey={KID}:{KEY}&src={src}")),
        ("hls", format!("src={ts}")),
        // hls.js on the fMP4 ladder, with EME: ClearKey, the licence from the edge.
        ("hls", format!("license={licence}&src={fmp4}")),
    ];
    for (player, query) in runs {
        // Each plays a second, seeks to 8 s (of 16) and plays 6 s from there.
        let report = tokio::task::block_in_place(|| page.play(&format!("player={player}&until=6&seek=8&{query}")));
        eprintln!("{player}: {report}");
        assert_eq!(report["ok"], true, "{player}: {report}");
        assert!(report["played"].as_str().unwrap().parse::<f64>().unwrap() >= 6.0, "{player}: {report}");
        assert!(report["start"].as_str().unwrap().parse::<f64>().unwrap() >= 7.5, "{player} seeked: {report}");
        assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(640), Some(360)), "{player}");
        assert!(report["frames"].as_u64().unwrap() >= 25 * 5, "{player}: {report}");
        assert!(report["audio_bytes"].as_u64().unwrap() > 0, "{player}: {report}");
    }
    // Without the key the same players fail: what they were given is encrypted.
    let report = tokio::task::block_in_place(|| page.play(&format!("player=shaka&until=6&src={src}")));
    assert_eq!(report["ok"], false, "shaka without the key: {report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dash_js_and_shaka_play_cbcs_with_clearkey_and_hls_js_plays_sample_aes() {
    let mut config = protected_sample();
    config.encryption.scheme = estuary::config::EncryptionScheme::Cbcs;
    config.encryption.key_delivery = true;
    config.encryption.ts_method = estuary::keys::protection::TsMethod::SampleAes;
    let s = TestServer::start(config).await;
    let src = format!("http://{}/vod/sample/sample.mp4/manifest.mpd", s.edge);
    let mpd = get(s.edge, "/vod/sample/sample.mp4/manifest.mpd").await.text();
    assert!(mpd.contains("value=\"cbcs\""), "{mpd}");
    let ts = format!("http://{}/vod/sample/sample.mp4/ts/master.m3u8", s.edge);
    let playlist = get(s.edge, "/vod/sample/sample.mp4/ts/v0.m3u8").await.text();
    assert!(playlist.contains("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"/keys/"), "{playlist}");
    let page = PageServer::start();
    let runs = [
        ("dash", format!("clearkey={KID}:{KEY}&src={src}")),
        ("shaka", format!("clearkey={KID}:{KEY}&src={src}")),
        // hls.js on the MPEG-TS ladder in SAMPLE-AES, the key from the edge.
        ("hls", format!("src={ts}")),
    ];
    for (player, query) in runs {
        let query = format!("player={player}&until=6&seek=8&{query}");
        let report = tokio::task::block_in_place(|| page.play(&query));
        eprintln!("{player} cbcs: {report}");
        assert_eq!(report["ok"], true, "{player}: {report}");
        assert!(report["played"].as_str().unwrap().parse::<f64>().unwrap() >= 6.0, "{player}: {report}");
        assert!(report["start"].as_str().unwrap().parse::<f64>().unwrap() >= 7.5, "{player} seeked: {report}");
        assert!(report["frames"].as_u64().unwrap() >= 25 * 5, "{player}: {report}");
        assert!(report["audio_bytes"].as_u64().unwrap() > 0, "{player}: {report}");
    }
}
