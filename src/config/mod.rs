//! Configuration: one serde `Config` read from TOML, overlaid with `ESTUARY_*` environment variables, then `validate()`d.
//!
//! Precedence, lowest first: built-in defaults, the `--config` file, the
//! environment, command-line flags. `estuary.example.toml` documents every
//! field.

mod bytesize;
mod env;
mod limits;
pub mod listen;
mod sections;

use std::path::Path;
use std::time::Duration;

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

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |f: &str, m: String| Err(ConfigError::new(f, m));
        let redis = &self.cluster.redis_url;
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return err("cluster.redis_url", "must be a redis:// or (TLS) rediss:// URL".into());
        }
        if !self.edge.enabled && !self.api.enabled && !self.ingest.enabled {
            return err("edge.enabled", "every tier is disabled; enable at least one".into());
        }
        if self.edge.workers > 512 {
            return err("edge.workers", format!("{} is more than 512", self.edge.workers));
        }
        let listeners = [
            ("edge.addr", self.edge.enabled, self.edge.addr),
            ("ingest.addr", self.ingest.enabled, self.ingest.addr),
            ("api.addr", self.api.enabled, self.api.addr),
            ("cluster.internal_addr", !self.cluster.redis_url.is_empty(), self.cluster.internal_addr),
        ];
        for (i, (name, on, addr)) in listeners.iter().enumerate() {
            if let Some((other, ..)) =
                listeners[..i].iter().find(|(_, o, a)| *o && *on && a == addr && addr.port() != 0)
            {
                return err(name, format!("{addr} is also {other}"));
            }
        }
        for (field, url) in [("edge.public_url", &self.edge.public_url), ("ingest.public_url", &self.ingest.public_url)]
        {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return err(field, format!("{url:?} must start with http:// or https://"));
            }
        }
        let internal = &self.cluster.internal_url;
        let host_chars =
            |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        let pod_url = internal.parse::<http::Uri>().ok().filter(|u| u.scheme_str() == Some("http"));
        if !(internal.is_empty() || pod_url.and_then(|u| u.authority().map(|a| host_chars(a.as_str()))) == Some(true)) {
            return err("cluster.internal_url", format!("{internal:?} must be an http:// URL (pod to pod)"));
        }
        if self.ingest.max_body_bytes.0 < 1024 {
            return err("ingest.max_body_bytes", "must be at least 1 KiB".into());
        }
        if let Err(e) = self.live.channel_defaults.validate() {
            return err("live.channel_defaults", e);
        }
        let lock = (&self.edge.origin_lock_header, &self.edge.origin_lock_secret);
        match lock {
            (h, s) if h.is_empty() && s.is_empty() => {}
            (h, _) if h.is_empty() => {
                return err("edge.origin_lock_header", "required when origin_lock_secret is set".into());
            }
            (_, s) if s.is_empty() => {
                return err("edge.origin_lock_secret", "required when origin_lock_header is set".into());
            }
            (_, s) => {
                self.edge.origin_lock_header_name()?;
                if http::HeaderValue::from_str(s).is_err() {
                    return err("edge.origin_lock_secret", "contains characters not allowed in a header".into());
                }
            }
        }
        let previous = &self.edge.origin_lock_previous_secret;
        if !previous.is_empty() && self.edge.origin_lock_secret.is_empty() {
            return err(
                "edge.origin_lock_previous_secret",
                "set only with origin_lock_secret (during a rotation)".into(),
            );
        }
        if http::HeaderValue::from_str(previous).is_err() {
            return err("edge.origin_lock_previous_secret", "contains characters not allowed in a header".into());
        }
        if http::HeaderValue::from_str(&format!("Bearer {}", self.api.token)).is_err() {
            return err("api.token", "contains characters not allowed in a header".into());
        }
        if !self.api.token.is_empty() && self.api.token.trim().chars().count() < MIN_API_TOKEN_CHARS {
            return err(
                "api.token",
                format!(
                    "is shorter than {MIN_API_TOKEN_CHARS} characters: a short token is guessed; use a long random \
                     secret (`openssl rand -hex 32`)"
                ),
            );
        }
        if self.http.header_read_timeout.is_zero() {
            return err("http.header_read_timeout", "must be more than 0".into());
        }
        if self.http.idle_timeout.is_zero() {
            return err("http.idle_timeout", "must be more than 0".into());
        }
        let hb = self.http.max_header_bytes.0;
        if !(8 * 1024..=1024 * 1024).contains(&hb) {
            return err("http.max_header_bytes", format!("{hb} is outside 8 KiB ..= 1 MiB"));
        }
        if self.cache.bytes.0 > 0 && self.cache.max_object_bytes > self.cache.bytes {
            return err(
                "cache.max_object_bytes",
                format!("{} is more than cache.bytes ({})", self.cache.max_object_bytes, self.cache.bytes),
            );
        }
        if self.cache.max_object_bytes.0 > u64::from(u32::MAX) {
            return err("cache.max_object_bytes", "must be under 4 GiB".into());
        }
        match self.storage.backend {
            StorageBackend::Local => {
                let root = &self.storage.root;
                if !root.is_dir() {
                    return err(
                        "storage.root",
                        format!(
                            "{} is not a directory (run from the repository root, or set --storage-root)",
                            root.display()
                        ),
                    );
                }
            }
            StorageBackend::S3 => {
                let s3 = &self.storage.s3;
                if s3.bucket.is_empty() {
                    return err("storage.s3.bucket", "required when storage.backend is \"s3\"".into());
                }
                if !(s3.endpoint.is_empty()
                    || s3.endpoint.starts_with("http://")
                    || s3.endpoint.starts_with("https://"))
                {
                    return err(
                        "storage.s3.endpoint",
                        format!("{:?} must start with http:// or https://", s3.endpoint),
                    );
                }
                if s3.access_key_id.is_empty() != s3.secret_access_key.is_empty() {
                    return err(
                        "storage.s3.secret_access_key",
                        "give both access_key_id and secret_access_key, or neither".into(),
                    );
                }
                if s3.max_attempts == 0 || s3.max_attempts > 10 {
                    return err("storage.s3.max_attempts", "must be 1 to 10".into());
                }
                if s3.request_timeout.is_zero() || s3.connect_timeout.is_zero() {
                    return err("storage.s3.request_timeout", "timeouts must be more than 0".into());
                }
            }
        }
        if self.storage.deadline.is_zero() || self.storage.write_deadline.is_zero() {
            return err("storage.deadline", "deadlines must be more than 0".into());
        }
        self.limits.validate()?;
        if self.api.enabled && !self.api.addr.ip().is_loopback() && self.api.token.is_empty() {
            return err(
                "api.token",
                format!(
                    "required when api.addr ({}) is not a loopback address: whoever reaches it could create \
                     channels, read their ingest URLs and purge the cache. Set api.token (or ESTUARY_API_TOKEN) \
                     to a long random secret (`openssl rand -hex 32`), or bind api.addr to 127.0.0.1",
                    self.api.addr
                ),
            );
        }
        for (field, size) in [
            ("ingest.max_init_bytes", self.ingest.max_init_bytes),
            ("ingest.max_playlist_bytes", self.ingest.max_playlist_bytes),
            ("ingest.max_channel_bytes", self.ingest.max_channel_bytes),
            ("ingest.max_total_bytes", self.ingest.max_total_bytes),
        ] {
            if size.0 < 1024 {
                return err(field, "must be at least 1 KiB".into());
            }
        }
        if self.ingest.body_timeout.is_zero() {
            return err("ingest.body_timeout", "must be more than 0".into());
        }
        if self.storage.breaker_threshold == 0 {
            return err("storage.breaker_threshold", "must be at least 1".into());
        }
        let seg = self.vod.segment_duration;
        if seg < Duration::from_millis(500) || seg > Duration::from_secs(60) {
            return err("vod.segment_duration", format!("{seg:?} is outside 0.5 s ..= 60 s"));
        }
        if self.vod.max_samples_per_track == 0 {
            return err("vod.max_samples_per_track", "must be more than 0".into());
        }
        if self.vod.max_moov_bytes.0 < 1024 || self.vod.max_moov_bytes.0 > 1 << 30 {
            return err("vod.max_moov_bytes", "must be between 1 KiB and 1 GiB".into());
        }
        if self.shutdown.grace_period > Duration::from_secs(3600) {
            return err("shutdown.grace_period", "is more than an hour".into());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return err("log.level", format!("{:?} is not a tracing filter", self.log.level));
        }
        Ok(())
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
