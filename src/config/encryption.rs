//! `[encryption]` checked and turned into what the server runs: the scheme, FairPlay's URI, the
//! static key or the SPEKE client, the DRM systems' boxes. A key is never in an error message.

use super::{ConfigError, EncryptionConfig, EncryptionScheme, KeyProvider};

impl EncryptionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.vod_prefixes.is_empty() && self.live_prefixes.is_empty() {
            return Ok(());
        }
        if self.vod_prefixes.iter().chain(&self.live_prefixes).any(String::is_empty) {
            return Err(ConfigError::new(
                "encryption.vod_prefixes",
                "an empty prefix would protect every asset; write the folders",
            ));
        }
        self.fairplay()?;
        let static_key = self.key_provider == KeyProvider::Static;
        // SAMPLE-AES needs a key players can get: the edge's, or FairPlay's (the config's, or a
        // key server's answer).
        let sample_aes = self.ts_method == crate::keys::protection::TsMethod::SampleAes;
        if sample_aes && !self.key_delivery && static_key && self.fairplay_uri.trim().is_empty() {
            return Err(ConfigError::new(
                "encryption.ts_method",
                "\"sample-aes\" needs a key for players: key_delivery = true, or a FairPlay fairplay_uri",
            ));
        }
        if self.key_period > 0 && self.key_delivery && static_key && !self.vod_prefixes.is_empty() {
            return Err(ConfigError::new(
                "encryption.key_period",
                "with a static key, live key periods' keys are derived from it, and key_delivery hands it out for \
                 the VOD assets (and every period's key with it): rotate keys from a key server \
                 (key_provider = \"speke\"), or protect live channels only",
            ));
        }
        self.key_source().map(drop)
    }

    /// Where keys come from; `None` when nothing is protected.
    pub fn key_source(&self) -> Result<Option<crate::keys::KeySource>, ConfigError> {
        use crate::keys::{KeyAnswer, KeySource, SpekeClient};
        if self.vod_prefixes.is_empty() && self.live_prefixes.is_empty() {
            return Ok(None);
        }
        match self.key_provider {
            KeyProvider::Static => {
                let Some(key) = self.content_key()? else { return Ok(None) };
                let (systems, fairplay_uri) = (self.pssh_boxes()?, self.fairplay()?);
                Ok(Some(KeySource::Static(KeyAnswer { key, systems, fairplay_uri })))
            }
            KeyProvider::Speke => {
                if self.speke_timeout.is_zero() || self.speke_deadline < self.speke_timeout {
                    return Err(ConfigError::new(
                        "encryption.speke_deadline",
                        "must be at least speke_timeout, which must be more than 0",
                    ));
                }
                let token = Some(self.speke_token.clone());
                let client = SpekeClient::new(self.speke_url.trim(), token, self.speke_timeout, self.speke_deadline)
                    .map_err(|e| ConfigError::new("encryption.speke_url", e))?;
                let systems = self
                    .drm_systems
                    .iter()
                    .map(|name| {
                        crate::keys::system_named(name).ok_or_else(|| {
                            ConfigError::new(
                                "encryption.drm_systems",
                                format!("{name:?} is not widevine, playready or fairplay"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(KeySource::Speke { client, systems }))
            }
        }
    }

    /// The scheme as the packager names it.
    pub fn cenc_scheme(&self) -> crate::packaging::cenc::Scheme {
        match self.scheme {
            EncryptionScheme::Cenc => crate::packaging::cenc::Scheme::Cenc,
            EncryptionScheme::Cbcs => crate::packaging::cenc::Scheme::Cbcs,
        }
    }

    /// FairPlay's key URI with the KID written in; `None` when FairPlay is not offered.
    pub fn fairplay(&self) -> Result<Option<String>, ConfigError> {
        let uri = self.fairplay_uri.trim();
        if uri.is_empty() {
            return Ok(None);
        }
        if self.cenc_scheme() != crate::packaging::cenc::Scheme::Cbcs {
            return Err(ConfigError::new("encryption.fairplay_uri", "FairPlay needs scheme = \"cbcs\""));
        }
        if !crate::keys::cpix::is_playlist_skd(uri) {
            return Err(ConfigError::new(
                "encryption.fairplay_uri",
                "must be an skd:// URI without quotes, commas or spaces",
            ));
        }
        let kid = crate::packaging::cenc::KeyId::parse(&self.key_id).map(|k| k.hex()).unwrap_or_default();
        Ok(Some(uri.replace("{kid}", &kid)))
    }

    /// The DRM systems' `pssh` boxes given with the key.
    pub fn pssh_boxes(&self) -> Result<Vec<crate::packaging::cenc::Pssh>, ConfigError> {
        if self.pssh.trim().is_empty() {
            return Ok(Vec::new());
        }
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, self.pssh.trim())
            .map_err(|e| ConfigError::new("encryption.pssh", format!("not base64: {e}")))?;
        crate::packaging::cenc::parse_pssh_boxes(&bytes).map_err(|e| ConfigError::new("encryption.pssh", e.to_string()))
    }

    /// The static content key protected assets are encrypted with; `None` when nothing is
    /// protected or keys come from a key server.
    pub fn content_key(&self) -> Result<Option<crate::packaging::cenc::ContentKey>, ConfigError> {
        if (self.vod_prefixes.is_empty() && self.live_prefixes.is_empty()) || self.key_provider != KeyProvider::Static {
            return Ok(None);
        }
        let kid = crate::packaging::cenc::KeyId::parse(&self.key_id)
            .ok_or_else(|| ConfigError::new("encryption.key_id", "must be 32 hex digits (dashes allowed)"))?;
        let key = crate::packaging::cenc::ContentKey::from_hex(kid, &self.key)
            .ok_or_else(|| ConfigError::new("encryption.key", "must be 32 hex digits"))?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Config;
    use super::*;

    fn config() -> Config {
        let mut c = Config::default();
        c.storage.root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        c
    }

    #[test]
    fn encryption_needs_a_key_only_when_something_is_protected() {
        let mut c = config();
        c.encryption.key = "not hex".into();
        c.validate().unwrap();
        assert_eq!(c.encryption.content_key().unwrap(), None);
        c.encryption.vod_prefixes = vec!["drm/".into()];
        assert_eq!(c.validate().unwrap_err().field, "encryption.key_id");
        c.encryption.key_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into();
        assert_eq!(c.validate().unwrap_err().field, "encryption.key");
        c.encryption.key = "00112233445566778899aabbccddeeff".into();
        c.validate().unwrap();
        let key = c.encryption.content_key().unwrap().unwrap();
        assert_eq!(key.kid.hex(), "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
        // The key never prints: not in the key's Debug, not in the redacted config.
        assert!(!format!("{key:?}").contains("00112233"));
        assert!(!format!("{:?}", c.redacted()).contains("00112233"));
        c.encryption.pssh = "bm90IGEgYm94".into();
        assert_eq!(c.validate().unwrap_err().field, "encryption.pssh");
        c.encryption.pssh = String::new();
        c.encryption.vod_prefixes.push(String::new());
        assert_eq!(c.validate().unwrap_err().field, "encryption.vod_prefixes");
    }

    #[test]
    fn schemes_fairplay_and_key_servers_are_checked() {
        let mut c = config();
        c.encryption.vod_prefixes = vec!["drm/".into()];
        c.encryption.key_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into();
        c.encryption.key = "00112233445566778899aabbccddeeff".into();
        // FairPlay needs cbcs and an skd:// URI fit for a playlist; {kid} is written in.
        c.encryption.fairplay_uri = "skd://keys.example.com/{kid}".into();
        assert_eq!(c.validate().unwrap_err().field, "encryption.fairplay_uri");
        c.encryption.scheme = EncryptionScheme::Cbcs;
        c.validate().unwrap();
        let uri = c.encryption.fairplay().unwrap().unwrap();
        assert_eq!(uri, "skd://keys.example.com/0f1e2d3c4b5a69788796a5b4c3d2e1f0");
        for bad in ["https://k/1", "skd://a\"b", "skd://a b", "skd://a,b"] {
            c.encryption.fairplay_uri = bad.into();
            assert_eq!(c.validate().unwrap_err().field, "encryption.fairplay_uri", "{bad}");
        }
        c.encryption.fairplay_uri = String::new();
        // SAMPLE-AES MPEG-TS needs a key players can get: the edge's or FairPlay's.
        c.encryption.ts_method = crate::keys::protection::TsMethod::SampleAes;
        assert_eq!(c.validate().unwrap_err().field, "encryption.ts_method");
        c.encryption.key_delivery = true;
        c.validate().unwrap();
        c.encryption.key_delivery = false;
        c.encryption.fairplay_uri = "skd://keys.example.com/{kid}".into();
        c.validate().unwrap();
        c.encryption.fairplay_uri = String::new();
        // A key server: its URL, its patience, the systems it is asked for; no static key needed.
        c.encryption.key_provider = KeyProvider::Speke;
        c.encryption.key = String::new();
        assert_eq!(c.validate().unwrap_err().field, "encryption.speke_url");
        for bad in ["ftp://k/", "not a url", "http://"] {
            c.encryption.speke_url = bad.into();
            assert_eq!(c.validate().unwrap_err().field, "encryption.speke_url", "{bad}");
        }
        c.encryption.speke_url = "http://keys.internal:8080/speke/v2".into();
        c.validate().unwrap();
        c.encryption.drm_systems = vec!["widevine".into(), "clearkey".into()];
        assert_eq!(c.validate().unwrap_err().field, "encryption.drm_systems");
        c.encryption.drm_systems = vec!["widevine".into(), "playready".into(), "fairplay".into()];
        c.encryption.speke_deadline = Duration::from_millis(100);
        assert_eq!(c.validate().unwrap_err().field, "encryption.speke_deadline");
        c.encryption.speke_deadline = Duration::from_secs(5);
        c.validate().unwrap();
        // The token is a secret.
        c.encryption.speke_token = "token-1234".into();
        assert!(!format!("{:?}", c.redacted()).contains("token-1234"));
    }

    #[test]
    fn a_static_key_live_periods_derive_from_is_never_handed_out() {
        let mut c = config();
        c.encryption.key_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into();
        c.encryption.key = "00112233445566778899aabbccddeeff".into();
        c.encryption.live_prefixes = vec!["premium-".into()];
        c.encryption.key_period = 30;
        c.encryption.key_delivery = true;
        c.validate().unwrap();
        // VOD assets under the same static key would hand it out with their AES-128 ladder.
        c.encryption.vod_prefixes = vec!["drm/".into()];
        assert_eq!(c.validate().unwrap_err().field, "encryption.key_period");
        c.encryption.key_provider = KeyProvider::Speke;
        c.encryption.speke_url = "http://keys.internal/speke".into();
        c.validate().unwrap();
        c.encryption.live_prefixes.push(String::new());
        assert_eq!(c.validate().unwrap_err().field, "encryption.vod_prefixes");
    }
}
