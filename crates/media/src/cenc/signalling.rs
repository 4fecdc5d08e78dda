//! PURE: how a protected stream is announced to players: the scheme, the default KID, and the DRM
//! systems' `pssh` boxes (Widevine, PlayReady, ...) given with the key, beside the common one
//! estuary writes itself, and FairPlay's key URI. Init segments carry the boxes; MPDs and HLS
//! playlists name each system.

use std::sync::Arc;

use bytes::Bytes;

use super::{KeyId, Scheme, SystemId};
use crate::PackagingError;
use crate::mp4::boxes;

/// One DRM system's `pssh` box, whole, and its system-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pssh {
    pub system: SystemId,
    /// The whole box, header included (DASH `cenc:pssh`, HLS data URIs).
    pub bytes: Bytes,
    /// The system's data (PlayReady: its PlayReady Object, `mspr:pro`).
    pub data: Bytes,
}

/// What manifests and init segments say of a protected stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signalling {
    pub kid: KeyId,
    pub scheme: Scheme,
    /// `cbcs`'s constant IV (`tenc`); unused by `cenc`.
    pub constant_iv: [u8; 16],
    /// The DRM systems' boxes, in the order given; the common system's is written apart.
    pub systems: Arc<[Pssh]>,
    /// FairPlay's key URI (`skd://...`) for HLS (`cbcs` only); `None`: FairPlay not offered.
    pub fairplay_uri: Option<String>,
    /// Where ClearKey players get a licence (DASH `dashif:Laurl`), when the origin gives them.
    pub clearkey_licence: Option<String>,
}

impl Signalling {
    /// `cenc` with the common system only (ClearKey).
    pub fn common(kid: KeyId) -> Signalling {
        Signalling {
            kid,
            scheme: Scheme::Cenc,
            constant_iv: [0; 16],
            systems: Arc::from(Vec::new()),
            fairplay_uri: None,
            clearkey_licence: None,
        }
    }
}

/// The `pssh` boxes an init segment (or a rotated key's `moof`) carries for `signalling`: each DRM
/// system's, then the common system's listing the KID (what ClearKey reads).
pub fn init_pssh(signalling: &Signalling) -> bytes::BytesMut {
    let mut pssh = bytes::BytesMut::new();
    signalling.systems.iter().for_each(|p| pssh.extend_from_slice(&p.bytes));
    super::write_pssh(&mut pssh, &SystemId::COMMON, &[signalling.kid], &[]);
    pssh
}

/// Largest run of `pssh` boxes accepted (a PlayReady header is a few KiB).
pub const MAX_PSSH_BYTES: usize = 64 * 1024;

/// One or more whole `pssh` boxes, one after the other, as a DRM vendor's tools give them. Each
/// must be a well-formed `pssh` (version 0 or 1) of a system other than the common one.
pub fn parse_pssh_boxes(bytes: &[u8]) -> Result<Vec<Pssh>, PackagingError> {
    if bytes.len() > MAX_PSSH_BYTES {
        return Err(PackagingError::malformed(format!(
            "pssh boxes of {} bytes (at most {MAX_PSSH_BYTES})",
            bytes.len()
        )));
    }
    let mut out = Vec::new();
    for b in boxes::boxes(bytes) {
        let b = b?;
        if &b.kind != b"pssh" {
            return Err(PackagingError::malformed("not a pssh box"));
        }
        let p = b.payload;
        let short = || PackagingError::malformed("a pssh box is too short");
        let version = *p.first().ok_or_else(short)?;
        let system: [u8; 16] = p.get(4..20).ok_or_else(short)?.try_into().map_err(|_| short())?;
        let mut at = 20;
        if version > 0 {
            let count = u32::from_be_bytes(p.get(at..at + 4).ok_or_else(short)?.try_into().map_err(|_| short())?);
            at += 4 + 16 * usize::try_from(count).map_err(|_| short())?;
        }
        let len = u32::from_be_bytes(p.get(at..at + 4).ok_or_else(short)?.try_into().map_err(|_| short())?);
        let data = p.get(at + 4..at + 4 + len as usize).ok_or_else(short)?;
        if at + 4 + len as usize != p.len() || version > 1 {
            return Err(PackagingError::malformed("a pssh box with bytes after its data, or of an unknown version"));
        }
        if SystemId(system) == SystemId::COMMON {
            return Err(PackagingError::malformed("the common system's pssh is estuary's to write"));
        }
        out.push(Pssh {
            system: SystemId(system),
            bytes: Bytes::copy_from_slice(b.bytes),
            data: Bytes::copy_from_slice(data),
        });
    }
    if out.iter().map(|p| p.bytes.len()).sum::<usize>() != bytes.len() {
        return Err(PackagingError::malformed("bytes after the last pssh box"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::cenc::write_pssh;

    #[test]
    fn pssh_boxes_are_read_and_checked() {
        let mut given = BytesMut::new();
        write_pssh(&mut given, &SystemId::WIDEVINE, &[KeyId([1; 16])], b"\x12\x10wv");
        write_pssh(&mut given, &SystemId::PLAYREADY, &[], b"<pro/>");
        let parsed = parse_pssh_boxes(&given).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!((parsed[0].system, &parsed[0].data[..]), (SystemId::WIDEVINE, &b"\x12\x10wv"[..]));
        assert_eq!((parsed[1].system, &parsed[1].data[..]), (SystemId::PLAYREADY, &b"<pro/>"[..]));
        assert_eq!(parsed.iter().map(|p| p.bytes.len()).sum::<usize>(), given.len());
        let mut common = BytesMut::new();
        write_pssh(&mut common, &SystemId::COMMON, &[KeyId([1; 16])], &[]);
        assert!(parse_pssh_boxes(&common).is_err());
        assert!(parse_pssh_boxes(&given[..given.len() - 1]).is_err());
        assert!(parse_pssh_boxes(b"\0\0\0\x08free").is_err());
        assert!(parse_pssh_boxes(b"junk").is_err());
        assert!(parse_pssh_boxes(&[]).unwrap().is_empty());
    }
}
