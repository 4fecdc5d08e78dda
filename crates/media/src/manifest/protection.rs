//! PURE: how manifests announce protected media: HLS `EXT-X-KEY`/`EXT-X-SESSION-KEY` lines and
//! DASH `ContentProtection` elements, for common encryption (each DRM system given with the key,
//! FairPlay for `cbcs`, the common system, ClearKey) and for HLS AES-128 and SAMPLE-AES in MPEG-TS.

use std::fmt::Write;

use super::SegmentEncryption;
use crate::cenc::{KeyId, Scheme, Signalling, SystemId, write_pssh};

/// `#EXT-X-KEY` or `#EXT-X-SESSION-KEY` (`tag`) for segments encrypted as `key` says.
pub(super) fn write_key(out: &mut String, tag: &str, key: &SegmentEncryption) {
    match key {
        // The common system's pssh (the KID) as the key's URI, as Widevine's and ClearKey's players
        // read it; the key itself comes from the licence server the player is given.
        SegmentEncryption::Cenc(signalling) => {
            let kid = signalling.kid.hex();
            let method = match signalling.scheme {
                Scheme::Cenc => "SAMPLE-AES-CTR",
                Scheme::Cbcs => "SAMPLE-AES",
            };
            // FairPlay: its key server's `skd://` URI (checked when configured: no quote, no line
            // break); AVPlayer asks its app for the key with it.
            if let (Scheme::Cbcs, Some(uri)) = (signalling.scheme, &signalling.fairplay_uri) {
                let _ = writeln!(
                    out,
                    "{tag}:METHOD=SAMPLE-AES,URI=\"{uri}\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""
                );
            }
            for pssh in signalling.systems.iter() {
                // PlayReady reads its PlayReady Object (UTF-16); the others their whole box.
                let (format, uri) = match pssh.system {
                    SystemId::PLAYREADY => (
                        "com.microsoft.playready".to_owned(),
                        format!("data:text/plain;charset=UTF-16;base64,{}", base64(&pssh.data)),
                    ),
                    system => (system.urn(), format!("data:text/plain;base64,{}", base64(&pssh.bytes))),
                };
                let _ = writeln!(
                    out,
                    "{tag}:METHOD={method},URI=\"{uri}\",KEYID=0x{kid},KEYFORMAT=\"{format}\",KEYFORMATVERSIONS=\"1\""
                );
            }
            let _ = writeln!(
                out,
                "{tag}:METHOD={method},URI=\"data:text/plain;base64,{}\",KEYID=0x{kid},KEYFORMAT=\"{}\",KEYFORMATVERSIONS=\"1\"",
                common_pssh_base64(&signalling.kid),
                SystemId::COMMON.urn()
            );
            // ClearKey as hls.js names it: the URI's data is the KID.
            let _ = writeln!(
                out,
                "{tag}:METHOD={method},URI=\"data:text/plain;base64,{}\",KEYID=0x{kid},KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\"",
                base64(&signalling.kid.0)
            );
        }
        // A path of the edge's (`/keys/{kid}.key`): no quote or line break to escape.
        SegmentEncryption::Aes128 { uri } => {
            let _ = writeln!(out, "{tag}:METHOD=AES-128,URI=\"{uri}\"");
        }
        SegmentEncryption::SampleAes { uri, fairplay_uri, iv } => {
            let iv = u128::from_be_bytes(*iv);
            if let Some(skd) = fairplay_uri {
                let _ = writeln!(
                    out,
                    "{tag}:METHOD=SAMPLE-AES,URI=\"{skd}\",IV=0x{iv:032x},KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""
                );
            }
            if let Some(uri) = uri {
                let _ = writeln!(out, "{tag}:METHOD=SAMPLE-AES,URI=\"{uri}\",IV=0x{iv:032x}");
            }
        }
    }
}

/// The `ContentProtection` of a `cenc` adaptation set: the scheme with its default KID (which
/// every DRM system's player reads), each DRM system given with the key (its `pssh`, and
/// PlayReady's `mspr:pro`), the common system's `pssh` (the KIDs, what ClearKey needs), and
/// ClearKey itself.
/// With `rotation` (live key rotation) no KID is named: each fragment names its own.
pub(super) fn write_content_protection(out: &mut String, protection: &Signalling, rotation: bool) {
    let kid = &protection.kid;
    let scheme = protection.scheme.name();
    if rotation {
        let _ = writeln!(
            out,
            "      <ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"{scheme}\"/>"
        );
        let _ = writeln!(out, "      <ContentProtection schemeIdUri=\"{}\"/>", SystemId::COMMON.urn());
        write_clearkey(out, protection);
        return;
    }
    let _ = writeln!(
        out,
        "      <ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"{scheme}\" cenc:default_KID=\"{}\"/>",
        kid.uuid()
    );
    for pssh in protection.systems.iter() {
        let (value, pro) = match pssh.system {
            SystemId::WIDEVINE => (" value=\"Widevine\"", None),
            SystemId::PLAYREADY => (" value=\"MSPR 2.0\"", Some(&pssh.data)),
            _ => ("", None),
        };
        let _ = write!(
            out,
            "      <ContentProtection schemeIdUri=\"{}\"{value}><cenc:pssh>{}</cenc:pssh>",
            pssh.system.urn(),
            base64(&pssh.bytes)
        );
        if let Some(pro) = pro {
            let _ = write!(out, "<mspr:pro>{}</mspr:pro>", base64(pro));
        }
        out.push_str("</ContentProtection>\n");
    }
    let _ = writeln!(
        out,
        "      <ContentProtection schemeIdUri=\"{}\"><cenc:pssh>{}</cenc:pssh></ContentProtection>",
        SystemId::COMMON.urn(),
        common_pssh_base64(kid)
    );
    write_clearkey(out, protection);
}

/// DASH-IF's ClearKey element, with the licence URL when the origin gives licences (a path of
/// the edge or an absolute URL estuary wrote: nothing to escape).
fn write_clearkey(out: &mut String, protection: &Signalling) {
    let urn = SystemId::CLEARKEY_DASH.urn();
    match &protection.clearkey_licence {
        Some(url) => {
            let _ = writeln!(
                out,
                "      <ContentProtection schemeIdUri=\"{urn}\" value=\"ClearKey1.0\"><dashif:Laurl>{url}</dashif:Laurl></ContentProtection>"
            );
        }
        None => {
            let _ = writeln!(out, "      <ContentProtection schemeIdUri=\"{urn}\" value=\"ClearKey1.0\"/>");
        }
    }
}

/// The common system's `pssh` box listing `kid`, in base64.
fn common_pssh_base64(kid: &KeyId) -> String {
    let mut pssh = bytes::BytesMut::new();
    write_pssh(&mut pssh, &SystemId::COMMON, &[*kid], &[]);
    base64(&pssh)
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}
