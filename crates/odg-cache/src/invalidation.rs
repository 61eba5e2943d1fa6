//! Invalidation: bump a generation (in Redis when there is one), drop the selected entries from
//! this pod's tiers, and publish so every other pod does the same within moments.
//!
//! Pub/sub is fire-and-forget, so it is only the fast path: every pod re-reads all generations on
//! each (re)connect and every `resync_interval`, and an entry is valid only while its stamp equals
//! the current generations. A pod that missed a message therefore cannot serve the old value once
//! it has talked to Redis again.

use crate::locks::RwLockExt;
use std::path::Path;
use std::sync::Arc;

use metrics::counter;
use serde::Serialize;

use crate::curves::Tier;
use crate::generations::Generations;
use crate::metrics::INVALIDATIONS_TOTAL;
use crate::selector::{Selector, SelectorMessage};
use crate::shared::{InvalidationMessage, SharedEvent};
use crate::tiered::TieredCache;
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

/// Drops the local entries of every selector; returns (memory, disk) counts.
async fn purge_local(cache: &TieredCache, selectors: &[Selector]) -> (usize, usize) {
    let mut memory = 0;
    let mut disk = 0;
    for selector in selectors {
        let curves = cache.inner.curves.as_ref();
        memory += cache.inner.memory.purge_observed(selector, |id| {
            if let Some(curves) = curves {
                curves.removed(Tier::Memory, id, false);
            }
        });
        if let Some(tier) = &cache.inner.disk {
            disk += tier.purge(selector).await;
        }
    }
    (memory, disk)
}

pub(crate) async fn invalidate(
    cache: &TieredCache,
    selector: &Selector,
) -> Result<InvalidationReport, CacheError> {
    let inner = &cache.inner;
    let field = Generations::field_for(selector);
    let Some(shared) = &inner.shared else {
        if field.is_some() {
            inner.generations.write_guard().bump(selector);
            persist_snapshot(cache).await;
        }
        let (memory_entries, disk_entries) =
            purge_local(cache, std::slice::from_ref(selector)).await;
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
            let changed = inner.generations.write_guard().replace_with(&fields);
            selectors.extend(changed);
            Ok(fields)
        }
        Ok(None) => Ok(inner.generations.read_guard().fields()),
        Err(error) => {
            // Keep this pod correct at least: bump locally; the next resync realigns with Redis.
            if field.is_some() {
                inner.generations.write_guard().bump(selector);
            }
            Err(error)
        }
    };
    persist_snapshot(cache).await;
    let (memory_entries, disk_entries) = purge_local(cache, &selectors).await;
    counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "local").increment(1);
    let fields = outcome?;
    // Only the epoch and the counter this invalidation raised travel: the hash grows with every
    // component version ever invalidated, and pods that miss a message resync the whole hash anyway.
    let generations = fields
        .into_iter()
        .filter(|(name, _)| {
            name == crate::generations::EPOCH_FIELD || field.as_deref() == Some(name.as_str())
        })
        .collect();
    let message = InvalidationMessage {
        origin: inner.config.pod_id.clone(),
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
pub(crate) async fn resync(cache: &TieredCache) {
    let Some(shared) = &cache.inner.shared else {
        return;
    };
    match shared.load_generations().await {
        Ok(fields) => {
            let changed = cache.inner.generations.write_guard().replace_with(&fields);
            if !changed.is_empty() {
                tracing::info!(
                    changed = changed.len(),
                    "generations changed while away; dropping affected entries"
                );
                for selector in &changed {
                    counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "resync").increment(1);
                }
                purge_local(cache, &changed).await;
                persist_snapshot(cache).await;
            }
        }
        Err(error) => tracing::debug!(%error, "generations resync failed; will retry"),
    }
}

/// See [`TieredCache::sync_generations`]: reads the epoch, `all`, and the kind, component and
/// version counters covering `keys`, and raises the local ones that are behind.
pub(crate) async fn sync_for_keys(
    cache: &TieredCache,
    keys: &[&crate::CacheKey],
) -> Result<(), CacheError> {
    let Some(shared) = &cache.inner.shared else {
        return Ok(());
    };
    let mut fields = vec![
        crate::generations::EPOCH_FIELD.to_string(),
        crate::generations::ALL_FIELD.to_string(),
    ];
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
    let local_epoch = cache.inner.generations.read_guard().epoch;
    if epoch != local_epoch {
        // Redis lost its hash (or this pod never synced): reload everything.
        resync(cache).await;
        return Ok(());
    }
    let mut changed = Vec::new();
    {
        let mut generations = cache.inner.generations.write_guard();
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
        purge_local(cache, &changed).await;
        persist_snapshot(cache).await;
    }
    Ok(())
}

/// Applies another pod's invalidation: raise the counters it raised, drop the selected entries.
async fn apply_remote(cache: &TieredCache, message: InvalidationMessage) {
    if message.origin == cache.inner.config.pod_id {
        return;
    }
    let Ok(selector) = Selector::try_from(&message.selector) else {
        tracing::warn!("ignoring an invalidation message with a malformed selector");
        return;
    };
    let epoch = message
        .generations
        .iter()
        .find(|(field, _)| field == crate::generations::EPOCH_FIELD)
        .map(|(_, value)| *value);
    let local_epoch = cache.inner.generations.read_guard().epoch;
    if epoch.is_some_and(|epoch| epoch != local_epoch) {
        resync(cache).await;
        purge_local(cache, &[selector]).await;
        return;
    }
    let mut selectors = vec![selector.clone()];
    {
        let mut generations = cache.inner.generations.write_guard();
        for (field, value) in &message.generations {
            // Messages may arrive out of order: counters only ever go up.
            if *value > generations.get_field(field) {
                if let Some(changed) = generations.set_field(field, *value) {
                    selectors.push(changed);
                }
            }
        }
    }
    purge_local(cache, &selectors).await;
    persist_snapshot(cache).await;
    counter!(INVALIDATIONS_TOTAL, "selector" => selector.label(), "origin" => "remote")
        .increment(1);
}

/// Listens for invalidations and (re)connects; resyncs on every connect and periodically.
/// Holds only a weak reference, so it ends when the cache is dropped.
pub(crate) fn spawn_listener(cache: &TieredCache) {
    let Some(shared) = cache.inner.shared.clone() else {
        return;
    };
    let weak = Arc::downgrade(&cache.inner);
    let interval = cache.inner.config.resync_interval;
    let mut events = shared.subscribe();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => Some(event),
                    None => break,
                },
                _ = ticker.tick() => None,
            };
            let Some(inner) = weak.upgrade() else { break };
            let cache = TieredCache { inner };
            match event {
                Some(SharedEvent::Invalidation(message)) => apply_remote(&cache, message).await,
                Some(SharedEvent::Connected) | None => resync(&cache).await,
                Some(SharedEvent::Disconnected) => {
                    tracing::warn!("shared cache disconnected; serving from local tiers and origin until it is back");
                }
            }
        }
    });
}

/// The generations last known to this pod, or a fresh set with a random epoch: entries on disk
/// from an unknown past then never match, which is the safe side.
pub(crate) async fn load_snapshot(directory: Option<&Path>) -> Generations {
    let mut generations = Generations::default();
    if let Some(directory) = directory {
        if let Ok(text) = tokio::fs::read_to_string(directory.join(SNAPSHOT_FILE)).await {
            if let Ok(fields) = serde_json::from_str::<Vec<(String, u64)>>(&text) {
                generations.replace_with(&fields);
                return generations;
            }
        }
    }
    generations.set_field(crate::generations::EPOCH_FIELD, rand::random::<u64>() | 1);
    generations
}

/// Writes the current generations atomically (temp file + rename) for the next start.
pub(crate) async fn persist_snapshot(cache: &TieredCache) {
    let Some(directory) = cache.inner.config.state_directory.clone() else {
        return;
    };
    let fields = cache.inner.generations.read_guard().fields();
    let result = odg_offload::run_blocking_io(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&directory)?;
        let temporary = directory.join(format!(".{SNAPSHOT_FILE}.{:x}.tmp", rand::random::<u64>()));
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
