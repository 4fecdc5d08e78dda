//! A cluster on loopback: a real Redis as the control store, two estuary processes on one storage
//! root. ffmpeg pushes a channel into pod A; pod B serves it: master, media playlists, MPD, segments
//! (read from storage), and blocking reload released by A's publications.

mod common;

use std::time::{Duration, Instant};

use common::client::{get, send_body};
use common::cluster::Cluster;
use common::encoder::{Encoder, Push};
use common::live_push::{create_channel, push_sample};
use common::process::Estuary;
use common::redis::RedisServer;
use common::tools::probe_live;

const TOKEN: &str = "cluster-key-0123456789abcdef";

fn media(text: &str) -> m3u8_rs::MediaPlaylist {
    m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

fn last_msn(p: &m3u8_rs::MediaPlaylist) -> u64 {
    p.media_sequence + p.segments.len() as u64 - 1
}

async fn playlist_when(
    pod: &Estuary,
    limit: Duration,
    ok: impl Fn(&m3u8_rs::MediaPlaylist) -> bool,
) -> m3u8_rs::MediaPlaylist {
    playlist_of("news", pod, limit, ok).await
}

async fn playlist_of(
    channel: &str,
    pod: &Estuary,
    limit: Duration,
    ok: impl Fn(&m3u8_rs::MediaPlaylist) -> bool,
) -> m3u8_rs::MediaPlaylist {
    let deadline = Instant::now() + limit;
    loop {
        let r = get(pod.edge, &format!("/live/{channel}/v0.m3u8")).await;
        if r.status == 200 {
            let p = media(&r.text());
            if ok(&p) {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "no such playlist within {limit:?}: {} {}", r.status, r.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates channel `news` (key [`TOKEN`]) through `pod`'s API with the given settings.
async fn create(pod: &Estuary, settings: &str) {
    create_channel(pod.api, &format!(r#"{{"id":"news","token":"{TOKEN}",{settings}}}"#)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_pushed_into_one_pod_plays_from_another() {
    let cluster = Cluster::start(2, &[]);
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    create(a, r#""target_duration":"2s","window":"12s""#).await;
    assert_eq!(get(b.edge, "/live/nothing/master.m3u8").await.status, 404, "a channel no pod shares");

    let push = Push { preemptive_auth: true, seconds: 40, ..Push::default() };
    let _encoder = Encoder::start(a.ingest.unwrap(), "news", TOKEN, push);
    let on_a = playlist_when(a, Duration::from_secs(20), |p| p.segments.len() >= 3).await;

    // Pod B serves what A took: the same URLs (epochs, sequence numbers), segments from storage.
    let on_b = playlist_when(b, Duration::from_secs(10), |p| p.segments.len() >= 2).await;
    let first_on_b = &on_b.segments[0].uri;
    assert!(on_a.segments.iter().any(|s| &s.uri == first_on_b), "B lists A's segments: {first_on_b}");
    let master = get(b.edge, "/live/news/master.m3u8").await;
    assert_eq!(master.status, 200);
    assert!(master.text().contains("#EXT-X-STREAM-INF"), "{}", master.text());
    let newest = on_b.segments.last().unwrap();
    let from_b = get(b.edge, &format!("/live/news/{}", newest.uri)).await;
    let from_a = get(a.edge, &format!("/live/news/{}", newest.uri)).await;
    assert_eq!((from_b.status, from_a.status), (200, 200), "{}", newest.uri);
    assert_eq!(from_b.body, from_a.body, "the same segment bytes from both pods");
    let init = on_b.segments.iter().find_map(|s| s.map.as_ref()).unwrap();
    assert_eq!(get(b.edge, &format!("/live/news/{}", init.uri)).await.status, 200);
    // The internal listener gives the owner's held media segments and nothing else.
    let (a_internal, b_internal) = (a.internal.unwrap(), b.internal.unwrap());
    let held = get(a_internal, &format!("/internal/v1/live/news/{}", newest.uri)).await;
    assert_eq!((held.status, &held.body), (200, &from_a.body));
    for (pod, path) in [
        (b_internal, format!("/internal/v1/live/news/{}", newest.uri)),
        (a_internal, format!("/internal/v1/live/news/{}", init.uri)),
        (a_internal, "/internal/v1/live/news/master.m3u8".to_owned()),
        (a_internal, "/internal/v1/live/news/../../.estuary/live/news/channel.json".to_owned()),
        (a_internal, "/internal/v1/live/news/%2e%2e/%2e%2e/.estuary/live/news/timeline.json".to_owned()),
        (a_internal, format!("/live/news/{}", newest.uri)),
        (a_internal, "/api/v1/channels".to_owned()),
    ] {
        assert_eq!(get(pod, &path).await.status, 404, "{pod}{path}");
    }
    // Every pod's API lists the channel, and says which pod writes it.
    let listed: serde_json::Value = serde_json::from_slice(&get(b.api, "/api/v1/channels").await.body).unwrap();
    let news = &listed["channels"][0];
    assert_eq!((news["id"].as_str(), news["owned_here"].as_bool()), (Some("news"), Some(false)), "{listed}");
    let owner = news["owner"].as_str().expect("a lease holder").to_owned();
    let on_owner: serde_json::Value = serde_json::from_slice(&get(a.api, "/api/v1/channels/news").await.body).unwrap();
    assert_eq!((on_owner["owned_here"].as_bool(), on_owner["owner"].as_str()), (Some(true), Some(owner.as_str())));
    assert_eq!(get(b.api, "/api/v1/channels/news").await.status, 200);

    // ffprobe, a player-side reader, finds the streams through pod B.
    let url = format!("http://{}/live/news/master.m3u8", b.edge);
    let probe = tokio::task::spawn_blocking(move || probe_live(&url)).await.unwrap();
    let kinds: Vec<&str> =
        probe["streams"].as_array().unwrap().iter().filter_map(|s| s["codec_type"].as_str()).collect();
    assert!(kinds.contains(&"video") && kinds.contains(&"audio"), "{probe}");
    // DVR and the recording (start-over) from the following pod, the same as from the owner.
    let dvr = get(b.edge, "/live/news/v0.m3u8?start=0").await;
    assert_eq!(dvr.status, 200, "{}", dvr.text());
    assert_eq!(media(&dvr.text()).media_sequence, 0, "start-over from the first segment: {}", dvr.text());
    let mpd = get(b.edge, "/live/news/manifest.mpd").await;
    assert_eq!(mpd.status, 200);
    assert!(mpd.text().contains("type=\"dynamic\""), "{}", mpd.text());

    // Blocking reload on B is released by A's publication of the next segment, within a few
    // target durations (the segment also has to reach storage first).
    let next = last_msn(&on_b) + 1;
    let asked = Instant::now();
    let held = get(b.edge, &format!("/live/news/v0.m3u8?_HLS_msn={next}")).await;
    assert_eq!(held.status, 200, "{}", held.text());
    assert!(last_msn(&media(&held.text())) >= next, "released with segment {next}");
    eprintln!("_HLS_msn={next} on pod B released after {:?}", asked.elapsed());

    // The figures an operator watches: who owns the channel, the follower's delay behind the owner.
    let metric = |text: &str, name: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let on_a = get(a.api, "/metrics").await.text();
    let on_b = get(b.api, "/metrics").await.text();
    assert_eq!(metric(&on_a, "estuary_live_channels_owned"), 1.0);
    assert_eq!(
        (metric(&on_b, "estuary_live_channels_owned"), metric(&on_b, "estuary_live_channels_followed")),
        (0.0, 1.0)
    );
    // B read the newest segments from A's memory, pod to pod, not from storage.
    let reads = |text: &str, source: &str| {
        let name = format!("estuary_live_segment_reads_total{{source=\"{source}\"}}");
        text.lines().find_map(|l| l.strip_prefix(&name)).map(|v| v.trim().parse::<f64>().unwrap()).unwrap()
    };
    let (owner, failed, storage) = (reads(&on_b, "owner"), reads(&on_b, "owner_failed"), reads(&on_b, "storage"));
    eprintln!("segment reads on B: {owner} from A's memory, {failed} failed tries, {storage} from storage");
    assert!(owner >= 1.0 && failed == 0.0, "{on_b}");
    // On announcements B reads the timeline's tail, not the whole DVR window: one more segment
    // released on B is one more tail read and no whole one.
    let timeline_reads = |text: &str| {
        (
            metric(text, "estuary_cluster_timeline_full_reads_total"),
            metric(text, "estuary_cluster_timeline_tail_reads_total"),
        )
    };
    let (full, tails) = timeline_reads(&on_b);
    let held = get(b.edge, &format!("/live/news/v0.m3u8?_HLS_msn={}", next + 1)).await;
    assert_eq!(held.status, 200, "{}", held.text());
    let later = get(b.api, "/metrics").await.text();
    let (full_later, tails_later) = timeline_reads(&later);
    eprintln!("shared timeline reads on B: {full_later} whole, {tails_later} tails");
    assert!(tails >= 1.0 && tails_later > tails && full_later == full, "{later}");
    let delays = metric(&on_b, "estuary_cluster_follow_delay_seconds_count");
    assert!(delays >= 1.0, "{on_b}");
    eprintln!(
        "upload on A to playlist on B: mean {:.3} s, max {:.3} s over {delays} segments; redis calls on B: {}",
        metric(&on_b, "estuary_cluster_follow_delay_seconds_sum") / delays,
        metric(&on_b, "estuary_cluster_follow_delay_max_seconds"),
        metric(&on_b, "estuary_cluster_redis_calls_total"),
    );
}

/// A redundant encoder pair: encoder 1 into pod A (the owner), encoder 2 into pod B (a standby),
/// players on pod C. `kill -9` pod A: B takes the channel over when A's lease lapses; on C the
/// sequence goes on, with one discontinuity into a new epoch.
#[tokio::test(flavor = "multi_thread")]
async fn a_standby_pod_takes_the_channel_over_when_the_owner_dies() {
    let mut cluster = Cluster::start(3, &[]);
    let (c, b, a) = (cluster.pods.pop().unwrap(), cluster.pods.pop().unwrap(), cluster.pods.pop().unwrap());
    create(&a, r#""target_duration":"2s","window":"20s","idle_timeout":"5m""#).await;

    let push = Push { preemptive_auth: true, seconds: 60, ..Push::default() };
    let _first = Encoder::start(a.ingest.unwrap(), "news", TOKEN, push);
    playlist_when(&c, Duration::from_secs(20), |p| p.segments.len() >= 2).await;
    let _second = Encoder::start(b.ingest.unwrap(), "news", TOKEN, Push { tone: 880, ..push });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = playlist_when(&c, Duration::from_secs(10), |p| p.segments.len() >= 3).await;
    let last_before = last_msn(&before);

    drop(a);
    let killed = Instant::now();
    let epoch = |uri: &str| uri.split('/').nth(1).unwrap().to_owned();
    let old_epoch = epoch(&before.segments.last().unwrap().uri);
    playlist_when(&c, Duration::from_secs(30), |p| p.segments.iter().any(|s| epoch(&s.uri) != old_epoch)).await;
    eprintln!("failover: pod C listed pod B's first segment {:?} after pod A was killed", killed.elapsed());
    let after = playlist_when(&c, Duration::from_secs(30), |p| last_msn(p) >= last_before + 2).await;
    assert!(after.media_sequence >= before.media_sequence, "the sequence never goes back");
    let switch = after.segments.iter().position(|s| epoch(&s.uri) != old_epoch).expect("B's segments: a new epoch");
    assert!(after.segments[switch].discontinuity, "the switch is a discontinuity");
    let discontinuities = after.segments.iter().filter(|s| s.discontinuity).count();
    assert_eq!(discontinuities, 1, "one switch, one discontinuity");
    let new_uris: Vec<&str> = after.segments[switch..].iter().map(|s| s.uri.as_str()).collect();
    assert!(before.segments.iter().all(|s| !new_uris.contains(&s.uri.as_str())), "no URL is reused");
    let newest = &after.segments.last().unwrap().uri;
    assert_eq!(get(c.edge, &format!("/live/news/{newest}")).await.status, 200);
    let url = format!("http://{}/live/news/master.m3u8", c.edge);
    let probe = tokio::task::spawn_blocking(move || probe_live(&url)).await.unwrap();
    let kinds: Vec<&str> =
        probe["streams"].as_array().unwrap().iter().filter_map(|s| s["codec_type"].as_str()).collect();
    assert!(kinds.contains(&"video") && kinds.contains(&"audio"), "ffprobe reads pod C after the switch: {probe}");
}

/// Redis stops mid-run and comes back empty: no pod crashes, VOD is untouched, the owner keeps
/// taking its encoder's segments, the following pod catches up without a restart, and a standby
/// (a redundant encoder pushes into pod B too) never takes the channel over from nothing: every
/// sequence number keeps naming one segment, and no playlist goes back.
#[tokio::test(flavor = "multi_thread")]
async fn pods_ride_out_a_redis_restart() {
    let mut cluster = Cluster::start(2, &[]).with_sample();
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    create(a, r#""target_duration":"2s","window":"20s""#).await;
    let push = Push { preemptive_auth: true, seconds: 60, ..Push::default() };
    let _encoder = Encoder::start(a.ingest.unwrap(), "news", TOKEN, push);
    let followed = playlist_when(b, Duration::from_secs(20), |p| p.segments.len() >= 2).await;
    let _standby = Encoder::start(b.ingest.unwrap(), "news", TOKEN, Push { tone: 880, ..push });
    tokio::time::sleep(Duration::from_secs(3)).await;

    drop(cluster.redis.take());
    let on_a = playlist_when(a, Duration::from_secs(10), |p| p.segments.len() >= 2).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(get(b.edge, "/vod/sample.mp4/master.m3u8").await.status, 200, "VOD does not need Redis");
    let later = playlist_when(a, Duration::from_secs(10), |p| last_msn(p) > last_msn(&on_a)).await;
    assert!(last_msn(&later) > last_msn(&on_a), "the owner keeps committing while Redis is away");
    let held = get(b.edge, "/live/news/v0.m3u8").await;
    assert_eq!(held.status, 200, "the follower keeps its last playlist for a while: {}", held.text());

    let _redis = RedisServer::start_on(cluster.port);
    // Both pods' playlists, every 200 ms for 12 s after Redis came back.
    let mut named: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    let mut newest = [0u64; 2];
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        for (i, pod) in [a, b].into_iter().enumerate() {
            let r = get(pod.edge, "/live/news/v0.m3u8").await;
            if r.status != 200 {
                continue;
            }
            let p = media(&r.text());
            assert!(
                last_msn(&p) >= newest[i],
                "pod {i}'s playlist went back to {} after {}: {}",
                last_msn(&p),
                newest[i],
                r.text()
            );
            newest[i] = last_msn(&p);
            for (k, segment) in p.segments.iter().enumerate() {
                let msn = p.media_sequence + k as u64;
                let uri = named.entry(msn).or_insert_with(|| segment.uri.clone());
                assert_eq!(uri, &segment.uri, "sequence number {msn} names two segments");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let caught_up = playlist_when(b, Duration::from_secs(30), |p| last_msn(p) >= last_msn(&later)).await;
    assert!(last_msn(&caught_up) > last_msn(&followed), "the follower caught up after Redis came back");
    let owner: serde_json::Value = serde_json::from_slice(&get(a.api, "/api/v1/channels/news").await.body).unwrap();
    assert_eq!(owner["owned_here"], true, "pod A still writes the channel: {owner}");
    for pod in [a, b] {
        assert_eq!(get(pod.edge, "/healthz").await.status, 200, "no pod went down");
    }
}

/// A pod starts while Redis is away (VOD serves, a channel can be created), and takes its channel's
/// stream once Redis is there.
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_starts_while_redis_is_away() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample/sample.mp4");
    std::fs::copy(sample, dir.path().join("sample.mp4")).unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    let url = format!("redis://127.0.0.1:{port}/");
    let pod = Estuary::spawn(&["--storage-root", root.as_str()], &[("ESTUARY_CLUSTER_REDIS_URL", url.as_str())]);
    assert_eq!(get(pod.edge, "/healthz").await.status, 200);
    assert_eq!(get(pod.edge, "/vod/sample.mp4/master.m3u8").await.status, 200);

    let _redis = RedisServer::start_on(port);
    let body = format!(r#"{{"id":"news","token":"{TOKEN}","target_duration":"2s"}}"#);
    let created =
        send_body(pod.api, "POST", "/api/v1/channels", &[("Content-Type", "application/json")], body.as_bytes()).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let push = Push { preemptive_auth: true, seconds: 30, ..Push::default() };
    let _encoder = Encoder::start(pod.ingest.unwrap(), "news", TOKEN, push);
    playlist_when(&pod, Duration::from_secs(20), |p| p.segments.len() >= 2).await;
}

/// `cluster.redundant_ingest = "refuse"`: a second pod answers a channel's uploads with 409 while
/// another pod takes its stream.
#[tokio::test(flavor = "multi_thread")]
async fn redundant_ingest_can_be_refused() {
    let cluster = Cluster::start(2, &[("ESTUARY_CLUSTER_REDUNDANT_INGEST", "refuse")]);
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    create(a, r#""target_duration":"2s""#).await;
    let prefix = format!("/ingest/news/{TOKEN}/v0");
    push_sample(a.ingest.unwrap(), &prefix, &[], 201).await;
    push_sample(b.ingest.unwrap(), &prefix, &[], 409).await;
    let refused = send_body(b.ingest.unwrap(), "PUT", &format!("{prefix}/index.m3u8"), &[], b"#EXTM3U\n").await;
    assert!(refused.text().contains("another pod"), "{}", refused.text());
}

/// Waits up to `limit` for `pod`'s API to show `channel` as `ok` says (or answer `status`).
async fn api_when(pod: &Estuary, channel: &str, limit: Duration, ok: impl Fn(u16, &serde_json::Value) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let r = get(pod.api, &format!("/api/v1/channels/{channel}")).await;
        let shown = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
        if ok(r.status, &shown) {
            return;
        }
        assert!(Instant::now() < deadline, "{channel} on {}: {} {shown}", pod.api, r.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Channels are managed through any pod: a create never replaces another pod's channel, and a key
/// rotation, stop, start and delete made on pod B reach the channel pod A writes; a stop with no pod
/// writing the channel ends its shared timeline.
#[tokio::test(flavor = "multi_thread")]
async fn channels_are_managed_through_any_pod() {
    let mut cluster = Cluster::start(3, &[]);
    let c = cluster.pods.pop().unwrap();
    let [a, b] = &cluster.pods[..] else { unreachable!() };
    create(a, r#""target_duration":"2s""#).await;
    let json = [("Content-Type", "application/json")];
    let again = send_body(b.api, "POST", "/api/v1/channels", &json, br#"{"id":"news"}"#).await;
    assert_eq!(again.status, 409, "one channel per id across pods: {}", again.text());
    push_sample(a.ingest.unwrap(), &format!("/ingest/news/{TOKEN}/v0"), &[], 201).await;
    playlist_when(b, Duration::from_secs(10), |p| !p.segments.is_empty()).await;

    // A key rotated on B: A refuses the old key once it hears of it, and takes the new one.
    let rotated = send_body(b.api, "POST", "/api/v1/channels/news/rotate-key", &[], b"").await;
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let key =
        serde_json::from_slice::<serde_json::Value>(&rotated.body).unwrap()["stream_key"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let init = common::live_push::sample_hls("init.mp4");
    loop {
        let old = send_body(a.ingest.unwrap(), "PUT", &format!("/ingest/news/{TOKEN}/v0/init.mp4"), &[], &init).await;
        if old.status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "the old key still works on A: {}", old.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    push_sample(a.ingest.unwrap(), &format!("/ingest/news/{key}/v0"), &[], 201).await;

    // Stopped on B: A (the owner) ends the channel, so every pod's playlist closes; started on B: A
    // takes uploads again.
    assert_eq!(send_body(b.api, "POST", "/api/v1/channels/news/stop", &[], b"").await.status, 200);
    api_when(a, "news", Duration::from_secs(10), |_, v| v["accepting_uploads"] == false).await;
    playlist_when(b, Duration::from_secs(10), |p| p.end_list).await;
    assert_eq!(send_body(b.api, "POST", "/api/v1/channels/news/start", &[], b"").await.status, 200);
    api_when(a, "news", Duration::from_secs(10), |_, v| v["accepting_uploads"] == true).await;

    // Deleted (purged) on B: A drops it, every pod answers 404, storage is cleared.
    assert_eq!(send_body(b.api, "DELETE", "/api/v1/channels/news?purge=true", &[], b"").await.status, 204);
    api_when(a, "news", Duration::from_secs(10), |status, _| status == 404).await;
    for pod in [a, b, &c] {
        assert_eq!(get(pod.edge, "/live/news/v0.m3u8").await.status, 404, "{}", pod.edge);
        assert_eq!(get(pod.api, "/api/v1/channels/news").await.status, 404, "{}", pod.api);
    }
    for dir in ["live/news", ".estuary/live/news"] {
        let files = common::files_below(&cluster.dir.path().join(dir));
        assert!(files.is_empty(), "{dir} purged: {files:?}");
    }

    // A channel whose only pod died: a stop through another pod ends its shared timeline.
    create(&c, r#""target_duration":"2s""#).await;
    push_sample(c.ingest.unwrap(), &format!("/ingest/news/{TOKEN}/v0"), &[], 201).await;
    playlist_when(b, Duration::from_secs(10), |p| !p.segments.is_empty() && !p.end_list).await;
    drop(c);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(send_body(b.api, "POST", "/api/v1/channels/news/stop", &[], b"").await.status, 200);
    playlist_when(a, Duration::from_secs(10), |p| p.end_list).await;
}

/// `rediss://`: the pods talk to Redis over TLS (ElastiCache with in-transit encryption), verifying
/// its certificate against the system's roots (`SSL_CERT_FILE` here names the test CA); a pod that
/// does not trust the CA cannot reach the control store, and says so (503), rather than talk in clear.
#[tokio::test(flavor = "multi_thread")]
async fn pods_talk_to_redis_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (redis, ca) = RedisServer::start_tls(certs.path());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rediss://127.0.0.1:{}/", redis.port);
    let ca = ca.to_str().unwrap().to_owned();
    let root = dir.path().to_str().unwrap().to_owned();
    let pod = |trusted: bool| {
        let mut env =
            vec![("ESTUARY_CLUSTER_REDIS_URL", url.as_str()), ("ESTUARY_CLUSTER_INTERNAL_ADDR", "127.0.0.1:0")];
        if trusted {
            env.push(("SSL_CERT_FILE", ca.as_str()));
        }
        Estuary::spawn(&["--storage-root", root.as_str()], &env)
    };
    let (a, b, stranger) = (pod(true), pod(true), pod(false));
    create(&a, r#""target_duration":"2s""#).await;
    push_sample(a.ingest.unwrap(), &format!("/ingest/news/{TOKEN}/v0"), &[], 201).await;
    let on_b = playlist_when(&b, Duration::from_secs(10), |p| !p.segments.is_empty()).await;
    assert_eq!(on_b.segments.len(), 1);
    let refused = get(stranger.api, "/api/v1/channels/news").await;
    assert_eq!(refused.status, 503, "a pod that does not trust the CA: {}", refused.text());
    assert_eq!(get(stranger.edge, "/live/news/v0.m3u8").await.status, 503);
}
