//! Packet-level comparison of what ffmpeg reads from a source and from our output (`-f framemd5`).

use std::collections::BTreeMap;

/// One packet as `framemd5` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub dts: i64,
    pub pts: i64,
    pub size: u64,
    pub hash: String,
}

/// Packets per media type ("video", "audio"), with each stream's time base.
#[derive(Debug, Default)]
pub struct Packets {
    pub streams: BTreeMap<String, (f64, Vec<Packet>)>,
}

/// `ffmpeg -i url -map 0 -c copy -f framemd5 -`, parsed.
pub fn framemd5(url: &str) -> Packets {
    framemd5_with(url, &[])
}

/// [`framemd5`] with more output options (bitstream filters).
pub fn framemd5_with(url: &str, options: &[&str]) -> Packets {
    let mut args = vec!["-v", "error", "-i", url, "-map", "0", "-c", "copy"];
    args.extend_from_slice(options);
    args.extend(["-f", "framemd5", "-"]);
    let out = super::tools::run("ffmpeg", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffmpeg -i {url}: {stderr}");
    parse_framemd5(&String::from_utf8(out.stdout).unwrap())
}

/// `ffmpeg [-decryption_key KEY] -i file -c copy -copyinkf -f framemd5 -`, parsed; ffmpeg's complaint when
/// it cannot read the file.
pub fn framemd5_decrypted(file: &std::path::Path, key: Option<&str>) -> Result<Packets, String> {
    let mut args = vec!["-v", "error"];
    if let Some(key) = key {
        args.extend(["-decryption_key", key]);
    }
    let path = file.to_str().unwrap().to_owned();
    // `-copyinkf`: a fragment that does not open on a keyframe (an LL part) is read whole too.
    args.extend(["-i", &path, "-map", "0", "-c", "copy", "-copyinkf", "-f", "framemd5", "-"]);
    let out = super::tools::run("ffmpeg", &args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(parse_framemd5(&String::from_utf8(out.stdout).unwrap()))
}

/// ffmpeg's `framemd5` output, parsed.
pub fn parse_framemd5(text: &str) -> Packets {
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    let mut bases: BTreeMap<String, f64> = BTreeMap::new();
    let mut packets = Packets::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#media_type ") {
            let (idx, kind) = rest.split_once(": ").unwrap();
            kinds.insert(idx.to_owned(), kind.to_owned());
        } else if let Some(rest) = line.strip_prefix("#tb ") {
            let (idx, tb) = rest.split_once(": ").unwrap();
            let (num, den) = tb.split_once('/').unwrap();
            bases.insert(idx.to_owned(), num.parse::<f64>().unwrap() / den.parse::<f64>().unwrap());
        } else if !line.starts_with('#') && !line.is_empty() {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let kind = kinds[f[0]].clone();
            let tb = bases[f[0]];
            let entry = packets.streams.entry(kind).or_insert((tb, Vec::new()));
            entry.1.push(Packet {
                dts: f[1].parse().unwrap(),
                pts: f[2].parse().unwrap(),
                size: f[4].parse().unwrap(),
                hash: f[5].to_owned(),
            });
        }
    }
    packets
}

/// Asserts `ours` carries exactly the packets of `source` for `kind`: same count, same
/// payload checksums in order, and timestamps equal up to one constant offset.
/// Returns that offset in seconds.
pub fn assert_same_stream(source: &Packets, ours: &Packets, kind: &str, label: &str) -> f64 {
    let (tb_s, src) = source.streams.get(kind).unwrap_or_else(|| panic!("{label}: source has no {kind}"));
    let (tb_o, out) = ours.streams.get(kind).unwrap_or_else(|| panic!("{label}: output has no {kind}"));
    assert_eq!(out.len(), src.len(), "{label}: {kind} packet count");
    for (i, (a, b)) in src.iter().zip(out).enumerate() {
        assert_eq!((a.size, &a.hash), (b.size, &b.hash), "{label}: {kind} packet {i} payload");
    }
    let offset = out[0].pts as f64 * tb_o - src[0].pts as f64 * tb_s;
    let tolerance = tb_s.max(*tb_o) * 1.01;
    for (i, (a, b)) in src.iter().zip(out).enumerate() {
        let pts_shift = b.pts as f64 * tb_o - a.pts as f64 * tb_s;
        let dts_shift = b.dts as f64 * tb_o - a.dts as f64 * tb_s;
        assert!(
            (pts_shift - offset).abs() <= tolerance,
            "{label}: {kind} packet {i} pts moved by {pts_shift}, not {offset}"
        );
        assert!(
            (dts_shift - offset).abs() <= tolerance,
            "{label}: {kind} packet {i} dts moved by {dts_shift}, not {offset}"
        );
    }
    offset
}

/// The whole comparison for a source with audio and/or video: per-stream equality,
/// and one shared offset (A/V sync preserved) no larger than one AAC frame.
pub fn assert_same_packets(source: &Packets, ours: &Packets, label: &str) {
    let mut offsets = Vec::new();
    for kind in source.streams.keys() {
        offsets.push((kind.clone(), assert_same_stream(source, ours, kind, label)));
    }
    assert_eq!(ours.streams.len(), source.streams.len(), "{label}: stream count");
    for (kind, off) in &offsets {
        assert!(off.abs() <= 0.0214, "{label}: {kind} shifted by {off} s");
    }
    if let [(_, a), (_, b)] = offsets.as_slice() {
        assert!((a - b).abs() < 0.001, "{label}: audio and video shifted differently ({offsets:?})");
    }
}
