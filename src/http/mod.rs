//! Pure HTTP semantics the edge applies to every object: media types, cache policy, validators, ranges,
//! content coding, and the ready-to-send object with its encoded forms.
//!
//! Nothing here does I/O or knows about axum handlers; it maps header values
//! and object facts to decisions, so it is unit-tested in isolation.

pub mod conditional;
pub mod content_type;
pub mod encoding;
pub mod file_body;
pub mod object;
pub mod policy;
pub mod range;
