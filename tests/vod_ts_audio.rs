//! Alternate audio on the MPEG-TS ladder: a set with two languages offers both to TS players, the
//! first muxed into every variant (for boxes that ignore groups) and the second as an audio-only TS
//! playlist of its own, in one `AUDIO` group; ffmpeg reads the second language's packets from it
//! exactly as they are in the source.

mod common;

use common::client::get;
use common::compare::{assert_same_stream, framemd5_with};
use common::media::two_language_set;
use common::{TestServer, test_config_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ts_master_of_a_two_language_set_offers_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    two_language_set(dir.path());
    let s = TestServer::start(test_config_in(dir.path())).await;
    let master = get(s.edge, "/vod/languages.json/ts/master.m3u8").await.text();
    let parsed = m3u8_rs::parse_master_playlist_res(master.as_bytes()).unwrap();
    let audio: Vec<_> =
        parsed.alternatives.iter().filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio).collect();
    assert_eq!(audio.len(), 2, "{master}");
    // The first language is the one muxed into the variants: in the group, with no URI of its own.
    assert_eq!((audio[0].language.as_deref(), audio[0].default, audio[0].uri.as_deref()), (Some("ko"), true, None));
    assert_eq!((audio[1].language.as_deref(), audio[1].default, audio[1].autoselect), (Some("en"), false, true));
    assert_eq!(audio[1].name, "English");
    let uri = audio[1].uri.clone().expect("the second language has its own playlist");
    let variants: Vec<_> = parsed.variants.iter().filter(|v| !v.is_i_frame).collect();
    assert!(!variants.is_empty() && variants.iter().all(|v| v.audio.as_deref() == Some("audio")), "{master}");
    // Its playlist: audio-only TS segments; ffmpeg reads them joined (its HLS demuxer mistimes the
    // second frame of an audio-only TS stream) as the source's packets, moved by the TS 10 s.
    let playlist = get(s.edge, &format!("/vod/languages.json/ts/{uri}")).await;
    assert_eq!(playlist.status, 200, "{uri}");
    let mut joined = Vec::new();
    for segment in playlist.text().lines().filter(|l| l.ends_with(".ts")) {
        let reply = get(s.edge, &format!("/vod/languages.json/ts/{segment}")).await;
        assert_eq!((reply.status, reply.header("content-type")), (200, Some("video/mp2t")), "{segment}");
        joined.extend_from_slice(&reply.body);
    }
    let file = dir.path().join("english.ts");
    std::fs::write(&file, joined).unwrap();
    let source = dir.path().join("en.m4a").to_str().unwrap().to_owned();
    let ours = file.to_str().unwrap().to_owned();
    let (expected, read) = tokio::task::spawn_blocking(move || {
        (framemd5_with(&source, &["-copyts"]), framemd5_with(&ours, &["-copyts", "-bsf:a", "aac_adtstoasc"]))
    })
    .await
    .unwrap();
    assert_eq!(read.streams.len(), 1, "audio only");
    let offset = assert_same_stream(&expected, &read, "audio", "the English audio over TS");
    assert!((offset - 10.0).abs() < 0.001, "moved by {offset} s, not the TS 10 s");
    // The muxed language has no playlist of its own, and the fMP4 master still offers both.
    assert_eq!(get(s.edge, "/vod/languages.json/ts/a0.m3u8").await.status, 404);
    let fmp4 = get(s.edge, "/vod/languages.json/master.m3u8").await.text();
    assert_eq!(fmp4.matches("TYPE=AUDIO").count(), 2, "{fmp4}");
}
