//! PURE: the transport stream of one segment: PAT and PMT first, then each PES packet cut into
//! 188-byte TS packets, with per-PID continuity counters, a PCR and the random-access flag where
//! a PES starts, and adaptation-field stuffing so that every packet is whole.

use bytes::{BufMut, Bytes, BytesMut};

use super::PACKET;

pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
const PAT_PID: u16 = 0;
const PROGRAM: u16 = 1;
/// Bytes of a TS packet after its 4-byte header.
const BODY: usize = PACKET - 4;

/// One elementary stream of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream<'a> {
    pub pid: u16,
    pub stream_type: u8,
    /// Its descriptors in the PMT (none for a clear stream).
    pub descriptors: &'a [u8],
}

/// One PES packet to write.
#[derive(Debug, Clone, Copy)]
pub struct Pes<'a> {
    pub pid: u16,
    /// 0xE0 (video) or 0xC0 (audio).
    pub stream_id: u8,
    /// 90 kHz.
    pub pts: u64,
    /// 90 kHz; written only when it differs from `pts`.
    pub dts: u64,
    /// 27 MHz; a PCR in this PES's first packet.
    pub pcr: Option<u64>,
    pub random_access: bool,
    pub payload: &'a [u8],
}

/// A segment being written.
pub struct TsWriter {
    out: BytesMut,
    /// Continuity counters by PID, as `(pid, next)`.
    counters: Vec<(u16, u8)>,
}

impl TsWriter {
    /// A segment whose packets of each PID continue from `counters` (`(pid, next counter)`; PIDs
    /// not named start at 0).
    pub fn new(counters: &[(u16, u8)], capacity: usize) -> TsWriter {
        TsWriter { out: BytesMut::with_capacity(capacity), counters: counters.to_vec() }
    }

    fn next_counter(&mut self, pid: u16) -> u8 {
        let at = match self.counters.iter().position(|&(p, _)| p == pid) {
            Some(i) => i,
            None => {
                self.counters.push((pid, 0));
                self.counters.len() - 1
            }
        };
        let cc = self.counters[at].1;
        self.counters[at].1 = (cc + 1) & 0x0F;
        cc
    }

    /// PAT and PMT, one packet each.
    pub fn tables(&mut self, streams: &[Stream<'_>], pcr_pid: u16) {
        let mut pat = Vec::with_capacity(16);
        pat.extend_from_slice(&PROGRAM.to_be_bytes());
        pat.extend_from_slice(&(0xE000 | PMT_PID).to_be_bytes());
        self.section(PAT_PID, 0x00, 1, &pat);
        let mut pmt = Vec::with_capacity(4 + 5 * streams.len());
        pmt.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
        pmt.extend_from_slice(&0xF000u16.to_be_bytes());
        for s in streams {
            pmt.push(s.stream_type);
            pmt.extend_from_slice(&(0xE000 | s.pid).to_be_bytes());
            pmt.extend_from_slice(&(0xF000 | s.descriptors.len() as u16).to_be_bytes());
            pmt.extend_from_slice(s.descriptors);
        }
        self.section(PMT_PID, 0x02, PROGRAM, &pmt);
    }

    /// A PSI section (`table_id`, its id field, its body) in one packet, after a pointer field.
    fn section(&mut self, pid: u16, table_id: u8, id: u16, body: &[u8]) {
        let mut section = Vec::with_capacity(12 + body.len());
        section.push(table_id);
        // Section syntax, reserved bits, length: what follows the length field, CRC included.
        let len = 5 + body.len() + 4;
        section.extend_from_slice(&(0xB000 | len as u16).to_be_bytes());
        section.extend_from_slice(&id.to_be_bytes());
        section.extend_from_slice(&[0xC1, 0, 0]);
        section.extend_from_slice(body);
        section.extend_from_slice(&crc32(&section).to_be_bytes());
        let cc = self.next_counter(pid);
        self.header(pid, true, 1, cc);
        self.out.put_u8(0);
        self.out.put_slice(&section);
        self.out.put_bytes(0xFF, BODY - 1 - section.len());
    }

    fn header(&mut self, pid: u16, start: bool, adaptation: u8, cc: u8) {
        self.out.put_u8(0x47);
        self.out.put_u16((u16::from(start) << 14) | (pid & 0x1FFF));
        self.out.put_u8((adaptation << 4) | cc);
    }

    /// One PES packet, in as many TS packets as it takes.
    pub fn pes(&mut self, pes: &Pes<'_>) {
        let header = pes_header(pes);
        let total = header.len() + pes.payload.len();
        let mut sent = 0;
        let mut first = true;
        while sent < total {
            // The adaptation field: its length byte, flags and a PCR on the first packet where
            // wanted; grown with stuffing when the rest does not fill the packet.
            let flagged = first && (pes.pcr.is_some() || pes.random_access);
            let pcr = pes.pcr.filter(|_| first);
            let content = if flagged { 1 + if pcr.is_some() { 6 } else { 0 } } else { 0 };
            let mut field = if flagged { 1 + content } else { 0 };
            let left = total - sent;
            if left < BODY - field {
                field = BODY - left;
            }
            let cc = self.next_counter(pes.pid);
            self.header(pes.pid, first, if field > 0 { 0b11 } else { 0b01 }, cc);
            if field > 0 {
                self.out.put_u8((field - 1) as u8);
                if field > 1 {
                    let flags =
                        if pes.random_access && first { 0x40 } else { 0 } | if pcr.is_some() { 0x10 } else { 0 };
                    self.out.put_u8(flags);
                    if let Some(pcr) = pcr {
                        self.out.put_slice(&pcr_bytes(pcr));
                    }
                    // Stuffing after the flags (and PCR).
                    let written = 1 + if pcr.is_some() { 6 } else { 0 };
                    self.out.put_bytes(0xFF, field - 1 - written);
                }
            }
            let n = BODY - field;
            let end = sent + n;
            // The PES header, then the payload.
            if sent < header.len() {
                let from_header = &header[sent..header.len().min(end)];
                self.out.put_slice(from_header);
                let rest = n - from_header.len();
                self.out.put_slice(&pes.payload[..rest]);
            } else {
                self.out.put_slice(&pes.payload[sent - header.len()..end - header.len()]);
            }
            sent = end;
            first = false;
        }
    }

    /// The segment, and each PID's next continuity counter.
    pub fn finish(self) -> (Bytes, Vec<(u16, u8)>) {
        (self.out.freeze(), self.counters)
    }
}

/// What sets how many TS packets a PES takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesShape {
    /// Bytes of elementary stream.
    pub payload: usize,
    /// Its DTS differs from its PTS (both are written).
    pub dts_differs: bool,
    /// Its first packet carries the PCR.
    pub pcr: bool,
    /// Its first packet is flagged a random access point.
    pub random_access: bool,
}

/// How many TS packets [`TsWriter::pes`] writes for a PES of this shape.
pub fn pes_packets(pes: PesShape) -> usize {
    let total = pes_header_len(pes.dts_differs) + pes.payload;
    let first = BODY - first_field(pes);
    if total <= first { 1 } else { 1 + (total - first).div_ceil(BODY) }
}

/// The most payload a PES of this shape (its `payload` aside) carries in `packets` TS packets (at
/// least one).
pub fn pes_capacity(pes: PesShape, packets: usize) -> usize {
    (BODY - first_field(pes)).saturating_sub(pes_header_len(pes.dts_differs)) + packets.saturating_sub(1) * BODY
}

/// The adaptation field of a PES's first packet: a PCR with the flags, or the flags alone.
fn first_field(pes: PesShape) -> usize {
    if pes.pcr {
        8
    } else if pes.random_access {
        2
    } else {
        0
    }
}

fn pes_header_len(dts_differs: bool) -> usize {
    9 + if dts_differs { 10 } else { 5 }
}

fn pes_header(pes: &Pes<'_>) -> Vec<u8> {
    let with_dts = pes.dts != pes.pts;
    let mut h = Vec::with_capacity(pes_header_len(with_dts));
    h.extend_from_slice(&[0, 0, 1, pes.stream_id]);
    let length = pes.payload.len() + 3 + if with_dts { 10 } else { 5 };
    // Video PES may leave their length unbounded (0); audio ones are always short enough.
    let field = if pes.stream_id >= 0xE0 || length > 0xFFFF { 0 } else { length as u16 };
    h.extend_from_slice(&field.to_be_bytes());
    // '10', not scrambled, data aligned; PTS (and DTS) present.
    h.push(0x84);
    h.push(if with_dts { 0xC0 } else { 0x80 });
    h.push(if with_dts { 10 } else { 5 });
    h.extend_from_slice(&timestamp(if with_dts { 0b0011 } else { 0b0010 }, pes.pts));
    if with_dts {
        h.extend_from_slice(&timestamp(0b0001, pes.dts));
    }
    h
}

/// A 33-bit PTS or DTS with its 4-bit prefix and marker bits.
fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    let t = t & ((1 << 33) - 1);
    [
        (prefix << 4) | (((t >> 30) as u8 & 0x07) << 1) | 1,
        (t >> 22) as u8,
        (((t >> 15) as u8) << 1) | 1,
        (t >> 7) as u8,
        ((t as u8) << 1) | 1,
    ]
}

/// A 27 MHz PCR as its 33-bit base (90 kHz), 6 reserved bits and 9-bit extension.
fn pcr_bytes(pcr: u64) -> [u8; 6] {
    let base = (pcr / 300) & ((1 << 33) - 1);
    let ext = pcr % 300;
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        (((base & 1) as u8) << 7) | 0x7E | ((ext >> 8) as u8 & 1),
        ext as u8,
    ]
}

/// CRC-32/MPEG-2 of a PSI section.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_whole_packets_with_valid_crcs() {
        let mut w = TsWriter::new(&[(PAT_PID, 5)], 0);
        let streams = [
            Stream { pid: VIDEO_PID, stream_type: 0x1B, descriptors: &[] },
            Stream { pid: AUDIO_PID, stream_type: 0x0F, descriptors: &[] },
        ];
        w.tables(&streams, VIDEO_PID);
        let (ts, counters) = w.finish();
        assert_eq!(ts.len(), 2 * PACKET);
        assert_eq!(&ts[..4], &[0x47, 0x40, 0x00, 0x15], "PAT: PUSI, PID 0, payload only, counter 5");
        assert_eq!(counters, [(PAT_PID, 6), (PMT_PID, 1)]);
        for packet in ts.chunks(PACKET) {
            let len = usize::from(u16::from_be_bytes([packet[6], packet[7]]) & 0x0FFF);
            let section = &packet[5..5 + 3 + len];
            // The CRC of a section with its CRC is 0.
            assert_eq!(crc32(section), 0);
        }
        assert_eq!(&ts[PACKET + 5 + 12..PACKET + 5 + 17], &[0x1B, 0xE1, 0x00, 0xF0, 0x00]);
    }

    #[test]
    fn pes_fill_whole_packets_in_every_size() {
        for size in [0, 1, 150, 160, 162, 163, 164, 165, 166, 170, 183, 184, 1000, 65_000] {
            for (pcr, ra, dts) in [(true, true, 3000), (false, false, 3000), (false, true, 0)] {
                let payload = vec![0xAB; size];
                let pes = Pes {
                    pid: VIDEO_PID,
                    stream_id: 0xE0,
                    pts: 3000,
                    dts,
                    pcr: pcr.then_some(27_000_000),
                    random_access: ra,
                    payload: &payload,
                };
                let mut w = TsWriter::new(&[], 0);
                w.pes(&pes);
                let (ts, counters) = w.finish();
                let packets = ts.len() / PACKET;
                assert_eq!(ts.len() % PACKET, 0, "{size}");
                let shape = PesShape { payload: size, dts_differs: dts != 3000, pcr, random_access: ra };
                assert_eq!(packets, pes_packets(shape), "{size} {pcr} {ra}");
                // The capacity of that many packets holds it, one packet fewer does not.
                assert!(size <= pes_capacity(shape, packets), "{size}");
                assert!(packets == 1 || size > pes_capacity(shape, packets - 1), "{size}");
                assert_eq!(counters, [(VIDEO_PID, (packets % 16) as u8)]);
                // Every payload byte is there once, in order, after the PES header.
                let mut body = Vec::new();
                for p in ts.chunks(PACKET) {
                    let start = if p[3] & 0x20 != 0 { 5 + usize::from(p[4]) } else { 4 };
                    body.extend_from_slice(&p[start..]);
                }
                assert_eq!(&body[..4], &[0, 0, 1, 0xE0]);
                assert_eq!(&body[pes_header_len(dts != 3000)..], &payload[..], "{size}");
            }
        }
    }

    #[test]
    fn timestamps_and_pcr_are_encoded_as_the_standard_says() {
        assert_eq!(timestamp(0b0010, 0), [0x21, 0, 1, 0, 1]);
        // 2^33 - 1: every bit set.
        assert_eq!(timestamp(0b0010, (1 << 33) - 1), [0x2F, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(pcr_bytes(300), [0, 0, 0, 0, 0xFE, 0]);
        assert_eq!(pcr_bytes(299), [0, 0, 0, 0, 0x7F, 0x2B]);
    }
}
