//! The LL-HLS player: joins `PART-HOLD-BACK` behind the live edge and follows the video rendition
//! (and the audio one) part by part, as hls.js in low-latency mode does: a part the playlist lists is
//! fetched at once; the next one is asked for through its preload hint (held by the server until it
//! exists) together with a blocking reload (`_HLS_msn` + `_HLS_part`) that lists it. Latency is the
//! wall clock minus the program date-time of the play position.

use std::time::{Duration, Instant, SystemTime};

use crate::http::{Player, resolve};
use crate::playback::Playback;
use crate::stats::Kind;
use crate::{Options, Pace};

/// A part as a media playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub msn: u64,
    pub index: u32,
    pub uri: String,
    pub duration: f64,
    /// When its first frame was made (the segment's program date-time plus the parts before it).
    pub pdt: Option<SystemTime>,
}

/// What an LL-HLS player reads from a media playlist (m3u8-rs has no LL-HLS tags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LowLatencyPlaylist {
    pub map: Option<String>,
    /// Every listed part, whole segments' and the open segment's, in order.
    pub parts: Vec<Part>,
    /// Segments listed whole (by `EXTINF`): their parts are all listed.
    pub last_whole_msn: Option<u64>,
    pub preload_hint: Option<String>,
    pub part_hold_back: Option<f64>,
    pub ended: bool,
}

fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[at..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next(),
        None => rest.split(',').next(),
    }
}

fn parse_pdt(text: &str) -> Option<SystemTime> {
    let ms = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?.timestamp_millis();
    (ms >= 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64))
}

impl LowLatencyPlaylist {
    pub fn parse(text: &str) -> LowLatencyPlaylist {
        let mut p = LowLatencyPlaylist::default();
        let mut msn = 0u64;
        let mut index = 0u32;
        let mut segment_pdt: Option<SystemTime> = None;
        let mut into_segment = 0.0;
        let mut listed_whole = false;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                msn = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
                msn += attribute(v, "SKIPPED-SEGMENTS").and_then(|n| n.parse().ok()).unwrap_or(0);
            } else if line.starts_with("#EXT-X-MAP:") {
                p.map = attribute(line, "URI").map(str::to_owned);
            } else if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                p.part_hold_back = attribute(v, "PART-HOLD-BACK").and_then(|n| n.parse().ok());
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                segment_pdt = parse_pdt(v);
                into_segment = 0.0;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
                let duration: f64 = attribute(v, "DURATION").and_then(|n| n.parse().ok()).unwrap_or(0.0);
                if let Some(uri) = attribute(v, "URI") {
                    let pdt = segment_pdt.map(|t| t + Duration::from_secs_f64(into_segment));
                    p.parts.push(Part { msn, index, uri: uri.to_owned(), duration, pdt });
                }
                index += 1;
                into_segment += duration;
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                let duration: f64 = v.split(',').next().and_then(|n| n.trim().parse().ok()).unwrap_or(0.0);
                // The next segment starts where this one ends, unless a program date-time says otherwise.
                segment_pdt = segment_pdt.map(|t| t + Duration::from_secs_f64(duration));
                into_segment = 0.0;
                listed_whole = true;
            } else if !line.starts_with('#') && !line.trim().is_empty() && listed_whole {
                p.last_whole_msn = Some(msn);
                msn += 1;
                index = 0;
                listed_whole = false;
            } else if line.starts_with("#EXT-X-PRELOAD-HINT:") && attribute(line, "TYPE") == Some("PART") {
                p.preload_hint = attribute(line, "URI").map(str::to_owned);
            } else if line.starts_with("#EXT-X-ENDLIST") {
                p.ended = true;
            }
        }
        p
    }

    /// Where a player joining now starts: the part `hold_back` seconds of parts before the end.
    fn join_at(&self, hold_back: f64) -> Option<&Part> {
        let mut behind = 0.0;
        for part in self.parts.iter().rev() {
            behind += part.duration;
            if behind >= hold_back {
                return Some(part);
            }
        }
        self.parts.first()
    }

    /// The part after (`msn`, `index`) as far as this playlist knows: its next part, or the next
    /// segment's first once `msn` is listed whole.
    fn after(&self, msn: u64, index: u32) -> (u64, u32) {
        let whole = self.last_whole_msn.is_some_and(|w| w >= msn);
        let more = self.parts.iter().any(|p| p.msn == msn && p.index == index + 1);
        if whole && !more { (msn + 1, 0) } else { (msn, index + 1) }
    }

    /// (`msn`, `index`) moved on to the next segment's first part when `msn` is listed whole without
    /// such a part (its parts made up the segment, or left the playlist).
    fn settle(&self, msn: u64, index: u32) -> (u64, u32) {
        let whole = self.last_whole_msn.is_some_and(|w| w >= msn);
        if whole && self.find(msn, index).is_none() { (msn + 1, 0) } else { (msn, index) }
    }

    fn find(&self, msn: u64, index: u32) -> Option<&Part> {
        self.parts.iter().find(|p| p.msn == msn && p.index == index)
    }
}

/// One rendition followed part by part.
struct Follower {
    url: String,
    playlist: LowLatencyPlaylist,
    next: (u64, u32),
}

impl Follower {
    async fn join(player: &Player, url: String, hold_back: Option<f64>) -> Option<Follower> {
        let fetched = player.get(Kind::Playlist, &url).await?;
        let playlist = LowLatencyPlaylist::parse(std::str::from_utf8(&fetched.body).ok()?);
        let hold_back = hold_back.or(playlist.part_hold_back).unwrap_or(1.5);
        let start = playlist.join_at(hold_back)?;
        let next = (start.msn, start.index);
        if let Some(map) = &playlist.map {
            player.get(Kind::Init, &resolve(&url, map)).await?;
        }
        Some(Follower { url, playlist, next })
    }

    /// Fetches the next part; `None` when the rendition is over or the deadline came.
    async fn next_part(&mut self, player: &Player, deadline: Instant) -> Option<Part> {
        while Instant::now() < deadline {
            self.next = self.playlist.settle(self.next.0, self.next.1);
            let (msn, index) = self.next;
            if let Some(part) = self.playlist.find(msn, index).cloned() {
                self.next = self.playlist.after(msn, index);
                player.get(Kind::Part, &resolve(&self.url, &part.uri)).await;
                return Some(part);
            }
            if self.playlist.ended {
                return None;
            }
            // Not listed yet: the hinted part (held by the server until it exists) and a playlist
            // that lists it, asked for together.
            let sep = if self.url.contains('?') { '&' } else { '?' };
            let reload = format!("{}{sep}_HLS_msn={msn}&_HLS_part={index}", self.url);
            let hint = self.playlist.preload_hint.as_deref().map(|h| resolve(&self.url, h));
            let wanted = |h: &String| h.ends_with(&format!("/{msn}.{index}.m4s"));
            let held = async {
                match hint.filter(wanted) {
                    Some(url) => player.get(Kind::Part, &url).await.is_some(),
                    None => false,
                }
            };
            let (got, listed) = tokio::join!(held, player.get(Kind::Playlist, &reload));
            match listed.and_then(|f| String::from_utf8(f.body.to_vec()).ok()) {
                Some(text) => self.playlist = LowLatencyPlaylist::parse(&text),
                None => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            if got && let Some(part) = self.playlist.find(msn, index).cloned() {
                self.next = self.playlist.after(msn, index);
                return Some(part);
            }
        }
        None
    }
}

/// Plays `url` (a multivariant playlist) in low-latency mode until the deadline.
pub async fn play(player: &Player, url: &str, opts: &Options, seed: u64) {
    let Some(master) = player.get(Kind::Master, url).await else { return };
    let Ok(m3u8_rs::Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(&master.body) else { return };
    let mut variants: Vec<_> = master.variants.iter().filter(|v| !v.is_i_frame).collect();
    variants.sort_by_key(|v| v.bandwidth);
    let Some(variant) = variants.get(crate::hls::pick(opts.abr, variants.len(), seed)) else { return };
    let audio = master
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
        .find_map(|a| a.uri.as_ref())
        .map(|u| resolve(url, u));
    let Some(mut video) = Follower::join(player, resolve(url, &variant.uri), None).await else { return };
    let audio = match audio {
        // The audio joins at the same media time as the video.
        Some(a) => Follower::join(player, a, video.playlist.part_hold_back).await,
        None => None,
    };
    let deadline = opts.deadline;
    // Playback starts with the hold back buffered, as it does where the parts reach that far back.
    let hold_back = video.playlist.part_hold_back.unwrap_or(1.5);
    let video_side = async {
        let mut playback = Playback::new(Pace::Realtime).with_startup(hold_back);
        let mut start: Option<SystemTime> = None;
        while let Some(part) = video.next_part(player, deadline).await {
            playback.arrived(part.duration, player.stats());
            start = start.or(part.pdt);
            if let Some(start) = start {
                let position = start + Duration::from_secs_f64(playback.played());
                if let Ok(behind) = SystemTime::now().duration_since(position) {
                    player.stats().live_latency(behind);
                }
            }
        }
    };
    let audio_side = async {
        if let Some(mut audio) = audio {
            while audio.next_part(player, deadline).await.is_some() {}
        }
    };
    tokio::join!(video_side, audio_side);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.800\n\
        #EXT-X-PART-INF:PART-TARGET=0.600\n#EXT-X-MEDIA-SEQUENCE:8\n#EXT-X-MAP:URI=\"v0/5/init.mp4\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-27T19:09:06.500Z\n#EXTINF:2.000000,\nv0/5/8.m4s\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-27T19:09:08.500Z\n\
        #EXT-X-PART:DURATION=0.52000,URI=\"v0/5/9.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.52000,URI=\"v0/5/9.1.m4s\"\n#EXTINF:1.040000,\nv0/5/9.m4s\n\
        #EXT-X-PART:DURATION=0.52000,URI=\"v0/5/10.0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v0/5/10.1.m4s\"\n\
        #EXT-X-RENDITION-REPORT:URI=\"a0.m3u8\",LAST-MSN=10,LAST-PART=0\n";

    #[test]
    fn parts_hints_and_hold_back_are_read() {
        let p = LowLatencyPlaylist::parse(PLAYLIST);
        assert_eq!(p.map.as_deref(), Some("v0/5/init.mp4"));
        assert_eq!(p.part_hold_back, Some(1.8));
        assert_eq!(p.preload_hint.as_deref(), Some("v0/5/10.1.m4s"));
        assert_eq!(p.last_whole_msn, Some(9));
        let ids: Vec<_> = p.parts.iter().map(|x| (x.msn, x.index)).collect();
        assert_eq!(ids, [(9, 0), (9, 1), (10, 0)]);
        // 19:09:08.5 plus one part; segment 10 follows on from segment 9's end.
        let at = |s: f64| parse_pdt("2026-11-27T19:09:08.500Z").unwrap() + Duration::from_secs_f64(s);
        assert_eq!(p.parts[1].pdt, Some(at(0.52)));
        assert_eq!(p.parts[2].pdt, Some(at(1.04)));
        assert_eq!(parse_pdt("1970-01-01T00:01:00Z"), Some(SystemTime::UNIX_EPOCH + Duration::from_secs(60)));
    }

    #[test]
    fn a_player_joins_behind_the_edge_and_walks_the_parts() {
        let p = LowLatencyPlaylist::parse(PLAYLIST);
        assert_eq!(p.join_at(1.0).map(|x| (x.msn, x.index)), Some((9, 1)));
        assert_eq!(p.join_at(9.0).map(|x| (x.msn, x.index)), Some((9, 0)), "no further back than listed");
        assert_eq!(p.after(9, 0), (9, 1));
        assert_eq!(p.after(9, 1), (10, 0), "segment 9 is whole");
        assert_eq!(p.after(10, 0), (10, 1), "segment 10 is still being made");
        assert_eq!(p.settle(9, 2), (10, 0), "segment 9 had two parts");
        assert_eq!(p.settle(10, 1), (10, 1));
        assert_eq!(p.settle(3, 0), (4, 0), "parts gone from the playlist");
    }
}
