//! PURE: the payloads of the track boxes the index needs (`tkhd`, `mdhd`, `elst` and the seven
//! sample tables), read with the bounds-checked [`Reader`]. Every entry count is checked against the
//! bytes that hold the entries before anything is allocated.

use super::boxes::Reader;
use super::tables::StscRun;
use crate::PackagingError;

/// Reads a full box's version and flags.
fn version(r: &mut Reader<'_>) -> Result<u8, PackagingError> {
    let version = r.u8()?;
    r.skip(3)?;
    Ok(version)
}

/// An entry count that the remaining bytes can hold at `entry_len` bytes each.
fn count(r: &mut Reader<'_>, entry_len: usize, what: &str) -> Result<usize, PackagingError> {
    let n = r.u32()? as usize;
    if n > r.rest().len() / entry_len {
        return Err(PackagingError::malformed(format!("'{what}' is shorter than its entry count says")));
    }
    Ok(n)
}

/// `tkhd`: the track id and display size (16.16 fixed point, integer part).
pub fn tkhd(payload: &[u8]) -> Result<(u32, (u32, u32)), PackagingError> {
    let mut r = Reader::new(payload, "tkhd");
    let v = version(&mut r)?;
    // creation and modification times
    r.skip(if v == 1 { 16 } else { 8 })?;
    let id = r.u32()?;
    // reserved, duration, reserved, layer, alternate group, volume, reserved, matrix
    r.skip(4 + if v == 1 { 8 } else { 4 } + 8 + 2 + 2 + 2 + 2 + 36)?;
    let (width, height) = (r.u32()? >> 16, r.u32()? >> 16);
    Ok((id, (width, height)))
}

/// `mdhd`: the media timescale and ISO 639-2/T language (`und` when unset).
pub fn mdhd(payload: &[u8]) -> Result<(u32, String), PackagingError> {
    let mut r = Reader::new(payload, "mdhd");
    let v = version(&mut r)?;
    r.skip(if v == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    r.skip(if v == 1 { 8 } else { 4 })?;
    let packed = r.u16()?;
    let language: String = [10, 5, 0]
        .iter()
        .map(|shift| ((packed >> shift) & 0x1f) as u8 + 0x60)
        .filter(u8::is_ascii_lowercase)
        .map(char::from)
        .collect();
    Ok((timescale, if language.len() == 3 { language } else { "und".to_owned() }))
}

/// `elst`: its version and (segment duration, raw media time) entries.
pub fn elst(payload: &[u8]) -> Result<(u8, Vec<(u64, u64)>), PackagingError> {
    let mut r = Reader::new(payload, "elst");
    let v = version(&mut r)?;
    let entry_len = if v == 1 { 20 } else { 12 };
    let n = count(&mut r, entry_len, "elst")?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let entry = if v == 1 { (r.u64()?, r.u64()?) } else { (u64::from(r.u32()?), u64::from(r.u32()?)) };
        r.skip(4)?; // media rate
        entries.push(entry);
    }
    Ok((v, entries))
}

/// A track's edit list reduced to what fragmented output carries:
/// an initial presentation delay and where in the media presentation starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Edit {
    /// Empty-edit time before the media starts, in the movie timescale.
    pub delay: u64,
    /// Media time (track timescale) shown at the start: B-frame delay, AAC priming.
    pub media_time: u64,
}

/// Leading empty edits become a delay; the first media edit gives the media start.
/// Later edits (rare outside editing suites) are not represented in fragmented output.
pub fn reduce_edit_list(version: u8, entries: impl Iterator<Item = (u64, u64)>) -> Edit {
    let mut edit = Edit::default();
    for (segment_duration, raw_media_time) in entries {
        let media_time = if version == 1 { raw_media_time as i64 } else { i64::from(raw_media_time as u32 as i32) };
        if media_time < 0 {
            edit.delay = edit.delay.saturating_add(segment_duration);
        } else {
            edit.media_time = media_time as u64;
            break;
        }
    }
    edit
}

/// `elst` reduced to what fragmented output carries ([`reduce_edit_list`]).
pub fn edit(payload: &[u8]) -> Result<Edit, PackagingError> {
    let (version, entries) = elst(payload)?;
    Ok(reduce_edit_list(version, entries.into_iter()))
}

/// `stts`: (sample count, sample delta) runs.
pub fn stts(payload: &[u8]) -> Result<Vec<(u32, u32)>, PackagingError> {
    pairs(payload, "stts")
}

/// `ctts`: (sample count, composition offset) runs; version 0 offsets are read as signed, as
/// encoders write negative ones in either version.
pub fn ctts(payload: &[u8]) -> Result<Vec<(u32, i32)>, PackagingError> {
    Ok(pairs(payload, "ctts")?.into_iter().map(|(n, offset)| (n, offset as i32)).collect())
}

fn pairs(payload: &[u8], what: &'static str) -> Result<Vec<(u32, u32)>, PackagingError> {
    let mut r = Reader::new(payload, what);
    version(&mut r)?;
    let n = count(&mut r, 8, what)?;
    (0..n).map(|_| Ok((r.u32()?, r.u32()?))).collect()
}

/// `stss`: 1-based sync sample numbers.
pub fn stss(payload: &[u8]) -> Result<Vec<u32>, PackagingError> {
    let mut r = Reader::new(payload, "stss");
    version(&mut r)?;
    let n = count(&mut r, 4, "stss")?;
    (0..n).map(|_| r.u32()).collect()
}

/// `stsc`: sample-to-chunk runs.
pub fn stsc(payload: &[u8]) -> Result<Vec<StscRun>, PackagingError> {
    let mut r = Reader::new(payload, "stsc");
    version(&mut r)?;
    let n = count(&mut r, 12, "stsc")?;
    (0..n).map(|_| Ok(StscRun { first_chunk: r.u32()?, samples_per_chunk: r.u32()?, description: r.u32()? })).collect()
}

/// `stsz`: a constant sample size (non-zero) and the count, or one size per sample.
pub fn stsz(payload: &[u8]) -> Result<(u32, u32, Vec<u32>), PackagingError> {
    let mut r = Reader::new(payload, "stsz");
    version(&mut r)?;
    let size = r.u32()?;
    if size != 0 {
        return Ok((size, r.u32()?, Vec::new()));
    }
    let n = count(&mut r, 4, "stsz")?;
    let sizes = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    Ok((0, n as u32, sizes))
}

/// `stco` (32-bit) or `co64` (64-bit) chunk offsets.
pub fn chunk_offsets(payload: &[u8], wide: bool) -> Result<Vec<u64>, PackagingError> {
    let what = if wide { "co64" } else { "stco" };
    let mut r = Reader::new(payload, what);
    version(&mut r)?;
    let n = count(&mut r, if wide { 8 } else { 4 }, what)?;
    (0..n).map(|_| if wide { r.u64() } else { r.u32().map(u64::from) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_read_and_refuse_counts_their_bytes_cannot_hold() {
        let stts_box = [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 20];
        assert_eq!(stts(&stts_box).unwrap(), [(3, 10), (1, 20)]);
        let lying = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 3, 0, 0, 0, 10];
        assert!(matches!(stts(&lying), Err(PackagingError::Malformed(m)) if m.contains("entry count")));
        let ctts_box = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe];
        assert_eq!(ctts(&ctts_box).unwrap(), [(1, -2)]);
        let constant = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9];
        assert_eq!(stsz(&constant).unwrap(), (256, 9, vec![]));
        let co64 = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(chunk_offsets(&co64, true).unwrap(), [1 << 32]);
        assert!(chunk_offsets(&co64[..12], true).is_err());
    }

    #[test]
    fn edit_lists_reduce_to_delay_and_start() {
        let v0 = |d: u64, t: i32| (d, t as u32 as u64);
        assert_eq!(reduce_edit_list(0, [v0(80, -1), v0(0, 1024)].into_iter()), Edit { delay: 80, media_time: 1024 });
        assert_eq!(reduce_edit_list(1, [(5, u64::MAX), (0, 7)].into_iter()), Edit { delay: 5, media_time: 7 });
        assert_eq!(reduce_edit_list(0, std::iter::empty()), Edit::default());
    }

    #[test]
    fn languages_unpack() {
        // `eng`, packed as three 5-bit letters after a pad bit.
        let packed: u16 = ((b'e' - 0x60) as u16) << 10 | ((b'n' - 0x60) as u16) << 5 | (b'g' - 0x60) as u16;
        let mut payload = vec![0; 4 + 8 + 4 + 4];
        payload[12..16].copy_from_slice(&90_000u32.to_be_bytes());
        payload.extend_from_slice(&packed.to_be_bytes());
        assert_eq!(mdhd(&payload).unwrap(), (90_000, "eng".to_owned()));
        payload.truncate(payload.len() - 2);
        payload.extend_from_slice(&[0, 0]);
        assert_eq!(mdhd(&payload).unwrap().1, "und");
    }

    /// mp4-atom, an independent reader, agrees on every table and header of the sample's tracks.
    #[test]
    fn agrees_with_mp4_atom_on_the_sample() {
        use mp4_atom::Decode;

        use super::super::boxes::{self, find, find_path};
        use crate::sample::SAMPLE_MP4;

        let moov = crate::inspect::moov_of(SAMPLE_MP4, 64 << 20).unwrap();
        let moov = boxes::boxes(moov).next().unwrap().unwrap();
        let mut tracks = 0;
        for trak in boxes::boxes(moov.payload) {
            let trak = trak.unwrap();
            if &trak.kind != b"trak" {
                continue;
            }
            tracks += 1;
            let stbl = find_path(trak.payload, &[b"mdia", b"minf", b"stbl"]).unwrap().unwrap();
            let table = |kind: &[u8; 4]| find(stbl.payload, kind).unwrap();
            let decode = |b: boxes::BoxRef<'_>| b.bytes.to_vec();

            let stts_box = table(b"stts").unwrap();
            let theirs = mp4_atom::Stts::decode(&mut &decode(stts_box)[..]).unwrap();
            let ours = stts(stts_box.payload).unwrap();
            assert_eq!(ours, theirs.entries.iter().map(|e| (e.sample_count, e.sample_delta)).collect::<Vec<_>>());

            let stsc_box = table(b"stsc").unwrap();
            let theirs = mp4_atom::Stsc::decode(&mut &decode(stsc_box)[..]).unwrap();
            let ours: Vec<_> = stsc(stsc_box.payload)
                .unwrap()
                .iter()
                .map(|r| (r.first_chunk, r.samples_per_chunk, r.description))
                .collect();
            let expected: Vec<_> = theirs
                .entries
                .iter()
                .map(|e| (e.first_chunk, e.samples_per_chunk, e.sample_description_index))
                .collect();
            assert_eq!(ours, expected);

            let stsz_box = table(b"stsz").unwrap();
            let theirs = mp4_atom::Stsz::decode(&mut &decode(stsz_box)[..]).unwrap();
            match (stsz(stsz_box.payload).unwrap(), theirs.samples) {
                ((0, n, sizes), mp4_atom::StszSamples::Different { sizes: expected }) => {
                    assert_eq!((n as usize, sizes), (expected.len(), expected));
                }
                ((size, n, _), mp4_atom::StszSamples::Identical { count, size: expected }) => {
                    assert_eq!((size, n), (expected, count));
                }
                (ours, theirs) => panic!("{ours:?} vs {theirs:?}"),
            }

            let stco_box = table(b"stco").unwrap();
            let theirs = mp4_atom::Stco::decode(&mut &decode(stco_box)[..]).unwrap();
            let expected: Vec<u64> = theirs.entries.iter().map(|&o| u64::from(o)).collect();
            assert_eq!(chunk_offsets(stco_box.payload, false).unwrap(), expected);

            if let Some(stss_box) = table(b"stss") {
                let theirs = mp4_atom::Stss::decode(&mut &decode(stss_box)[..]).unwrap();
                assert_eq!(stss(stss_box.payload).unwrap(), theirs.entries);
            }
            if let Some(ctts_box) = table(b"ctts") {
                let theirs = mp4_atom::Ctts::decode(&mut &decode(ctts_box)[..]).unwrap();
                let expected: Vec<(u32, i32)> =
                    theirs.entries.iter().map(|e| (e.sample_count, e.sample_offset as i32)).collect();
                assert_eq!(ctts(ctts_box.payload).unwrap(), expected);
            }

            let mdhd_box = find_path(trak.payload, &[b"mdia", b"mdhd"]).unwrap().unwrap();
            let theirs = mp4_atom::Mdhd::decode(&mut &decode(mdhd_box)[..]).unwrap();
            assert_eq!(mdhd(mdhd_box.payload).unwrap(), (theirs.timescale, theirs.language.clone()));

            let tkhd_box = find(trak.payload, b"tkhd").unwrap().unwrap();
            let theirs = mp4_atom::Tkhd::decode(&mut &decode(tkhd_box)[..]).unwrap();
            let (id, (w, h)) = tkhd(tkhd_box.payload).unwrap();
            assert_eq!(
                (id, w, h),
                (theirs.track_id, u32::from(theirs.width.integer()), u32::from(theirs.height.integer()))
            );

            if let Some(elst_box) = find_path(trak.payload, &[b"edts", b"elst"]).unwrap() {
                let theirs = mp4_atom::Elst::decode(&mut &decode(elst_box)[..]).unwrap();
                let (version, ours) = elst(elst_box.payload).unwrap();
                let ours: Vec<(u64, Option<u64>)> = ours
                    .into_iter()
                    .map(|(d, t)| {
                        let t = if version == 1 { t as i64 } else { i64::from(t as u32 as i32) };
                        (d, (t >= 0).then_some(t as u64))
                    })
                    .collect();
                let expected: Vec<_> = theirs.entries.iter().map(|e| (e.segment_duration, e.media_time)).collect();
                assert_eq!(ours, expected);
            }
        }
        assert_eq!(tracks, 2);
    }
}
