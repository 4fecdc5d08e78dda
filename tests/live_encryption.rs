//! Protected live channels (`[encryption] live_prefixes`, `key_period`) over sockets, pushed by a
//! real encoder (ffmpeg's DASH muxer): the HLS playlists name a new key at each key period's first
//! segment (`EXT-X-KEY` with its `KEYID`), offer sealed LL-HLS parts (a segment is its sealed parts,
//! byte for byte) and no I-frame playlist; each
//! fragment names its period's key (`pssh` in `moof`, a `seig` sample group); every segment
//! decrypts, with its period's key, to the clear segment the encoder pushed (ffmpeg's own
//! decryption); the keys are those every pod derives; the ClearKey licence server gives the keys
//! of periods begun and refuses the rest. Then Shaka and dash.js (keys given as ClearKey; dash.js in
//! low-latency mode, on the growing segment sealed piece by piece) and hls.js (keys from the
//! edge's licence server, on LL-HLS parts) play the channel live across key periods. A
//! protected MPEG-TS channel is AES-128 with a key per period (openssl decrypts it).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::browser::PageServer;
use common::client::get;
use common::compare::framemd5_decrypted;
use common::encoder::Encoder;
use common::live_push::create_channel;
use common::{TestServer, test_config_in};
use estuary::keys::derive_kid;
use estuary::packaging::cenc::{ContentKey, KeyId};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const KID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEY: &str = "00112233445566778899aabbccddeeff";
const PERIOD: u64 = 2;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The key of `channel`'s key period `p`, as every pod derives it from the static key.
fn period_key(channel: &str, p: u64) -> ContentKey {
    let master = ContentKey::from_hex(KeyId::parse(KID).unwrap(), KEY).unwrap();
    master.derive(derive_kid(&format!("live:{channel}"), Some(p)))
}

async fn server(root: &Path) -> TestServer {
    let mut config = test_config_in(root);
    config.encryption.live_prefixes = vec!["secure".into()];
    config.encryption.key_period = PERIOD as u32;
    config.encryption.key_id = KID.into();
    config.encryption.key = KEY.into();
    config.encryption.key_delivery = true;
    TestServer::start(config).await
}

/// `(epoch, msn)` of a live segment URI (`v0/{epoch}/{msn}.m4s`).
fn numbers(uri: &str) -> (u64, u64) {
    let mut parts = uri.split('/');
    let (_, epoch, file) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
    (epoch.parse().unwrap(), file.trim_end_matches(".m4s").parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_channel_rotates_its_keys_and_decrypts_period_by_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    for id in ["secure", "open"] {
        let json = format!(r#"{{"id":"{id}","token":"{TOKEN}","target_duration":"2s","window":"30s"}}"#);
        create_channel(s.api, &json).await;
    }
    // The protected channel runs while it is checked and played; the clear one ends first.
    let _encoder = Encoder::start_low_latency(s.ingest, "secure", TOKEN, 60);
    let ingest = s.ingest;
    tokio::task::spawn_blocking(move || Encoder::start_low_latency(ingest, "open", TOKEN, 4).wait()).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let video = loop {
        let text = get(s.edge, "/live/secure/v0.m3u8").await.text();
        if text.matches("#EXTINF").count() >= 5 {
            break text;
        }
        assert!(Instant::now() < deadline, "no five segments: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A key before the first segment, and a new one at each period's first segment.
    let lines: Vec<&str> = video.lines().collect();
    let first_segment = lines.iter().position(|l| l.ends_with(".m4s")).unwrap();
    let first_key = lines.iter().position(|l| l.starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR")).unwrap();
    assert!(first_key < first_segment, "{video}");
    let mut key_of_segment = Vec::new();
    let mut current = None;
    for line in &lines {
        if line.starts_with("#EXT-X-KEY:") && line.contains("KEYFORMAT=\"urn:uuid:1077efec") {
            current = line.split("KEYID=0x").nth(1).map(|k| k[..32].to_owned());
        }
        if line.ends_with(".m4s") {
            key_of_segment.push((line.to_string(), current.clone().unwrap()));
        }
    }
    for (uri, kid) in &key_of_segment {
        let (_, msn) = numbers(uri);
        assert_eq!(kid, &period_key("secure", msn / PERIOD).kid.hex(), "{uri}: its period's KID in\n{video}");
    }
    let periods: BTreeSet<&String> = key_of_segment.iter().map(|(_, k)| k).collect();
    assert!(periods.len() >= 2, "two key periods at least: {video}");
    assert!(video.contains("#EXT-X-PART:") && video.contains("PRELOAD-HINT"), "LL-HLS parts: {video}");
    let master = get(s.edge, "/live/secure/master.m3u8").await.text();
    assert!(master.contains("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR") && !master.contains("I-FRAME"), "{master}");
    let mpd = get(s.edge, "/live/secure/manifest.mpd").await.text();
    // With rotation the MPD names no KID (players would take it for the one key).
    assert!(
        mpd.contains("urn:mpeg:dash:mp4protection:2011\" value=\"cenc\"/>") && !mpd.contains("default_KID"),
        "{mpd}"
    );
    // The clear channel beside it stays clear.
    let open = get(s.edge, "/live/open/v0.m3u8").await.text();
    assert!(!open.contains("EXT-X-KEY"), "{open}");

    // Each segment decrypts with its period's key to the segment the encoder pushed.
    let init_uri = video.lines().find_map(|l| l.split("#EXT-X-MAP:URI=\"").nth(1)).unwrap().trim_end_matches('"');
    let init = get(s.edge, &format!("/live/secure/{init_uri}")).await;
    assert_eq!(init.status, 200);
    assert!(contains(&init.body, b"encv") && contains(&init.body, b"tenc"), "a protected init");
    let (epoch, _) = numbers(&key_of_segment[0].0);
    let stored = |name: &str| dir.path().join(format!("live/secure/{epoch}/v0/{name}"));
    // The clear bytes the encoder pushed, once the channel has written them to storage.
    let read_stored = |name: String| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(bytes) = std::fs::read(stored(&name)) {
                return bytes;
            }
            assert!(Instant::now() < deadline, "{name} is not in storage");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let clear_init = read_stored("init.mp4".into()).await;
    let work = tempfile::tempdir().unwrap();
    for (uri, _) in &key_of_segment {
        let (_, msn) = numbers(uri);
        let key = period_key("secure", msn / PERIOD);
        let segment = get(s.edge, &format!("/live/secure/{uri}")).await;
        assert_eq!(segment.status, 200, "{uri}");
        assert!(contains(&segment.body, b"seig") && contains(&segment.body, &key.kid.0), "{uri}: names its key");
        assert!(!contains(&segment.body, &key.expose_for_delivery()), "{uri}: the key is in no segment");
        let clear = read_stored(format!("{msn}.m4s")).await;
        assert_ne!(segment.body, clear, "{uri}");
        let clear_file = work.path().join(format!("c{msn}.mp4"));
        std::fs::write(&clear_file, [&clear_init[..], &clear].concat()).unwrap();
        let key_hex = hex(&key.expose_for_delivery());
        // ffmpeg 5.1 decrypts one fragment of a file: each of the segment's fragments (its LL
        // parts) is read after the init on its own.
        let files: Vec<std::path::PathBuf> = fragments(&segment.body)
            .iter()
            .enumerate()
            .map(|(k, fragment)| {
                let file = work.path().join(format!("p{msn}-{k}.mp4"));
                std::fs::write(&file, [&init.body[..], fragment].concat()).unwrap();
                file
            })
            .collect();
        let (decrypted, expected) = tokio::task::spawn_blocking(move || {
            let decrypted: Vec<String> = files
                .iter()
                .flat_map(|file| video_hashes(&framemd5_decrypted(file, Some(&key_hex)).unwrap()))
                .collect();
            (decrypted, video_hashes(&framemd5_decrypted(&clear_file, None).unwrap()))
        })
        .await
        .unwrap();
        assert_eq!(decrypted, expected, "{uri} decrypted with its period's key");
        // The same bytes again (and on every pod: keys and IVs follow from the channel and numbers).
        assert_eq!(get(s.edge, &format!("/live/secure/{uri}")).await.body, segment.body, "{uri}");
    }
    // LL-HLS parts are sealed as their segment is: each decrypts with its period's key, and a
    // segment is its parts one after the other (one styp), byte for byte. The newest whole
    // segment's parts are fetched at once (older ones leave the parts' window).
    let listed = get(s.edge, "/live/secure/v0.m3u8").await.text();
    let parts: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1))
        .filter_map(|u| u.split('"').next())
        .collect();
    let segment = listed
        .lines()
        .filter(|l| l.ends_with(".m4s"))
        .rfind(|s| parts.iter().any(|p| p.starts_with(&format!("{}.", s.trim_end_matches(".m4s")))))
        .expect("a whole segment with its parts listed");
    let own: Vec<&&str> =
        parts.iter().filter(|p| p.starts_with(&format!("{}.", segment.trim_end_matches(".m4s")))).collect();
    let mut bodies = Vec::new();
    for part in &own {
        let body = get(s.edge, &format!("/live/secure/{part}")).await;
        assert_eq!(body.status, 200, "{part}");
        bodies.push(body.body);
    }
    let segment_body = get(s.edge, &format!("/live/secure/{segment}")).await.body;
    let (_, msn) = numbers(segment);
    let key = period_key("secure", msn / PERIOD);
    let mut joined = Vec::new();
    for (k, (part, body)) in own.iter().zip(&bodies).enumerate() {
        assert!(contains(body, b"senc") && contains(body, &key.kid.0), "{part}: sealed, names its key");
        let file = work.path().join(format!("part{msn}-{k}.mp4"));
        std::fs::write(&file, [&init.body[..], body].concat()).unwrap();
        let key_hex = hex(&key.expose_for_delivery());
        let packets = tokio::task::spawn_blocking(move || framemd5_decrypted(&file, Some(&key_hex)).unwrap());
        assert!(!video_hashes(&packets.await.unwrap()).is_empty(), "{part} decrypts");
        let styp = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        joined.extend_from_slice(if k > 0 && &body[4..8] == b"styp" { &body[styp..] } else { &body[..] });
    }
    assert!(segment_body == joined, "{segment}: its sealed parts, one after the other");
    // No I-frame playlist of a protected channel.
    assert_eq!(get(s.edge, "/live/secure/v0-iframes.m3u8").await.status, 404);

    // Shaka plays it live across key periods (a new key every 4 s), given the keys as ClearKey.
    let keys: Vec<String> = (0..8)
        .map(|p| {
            let key = period_key("secure", p);
            format!("{}:{}", key.kid.hex(), hex(&key.expose_for_delivery()))
        })
        .collect();
    // The ClearKey licence server: the keys asked for and their neighbours, of periods that have
    // begun (or the next); never the static key the periods derive from, never a later period.
    let licence = |kids: &[&KeyId]| {
        let kids: Vec<String> = kids.iter().map(|k| format!("\"{}\"", b64url(&k.0))).collect();
        format!(r#"{{"kids":[{}],"type":"temporary"}}"#, kids.join(","))
    };
    let (p0, p1) = (period_key("secure", 0), period_key("secure", 1));
    let url = "/keys/live:secure/clearkey";
    let reply = post(s.edge, url, &licence(&[&p0.kid, &p1.kid])).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    let jwks: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let given: Vec<(String, String)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_owned(), k["k"].as_str().unwrap().to_owned()))
        .collect();
    let expected: Vec<(String, String)> = [&p0, &p1, &period_key("secure", 2)]
        .iter()
        .map(|k| (b64url(&k.kid.0), b64url(&k.expose_for_delivery())))
        .collect();
    assert_eq!(given, expected, "the periods asked for and the one after");
    let master = KeyId::parse(KID).unwrap();
    let future = period_key("secure", 1_000).kid;
    for kids in [vec![&master], vec![&future]] {
        assert_eq!(post(s.edge, url, &licence(&kids)).await.status, 404, "{kids:?}");
    }
    assert_eq!(get(s.edge, &format!("/keys/{KID}.key")).await.status, 404, "the static key is never handed out");
    assert_eq!(post(s.edge, "/keys/live:open/clearkey", &licence(&[&p0.kid])).await.status, 404, "a clear channel");
    for bad in ["", "{}", "not json", r#"{"kids":["short"]}"#] {
        assert_eq!(post(s.edge, url, bad).await.status, 400, "{bad:?}");
    }
    let huge = format!(r#"{{"kids":["{}"]}}"#, "A".repeat(9000));
    assert_eq!(post(s.edge, url, &huge).await.status, 413);

    let src = format!("http://{}/live/secure/manifest.mpd", s.edge);
    let page = PageServer::start();
    let query = format!("player=shaka&until=6&clearkey={}&src={src}", keys.join(","));
    let report = tokio::task::block_in_place(|| page.play(&query));
    eprintln!("shaka: {report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["played"].as_str().unwrap().parse::<f64>().unwrap() >= 6.0, "more than one key period: {report}");
    assert!(report["frames"].as_u64().unwrap() >= 25 * 4, "{report}");

    // dash.js too, given the keys.
    let src_mpd = format!("http://{}/live/secure/manifest.mpd", s.edge);
    let query = format!("player=dash&until=6&clearkey={}&src={src_mpd}", keys.join(","));
    let report = tokio::task::block_in_place(|| page.play(&query));
    eprintln!("dash.js: {report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["dash_low_latency"], true, "LL-DASH: the growing segment, sealed piece by piece: {report}");
    assert!(report["played"].as_str().unwrap().parse::<f64>().unwrap() >= 6.0, "more than one key period: {report}");

    // hls.js plays it live across key periods, asking the edge's licence server for each key.
    let src = format!("http://{}/live/secure/master.m3u8", s.edge);
    let licence_url = format!("http://{}{url}", s.edge);
    let report = tokio::task::block_in_place(|| {
        page.play(&format!("player=hls&until=6&debug=1&license={licence_url}&src={src}"))
    });
    eprintln!("hls.js: {report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["parts"], true, "LL-HLS: sealed parts: {report}");
    assert!(report["played"].as_str().unwrap().parse::<f64>().unwrap() >= 6.0, "more than one key period: {report}");
    assert!(report["frames"].as_u64().unwrap() >= 25 * 4, "{report}");
}

/// The `moof` + `mdat` pairs of a media segment, in order.
fn fragments(segment: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut moof: Option<&[u8]> = None;
    while at + 8 <= segment.len() {
        let size = u32::from_be_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        let b = &segment[at..at + size];
        match &b[4..8] {
            b"moof" => moof = Some(b),
            b"mdat" => out.push([moof.take().unwrap(), b].concat()),
            _ => {}
        }
        at += size;
    }
    out
}

fn video_hashes(p: &common::compare::Packets) -> Vec<String> {
    p.streams["video"].1.iter().map(|p| p.hash.clone()).collect()
}

fn b64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

async fn post(edge: std::net::SocketAddr, path: &str, body: &str) -> common::client::Reply {
    common::client::send_body(edge, "POST", path, &[("Content-Type", "application/json")], body.as_bytes()).await
}

/// `openssl aes-128-cbc -d` of `sealed` with `key` and the IV of media sequence number `msn`.
fn openssl_decrypt(sealed: &[u8], key: &ContentKey, msn: u64, dir: &Path) -> Vec<u8> {
    let input = dir.join(format!("sealed-{msn}.ts"));
    std::fs::write(&input, sealed).unwrap();
    let (key, iv) = (hex(&key.expose_for_delivery()), format!("{msn:032x}"));
    let out =
        common::tools::run("openssl", &["aes-128-cbc", "-d", "-K", &key, "-iv", &iv, "-in", input.to_str().unwrap()]);
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_mpeg_ts_channel_is_aes_128_with_a_key_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let json = format!(r#"{{"id":"secure-ts","token":"{TOKEN}","target_duration":"2s","window":"30s"}}"#);
    create_channel(s.api, &json).await;
    let ingest = s.ingest;
    let push = common::encoder::Push { seconds: 9, ts: true, ..Default::default() };
    tokio::task::spawn_blocking(move || Encoder::start(ingest, "secure-ts", TOKEN, push).wait()).await.unwrap();
    let playlist = get(s.edge, "/live/secure-ts/v0.m3u8").await.text();
    let work = tempfile::tempdir().unwrap();
    let mut uri_of_key = None;
    let mut checked = BTreeSet::new();
    for line in playlist.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-KEY:METHOD=AES-128,URI=\"") {
            uri_of_key = Some(rest.trim_end_matches('"').to_owned());
            continue;
        }
        if !line.ends_with(".ts") {
            continue;
        }
        let mut parts = line.split('/');
        let (_, epoch, file) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let msn: u64 = file.trim_end_matches(".ts").parse().unwrap();
        let key = period_key("secure-ts", msn / PERIOD);
        let key_uri = uri_of_key.clone().unwrap_or_else(|| panic!("no key before {line}: {playlist}"));
        assert!(key_uri.ends_with(&format!("/{}/{}.key", msn / PERIOD, key.kid.hex())), "{key_uri} for {line}");
        let delivered = get(s.edge, &key_uri).await;
        assert_eq!((delivered.status, &delivered.body[..]), (200, &key.expose_for_delivery()[..]), "{key_uri}");
        let sealed = get(s.edge, &format!("/live/secure-ts/{line}")).await;
        assert_eq!(sealed.status, 200, "{line}");
        let clear = std::fs::read(dir.path().join(format!("live/secure-ts/{epoch}/v0/{msn}.ts"))).unwrap();
        assert_eq!(openssl_decrypt(&sealed.body, &key, msn, work.path()), clear, "{line}");
        checked.insert(msn / PERIOD);
    }
    assert!(checked.len() >= 2, "segments of two key periods: {playlist}");
}

/// In a cluster, a pod following a protected channel seals what the owner holds (its parts, its
/// segments) to the same bytes as the owner: keys, IVs and fragments follow from the channel and
/// numbers alone, so a CDN may send any request to any pod. The channel is protected by its own
/// setting (`"encrypted": true`), which the following pod reads from the control store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_pod_seals_parts_and_segments_as_the_owner_does() {
    let period = PERIOD.to_string();
    let env = [
        ("ESTUARY_ENCRYPTION_LIVE_PREFIXES", r#"["premium-"]"#),
        ("ESTUARY_ENCRYPTION_KEY_PERIOD", period.as_str()),
        ("ESTUARY_ENCRYPTION_KEY_ID", KID),
        ("ESTUARY_ENCRYPTION_KEY", KEY),
    ];
    let cluster = common::cluster::Cluster::start(2, &env);
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    let json = format!(r#"{{"id":"secure","token":"{TOKEN}","target_duration":"2s","window":"30s","encrypted":true}}"#);
    create_channel(a.api, &json).await;
    let _encoder = Encoder::start_low_latency(a.ingest.unwrap(), "secure", TOKEN, 30);
    let deadline = Instant::now() + Duration::from_secs(40);
    let (text, part) = loop {
        let text = get(b.edge, "/live/secure/v0.m3u8").await.text();
        let part = text.lines().rev().find_map(|l| l.strip_prefix("#EXT-X-PART:")).and_then(|l| {
            let uri = l.split("URI=\"").nth(1)?.split('"').next()?;
            Some(uri.to_owned())
        });
        if let Some(part) = part.filter(|_| text.matches("#EXTINF").count() >= 2) {
            break (text, part);
        }
        assert!(Instant::now() < deadline, "pod B never listed parts:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(text.contains("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR"), "{text}");
    let (from_b, from_a) =
        (get(b.edge, &format!("/live/secure/{part}")).await, get(a.edge, &format!("/live/secure/{part}")).await);
    assert_eq!((from_b.status, from_a.status), (200, 200), "{part}");
    assert!(contains(&from_b.body, b"senc"), "{part}: sealed");
    assert!(from_b.body == from_a.body, "{part}: the same sealed part from both pods");
    let segment = text.lines().rfind(|l| l.ends_with(".m4s")).unwrap();
    let (from_b, from_a) =
        (get(b.edge, &format!("/live/secure/{segment}")).await, get(a.edge, &format!("/live/secure/{segment}")).await);
    assert_eq!((from_b.status, from_a.status), (200, 200), "{segment}");
    assert!(contains(&from_b.body, b"senc") && from_b.body == from_a.body, "{segment}: the same sealed bytes");
}
