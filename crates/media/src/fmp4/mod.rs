//! Writing fragmented MP4 (CMAF-style, one track per file): init segments and media segments.

pub mod chunks;
pub mod flags;
pub mod fragment;
pub mod init;
pub mod init_info;
pub mod parse;

use bytes::{BufMut, BytesMut};

pub use fragment::{
    FragmentProtection, FragmentSamples, STYP_LEN, SampleFlags, TrunLayout, segment_overhead, write_segment,
    write_segment_header,
};
pub use init::{InitTrack, write_init};

/// Writes a box: size placeholder, type, body, then the real size.
pub(crate) fn write_box(buf: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_u32(0);
    buf.put_slice(kind);
    body(buf);
    let size = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box (with version and flags).
pub(crate) fn write_full_box(
    buf: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    write_box(buf, kind, |b| {
        b.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(b);
    });
}
