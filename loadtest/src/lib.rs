//! estuary-load: players, not `wrk`. Each virtual player fetches what a real one does (master,
//! media playlists or MPD, init and media segments, live reloads) on its own keep-alive connection,
//! and the run reports requests, throughput, time to first byte by request kind, errors, stalls.

pub mod dash;
pub mod hls;
pub mod http;
pub mod ll_hls;
mod playback;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use stats::{Report, Stats};

/// What the players do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// HLS VOD: master, variant, init, segments in order (looping).
    Vod,
    /// Live HLS: join near the edge, reload the playlist, fetch each new segment.
    Live,
    /// Live HLS, with every player joining within `--ramp` (the kick-off).
    Spike,
    /// LL-HLS: join `PART-HOLD-BACK` behind the edge, follow the parts through preload hints and
    /// `_HLS_msn` + `_HLS_part` blocking reloads; latency is reported behind the wall clock.
    LlHls,
    /// DASH: the MPD, then init and segments (VOD or live by the MPD's type).
    Dash,
    /// Every player connects, then all GET the URL once at the same moment (a cold-cache stampede, as from
    /// the CDN's already open connections).
    Burst,
}

/// How fast a VOD player fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// As a player does: keep ~12 s of buffer, fetch more as it plays out.
    Realtime,
    /// As fast as the server answers.
    Fast,
}

/// Which variant a player takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abr {
    Fixed(usize),
    Random,
    /// Start with the lowest; move to the best the measured throughput allows.
    Throughput,
}

/// What each player is told.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub pace: Pace,
    pub abr: Abr,
    /// Live: `_HLS_msn` blocking reloads instead of polling every half target duration.
    pub blocking: bool,
    pub deadline: Instant,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: Scenario,
    /// One URL per origin (pod): player `i` plays from `urls[i % urls.len()]`, so the players are
    /// spread evenly across them. Empty: no players start.
    pub urls: Vec<String>,
    pub players: u64,
    pub duration: Duration,
    /// Players join evenly over this time.
    pub ramp: Duration,
    pub pace: Pace,
    pub abr: Abr,
    pub blocking: bool,
    /// A progress line on stderr every second.
    pub progress: bool,
    /// Sent with every request (an origin lock's header, an auth token).
    pub headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
}

/// Runs every player until the deadline and reports.
pub async fn run(cfg: RunConfig) -> Report {
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let opts = Options { pace: cfg.pace, abr: cfg.abr, blocking: cfg.blocking, deadline };
    let ticker = cfg.progress.then(|| tokio::spawn(progress(stats.clone(), start, cfg.players)));
    let mut players = Vec::with_capacity(cfg.players as usize);
    let burst =
        Arc::new(tokio::sync::Barrier::new(if cfg.scenario == Scenario::Burst { cfg.players as usize } else { 0 }));
    let shared_headers: std::sync::Arc<[(::http::HeaderName, ::http::HeaderValue)]> = cfg.headers.clone().into();
    for i in 0..cfg.players {
        let burst = burst.clone();
        let Some(url) = cfg.urls.get(i as usize % cfg.urls.len().max(1)).cloned() else { break };
        let stats = stats.clone();
        let headers = shared_headers.clone();
        let delay = cfg.ramp.mul_f64(i as f64 / cfg.players.max(1) as f64);
        let scenario = cfg.scenario;
        players.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if Instant::now() >= deadline {
                return;
            }
            let player = http::Player::new(stats, headers);
            let seed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            match scenario {
                Scenario::Vod => hls::vod(&player, &url, &opts, seed).await,
                Scenario::Live | Scenario::Spike => hls::live(&player, &url, &opts, seed).await,
                Scenario::LlHls => ll_hls::play(&player, &url, &opts, seed).await,
                Scenario::Dash => dash::play(&player, &url, &opts).await,
                Scenario::Burst => {
                    player.connect(&url).await;
                    burst.wait().await;
                    if player.get(stats::Kind::Segment, &url).await.is_some() {
                        player.stats().player_started();
                    }
                }
            }
        }));
    }
    // Players stop at the deadline; a request in flight may take a little longer.
    let grace = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline + Duration::from_secs(35)));
    tokio::pin!(grace);
    for p in players {
        tokio::select! {
            _ = p => {}
            _ = &mut grace => break,
        }
    }
    if let Some(t) = ticker {
        t.abort();
    }
    let name = format!("{:?}", cfg.scenario).to_lowercase();
    stats.report(&name, cfg.players, start.elapsed())
}

async fn progress(stats: Arc<Stats>, start: Instant, players: u64) {
    let mut last = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (req, bytes) = (stats.requests.load(Ordering::Relaxed), stats.bytes.load(Ordering::Relaxed));
        eprintln!(
            "t={:>4.0}s players={players} started={} req/s={} MiB/s={:.1} errors={} stalls={}",
            start.elapsed().as_secs_f64(),
            stats.started.load(Ordering::Relaxed),
            req - last.0,
            (bytes - last.1) as f64 / 1048576.0,
            stats.errors.load(Ordering::Relaxed),
            stats.stalls.load(Ordering::Relaxed)
        );
        last = (req, bytes);
    }
}
