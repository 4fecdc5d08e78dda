//! PURE: the CPIX 2.3 documents of SPEKE v2 (DASH-IF's Content Protection Information Exchange, as
//! MediaPackage and the DRM vendors' key servers speak it): the request estuary sends for one
//! content id, KID and key period, and what it reads of the answer (the key in the clear, each
//! DRM system's `pssh`, FairPlay's `skd://` URI).
//!
//! Invariants: an answer whose key is not for the KID asked, not 16 bytes, or encrypted under a
//! document key estuary does not hold is an error, never a guess; nothing here logs a key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::packaging::cenc::{ContentKey, KeyId, Pssh, Scheme, SystemId, parse_pssh_boxes};

const CPIX_NS: &str = "urn:dashif:org:cpix";
const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

/// FairPlay's system id (`94ce86fb-07ff-4f43-adb8-93d2fa968ca2`), as CPIX names it.
pub const FAIRPLAY: SystemId =
    SystemId([0x94, 0xce, 0x86, 0xfb, 0x07, 0xff, 0x4f, 0x43, 0xad, 0xb8, 0x93, 0xd2, 0xfa, 0x96, 0x8c, 0xa2]);

/// What one request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest<'a> {
    pub content_id: &'a str,
    pub kid: KeyId,
    pub scheme: Scheme,
    /// The key period (live key rotation); `None` for one key for the whole content.
    pub period: Option<u64>,
    /// The DRM systems whose signalling is wanted.
    pub systems: &'a [SystemId],
}

/// What an answer gives: the key, and each DRM system's signalling.
#[derive(Debug, Clone)]
pub struct KeyAnswer {
    pub key: ContentKey,
    /// The DRM systems' `pssh` boxes (the common system's excluded: estuary writes it).
    pub systems: Vec<Pssh>,
    /// FairPlay's key URI (`skd://...`), when the answer has FairPlay.
    pub fairplay_uri: Option<String>,
}

/// A CPIX answer estuary cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CPIX answer: {0}")]
pub struct CpixError(pub String);

fn fail<T>(why: impl Into<String>) -> Result<T, CpixError> {
    Err(CpixError(why.into()))
}

/// The CPIX request document for `r`.
pub fn request(r: &KeyRequest<'_>) -> String {
    let kid = r.kid.uuid();
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<cpix:CPIX xmlns:cpix=\"{CPIX_NS}\" xmlns:pskc=\"{PSKC_NS}\" contentId=\"{}\" version=\"2.3\">\n",
        escape(r.content_id)
    ));
    out.push_str(&format!(
        "  <cpix:ContentKeyList>\n    <cpix:ContentKey kid=\"{kid}\" commonEncryptionScheme=\"{}\"/>\n  </cpix:ContentKeyList>\n",
        r.scheme.name()
    ));
    out.push_str("  <cpix:DRMSystemList>\n");
    for system in r.systems {
        let id = KeyId(system.0).uuid();
        out.push_str(&format!("    <cpix:DRMSystem kid=\"{kid}\" systemId=\"{id}\">\n"));
        if *system == FAIRPLAY {
            out.push_str("      <cpix:URIExtXKey/>\n");
        } else {
            out.push_str("      <cpix:PSSH/>\n      <cpix:ContentProtectionData/>\n");
        }
        out.push_str("      <cpix:HLSSignalingData playlist=\"media\"/>\n");
        out.push_str("      <cpix:HLSSignalingData playlist=\"master\"/>\n");
        out.push_str("    </cpix:DRMSystem>\n");
    }
    out.push_str("  </cpix:DRMSystemList>\n");
    if let Some(period) = r.period {
        out.push_str(&format!(
            "  <cpix:ContentKeyPeriodList>\n    <cpix:ContentKeyPeriod id=\"keyPeriod_{period}\" index=\"{period}\"/>\n  </cpix:ContentKeyPeriodList>\n"
        ));
    }
    out.push_str(&format!(
        "  <cpix:ContentKeyUsageRuleList>\n    <cpix:ContentKeyUsageRule kid=\"{kid}\" intendedTrackType=\"ALL\""
    ));
    match r.period {
        Some(period) => out.push_str(&format!(
            ">\n      <cpix:KeyPeriodFilter periodId=\"keyPeriod_{period}\"/>\n    </cpix:ContentKeyUsageRule>\n"
        )),
        None => out.push_str("/>\n"),
    }
    out.push_str("  </cpix:ContentKeyUsageRuleList>\n</cpix:CPIX>\n");
    out
}

/// Reads the answer to a request for `kid`: its key (in the clear: SPEKE over TLS), and the
/// signalling of each DRM system for that KID.
pub fn parse_answer(document: &str, kid: KeyId) -> Result<KeyAnswer, CpixError> {
    let doc = roxmltree::Document::parse(document).map_err(|e| CpixError(format!("not XML: {e}")))?;
    let root = doc.root_element();
    if !is(&root, CPIX_NS, "CPIX") {
        return fail("the document is not a CPIX document");
    }
    let kid_of = |n: &roxmltree::Node<'_, '_>| n.attribute("kid").and_then(KeyId::parse);
    let content_key = root
        .descendants()
        .find(|n| is(n, CPIX_NS, "ContentKey") && kid_of(n) == Some(kid))
        .ok_or_else(|| CpixError(format!("no ContentKey for KID {kid}")))?;
    if content_key.descendants().any(|n| is(&n, PSKC_NS, "EncryptedValue")) {
        return fail("the key is encrypted under a document key (estuary reads keys in the clear, over TLS)");
    }
    let plain = content_key
        .descendants()
        .find(|n| is(n, PSKC_NS, "PlainValue"))
        .and_then(|n| n.text())
        .ok_or_else(|| CpixError(format!("the ContentKey for KID {kid} has no PlainValue")))?;
    let bytes = STANDARD.decode(plain.trim()).map_err(|_| CpixError("the key is not base64".into()))?;
    let key: [u8; 16] = bytes.try_into().map_err(|_| CpixError("the key is not 16 bytes".into()))?;
    let mut systems = Vec::new();
    let mut fairplay_uri = None;
    for system in root.descendants().filter(|n| is(n, CPIX_NS, "DRMSystem") && kid_of(n) == Some(kid)) {
        let Some(id) = system.attribute("systemId").and_then(KeyId::parse).map(|k| SystemId(k.0)) else {
            return fail("a DRMSystem without a systemId");
        };
        let child = |name: &str| {
            system
                .children()
                .find(|n| is(n, CPIX_NS, name))
                .and_then(|n| n.text())
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        let decoded = |name: &str| -> Result<Option<Vec<u8>>, CpixError> {
            child(name).map(|t| STANDARD.decode(t).map_err(|_| CpixError(format!("{name} is not base64")))).transpose()
        };
        if id == FAIRPLAY {
            let uri = match decoded("URIExtXKey")? {
                Some(uri) => Some(String::from_utf8(uri).map_err(|_| CpixError("URIExtXKey is not text".into()))?),
                None => hls_signalling_uri(&system)?,
            };
            fairplay_uri = uri.map(|u| checked_skd(&u)).transpose()?;
        } else if id != SystemId::COMMON
            && let Some(pssh) = decoded("PSSH")?
        {
            let boxes = parse_pssh_boxes(&pssh).map_err(|e| CpixError(format!("PSSH: {e}")))?;
            systems.extend(boxes);
        }
    }
    Ok(KeyAnswer { key: ContentKey::new(kid, key), systems, fairplay_uri })
}

/// FairPlay's URI from an `HLSSignalingData` (a base64 `#EXT-X-KEY` line), when that is all the
/// answer gives.
fn hls_signalling_uri(system: &roxmltree::Node<'_, '_>) -> Result<Option<String>, CpixError> {
    let Some(text) = system.children().find(|n| is(n, CPIX_NS, "HLSSignalingData")).and_then(|n| n.text()) else {
        return Ok(None);
    };
    let line = STANDARD.decode(text.trim()).map_err(|_| CpixError("HLSSignalingData is not base64".into()))?;
    let line = String::from_utf8_lossy(&line);
    Ok(line.split("URI=\"").nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned))
}

/// Whether `uri` is an `skd://` URI fit to write into a playlist's quoted attribute: no quote,
/// comma, space or control character. The config's and the key server's FairPlay URIs alike.
pub fn is_playlist_skd(uri: &str) -> bool {
    uri.starts_with("skd://") && !uri.chars().any(|c| c == '"' || c == ',' || c.is_whitespace() || c.is_control())
}

fn checked_skd(uri: &str) -> Result<String, CpixError> {
    if !is_playlist_skd(uri) {
        return fail("FairPlay's URI is not an skd:// URI fit for a playlist");
    }
    Ok(uri.to_owned())
}

fn is(node: &roxmltree::Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// `text` escaped for an XML attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push_str(&format!("&#{};", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "cpix_tests.rs"]
mod tests;
