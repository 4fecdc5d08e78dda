//! ISO-BMFF box headers and checked iteration over the boxes of a byte slice.

use crate::PackagingError;

/// A four-character box type.
pub type FourCc = [u8; 4];

/// Renders a four-character code for messages (`avc1`, or escaped bytes).
pub fn fourcc_str(code: FourCc) -> String {
    code.iter()
        .map(|&b| if b.is_ascii_graphic() || b == b' ' { char::from(b).to_string() } else { format!("\\x{b:02x}") })
        .collect()
}

/// A box header as found at some offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: FourCc,
    /// Header length: 8, or 16 with a 64-bit size.
    pub header_len: u64,
    /// Whole box length including the header; `None` for "to the end of the file" (size 0).
    pub size: Option<u64>,
}

impl BoxHeader {
    /// Parses a header from the start of `bytes`; `Ok(None)` when fewer bytes than a header are given.
    pub fn parse(bytes: &[u8]) -> Result<Option<BoxHeader>, PackagingError> {
        if bytes.len() < 8 {
            return Ok(None);
        }
        let size32 = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let kind = [bytes[4], bytes[5], bytes[6], bytes[7]];
        let (header_len, size) = match size32 {
            0 => (8, None),
            1 => {
                let Some(large) = bytes.get(8..16) else { return Ok(None) };
                let large = u64::from_be_bytes(large.try_into().unwrap_or([0; 8]));
                if large < 16 {
                    return Err(PackagingError::malformed(format!(
                        "box '{}' has a 64-bit size under 16",
                        fourcc_str(kind)
                    )));
                }
                (16, Some(large))
            }
            2..=7 => {
                return Err(PackagingError::malformed(format!("box '{}' has size {size32}", fourcc_str(kind))));
            }
            n => (8, Some(u64::from(n))),
        };
        Ok(Some(BoxHeader { kind, header_len, size }))
    }
}

/// One child box inside a slice: its type, its payload, and its whole bytes.
#[derive(Debug, Clone, Copy)]
pub struct BoxRef<'a> {
    pub kind: FourCc,
    /// The box without its header.
    pub payload: &'a [u8],
    /// The whole box, header included.
    pub bytes: &'a [u8],
}

/// Iterates the boxes packed in `data`. Every box must fit inside `data`;
/// the first one that does not ends the iteration with an error.
pub struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

pub fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes { data, pos: 0, failed: false }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<BoxRef<'a>, PackagingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let header = match BoxHeader::parse(rest) {
            Ok(Some(h)) => h,
            Ok(None) => {
                // Fewer than 8 trailing bytes: padding some muxers leave; ignore it.
                self.pos = self.data.len();
                return None;
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let size = header.size.unwrap_or(rest.len() as u64);
        if size < header.header_len || size > rest.len() as u64 {
            self.failed = true;
            return Some(Err(PackagingError::Truncated(format!(
                "box '{}' claims {size} bytes but {} remain",
                fourcc_str(header.kind),
                rest.len()
            ))));
        }
        let size = size as usize;
        let bytes = &rest[..size];
        self.pos += size;
        Some(Ok(BoxRef { kind: header.kind, payload: &bytes[header.header_len as usize..], bytes }))
    }
}

/// The first child of type `kind`, if any.
pub fn find<'a>(data: &'a [u8], kind: &FourCc) -> Result<Option<BoxRef<'a>>, PackagingError> {
    for b in boxes(data) {
        let b = b?;
        if &b.kind == kind {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Follows a path of box types (`[b"mdia", b"minf", b"stbl"]`) from `data`.
pub fn find_path<'a>(data: &'a [u8], path: &[&FourCc]) -> Result<Option<BoxRef<'a>>, PackagingError> {
    let mut current: Option<BoxRef<'a>> = None;
    let mut scope = data;
    for kind in path {
        match find(scope, kind)? {
            Some(b) => {
                scope = b.payload;
                current = Some(b);
            }
            None => return Ok(None),
        }
    }
    Ok(current)
}

/// A big-endian reader over a slice whose every read is bounds-checked.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, pos: 0, what }
    }

    fn short(&self) -> PackagingError {
        PackagingError::malformed(format!("{} is too short", self.what))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], PackagingError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| self.short())?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), PackagingError> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, PackagingError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, PackagingError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u24(&mut self) -> Result<u32, PackagingError> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    pub fn u32(&mut self) -> Result<u32, PackagingError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, PackagingError> {
        let b = self.bytes(8)?;
        Ok(u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    pub fn position(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_and_refuses_overlong_boxes() {
        let mut data = Vec::new();
        data.extend_from_slice(&[0, 0, 0, 12, b'f', b'r', b'e', b'e', 1, 2, 3, 4]);
        data.extend_from_slice(&[0, 0, 0, 8, b's', b'k', b'i', b'p']);
        let kinds: Vec<_> = boxes(&data).map(|b| b.unwrap().kind).collect();
        assert_eq!(kinds, [*b"free", *b"skip"]);
        let overlong = [0, 0, 0, 64, b'm', b'o', b'o', b'v', 0, 0];
        let mut it = boxes(&overlong);
        assert!(matches!(it.next(), Some(Err(PackagingError::Truncated(_)))));
        assert!(it.next().is_none());
        assert!(matches!(BoxHeader::parse(&[0, 0, 0, 3, b'a', b'b', b'c', b'd']), Err(PackagingError::Malformed(_))));
        let large = [0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0x10, 0];
        let h = BoxHeader::parse(&large).unwrap().unwrap();
        assert_eq!((h.header_len, h.size), (16, Some(0x1000)));
        assert_eq!(fourcc_str(*b"av\x001"), "av\\x001");
    }

    #[test]
    fn reader_is_bounds_checked() {
        let mut r = Reader::new(&[1, 2, 3], "test box");
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert!(r.u16().is_err());
        assert_eq!(r.u8().unwrap(), 3);
        assert!(r.u8().is_err());
    }
}
