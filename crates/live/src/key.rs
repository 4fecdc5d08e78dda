//! PURE: a channel's stream key. The secret is shown once (at creation and on rotation); what is
//! stored and compared is its SHA-256, so neither storage nor the API can give it away.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a stream key, as stored in the channel's record (hex).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

impl KeyHash {
    pub fn of(key: &str) -> KeyHash {
        KeyHash(Sha256::digest(key.as_bytes()).into())
    }

    /// Whether `presented` is the key, in time that does not depend on how much of it matches.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(presented.ct_eq(&self.0))
    }

    /// A hash no key has (nobody knows a preimage of all zeros): for a record that lost its hash.
    pub fn unusable() -> KeyHash {
        KeyHash([0; 32])
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Option<KeyHash> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(KeyHash(out))
    }
}

/// Why a channel gets no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("stream_key must be 16 to 128 characters of [A-Za-z0-9_-]")]
    BadChoice,
    /// Without a random source there is no safe key; refusing beats a guessable one.
    #[error("the operating system's random source failed: {0}")]
    NoRandomness(String),
}

/// The key an operator chose (16 to 128 characters of `[A-Za-z0-9_-]`: it travels in URLs), or a
/// new random one.
pub fn chosen_or_generated(chosen: Option<String>) -> Result<String, KeyError> {
    match chosen {
        Some(key) if check_chosen(&key) => Ok(key),
        Some(_) => Err(KeyError::BadChoice),
        None => generate(),
    }
}

fn check_chosen(key: &str) -> bool {
    (16..=128).contains(&key.len()) && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// 32 random hex characters (128 bits) from the operating system's random source.
fn generate() -> Result<String, KeyError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_matches_its_hash() {
        let key = chosen_or_generated(None).unwrap();
        assert_eq!(key.len(), 32);
        let hash = KeyHash::of(&key);
        assert!(hash.matches(&key));
        assert!(!hash.matches(&key[1..]) && !hash.matches(""));
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash.clone()));
        assert!(!hash.to_hex().contains(&key), "the hash does not carry the key");
        assert!(KeyHash::from_hex("zz").is_none());
        assert!(!KeyHash::unusable().matches("") && !KeyHash::unusable().matches(&key));
        for bad in ["short", "a/b/c/d/e/f/g/h/i"] {
            assert_eq!(chosen_or_generated(Some(bad.into())), Err(KeyError::BadChoice));
        }
        assert_eq!(chosen_or_generated(Some("abcdefghijklmnop".into())).as_deref(), Ok("abcdefghijklmnop"));
    }
}
