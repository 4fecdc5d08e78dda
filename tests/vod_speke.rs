//! Keys from a SPEKE v2 key server (`[encryption] key_provider = "speke"`), over sockets against a
//! small key server written here (tests/common/speke.rs, after the CPIX 2.3 schema): each protected
//! asset gets its own key, under a KID derived from its name; the CPIX request names the content,
//! the KID, the scheme and each DRM system; the answer's Widevine box and FairPlay URI reach the
//! manifests; concurrent requests for a new asset ask the key server once; the media decrypts with
//! the key server's key. Then the key server stops: every key held keeps serving, a new asset is
//! 503 naming its content id and KID (never the key), no clear byte is served, and once the key
//! server is back the new asset plays.

mod common;

use std::path::Path;

use common::client::{Reply, get};
use common::compare::framemd5_decrypted;
use common::media::media;
use common::speke::{SpekeServer, WIDEVINE_DATA, key_for};
use common::{TestServer, test_config_in};
use estuary::config::{EncryptionScheme, KeyProvider};
use estuary::keys::derive_kid;

fn storage_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drm")).unwrap();
    for clip in ["bframes.mp4", "irregular.mp4"] {
        std::fs::copy(media().join(clip), dir.path().join(clip)).unwrap();
        std::fs::copy(media().join(clip), dir.path().join("drm").join(clip)).unwrap();
    }
    dir
}

async fn server(root: &Path, speke: &SpekeServer) -> TestServer {
    let mut config = test_config_in(root);
    config.encryption.vod_prefixes = vec!["drm/".into()];
    config.encryption.key_provider = KeyProvider::Speke;
    config.encryption.speke_url = speke.url();
    config.encryption.speke_token = "speke-secret-token".into();
    config.encryption.speke_timeout = std::time::Duration::from_millis(500);
    config.encryption.speke_deadline = std::time::Duration::from_millis(1500);
    config.encryption.drm_systems = vec!["widevine".into(), "fairplay".into()];
    config.encryption.scheme = EncryptionScheme::Cbcs;
    config.encryption.key_delivery = true;
    TestServer::start(config).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A protected asset's answer is encrypted media, a manifest, a key, or an error: never the clear
/// object, and never the key server's key in a manifest or segment.
fn assert_sealed(reply: &Reply, clear: &Reply, key: &[u8; 16], label: &str) {
    if reply.status == 200 && label.ends_with(".m4s") {
        assert!(contains(&reply.body, b"senc"), "{label}: a protected segment carries its encryption");
        assert_ne!(reply.body, clear.body, "{label}: not the clear segment");
    }
    if !label.ends_with(".key") {
        assert!(!contains(&reply.body, key) && !reply.text().contains(&hex(key)), "{label}: the key leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_from_the_key_server_and_an_outage_serves_held_keys_only() {
    let root = storage_root();
    let mut speke = SpekeServer::start();
    let s = server(root.path(), &speke).await;
    let kid = derive_kid("drm/bframes.mp4", None);
    let key = key_for(&kid.0);

    // Eight concurrent first requests for the asset: one request to the key server.
    let paths =
        ["manifest.mpd", "master.m3u8", "v0.m3u8", "a0.m3u8", "v0/init.mp4", "a0/init.mp4", "v0/1.m4s", "a0/1.m4s"];
    let urls: Vec<String> = paths.iter().map(|p| format!("/vod/drm/bframes.mp4/{p}")).collect();
    let replies = futures_util::future::join_all(urls.iter().map(|u| get(s.edge, u))).await;
    for (path, reply) in paths.iter().zip(&replies) {
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let clear = get(s.edge, &format!("/vod/bframes.mp4/{path}")).await;
        assert_sealed(reply, &clear, &key, path);
    }
    let requests = speke.requests();
    assert_eq!(requests.len(), 1, "one key request for a burst: {requests:?}");
    let request = &requests[0];
    let header = |name: &str| request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("x-speke-version"), Some("2.0"));
    assert_eq!(header("authorization"), Some("Bearer speke-secret-token"));
    let doc = roxmltree::Document::parse(&request.body).unwrap();
    let root_el = doc.root_element();
    assert_eq!(
        (root_el.tag_name().namespace(), root_el.attribute("contentId")),
        (Some("urn:dashif:org:cpix"), Some("drm/bframes.mp4"))
    );
    let content_key = root_el.descendants().find(|n| n.tag_name().name() == "ContentKey").unwrap();
    assert_eq!(content_key.attribute("kid"), Some(kid.uuid().as_str()));
    assert_eq!(content_key.attribute("commonEncryptionScheme"), Some("cbcs"));
    let systems: Vec<_> = root_el
        .descendants()
        .filter(|n| n.tag_name().name() == "DRMSystem")
        .map(|n| n.attribute("systemId").unwrap())
        .collect();
    assert_eq!(systems, ["edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"]);

    // The key server's signalling reaches the manifests and the init segment.
    let mpd = replies[0].text();
    assert!(mpd.contains(&format!("value=\"cbcs\" cenc:default_KID=\"{}\"", kid.uuid())), "{mpd}");
    assert!(mpd.contains("urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"), "{mpd}");
    let media_playlist = replies[2].text();
    let fairplay = format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://fairplay.test/{}\"", kid.hex());
    assert!(media_playlist.contains(&fairplay), "{media_playlist}");
    assert!(contains(&replies[4].body, WIDEVINE_DATA), "the init carries the key server's Widevine box");

    // The media decrypts with the key server's key to the clear asset's packets.
    let work = tempfile::tempdir().unwrap();
    let (init, segment) = (replies[4].body.clone(), replies[6].body.clone());
    let clear_init = get(s.edge, "/vod/bframes.mp4/v0/init.mp4").await.body;
    let clear_segment = get(s.edge, "/vod/bframes.mp4/v0/1.m4s").await.body;
    let (protected_file, clear_file) = (work.path().join("p.mp4"), work.path().join("c.mp4"));
    std::fs::write(&protected_file, [init, segment].concat()).unwrap();
    std::fs::write(&clear_file, [clear_init, clear_segment].concat()).unwrap();
    let key_hex = hex(&key);
    let (decrypted, clear) = tokio::task::spawn_blocking(move || {
        (framemd5_decrypted(&protected_file, Some(&key_hex)).unwrap(), framemd5_decrypted(&clear_file, None).unwrap())
    })
    .await
    .unwrap();
    let hashes = |p: &common::compare::Packets| p.streams["video"].1.iter().map(|p| p.hash.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&decrypted), hashes(&clear), "decrypted with the key server's key");

    // The AES-128 key of the TS ladder, at a URI any pod can answer (it names the asset).
    let ts = get(s.edge, "/vod/drm/bframes.mp4/ts/v0.m3u8").await.text();
    let key_uri = format!("/keys/drm/bframes.mp4/{}.key", kid.hex());
    assert!(ts.contains(&format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{key_uri}\"")), "{ts}");
    let delivered = get(s.edge, &key_uri).await;
    assert_eq!((delivered.status, &delivered.body[..]), (200, &key[..]));
    assert_eq!(delivered.header("cache-control"), Some("private, no-store"));
    let other_kid = derive_kid("drm/other.mp4", None).hex();
    assert_eq!(get(s.edge, &format!("/keys/drm/bframes.mp4/{other_kid}.key")).await.status, 404, "another KID");
    assert_eq!(get(s.edge, &format!("/keys/bframes.mp4/{}.key", kid.hex())).await.status, 404, "a clear asset");

    // The key server stops.
    speke.stop();
    let before = speke.requests().len();
    // Held: every object of the asset is still served, segments built now included, and its key.
    for path in ["v0/2.m4s", "a0/3.m4s", "v0.m3u8", "ts/v0/2.ts"] {
        let reply = get(s.edge, &format!("/vod/drm/bframes.mp4/{path}")).await;
        assert_eq!(reply.status, 200, "{path} during the outage: {}", reply.text());
        let clear = get(s.edge, &format!("/vod/bframes.mp4/{path}")).await;
        assert_sealed(&reply, &clear, &key, path);
        assert_ne!(reply.body, clear.body, "{path}: not the clear object");
    }
    assert_eq!(get(s.edge, &key_uri).await.status, 200);
    // New: 503, naming the content id and the KID, never a clear byte.
    let new_kid = derive_kid("drm/irregular.mp4", None);
    let new_key = key_for(&new_kid.0);
    for path in ["manifest.mpd", "master.m3u8", "v0/init.mp4", "v0/1.m4s", "ts/v0/1.ts"] {
        let reply = get(s.edge, &format!("/vod/drm/irregular.mp4/{path}")).await;
        assert_eq!(reply.status, 503, "{path}: {}", reply.text());
        let text = reply.text();
        assert!(text.contains("drm/irregular.mp4") && text.contains(&new_kid.uuid()), "{path}: {text}");
        assert!(!text.contains(&hex(&new_key)), "{path}");
        assert!(reply.header("cache-control").is_some_and(|c| c.contains("no-store")), "{path}");
        let clear = get(s.edge, &format!("/vod/irregular.mp4/{path}")).await;
        assert_ne!(reply.body, clear.body);
    }
    assert_eq!(speke.requests().len(), before, "the stopped server got nothing");

    // Back: the new asset is served once the failure is no longer remembered (a second).
    let speke = speke.restart();
    let mut status = 0;
    for _ in 0..40 {
        status = get(s.edge, "/vod/drm/irregular.mp4/manifest.mpd").await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the new asset once the key server is back");
    assert!(speke.requests().iter().any(|r| r.body.contains("contentId=\"drm/irregular.mp4\"")));

    // Counted, and no secret in the metrics.
    let metrics = get(s.api, "/metrics").await.text();
    let sample = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(sample("estuary_key_server_requests_total{result=\"ok\"}") >= 2.0);
    assert!(sample("estuary_key_server_requests_total{result=\"error\"}") >= 1.0);
    assert!(sample("estuary_keys_held") >= 2.0);
    assert!(!metrics.contains("speke-secret-token") && !metrics.contains(&hex(&key)));
}
