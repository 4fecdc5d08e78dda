//! HLS players: VOD (variant choice, optional throughput ABR, paced or flat out, looping) and live
//! (joining near the edge, polling or blocking reload, stall and latency accounting).

use std::time::{Duration, Instant, SystemTime};

use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};

use crate::http::{Player, resolve};
use crate::playback::Playback;
use crate::stats::Kind;
use crate::{Abr, Options};

/// A variant (or audio rendition) being played.
struct Track {
    url: String,
    playlist: MediaPlaylist,
    init: Option<String>,
}

impl Track {
    async fn load(player: &Player, url: String, kind: Kind) -> Option<Track> {
        let fetched = player.get(kind, &url).await?;
        let playlist = m3u8_rs::parse_media_playlist_res(&fetched.body).ok()?;
        Some(Track { url, playlist, init: None })
    }

    fn segment_url(&self, i: usize) -> Option<String> {
        self.playlist.segments.get(i).map(|s| resolve(&self.url, &s.uri))
    }

    fn map_url(&self, i: usize) -> Option<String> {
        self.playlist.segments[..=i.min(self.playlist.segments.len().saturating_sub(1))]
            .iter()
            .rev()
            .find_map(|s| s.map.as_ref())
            .map(|m| resolve(&self.url, &m.uri))
    }

    /// Fetches the init segment for segment `i` when it differs from the one already loaded.
    async fn ensure_init(&mut self, player: &Player, i: usize) {
        let want = self.map_url(i);
        if want.is_some() && want != self.init {
            if let Some(url) = &want {
                player.get(Kind::Init, url).await;
            }
            self.init = want;
        }
    }
}

/// Variants by bandwidth, and the URL of the default audio rendition.
fn variants(master_url: &str, master: &MasterPlaylist) -> (Vec<(u64, String)>, Option<String>) {
    let mut v: Vec<(u64, String)> =
        master.variants.iter().filter(|v| !v.is_i_frame).map(|v| (v.bandwidth, resolve(master_url, &v.uri))).collect();
    v.sort();
    let audio = master
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio && a.uri.is_some())
        .max_by_key(|a| a.default)
        .and_then(|a| a.uri.as_ref())
        .map(|u| resolve(master_url, u));
    (v, audio)
}

pub(crate) fn pick(abr: Abr, count: usize, seed: u64) -> usize {
    match abr {
        Abr::Fixed(i) => i.min(count.saturating_sub(1)),
        Abr::Random => (seed as usize) % count.max(1),
        Abr::Throughput => 0,
    }
}

/// Loads the master (or a media playlist given directly) and the chosen renditions.
async fn open(
    player: &Player,
    url: &str,
    opts: &Options,
    seed: u64,
) -> Option<(Vec<(u64, String)>, usize, Track, Option<Track>)> {
    let fetched = player.get(Kind::Master, url).await?;
    match m3u8_rs::parse_playlist_res(&fetched.body).ok()? {
        Playlist::MasterPlaylist(master) => {
            let (variants, audio) = variants(url, &master);
            if variants.is_empty() {
                return None;
            }
            let chosen = pick(opts.abr, variants.len(), seed);
            let video = Track::load(player, variants[chosen].1.clone(), Kind::Playlist).await?;
            let audio = match audio {
                Some(a) => Some(Track::load(player, a, Kind::Playlist).await?),
                None => None,
            };
            Some((variants, chosen, video, audio))
        }
        Playlist::MediaPlaylist(playlist) => {
            Some((vec![(0, url.to_owned())], 0, Track { url: url.to_owned(), playlist, init: None }, None))
        }
    }
}

pub async fn vod(player: &Player, url: &str, opts: &Options, seed: u64) {
    let Some((variants, mut chosen, mut video, mut audio)) = open(player, url, opts, seed).await else { return };
    let mut playback = Playback::new(opts.pace);
    let mut throughput: Option<f64> = None;
    let mut i = 0usize;
    while Instant::now() < opts.deadline && !video.playlist.segments.is_empty() {
        if i >= video.playlist.segments.len() {
            i = 0;
        }
        video.ensure_init(player, i).await;
        let Some(seg_url) = video.segment_url(i) else { break };
        let Some(fetched) = player.get(Kind::Segment, &seg_url).await else {
            i += 1;
            continue;
        };
        if let Some(a) = audio.as_mut()
            && !a.playlist.segments.is_empty()
        {
            let j = i.min(a.playlist.segments.len() - 1);
            a.ensure_init(player, j).await;
            if let Some(u) = a.segment_url(j) {
                player.get(Kind::Segment, &u).await;
            }
        }
        playback.arrived(f64::from(video.playlist.segments[i].duration), player.stats());
        if opts.abr == Abr::Throughput {
            let bps = fetched.body.len() as f64 * 8.0 / fetched.elapsed.as_secs_f64().max(1e-6);
            let estimate = throughput.map_or(bps, |t| 0.7 * t + 0.3 * bps);
            throughput = Some(estimate);
            let best = variants.iter().rposition(|(bw, _)| (*bw as f64) <= 0.8 * estimate).unwrap_or(0);
            if best != chosen
                && let Some(t) = Track::load(player, variants[best].1.clone(), Kind::Playlist).await
            {
                chosen = best;
                video = t;
            }
        }
        playback.pace(opts.deadline).await;
        i += 1;
    }
}

fn pdt(seg: &m3u8_rs::MediaSegment) -> Option<SystemTime> {
    let ms = seg.program_date_time.as_ref()?.timestamp_millis();
    (ms >= 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64))
}

pub async fn live(player: &Player, url: &str, opts: &Options, seed: u64) {
    let Some((_, _, mut video, mut audio)) = open(player, url, opts, seed).await else { return };
    let mut playback = Playback::new(crate::Pace::Realtime);
    let len = video.playlist.segments.len();
    let mut next_msn = video.playlist.media_sequence + len.saturating_sub(3) as u64;
    let mut start_pdt: Option<SystemTime> = None;
    let target = Duration::from_secs(video.playlist.target_duration.max(1));
    while Instant::now() < opts.deadline {
        // Fetch every listed segment from `next_msn` on.
        let first = video.playlist.media_sequence;
        let mut fetched_any = false;
        for idx in next_msn.saturating_sub(first) as usize..video.playlist.segments.len() {
            if Instant::now() >= opts.deadline {
                return;
            }
            video.ensure_init(player, idx).await;
            let Some(u) = video.segment_url(idx) else { break };
            if player.get(Kind::Segment, &u).await.is_none() {
                next_msn = first + idx as u64 + 1;
                continue;
            }
            let msn = first + idx as u64;
            if let Some(a) = audio.as_mut()
                && let Some(j) = msn
                    .checked_sub(a.playlist.media_sequence)
                    .map(|j| j as usize)
                    .filter(|&j| j < a.playlist.segments.len())
            {
                a.ensure_init(player, j).await;
                if let Some(u) = a.segment_url(j) {
                    player.get(Kind::Segment, &u).await;
                }
            }
            let seg = &video.playlist.segments[idx];
            if start_pdt.is_none() {
                start_pdt = pdt(seg);
            }
            playback.arrived(f64::from(seg.duration), player.stats());
            next_msn = msn + 1;
            fetched_any = true;
        }
        // Latency behind the live edge: the newest segment's end against the play position.
        if fetched_any
            && let (Some(start), Some(last)) = (start_pdt, video.playlist.segments.last())
            && let Some(edge) = pdt(last).map(|t| t + Duration::from_secs_f64(f64::from(last.duration)))
        {
            let position = start + Duration::from_secs_f64(playback.played());
            if let Ok(behind) = edge.duration_since(position) {
                player.stats().live_latency(behind);
            }
        }
        if video.playlist.end_list {
            return;
        }
        let reload = if opts.blocking {
            format!("{}{}_HLS_msn={next_msn}", video.url, if video.url.contains('?') { '&' } else { '?' })
        } else {
            tokio::time::sleep(target / 2).await;
            video.url.clone()
        };
        match player.get(Kind::Playlist, &reload).await.and_then(|f| m3u8_rs::parse_media_playlist_res(&f.body).ok()) {
            Some(p) => video.playlist = p,
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
        if let Some(a) = audio.as_mut()
            && let Some(p) = player
                .get(Kind::Playlist, &a.url.clone())
                .await
                .and_then(|f| m3u8_rs::parse_media_playlist_res(&f.body).ok())
        {
            a.playlist = p;
        }
    }
}
