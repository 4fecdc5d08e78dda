//! Ingest credentials (HTTP Basic with the channel id and token, or a bearer token) and the uploads
//! held until their connection authenticates.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};
use subtle::ConstantTimeEq;

use std::net::IpAddr;

use crate::live::ChannelId;

/// Only small uploads (init segments, playlists) are held; ffmpeg re-sends segments itself.
pub const HOLD_LIMIT: u64 = 1024 * 1024;
const MAX_HELD: usize = 256;
/// ffmpeg authenticates within milliseconds of the refused upload; keep the window short.
const HOLD_FOR: Duration = Duration::from_secs(10);

pub enum Credentials {
    Missing,
    Wrong,
    Valid,
}

impl Credentials {
    /// `Authorization: Basic base64(channel:token)` (any user name is accepted with the right token) or `Bearer token`.
    pub fn check(headers: &HeaderMap, channel: &ChannelId, token: &str) -> Credentials {
        let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Credentials::Missing;
        };
        let presented = if let Some(b64) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok());
            match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((user, pass)) if user.is_empty() || user == channel.as_str() => pass.to_owned(),
                _ => return Credentials::Wrong,
            }
        } else if let Some(bearer) = value.strip_prefix("Bearer ") {
            bearer.trim().to_owned()
        } else {
            return Credentials::Wrong;
        };
        if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) { Credentials::Valid } else { Credentials::Wrong }
    }
}

pub struct Held {
    pub channel: ChannelId,
    pub method: Method,
    pub path: String,
    pub body: Bytes,
    at: Instant,
}

/// A few held uploads per client address (in order), for a few seconds, for a bounded number of clients.
#[derive(Default)]
pub struct HeldUploads {
    held: Mutex<HashMap<IpAddr, Vec<Held>>>,
}

/// Uploads held per client address.
const PER_CLIENT: usize = 8;

impl HeldUploads {
    pub fn hold(&self, client: IpAddr, channel: ChannelId, method: Method, path: String, body: Bytes) {
        if body.is_empty() && method != Method::DELETE {
            // ffmpeg's credential probe: nothing to keep.
            return;
        }
        let Ok(mut held) = self.held.lock() else { return };
        held.retain(|_, list| list.iter().any(|h| h.at.elapsed() < HOLD_FOR));
        if held.len() >= MAX_HELD && !held.contains_key(&client) {
            return;
        }
        let list = held.entry(client).or_default();
        if list.len() < PER_CLIENT {
            list.push(Held { channel, method, path, body, at: Instant::now() });
        }
    }

    /// The uploads this client made for `channel` just before it authenticated, oldest first.
    pub fn take(&self, client: IpAddr, channel: &ChannelId) -> Vec<Held> {
        let Ok(mut held) = self.held.lock() else { return Vec::new() };
        let Some(list) = held.get_mut(&client) else { return Vec::new() };
        let (mine, others): (Vec<Held>, Vec<Held>) = list.drain(..).partition(|h| &h.channel == channel);
        *list = others;
        if list.is_empty() {
            held.remove(&client);
        }
        mine.into_iter().filter(|h| h.at.elapsed() < HOLD_FOR).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn basic_and_bearer() {
        let ch = ChannelId::parse("news").unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(matches!(Credentials::check(&HeaderMap::new(), &ch, "tok"), Credentials::Missing));
        assert!(matches!(
            Credentials::check(&headers(&format!("Basic {}", b64("news:tok"))), &ch, "tok"),
            Credentials::Valid
        ));
        assert!(matches!(
            Credentials::check(&headers(&format!("Basic {}", b64("other:tok"))), &ch, "tok"),
            Credentials::Wrong
        ));
        assert!(matches!(
            Credentials::check(&headers(&format!("Basic {}", b64("news:nope"))), &ch, "tok"),
            Credentials::Wrong
        ));
        assert!(matches!(Credentials::check(&headers("Bearer tok"), &ch, "tok"), Credentials::Valid));
        assert!(matches!(Credentials::check(&headers("Basic !!!"), &ch, "tok"), Credentials::Wrong));
    }

    #[test]
    fn held_uploads_belong_to_their_connection_and_channel() {
        let held = HeldUploads::default();
        let ch = ChannelId::parse("news").unwrap();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        held.hold(a, ch.clone(), Method::PUT, "v0/init.mp4".into(), Bytes::from_static(b"x"));
        held.hold(a, ch.clone(), Method::PUT, "v0/seg_0.m4s".into(), Bytes::new());
        held.hold(a, ch.clone(), Method::PUT, "v0/index.m3u8".into(), Bytes::from_static(b"y"));
        assert!(held.take(b, &ch).is_empty());
        assert!(held.take(a, &ChannelId::parse("other").unwrap()).is_empty());
        let paths: Vec<_> = held.take(a, &ch).into_iter().map(|h| h.path).collect();
        assert_eq!(paths, ["v0/init.mp4", "v0/index.m3u8"], "in order, without empty probes");
        assert!(held.take(a, &ch).is_empty());
    }
}
