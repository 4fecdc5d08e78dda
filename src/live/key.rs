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

/// Checks a key an operator chose: at least 16 characters of `[A-Za-z0-9_-]` (it travels in URLs).
pub fn check_chosen(key: &str) -> Result<(), String> {
    if key.len() < 16 || key.len() > 128 || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("stream_key must be 16 to 128 characters of [A-Za-z0-9_-]".into());
    }
    Ok(())
}

/// 32 random hex characters (128 bits) from the operating system's random source.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    // Without a random source there is no safe key; refusing to create a channel beats a guessable one.
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_matches_its_hash() {
        let key = generate();
        assert_eq!(key.len(), 32);
        let hash = KeyHash::of(&key);
        assert!(hash.matches(&key));
        assert!(!hash.matches(&key[1..]) && !hash.matches(""));
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash.clone()));
        assert!(!hash.to_hex().contains(&key), "the hash does not carry the key");
        assert!(KeyHash::from_hex("zz").is_none());
        assert!(check_chosen("short").is_err() && check_chosen("a/b/c/d/e/f/g/h/i").is_err());
        check_chosen("abcdefghijklmnop").unwrap();
    }
}
