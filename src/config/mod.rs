//! Configuration: one serde `Config` read from TOML, overlaid with `ESTUARY_*` environment variables, then `validate()`d.
//!
//! Precedence, lowest first: built-in defaults, the `--config` file, the
//! environment, command-line flags. `estuary.example.toml` documents every
//! field.

mod bytesize;
mod encryption;
mod env;
mod limits;
pub mod listen;
mod sections;
mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The shortest `api.token` accepted: 16 characters (a hex secret of 64 bits at the least).
pub const MIN_API_TOKEN_CHARS: usize = 16;

pub use bytesize::ByteSize;
pub use env::ENV_PREFIX;
pub use limits::LimitsConfig;
pub use sections::*;

/// A configuration problem, naming the field at fault.
#[derive(Debug, thiserror::Error)]
#[error("config: {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub edge: EdgeConfig,
    pub ingest: IngestConfig,
    pub api: ApiConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub storage: StorageConfig,
    pub cache: CacheConfig,
    pub static_files: StaticFilesConfig,
    pub vod: VodConfig,
    pub encryption: EncryptionConfig,
    pub live: LiveConfig,
    pub cluster: ClusterConfig,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
}

impl Config {
    /// Parses a TOML document (unknown fields are errors).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::new("toml", e.to_string()))
    }

    /// Reads the file at `path`, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Ok(Config::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::new("--config", format!("{}: {e}", p.display())))?;
                Config::from_toml(&text).map_err(|e| ConfigError::new(p.display().to_string(), e.message))
            }
        }
    }

    /// Overlays `ESTUARY_*` variables (see [`env`]).
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(&mut self, vars: I) -> Result<(), ConfigError> {
        env::apply(self, vars)
    }

    /// A copy fit to print: every secret that is set reads `<redacted>`.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        for secret in [
            &mut c.api.token,
            &mut c.edge.origin_lock_secret,
            &mut c.edge.origin_lock_previous_secret,
            &mut c.storage.s3.secret_access_key,
            &mut c.storage.s3.session_token,
            &mut c.encryption.key,
            &mut c.encryption.speke_token,
        ] {
            if !secret.is_empty() {
                *secret = "<redacted>".into();
            }
        }
        if let Some((scheme, rest)) = c.cluster.redis_url.split_once("://")
            && let Some((_, host)) = rest.rsplit_once('@')
        {
            c.cluster.redis_url = format!("{scheme}://<redacted>@{host}");
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn defaults_validate_from_the_repository_root() {
        let mut c = Config::default();
        c.storage.root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
        c.validate().unwrap();
    }

    #[test]
    fn the_redis_url_is_checked_and_its_password_never_printed() {
        let mut c = Config::default();
        c.storage.root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
        c.cluster.redis_url = "http://redis:6379".into();
        assert!(c.validate().unwrap_err().to_string().contains("cluster.redis_url"));
        c.cluster.redis_url = "rediss://estuary:s3cret@master.cache.amazonaws.com:6379".into();
        c.validate().unwrap();
        assert_eq!(c.redacted().cluster.redis_url, "rediss://<redacted>@master.cache.amazonaws.com:6379");
        c.cluster.redis_url = "redis://estuary:s3cret@redis.internal:6379/0".into();
        c.validate().unwrap();
        assert_eq!(c.redacted().cluster.redis_url, "redis://<redacted>@redis.internal:6379/0");
        for bad in ["https://10.0.0.7:8083", "10.0.0.7:8083", "http://$(POD_IP):8083"] {
            c.cluster.internal_url = bad.into();
            assert!(c.validate().unwrap_err().to_string().contains("cluster.internal_url"), "{bad}");
        }
        c.cluster.internal_url = "http://10.0.0.7:8083".into();
        c.validate().unwrap();
        c.cluster.internal_addr = c.api.addr;
        assert!(c.validate().unwrap_err().to_string().contains("cluster.internal_addr"));
    }

    #[test]
    fn the_example_config_parses_and_validates() {
        let text = include_str!("../../estuary.example.toml");
        let mut c = Config::from_toml(text).unwrap();
        c.storage.root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(&c.storage.root);
        c.validate().unwrap();
        assert_eq!(c.cache.bytes, ByteSize::mib(512));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let e = Config::from_toml("[edge]\nadress = \"0.0.0.0:1\"\n").unwrap_err();
        assert!(e.to_string().contains("adress"), "{e}");
    }

    #[test]
    fn validate_names_the_field() {
        let mut c = Config::default();
        c.storage.root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        c.edge.origin_lock_header = "x-origin-secret".into();
        assert_eq!(c.validate().unwrap_err().field, "edge.origin_lock_secret");
        c.edge.origin_lock_secret = "s3cret".into();
        c.validate().unwrap();
        c.cache.max_object_bytes = ByteSize::mib(1024);
        assert_eq!(c.validate().unwrap_err().field, "cache.max_object_bytes");
        c.cache.max_object_bytes = ByteSize::mib(1);
        c.storage.root = PathBuf::from("/definitely/not/here");
        assert_eq!(c.validate().unwrap_err().field, "storage.root");
        c.storage.root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        c.log.level = "estuary=[".into();
        assert_eq!(c.validate().unwrap_err().field, "log.level");
    }

    #[test]
    fn a_short_api_token_is_refused() {
        let mut c = Config::default();
        c.storage.root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for short in ["Q", "Zq1Zq2Zq3Zq4Zq5", "  Zz-padded-Qq  "] {
            c.api.token = short.into();
            let e = c.validate().unwrap_err();
            assert_eq!(e.field, "api.token", "{short}");
            assert!(!e.to_string().contains(short.trim()), "the token is never printed: {e}");
        }
        c.api.token = "0123456789abcdef".into();
        c.validate().unwrap();
    }
}
