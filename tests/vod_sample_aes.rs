//! Apple's SAMPLE-AES for protected assets' MPEG-TS ladders (`[encryption] ts_method =
//! "sample-aes"`): the playlists name FairPlay's `skd://` key and the edge's; every segment, decrypted
//! by a reader written here as players do it (one level of escapes dropped, then CBC over the
//! slices' 1-in-10 blocks and the AAC frames' whole blocks), gives the clear segment's elementary
//! streams; the continuity counters run on across segments (counted from sample sizes); ffmpeg's
//! own SAMPLE-AES reader gives the clear ladder's pictures and sound.

mod common;

use std::collections::HashMap;
use std::path::Path;

use aes::Aes128;
use aes::cipher::{BlockDecryptMut, KeyIvInit, generic_array::GenericArray};
use common::client::get;
use common::media::media;
use common::{TestServer, test_config_in};

const KID: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEY: &str = "00112233445566778899aabbccddeeff";

fn storage_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("drm")).unwrap();
    for file in ["bframes.mp4", "irregular.mp4"] {
        std::fs::copy(media().join(file), dir.path().join(file)).unwrap();
        std::fs::copy(media().join(file), dir.path().join("drm").join(file)).unwrap();
    }
    dir
}

async fn server(root: &Path) -> TestServer {
    let mut config = test_config_in(root);
    config.encryption.vod_prefixes = vec!["drm/".into()];
    config.encryption.key_id = KID.into();
    config.encryption.key = KEY.into();
    config.encryption.key_delivery = true;
    config.encryption.scheme = estuary::config::EncryptionScheme::Cbcs;
    config.encryption.fairplay_uri = "skd://keys.example.com/{kid}".into();
    config.encryption.ts_method = estuary::keys::protection::TsMethod::SampleAes;
    TestServer::start(config).await
}

/// Each PID's PES payloads (headers dropped), in order.
fn pes_payloads(ts: &[u8]) -> HashMap<u16, Vec<Vec<u8>>> {
    let mut streams: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    for p in ts.chunks(188) {
        let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1FFF;
        if pid == 0 || pid == 0x1000 || p[3] & 0x10 == 0 {
            continue;
        }
        let at = if p[3] & 0x20 != 0 { 5 + usize::from(p[4]) } else { 4 };
        let list = streams.entry(pid).or_default();
        if p[1] & 0x40 != 0 {
            list.push(Vec::new());
        }
        list.last_mut().expect("a PES starts its PID").extend_from_slice(&p[at..]);
    }
    for list in streams.values_mut() {
        for pes in list.iter_mut() {
            *pes = pes[9 + usize::from(pes[8])..].to_vec();
        }
    }
    streams
}

/// The NAL units of an Annex B access unit (start codes dropped).
fn nal_units(au: &[u8]) -> Vec<&[u8]> {
    let starts: Vec<usize> = (0..au.len().saturating_sub(2)).filter(|&i| au[i..i + 3] == [0, 0, 1]).collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let end = starts.get(n + 1).map_or(au.len(), |&next| if au[next - 1] == 0 { next - 1 } else { next });
            &au[s + 3..end]
        })
        .collect()
}

/// `nal` with one level of emulation prevention dropped: every 0x03 after two zeros.
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(nal.len());
    let mut i = 0;
    while i < nal.len() {
        if i + 2 < nal.len() && nal[i..i + 3] == [0, 0, 3] {
            raw.extend_from_slice(&[0, 0]);
            i += 3;
        } else {
            raw.push(nal[i]);
            i += 1;
        }
    }
    raw
}

fn key_and_iv(iv: &str) -> ([u8; 16], [u8; 16]) {
    (common::unhex(KEY).try_into().unwrap(), common::unhex(iv).try_into().unwrap())
}

/// A protected video access unit as a player reads it: slices (types 1 and 5, longer than 48 bytes
/// as sent) unescaped once and decrypted, other NAL units as they are; fillers dropped.
fn open_video(au: &[u8], iv: &str) -> Vec<Vec<u8>> {
    let (key, iv) = key_and_iv(iv);
    let mut units: Vec<Vec<u8>> = Vec::new();
    for nal in nal_units(au).into_iter().filter(|u| u[0] & 0x1F != 12) {
        if !matches!(nal[0] & 0x1F, 1 | 5) || nal.len() <= 48 {
            units.push(nal.to_vec());
            continue;
        }
        let mut raw = unescape(nal);
        {
            let mut chain = cbc::Decryptor::<Aes128>::new(&key.into(), &iv.into());
            let mut at = 32;
            while raw.len() > at + 16 {
                chain.decrypt_block_mut(GenericArray::from_mut_slice(&mut raw[at..at + 16]));
                at += 160;
            }
        }
        units.push(raw);
    }
    units
}

/// Protected ADTS frames as a player reads them: each frame's whole blocks after 16 clear bytes.
fn open_audio(pes: &[u8], iv: &str) -> Vec<u8> {
    let (key, iv) = key_and_iv(iv);
    let mut out = pes.to_vec();
    let mut at = 0;
    while at < out.len() {
        let len =
            ((usize::from(out[at + 3]) & 3) << 11) | (usize::from(out[at + 4]) << 3) | (usize::from(out[at + 5]) >> 5);
        let body = at + 7..at + len;
        if body.len() >= 32 {
            let mut chain = cbc::Decryptor::<Aes128>::new(&key.into(), &iv.into());
            for block in out[body.start + 16..body.end].chunks_exact_mut(16) {
                chain.decrypt_block_mut(GenericArray::from_mut_slice(block));
            }
        }
        at += len;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_aes_segments_decrypt_to_the_clear_elementary_streams() {
    let root = storage_root();
    let s = server(root.path()).await;
    // One IV for every segment, the same on every pod: AES-128 of the KID under the key.
    let iv = {
        use aes::cipher::{BlockEncrypt, KeyInit};
        let mut block = GenericArray::clone_from_slice(&common::unhex(KID));
        Aes128::new_from_slice(&common::unhex(KEY)).unwrap().encrypt_block(&mut block);
        block.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let skd = format!(
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://keys.example.com/{KID}\",IV=0x{iv},KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""
    );
    let identity = format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"/keys/{KID}.key\",IV=0x{iv}");
    for asset in ["bframes.mp4", "irregular.mp4"] {
        let master = get(s.edge, &format!("/vod/drm/{asset}/ts/master.m3u8")).await.text();
        assert!(!master.contains("I-FRAME"), "{master}");
        for line in [&skd, &identity] {
            let session = line.replace("#EXT-X-KEY", "#EXT-X-SESSION-KEY");
            assert!(master.lines().any(|l| l == session), "{session}: {master}");
        }
        let text = get(s.edge, &format!("/vod/drm/{asset}/ts/v0.m3u8")).await.text();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:5\n"), "KEYFORMAT needs version 5: {text}");
        let first_segment = text.lines().position(|l| l.starts_with("#EXTINF"));
        for line in [&skd, &identity] {
            let at = text.lines().position(|l| l == line);
            assert!(at.is_some() && at < first_segment, "{line}: {text}");
        }
        let mut sealed_segments = Vec::new();
        for segment in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let sealed = get(s.edge, &format!("/vod/drm/{asset}/ts/{segment}")).await;
            assert_eq!((sealed.status, sealed.header("content-type")), (200, Some("video/mp2t")), "{segment}");
            let clear = get(s.edge, &format!("/vod/{asset}/ts/{segment}")).await.body;
            assert_ne!(sealed.body, clear);
            let pmt = &sealed.body[188..376];
            assert!(pmt.windows(4).any(|w| w == b"zavc") && pmt.windows(4).any(|w| w == b"aacd"), "{asset} PMT");
            let (sealed_es, clear_es) = (pes_payloads(&sealed.body), pes_payloads(&clear));
            let (video, clear_video) = (&sealed_es[&0x100], &clear_es[&0x100]);
            assert_eq!(video.len(), clear_video.len(), "{asset} {segment}: one PES per frame");
            let mut encrypted_slices = 0;
            for (au, clear_au) in video.iter().zip(clear_video) {
                let opened = open_video(au, &iv);
                let want: Vec<Vec<u8>> =
                    nal_units(clear_au).into_iter().filter(|u| u[0] & 0x1F != 12).map(<[u8]>::to_vec).collect();
                assert!(opened == want, "{asset} {segment}: an access unit decrypts to the clear one");
                encrypted_slices +=
                    nal_units(au).iter().filter(|u| matches!(u[0] & 0x1F, 1 | 5) && u.len() > 48).count();
            }
            assert!(encrypted_slices > 0);
            let last = nal_units(video.last().unwrap()).last().map(|u| u[0] & 0x1F);
            assert_eq!(last, Some(12), "the segment's last picture ends with the filler that keeps its count");
            let (audio, clear_audio) = (&sealed_es[&0x101], &clear_es[&0x101]);
            assert_eq!(audio.len(), clear_audio.len());
            for (pes, clear_pes) in audio.iter().zip(clear_audio) {
                assert_ne!(pes, clear_pes, "audio is encrypted");
                assert!(open_audio(pes, &iv) == *clear_pes, "{asset} {segment}: audio decrypts to the clear frames");
            }
            sealed_segments.push(sealed.body);
        }
        assert!(sealed_segments.len() > 1);
        // Counted from sample sizes, the counters run on from one segment to the next.
        common::ts::assert_continuous(&sealed_segments, asset);
    }
    let counted = "estuary_encrypted_segments_total{scheme=\"sample-aes\"}";
    let metrics = get(s.api, "/metrics").await.text();
    assert!(metrics.lines().any(|l| l.starts_with(counted) && !l.ends_with(" 0")), "{counted}: {metrics}");
}

/// What ffmpeg copies out of `url`: `-map 0:{stream} -c copy -f {format} -`.
fn ffmpeg_copy(url: &str, stream: &str, format: &str) -> Vec<u8> {
    let map = format!("0:{stream}");
    let out = common::tools::run("ffmpeg", &["-v", "error", "-i", url, "-map", &map, "-c", "copy", "-f", format, "-"]);
    assert!(out.status.success(), "ffmpeg -i {url}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// An H.264 byte stream without its filler NAL units (the clear ones a sample's delimiters
/// became, and the one that ends each protected segment).
fn without_fillers(stream: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(stream.len());
    let mut at = 0;
    while at < stream.len() {
        match stream[at..].starts_with(&[0, 0, 0, 1, 0x0C]) {
            true => at += 5 + stream[at + 5..].iter().position(|&b| b != 0xFF).expect("trailing bits") + 1,
            false => {
                kept.push(stream[at]);
                at += 1;
            }
        }
    }
    kept
}

/// ffmpeg's SAMPLE-AES reader (libavformat's `hls_sample_encryption`) fetches the key from the
/// playlist and reads the clear ladder's AAC packets and H.264 pictures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_reads_the_sample_aes_ladder_as_the_clear_one() {
    let root = storage_root();
    let s = server(root.path()).await;
    let (protected, clear) = (
        format!("http://{}/vod/drm/bframes.mp4/ts/master.m3u8", s.edge),
        format!("http://{}/vod/bframes.mp4/ts/master.m3u8", s.edge),
    );
    let read = move |url: String| (ffmpeg_copy(&url, "a", "framemd5"), ffmpeg_copy(&url, "v", "h264"));
    let ((audio, video), (clear_audio, clear_video)) =
        tokio::task::spawn_blocking(move || (read(protected), read(clear))).await.unwrap();
    let (audio, clear_audio) = (String::from_utf8(audio).unwrap(), String::from_utf8(clear_audio).unwrap());
    assert!(clear_audio.lines().filter(|l| !l.starts_with('#')).count() > 100, "{clear_audio}");
    assert!(audio == clear_audio, "the AAC packets decrypt to the clear ones");
    assert!(clear_video.len() > 100_000 && video != clear_video);
    let (video, clear_video) = (without_fillers(&video), without_fillers(&clear_video));
    // ffmpeg hands on the last two pictures as it flushes (the last PES, whose end it learns at the
    // end of the stream, and the one its parser held back), past its last segment, undecrypted:
    // every picture before them must be the clear one.
    let aud = [0, 0, 0, 1, 0x09];
    let auds: Vec<usize> = (0..clear_video.len() - 5).filter(|&i| clear_video[i..i + 5] == aud).collect();
    let last = auds[auds.len() - 2];
    assert_eq!(video.len(), clear_video.len());
    assert!(last > clear_video.len() / 2);
    assert!(video[..last] == clear_video[..last], "the pictures decrypt to the clear ones");
}
