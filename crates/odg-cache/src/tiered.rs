//! The tiered cache: memory -> disk -> shared (Redis) -> origin, with generation-stamped entries,
//! single-flight per pod, a fleet lease per key, and stale-while-revalidate.
//!
//! Lookup order and write-back: a hit in a lower tier is copied into the tiers above it. A fill
//! stamps its entry with the generations read *before* loading; if an invalidation happens
//! meanwhile, the stamp no longer matches and the entry is not written (and would not be served
//! anyway), so a slow fill can never resurrect an invalidated value.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use metrics::{counter, gauge, histogram};
use rand::Rng;
use tracing::Instrument;

use crate::curves::{stored_bytes, CacheCurves, CurvesReport, Tier};
use crate::disk::DiskTier;
use crate::entry::{EntryMeta, Freshness, StoredEntry};
use crate::flight::{first_outcome, AnyValue, FlightHandle, FlightOutcome, Flights, Joined};
use crate::generations::Stamp;
use crate::invalidation::{Invalidator, LocalTiers};
use crate::key::{CacheKey, EntryId};
use crate::memory::{MemoryEntry, MemoryTier};
use crate::metrics::{
    COALESCED_WAITERS_TOTAL, LEASE_TOTAL, LEASE_WAIT_SECONDS, LOOKUPS_TOTAL, ORIGIN_LOADS_TOTAL,
    STALE_SERVED_TOTAL, TIER_DISK, TIER_MEMORY, TIER_SHARED, WRITEBACKS_IN_FLIGHT,
};
use crate::policy::KindPolicy;
use crate::shared::{SharedTier, SharedTierConfig};
use crate::value::CacheValue;
use crate::CacheError;

/// Payloads larger than this are decoded and encoded on the blocking pool.
const BLOCKING_CODEC_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct DiskConfig {
    pub directory: PathBuf,
    pub max_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub memory_bytes: u64,
    pub disk: Option<DiskConfig>,
    pub shared: Option<SharedTierConfig>,
    /// Policies by kind name; kinds without one use `default_policy`.
    pub policies: HashMap<String, KindPolicy>,
    pub default_policy: KindPolicy,
    /// Longest wait for another pod's fill before loading ourselves.
    pub fleet_wait: Duration,
    /// How often a waiting pod looks for the other pod's result.
    pub fleet_poll: Duration,
    /// Generations are re-read from Redis this often, besides on every (re)connect.
    pub resync_interval: Duration,
    /// Where the generations snapshot is kept across restarts (the cache directory).
    pub state_directory: Option<PathBuf>,
    /// This pod's name in invalidation messages.
    pub pod_id: String,
    /// Keep sampled miss-ratio curves per tier and kind (`odg-mrc`); `None`: off. The number is
    /// the most keys one curve tracks (about 100 bytes each).
    pub miss_ratio_curve_keys: Option<usize>,
}

impl CacheConfig {
    /// The memory tier's bound when none is configured.
    pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory_bytes: CacheConfig::DEFAULT_MEMORY_BYTES,
            disk: None,
            shared: None,
            policies: HashMap::new(),
            default_policy: KindPolicy::immutable(),
            fleet_wait: Duration::from_secs(3),
            fleet_poll: Duration::from_millis(20),
            resync_interval: Duration::from_secs(10),
            state_directory: None,
            pod_id: format!("pod-{:016x}", rand::rng().random::<u64>()),
            miss_ratio_curve_keys: Some(odg_mrc::DEFAULT_MAX_SAMPLED_KEYS),
        }
    }
}

tokio::task_local! {
    /// The entry whose loader is running in this task (set around `load()` in `CacheInner::fill`).
    static FILLING: EntryId;
}

/// How waiting for another pod's fill ended.
enum FleetWait<V> {
    Filled(Arc<V>),
    LeaseFreed(crate::shared::Lease),
    GaveUp,
}

/// How a request uses the cache (the original's `Shortcut-Cache` and `ignore_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    Normal,
    /// Skip the lookup, but store what was loaded (`Shortcut-Cache: true`).
    Refresh,
    /// Neither look up nor store (`ignore_cache=true`).
    Bypass,
}

#[derive(Clone)]
pub struct TieredCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    memory: MemoryTier,
    disk: Option<DiskTier>,
    shared: Option<SharedTier>,
    /// Owns the generations; entries are stamped with what it says.
    invalidator: Arc<Invalidator>,
    flights: Arc<Flights>,
    config: CacheConfig,
    curves: Option<Arc<CacheCurves>>,
}

impl std::fmt::Debug for TieredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("memory_bytes", &self.inner.memory.max_bytes())
            .field("disk", &self.inner.disk.is_some())
            .field("shared", &self.inner.shared.is_some())
            .finish()
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// How usable an entry found in a tier is for `key` under `stamp`; `None` = not at all.
fn usable(meta: &EntryMeta, key_text: &str, key: &CacheKey, stamp: &Stamp) -> Option<Freshness> {
    if key_text != key.text() || meta.stamp != *stamp || meta.kind != *key.kind() {
        return None;
    }
    match meta.freshness(now_ms()) {
        Freshness::Expired => None,
        freshness => Some(freshness),
    }
}

/// Counts one write-back into the disk and shared tiers in `WRITEBACKS_IN_FLIGHT` while it lives.
struct WritebackInFlight;

impl WritebackInFlight {
    fn start() -> Self {
        gauge!(WRITEBACKS_IN_FLIGHT).increment(1.0);
        WritebackInFlight
    }
}

impl Drop for WritebackInFlight {
    fn drop(&mut self) {
        gauge!(WRITEBACKS_IN_FLIGHT).decrement(1.0);
    }
}

/// Counts a lookup. Every lookup of every request passes here, so the counter's handle is
/// registered once per (kind, tier, result) and then looked up without building label strings.
/// Handles bind to the recorder installed when first used: install it before serving (as
/// `odg serve` does).
fn lookup(kind: &str, tier: &'static str, result: &'static str) {
    type ByKind = HashMap<String, metrics::Counter>;
    static COUNTERS: OnceLock<RwLock<HashMap<(&'static str, &'static str), ByKind>>> =
        OnceLock::new();
    let counters = COUNTERS.get_or_init(Default::default);
    // counted under the read lock: cloning the handle out would add two atomic operations on
    // a reference count every core shares
    if let Some(counter) = counters
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&(tier, result))
        .and_then(|by_kind| by_kind.get(kind))
    {
        counter.increment(1);
        return;
    }
    counters
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry((tier, result))
        .or_default()
        .entry(kind.to_string())
        .or_insert_with(|| {
            counter!(LOOKUPS_TOTAL, "kind" => kind.to_string(), "tier" => tier, "result" => result)
        })
        .increment(1);
}

async fn decode_value<V: CacheValue>(payload: Bytes) -> Option<V> {
    let decoded = if payload.len() > BLOCKING_CODEC_BYTES {
        odg_offload::run_cpu_bound(move || V::decode(&payload))
            .await
            .ok()?
    } else {
        V::decode(&payload)
    };
    match decoded {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(%error, "cached payload does not decode; treating it as a miss");
            None
        }
    }
}

impl TieredCache {
    /// Opens the tiers. A disk tier that cannot be opened and a Redis that is down do not fail
    /// start-up: the cache runs without them (and reconnects to Redis in the background).
    pub async fn new(config: CacheConfig) -> Result<TieredCache, CacheError> {
        let memory = MemoryTier::new(config.memory_bytes);
        let disk = match &config.disk {
            Some(disk) => match DiskTier::open(disk.directory.clone(), disk.max_bytes).await {
                Ok(tier) => Some(tier),
                Err(error) => {
                    tracing::warn!(%error, "disk cache unavailable; continuing with memory and shared tiers");
                    None
                }
            },
            None => None,
        };
        let shared = match &config.shared {
            Some(shared) => Some(SharedTier::connect(shared.clone()).await?),
            None => None,
        };
        let curves = config.miss_ratio_curve_keys.map(|max_keys| {
            Arc::new(CacheCurves::new(
                &config.policies,
                max_keys,
                memory.max_bytes(),
                disk.as_ref().map(DiskTier::max_bytes),
                shared.is_some(),
            ))
        });
        let local = LocalTiers {
            memory: memory.clone(),
            disk: disk.clone(),
            curves: curves.clone(),
        };
        let invalidator = Arc::new(
            Invalidator::open(
                local,
                shared.clone(),
                config.pod_id.clone(),
                config.state_directory.clone(),
            )
            .await,
        );
        if shared.is_some() {
            invalidator.resync().await;
            invalidator.spawn_listener(config.resync_interval);
        }
        Ok(TieredCache {
            inner: Arc::new(CacheInner {
                memory,
                disk,
                shared,
                invalidator,
                flights: Arc::new(Flights::default()),
                config,
                curves,
            }),
        })
    }

    pub fn policy(&self, kind: &str) -> &KindPolicy {
        self.inner
            .config
            .policies
            .get(kind)
            .unwrap_or(&self.inner.config.default_policy)
    }

    fn stamp(&self, key: &CacheKey) -> Stamp {
        self.inner.invalidator.stamp(key)
    }

    pub fn memory(&self) -> &MemoryTier {
        &self.inner.memory
    }

    pub fn disk(&self) -> Option<&DiskTier> {
        self.inner.disk.as_ref()
    }

    pub fn shared(&self) -> Option<&SharedTier> {
        self.inner.shared.as_ref()
    }

    /// Every tier's miss-ratio curves now; `None` when they are switched off.
    pub fn miss_ratio_curves(&self) -> Option<CurvesReport> {
        self.inner.curves.as_deref().map(CacheCurves::report)
    }

    /// Sets the curves' `/metrics` series (predicted miss ratios, working sets, samples) from
    /// the curves now; the metrics route calls it before rendering.
    pub fn export_miss_ratio_curve_metrics(&self) {
        if let Some(curves) = &self.inner.curves {
            curves.export_metrics();
        }
    }

    /// The value of `key`, from the first tier that has a valid copy, else from `load` — run
    /// once per pod however many requests ask at once, and once per fleet while Redis is up.
    // debug level: on the warm path the span is disabled (a cached interest check) unless asked for
    #[tracing::instrument(level = "debug", name = "get_or_load", skip_all, fields(kind = %key.kind().as_str(), ?mode))]
    pub async fn get_or_load<V, E, F, Fut>(
        &self,
        key: &CacheKey,
        mode: CacheMode,
        load: F,
    ) -> Result<Arc<V>, E>
    where
        V: CacheValue,
        E: Clone + Send + Sync + 'static + From<CacheError>,
        // Only the future must outlive the request: `load` is called at most once, when the
        // value is loaded, so a caller can borrow its arguments and clone them only on a miss.
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let kind = key.kind().as_str();
        let policy = self.policy(kind).clone();
        match mode {
            CacheMode::Bypass => return load().await.map(Arc::new),
            CacheMode::Refresh => {
                let stamp = self.stamp(key);
                let value = Arc::new(load().await?);
                self.inner.store(key, stamp, &policy, &value, None).await;
                return Ok(value);
            }
            CacheMode::Normal => {}
        }
        let stamp = self.stamp(key);
        if policy.memory {
            let found = self.inner.memory.get_shared(&key.id());
            self.inner.record_curve(
                Tier::Memory,
                key,
                found.as_ref().map(|entry| entry.weight()),
            );
            match found {
                Some(entry) => match usable(&entry.meta, &entry.key_text, key, &stamp) {
                    Some(freshness) => {
                        if let Ok(value) = entry.value.clone().downcast::<V>() {
                            if freshness == Freshness::Stale {
                                lookup(kind, TIER_MEMORY, "stale");
                                counter!(STALE_SERVED_TOTAL, "kind" => kind.to_string())
                                    .increment(1);
                                if let Some(handle) =
                                    self.inner.flights.lead_if_idle(key.id(), stamp)
                                {
                                    self.spawn_fill(key.clone(), stamp, policy, load(), handle);
                                }
                            } else {
                                lookup(kind, TIER_MEMORY, "hit");
                            }
                            return Ok(value);
                        }
                        self.inner.remove_invalid_from_memory(key);
                        lookup(kind, TIER_MEMORY, "invalid");
                    }
                    None => {
                        self.inner.remove_invalid_from_memory(key);
                        lookup(kind, TIER_MEMORY, "invalid");
                    }
                },
                None => lookup(kind, TIER_MEMORY, "miss"),
            }
        }

        let receiver = match self.inner.flights.join_or_lead(key.id(), stamp) {
            Joined::Waiter(receiver) => {
                counter!(COALESCED_WAITERS_TOTAL, "kind" => kind.to_string()).increment(1);
                receiver
            }
            Joined::Leader(handle, receiver) => {
                self.spawn_fill(key.clone(), stamp, policy, load(), handle);
                receiver
            }
        };
        match first_outcome(receiver).await {
            Some(FlightOutcome::Value(value)) => value.downcast::<V>().map_err(|_| {
                E::from(CacheError::InvalidInput(format!(
                    "cache kind {kind} holds another type"
                )))
            }),
            Some(FlightOutcome::Error(error)) => match error.downcast_ref::<E>() {
                Some(error) => Err(error.clone()),
                None => Err(E::from(CacheError::InvalidInput("loader failed".into()))),
            },
            None => Err(E::from(CacheError::InvalidInput(
                "the cache fill task ended without an answer".into(),
            ))),
        }
    }

    fn spawn_fill<V, E, Fut>(
        &self,
        key: CacheKey,
        stamp: Stamp,
        policy: KindPolicy,
        load: Fut,
        handle: FlightHandle,
    ) where
        V: CacheValue,
        E: Clone + Send + Sync + 'static + From<CacheError>,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let inner = self.inner.clone();
        // the fill outlives the request that led it (waiters may still want it), but it carries
        // that request's span: a registry retry inside it names the request id that caused it
        let span = tracing::info_span!("cache_fill", kind = %key.kind().as_str());
        tokio::spawn(
            async move {
                inner.fill(key, stamp, policy, load, handle).await;
            }
            .instrument(span),
        );
    }

    /// Brings this pod's generations covering `keys` up to date with Redis, in one round trip,
    /// and drops the local entries they invalidate. After it returns `Ok`, no lookup of these
    /// keys is answered from an entry that an invalidation acknowledged before the call
    /// (on any pod) has invalidated, even if its pub/sub message has not arrived yet.
    /// Without a shared tier this pod's generations are the truth: `Ok` at once.
    /// `Err`: Redis is unreachable, so this pod cannot know; the caller should not serve these
    /// keys from the cache (for example, load them with [`CacheMode::Refresh`]).
    pub async fn sync_generations(&self, keys: &[&CacheKey]) -> Result<(), CacheError> {
        self.inner.invalidator.sync_for_keys(keys).await
    }

    /// Removes the entries `selector` names in every tier and every pod; see `invalidation.rs`.
    pub async fn invalidate(
        &self,
        selector: &crate::Selector,
    ) -> Result<crate::InvalidationReport, CacheError> {
        self.inner.invalidator.invalidate(selector).await
    }

    /// Re-reads the generations from Redis and drops local entries they invalidate.
    pub async fn resync(&self) {
        self.inner.invalidator.resync().await
    }
}

impl CacheInner {
    async fn fill<V, E, Fut>(
        self: Arc<Self>,
        key: CacheKey,
        stamp: Stamp,
        policy: KindPolicy,
        load: Fut,
        handle: FlightHandle,
    ) where
        V: CacheValue,
        E: Clone + Send + Sync + 'static + From<CacheError>,
        // not started until awaited (futures are lazy): the tiers below are asked first
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let kind = key.kind().as_str().to_string();
        let id = key.id();

        if policy.disk {
            if let Some(disk) = &self.disk {
                let found = disk.get(&id).await;
                self.record_curve(Tier::Disk, &key, found.as_ref().map(stored_bytes));
                match found {
                    Some(stored) => match usable(&stored.meta, &stored.key_text, &key, &stamp) {
                        Some(Freshness::Fresh) => {
                            if let Some(value) = decode_value::<V>(stored.payload.clone()).await {
                                lookup(&kind, TIER_DISK, "hit");
                                let value = Arc::new(value);
                                self.promote_to_memory(&key, &policy, stored.meta, &value);
                                handle.answer(FlightOutcome::Value(value));
                                return;
                            }
                            disk.remove(&id).await;
                            lookup(&kind, TIER_DISK, "invalid");
                        }
                        _ => {
                            disk.remove(&id).await;
                            lookup(&kind, TIER_DISK, "invalid");
                        }
                    },
                    None => lookup(&kind, TIER_DISK, "miss"),
                }
            }
        }

        let shared = self
            .shared
            .as_ref()
            .filter(|shared| policy.shared && shared.is_available());
        if let Some(shared) = shared {
            if let Some(outcome) = self
                .shared_lookup::<V>(shared, &key, &stamp, &policy, true)
                .await
            {
                let (value, freshness) = outcome;
                if freshness == Freshness::Fresh {
                    handle.answer(FlightOutcome::Value(value as AnyValue));
                    return;
                }
                // Stale: waiters get it now; the flight stays open while it refreshes for everyone.
                let _ = handle
                    .sender
                    .send(Some(FlightOutcome::Value(value as AnyValue)));
                counter!(STALE_SERVED_TOTAL, "kind" => kind.clone()).increment(1);
            }
        }

        let mut lease = None;
        if let Some(shared) = shared {
            match shared.try_lease(&id).await {
                Ok(Some(acquired)) => {
                    counter!(LEASE_TOTAL, "kind" => kind.clone(), "result" => "acquired")
                        .increment(1);
                    lease = Some(acquired);
                }
                Ok(None) => {
                    let started = Instant::now();
                    let waited = self
                        .wait_for_fleet::<V>(shared, &key, &stamp, &policy)
                        .await;
                    histogram!(LEASE_WAIT_SECONDS, "kind" => kind.clone())
                        .record(started.elapsed().as_secs_f64());
                    match waited {
                        FleetWait::Filled(value) => {
                            counter!(LEASE_TOTAL, "kind" => kind.clone(), "result" => "waited_hit")
                                .increment(1);
                            handle.answer(FlightOutcome::Value(value as AnyValue));
                            return;
                        }
                        // The holder finished without storing (its load failed, or an
                        // invalidation made it skip the store): we load, holding the lease now.
                        FleetWait::LeaseFreed(acquired) => {
                            counter!(LEASE_TOTAL, "kind" => kind.clone(), "result" => "waited_takeover").increment(1);
                            lease = Some(acquired);
                        }
                        FleetWait::GaveUp => {
                            counter!(LEASE_TOTAL, "kind" => kind.clone(), "result" => "waited_timeout").increment(1);
                        }
                    }
                }
                Err(_) => {
                    counter!(LEASE_TOTAL, "kind" => kind.clone(), "result" => "unavailable")
                        .increment(1);
                }
            }
            // Another pod may have stored the value and released its lease between our lookup
            // and our lease: look once more before loading.
            if lease.is_some() {
                if let Some((value, Freshness::Fresh)) = self
                    .shared_lookup::<V>(shared, &key, &stamp, &policy, false)
                    .await
                {
                    if let Some(lease) = lease.take() {
                        let _ = shared.release(&lease).await;
                    }
                    handle.answer(FlightOutcome::Value(value as AnyValue));
                    return;
                }
            }
        }

        // lookups the loader makes (a rendered answer's descriptor) name this entry as their
        // parent, for the miss-ratio simulations (`curves.rs`)
        let loaded = FILLING.scope(id, load).await;
        match loaded {
            Ok(value) => {
                counter!(ORIGIN_LOADS_TOTAL, "kind" => kind.clone(), "result" => "ok").increment(1);
                let value = Arc::new(value);
                self.store(&key, stamp, &policy, &value, Some(&handle))
                    .await;
                if let (Some(shared), Some(lease)) = (self.shared.as_ref(), lease) {
                    let _ = shared.release(&lease).await;
                }
            }
            Err(error) => {
                counter!(ORIGIN_LOADS_TOTAL, "kind" => kind.clone(), "result" => "error")
                    .increment(1);
                if let (Some(shared), Some(lease)) = (self.shared.as_ref(), lease) {
                    let _ = shared.release(&lease).await;
                }
                handle.answer(FlightOutcome::Error(Arc::new(error)));
            }
        }
    }

    /// A valid (fresh or stale) copy from Redis, promoted into memory and disk.
    async fn shared_lookup<V: CacheValue>(
        &self,
        shared: &SharedTier,
        key: &CacheKey,
        stamp: &Stamp,
        policy: &KindPolicy,
        first_of_fill: bool,
    ) -> Option<(Arc<V>, Freshness)> {
        let kind = key.kind().as_str();
        let found = shared.get(&key.id()).await;
        if first_of_fill {
            let size = match &found {
                Ok(Some(stored)) => Some(stored_bytes(stored)),
                _ => None,
            };
            self.record_curve(Tier::Shared, key, size);
        }
        match found {
            Ok(Some(stored)) => match usable(&stored.meta, &stored.key_text, key, stamp) {
                Some(freshness) => {
                    let value = Arc::new(decode_value::<V>(stored.payload.clone()).await?);
                    lookup(
                        kind,
                        TIER_SHARED,
                        if freshness == Freshness::Fresh {
                            "hit"
                        } else {
                            "stale"
                        },
                    );
                    self.promote_to_memory(key, policy, stored.meta.clone(), &value);
                    if freshness == Freshness::Fresh && policy.disk {
                        if let Some(disk) = &self.disk {
                            disk.put(key.id(), &stored).await;
                            self.set_curve_size(Tier::Disk, key, stored_bytes(&stored));
                        }
                    }
                    Some((value, freshness))
                }
                None => {
                    lookup(kind, TIER_SHARED, "invalid");
                    None
                }
            },
            Ok(None) => {
                lookup(kind, TIER_SHARED, "miss");
                None
            }
            Err(_) => {
                lookup(kind, TIER_SHARED, "error");
                None
            }
        }
    }

    /// Another pod holds the lease: poll Redis for its result until `fleet_wait` runs out.
    async fn wait_for_fleet<V: CacheValue>(
        &self,
        shared: &SharedTier,
        key: &CacheKey,
        stamp: &Stamp,
        policy: &KindPolicy,
    ) -> FleetWait<V> {
        let deadline = Instant::now() + self.config.fleet_wait;
        let poll = self.config.fleet_poll.max(Duration::from_millis(1));
        while Instant::now() < deadline {
            let jitter = rand::rng().random_range(0..=poll.as_millis() as u64 / 2);
            tokio::time::sleep(poll + Duration::from_millis(jitter)).await;
            if let Ok(Some(stored)) = shared.get(&key.id()).await {
                if usable(&stored.meta, &stored.key_text, key, stamp) == Some(Freshness::Fresh) {
                    let Some(value) = decode_value::<V>(stored.payload.clone()).await else {
                        return FleetWait::GaveUp;
                    };
                    let value = Arc::new(value);
                    lookup(key.kind().as_str(), TIER_SHARED, "hit");
                    self.promote_to_memory(key, policy, stored.meta.clone(), &value);
                    if policy.disk {
                        if let Some(disk) = &self.disk {
                            disk.put(key.id(), &stored).await;
                            self.set_curve_size(Tier::Disk, key, stored_bytes(&stored));
                        }
                    }
                    return FleetWait::Filled(value);
                }
            }
            // A lease we can take means the holder is gone without storing a value.
            match shared.try_lease(&key.id()).await {
                Ok(Some(lease)) => return FleetWait::LeaseFreed(lease),
                Ok(None) => {}
                Err(_) => return FleetWait::GaveUp,
            }
        }
        FleetWait::GaveUp
    }

    fn promote_to_memory<V: CacheValue>(
        &self,
        key: &CacheKey,
        policy: &KindPolicy,
        meta: EntryMeta,
        value: &Arc<V>,
    ) {
        if policy.memory {
            let entry = MemoryEntry {
                meta,
                key_text: Arc::from(key.text()),
                value: value.clone() as AnyValue,
                footprint: value.footprint(),
            };
            self.set_curve_size(Tier::Memory, key, entry.weight());
            self.memory.insert(key.id(), entry);
        }
    }

    /// A lookup of `key` reached `tier` (the curves' stream); `size` when the tier holds it.
    fn record_curve(&self, tier: Tier, key: &CacheKey, size: Option<u64>) {
        if let Some(curves) = &self.curves {
            let parent = FILLING.try_with(|parent| *parent).ok();
            curves.record(tier, key.kind().as_str(), &key.id(), size, parent.as_ref());
        }
    }

    /// Drops the memory entry of `key` that its lookup could not use; the fill that follows
    /// stores it again (the simulations mirror both).
    fn remove_invalid_from_memory(&self, key: &CacheKey) {
        self.memory.remove(&key.id());
        if let Some(curves) = &self.curves {
            curves.removed(Tier::Memory, &key.id(), true);
        }
    }

    fn set_curve_size(&self, tier: Tier, key: &CacheKey, size: u64) {
        if let Some(curves) = &self.curves {
            curves.set_size(tier, key.kind().as_str(), &key.id(), size);
        }
    }

    /// Writes a freshly loaded value into every tier of its policy — unless an invalidation
    /// happened since `stamp` was read. Waiters (if any) are answered before the slower writes.
    async fn store<V: CacheValue>(
        &self,
        key: &CacheKey,
        stamp: Stamp,
        policy: &KindPolicy,
        value: &Arc<V>,
        handle: Option<&FlightHandle>,
    ) {
        let answer = |handle: Option<&FlightHandle>| {
            if let Some(handle) = handle {
                handle.answer(FlightOutcome::Value(value.clone() as AnyValue));
            }
        };
        let current = self.invalidator.stamp(key);
        if current != stamp {
            tracing::debug!(kind = %key.kind(), "invalidated while loading; not storing");
            answer(handle);
            return;
        }
        let now = now_ms();
        let fresh_for = value.fresh_for(policy.fresh_for);
        let meta = EntryMeta {
            kind: key.kind().clone(),
            scope: key.scope().clone(),
            stamp,
            created_at_ms: now,
            fresh_until_ms: fresh_for.map(|fresh| now + fresh.as_millis() as u64),
            expires_at_ms: fresh_for
                .map(|fresh| now + (fresh + policy.stale_for).as_millis() as u64),
        };
        self.promote_to_memory(key, policy, meta.clone(), value);
        let shared = self
            .shared
            .as_ref()
            .filter(|shared| policy.shared && shared.is_available());
        let disk = self.disk.as_ref().filter(|_| policy.disk);
        if shared.is_none() && disk.is_none() {
            answer(handle);
            return;
        }
        // counted before the waiters are answered, so that whoever saw the answer also sees the
        // write-back still pending until it has landed (tests and operators wait on this gauge)
        let _pending = WritebackInFlight::start();
        answer(handle);
        let encode_value = value.clone();
        let payload = if encode_value.footprint() > BLOCKING_CODEC_BYTES {
            match odg_offload::run_cpu_bound(move || encode_value.encode()).await {
                Ok(payload) => payload,
                Err(_) => return,
            }
        } else {
            encode_value.encode()
        };
        let stored = StoredEntry {
            meta,
            key_text: key.text().to_string(),
            payload: Bytes::from(payload),
        };
        let size = stored_bytes(&stored);
        if let Some(shared) = shared {
            let _ = shared
                .put(&key.id(), &stored, policy.shared_ttl(fresh_for))
                .await;
            self.set_curve_size(Tier::Shared, key, size);
        }
        if let Some(disk) = disk {
            disk.put(key.id(), &stored).await;
            self.set_curve_size(Tier::Disk, key, size);
        }
    }
}
