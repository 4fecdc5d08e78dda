//! The CPIX request's shape and the reading of answers, good and bad.

use super::*;

const KID: KeyId = KeyId([0x0f; 16]);

fn answer(kid: &str, key_b64: &str, systems: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" contentId="a" version="2.3">
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="{kid}" commonEncryptionScheme="cbcs">
      <cpix:Data><pskc:Secret><pskc:PlainValue>{key_b64}</pskc:PlainValue></pskc:Secret></cpix:Data>
    </cpix:ContentKey>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>{systems}</cpix:DRMSystemList>
</cpix:CPIX>"#
    )
}

fn pssh_box(system: &SystemId) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    crate::packaging::cenc::write_pssh(&mut b, system, &[KID], b"data");
    b.to_vec()
}

#[test]
fn the_request_names_the_content_the_kid_the_scheme_and_each_system() {
    let systems = [SystemId::WIDEVINE, FAIRPLAY];
    let r = KeyRequest {
        content_id: "films/a&b\".mp4",
        kid: KID,
        scheme: Scheme::Cbcs,
        period: Some(7),
        systems: &systems,
    };
    let xml = request(&r);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.attribute("contentId"), Some("films/a&b\".mp4"));
    assert_eq!(root.attribute("version"), Some("2.3"));
    let key = root.descendants().find(|n| n.tag_name().name() == "ContentKey").unwrap();
    assert_eq!(key.attribute("kid"), Some(KID.uuid().as_str()));
    assert_eq!(key.attribute("commonEncryptionScheme"), Some("cbcs"));
    let ids: Vec<_> = root
        .descendants()
        .filter(|n| n.tag_name().name() == "DRMSystem")
        .map(|n| n.attribute("systemId").unwrap())
        .collect();
    assert_eq!(ids, ["edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"]);
    let period = root.descendants().find(|n| n.tag_name().name() == "ContentKeyPeriod").unwrap();
    assert_eq!(period.attribute("index"), Some("7"));
    let filter = root.descendants().find(|n| n.tag_name().name() == "KeyPeriodFilter").unwrap();
    assert_eq!(filter.attribute("periodId"), period.attribute("id"));
    assert!(root.descendants().all(|n| !n.is_element() || n.tag_name().namespace() == Some(CPIX_NS)));
    // Without a period: no period list, one usage rule for the whole content.
    let xml = request(&KeyRequest { period: None, ..r });
    assert!(!xml.contains("ContentKeyPeriod") && xml.contains("intendedTrackType=\"ALL\"/>"), "{xml}");
}

#[test]
fn an_answer_gives_the_key_the_pssh_boxes_and_fairplay() {
    let wv = STANDARD.encode(pssh_box(&SystemId::WIDEVINE));
    let common = STANDARD.encode(pssh_box(&SystemId::COMMON));
    let skd = STANDARD.encode("skd://keys.example.com/0f0f");
    let systems = format!(
        r#"<cpix:DRMSystem kid="{kid}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH>{wv}</cpix:PSSH></cpix:DRMSystem>
           <cpix:DRMSystem kid="{kid}" systemId="1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"><cpix:PSSH>{common}</cpix:PSSH></cpix:DRMSystem>
           <cpix:DRMSystem kid="{kid}" systemId="94ce86fb-07ff-4f43-adb8-93d2fa968ca2"><cpix:URIExtXKey>{skd}</cpix:URIExtXKey></cpix:DRMSystem>"#,
        kid = KID.uuid()
    );
    let doc = answer(&KID.uuid(), &STANDARD.encode([0x11; 16]), &systems);
    let got = parse_answer(&doc, KID).unwrap();
    assert_eq!(got.key, ContentKey::new(KID, [0x11; 16]));
    assert_eq!(got.systems.len(), 1, "the common system's box is estuary's to write");
    assert_eq!(got.systems[0].system, SystemId::WIDEVINE);
    assert_eq!(got.fairplay_uri.as_deref(), Some("skd://keys.example.com/0f0f"));
    // FairPlay given only as HLS signalling data: its URI is read from the key line.
    let line =
        STANDARD.encode("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k/1\",KEYFORMAT=\"com.apple.streamingkeydelivery\"");
    let systems = format!(
        r#"<cpix:DRMSystem kid="{}" systemId="94ce86fb-07ff-4f43-adb8-93d2fa968ca2"><cpix:HLSSignalingData playlist="media">{line}</cpix:HLSSignalingData></cpix:DRMSystem>"#,
        KID.uuid()
    );
    let got = parse_answer(&answer(&KID.hex(), &STANDARD.encode([1; 16]), &systems), KID).unwrap();
    assert_eq!(got.fairplay_uri.as_deref(), Some("skd://k/1"));
}

#[test]
fn answers_estuary_cannot_use_are_errors() {
    let key = STANDARD.encode([0x11; 16]);
    let other = KeyId([1; 16]);
    let cases = [
        ("not xml".to_owned(), "not XML"),
        ("<a/>".to_owned(), "not a CPIX"),
        (answer(&other.uuid(), &key, ""), "no ContentKey"),
        (answer(&KID.uuid(), "!!", ""), "not base64"),
        (answer(&KID.uuid(), &STANDARD.encode([1; 15]), ""), "not 16 bytes"),
        (
            answer(
                &KID.uuid(),
                &key,
                &format!(
                    r#"<cpix:DRMSystem kid="{}" systemId="94ce86fb-07ff-4f43-adb8-93d2fa968ca2"><cpix:URIExtXKey>{}</cpix:URIExtXKey></cpix:DRMSystem>"#,
                    KID.uuid(),
                    STANDARD.encode("skd://a\",b")
                ),
            ),
            "skd",
        ),
        (
            answer(
                &KID.uuid(),
                &key,
                &format!(
                    r#"<cpix:DRMSystem kid="{}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH>{}</cpix:PSSH></cpix:DRMSystem>"#,
                    KID.uuid(),
                    STANDARD.encode("junk-that-is-no-box")
                ),
            ),
            "PSSH",
        ),
    ];
    for (doc, why) in cases {
        let e = parse_answer(&doc, KID).unwrap_err();
        assert!(e.0.contains(why), "{why}: {e}");
    }
    let encrypted = answer(&KID.uuid(), &key, "")
        .replace("<pskc:PlainValue>", "<pskc:EncryptedValue>")
        .replace("</pskc:PlainValue>", "</pskc:EncryptedValue>");
    assert!(parse_answer(&encrypted, KID).unwrap_err().0.contains("document key"));
}
