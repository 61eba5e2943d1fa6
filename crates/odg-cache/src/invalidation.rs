//! Invalidation: bump a generation (in Redis when there is one), drop the selected entries from
//! this pod's tiers, and publish so every other pod does the same within moments.
//!
//! Pub/sub is fire-and-forget, so it is only the fast path: every pod re-reads all generations on
//! each (re)connect and every `resync_interval`, and an entry is valid only while its stamp equals
//! the current generations. A pod that missed a message therefore cannot serve the old value once
//! it has talked to Redis again.
//!
//! [`Invalidator`] owns this pod's generations (nothing else changes them) and holds handles of
//! exactly the tiers it purges or talks through; the tiered cache asks it for stamps and hands
//! invalidations, resyncs and generation syncs to it.

use crate::locks::RwLockExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::counter;
use serde::Serialize;

use crate::curves::{CacheCurves, Tier};
use crate::disk::DiskTier;
use crate::generations::{Generations, Stamp, ALL_FIELD, EPOCH_FIELD};
use crate::key::CacheKey;
use crate::memory::MemoryTier;
use crate::metrics::INVALIDATIONS_TOTAL;
use crate::selector::{Selector, SelectorMessage};
use crate::shared::{InvalidationMessage, SharedEvent, SharedTier};
use crate::CacheError;

const SNAPSHOT_FILE: &str = "generations.json";

/// What one invalidation did on this pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvalidationReport {
    /// Entries dropped from this pod's memory tier.
    pub memory_entries: usize,
    /// Entries dropped from this pod's disk tier.
    pub disk_entries: usize,
    /// Whether other pods were told (through Redis); false without a shared tier.
    pub published: bool,
}

/// This pod's own tiers, which an invalidation purges. Handles: they share the tiers with the
/// cache.
pub(crate) struct LocalTiers {
    pub(crate) memory: MemoryTier,
    pub(crate) disk: Option<DiskTier>,
    /// The memory tier's miniature simulations see its purges too.
    pub(crate) curves: Option<Arc<CacheCurves>>,
}

impl LocalTiers {
    /// Drops the local entries of every selector; returns (memory, disk) counts.
    async fn purge(&self, selectors: &[Selector]) -> (usize, usize) {
        let mut memory = 0;
        let mut disk = 0;
        for selector in selectors {
            let curves = self.curves.as_deref();
            memory += self.memory.purge_observed(selector, |id| {
                if let Some(curves) = curves {
                    curves.removed(Tier::Memory, id, false);
                }
            });
            if let Some(tier) = &self.disk {
                disk += tier.purge(selector).await;
            }
        }
        (memory, disk)
    }
}

/// Keeps this pod's generations and carries out invalidations: its own, other pods' (from
/// pub/sub) and those it learns of by resyncing with Redis.
pub(crate) struct Invalidator {
    generations: RwLock<Generations>,
    local: LocalTiers,
    shared: Option<SharedTier>,
    /// This pod's name in invalidation messages (its own are skipped when they come back).
    pod_id: String,
    /// Where the generations snapshot is kept across restarts; `None`: not kept.
    snapshot_directory: Option<PathBuf>,
}

impl Invalidator {
    /// Starts from the generations of the last run (or a fresh random epoch) and saves them at
    /// once: a freshly drawn epoch must survive a restart, or every entry on disk would be
    /// unusable after it.
    pub(crate) async fn open(
        local: LocalTiers,
        shared: Option<SharedTier>,
        pod_id: String,
        snapshot_directory: Option<PathBuf>,
    ) -> Invalidator {
        let generations = load_snapshot(snapshot_directory.as_deref()).await;
        let invalidator = Invalidator {
            generations: RwLock::new(generations),
            local,
            shared,
            pod_id,
            snapshot_directory,
        };
        invalidator.persist_snapshot().await;
        invalidator
    }

    /// The generations `key`'s entries are stamped with now.
    pub(crate) fn stamp(&self, key: &CacheKey) -> Stamp {
        self.generations.read_guard().stamp(key.kind(), key.scope())
    }

    /// See [`crate::TieredCache::invalidate`].
    pub(crate) async fn invalidate(
        &self,
        selector: &Selector,
    ) -> Result<InvalidationReport, CacheError> {
        let field = Generations::field_for(selector);
        let Some(shared) = &self.shared else {
            if field.is_some() {
                self.generations.write_guard().bump(selector);
                self.persist_snapshot().await;
            }
            let (memory_entries, disk_entries) =
                self.local.purge(std::slice::from_ref(selector)).await;
            counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "local")
                .increment(1);
            return Ok(InvalidationReport {
                memory_entries,
                disk_entries,
                published: false,
            });
        };

        // With Redis, Redis decides the new generation; this pod follows like every other.
        let redis_result = match &field {
            Some(field) => shared.bump_generation(field).await.map(Some),
            None => match selector {
                Selector::Id(id) => shared.delete(id).await.map(|()| None),
                _ => Ok(None),
            },
        };
        let mut selectors = vec![selector.clone()];
        let outcome = match redis_result {
            Ok(Some(fields)) => {
                let changed = self.generations.write_guard().replace_with(&fields);
                selectors.extend(changed);
                Ok(fields)
            }
            Ok(None) => Ok(self.generations.read_guard().fields()),
            Err(error) => {
                // Keep this pod correct at least: bump locally; the next resync realigns with Redis.
                if field.is_some() {
                    self.generations.write_guard().bump(selector);
                }
                Err(error)
            }
        };
        self.persist_snapshot().await;
        let (memory_entries, disk_entries) = self.local.purge(&selectors).await;
        counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "local")
            .increment(1);
        let fields = outcome?;
        // Only the epoch and the counter this invalidation raised travel: the hash grows with every
        // component version ever invalidated, and pods that miss a message resync the whole hash anyway.
        let generations = fields
            .into_iter()
            .filter(|(name, _)| name == EPOCH_FIELD || field.as_deref() == Some(name.as_str()))
            .collect();
        let message = InvalidationMessage {
            origin: self.pod_id.clone(),
            selector: SelectorMessage::from(selector),
            generations,
        };
        shared.publish(&message).await?;
        Ok(InvalidationReport {
            memory_entries,
            disk_entries,
            published: true,
        })
    }

    /// Re-reads every generation from Redis and drops what the differences invalidate.
    pub(crate) async fn resync(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        match shared.load_generations().await {
            Ok(fields) => {
                let changed = self.generations.write_guard().replace_with(&fields);
                if !changed.is_empty() {
                    tracing::info!(
                        changed = changed.len(),
                        "generations changed while away; dropping affected entries"
                    );
                    for selector in &changed {
                        counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "resync").increment(1);
                    }
                    self.local.purge(&changed).await;
                    self.persist_snapshot().await;
                }
            }
            Err(error) => tracing::debug!(%error, "generations resync failed; will retry"),
        }
    }

    /// See [`crate::TieredCache::sync_generations`]: reads the epoch, `all`, and the kind,
    /// component and version counters covering `keys`, and raises the local ones that are behind.
    pub(crate) async fn sync_for_keys(&self, keys: &[&CacheKey]) -> Result<(), CacheError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut fields = vec![EPOCH_FIELD.to_string(), ALL_FIELD.to_string()];
        for key in keys {
            let scope = key.scope();
            let mut selectors = vec![Selector::Kind(key.kind().clone())];
            if let Some(name) = &scope.component {
                selectors.push(Selector::component(name));
                if let Some(version) = &scope.version {
                    selectors.push(Selector::component_version(name, version));
                }
            }
            for selector in selectors {
                if let Some(field) = Generations::field_for(&selector) {
                    if !fields.contains(&field) {
                        fields.push(field);
                    }
                }
            }
        }
        let values = shared.read_generations(&fields).await?;
        let epoch = values.first().copied().unwrap_or(0);
        let local_epoch = self.generations.read_guard().epoch;
        if epoch != local_epoch {
            // Redis lost its hash (or this pod never synced): reload everything.
            self.resync().await;
            return Ok(());
        }
        let mut changed = Vec::new();
        {
            let mut generations = self.generations.write_guard();
            for (field, value) in fields.iter().zip(values) {
                if value > generations.get_field(field) {
                    if let Some(selector) = generations.set_field(field, value) {
                        changed.push(selector);
                    }
                }
            }
        }
        if !changed.is_empty() {
            for selector in &changed {
                counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "sync")
                    .increment(1);
            }
            self.local.purge(&changed).await;
            self.persist_snapshot().await;
        }
        Ok(())
    }

    /// Applies another pod's invalidation: raise the counters it raised, drop the selected entries.
    async fn apply_remote(&self, message: InvalidationMessage) {
        if message.origin == self.pod_id {
            return;
        }
        let Ok(selector) = Selector::try_from(&message.selector) else {
            tracing::warn!("ignoring an invalidation message with a malformed selector");
            return;
        };
        let epoch = message
            .generations
            .iter()
            .find(|(field, _)| field == EPOCH_FIELD)
            .map(|(_, value)| *value);
        let local_epoch = self.generations.read_guard().epoch;
        if epoch.is_some_and(|epoch| epoch != local_epoch) {
            self.resync().await;
            self.local.purge(&[selector]).await;
            return;
        }
        let mut selectors = vec![selector.clone()];
        {
            let mut generations = self.generations.write_guard();
            for (field, value) in &message.generations {
                // Messages may arrive out of order: counters only ever go up.
                if *value > generations.get_field(field) {
                    if let Some(changed) = generations.set_field(field, *value) {
                        selectors.push(changed);
                    }
                }
            }
        }
        self.local.purge(&selectors).await;
        self.persist_snapshot().await;
        counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "remote")
            .increment(1);
    }

    /// Listens for invalidations and (re)connects; resyncs on every connect and every
    /// `resync_interval`. Holds only a weak reference, so it ends when the cache is dropped.
    pub(crate) fn spawn_listener(self: &Arc<Self>, resync_interval: Duration) {
        let Some(shared) = &self.shared else {
            return;
        };
        let weak = Arc::downgrade(self);
        let mut events = shared.subscribe();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(resync_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let event = tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => Some(event),
                        None => break,
                    },
                    _ = ticker.tick() => None,
                };
                let Some(invalidator) = weak.upgrade() else {
                    break;
                };
                match event {
                    Some(SharedEvent::Invalidation(message)) => {
                        invalidator.apply_remote(message).await
                    }
                    Some(SharedEvent::Connected) | None => invalidator.resync().await,
                    Some(SharedEvent::Disconnected) => {
                        tracing::warn!("shared cache disconnected; serving from local tiers and origin until it is back");
                    }
                }
            }
        });
    }

    /// Writes the current generations atomically (temp file + rename) for the next start.
    async fn persist_snapshot(&self) {
        let Some(directory) = self.snapshot_directory.clone() else {
            return;
        };
        let fields = self.generations.read_guard().fields();
        let result = odg_offload::run_blocking_io(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&directory)?;
            let temporary =
                directory.join(format!(".{SNAPSHOT_FILE}.{:x}.tmp", rand::random::<u64>()));
            std::fs::write(
                &temporary,
                serde_json::to_vec(&fields).map_err(std::io::Error::other)?,
            )?;
            std::fs::rename(&temporary, directory.join(SNAPSHOT_FILE))
        })
        .await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::warn!("could not persist the cache generations snapshot");
        }
    }
}

/// The generations last known to this pod, or a fresh set with a random epoch: entries on disk
/// from an unknown past then never match, which is the safe side.
async fn load_snapshot(directory: Option<&Path>) -> Generations {
    let mut generations = Generations::default();
    if let Some(directory) = directory {
        if let Ok(text) = tokio::fs::read_to_string(directory.join(SNAPSHOT_FILE)).await {
            if let Ok(fields) = serde_json::from_str::<Vec<(String, u64)>>(&text) {
                generations.replace_with(&fields);
                return generations;
            }
        }
    }
    generations.set_field(EPOCH_FIELD, rand::random::<u64>() | 1);
    generations
}
