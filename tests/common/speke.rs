//! A small SPEKE v2 key server for tests, following the CPIX 2.3 schema: it answers each POSTed
//! CPIX request with the key for the KID asked (derived from the KID, so it answers the same KID
//! with the same key, as a real key server does), a Widevine `pssh` and FairPlay's `skd://` URI.
//! It records every request, and can be stopped (connections refused) and started again on the
//! same port, to play an outage.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One request the key server got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub struct SpekeServer {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The key the test server gives for `kid` (16 bytes): its bytes reversed and flipped.
pub fn key_for(kid: &[u8; 16]) -> [u8; 16] {
    let mut key = *kid;
    key.reverse();
    key.iter_mut().for_each(|b| *b ^= 0x5A);
    key
}

pub const WIDEVINE_DATA: &[u8] = b"\x12\x10speke-widevine";

impl SpekeServer {
    pub fn start() -> SpekeServer {
        Self::start_on("127.0.0.1:0".parse().unwrap(), Arc::default())
    }

    fn start_on(addr: SocketAddr, received: Arc<Mutex<Vec<Received>>>) -> SpekeServer {
        let listener = TcpListener::bind(addr).expect("bind the key server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, received2) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        serve(stream, &received2);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        SpekeServer { addr, received, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}/speke/v2.0/copyProtection", self.addr)
    }

    /// Stops answering: the port is closed (connections refused).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Answers again, on the same port.
    pub fn restart(self) -> SpekeServer {
        let (addr, received) = (self.addr, self.received.clone());
        drop(self);
        Self::start_on(addr, received)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for SpekeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let answer = answer(&body);
    received.lock().unwrap().push(Received { headers, body });
    let (status, text) = match answer {
        Some(text) => ("200 OK", text),
        None => ("400 Bad Request", "not a CPIX request".to_owned()),
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nX-Speke-Version: 2.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// The CPIX answer to `request`: the request with the key filled in and each DRM system's data.
fn answer(request: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(request).ok()?;
    let root = doc.root_element();
    let content_id = root.attribute("contentId")?;
    let key = root.descendants().find(|n| n.tag_name().name() == "ContentKey")?;
    let kid_text = key.attribute("kid")?;
    let kid_hex: String = kid_text.chars().filter(|c| *c != '-').collect();
    let kid: Vec<u8> = (0..32).step_by(2).map(|i| u8::from_str_radix(&kid_hex[i..i + 2], 16).unwrap()).collect();
    let kid: [u8; 16] = kid.try_into().ok()?;
    let scheme = key.attribute("commonEncryptionScheme").unwrap_or("cenc");
    let mut systems = String::new();
    for system in root.descendants().filter(|n| n.tag_name().name() == "DRMSystem") {
        let id = system.attribute("systemId")?;
        let inner = match id {
            "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed" => {
                let mut pssh = ((32 + 4 + 16 + WIDEVINE_DATA.len()) as u32).to_be_bytes().to_vec();
                pssh.extend_from_slice(b"pssh\x01\0\0\0");
                pssh.extend_from_slice(&[
                    0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed,
                ]);
                pssh.extend_from_slice(&1u32.to_be_bytes());
                pssh.extend_from_slice(&kid);
                pssh.extend_from_slice(&(WIDEVINE_DATA.len() as u32).to_be_bytes());
                pssh.extend_from_slice(WIDEVINE_DATA);
                format!("<cpix:PSSH>{}</cpix:PSSH>", STANDARD.encode(pssh))
            }
            "94ce86fb-07ff-4f43-adb8-93d2fa968ca2" => {
                format!(
                    "<cpix:URIExtXKey>{}</cpix:URIExtXKey>",
                    STANDARD.encode(format!("skd://fairplay.test/{kid_hex}"))
                )
            }
            _ => String::new(),
        };
        systems.push_str(&format!("<cpix:DRMSystem kid=\"{kid_text}\" systemId=\"{id}\">{inner}</cpix:DRMSystem>"));
    }
    Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" contentId="{}" version="2.3">
<cpix:ContentKeyList><cpix:ContentKey kid="{kid_text}" commonEncryptionScheme="{scheme}"><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey></cpix:ContentKeyList>
<cpix:DRMSystemList>{systems}</cpix:DRMSystemList>
</cpix:CPIX>"#,
        content_id.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;"),
        STANDARD.encode(key_for(&kid))
    ))
}
