//! PURE: H.264 slice headers (ITU-T H.264 7.3.3) measured against the SPS and PPS of `avcC`.

use std::collections::HashMap;

use super::Bits;

#[derive(Debug, Clone, Copy)]
pub(super) struct Sps {
    separate_colour_plane: bool,
    chroma_array_type: u32,
    log2_max_frame_num: u32,
    poc_type: u32,
    log2_max_poc_lsb: u32,
    delta_pic_order_always_zero: bool,
    frame_mbs_only: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Pps {
    sps_id: u32,
    cabac: bool,
    bottom_field_pic_order_in_frame_present: bool,
    slice_groups: bool,
    num_ref_idx_default: [u32; 2],
    weighted_pred: bool,
    weighted_bipred_idc: u32,
    deblocking_filter_control_present: bool,
    redundant_pic_cnt_present: bool,
}

/// The parameter sets of an H.264 track, by id.
#[derive(Debug, Clone, Default)]
pub struct Sets {
    sps: HashMap<u32, Sps>,
    pps: HashMap<u32, Pps>,
}

const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

impl Sets {
    /// From an `avcC` payload.
    pub(super) fn of_avcc(avcc: &[u8]) -> Option<Sets> {
        let mut sets = Sets::default();
        let mut at = 5;
        for mask in [0x1F, 0xFF] {
            let count = avcc.get(at)? & mask;
            at += 1;
            for _ in 0..count {
                let len = usize::from(u16::from_be_bytes([*avcc.get(at)?, *avcc.get(at + 1)?]));
                let nal = avcc.get(at + 2..at + 2 + len)?;
                let raw = crate::nal::unescape(nal, super::MAX_HEADER);
                match (mask, raw.get(1..)) {
                    (0x1F, Some(rbsp)) => sets.add_sps(rbsp),
                    (_, Some(rbsp)) => sets.add_pps(rbsp),
                    _ => None,
                };
                at += 2 + len;
            }
        }
        Some(sets)
    }

    fn add_sps(&mut self, rbsp: &[u8]) -> Option<()> {
        let profile = *rbsp.first()?;
        let mut b = Bits::new(rbsp);
        b.skip(24)?;
        let id = b.ue()?;
        let (mut chroma_format_idc, mut separate_colour_plane) = (1, false);
        if HIGH_PROFILES.contains(&profile) {
            chroma_format_idc = b.ue()?;
            if chroma_format_idc == 3 {
                separate_colour_plane = b.flag()?;
            }
            b.ue()?;
            b.ue()?;
            b.flag()?;
            if b.flag()? {
                for i in 0..if chroma_format_idc == 3 { 12 } else { 8 } {
                    if b.flag()? {
                        crate::nal::skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        let log2_max_frame_num = b.ue()? + 4;
        let poc_type = b.ue()?;
        let (mut log2_max_poc_lsb, mut delta_pic_order_always_zero) = (0, false);
        match poc_type {
            0 => log2_max_poc_lsb = b.ue()? + 4,
            1 => {
                delta_pic_order_always_zero = b.flag()?;
                b.se()?;
                b.se()?;
                for _ in 0..b.ue()?.min(255) {
                    b.se()?;
                }
            }
            _ => {}
        }
        b.ue()?;
        b.flag()?;
        b.ue()?;
        b.ue()?;
        let frame_mbs_only = b.flag()?;
        let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
        let sps = Sps {
            separate_colour_plane,
            chroma_array_type,
            log2_max_frame_num,
            poc_type,
            log2_max_poc_lsb,
            delta_pic_order_always_zero,
            frame_mbs_only,
        };
        self.sps.insert(id, sps);
        Some(())
    }

    fn add_pps(&mut self, rbsp: &[u8]) -> Option<()> {
        let mut b = Bits::new(rbsp);
        let id = b.ue()?;
        let sps_id = b.ue()?;
        let cabac = b.flag()?;
        let bottom_field_pic_order_in_frame_present = b.flag()?;
        let slice_groups = b.ue()? > 0;
        if slice_groups {
            // Slice groups (Baseline's FMO) are not followed: such slices keep the fixed lead.
            self.pps.insert(id, Pps { slice_groups, ..EMPTY_PPS });
            return Some(());
        }
        let num_ref_idx_default = [b.ue()? + 1, b.ue()? + 1];
        let weighted_pred = b.flag()?;
        let weighted_bipred_idc = b.u(2)?;
        b.se()?;
        b.se()?;
        b.se()?;
        let deblocking_filter_control_present = b.flag()?;
        b.flag()?;
        let redundant_pic_cnt_present = b.flag()?;
        let pps = Pps {
            sps_id,
            cabac,
            bottom_field_pic_order_in_frame_present,
            slice_groups,
            num_ref_idx_default,
            weighted_pred,
            weighted_bipred_idc,
            deblocking_filter_control_present,
            redundant_pic_cnt_present,
        };
        self.pps.insert(id, pps);
        Some(())
    }

    /// The bits of slice NAL unit `raw` (RBSP, NAL header included) up to the end of its header:
    /// with CABAC, to the byte its slice data starts at.
    pub(super) fn header_bits(&self, raw: &[u8]) -> Option<usize> {
        let header = *raw.first()?;
        let (nal_ref_idc, nal_type) = ((header >> 5) & 3, header & 0x1F);
        if !matches!(nal_type, 1 | 5) {
            return None;
        }
        let mut b = Bits::new(raw);
        b.skip(8)?;
        b.ue()?;
        let slice_type = b.ue()? % 5;
        let pps = *self.pps.get(&b.ue()?)?;
        let sps = *self.sps.get(&pps.sps_id)?;
        if pps.slice_groups {
            return None;
        }
        let (p, b_slice, i_slice) =
            (slice_type == 0 || slice_type == 3, slice_type == 1, slice_type == 2 || slice_type == 4);
        if sps.separate_colour_plane {
            b.u(2)?;
        }
        b.u(sps.log2_max_frame_num)?;
        let mut field = false;
        if !sps.frame_mbs_only {
            field = b.flag()?;
            if field {
                b.flag()?;
            }
        }
        if nal_type == 5 {
            b.ue()?;
        }
        if sps.poc_type == 0 {
            b.u(sps.log2_max_poc_lsb)?;
            if pps.bottom_field_pic_order_in_frame_present && !field {
                b.se()?;
            }
        }
        if sps.poc_type == 1 && !sps.delta_pic_order_always_zero {
            b.se()?;
            if pps.bottom_field_pic_order_in_frame_present && !field {
                b.se()?;
            }
        }
        if pps.redundant_pic_cnt_present {
            b.ue()?;
        }
        if b_slice {
            b.flag()?;
        }
        let mut refs = pps.num_ref_idx_default;
        if (p || b_slice) && b.flag()? {
            refs[0] = b.ue()? + 1;
            if b_slice {
                refs[1] = b.ue()? + 1;
            }
        }
        let lists = if b_slice {
            2
        } else if p {
            1
        } else {
            0
        };
        for _ in 0..lists {
            if b.flag()? {
                loop {
                    match b.ue()? {
                        3 => break,
                        0..=2 => b.ue().map(drop)?,
                        _ => return None,
                    }
                }
            }
        }
        if (pps.weighted_pred && p) || (pps.weighted_bipred_idc == 1 && b_slice) {
            b.ue()?;
            if sps.chroma_array_type != 0 {
                b.ue()?;
            }
            for &count in &refs[..lists] {
                for _ in 0..count.min(32) {
                    if b.flag()? {
                        b.se()?;
                        b.se()?;
                    }
                    if sps.chroma_array_type != 0 && b.flag()? {
                        for _ in 0..4 {
                            b.se()?;
                        }
                    }
                }
            }
        }
        if nal_ref_idc != 0 {
            if nal_type == 5 {
                b.flag()?;
                b.flag()?;
            } else if b.flag()? {
                loop {
                    match b.ue()? {
                        0 => break,
                        1 | 2 | 4 | 6 => b.ue().map(drop)?,
                        3 => {
                            b.ue()?;
                            b.ue()?;
                        }
                        5 => {}
                        _ => return None,
                    }
                }
            }
        }
        if pps.cabac && !i_slice {
            b.ue()?;
        }
        b.se()?;
        if slice_type == 3 || slice_type == 4 {
            if slice_type == 3 {
                b.flag()?;
            }
            b.se()?;
        }
        if pps.deblocking_filter_control_present && b.ue()? != 1 {
            b.se()?;
            b.se()?;
        }
        let end = b.pos();
        Some(if pps.cabac { end.div_ceil(8) * 8 } else { end })
    }
}

const EMPTY_PPS: Pps = Pps {
    sps_id: 0,
    cabac: false,
    bottom_field_pic_order_in_frame_present: false,
    slice_groups: false,
    num_ref_idx_default: [1, 1],
    weighted_pred: false,
    weighted_bipred_idc: 0,
    deblocking_filter_control_present: false,
    redundant_pic_cnt_present: false,
};
