//! A small MPEG-TS analyser for the tests: per packet its PID, continuity counter, PCR and flags,
//! and the checks a stream must pass as a player reads its segments one after the other.

use std::collections::HashMap;

pub const PACKET: usize = 188;

#[derive(Debug, Clone, Copy)]
pub struct TsPacket {
    pub pid: u16,
    pub start: bool,
    pub has_payload: bool,
    pub cc: u8,
    pub random_access: bool,
    pub discontinuity: bool,
    /// 27 MHz.
    pub pcr: Option<u64>,
}

pub fn packets(ts: &[u8]) -> Vec<TsPacket> {
    assert_eq!(ts.len() % PACKET, 0, "not a whole number of packets");
    ts.chunks(PACKET)
        .map(|p| {
            assert_eq!(p[0], 0x47, "sync byte");
            let afc = (p[3] >> 4) & 3;
            let field = afc & 2 != 0 && p[4] > 0;
            let flags = if field { p[5] } else { 0 };
            let pcr = (flags & 0x10 != 0).then(|| {
                let b = &p[6..12];
                let base = (u64::from(b[0]) << 25)
                    | (u64::from(b[1]) << 17)
                    | (u64::from(b[2]) << 9)
                    | (u64::from(b[3]) << 1)
                    | u64::from(b[4] >> 7);
                base * 300 + ((u64::from(b[4] & 1) << 8) | u64::from(b[5]))
            });
            TsPacket {
                pid: u16::from_be_bytes([p[1], p[2]]) & 0x1FFF,
                start: p[1] & 0x40 != 0,
                has_payload: afc & 1 != 0,
                cc: p[3] & 15,
                random_access: flags & 0x40 != 0,
                discontinuity: flags & 0x80 != 0,
                pcr,
            }
        })
        .collect()
}

/// Checks segments as one stream: each opens with PAT then PMT; every PID's continuity counter
/// goes up by one per packet with payload, across segment boundaries too; the PCR never goes back.
/// Returns the PCR PID's packet count with a PCR.
pub fn assert_continuous(segments: &[Vec<u8>], label: &str) -> usize {
    let mut last: HashMap<u16, u8> = HashMap::new();
    let mut last_pcr = None;
    let mut pcrs = 0;
    for (n, segment) in segments.iter().enumerate() {
        let ps = packets(segment);
        assert_eq!((ps[0].pid, ps[1].pid), (0, 0x1000), "{label}: segment {n} opens with PAT and PMT");
        for (i, p) in ps.iter().enumerate() {
            assert!(!p.discontinuity, "{label}: segment {n} packet {i} says discontinuity");
            if p.has_payload {
                if let Some(prev) = last.get(&p.pid).copied() {
                    assert_eq!(p.cc, (prev + 1) & 15, "{label}: segment {n} packet {i} PID {:#x} counter", p.pid);
                }
                last.insert(p.pid, p.cc);
            }
            if let Some(pcr) = p.pcr {
                assert!(last_pcr.is_none_or(|l| pcr > l), "{label}: segment {n} packet {i}: the PCR went back");
                last_pcr = Some(pcr);
                pcrs += 1;
            }
        }
    }
    pcrs
}
