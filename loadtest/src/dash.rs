//! DASH players: read the MPD (`SegmentTemplate` with `SegmentTimeline` or `@duration`), play one video
//! and one audio representation; a static MPD is played like VOD, a dynamic one followed at the live edge.

use std::time::{Duration, Instant};

use crate::http::{Player, resolve};
use crate::playback::Playback;
use crate::stats::Kind;
use crate::{Options, Pace};

/// One representation's segments in one period.
#[derive(Debug, Clone)]
struct Rep {
    init: Option<String>,
    /// (number, start time, duration) in `timescale` units.
    segments: Vec<(u64, u64, u64)>,
    timescale: u64,
    media: String,
    id: String,
    bandwidth: u64,
}

impl Rep {
    fn url(&self, base: &str, template: &str, number: u64, time: u64) -> String {
        let mut s =
            template.replace("$RepresentationID$", &self.id).replace("$Bandwidth$", &self.bandwidth.to_string());
        s = s.replace("$Time$", &time.to_string());
        if let Some(start) = s.find("$Number") {
            let end = s[start + 1..].find('$').map_or(s.len(), |e| start + 2 + e);
            let spec = &s[start..end];
            let width = spec
                .strip_prefix("$Number%0")
                .and_then(|w| w.trim_end_matches("d$").parse::<usize>().ok())
                .unwrap_or(0);
            s = format!("{}{number:0width$}{}", &s[..start], &s[end..]);
        }
        resolve(base, &s)
    }
}

/// What a player needs from an MPD.
struct Manifest {
    dynamic: bool,
    update: Duration,
    video: Option<Rep>,
    audio: Option<Rep>,
}

fn attr<'a>(n: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    n.attribute(name)
}

fn parse(base: &str, text: &str) -> Option<Manifest> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let mpd = doc.root_element();
    let dynamic = attr(mpd, "type") == Some("dynamic");
    let update =
        attr(mpd, "minimumUpdatePeriod").and_then(iso_secs).map_or(Duration::from_secs(2), Duration::from_secs_f64);
    // The last period is the one that is playing (live) or the only one (VOD).
    let period = mpd.children().rfind(|n| n.has_tag_name("Period"))?;
    let mut video = None;
    let mut audio = None;
    for set in period.children().filter(|n| n.has_tag_name("AdaptationSet")) {
        let content = attr(set, "contentType")
            .or(attr(set, "mimeType").map(|m| if m.starts_with("audio") { "audio" } else { "video" }));
        let set_template = set.children().find(|n| n.has_tag_name("SegmentTemplate"));
        let mut reps: Vec<Rep> = set
            .children()
            .filter(|n| n.has_tag_name("Representation"))
            .filter_map(|r| rep(base, r, set_template))
            .collect();
        reps.sort_by_key(|r| r.bandwidth);
        let slot = if content == Some("audio") { &mut audio } else { &mut video };
        if slot.is_none() {
            *slot = reps.into_iter().next();
        }
    }
    Some(Manifest { dynamic, update, video, audio })
}

fn rep(base: &str, r: roxmltree::Node<'_, '_>, inherited: Option<roxmltree::Node<'_, '_>>) -> Option<Rep> {
    let template = r.children().find(|n| n.has_tag_name("SegmentTemplate")).or(inherited)?;
    let timescale: u64 = attr(template, "timescale").and_then(|t| t.parse().ok()).unwrap_or(1);
    let start_number: u64 = attr(template, "startNumber").and_then(|t| t.parse().ok()).unwrap_or(1);
    let mut rep = Rep {
        init: None,
        segments: Vec::new(),
        timescale,
        media: attr(template, "media")?.to_owned(),
        id: attr(r, "id")?.to_owned(),
        bandwidth: attr(r, "bandwidth").and_then(|b| b.parse().ok()).unwrap_or(0),
    };
    if let Some(init) = attr(template, "initialization") {
        rep.init = Some(rep.url(base, init, start_number, 0));
    }
    match template.children().find(|n| n.has_tag_name("SegmentTimeline")) {
        Some(timeline) => {
            let (mut number, mut t) = (start_number, 0u64);
            for s in timeline.children().filter(|n| n.has_tag_name("S")) {
                if let Some(start) = attr(s, "t").and_then(|v| v.parse().ok()) {
                    t = start;
                }
                let d: u64 = attr(s, "d").and_then(|v| v.parse().ok())?;
                let repeat: u64 = attr(s, "r").and_then(|v| v.parse().ok()).unwrap_or(0);
                for _ in 0..=repeat.min(100_000) {
                    rep.segments.push((number, t, d));
                    number += 1;
                    t += d;
                }
            }
        }
        None => {
            let d: u64 = attr(template, "duration").and_then(|v| v.parse().ok())?;
            for k in 0..100 {
                rep.segments.push((start_number + k, k * d, d));
            }
        }
    }
    Some(rep)
}

/// `PT1H2M3.5S` in seconds.
fn iso_secs(s: &str) -> Option<f64> {
    let body = s.strip_prefix("PT")?;
    let mut total = 0.0;
    let mut num = String::new();
    for c in body.chars() {
        match c {
            'H' => total += num.parse::<f64>().ok()? * 3600.0,
            'M' => total += num.parse::<f64>().ok()? * 60.0,
            'S' => total += num.parse::<f64>().ok()?,
            _ => {
                num.push(c);
                continue;
            }
        }
        num.clear();
    }
    Some(total)
}

async fn fetch_manifest(player: &Player, url: &str) -> Option<Manifest> {
    let fetched = player.get(Kind::Manifest, url).await?;
    parse(url, std::str::from_utf8(&fetched.body).ok()?)
}

pub async fn play(player: &Player, url: &str, opts: &Options) {
    let Some(mut manifest) = fetch_manifest(player, url).await else { return };
    let pace = if manifest.dynamic { Pace::Realtime } else { opts.pace };
    let mut playback = Playback::new(pace);
    let mut inits: Vec<Option<String>> = vec![None, None];
    // Live players join three segments behind the edge.
    let mut next_number = match (&manifest.video, manifest.dynamic) {
        (Some(v), true) => v.segments.len().checked_sub(3).map_or(0, |i| v.segments[i].0),
        (Some(v), false) => v.segments.first().map_or(0, |s| s.0),
        _ => return,
    };
    while Instant::now() < opts.deadline {
        let Some(video) = manifest.video.clone() else { return };
        let pending: Vec<(u64, u64, u64)> = video.segments.iter().copied().filter(|s| s.0 >= next_number).collect();
        for (number, time, duration) in &pending {
            if Instant::now() >= opts.deadline {
                return;
            }
            for (slot, rep) in [&manifest.video, &manifest.audio].into_iter().enumerate() {
                let Some(rep) = rep else { continue };
                if inits[slot] != rep.init
                    && let Some(init) = &rep.init
                {
                    player.get(Kind::Init, init).await;
                    inits[slot] = rep.init.clone();
                }
                // Audio is fetched by time: the segment that starts where the video one does, or the nearest.
                let seg = if slot == 0 {
                    Some((*number, *time))
                } else {
                    let at = *time as f64 / video.timescale as f64;
                    rep.segments
                        .iter()
                        .min_by(|a, b| {
                            let ta = (a.1 as f64 / rep.timescale as f64 - at).abs();
                            let tb = (b.1 as f64 / rep.timescale as f64 - at).abs();
                            ta.total_cmp(&tb)
                        })
                        .map(|s| (s.0, s.1))
                };
                if let Some((n, t)) = seg {
                    player.get(Kind::Segment, &rep.url(url, &rep.media, n, t)).await;
                }
            }
            playback.arrived(*duration as f64 / video.timescale as f64, player.stats());
            playback.pace(opts.deadline).await;
            next_number = number + 1;
        }
        if !manifest.dynamic {
            // VOD: start over from the beginning.
            next_number = video.segments.first().map_or(0, |s| s.0);
            continue;
        }
        tokio::time::sleep(manifest.update).await;
        if let Some(m) = fetch_manifest(player, url).await {
            manifest = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_estuary_mpds() {
        let mpd = r#"<?xml version="1.0"?><MPD type="static"><Period id="0">
          <AdaptationSet contentType="video"><Representation id="v0" bandwidth="500">
            <SegmentTemplate timescale="12800" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="1">
              <SegmentTimeline><S t="0" d="76800" r="1"/><S d="51200"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet>
          <AdaptationSet contentType="audio"><Representation id="a0" bandwidth="96">
            <SegmentTemplate timescale="48000" initialization="$RepresentationID$/init.mp4" media="chunk-$Number%05d$.m4s" startNumber="1">
              <SegmentTimeline><S t="0" d="96000" r="2"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>"#;
        let m = parse("http://h/vod/a.mp4/manifest.mpd", mpd).unwrap();
        let v = m.video.unwrap();
        assert_eq!(v.segments, [(1, 0, 76800), (2, 76800, 76800), (3, 153600, 51200)]);
        assert_eq!(v.init.as_deref(), Some("http://h/vod/a.mp4/v0/init.mp4"));
        assert_eq!(v.url("http://h/vod/a.mp4/manifest.mpd", &v.media, 2, 0), "http://h/vod/a.mp4/v0/2.m4s");
        let a = m.audio.unwrap();
        assert_eq!(a.url("http://h/x/manifest.mpd", &a.media, 7, 0), "http://h/x/chunk-00007.m4s");
        assert_eq!(iso_secs("PT1M2.5S"), Some(62.5));
    }
}
