//! The edge's hot path without sockets: a segment-cache hit turned into a response, for a segment and
//! for a playlist; and the wire pieces of the edge's own HTTP/1.1 (reading a player's request head,
//! writing a cached playlist's response head).

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

use estuary::cache::hot::{HotAnswers, HotOffer};
use estuary::cache::{CacheKey, CacheOutcome, CachedObject, SegmentCache};
use estuary::edge::respond;
use estuary::http::content_type;
use estuary::http::encoding::Coding;
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

/// What the edge does per request on the wire, apart from the syscalls: parse a typical player
/// request head, write the head of a cached playlist's response.
fn wire(c: &mut Criterion) {
    use estuary::server::http1::{request, response};
    let head = b"GET /vod/test.mp4/v0.m3u8 HTTP/1.1\r\nHost: origin.example\r\nUser-Agent: AppleCoreMedia/1.0.0.21A5248v\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nAccept-Language: en-GB\r\nConnection: keep-alive\r\n\r\n";
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let body = asset("sample/hls/media.m3u8");
    let object = CachedObject::new(body, content_type::HLS_PLAYLIST, None).compressed();
    let kind = ObjectKind::StaticFile { max_age: std::time::Duration::from_secs(2) };
    let reply =
        rt.block_on(async { respond::cached(&Method::GET, &HeaderMap::new(), &object, kind, CacheOutcome::Hit) });
    let mut group = c.benchmark_group("wire");
    let full_path =
        |b: &mut criterion::Bencher| b.iter(|| black_box(request::parse(black_box(head), None, |_| None::<()>)));
    group.bench_function("parse_request_head", full_path);
    let raw_only =
        |b: &mut criterion::Bencher| b.iter(|| black_box(request::parse(black_box(head), None, |_| Some(()))));
    group.bench_function("parse_raw_head", raw_only);
    // The shortcut for a hot object: the raw head, one table lookup, the rendered head copied.
    let table = HotAnswers::default();
    let object = std::sync::Arc::new(object);
    let offer = HotOffer {
        target: "/vod/test.mp4/v0.m3u8".into(),
        route: "/vod/{*path}",
        object: object.clone(),
        coding: Coding::Gzip,
        until: Instant::now() + Duration::from_secs(3600),
        generation: table.generation(),
    };
    let mut rendered = Vec::new();
    let kept = response::ConnectionAfter::Kept;
    response::write_head(&mut rendered, reply.status(), reply.headers(), response::Framing::Empty, kept);
    table.accept(&offer, &rendered);
    let mut out = Vec::with_capacity(1024);
    group.bench_function("hot_answer", |b| {
        b.iter(|| {
            out.clear();
            // An answer lives a second: renewed as the full path would, once a second.
            let now = Instant::now();
            if table.with("/vod/test.mp4/v0.m3u8", now, |_| Some(())).is_none() {
                table.accept(&offer, &rendered);
            }
            let answered = request::parse(black_box(head), None, |raw| {
                table.with(raw.target, now, |hot| {
                    out.extend_from_slice(hot.head(Coding::Gzip)?);
                    Some(hot.object.representation(Coding::Gzip).body.len())
                })
            });
            black_box(answered.map(|a| a.is_some()))
        })
    });
    let mut out = Vec::with_capacity(1024);
    let get = estuary::http::raw::HeadFacts { keep_alive: true, has_body: false, http10: false, head_only: false };
    group.bench_function("write_response_head", |b| {
        b.iter(|| {
            out.clear();
            let framing = response::framing(reply.status(), reply.headers(), None, &get);
            response::write_head(&mut out, reply.status(), reply.headers(), framing, kept);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, cache_hit, wire);
criterion_main!(benches);
