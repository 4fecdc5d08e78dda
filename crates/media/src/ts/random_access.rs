//! PURE: where a pushed MPEG-TS segment's keyframes lie, for a live I-frame playlist: each video
//! PES that a random-access indicator opens, from its first packet to its last (audio packets
//! interleaved with it included), when the segment opens with its tables (PAT and PMT, and an SDT
//! as ffmpeg writes first): the map the ranges are played after.

use super::PACKET;

/// A keyframe's PES in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframePes {
    pub offset: u64,
    pub len: u64,
    /// Its presentation time (90 kHz, 33 bits), when the PES header gives one.
    pub pts: Option<u64>,
}

/// What a segment's keyframes are played after, and where they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomAccess {
    /// Length of the tables that open the segment (its first packets, up to and with the PMT).
    pub tables: u64,
    pub keyframes: Vec<KeyframePes>,
}

/// The SDT's PID: ffmpeg writes one before the PAT.
const SDT_PID: u16 = 0x11;

/// Every keyframe PES of `ts`; `None` when the segment does not open with its PAT and PMT (an SDT
/// may come first), or carries no H.264 or HEVC.
pub fn keyframes(ts: &[u8]) -> Option<RandomAccess> {
    let packets: Vec<&[u8]> = ts.chunks_exact(PACKET).collect();
    let pid = |p: &[u8]| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF;
    let opens = |p: &&[u8], want: u16| p[0] == 0x47 && pid(p) == want && p[1] & 0x40 != 0;
    let at_pat = packets.iter().take(2).position(|p| opens(p, 0))?;
    if packets[..at_pat].iter().any(|p| pid(p) != SDT_PID) {
        return None;
    }
    let pat = payload(packets[at_pat])?;
    let section = pat.get(1 + usize::from(*pat.first()?)..)?;
    let pmt_pid = section.get(10..12).map(|b| u16::from_be_bytes([b[0], b[1]]) & 0x1FFF)?;
    let pmt_packet = packets.get(at_pat + 1).filter(|p| opens(p, pmt_pid))?;
    let pmt = payload(pmt_packet)?;
    let streams = super::probe::pmt_streams(pmt.get(1 + usize::from(*pmt.first()?)..)?);
    let video = streams.iter().find(|(_, stream_type)| matches!(stream_type, 0x1B | 0x24 | 0xDB))?.0;
    let mut found = Vec::new();
    // The keyframe PES being read: its first byte, the end of its last packet so far, its PTS.
    let mut open: Option<(usize, usize, Option<u64>)> = None;
    let close = |(start, last, pts): (usize, usize, Option<u64>)| KeyframePes {
        offset: start as u64,
        len: (last - start) as u64,
        pts,
    };
    for (i, p) in packets.iter().enumerate().filter(|(_, p)| p[0] == 0x47 && pid(p) == video) {
        let (at, end) = (i * PACKET, (i + 1) * PACKET);
        if p[1] & 0x40 != 0 {
            if let Some(frame) = open.take() {
                found.push(close(frame));
            }
            // An adaptation field with the random-access indicator opens a keyframe.
            if p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x40 != 0 {
                open = Some((at, end, payload(p).and_then(pes_pts)));
            }
        } else if let Some((_, last, _)) = &mut open {
            *last = end;
        }
    }
    found.extend(open.map(close));
    Some(RandomAccess { tables: ((at_pat + 2) * PACKET) as u64, keyframes: found })
}

/// The PTS of a PES header.
fn pes_pts(pes: &[u8]) -> Option<u64> {
    let [0, 0, 1, _, _, _, _, flags, _, b9, b10, b11, b12, b13, ..] = *pes else { return None };
    (flags & 0x80 != 0).then(|| {
        (u64::from(b9 >> 1) & 7) << 30
            | u64::from(b10) << 22
            | u64::from(b11 >> 1) << 15
            | u64::from(b12) << 7
            | u64::from(b13 >> 1)
    })
}

/// A packet's payload, after any adaptation field.
fn payload(p: &[u8]) -> Option<&[u8]> {
    let afc = (p[3] >> 4) & 3;
    let at = if afc & 2 != 0 { 5 + usize::from(p[4]) } else { 4 };
    (afc & 1 != 0).then(|| p.get(at..)).flatten()
}
