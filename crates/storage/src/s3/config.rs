//! The S3 backend's settings (`[storage.s3]`): which bucket, how to reach and sign for it, and how
//! hard to try.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The S3 backend (`storage.backend = "s3"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket (`media/`); storage keys are relative to it.
    pub prefix: String,
    pub region: String,
    /// Custom endpoint for S3-compatible servers (`http://127.0.0.1:9000`). Empty: AWS.
    pub endpoint: String,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Static credentials. Empty: the standard AWS chain (environment, profile, web identity/IRSA, instance role).
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed for each attempt of a request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Attempts per request (retries back off exponentially with jitter; throttling and 5xx are retried).
    pub max_attempts: u32,
    /// Most ranged GETs one VOD segment may cost; past it, small gaps between samples are read too.
    pub max_reads_per_segment: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            prefix: String::new(),
            region: "us-east-1".into(),
            endpoint: String::new(),
            path_style: false,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: String::new(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_attempts: 3,
            max_reads_per_segment: 256,
        }
    }
}
