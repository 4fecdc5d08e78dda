//! Checking a configuration: each section checks its own fields ([`EdgeConfig::validate`] and so
//! on), then [`Config::validate`] checks what spans sections (tiers, listeners, the API's token on
//! a public address). Every error names the field at fault.

use std::time::Duration;

use super::{
    ApiConfig, CacheConfig, ClusterConfig, Config, ConfigError, EdgeConfig, HttpConfig, IngestConfig, LiveConfig,
    LogConfig, MIN_API_TOKEN_CHARS, S3Config, ShutdownConfig, StorageBackend, StorageConfig, VodConfig,
};

fn err(field: &str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::new(field, message))
}

/// A value that must fit in a header.
fn header_safe(field: &str, value: &str) -> Result<(), ConfigError> {
    match http::HeaderValue::from_str(value) {
        Ok(_) => Ok(()),
        Err(_) => err(field, "contains characters not allowed in a header"),
    }
}

fn http_url(field: &str, url: &str) -> Result<(), ConfigError> {
    if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        err(field, format!("{url:?} must start with http:// or https://"))
    }
}

fn at_least_1_kib(field: &str, size: super::ByteSize) -> Result<(), ConfigError> {
    if size.0 < 1024 { err(field, "must be at least 1 KiB") } else { Ok(()) }
}

fn more_than_zero(field: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() { err(field, "must be more than 0") } else { Ok(()) }
}

impl Config {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.cluster.validate()?;
        if !self.edge.enabled && !self.api.enabled && !self.ingest.enabled {
            return err("edge.enabled", "every tier is disabled; enable at least one");
        }
        self.edge.validate()?;
        self.listeners_apart()?;
        self.ingest.validate()?;
        self.live.validate()?;
        self.api.validate()?;
        self.http.validate()?;
        self.cache.validate()?;
        self.storage.validate()?;
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
        self.vod.validate()?;
        self.encryption.validate()?;
        self.shutdown.validate()?;
        self.log.filter().map(drop)
    }

    /// No two listeners that are on share an address (port 0 picks a free one each).
    fn listeners_apart(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}

impl ClusterConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let redis = &self.redis_url;
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return err("cluster.redis_url", "must be a redis:// or (TLS) rediss:// URL");
        }
        let internal = &self.internal_url;
        let host_chars =
            |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        let pod_url = internal.parse::<http::Uri>().ok().filter(|u| u.scheme_str() == Some("http"));
        if !(internal.is_empty() || pod_url.and_then(|u| u.authority().map(|a| host_chars(a.as_str()))) == Some(true)) {
            return err("cluster.internal_url", format!("{internal:?} must be an http:// URL (pod to pod)"));
        }
        Ok(())
    }
}

impl EdgeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.workers > 512 {
            return err("edge.workers", format!("{} is more than 512", self.workers));
        }
        http_url("edge.public_url", &self.public_url)?;
        match (self.origin_lock_header.is_empty(), self.origin_lock_secret.is_empty()) {
            (true, true) => {}
            (true, false) => return err("edge.origin_lock_header", "required when origin_lock_secret is set"),
            (false, true) => return err("edge.origin_lock_secret", "required when origin_lock_header is set"),
            (false, false) => {
                self.origin_lock_header_name()?;
                header_safe("edge.origin_lock_secret", &self.origin_lock_secret)?;
            }
        }
        let previous = &self.origin_lock_previous_secret;
        if !previous.is_empty() && self.origin_lock_secret.is_empty() {
            return err("edge.origin_lock_previous_secret", "set only with origin_lock_secret (during a rotation)");
        }
        header_safe("edge.origin_lock_previous_secret", previous)
    }
}

impl IngestConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        http_url("ingest.public_url", &self.public_url)?;
        at_least_1_kib("ingest.max_body_bytes", self.max_body_bytes)?;
        at_least_1_kib("ingest.max_init_bytes", self.max_init_bytes)?;
        at_least_1_kib("ingest.max_playlist_bytes", self.max_playlist_bytes)?;
        at_least_1_kib("ingest.max_channel_bytes", self.max_channel_bytes)?;
        at_least_1_kib("ingest.max_total_bytes", self.max_total_bytes)?;
        more_than_zero("ingest.body_timeout", self.body_timeout)
    }
}

impl LiveConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.channel_defaults.validate().or_else(|e| err("live.channel_defaults", e.to_string()))
    }
}

impl ApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        header_safe("api.token", &format!("Bearer {}", self.token))?;
        if !self.token.is_empty() && self.token.trim().chars().count() < MIN_API_TOKEN_CHARS {
            return err(
                "api.token",
                format!(
                    "is shorter than {MIN_API_TOKEN_CHARS} characters: a short token is guessed; use a long random \
                     secret (`openssl rand -hex 32`)"
                ),
            );
        }
        Ok(())
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        more_than_zero("http.header_read_timeout", self.header_read_timeout)?;
        more_than_zero("http.idle_timeout", self.idle_timeout)?;
        let hb = self.max_header_bytes.0;
        if !(8 * 1024..=1024 * 1024).contains(&hb) {
            return err("http.max_header_bytes", format!("{hb} is outside 8 KiB ..= 1 MiB"));
        }
        Ok(())
    }
}

impl CacheConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bytes.0 > 0 && self.max_object_bytes > self.bytes {
            return err(
                "cache.max_object_bytes",
                format!("{} is more than cache.bytes ({})", self.max_object_bytes, self.bytes),
            );
        }
        if self.max_object_bytes.0 > u64::from(u32::MAX) {
            return err("cache.max_object_bytes", "must be under 4 GiB");
        }
        Ok(())
    }
}

impl StorageConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.backend {
            StorageBackend::Local if !self.root.is_dir() => {
                return err(
                    "storage.root",
                    format!(
                        "{} is not a directory (run from the repository root, or set --storage-root)",
                        self.root.display()
                    ),
                );
            }
            StorageBackend::Local => {}
            StorageBackend::S3 => s3_settings(&self.s3)?,
        }
        if self.deadline.is_zero() || self.write_deadline.is_zero() {
            return err("storage.deadline", "deadlines must be more than 0");
        }
        if self.breaker_threshold == 0 {
            return err("storage.breaker_threshold", "must be at least 1");
        }
        Ok(())
    }
}

/// `[storage.s3]`, checked when S3 is the backend.
fn s3_settings(s3: &S3Config) -> Result<(), ConfigError> {
    if s3.bucket.is_empty() {
        return err("storage.s3.bucket", "required when storage.backend is \"s3\"");
    }
    http_url("storage.s3.endpoint", &s3.endpoint)?;
    if s3.access_key_id.is_empty() != s3.secret_access_key.is_empty() {
        return err("storage.s3.secret_access_key", "give both access_key_id and secret_access_key, or neither");
    }
    if s3.max_attempts == 0 || s3.max_attempts > 10 {
        return err("storage.s3.max_attempts", "must be 1 to 10");
    }
    if s3.request_timeout.is_zero() || s3.connect_timeout.is_zero() {
        return err("storage.s3.request_timeout", "timeouts must be more than 0");
    }
    Ok(())
}

impl VodConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let seg = self.segment_duration;
        if seg < Duration::from_millis(500) || seg > Duration::from_secs(60) {
            return err("vod.segment_duration", format!("{seg:?} is outside 0.5 s ..= 60 s"));
        }
        if self.max_samples_per_track == 0 {
            return err("vod.max_samples_per_track", "must be more than 0");
        }
        if self.max_moov_bytes.0 < 1024 || self.max_moov_bytes.0 > 1 << 30 {
            return err("vod.max_moov_bytes", "must be between 1 KiB and 1 GiB");
        }
        Ok(())
    }
}

impl ShutdownConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.grace_period > Duration::from_secs(3600) {
            return err("shutdown.grace_period", "is more than an hour");
        }
        Ok(())
    }
}

impl LogConfig {
    /// The log filter `level` asks for.
    pub fn filter(&self) -> Result<tracing_subscriber::EnvFilter, ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map_err(|_| ConfigError::new("log.level", format!("{:?} is not a tracing filter", self.level)))
    }
}
