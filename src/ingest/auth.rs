//! Ingest credentials: the stream key as the first segment of the upload's path
//! (`/ingest/{channel}/{key}/...`, what every encoder can send on its first request), or in an
//! `Authorization` header (HTTP Basic with any user name and the key as password, or Bearer).

use base64::Engine;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::live::ChannelId;
use crate::live::key::KeyHash;

pub(super) enum Credentials {
    Missing,
    Wrong,
    Valid,
}

impl Credentials {
    /// `Authorization: Basic base64(channel:key)` (an empty user name or the channel id) or `Bearer key`.
    pub(super) fn check(headers: &HeaderMap, channel: &ChannelId, key: &KeyHash) -> Credentials {
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
        if key.matches(&presented) { Credentials::Valid } else { Credentials::Wrong }
    }
}

/// Splits `{key}/{path}` when the first segment is the channel's stream key.
pub(super) fn key_in_path<'a>(path: &'a str, key: &KeyHash) -> Option<&'a str> {
    let (first, rest) = path.split_once('/')?;
    (!rest.is_empty() && key.matches(first)).then_some(rest)
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
    fn basic_bearer_and_the_key_in_the_path() {
        let ch = ChannelId::parse("news").unwrap();
        let key = KeyHash::of("tok");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(matches!(Credentials::check(&HeaderMap::new(), &ch, &key), Credentials::Missing));
        assert!(matches!(
            Credentials::check(&headers(&format!("Basic {}", b64("news:tok"))), &ch, &key),
            Credentials::Valid
        ));
        assert!(matches!(
            Credentials::check(&headers(&format!("Basic {}", b64("other:tok"))), &ch, &key),
            Credentials::Wrong
        ));
        assert!(matches!(
            Credentials::check(&headers(&format!("Basic {}", b64("news:nope"))), &ch, &key),
            Credentials::Wrong
        ));
        assert!(matches!(Credentials::check(&headers("Bearer tok"), &ch, &key), Credentials::Valid));
        assert!(matches!(Credentials::check(&headers("Basic !!!"), &ch, &key), Credentials::Wrong));
        assert_eq!(key_in_path("tok/v0/init.mp4", &key), Some("v0/init.mp4"));
        assert_eq!(key_in_path("tok/", &key), None);
        assert_eq!(key_in_path("v0/init.mp4", &key), None);
        assert_eq!(key_in_path("to/k/init.mp4", &key), None);
    }
}
