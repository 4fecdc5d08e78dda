//! Pure HTTP semantics the edge applies to every object: media types, cache policy, validators, ranges,
//! content coding, and the ready-to-send object with its encoded forms.
//!
//! Nothing here does I/O or knows about axum handlers; it maps header values
//! and object facts to decisions, so it is unit-tested in isolation.

pub mod conditional;
pub mod content_type;
pub mod encoding;
pub mod file_body;
pub mod forwarded;
pub mod object;
pub mod policy;
pub mod range;
pub mod raw;

/// The decimal digits of `n`, written at the end of `buf` (header values, playlist numbers) without
/// `fmt`'s machinery.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}
