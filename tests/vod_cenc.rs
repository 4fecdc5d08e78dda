//! Common encryption of VOD assets (`[encryption]`, `cenc` and `cbcs`) over sockets: the protected
//! asset's init segments say so (`encv`/`enca`, `tenc` with the KID, the common `pssh`), every
//! segment carries its samples' IVs and subsamples, the manifests announce the KID and the scheme
//! (and FairPlay for `cbcs`), and ffmpeg given the key reads exactly the packets of the clear asset
//! (its own decryption of both schemes, a second implementation), for the B-frame and the
//! irregular-GOP samples and an HEVC clip.
//! No clear media is served for a protected asset, and the key appears in no response.

mod common;

use std::path::Path;

use common::client::get;
use common::compare::{Packets, assert_same_packets, framemd5, framemd5_decrypted};
use common::media::media;
use common::{TestServer, test_config_in};
use estuary::config::EncryptionScheme;

const KID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KID_UUID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const KEY: &str = "00112233445566778899aabbccddeeff";

/// A storage root with the test clips in the clear at the top and again under `drm/`;
/// `hevc.mp4` is encoded here (HEVC with `hvc1` entries, AAC).
fn storage_root(clips: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drm")).unwrap();
    for clip in clips {
        let source = dir.path().join(clip);
        if *clip == "hevc.mp4" {
            let status = std::process::Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
                .args(["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000", "-t", "6"])
                .args(["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=50:log-level=error"])
                .args(["-tag:v", "hvc1", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"])
                .arg(&source)
                .status()
                .expect("ffmpeg is needed (./scripts/test installs it)");
            assert!(status.success(), "ffmpeg could not encode HEVC");
        } else {
            std::fs::copy(media().join(clip), &source).unwrap();
        }
        std::fs::copy(&source, dir.path().join("drm").join(clip)).unwrap();
    }
    dir
}

/// A `pssh` box (version 0) of `system` with `data`.
fn pssh(system: &str, data: &[u8]) -> Vec<u8> {
    let mut b = ((32 + data.len()) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(b"pssh\0\0\0\0");
    b.extend(common::unhex(&system.replace('-', "")));
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b
}

const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
const PLAYREADY: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
/// What a DRM vendor would give with the key: a Widevine and a PlayReady box.
fn vendor_pssh() -> Vec<u8> {
    [pssh(WIDEVINE, b"\x12\x10widevine-data"), pssh(PLAYREADY, b"<WRMHEADER>pro</WRMHEADER>")].concat()
}

async fn server(root: &Path) -> TestServer {
    server_with(root, EncryptionScheme::Cenc).await
}

async fn server_with(root: &Path, scheme: EncryptionScheme) -> TestServer {
    let mut config = test_config_in(root);
    config.vod.dash_trick_mode = true;
    config.encryption.scheme = scheme;
    if scheme == EncryptionScheme::Cbcs {
        config.encryption.fairplay_uri = "skd://keys.example.com/{kid}".into();
    }
    config.encryption.vod_prefixes = vec!["drm/".into()];
    config.encryption.key_id = KID_UUID.into();
    config.encryption.key = KEY.into();
    config.encryption.pssh = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vendor_pssh());
    TestServer::start(config).await
}

/// The init segment and every media segment a media playlist lists, fetched in order.
async fn rendition(s: &TestServer, asset: &str, playlist: &str) -> (String, Vec<u8>, Vec<Vec<u8>>) {
    let text = get(s.edge, &format!("/vod/{asset}/{playlist}")).await.text();
    let init_uri = text.lines().find_map(|l| l.split("#EXT-X-MAP:URI=\"").nth(1)).unwrap().trim_end_matches('"');
    let init = get(s.edge, &format!("/vod/{asset}/{init_uri}")).await;
    assert_eq!(init.status, 200, "{asset}/{init_uri}");
    let mut segments = Vec::new();
    for uri in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let reply = get(s.edge, &format!("/vod/{asset}/{uri}")).await;
        assert_eq!(reply.status, 200, "{asset}/{uri}");
        segments.push(reply.body);
    }
    (text, init.body, segments)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cenc_assets_decrypt_to_the_clear_packets() {
    decrypt_to_the_clear_packets(EncryptionScheme::Cenc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbcs_assets_decrypt_to_the_clear_packets() {
    decrypt_to_the_clear_packets(EncryptionScheme::Cbcs).await;
}

async fn decrypt_to_the_clear_packets(scheme: EncryptionScheme) {
    let (name, method) = match scheme {
        EncryptionScheme::Cenc => ("cenc", "SAMPLE-AES-CTR"),
        EncryptionScheme::Cbcs => ("cbcs", "SAMPLE-AES"),
    };
    let clips = ["bframes.mp4", "irregular.mp4", "hevc.mp4"];
    let root = storage_root(&clips);
    let s = server_with(root.path(), scheme).await;
    let work = tempfile::tempdir().unwrap();
    for clip in clips {
        let protected = format!("drm/{clip}");
        let master = get(s.edge, &format!("/vod/{protected}/master.m3u8")).await.text();
        assert!(master.contains("#EXT-X-I-FRAME-STREAM-INF"), "encrypted trick play: {master}");
        let mpd = get(s.edge, &format!("/vod/{protected}/manifest.mpd")).await.text();
        assert!(mpd.contains(&format!("value=\"{name}\" cenc:default_KID=\"{KID_UUID}\"")), "{mpd}");
        assert!(mpd.contains("urn:mpeg:dash:mp4protection:2011") && mpd.contains("<cenc:pssh>"), "{mpd}");
        assert!(mpd.contains("xmlns:cenc=\"urn:mpeg:cenc:2013\""), "{mpd}");
        // Each DRM system given with the key is named, PlayReady with its PlayReady Object.
        let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
        let widevine = format!(
            "schemeIdUri=\"urn:uuid:{WIDEVINE}\" value=\"Widevine\"><cenc:pssh>{}</cenc:pssh>",
            b64(&pssh(WIDEVINE, b"\x12\x10widevine-data"))
        );
        assert!(mpd.contains(&widevine), "{mpd}");
        assert!(mpd.contains(&format!("<mspr:pro>{}</mspr:pro>", b64(b"<WRMHEADER>pro</WRMHEADER>"))), "{mpd}");
        assert!(mpd.contains("xmlns:mspr=\"urn:microsoft:playready\""), "{mpd}");
        let clear_mpd = get(s.edge, &format!("/vod/{clip}/manifest.mpd")).await.text();
        assert!(!clear_mpd.contains("ContentProtection"), "the clear asset stays clear");

        for playlist in ["v0.m3u8", "a0.m3u8"] {
            let label = format!("{clip} {playlist}");
            let (text, init, segments) = rendition(&s, &protected, playlist).await;
            let (clear_text, clear_init, clear_segments) = rendition(&s, clip, playlist).await;
            // The key line comes before the first segment and names the KID.
            let key_line = text.lines().position(|l| l.starts_with(&format!("#EXT-X-KEY:METHOD={method},")));
            let first_segment = text.lines().position(|l| l.starts_with("#EXTINF"));
            assert!(key_line.is_some() && key_line < first_segment, "{label}: {text}");
            assert!(text.contains(&format!("KEYID=0x{KID}")), "{label}: {text}");
            // One key per DRM system, and the master's session keys are the media playlists' keys.
            let keys: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("#EXT-X-KEY:")).collect();
            let session: Vec<&str> = master.lines().filter_map(|l| l.strip_prefix("#EXT-X-SESSION-KEY:")).collect();
            assert_eq!(keys, session, "{label}");
            for format in [format!("KEYFORMAT=\"urn:uuid:{WIDEVINE}\""), "KEYFORMAT=\"com.microsoft.playready\"".into()]
            {
                assert!(keys.iter().any(|k| k.contains(&format)), "{label}: {format} in {text}");
            }
            assert!(keys.iter().all(|k| k.starts_with(&format!("METHOD={method},"))), "{label}: {text}");
            let fairplay = format!(
                "METHOD=SAMPLE-AES,URI=\"skd://keys.example.com/{KID}\",KEYFORMAT=\"com.apple.streamingkeydelivery\""
            );
            let offers_fairplay = keys.iter().any(|k| k.starts_with(&fairplay));
            assert_eq!(offers_fairplay, scheme == EncryptionScheme::Cbcs, "{label}: FairPlay with cbcs only: {text}");
            assert!(!clear_text.contains("EXT-X-KEY"), "{label}");

            let sample_entry: &[u8] = if playlist.starts_with('v') { b"encv" } else { b"enca" };
            assert!(contains(&init, sample_entry) && contains(&init, b"tenc") && contains(&init, b"pssh"), "{label}");
            assert!(contains(&init, &common::unhex(KID)), "{label}: the init's tenc carries the KID");
            assert!(contains(&init, &[b"schm\0\0\0\0", name.as_bytes()].concat()), "{label}: the scheme");
            assert!(contains(&init, &vendor_pssh()), "{label}: the init carries the vendor's pssh boxes");
            assert!(!contains(&clear_init, b"tenc"), "{label}");
            assert_eq!(segments.len(), clear_segments.len(), "{label}");
            for (n, (ours, clear)) in segments.iter().zip(&clear_segments).enumerate() {
                assert!(contains(ours, b"senc") && contains(ours, b"saio") && contains(ours, b"saiz"), "{label} #{n}");
                assert_ne!(ours, clear, "{label} #{n}: a protected segment is not the clear one");
                assert!(!contains(ours, &common::unhex(KEY)), "{label} #{n}: the key is in no segment");
            }
            // The same bytes on every request (and so on every pod: the IVs follow from the samples).
            let (_, again_init, again) = rendition(&s, &protected, playlist).await;
            assert_eq!((&again_init, &again), (&init, &segments), "{label}");

            // ffmpeg 5.1 decrypts a file of one fragment (with several it applies the first
            // fragment's sample information to the others), so each segment is read on its own,
            // after its init, and the packets put together again.
            let kind = if playlist.starts_with('v') { "video" } else { "audio" };
            let dir = work.path().join(format!("{clip}-{kind}"));
            std::fs::create_dir(&dir).unwrap();
            let (init, segments) = (init.clone(), segments.clone());
            let (decrypted, expected, undecrypted) = tokio::task::spawn_blocking(move || {
                let read = |name: &str, init: &[u8], segments: &[Vec<u8>], key: Option<&str>| {
                    let mut all = Packets::default();
                    for (n, segment) in segments.iter().enumerate() {
                        let file = dir.join(format!("{name}-{n}.mp4"));
                        std::fs::write(&file, [init, &segment[..]].concat()).unwrap();
                        let Ok(packets) = framemd5_decrypted(&file, key) else { return None };
                        for (kind, (tb, list)) in packets.streams {
                            all.streams.entry(kind).or_insert((tb, Vec::new())).1.extend(list);
                        }
                    }
                    Some(all)
                };
                (
                    read("protected", &init, &segments, Some(KEY)),
                    read("clear", &clear_init, &clear_segments, None),
                    read("undecrypted", &init, &segments, None),
                )
            })
            .await
            .unwrap();
            let (decrypted, expected) = (decrypted.unwrap(), expected.unwrap());
            assert_same_packets(&expected, &decrypted, &format!("{label} decrypted"));
            let source = root.path().join(clip).to_str().unwrap().to_owned();
            let source = tokio::task::spawn_blocking(move || framemd5(&source)).await.unwrap();
            // Each segment read alone starts a timeline of its own: against the source, the payloads.
            let payloads = |p: &Packets| p.streams[kind].1.iter().map(|p| (p.size, p.hash.clone())).collect::<Vec<_>>();
            assert_eq!(payloads(&decrypted), payloads(&source), "{label} decrypted, against its source");
            // Without the key, ffmpeg reads other bytes (or refuses): the media is encrypted.
            if let Some(undecrypted) = undecrypted {
                let hashes = |p: &Packets| p.streams[kind].1.iter().map(|p| p.hash.clone()).collect::<Vec<_>>();
                assert_ne!(hashes(&undecrypted), hashes(&expected), "{label}: readable without the key");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_asset_offers_nothing_in_the_clear() {
    let root = storage_root(&["bframes.mp4"]);
    let s = server(root.path()).await;
    for path in ["ts/master.m3u8", "ts/v0.m3u8", "ts/v0/1.ts", "ts/v0-iframes.m3u8"] {
        assert_eq!(get(s.edge, &format!("/vod/bframes.mp4/{path}")).await.status, 200, "clear {path}");
        assert_eq!(get(s.edge, &format!("/vod/drm/bframes.mp4/{path}")).await.status, 404, "protected {path}");
    }
    // Whole or ranged, a protected segment is the encrypted one.
    let whole = get(s.edge, "/vod/drm/bframes.mp4/v0/1.m4s").await;
    assert_eq!(whole.status, 200);
    assert!(contains(&whole.body, b"senc"));
    let ranged =
        common::client::request(s.edge, "GET", "/vod/drm/bframes.mp4/v0/1.m4s", &[("Range", "bytes=0-99")]).await;
    assert_eq!((ranged.status, &ranged.body[..]), (206, &whole.body[..100]));
    // Text tracks stay clear; nothing served carries the key.
    for path in ["master.m3u8", "manifest.mpd", "v0.m3u8", "v0/init.mp4", "a0/init.mp4"] {
        let reply = get(s.edge, &format!("/vod/drm/bframes.mp4/{path}")).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(!contains(&reply.body, KEY.as_bytes()) && !contains(&reply.body, &common::unhex(KEY)), "{path}");
        assert!(reply.headers.iter().all(|(_, v)| !v.contains(KEY)), "{path}");
    }
    // Counted: the segments encrypted and their bytes, by scheme.
    let metrics = get(s.api, "/metrics").await.text();
    let sample = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(sample("estuary_encrypted_segments_total{scheme=\"cenc\"}") >= 1.0);
    assert!(sample("estuary_encrypted_bytes_total{scheme=\"cenc\"}") >= whole.body.len() as f64);
    assert!(!metrics.contains(KEY));
}

/// Trick play follows the policy: a protected asset's I-frame playlist names each keyframe as an
/// object of its own, encrypted (with the IV the sample has in its segment), after the protected
/// init and the key; each decrypts to the clear keyframe. The DASH trick-mode set is the same
/// fragments, one segment's keyframes after another, under the MPD's protection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_asset_offers_encrypted_trick_play() {
    let root = storage_root(&["bframes.mp4"]);
    let s = server(root.path()).await;
    let master = get(s.edge, "/vod/drm/bframes.mp4/master.m3u8").await.text();
    assert!(master.contains("#EXT-X-I-FRAME-STREAM-INF:") && master.contains("URI=\"v0-iframes.m3u8\""), "{master}");
    let playlist = get(s.edge, "/vod/drm/bframes.mp4/v0-iframes.m3u8").await.text();
    assert!(playlist.contains("#EXT-X-I-FRAMES-ONLY") && !playlist.contains("BYTERANGE"), "{playlist}");
    let (map, key, first) = (
        playlist.lines().position(|l| l == "#EXT-X-MAP:URI=\"v0/init.mp4\""),
        playlist.lines().position(|l| l.starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR")),
        playlist.lines().position(|l| l.starts_with("#EXTINF")),
    );
    assert!(map.is_some() && map < key && key < first, "{playlist}");
    let init = get(s.edge, "/vod/drm/bframes.mp4/v0/init.mp4").await.body;
    let uris: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert!(uris.len() > 2 && uris.iter().all(|u| u.starts_with("v0/iframes/")), "{playlist}");
    let work = tempfile::tempdir().unwrap();
    let mut sealed_hashes = Vec::new();
    let mut by_segment: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
    for uri in &uris {
        let frame = get(s.edge, &format!("/vod/drm/bframes.mp4/{uri}")).await;
        assert_eq!(frame.status, 200, "{uri}");
        assert!(contains(&frame.body, b"senc"), "{uri}");
        let file = work.path().join("frame.mp4");
        std::fs::write(&file, [&init[..], &frame.body].concat()).unwrap();
        let packets = tokio::task::spawn_blocking(move || framemd5_decrypted(&file, Some(KEY)).unwrap()).await.unwrap();
        let video = &packets.streams["video"].1;
        assert_eq!(video.len(), 1, "{uri}: one keyframe");
        sealed_hashes.push(video[0].hash.clone());
        // The segment's I-frame object: its keyframes' objects one after the other (one styp).
        let n: u32 = uri.trim_start_matches("v0/iframes/").split('.').next().unwrap().parse().unwrap();
        let joined = by_segment.entry(n).or_default();
        let body = if joined.is_empty() { &frame.body[..] } else { &frame.body[24..] };
        joined.extend_from_slice(body);
    }
    for (n, joined) in &by_segment {
        let whole = get(s.edge, &format!("/vod/drm/bframes.mp4/v0/iframes/{n}.m4s")).await.body;
        assert!(&whole == joined, "segment {n}'s trick-play object is its keyframes' objects");
    }
    // The clear asset's keyframes, as its trick-play segments give them.
    let clear_init = get(s.edge, "/vod/bframes.mp4/v0/init.mp4").await.body;
    let mut clear_hashes = Vec::new();
    for n in by_segment.keys() {
        let body = get(s.edge, &format!("/vod/bframes.mp4/v0/iframes/{n}.m4s")).await.body;
        let file = work.path().join("clear.mp4");
        std::fs::write(&file, [&clear_init[..], &body].concat()).unwrap();
        let packets = tokio::task::spawn_blocking(move || framemd5_decrypted(&file, None).unwrap()).await.unwrap();
        clear_hashes.extend(packets.streams["video"].1.iter().map(|p| p.hash.clone()));
    }
    assert_eq!(sealed_hashes, clear_hashes, "every keyframe decrypts to the clear one");
    // DASH: the trick-mode set, under the same protection.
    let mpd = get(s.edge, "/vod/drm/bframes.mp4/manifest.mpd").await.text();
    let trick = mpd.split("<AdaptationSet").find(|set| set.contains("trickmode")).expect("a trick-mode set");
    assert!(trick.contains("urn:mpeg:dash:mp4protection:2011"), "{trick}");
    // A keyframe a segment does not have.
    assert_eq!(get(s.edge, "/vod/drm/bframes.mp4/v0/iframes/1.99.m4s").await.status, 404);
}
