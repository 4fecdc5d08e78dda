//! The LL-HLS media playlist as the writer renders it, held to the rules; and the rules catching
//! each way a playlist can break them.

use std::time::SystemTime;

use super::*;
use crate::manifest::hls::write_media_playlist;
use crate::manifest::{MediaPlaylist, MediaSegment, ObjectUri, PartialSegment, RenditionReport, ServerControl};
use crate::url::{Container, LivePath};

fn low_latency(skipped: Option<u64>) -> String {
    let (v0, a0) = ("v0".parse().unwrap(), "a0".parse().unwrap());
    let part = |msn, i, independent| PartialSegment {
        duration: 0.5,
        uri: ObjectUri::Live(LivePath::Part(v0, 5, msn, i)),
        independent,
    };
    let segment = |msn: u64, parts: Vec<PartialSegment>| MediaSegment {
        duration: 2.0,
        uri: ObjectUri::Live(LivePath::Segment(v0, 5, msn, Container::Fmp4)),
        map: (msn == 10).then_some(ObjectUri::Live(LivePath::Init(v0, 5))),
        discontinuity: false,
        program_date_time: (msn == 10).then_some(SystemTime::UNIX_EPOCH),
        gap: false,
        parts,
        key: None,
    };
    let playlist = MediaPlaylist {
        target_duration: 2,
        media_sequence: 10,
        discontinuity_sequence: Some(0),
        playlist_type: None,
        server_control: Some(ServerControl {
            can_block_reload: true,
            part_hold_back: Some(1.5),
            can_skip_until: Some(12.0),
        }),
        part_target: Some(0.5),
        skipped_segments: skipped,
        segments: vec![segment(10, Vec::new()), segment(11, (0..4).map(|i| part(11, i, i == 0)).collect())],
        open_parts: vec![part(12, 0, true), part(12, 1, false)],
        open_key: None,
        preload_hint: Some(ObjectUri::Live(LivePath::Part(v0, 5, 12, 2))),
        rendition_reports: vec![RenditionReport {
            uri: ObjectUri::Live(LivePath::Playlist(a0)),
            last_msn: 12,
            last_part: Some(1),
        }],
        ended: false,
        protection: None,
    };
    let mut out = String::new();
    write_media_playlist(&mut out, &playlist);
    out
}

#[test]
fn the_writer_renders_ll_hls_that_keeps_the_rules() {
    let text = low_latency(None);
    assert_eq!(
        text,
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.500\n\
         #EXT-X-PART-INF:PART-TARGET=0.500\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-MAP:URI=\"v0/5/init.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n#EXTINF:2.000000,\nv0/5/10.m4s\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"v0/5/11.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"v0/5/11.1.m4s\"\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"v0/5/11.2.m4s\"\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"v0/5/11.3.m4s\"\n#EXTINF:2.000000,\nv0/5/11.m4s\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"v0/5/12.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.50000,URI=\"v0/5/12.1.m4s\"\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v0/5/12.2.m4s\"\n\
         #EXT-X-RENDITION-REPORT:URI=\"a0.m3u8\",LAST-MSN=12,LAST-PART=1\n"
    );
    assert_eq!(media_playlist_problems(&text), Vec::<String>::new());
    let delta = low_latency(Some(40));
    assert!(delta.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n"), "{delta}");
    assert!(delta.contains("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SKIP:SKIPPED-SEGMENTS=40\n"), "{delta}");
    assert_eq!(media_playlist_problems(&delta), Vec::<String>::new());
}

#[test]
fn each_broken_rule_is_named() {
    let good = low_latency(None);
    let broken = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        media_playlist_problems(&good.replace(from, to))
    };
    let cases = [
        (broken("PART-TARGET=0.500", "PART-TARGET=0.400"), "over PART-TARGET"),
        (broken("PART-HOLD-BACK=1.500", "PART-HOLD-BACK=0.900"), "under twice PART-TARGET"),
        (broken(",PART-HOLD-BACK=1.500", ""), "without PART-HOLD-BACK"),
        (broken("CAN-BLOCK-RELOAD=YES,", ""), "without CAN-BLOCK-RELOAD"),
        (broken("CAN-SKIP-UNTIL=12.000", "CAN-SKIP-UNTIL=6.000"), "under six target durations"),
        (broken("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v0/5/12.2.m4s\"\n", ""), "without EXT-X-PRELOAD-HINT"),
        (broken("#EXT-X-PART-INF:PART-TARGET=0.500\n", ""), "without EXT-X-PART-INF"),
        (broken("#EXTINF:2.000000,\nv0/5/11.m4s", "#EXTINF:2.600000,\nv0/5/11.m4s"), "rounds above"),
        (broken("#EXT-X-VERSION:6", "#EXT-X-VERSION:5"), "EXT-X-MAP needs"),
        (
            broken("#EXT-X-INDEPENDENT-SEGMENTS\n", "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"),
            "EXT-X-SKIP needs",
        ),
    ];
    for (problems, expected) in cases {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:?}");
    }
    // Closed: no hint needed.
    let ended = good.replace("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"v0/5/12.2.m4s\"\n", "") + "#EXT-X-ENDLIST\n";
    assert_eq!(media_playlist_problems(&ended), Vec::<String>::new());
}
