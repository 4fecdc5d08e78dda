//! VOD packaging costs on a synthetic 60-minute asset: building its index from the moov, rendering its
//! playlists and MPD, and building one 6 s segment (storage reads included).
//!
//! The asset is the bundled sample looped 225 times with `ffmpeg -stream_loop -c copy` (made once, kept
//! under `target/bench-media/`).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use estuary::cache::SegmentCache;
use estuary::config::VodConfig;
use estuary::keys::protection::{KeyDelivery, Protection, TsMethod};
use estuary::keys::{KeyAnswer, KeySource};
use estuary::packaging::cenc::{ContentKey, KeyId, Scheme};
use estuary::packaging::mp4::{IndexLimits, MoovLocator, Probe, build_index};
use estuary::packaging::presentation::{self, RenditionInput};
use estuary::packaging::vod_manifests;
use estuary::storage::StorageKey;
use estuary::storage::local::LocalStorage;
use estuary::vod::{Vod, VodPath};

fn long_asset() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-media");
    let path = dir.join("long-60min.mp4");
    if !path.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/sample/sample.mp4");
        let tmp = dir.join("long-60min.tmp.mp4");
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "224", "-i"])
            .arg(&sample)
            .args(["-c", "copy", "-movflags", "+faststart"])
            .arg(&tmp)
            .status()
            .expect("ffmpeg is needed to make the bench asset");
        assert!(status.success());
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn moov_of(file: &[u8]) -> &[u8] {
    let mut loc = MoovLocator::new(file.len() as u64, 1 << 30);
    let mut range = loc.start().unwrap();
    loop {
        match loc.feed(range.start, &file[range.start as usize..range.end as usize]).unwrap() {
            Probe::Read(r) => range = r,
            Probe::Found(r) => return &file[r.start as usize..r.end as usize],
        }
    }
}

fn vod(c: &mut Criterion) {
    let path = long_asset();
    let file = std::fs::read(&path).unwrap();
    let moov = moov_of(&file).to_vec();
    let size = file.len() as u64;
    drop(file);
    let limits = IndexLimits::default();

    let mut group = c.benchmark_group("vod_60min");
    group.sample_size(20);
    group.bench_function("index_build", |b| b.iter(|| black_box(build_index(&moov, size, limits).unwrap())));

    let index = build_index(&moov, size, limits).unwrap();
    let inputs = RenditionInput::all_tracks(&index);
    let p = presentation::build(&inputs, 6.0).unwrap();
    assert_eq!(p.video[0].segment_count(), 600, "a 60-minute asset has 600 six-second segments");
    group.bench_function("presentation_plan", |b| b.iter(|| black_box(presentation::build(&inputs, 6.0).unwrap())));
    group.bench_function("media_playlist_600_segments", |b| {
        b.iter(|| black_box(vod_manifests::render_media_playlist(&p, &p.video[0], None)))
    });
    group.bench_function("mpd_600_segments", |b| b.iter(|| black_box(vod_manifests::render_mpd(&p, &[], None))));
    // The same playlist through m3u8-rs as model and writer (ARCHITECTURE.md: why we keep our own).
    group.bench_function("media_playlist_600_segments_m3u8_rs", |b| {
        b.iter(|| {
            let model = vod_manifests::media_playlist(&p, &p.video[0]);
            let playlist = m3u8_rs::MediaPlaylist {
                version: Some(6),
                target_duration: u64::from(model.target_duration),
                media_sequence: model.media_sequence,
                playlist_type: Some(m3u8_rs::MediaPlaylistType::Vod),
                independent_segments: true,
                end_list: model.ended,
                segments: model
                    .segments
                    .iter()
                    .map(|s| m3u8_rs::MediaSegment {
                        uri: s.uri.to_string(),
                        duration: s.duration as f32,
                        map: s.map.map(|m| m3u8_rs::Map { uri: m.to_string(), ..Default::default() }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(32 * 1024);
            playlist.write_to(&mut out).unwrap();
            black_box(out)
        })
    });

    // One 6 s segment through the real path: catalog hit, coalesced range reads from local storage, mux.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let storage = Arc::new(LocalStorage::new(path.parent().unwrap()).unwrap());
    let no_cache = SegmentCache::new(0, 0);
    let vod = Vod::new(storage, no_cache, VodConfig::default());
    let key = StorageKey::parse("long-60min.mp4").unwrap();
    let segment = VodPath::parse("v0/300.m4s").unwrap();
    let (obj, _) = rt.block_on(vod.object(&key, segment)).unwrap();
    eprintln!("segment v0/300.m4s: {} bytes", obj.body().len());
    group.throughput(criterion::Throughput::Bytes(obj.body().len() as u64));
    group.bench_function("build_one_6s_video_segment", |b| {
        b.to_async(&rt).iter(|| async { black_box(vod.object(&key, segment).await.unwrap()) })
    });
    // Its audio, which an fMP4 player fetches beside it.
    let audio = VodPath::parse("a0/300.m4s").unwrap();
    group.bench_function("build_one_6s_audio_segment", |b| {
        b.to_async(&rt).iter(|| async { black_box(vod.object(&key, audio).await.unwrap()) })
    });
    // The same segment as MPEG-TS, with the audio muxed in (its bytes are the video's and the audio's).
    let ts = VodPath::parse("ts/v0/300.ts").unwrap();
    let (obj, _) = rt.block_on(vod.object(&key, ts)).unwrap();
    eprintln!("segment ts/v0/300.ts: {} bytes", obj.body().len());
    group.throughput(criterion::Throughput::Bytes(obj.body().len() as u64));
    group.bench_function("build_one_6s_ts_segment", |b| {
        b.to_async(&rt).iter(|| async { black_box(vod.object(&key, ts).await.unwrap()) })
    });
    // The same segments encrypted on the fly: CENC `cenc` and `cbcs` (fMP4), HLS AES-128 and SAMPLE-AES (TS), what
    // encryption adds to a segment built from the source (each is then served from the cache).
    let kid = KeyId::parse("0f1e2d3c4b5a69788796a5b4c3d2e1f0").unwrap();
    let content_key = ContentKey::from_hex(kid, "00112233445566778899aabbccddeeff").unwrap();
    let source = || KeySource::Static(KeyAnswer { key: content_key.clone(), systems: Vec::new(), fairplay_uri: None });
    let sealed = |scheme| Protection::new(vec!["long".into()], source(), scheme, None, KeyDelivery::OnTheEdge, 1);
    let protected = vod.clone().with_protection(Some(Arc::new(sealed(Scheme::Cenc))));
    let (obj, _) = rt.block_on(protected.object(&key, segment)).unwrap();
    group.throughput(criterion::Throughput::Bytes(obj.body().len() as u64));
    group.bench_function("build_one_6s_video_segment_cenc", |b| {
        b.to_async(&rt).iter(|| async { black_box(protected.object(&key, segment).await.unwrap()) })
    });
    let cbcs = vod.clone().with_protection(Some(Arc::new(sealed(Scheme::Cbcs))));
    let (obj, _) = rt.block_on(cbcs.object(&key, segment)).unwrap();
    group.throughput(criterion::Throughput::Bytes(obj.body().len() as u64));
    group.bench_function("build_one_6s_video_segment_cbcs", |b| {
        b.to_async(&rt).iter(|| async { black_box(cbcs.object(&key, segment).await.unwrap()) })
    });
    let (obj, _) = rt.block_on(protected.object(&key, ts)).unwrap();
    group.throughput(criterion::Throughput::Bytes(obj.body().len() as u64));
    group.bench_function("build_one_6s_ts_segment_aes128", |b| {
        b.to_async(&rt).iter(|| async { black_box(protected.object(&key, ts).await.unwrap()) })
    });
    let sample_aes = sealed(Scheme::Cbcs).with_ts_method(TsMethod::SampleAes);
    let sample_aes = vod.clone().with_protection(Some(Arc::new(sample_aes)));
    let (obj, _) = rt.block_on(sample_aes.object(&key, ts)).unwrap();
    group.throughput(criterion::Throughput::Bytes(obj.body().len() as u64));
    group.bench_function("build_one_6s_ts_segment_sample_aes", |b| {
        b.to_async(&rt).iter(|| async { black_box(sample_aes.object(&key, ts).await.unwrap()) })
    });
    group.finish();
}

criterion_group!(benches, vod);
criterion_main!(benches);
