//! A live channel fed by hand: created through the API, then one rendition of the bundled sample
//! (init, first segment, a playlist listing it) pushed to ingest.

use std::net::SocketAddr;

use super::client::send_body;

/// A file of the bundled pre-packaged HLS sample (`init.mp4`, `seg_000.m4s`, ...).
pub fn sample_hls(name: &str) -> Vec<u8> {
    std::fs::read(super::assets_dir().join("sample/hls").join(name)).unwrap()
}

/// An encoder's media playlist listing `names` (4 s each, `init.mp4` as the map).
pub fn sample_playlist(names: &[&str]) -> Vec<u8> {
    let mut p =
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"init.mp4\"\n"
            .to_owned();
    for n in names {
        p.push_str(&format!("#EXTINF:4.0,\n{n}\n"));
    }
    p.into_bytes()
}

/// `POST /api/v1/channels` with `json`, expecting 201; the answer.
pub async fn create_channel(api: SocketAddr, json: &str) -> serde_json::Value {
    let r = send_body(api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], json.as_bytes()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// Pushes the sample's init, first segment and a playlist listing it under `prefix`
/// (`/ingest/news/KEY/v0`), expecting `status` for each.
pub async fn push_sample(ingest: SocketAddr, prefix: &str, headers: &[(&str, &str)], status: u16) {
    let uploads = [
        ("init.mp4", sample_hls("init.mp4")),
        ("seg_000.m4s", sample_hls("seg_000.m4s")),
        ("index.m3u8", sample_playlist(&["seg_000.m4s"])),
    ];
    for (name, body) in uploads {
        let r = send_body(ingest, "PUT", &format!("{prefix}/{name}"), headers, &body).await;
        assert_eq!(r.status, status, "PUT {prefix}/{name}: {}", r.text());
    }
}
