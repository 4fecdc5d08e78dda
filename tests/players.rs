//! Real player-side clients (ffprobe) read what the edge serves over HTTP.

mod common;

use common::tools::probe_streams;
use common::{TestServer, test_config};

fn packets(probe: &serde_json::Value, codec_type: &str) -> u64 {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == codec_type)
        .map(|s| s["nb_read_packets"].as_str().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn ffprobe_reads_prepackaged_hls_and_dash() {
    let s = TestServer::start(test_config()).await;
    let source = probe_streams(common::assets_dir().join("sample/sample.mp4").to_str().unwrap());
    let (video, audio) = (packets(&source, "video"), packets(&source, "audio"));
    assert!(video > 0 && audio > 0);

    for path in ["/static/sample/hls/master.m3u8", "/static/sample/dash/manifest.mpd"] {
        let url = format!("http://{}{path}", s.edge);
        let probe = tokio::task::spawn_blocking(move || probe_streams(&url)).await.unwrap();
        let codecs: Vec<_> =
            probe["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap().to_owned()).collect();
        assert!(codecs.contains(&"h264".to_owned()) && codecs.contains(&"aac".to_owned()), "{path}: {codecs:?}");
        assert_eq!(packets(&probe, "video"), video, "{path}: every video packet of the source");
        assert_eq!(packets(&probe, "audio"), audio, "{path}: every audio packet of the source");
    }
}
