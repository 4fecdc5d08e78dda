//! Init segments: `ftyp` + `moov` (with `mvex`) for one track, reusing the source's sample entry verbatim.

use bytes::{BufMut, Bytes, BytesMut};

use super::{write_box, write_full_box};
use crate::mp4::{Edit, Track, TrackKind};

/// What an init segment says about its one track (always track 1).
#[derive(Debug, Clone)]
pub struct InitTrack<'a> {
    pub kind: TrackKind,
    pub timescale: u32,
    /// Timescale of `mvhd`, in which `edit.delay` is expressed.
    pub movie_timescale: u32,
    /// ISO 639-2/T code (`und` if unknown).
    pub language: &'a str,
    /// The source's whole `stsd` box.
    pub stsd: &'a [u8],
    pub edit: Edit,
    /// Display width and height (video).
    pub display: Option<(u32, u32)>,
    /// `pssh` boxes for `moov` (a protected track: its `stsd` then has a protected entry,
    /// [`crate::cenc::protect_stsd`]); empty in the clear.
    pub pssh: &'a [u8],
}

impl<'a> InitTrack<'a> {
    /// The init of one track of a source MP4; `display` is the rendition's (the track's own, or scaled).
    pub fn of(track: &'a Track, movie_timescale: u32, display: Option<(u32, u32)>) -> InitTrack<'a> {
        InitTrack {
            kind: track.kind,
            timescale: track.timescale,
            movie_timescale,
            language: &track.language,
            stsd: &track.stsd,
            edit: track.edit,
            display,
            pssh: &[],
        }
    }
}

pub const TRACK_ID: u32 = 1;

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

pub fn write_init(t: &InitTrack<'_>) -> Bytes {
    let mut b = BytesMut::with_capacity(768 + t.stsd.len());
    write_box(&mut b, b"ftyp", |b| {
        b.put_slice(b"iso6");
        b.put_u32(0);
        for brand in [b"iso6", b"cmfc", b"dash", b"mp41"] {
            b.put_slice(brand);
        }
    });
    write_box(&mut b, b"moov", |b| {
        write_full_box(b, b"mvhd", 0, 0, |b| {
            b.put_u32(0); // creation
            b.put_u32(0); // modification
            b.put_u32(t.movie_timescale);
            b.put_u32(0); // duration: fragmented
            b.put_u32(0x0001_0000); // rate 1.0
            b.put_u16(0x0100); // volume 1.0
            b.put_bytes(0, 10);
            MATRIX.iter().for_each(|&m| b.put_u32(m));
            b.put_bytes(0, 24);
            b.put_u32(TRACK_ID + 1);
        });
        write_box(b, b"trak", |b| {
            write_tkhd(b, t);
            write_edts(b, t.edit);
            write_box(b, b"mdia", |b| {
                write_full_box(b, b"mdhd", 0, 0, |b| {
                    b.put_u32(0);
                    b.put_u32(0);
                    b.put_u32(t.timescale);
                    b.put_u32(0);
                    b.put_u16(pack_language(t.language));
                    b.put_u16(0);
                });
                let (handler, name): (&[u8; 4], &[u8]) = match t.kind {
                    TrackKind::Video => (b"vide", b"VideoHandler\0"),
                    TrackKind::Audio => (b"soun", b"SoundHandler\0"),
                    TrackKind::Text => (b"text", b"TextHandler\0"),
                };
                write_full_box(b, b"hdlr", 0, 0, |b| {
                    b.put_u32(0);
                    b.put_slice(handler);
                    b.put_bytes(0, 12);
                    b.put_slice(name);
                });
                write_box(b, b"minf", |b| {
                    match t.kind {
                        TrackKind::Video => write_full_box(b, b"vmhd", 0, 1, |b| b.put_bytes(0, 8)),
                        TrackKind::Audio => write_full_box(b, b"smhd", 0, 0, |b| b.put_u32(0)),
                        TrackKind::Text => write_full_box(b, b"sthd", 0, 0, |_| {}),
                    }
                    write_box(b, b"dinf", |b| {
                        write_full_box(b, b"dref", 0, 0, |b| {
                            b.put_u32(1);
                            write_full_box(b, b"url ", 0, 1, |_| {});
                        });
                    });
                    write_box(b, b"stbl", |b| {
                        b.put_slice(t.stsd);
                        write_full_box(b, b"stts", 0, 0, |b| b.put_u32(0));
                        write_full_box(b, b"stsc", 0, 0, |b| b.put_u32(0));
                        write_full_box(b, b"stsz", 0, 0, |b| {
                            b.put_u32(0);
                            b.put_u32(0);
                        });
                        write_full_box(b, b"stco", 0, 0, |b| b.put_u32(0));
                    });
                });
            });
        });
        write_box(b, b"mvex", |b| {
            write_full_box(b, b"trex", 0, 0, |b| {
                b.put_u32(TRACK_ID);
                b.put_u32(1); // default sample description index
                b.put_u32(0);
                b.put_u32(0);
                b.put_u32(0);
            });
        });
        b.put_slice(t.pssh);
    });
    b.freeze()
}

fn write_tkhd(b: &mut BytesMut, t: &InitTrack<'_>) {
    // Flags: enabled | in movie | in preview.
    write_full_box(b, b"tkhd", 0, 0x7, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(TRACK_ID);
        b.put_u32(0);
        b.put_u32(0); // duration
        b.put_bytes(0, 8);
        b.put_u16(0); // layer
        b.put_u16(0); // alternate group
        b.put_u16(if t.kind == TrackKind::Audio { 0x0100 } else { 0 });
        b.put_u16(0);
        MATRIX.iter().for_each(|&m| b.put_u32(m));
        let (w, h) = t.display.unwrap_or((0, 0));
        b.put_u32(w.min(0xffff) << 16);
        b.put_u32(h.min(0xffff) << 16);
    });
}

/// Carries the source's start offset: an empty edit for a delay, then the media from `media_time`.
fn write_edts(b: &mut BytesMut, edit: Edit) {
    if edit == Edit::default() {
        return;
    }
    let wide = edit.delay > u64::from(u32::MAX) || edit.media_time > i32::MAX as u64;
    let version = u8::from(wide);
    write_box(b, b"edts", |b| {
        write_full_box(b, b"elst", version, 0, |b| {
            b.put_u32(if edit.delay > 0 { 2 } else { 1 });
            let mut entry = |duration: u64, media_time: i64| {
                if wide {
                    b.put_u64(duration);
                    b.put_i64(media_time);
                } else {
                    b.put_u32(duration as u32);
                    b.put_i32(media_time as i32);
                }
                b.put_u32(0x0001_0000); // rate 1.0
            };
            if edit.delay > 0 {
                entry(edit.delay, -1);
            }
            entry(0, edit.media_time as i64);
        });
    });
}

/// ISO 639-2/T letters packed into 15 bits; anything else is `und`.
fn pack_language(lang: &str) -> u16 {
    let l = lang.as_bytes();
    if l.len() != 3 || !l.iter().all(u8::is_ascii_lowercase) {
        return pack_language("und");
    }
    l.iter().fold(0u16, |acc, &c| (acc << 5) | u16::from(c - 0x60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_pack_like_mdhd() {
        assert_eq!(pack_language("und"), 0x55c4);
        assert_eq!(pack_language("eng"), 0x15c7);
        assert_eq!(pack_language("EN"), 0x55c4);
    }
}

#[cfg(test)]
mod reparse {
    use super::*;
    use crate::sample;
    use mp4_atom::{Codec, Decode, Ftyp, Moov};

    #[test]
    fn init_segments_reparse_with_mp4_atom() {
        let index = sample::index();
        for track in &index.tracks {
            let init = write_init(&InitTrack::of(track, index.movie_timescale, track.display));
            let mut buf = &init[..];
            let ftyp = Ftyp::decode(&mut buf).unwrap();
            assert_eq!(ftyp.major_brand, b"iso6".into());
            let moov = Moov::decode(&mut buf).unwrap();
            assert!(buf.is_empty(), "nothing after moov");
            assert_eq!(moov.mvhd.timescale, index.movie_timescale);
            let trak = &moov.trak[0];
            assert_eq!(trak.tkhd.track_id, TRACK_ID);
            assert_eq!(trak.mdia.mdhd.timescale, track.timescale);
            let trex = &moov.mvex.as_ref().unwrap().trex[0];
            assert_eq!(trex.track_id, TRACK_ID);
            let elst = &trak.edts.as_ref().unwrap().elst.as_ref().unwrap();
            assert_eq!(elst.entries[0].media_time, Some(1024));
            let stsd = &trak.mdia.minf.stbl.stsd;
            assert_eq!(stsd.codecs.len(), 1);
            match (&stsd.codecs[0], track.kind) {
                (Codec::Avc1(avc1), TrackKind::Video) => assert_eq!(avc1.visual.width, 640),
                (Codec::Mp4a(mp4a), TrackKind::Audio) => assert_eq!(mp4a.audio.channel_count, 2),
                (other, kind) => panic!("{kind:?} track has sample entry {other:?}"),
            }
        }
    }
}
