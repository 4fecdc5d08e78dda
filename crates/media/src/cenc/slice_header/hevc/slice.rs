//! PURE: an HEVC slice segment header read to its end, against the track's SPS and PPS.

use super::super::{Bits, ceil_log2};
use super::{Pps, Sets, Sps, read_rps};

impl Sets {
    /// The bits of slice segment NAL unit `raw` (RBSP, NAL header included) up to the end of its
    /// header (`byte_alignment()` included).
    pub(in crate::cenc::slice_header) fn header_bits(&self, raw: &[u8]) -> Option<usize> {
        let nal_type = (raw.first()? >> 1) & 0x3F;
        if nal_type >= 32 {
            return None;
        }
        let mut b = Bits::new(raw);
        b.skip(16)?;
        let first = b.flag()?;
        if (16..=23).contains(&nal_type) {
            b.flag()?;
        }
        let pps = *self.pps.get(&b.ue()?)?;
        let sps = self.sps.get(&pps.sps_id)?;
        let mut dependent = false;
        if !first {
            if pps.dependent_slice_segments {
                dependent = b.flag()?;
            }
            b.u(ceil_log2(sps.pic_size_in_ctbs))?;
        }
        if !dependent {
            slice_header_body(&mut b, nal_type, sps, &pps)?;
        }
        if pps.entry_points {
            let entries = b.ue()?;
            if entries > 0 {
                let len = b.ue()? + 1;
                b.skip(entries as usize * len as usize)?;
            }
        }
        if pps.header_extension_present {
            let len = b.ue()?;
            b.skip(len as usize * 8)?;
        }
        // byte_alignment(): a one bit, then zeros to the byte.
        if !b.flag()? {
            return None;
        }
        Some(b.pos().div_ceil(8) * 8)
    }
}

/// The slice header of an independent slice segment, from `slice_type` to the loop filter flag.
fn slice_header_body(b: &mut Bits<'_>, nal_type: u8, sps: &Sps, pps: &Pps) -> Option<()> {
    b.skip(pps.extra_slice_header_bits as usize)?;
    let slice_type = b.ue()?;
    let (p, bi) = (slice_type == 1, slice_type == 0);
    if pps.output_flag_present {
        b.flag()?;
    }
    if sps.separate_colour_plane {
        b.u(2)?;
    }
    let mut temporal_mvp = false;
    let mut used = 0;
    if nal_type != 19 && nal_type != 20 {
        b.u(sps.log2_max_poc_lsb)?;
        let count = sps.rps.len() as u32;
        let current = if !b.flag()? {
            read_rps(b, count, count, &sps.rps)?
        } else {
            let index = if count > 1 { b.u(ceil_log2(count))? } else { 0 };
            *sps.rps.get(index as usize)?
        };
        used += current.used;
        if sps.long_term_present {
            let from_sps = if sps.long_term_used.is_empty() { 0 } else { b.ue()? };
            let own = b.ue()?;
            for i in 0..(from_sps + own).min(64) {
                if i < from_sps {
                    let index =
                        if sps.long_term_used.len() > 1 { b.u(ceil_log2(sps.long_term_used.len() as u32))? } else { 0 };
                    used += u32::from(*sps.long_term_used.get(index as usize)?);
                } else {
                    b.u(sps.log2_max_poc_lsb)?;
                    used += u32::from(b.flag()?);
                }
                if b.flag()? {
                    b.ue()?;
                }
            }
        }
        if sps.temporal_mvp {
            temporal_mvp = b.flag()?;
        }
    }
    let (mut sao_luma, mut sao_chroma) = (false, false);
    if sps.sao {
        sao_luma = b.flag()?;
        if sps.chroma_array_type != 0 {
            sao_chroma = b.flag()?;
        }
    }
    if p || bi {
        let mut refs = pps.num_ref_idx_default;
        if b.flag()? {
            refs[0] = b.ue()? + 1;
            if bi {
                refs[1] = b.ue()? + 1;
            }
        }
        let lists = if bi { 2 } else { 1 };
        if pps.lists_modification_present && used > 1 {
            for &count in &refs[..lists] {
                if b.flag()? {
                    b.skip(count.min(16) as usize * ceil_log2(used) as usize)?;
                }
            }
        }
        if bi {
            b.flag()?;
        }
        if pps.cabac_init_present {
            b.flag()?;
        }
        if temporal_mvp {
            let from_l0 = if bi { b.flag()? } else { true };
            if (from_l0 && refs[0] > 1) || (!from_l0 && refs[1] > 1) {
                b.ue()?;
            }
        }
        if (pps.weighted_pred && p) || (pps.weighted_bipred && bi) {
            skip_pred_weight_table(b, sps.chroma_array_type != 0, &refs[..lists])?;
        }
        b.ue()?;
    }
    b.se()?;
    if pps.slice_chroma_qp_offsets_present {
        b.se()?;
        b.se()?;
    }
    let mut deblocking_disabled = pps.deblocking_disabled;
    if pps.deblocking_override_enabled && b.flag()? {
        deblocking_disabled = b.flag()?;
        if !deblocking_disabled {
            b.se()?;
            b.se()?;
        }
    }
    if pps.loop_filter_across_slices && (sao_luma || sao_chroma || !deblocking_disabled) {
        b.flag()?;
    }
    Some(())
}

fn skip_pred_weight_table(b: &mut Bits<'_>, chroma: bool, refs: &[u32]) -> Option<()> {
    b.ue()?;
    if chroma {
        b.se()?;
    }
    for &count in refs {
        let count = count.min(16) as usize;
        let luma: Vec<bool> = (0..count).map(|_| b.flag()).collect::<Option<_>>()?;
        let chromas: Vec<bool> = match chroma {
            true => (0..count).map(|_| b.flag()).collect::<Option<_>>()?,
            false => vec![false; count],
        };
        for (l, c) in luma.into_iter().zip(chromas) {
            if l {
                b.se()?;
                b.se()?;
            }
            if c {
                (0..4).try_for_each(|_| b.se().map(drop))?;
            }
        }
    }
    Some(())
}
