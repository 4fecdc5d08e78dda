//! Which VOD assets are protected, and the sealing of each (key, cipher, signalling) held in
//! memory: one for all with a static key, one per asset from a SPEKE key server, fetched once for
//! every concurrent request and kept while there is room, so a key server outage keeps serving
//! every key already held; a new one is then a 503 naming the content id and KID.
//!
//! Invariants: a protected asset is never served without its key (no key, no object: never clear
//! media in its place); keys live in memory only; a failed fetch is not repeated for
//! [`RETRY_AFTER`], so an outage costs the key server one request per asset per second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use moka::future::Cache;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::{KeyAnswer, KeyError, KeySource, metrics};
use crate::packaging::cenc::{ContentKey, KeyId, SampleCipher, Scheme, Signalling};
use crate::packaging::manifest::SegmentEncryption;
use crate::storage::StorageKey;

/// How long a failed key fetch is answered from memory (503) before the key server is asked again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Whether the edge hands keys out (`/keys/...`), which HLS AES-128 needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDelivery {
    Off,
    OnTheEdge,
}

/// How protected MPEG-TS is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TsMethod {
    /// Whole segments in AES-128 CBC (`METHOD=AES-128`): every HLS player and set-top box.
    #[default]
    #[serde(rename = "aes-128")]
    Aes128,
    /// Apple's SAMPLE-AES (`METHOD=SAMPLE-AES`): H.264 slices and AAC frames, the rest clear;
    /// FairPlay's `skd://` key where configured. HEVC variants stay in AES-128.
    #[serde(rename = "sample-aes")]
    SampleAes,
}

/// How one protected asset's objects are encrypted.
#[derive(Debug)]
pub struct Sealing {
    pub key: ContentKey,
    /// The key expanded for the scheme, once.
    pub cipher: SampleCipher,
    /// What manifests and init segments say of it.
    pub signalling: Signalling,
    /// The edge hands its key out at this URI (AES-128 and SAMPLE-AES in MPEG-TS); `None`: it does not.
    pub ts_key_uri: Option<String>,
    pub ts_method: TsMethod,
    /// What its objects' cache keys carry, apart from clear ones (`#{scheme}-{kid}`).
    pub cache_tag: String,
}

impl Sealing {
    /// The sealing of `answer`'s key in `scheme`; FairPlay's URI is the answer's, else `fairplay_uri`.
    pub fn new(
        answer: KeyAnswer,
        scheme: Scheme,
        fairplay_uri: Option<String>,
        ts_key_uri: Option<String>,
        ts_method: TsMethod,
    ) -> Sealing {
        let KeyAnswer { key, systems, fairplay_uri: given } = answer;
        let cipher = SampleCipher::new(&key, scheme);
        let fairplay_uri = (scheme == Scheme::Cbcs).then(|| given.or(fairplay_uri)).flatten();
        let constant_iv = cipher.constant_iv();
        let signalling = Signalling {
            kid: key.kid,
            scheme,
            constant_iv,
            systems: systems.into(),
            fairplay_uri,
            clearkey_licence: None,
        };
        let method = if ts_method == TsMethod::SampleAes { "-sa" } else { "" };
        let cache_tag = format!("#{}{method}-{}", scheme.name(), key.kid.hex());
        Sealing { key, cipher, signalling, ts_key_uri, ts_method, cache_tag }
    }

    /// How a MPEG-TS playlist of this asset is encrypted (`sample_aes_able`: its tracks are H.264
    /// and AAC); `None`: not offered (AES-128 without key delivery, SAMPLE-AES with neither key
    /// delivery nor FairPlay).
    pub fn ts_encryption(&self, sample_aes_able: bool) -> Option<SegmentEncryption> {
        let fairplay_uri = self.signalling.fairplay_uri.clone();
        match (self.ts_method, sample_aes_able, &self.ts_key_uri) {
            (TsMethod::SampleAes, true, uri) if uri.is_some() || fairplay_uri.is_some() => {
                let iv = self.cipher.constant_iv();
                Some(SegmentEncryption::SampleAes { uri: uri.clone(), fairplay_uri, iv })
            }
            (_, _, Some(uri)) => Some(SegmentEncryption::Aes128 { uri: uri.clone() }),
            _ => None,
        }
    }
}

/// Characters a content id cannot keep in a key URI inside a playlist's quoted attribute.
const KEY_URI: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'?').add(b'%').add(b',').add(b'\'');

/// Protected assets and their keys.
#[derive(Debug)]
pub struct Protection {
    prefixes: Vec<String>,
    /// Live channels whose id starts with one of these are protected (content id `live:{id}`).
    live_prefixes: Vec<String>,
    /// Live keys rotate: with a static key, their keys derive from it, so it is never handed out.
    rotating: bool,
    source: KeySource,
    scheme: Scheme,
    fairplay_uri: Option<String>,
    delivery: KeyDelivery,
    ts_method: TsMethod,
    /// The one sealing of a static key.
    fixed: Option<Arc<Sealing>>,
    held: Cache<String, Arc<Sealing>>,
    failed: Cache<String, Arc<KeyError>>,
}

impl Protection {
    /// Assets under `prefixes` encrypted in `scheme` with keys from `source`; at most `max_held`
    /// keys held at once.
    pub fn new(
        prefixes: Vec<String>,
        source: KeySource,
        scheme: Scheme,
        fairplay_uri: Option<String>,
        delivery: KeyDelivery,
        max_held: u64,
    ) -> Protection {
        let held = Cache::builder().max_capacity(max_held.max(1)).build();
        let failed = Cache::builder().max_capacity(max_held.max(1)).time_to_live(RETRY_AFTER).build();
        let (live_prefixes, rotating, ts_method) = (Vec::new(), false, TsMethod::Aes128);
        let protection = Protection {
            prefixes,
            live_prefixes,
            rotating,
            source,
            scheme,
            fairplay_uri,
            delivery,
            ts_method,
            fixed: None,
            held,
            failed,
        };
        Protection { fixed: protection.static_sealing(), ..protection }
    }

    /// Protected MPEG-TS in `ts_method` (AES-128 unless said).
    pub fn with_ts_method(self, ts_method: TsMethod) -> Protection {
        let protection = Protection { ts_method, ..self };
        Protection { fixed: protection.static_sealing(), ..protection }
    }

    /// The one sealing of a static key; `None` with a key server.
    fn static_sealing(&self) -> Option<Arc<Sealing>> {
        let KeySource::Static(answer) = &self.source else { return None };
        let uri = (self.delivery == KeyDelivery::OnTheEdge).then(|| format!("/keys/{}.key", answer.key.kid.hex()));
        Some(Arc::new(Sealing::new(answer.clone(), self.scheme, self.fairplay_uri.clone(), uri, self.ts_method)))
    }

    /// Also protects the live channels whose id starts with one of `prefixes`, their keys
    /// `rotating` by key period or not.
    pub fn with_live(self, live_prefixes: Vec<String>, rotating: bool) -> Protection {
        Protection { live_prefixes, rotating, ..self }
    }

    /// Whether `asset` is protected.
    pub fn protects(&self, asset: &StorageKey) -> bool {
        self.prefixes.iter().any(|p| asset.as_str().starts_with(p.as_str()))
    }

    /// Whether live channel `channel` is protected.
    pub fn protects_channel(&self, channel: &str) -> bool {
        self.live_prefixes.iter().any(|p| channel.starts_with(p.as_str()))
    }

    /// The content id of live channel `channel` (its keys' name at the key server).
    pub fn channel_content(channel: &str) -> String {
        format!("live:{channel}")
    }

    /// Whether a content id (an asset's name, or `live:{channel}`) is protected by the config's
    /// prefixes.
    fn protects_content(&self, content: &str) -> bool {
        match content.strip_prefix("live:") {
            Some(channel) => self.protects_channel(channel),
            None => StorageKey::parse(content).is_ok_and(|asset| self.protects(&asset)),
        }
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn delivery(&self) -> KeyDelivery {
        self.delivery
    }

    /// The KID `content_id` is encrypted under in `period`, without fetching its key.
    pub fn kid(&self, content_id: &str, period: Option<u64>) -> KeyId {
        self.source.kid(content_id, period)
    }

    /// How `asset` is encrypted (under the config's prefixes, or `flagged` by its asset set):
    /// `None` in the clear; an error when its key cannot be had now.
    pub async fn sealing(&self, asset: &StorageKey, flagged: bool) -> Result<Option<Arc<Sealing>>, Arc<KeyError>> {
        if !self.protects(asset) && !flagged {
            return Ok(None);
        }
        self.sealing_of(asset.as_str(), None).await.map(Some)
    }

    /// The sealing of `content_id` in key period `period`, held or fetched.
    pub async fn sealing_of(&self, content_id: &str, period: Option<u64>) -> Result<Arc<Sealing>, Arc<KeyError>> {
        // A static key serves every content id; a key period has a key of its own.
        if let (Some(fixed), None) = (&self.fixed, period) {
            return Ok(fixed.clone());
        }
        // A VOD asset's key is looked up by its name as it is (no copy per request).
        let id: std::borrow::Cow<'_, str> = match period {
            Some(p) => format!("{p}\0{content_id}").into(),
            None => content_id.into(),
        };
        if let Some(sealing) = self.held.get(id.as_ref()).await {
            return Ok(sealing);
        }
        if let Some(error) = self.failed.get(id.as_ref()).await {
            return Err(error);
        }
        let id = id.into_owned();
        let fetch = async {
            let answer = self.source.answer(content_id, period, self.scheme).await?;
            // Where the edge hands this key out: paths that name the content, so any pod answers.
            let content = utf8_percent_encode(content_id, KEY_URI).to_string();
            let delivers = self.delivery == KeyDelivery::OnTheEdge;
            let uri = delivers.then(|| match period {
                Some(p) => format!("/keys/{content}/{p}/{}.key", answer.key.kid.hex()),
                None => format!("/keys/{content}/{}.key", answer.key.kid.hex()),
            });
            let mut sealing = Sealing::new(answer, self.scheme, self.fairplay_uri.clone(), uri, self.ts_method);
            sealing.signalling.clearkey_licence = delivers.then(|| format!("/keys/{content}/clearkey"));
            Ok(Arc::new(sealing))
        };
        let result = self.held.try_get_with::<_, KeyError>(id.clone(), Box::pin(fetch)).await;
        // Once per fetch, not per request: settle the count before reading it.
        self.held.run_pending_tasks().await;
        metrics::set_held(self.held.entry_count());
        if let Err(error) = &result {
            self.failed.insert(id, error.clone()).await;
        }
        result
    }

    /// The key the edge hands out at `/keys/{file}`, when delivery is on: `{kid}.key` for the
    /// static key; `{content id}/{kid}.key` (or `{content id}/{period}/{kid}.key`) for keys from
    /// the key server, fetched if this pod does not hold it yet. `flagged`: the content is protected
    /// by a policy of its own (its asset set, its channel's settings). `None`: not one of ours.
    pub async fn delivered(&self, file: &str, flagged: bool) -> Option<ContentKey> {
        if self.delivery != KeyDelivery::OnTheEdge {
            return None;
        }
        let (content, kid) = match file.strip_suffix(".key")?.rsplit_once('/') {
            Some((content, kid)) => (Some(content), kid),
            None => (None, file.strip_suffix(".key")?),
        };
        let kid = Some(kid).filter(|k| !k.contains('-')).and_then(KeyId::parse)?;
        let sealing = match content {
            // The static key itself, unless live key periods derive from it.
            None if self.rotating => return None,
            None => self.fixed.clone()?,
            Some(content) => {
                let (content, period) = match content.rsplit_once('/') {
                    Some((c, p))
                        if c.starts_with("live:") && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        (c, Some(p.parse().ok()?))
                    }
                    _ => (content, None),
                };
                if !self.protects_content(content) && !flagged {
                    return None;
                }
                self.sealing_of(content, period).await.ok()?
            }
        };
        (sealing.key.kid == kid).then(|| {
            metrics::KEYS_DELIVERED.fetch_add(1, Ordering::Relaxed);
            sealing.key.clone()
        })
    }
}

/// What a ClearKey licence for a live channel may give: whether its keys rotate, and the newest
/// key period (the one after the channel's newest segment's), past which no key is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenceWindow {
    pub rotating: bool,
    pub newest_period: u64,
}

impl Protection {
    /// The keys of `content` a ClearKey licence gives for `kids` (those of them that are its),
    /// when the edge delivers keys: the content's own key; or a live channel's key period's, with
    /// the periods either side of it, so that a player crossing a period boundary holds the next
    /// key already (players that rotate keys by `EXT-X-KEY` ask for one key per session and may
    /// get the event of the neighbouring one). Within `window` only: never a period to come after
    /// the next, and never a static key the periods derive from. `flagged` as for [`Self::delivered`].
    pub async fn licence(
        &self,
        content: &str,
        kids: &[KeyId],
        window: Option<LicenceWindow>,
        flagged: bool,
    ) -> Vec<ContentKey> {
        if self.delivery != KeyDelivery::OnTheEdge || (!self.protects_content(content) && !flagged) {
            return Vec::new();
        }
        let rotating = window.is_some_and(|w| w.rotating);
        let newest = window.map_or(0, |w| w.newest_period);
        let mut wanted: Vec<Option<u64>> = Vec::new();
        for kid in kids {
            match crate::keys::period_of_kid(content, kid) {
                Some(p) if rotating && p <= newest => {
                    wanted.extend((p.saturating_sub(1)..=(p + 1).min(newest)).map(Some));
                }
                None if !rotating && *kid == self.kid(content, None) => wanted.push(None),
                _ => {}
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        let mut keys: Vec<ContentKey> = Vec::new();
        for period in wanted {
            if let Ok(sealing) = self.sealing_of(content, period).await {
                metrics::KEYS_DELIVERED.fetch_add(1, Ordering::Relaxed);
                keys.push(sealing.key.clone());
            }
        }
        keys
    }
}

/// A TS segment, numbered `n` (its media sequence number), in AES-128 under `key`.
pub fn seal_ts_segment(key: &ContentKey, n: u32, clear: &[u8]) -> bytes::Bytes {
    let iv = crate::packaging::aes128::sequence_iv(u64::from(n));
    let sealed = crate::packaging::aes128::encrypt_segment(key, iv, clear);
    metrics::AES128.count(sealed.len());
    sealed.into()
}
