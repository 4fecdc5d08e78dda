//! S3 backend (aws-sdk-s3): ranged `GetObject`, `HeadObject`, `PutObject`, `DeleteObject`, paginated
//! `ListObjectsV2`, with connect and per-attempt timeouts and bounded retries with jittered backoff.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use bytes::Bytes;

mod config;

pub use config::S3Config;

use crate::{ListedObject, Object, ObjectMeta, Storage, StorageError, StorageKey};
use estuary_budget::ByteBudget;

/// Objects in one bucket, under an optional key prefix.
pub struct S3Storage {
    client: Client,
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
    max_reads_per_segment: usize,
    /// Every body read is charged here before it is collected.
    budget: Arc<ByteBudget>,
}

impl S3Storage {
    /// Charges every body read to `budget` (the process's in-flight byte budget).
    pub fn with_budget(self, budget: Arc<ByteBudget>) -> Self {
        S3Storage { budget, ..self }
    }

    /// Collects a body of `length` bytes (as the response declared it) under a charge.
    async fn collect(&self, key: &str, length: Option<i64>, body: ByteStream) -> Result<Bytes, StorageError> {
        let charge = self.budget.charge(length.unwrap_or(0).max(0) as u64).await?;
        Ok(charge.attach(collect(key, body).await?))
    }

    /// Builds the client. Credentials come from the config when given, else from the standard AWS
    /// chain (environment, profile, web identity/IRSA, container or instance role).
    pub async fn new(cfg: &S3Config) -> S3Storage {
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(cfg.connect_timeout)
            .operation_attempt_timeout(cfg.request_timeout)
            .operation_timeout(cfg.request_timeout * cfg.max_attempts.max(1) + Duration::from_secs(2))
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(cfg.max_attempts.max(1))
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(2));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(cfg.region.clone()))
            .timeout_config(timeouts)
            .retry_config(retries);
        if !cfg.access_key_id.is_empty() {
            let token = (!cfg.session_token.is_empty()).then(|| cfg.session_token.clone());
            let creds = Credentials::new(&cfg.access_key_id, &cfg.secret_access_key, token, None, "estuary-config");
            loader = loader.credentials_provider(creds);
        }
        if !cfg.endpoint.is_empty() {
            loader = loader.endpoint_url(&cfg.endpoint);
        }
        let sdk = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(cfg.path_style).build();
        let prefix = match cfg.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        S3Storage {
            client: Client::from_conf(config),
            bucket: cfg.bucket.clone(),
            prefix,
            max_reads_per_segment: cfg.max_reads_per_segment.max(1),
            budget: ByteBudget::unlimited(),
        }
    }

    fn object_key(&self, key: &StorageKey) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// Classifies an SDK failure: missing is `NotFound`; timeouts, throttling and 5xx are outages.
fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError {
    let context = || format!("{key}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::TimeoutError(_) => StorageError::Timeout(context()),
        SdkError::DispatchFailure(d) if d.is_timeout() => StorageError::Timeout(context()),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => StorageError::Unavailable(context()),
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let code = s.err().code().unwrap_or("");
            match (status, code) {
                (408 | 429 | 500..=599, _) | (_, "SlowDown" | "ServiceUnavailable" | "InternalError") => {
                    StorageError::Unavailable(context())
                }
                // Any other 4xx is shaped by the request (no such key, a key too long, access denied,
                // which S3 answers for a missing key without ListBucket): the object is not there for
                // this request, and the backend is fine.
                (400..=499, _) => {
                    tracing::debug!(error = %context(), "storage refused the request");
                    StorageError::NotFound(key.to_owned())
                }
                _ => StorageError::Io { key: key.to_owned(), source: std::io::Error::other(context()) },
            }
        }
        _ => StorageError::Unavailable(context()),
    }
}

fn to_system_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

/// Total size from `Content-Range: bytes a-b/total`.
fn total_from_content_range(header: Option<&str>) -> Option<u64> {
    header?.rsplit('/').next()?.parse().ok()
}

async fn collect(key: &str, body: ByteStream) -> Result<Bytes, StorageError> {
    body.collect()
        .await
        .map(|b| b.into_bytes())
        .map_err(|e| StorageError::Unavailable(format!("{key}: reading the body: {e}")))
}

#[async_trait]
impl Storage for S3Storage {
    fn backend(&self) -> &'static str {
        "s3"
    }

    fn max_reads_per_segment(&self) -> usize {
        self.max_reads_per_segment
    }

    async fn probe(&self) -> Result<(), StorageError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map(|_| ()).map_err(|e| classify(&self.bucket, e))
    }

    async fn get(&self, key: &StorageKey) -> Result<Object, StorageError> {
        let k = self.object_key(key);
        let out = self.client.get_object().bucket(&self.bucket).key(&k).send().await.map_err(|e| classify(&k, e))?;
        let meta = ObjectMeta {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            modified: to_system_time(out.last_modified()),
            etag: out.e_tag().map(str::to_owned),
        };
        let body = self.collect(&k, out.content_length(), out.body).await?;
        Ok(Object { meta: ObjectMeta { size: body.len() as u64, ..meta }, body })
    }

    async fn get_range(&self, key: &StorageKey, range: Range<u64>) -> Result<Object, StorageError> {
        let k = self.object_key(key);
        if range.end <= range.start {
            let meta = self.head(key).await?;
            return Ok(Object { body: Bytes::new(), meta });
        }
        let request = self.client.get_object().bucket(&self.bucket).key(&k).range(format!(
            "bytes={}-{}",
            range.start,
            range.end - 1
        ));
        match request.send().await {
            Ok(out) => {
                let total =
                    total_from_content_range(out.content_range()).or(out.content_length().map(|l| l.max(0) as u64));
                let meta = ObjectMeta {
                    size: total.unwrap_or(0),
                    modified: to_system_time(out.last_modified()),
                    etag: out.e_tag().map(str::to_owned),
                };
                let body = self.collect(&k, out.content_length(), out.body).await?;
                Ok(Object { body, meta })
            }
            // A range that starts past the end: an empty read, as the trait promises.
            Err(SdkError::ServiceError(s)) if s.raw().status().as_u16() == 416 => {
                let meta = self.head(key).await?;
                Ok(Object { body: Bytes::new(), meta })
            }
            Err(e) => Err(classify(&k, e)),
        }
    }

    async fn head(&self, key: &StorageKey) -> Result<ObjectMeta, StorageError> {
        let k = self.object_key(key);
        let out = self.client.head_object().bucket(&self.bucket).key(&k).send().await.map_err(|e| classify(&k, e))?;
        Ok(ObjectMeta {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            modified: to_system_time(out.last_modified()),
            etag: out.e_tag().map(str::to_owned),
        })
    }

    async fn put(&self, key: &StorageKey, body: Bytes) -> Result<(), StorageError> {
        let k = self.object_key(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&k)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&k, e))
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), StorageError> {
        let k = self.object_key(key);
        match self.client.delete_object().bucket(&self.bucket).key(&k).send().await.map_err(|e| classify(&k, e)) {
            Ok(_) | Err(StorageError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        self.list_past(prefix, usize::MAX).await
    }

    /// The objects under `prefix`, page by page (S3 lists in key order), stopping once more than
    /// `limit` are in.
    async fn list_past(&self, prefix: &str, limit: usize) -> Result<Vec<ListedObject>, StorageError> {
        let full = format!("{}{prefix}", self.prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = self.client.list_objects_v2().bucket(&self.bucket).prefix(&full);
            if let Some(t) = token.take() {
                request = request.continuation_token(t);
            }
            let page = request.send().await.map_err(|e| classify(&full, e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else { continue };
                let Ok(key) = StorageKey::parse(key) else { continue };
                out.push(ListedObject {
                    key,
                    size: object.size().unwrap_or(0).max(0) as u64,
                    modified: to_system_time(object.last_modified()),
                });
            }
            if out.len() > limit {
                break;
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::total_from_content_range;

    #[test]
    fn content_range_totals() {
        assert_eq!(total_from_content_range(Some("bytes 0-99/1234")), Some(1234));
        assert_eq!(total_from_content_range(Some("bytes 0-99/*")), None);
        assert_eq!(total_from_content_range(None), None);
    }
}
