//! The edge's hot path without sockets: a segment-cache hit turned into a response, for a segment and for a playlist.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use estuary::cache::{CacheKey, CacheOutcome, CachedObject, SegmentCache};
use estuary::edge::respond;
use estuary::http::content_type;
use estuary::http::policy::ObjectKind;
use http::{HeaderMap, HeaderValue, Method};

fn asset(path: &str) -> Bytes {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/").to_owned() + path).expect("sample asset").into()
}

fn cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let cache = SegmentCache::new(64 << 20, 16 << 20);
    let cases = [
        ("segment", "sample/hls/seg_000.m4s", content_type::MEDIA_SEGMENT),
        ("playlist_gzip", "sample/hls/media.m3u8", content_type::HLS_PLAYLIST),
    ];
    let mut group = c.benchmark_group("cache_hit_response");
    for (name, path, media_type) in cases {
        let body = asset(path);
        let key = CacheKey::new("static", path, 0);
        let object = CachedObject::new(body.clone(), media_type, None).compressed();
        rt.block_on(cache.get_or_load(key.clone(), async { Ok::<_, std::io::Error>(object) }, |_| false)).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
        let kind = ObjectKind::StaticFile { max_age: std::time::Duration::from_secs(60) };
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let (obj, outcome) = cache
                    .get_or_load(
                        key.clone(),
                        async { Err::<CachedObject, std::io::Error>(std::io::Error::other("miss")) },
                        |_| false,
                    )
                    .await
                    .unwrap();
                assert_eq!(outcome, CacheOutcome::Hit);
                black_box(respond::cached(&Method::GET, &headers, &obj, kind, outcome))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);
