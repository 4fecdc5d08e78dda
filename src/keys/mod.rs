//! Content keys: where protected media's keys come from (the config's static key, or a SPEKE v2
//! key server asked per content id and key period), and the KIDs every pod derives alike.
//!
//! KIDs are derived, not stored: a KID is a hash of the content id and key period, so every pod
//! asks the key server for the same KID, gets the same key (a SPEKE server answers one KID with
//! one key), and serves byte-identical encrypted objects, with no round trip to the control store
//! and nothing to lose across an owner failover. Keys are held in memory only (see
//! `vod::protect`), never logged and never written anywhere.

pub mod cpix;
pub mod metrics;
pub mod protection;
mod speke;

use std::fmt;

use sha2::{Digest, Sha256};

pub use cpix::{FAIRPLAY, KeyAnswer};
pub use speke::{SpekeClient, SpekeError};

use crate::packaging::cenc::{KeyId, Scheme, SystemId};

/// Where keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// One key, from the config, for every protected asset.
    Static(KeyAnswer),
    /// A SPEKE v2 key server, asked for each content id (and key period) for these DRM systems.
    Speke { client: SpekeClient, systems: Vec<SystemId> },
}

/// A key that could not be had: which content and KID, and why (never the key).
#[derive(Debug, Clone, thiserror::Error)]
#[error("no key for content id {content_id:?}, KID {kid}: {cause}")]
pub struct KeyError {
    pub content_id: String,
    pub kid: KeyId,
    pub cause: SpekeError,
}

impl KeySource {
    /// The key and signalling of `content_id` (in key period `period`, for live rotation).
    pub async fn answer(&self, content_id: &str, period: Option<u64>, scheme: Scheme) -> Result<KeyAnswer, KeyError> {
        match self {
            KeySource::Static(answer) => match period {
                None => Ok(answer.clone()),
                // A rotated key from the static one: the vendors' boxes name the static KID, so
                // the period's key is announced by the common system (and ClearKey) only.
                Some(_) => {
                    let key = answer.key.derive(derive_kid(content_id, period));
                    Ok(KeyAnswer { key, systems: Vec::new(), fairplay_uri: None })
                }
            },
            KeySource::Speke { client, systems } => {
                let kid = derive_kid(content_id, period);
                let request = cpix::KeyRequest { content_id, kid, scheme, period, systems };
                client.fetch(&request).await.map_err(|cause| KeyError { content_id: content_id.to_owned(), kid, cause })
            }
        }
    }

    /// The KID `content_id` is encrypted under in `period`.
    pub fn kid(&self, content_id: &str, period: Option<u64>) -> KeyId {
        match (self, period) {
            (KeySource::Static(answer), None) => answer.key.kid,
            _ => derive_kid(content_id, period),
        }
    }
}

/// The KID of `content_id` (in key period `period`), the same on every pod and for every restart:
/// the first 16 bytes of a SHA-256 of the content id; with a period, the first 8 of another and
/// the period's number, so that a licence request's KID says which period it asks for
/// ([`period_of_kid`]).
pub fn derive_kid(content_id: &str, period: Option<u64>) -> KeyId {
    let digest = content_hash(content_id, period.is_some());
    let mut kid = [0u8; 16];
    match period {
        None => kid.copy_from_slice(&digest[..16]),
        Some(p) => {
            kid[..8].copy_from_slice(&digest[..8]);
            kid[8..].copy_from_slice(&p.to_be_bytes());
        }
    }
    KeyId(kid)
}

/// The key period `kid` names for `content_id`, when it is one of its rotated KIDs.
pub fn period_of_kid(content_id: &str, kid: &KeyId) -> Option<u64> {
    let digest = content_hash(content_id, true);
    let period = u64::from_be_bytes(kid.0[8..].try_into().ok()?);
    (kid.0[..8] == digest[..8] && derive_kid(content_id, Some(period)) == *kid).then_some(period)
}

fn content_hash(content_id: &str, rotated: bool) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(if rotated { &b"estuary rotated kid\0"[..] } else { &b"estuary kid\0"[..] });
    hash.update(content_id.as_bytes());
    hash.finalize().into()
}

/// A DRM system as the config names it.
pub fn system_named(name: &str) -> Option<SystemId> {
    match name {
        "widevine" => Some(SystemId::WIDEVINE),
        "playready" => Some(SystemId::PLAYREADY),
        "fairplay" => Some(FAIRPLAY),
        _ => None,
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Static(answer) => write!(f, "static key {}", answer.key.kid),
            KeySource::Speke { client, .. } => write!(f, "{client:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_follow_from_the_content_and_the_period_alone() {
        let a = derive_kid("films/a.mp4", None);
        assert_eq!(a, derive_kid("films/a.mp4", None), "the same on every pod");
        assert_ne!(a, derive_kid("films/b.mp4", None));
        assert_ne!(derive_kid("live/news", Some(1)), derive_kid("live/news", Some(2)));
        assert_ne!(derive_kid("live/news", Some(0)), derive_kid("live/news", None));
        assert_eq!(period_of_kid("live/news", &derive_kid("live/news", Some(77))), Some(77));
        assert_eq!(period_of_kid("live/other", &derive_kid("live/news", Some(77))), None);
        assert_eq!(period_of_kid("live/news", &derive_kid("live/news", None)), None);
        assert_eq!(system_named("fairplay"), Some(FAIRPLAY));
        assert_eq!(system_named("clearkey"), None);
    }
}
