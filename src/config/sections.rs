//! The sections of the configuration, each with its defaults (the values `estuary.example.toml` shows).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ByteSize;

/// The hot path: players and the CDN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "super::listen::deserialize")]
    pub addr: SocketAddr,
    /// Worker threads of the edge; 0 means one per CPU core.
    pub workers: usize,
    /// How the edge's workers share the work. See [`EdgeRuntime`].
    pub runtime: EdgeRuntime,
    /// Origin lock: when both are set, edge requests without this header and value get 403.
    pub origin_lock_header: String,
    pub origin_lock_secret: String,
    /// Also admitted while a new `origin_lock_secret` is rolled out to the CDN; empty once it is.
    pub origin_lock_previous_secret: String,
    /// Public base URL of the edge (`https://cdn.example.com`), for absolute URLs in manifests
    /// (DASH `UTCTiming`). Empty: those URLs are relative to the manifest. Nothing from a request's
    /// headers ever enters a manifest, since manifests are cached and shared.
    pub public_url: String,
}

impl EdgeConfig {
    /// `origin_lock_header` as a header name; `None` when no lock is set. The one place it is parsed:
    /// `validate` refuses a config where this is an error, and the edge takes the name from here.
    pub fn origin_lock_header_name(&self) -> Result<Option<http::HeaderName>, super::ConfigError> {
        if self.origin_lock_header.is_empty() {
            return Ok(None);
        }
        http::HeaderName::from_bytes(self.origin_lock_header.as_bytes()).map(Some).map_err(|_| {
            super::ConfigError::new(
                "edge.origin_lock_header",
                format!("{:?} is not a valid header name", self.origin_lock_header),
            )
        })
    }
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            enabled: true,
            addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            workers: 0,
            runtime: EdgeRuntime::PerCore,
            origin_lock_header: String::new(),
            origin_lock_secret: String::new(),
            origin_lock_previous_secret: String::new(),
            public_url: String::new(),
        }
    }
}

/// [`EdgeConfig::runtime`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeRuntime {
    /// One single-threaded runtime per worker, each with its own listener on the shared port
    /// (`SO_REUSEPORT`): a connection stays on the thread the kernel gave it, nothing moves between
    /// threads (the shape of nginx's workers).
    #[default]
    PerCore,
    /// One work-stealing runtime for all workers and one listener: an idle worker takes work
    /// queued on a busy one, at the cost of handing tasks between threads.
    Shared,
}

/// The encoder-facing tier: live segments and playlists pushed over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "super::listen::deserialize")]
    pub addr: SocketAddr,
    /// Larger uploads get 413.
    pub max_body_bytes: ByteSize,
    /// Base URL encoders use (`http://ingest.example.com:8081`), for the ingest URL the API returns.
    /// Empty: the API request's host with the ingest port.
    pub public_url: String,
    /// An upload whose body sends no bytes for this long gets 408 and is dropped.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Bytes per second an upload's body must average once its first `body_timeout` is over; a body
    /// that trickles slower gets 408 (a long-running CMAF POST too). 0 turns the check off.
    pub min_body_rate: ByteSize,
    /// Largest init segment (`init.mp4`) and largest playlist; larger ones get 413.
    pub max_init_bytes: ByteSize,
    pub max_playlist_bytes: ByteSize,
    /// Bytes one channel may hold in memory (uploads not yet listed, its window, segments not yet
    /// stored); uploads past it get 413.
    pub max_channel_bytes: ByteSize,
    /// Bytes all of ingest may hold: bodies being received plus every channel's memory.
    pub max_total_bytes: ByteSize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            enabled: true,
            addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            max_body_bytes: ByteSize::mib(64),
            public_url: String::new(),
            body_timeout: Duration::from_secs(10),
            min_body_rate: ByteSize(1024),
            max_init_bytes: ByteSize::mib(1),
            max_playlist_bytes: ByteSize::mib(1),
            max_channel_bytes: ByteSize::mib(512),
            max_total_bytes: ByteSize::mib(2048),
        }
    }
}

/// Defaults for channels created without their own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    pub channel_defaults: estuary_live::model::ChannelSettings,
    /// Most channels that may exist; creating one more gets 409.
    pub max_channels: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig { channel_defaults: estuary_live::model::ChannelSettings::default(), max_channels: 1000 }
    }
}

/// Running as one of several pods: the control store they share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` over TLS (the server's certificate
    /// checked against the system's roots, or `SSL_CERT_FILE`) (Redis 7, Valkey, ElastiCache): channels and their
    /// timelines are shared through it, so every pod serves every live channel. Empty: a single
    /// process, as without a cluster.
    pub redis_url: String,
    /// What a pod does with a channel's uploads while another pod takes its stream (a redundant
    /// encoder pair): `standby` accepts them, keeps the init segments and takes over when the owner
    /// is gone; `refuse` answers 409.
    pub redundant_ingest: RedundantIngest,
    /// The internal listener (in a cluster): the other pods read the newest segments of the channels
    /// this pod writes from its memory here. Keep it on the pod network only.
    #[serde(deserialize_with = "super::listen::deserialize")]
    pub internal_addr: SocketAddr,
    /// How the other pods reach `internal_addr` (`http://10.0.3.7:8083`; on Kubernetes from the pod
    /// IP: `ESTUARY_CLUSTER_INTERNAL_URL=http://$(POD_IP):8083`). Empty: `http://{internal_addr}`
    /// when that names one address, else none, and the other pods read this pod's segments from
    /// storage only.
    pub internal_url: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis_url: String::new(),
            redundant_ingest: RedundantIngest::default(),
            internal_addr: SocketAddr::from(([0, 0, 0, 0], 8083)),
            internal_url: String::new(),
        }
    }
}

/// See [`ClusterConfig::redundant_ingest`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedundantIngest {
    #[default]
    Standby,
    Refuse,
}

/// The control plane: operators, Prometheus, Kubernetes probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "super::listen::deserialize")]
    pub addr: SocketAddr,
    /// Bearer token required on `/api/v1/*` when not empty. Required when `addr` is not loopback.
    pub token: String,
    /// `Host` values the API answers (DNS rebinding guard), besides loopback names and addresses and
    /// `addr` itself: the names operators and Prometheus use (`estuary-api.internal:9090`).
    pub allowed_hosts: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: String::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// Connection limits shared by every listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A client must send a request's whole header block within this time.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Largest request header block accepted (431 above it).
    pub max_header_bytes: ByteSize,
    /// An edge connection with no request in progress is closed after this long (longer than the
    /// CDN's own keep-alive to the origin, so the CDN closes first).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: ByteSize(16 * 1024),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
}

/// The S3 backend's section is storage's own.
pub use estuary_storage::s3::S3Config;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// Root folder of the local backend.
    pub root: PathBuf,
    /// Consecutive storage failures after which calls fail fast (the circuit opens).
    pub breaker_threshold: u32,
    /// How long the circuit stays open before one request probes the backend again.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// The longest one read (retries included) may take before the request gets 504.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// The same for one write or delete (live write-through retries after it).
    #[serde(with = "humantime_serde")]
    pub write_deadline: Duration,
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Local,
            root: PathBuf::from("assets"),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
            deadline: Duration::from_secs(2),
            write_deadline: Duration::from_secs(10),
            s3: S3Config::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Capacity of the segment cache in bytes; 0 turns the cache off.
    pub bytes: ByteSize,
    /// Objects larger than this are streamed from storage instead of cached.
    pub max_object_bytes: ByteSize,
    /// An object past its lifetime is reloaded; while storage fails it is still served for this long.
    #[serde(with = "humantime_serde")]
    pub stale_if_error: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            bytes: ByteSize::mib(512),
            max_object_bytes: ByteSize::mib(16),
            stale_if_error: Duration::from_secs(3600),
        }
    }
}

/// Pass-through serving of pre-packaged files under `/static/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticFilesConfig {
    /// Lifetime of `.m3u8`/`.mpd` files at the CDN and in estuary's cache.
    /// Short by default because a live packager may be rewriting them; raise it for VOD-only folders.
    #[serde(with = "humantime_serde")]
    pub manifest_max_age: Duration,
    /// Lifetime of every other file (segments, init segments, keys, subtitles).
    #[serde(with = "humantime_serde")]
    pub file_max_age: Duration,
}

impl Default for StaticFilesConfig {
    fn default() -> Self {
        StaticFilesConfig { manifest_max_age: Duration::from_secs(2), file_max_age: Duration::from_secs(24 * 3600) }
    }
}

/// On-the-fly packaging of MP4 files under `/vod/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VodConfig {
    /// Target segment duration; segments start at keyframes nearest its multiples.
    #[serde(with = "humantime_serde")]
    pub segment_duration: Duration,
    /// Lifetime of VOD playlists, manifests and segments at the CDN and in estuary's cache.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// How often a source file is checked (size, modification time, ETag) for replacement.
    #[serde(with = "humantime_serde")]
    pub revalidate_after: Duration,
    /// Memory for parsed source indexes (sample tables), separate from the segment cache.
    pub index_cache_bytes: ByteSize,
    /// Largest `moov` box accepted (a one-hour file needs a few MiB).
    pub max_moov_bytes: ByteSize,
    /// Largest number of samples in one track.
    pub max_samples_per_track: u32,
    /// Sample ranges closer than this are read in one request (the bytes between are read and dropped).
    pub read_gap_bytes: ByteSize,
    /// Offer each video adaptation set's keyframes as a DASH-IF trick-mode set in the MPD (Shaka,
    /// ExoPlayer and dash.js use or skip it). Off by default: ffmpeg's DASH demuxer, and the players
    /// built on it, ignore the `EssentialProperty` and take it as one more video stream.
    pub dash_trick_mode: bool,
}

impl Default for VodConfig {
    fn default() -> Self {
        VodConfig {
            segment_duration: Duration::from_secs(6),
            max_age: Duration::from_secs(24 * 3600),
            revalidate_after: Duration::from_secs(10),
            index_cache_bytes: ByteSize::mib(256),
            max_moov_bytes: ByteSize::mib(64),
            max_samples_per_track: 5_000_000,
            read_gap_bytes: ByteSize(16 * 1024),
            dash_trick_mode: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// After SIGTERM, keep serving (with /readyz false) this long so load balancers stop sending traffic.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Then stop accepting and give in-flight responses at most this long to finish.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { drain_delay: Duration::ZERO, grace_period: Duration::from_secs(30) }
    }
}

/// Content protection (`[encryption]`): which assets are served encrypted, and with which key. Off
/// unless `vod_prefixes` names some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// VOD assets whose name starts with one of these are served encrypted: `scheme` for CMAF (HLS
    /// fMP4 and DASH, trick play included), `ts_method` for their MPEG-TS ladder when a key is
    /// given out for it (else it is not offered; no MPEG-TS I-frame playlists). Their files in
    /// storage stay as they are. Empty: none (an asset set with `"encrypted": true` is protected).
    pub vod_prefixes: Vec<String>,
    /// Live channels whose id starts with one of these are served encrypted: their fMP4 segments,
    /// LL-HLS parts and growing LL-DASH segment in `scheme`, their MPEG-TS segments in AES-128 when
    /// `key_delivery` is on (else not offered). Empty: none. A channel made with `"encrypted":
    /// true` is protected whatever its id.
    pub live_prefixes: Vec<String>,
    /// Live key rotation: a new key every this many segments (a key period), announced in HLS by
    /// an `EXT-X-KEY` at each period's first segment and in each fMP4 fragment (`pssh`, `seig`).
    /// 0: one key for the whole channel.
    pub key_period: u32,
    /// The common encryption scheme of CMAF: `cenc` (AES-CTR: Widevine, PlayReady, ClearKey) or
    /// `cbcs` (AES-CBC 1:9 pattern: FairPlay too, and Widevine and PlayReady on current devices).
    pub scheme: EncryptionScheme,
    /// FairPlay's key URI for HLS (`skd://...`; `{kid}` becomes the KID's 32 hex digits), with
    /// `scheme = "cbcs"` only. Empty: FairPlay is not offered.
    pub fairplay_uri: String,
    /// Where keys come from: `static` (`key_id` and `key`, one key for every protected asset) or
    /// `speke` (a SPEKE v2 key server at `speke_url`, one key per asset, its KID derived from the
    /// asset's name so every pod asks for the same).
    pub key_provider: KeyProvider,
    /// The SPEKE v2 endpoint (`https://...`, or `http://` inside the cluster).
    pub speke_url: String,
    /// A bearer token for the key server (`Authorization: Bearer ...`). A secret: never logged,
    /// never printed. Empty: none sent.
    pub speke_token: String,
    /// One request to the key server is cut after this long...
    #[serde(with = "humantime_serde")]
    pub speke_timeout: Duration,
    /// ...and retried with backoff until this long has passed; then the request is answered 503.
    #[serde(with = "humantime_serde")]
    pub speke_deadline: Duration,
    /// The DRM systems asked of the key server: `widevine`, `playready`, `fairplay`. ClearKey and
    /// the common system are always signalled.
    pub drm_systems: Vec<String>,
    /// Most keys held in memory at once (one per protected asset seen); past it the least used
    /// are dropped and fetched again when asked for.
    pub max_held_keys: u64,
    /// The key id (KID) of every protected asset (`static`): 32 hex digits, dashes allowed.
    pub key_id: String,
    /// Its content key: 32 hex digits. A secret: never logged, never printed.
    pub key: String,
    /// The DRM systems' `pssh` boxes for this key (Widevine, PlayReady, ...), as the DRM vendor's
    /// tools give them: one or more whole boxes, in base64. They go into init segments, and each
    /// system is named in the MPD (`ContentProtection`, PlayReady's `mspr:pro`) and in HLS
    /// (`EXT-X-KEY` with its `KEYFORMAT`). Empty: ClearKey and the common system only.
    pub pssh: String,
    /// The edge hands keys out under `/keys/` (AES-128 keys, and a ClearKey licence server at
    /// `POST /keys/{content}/clearkey`; `Cache-Control: private, no-store`), and protected MPEG-TS
    /// is offered with `METHOD=AES-128` naming its key. Off by default: whoever reaches the edge
    /// gets the keys (entitlement, issue 25, will guard them).
    pub key_delivery: bool,
    /// How protected MPEG-TS is encrypted: `aes-128` (whole segments; needs `key_delivery`) or
    /// `sample-aes` (Apple's SAMPLE-AES: H.264 slices and AAC frames, for FairPlay's `skd://` key
    /// with `fairplay_uri` and for the edge's key with `key_delivery`; HEVC variants, which the
    /// format does not cover, stay in AES-128). Live channels' MPEG-TS is in AES-128 either way.
    pub ts_method: crate::keys::protection::TsMethod,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        EncryptionConfig {
            vod_prefixes: Vec::new(),
            live_prefixes: Vec::new(),
            key_period: 0,
            scheme: EncryptionScheme::Cenc,
            fairplay_uri: String::new(),
            key_provider: KeyProvider::Static,
            speke_url: String::new(),
            speke_token: String::new(),
            speke_timeout: Duration::from_secs(2),
            speke_deadline: Duration::from_secs(5),
            drm_systems: Vec::new(),
            max_held_keys: 100_000,
            key_id: String::new(),
            key: String::new(),
            pssh: String::new(),
            key_delivery: false,
            ts_method: crate::keys::protection::TsMethod::Aes128,
        }
    }
}

/// Where content keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyProvider {
    #[default]
    Static,
    Speke,
}

/// A common encryption scheme (ISO/IEC 23001-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionScheme {
    #[default]
    Cenc,
    Cbcs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `estuary=debug,info`); `RUST_LOG` overrides it.
    pub level: String,
    /// One event per request on every tier.
    pub access: bool,
    /// Proxies whose `X-Forwarded-For` is believed (the load balancer, CloudFront): the access log's
    /// `client_ip` is the nearest address of the chain that is not one of them.
    pub trusted_proxies: Vec<crate::http::forwarded::Cidr>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Pretty, level: "info".to_owned(), access: true, trusted_proxies: Vec::new() }
    }
}
