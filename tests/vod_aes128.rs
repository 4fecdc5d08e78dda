//! HLS AES-128 for protected assets' MPEG-TS ladders (`[encryption] key_delivery`): every segment
//! is the clear one encrypted whole (`openssl aes-128-cbc` with the IV from its media sequence
//! number gives it back), the playlists name the key the edge hands out (`/keys/{kid}.key`, never
//! cached), and ffmpeg reads the same packets as from the clear ladder. Without key delivery the
//! ladder is not offered, and no key is handed out.

mod common;

use std::path::Path;

use common::client::get;
use common::compare::{assert_same_packets, framemd5};
use common::media::media;
use common::{TestServer, test_config_in};

const KID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEY: &str = "00112233445566778899aabbccddeeff";

fn storage_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drm")).unwrap();
    std::fs::copy(media().join("bframes.mp4"), dir.path().join("bframes.mp4")).unwrap();
    std::fs::copy(media().join("bframes.mp4"), dir.path().join("drm/bframes.mp4")).unwrap();
    dir
}

async fn server(root: &Path, key_delivery: bool) -> TestServer {
    let mut config = test_config_in(root);
    config.encryption.vod_prefixes = vec!["drm/".into()];
    config.encryption.key_id = KID.into();
    config.encryption.key = KEY.into();
    config.encryption.key_delivery = key_delivery;
    TestServer::start(config).await
}

/// `openssl aes-128-cbc -d` of `sealed` with the test key and `iv`.
fn openssl_decrypt(sealed: &[u8], iv: &str, dir: &Path) -> Vec<u8> {
    let input = dir.join("sealed.ts");
    std::fs::write(&input, sealed).unwrap();
    let out =
        common::tools::run("openssl", &["aes-128-cbc", "-d", "-K", KEY, "-iv", iv, "-in", input.to_str().unwrap()]);
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_segments_are_aes_128_and_decrypt_to_the_clear_ones() {
    let root = storage_root();
    let s = server(root.path(), true).await;
    let work = tempfile::tempdir().unwrap();
    let master = get(s.edge, "/vod/drm/bframes.mp4/ts/master.m3u8").await.text();
    assert!(!master.contains("I-FRAME"), "{master}");
    let uri = format!("/keys/{KID}.key");
    assert!(master.contains(&format!("#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"{uri}\"\n")), "{master}");
    for playlist in ["v0.m3u8", "a0.m3u8"] {
        let text = get(s.edge, &format!("/vod/drm/bframes.mp4/ts/{playlist}")).await;
        if text.status == 404 && playlist == "a0.m3u8" {
            continue; // audio muxed into the variants
        }
        let text = text.text();
        let key_line = text.lines().position(|l| l == format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\""));
        assert!(key_line.is_some() && key_line < text.lines().position(|l| l.starts_with("#EXTINF")), "{text}");
        let mut segments = 0;
        for (n, segment) in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).enumerate() {
            let sealed = get(s.edge, &format!("/vod/drm/bframes.mp4/ts/{segment}")).await.body;
            let clear = get(s.edge, &format!("/vod/bframes.mp4/ts/{segment}")).await.body;
            assert_eq!(sealed.len(), (clear.len() / 16 + 1) * 16, "{segment}: padded to whole blocks");
            // The media sequence starts at 1: segment n's IV is n + 1.
            let iv = format!("{:032x}", n + 1);
            let opened = tokio::task::block_in_place(|| openssl_decrypt(&sealed, &iv, work.path()));
            assert!(opened == clear, "{playlist} {segment}: decrypts to the clear segment");
            segments += 1;
        }
        assert!(segments > 1, "{text}");
    }
    // The key as players fetch it: the 16 bytes, never stored by anyone on the way.
    let key = get(s.edge, &uri).await;
    assert_eq!(key.status, 200);
    assert_eq!(key.body, (0..16).map(|i| u8::from_str_radix(&KEY[2 * i..2 * i + 2], 16).unwrap()).collect::<Vec<_>>());
    assert_eq!(key.header("cache-control"), Some("private, no-store"));
    for other in ["/keys/00000000000000000000000000000000.key", &format!("/keys/{KID}"), "/keys/x/y.key"] {
        assert_eq!(get(s.edge, other).await.status, 404, "{other}");
    }
    let metrics = get(s.api, "/metrics").await.text();
    // Counted (process-wide: other tests of this binary hand keys out too).
    let delivered = metrics.lines().find_map(|l| l.strip_prefix("estuary_keys_delivered_total "));
    assert!(delivered.and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v >= 1.0), "{metrics}");
    let counted = "estuary_encrypted_segments_total{scheme=\"aes-128\"}";
    assert!(metrics.lines().any(|l| l.starts_with(counted)), "{counted}: {metrics}");
    // ffmpeg fetches the key from the playlist's URI and reads the clear ladder's packets.
    let (protected, clear) = (
        format!("http://{}/vod/drm/bframes.mp4/ts/master.m3u8", s.edge),
        format!("http://{}/vod/bframes.mp4/ts/master.m3u8", s.edge),
    );
    let (ours, expected) = tokio::task::spawn_blocking(move || (framemd5(&protected), framemd5(&clear))).await.unwrap();
    assert_same_packets(&expected, &ours, "AES-128 ladder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_key_delivery_no_key_and_no_ts_ladder() {
    let root = storage_root();
    let s = server(root.path(), false).await;
    assert_eq!(get(s.edge, &format!("/keys/{KID}.key")).await.status, 404);
    for path in ["ts/master.m3u8", "ts/v0.m3u8", "ts/v0/1.ts"] {
        assert_eq!(get(s.edge, &format!("/vod/drm/bframes.mp4/{path}")).await.status, 404, "{path}");
        assert_eq!(get(s.edge, &format!("/vod/bframes.mp4/{path}")).await.status, 200, "clear {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clearkey_licence_server_reads_one_small_body_and_keeps_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let root = storage_root();
    let s = server(root.path(), true).await;
    let kid = common::unhex(KID);
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let body = format!(r#"{{"kids":["{}"],"type":"temporary"}}"#, b64(&kid));
    // A licence request, then a GET, on one connection: the body is read, the connection kept.
    let mut stream = tokio::net::TcpStream::connect(s.edge).await.unwrap();
    let request = format!(
        "POST /keys/drm/bframes.mp4/clearkey HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}GET /keys/{KID}.key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    let jwk = format!(r#""k":"{}""#, b64(&common::unhex(KEY)));
    assert!(text.contains(&jwk) && text.contains("private, no-store"), "{text}");
    assert!(answer.ends_with(&common::unhex(KEY)), "the second answer is the key itself");
    // Another asset's licence: nothing of ours for that KID; a clear asset: nothing at all.
    for path in ["/keys/bframes.mp4/clearkey", "/keys/drm/nothing.mp4/clearkey"] {
        let reply = common::client::send_body(s.edge, "POST", path, &[], body.as_bytes()).await;
        assert_eq!(reply.status, 404, "{path}");
    }
    // Other methods and routes still take no body.
    let reply = common::client::send_body(s.edge, "POST", "/vod/drm/bframes.mp4/master.m3u8", &[], b"x").await;
    assert_eq!(reply.status, 405);
}
