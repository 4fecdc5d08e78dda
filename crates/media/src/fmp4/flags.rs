//! The flag bits of fragmented MP4 (ISO/IEC 14496-12 §8.8): `tfhd` and `trun` field-presence flags and
//! sample flags, named once for the writer and the parser.

/// `tfhd`: `base_data_offset` present.
pub const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
/// `tfhd`: `sample_description_index` present.
pub const TFHD_SAMPLE_DESCRIPTION: u32 = 0x02;
/// `tfhd`: `default_sample_duration` present.
pub const TFHD_DEFAULT_DURATION: u32 = 0x08;
/// `tfhd`: `default_sample_size` present.
pub const TFHD_DEFAULT_SIZE: u32 = 0x10;
/// `tfhd`: `default_sample_flags` present.
pub const TFHD_DEFAULT_FLAGS: u32 = 0x20;
/// `tfhd`: data offsets are relative to the `moof`.
pub const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// `trun`: `data_offset` present.
pub const TRUN_DATA_OFFSET: u32 = 0x001;
/// `trun`: `first_sample_flags` present.
pub const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x004;
/// `trun`: per-sample duration.
pub const TRUN_DURATION: u32 = 0x100;
/// `trun`: per-sample size.
pub const TRUN_SIZE: u32 = 0x200;
/// `trun`: per-sample flags.
pub const TRUN_FLAGS: u32 = 0x400;
/// `trun`: per-sample composition time offset.
pub const TRUN_CTS: u32 = 0x800;
/// The per-sample fields of a `trun`, four bytes each.
pub const TRUN_PER_SAMPLE: [u32; 4] = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS];

/// Sample flags of a sync sample: depends on no other (I-frame, or any audio frame).
pub const SYNC: u32 = 0x0200_0000;
/// Sample flags of a non-sync sample: depends on others, `sample_is_non_sync_sample`.
pub const NON_SYNC: u32 = 0x0101_0000;
/// The `sample_is_non_sync_sample` bit.
pub const IS_NON_SYNC: u32 = 0x0001_0000;
