//! PURE: HEVC slice segment headers (ITU-T H.265 7.3.6.1) measured against the SPS and PPS of
//! `hvcC`: short-term reference picture sets, long-term pictures, weights, entry points.

use std::collections::HashMap;

mod slice;

use super::Bits;

/// A short-term reference picture set: how many pictures it has, and how many the current
/// picture uses.
#[derive(Debug, Clone, Copy, Default)]
struct Rps {
    pictures: u32,
    used: u32,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Sps {
    separate_colour_plane: bool,
    chroma_array_type: u32,
    log2_max_poc_lsb: u32,
    pic_size_in_ctbs: u32,
    rps: Vec<Rps>,
    long_term_present: bool,
    long_term_used: Vec<bool>,
    temporal_mvp: bool,
    sao: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Pps {
    sps_id: u32,
    dependent_slice_segments: bool,
    output_flag_present: bool,
    extra_slice_header_bits: u32,
    cabac_init_present: bool,
    num_ref_idx_default: [u32; 2],
    slice_chroma_qp_offsets_present: bool,
    weighted_pred: bool,
    weighted_bipred: bool,
    entry_points: bool,
    deblocking_override_enabled: bool,
    deblocking_disabled: bool,
    loop_filter_across_slices: bool,
    lists_modification_present: bool,
    header_extension_present: bool,
}

/// The parameter sets of an HEVC track, by id.
#[derive(Debug, Clone, Default)]
pub struct Sets {
    sps: HashMap<u32, Sps>,
    pps: HashMap<u32, Pps>,
}

impl Sets {
    /// From an `hvcC` payload: its arrays of SPS (33) and PPS (34) NAL units.
    pub(super) fn of_hvcc(hvcc: &[u8]) -> Option<Sets> {
        let mut sets = Sets::default();
        let arrays = *hvcc.get(22)?;
        let mut at = 23;
        for _ in 0..arrays {
            let kind = hvcc.get(at)? & 0x3F;
            let count = u16::from_be_bytes([*hvcc.get(at + 1)?, *hvcc.get(at + 2)?]);
            at += 3;
            for _ in 0..count {
                let len = usize::from(u16::from_be_bytes([*hvcc.get(at)?, *hvcc.get(at + 1)?]));
                let nal = hvcc.get(at + 2..at + 2 + len)?;
                let raw = crate::nal::unescape(nal, super::MAX_HEADER);
                match (kind, raw.get(2..)) {
                    (33, Some(rbsp)) => sets.add_sps(rbsp),
                    (34, Some(rbsp)) => sets.add_pps(rbsp),
                    _ => None,
                };
                at += 2 + len;
            }
        }
        Some(sets)
    }

    fn add_sps(&mut self, rbsp: &[u8]) -> Option<()> {
        let mut b = Bits::new(rbsp);
        b.skip(4)?;
        let max_sub_layers_minus1 = b.u(3)?;
        b.flag()?;
        skip_profile_tier_level(&mut b, max_sub_layers_minus1)?;
        let id = b.ue()?;
        let chroma_format_idc = b.ue()?;
        let separate_colour_plane = chroma_format_idc == 3 && b.flag()?;
        let (width, height) = (b.ue()?, b.ue()?);
        if b.flag()? {
            (0..4).try_for_each(|_| b.ue().map(drop))?;
        }
        b.ue()?;
        b.ue()?;
        let log2_max_poc_lsb = b.ue()? + 4;
        let ordering_all = b.flag()?;
        for _ in if ordering_all { 0 } else { max_sub_layers_minus1 }..=max_sub_layers_minus1 {
            (0..3).try_for_each(|_| b.ue().map(drop))?;
        }
        let log2_min_cb = b.ue()? + 3;
        let log2_ctb = log2_min_cb + b.ue()?;
        (0..4).try_for_each(|_| b.ue().map(drop))?;
        if b.flag()? && b.flag()? {
            skip_scaling_list_data(&mut b)?;
        }
        b.flag()?;
        let sao = b.flag()?;
        if b.flag()? {
            b.skip(8)?;
            b.ue()?;
            b.ue()?;
            b.flag()?;
        }
        let count = b.ue()?;
        if count > 64 || log2_ctb > 7 {
            return None;
        }
        let mut rps = Vec::with_capacity(count as usize);
        for i in 0..count {
            let set = read_rps(&mut b, i, count, &rps)?;
            rps.push(set);
        }
        let long_term_present = b.flag()?;
        let mut long_term_used = Vec::new();
        if long_term_present {
            for _ in 0..b.ue()?.min(32) {
                b.u(log2_max_poc_lsb)?;
                long_term_used.push(b.flag()?);
            }
        }
        let temporal_mvp = b.flag()?;
        let ctb = 1u32 << log2_ctb;
        let pic_size_in_ctbs = u32::try_from(u64::from(width.div_ceil(ctb)) * u64::from(height.div_ceil(ctb))).ok()?;
        let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
        let sps = Sps {
            separate_colour_plane,
            chroma_array_type,
            log2_max_poc_lsb,
            pic_size_in_ctbs,
            rps,
            long_term_present,
            long_term_used,
            temporal_mvp,
            sao,
        };
        self.sps.insert(id, sps);
        Some(())
    }

    fn add_pps(&mut self, rbsp: &[u8]) -> Option<()> {
        let mut b = Bits::new(rbsp);
        let id = b.ue()?;
        let sps_id = b.ue()?;
        let dependent_slice_segments = b.flag()?;
        let output_flag_present = b.flag()?;
        let extra_slice_header_bits = b.u(3)?;
        b.flag()?;
        let cabac_init_present = b.flag()?;
        let num_ref_idx_default = [b.ue()? + 1, b.ue()? + 1];
        b.se()?;
        b.flag()?;
        b.flag()?;
        if b.flag()? {
            b.ue()?;
        }
        b.se()?;
        b.se()?;
        let slice_chroma_qp_offsets_present = b.flag()?;
        let weighted_pred = b.flag()?;
        let weighted_bipred = b.flag()?;
        b.flag()?;
        let tiles = b.flag()?;
        let wavefronts = b.flag()?;
        if tiles {
            let (columns, rows) = (b.ue()?, b.ue()?);
            if !b.flag()? {
                (0..columns.min(64) + rows.min(64)).try_for_each(|_| b.ue().map(drop))?;
            }
            b.flag()?;
        }
        let loop_filter_across_slices = b.flag()?;
        let (mut deblocking_override_enabled, mut deblocking_disabled) = (false, false);
        if b.flag()? {
            deblocking_override_enabled = b.flag()?;
            deblocking_disabled = b.flag()?;
            if !deblocking_disabled {
                b.se()?;
                b.se()?;
            }
        }
        if b.flag()? {
            skip_scaling_list_data(&mut b)?;
        }
        let lists_modification_present = b.flag()?;
        b.ue()?;
        let header_extension_present = b.flag()?;
        // Range and screen-content extensions add slice header syntax this reader does not follow.
        if b.flag()? {
            return None;
        }
        let pps = Pps {
            sps_id,
            dependent_slice_segments,
            output_flag_present,
            extra_slice_header_bits,
            cabac_init_present,
            num_ref_idx_default,
            slice_chroma_qp_offsets_present,
            weighted_pred,
            weighted_bipred,
            entry_points: tiles || wavefronts,
            deblocking_override_enabled,
            deblocking_disabled,
            loop_filter_across_slices,
            lists_modification_present,
            header_extension_present,
        };
        self.pps.insert(id, pps);
        Some(())
    }
}

/// `st_ref_pic_set(index)`: in the SPS (`index` < `count`) or a slice's own (`index` == `count`),
/// predicted from an earlier set of `known`.
fn read_rps(b: &mut Bits<'_>, index: u32, count: u32, known: &[Rps]) -> Option<Rps> {
    if index != 0 && b.flag()? {
        let delta = if index == count { b.ue()? + 1 } else { 1 };
        b.flag()?;
        b.ue()?;
        let reference = known.get(index.checked_sub(delta)? as usize)?;
        let mut set = Rps::default();
        for _ in 0..=reference.pictures {
            let used = b.flag()?;
            if used || b.flag()? {
                set.pictures += 1;
                set.used += u32::from(used);
            }
        }
        return Some(set);
    }
    let (negative, positive) = (b.ue()?, b.ue()?);
    if negative + positive > 32 {
        return None;
    }
    let mut set = Rps { pictures: negative + positive, used: 0 };
    for _ in 0..negative + positive {
        b.ue()?;
        set.used += u32::from(b.flag()?);
    }
    Some(set)
}

fn skip_profile_tier_level(b: &mut Bits<'_>, max_sub_layers_minus1: u32) -> Option<()> {
    b.skip(88 + 8)?;
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((b.flag()?, b.flag()?));
    }
    if max_sub_layers_minus1 > 0 {
        b.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for (profile, level) in present {
        b.skip(if profile { 88 } else { 0 } + if level { 8 } else { 0 })?;
    }
    Some(())
}

fn skip_scaling_list_data(b: &mut Bits<'_>) -> Option<()> {
    for size in 0..4 {
        let mut matrix = 0;
        while matrix < 6 {
            if !b.flag()? {
                b.ue()?;
            } else {
                let coefficients = 64.min(1 << (4 + (size << 1)));
                if size > 1 {
                    b.se()?;
                }
                (0..coefficients).try_for_each(|_| b.se().map(drop))?;
            }
            matrix += if size == 3 { 3 } else { 1 };
        }
    }
    Some(())
}
