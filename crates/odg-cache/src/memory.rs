//! The memory tier: decoded values shared by `Arc`, held under an honest byte bound by a
//! scan-resistant policy.
//!
//! # Why quick_cache
//!
//! `quick_cache::sync::Cache` gives everything this tier needs: u64 weights from a custom
//! [`Weighter`], removal by key (`remove_if`, so accounting happens under the shard lock),
//! purge by predicate (`retain`), and a [`Lifecycle`] hook that sees every entry leaving
//! through eviction or replacement (quick_cache 0.7.0 reports the replaced value through
//! `on_evict` too, though its docs say otherwise; the replacement test pins that). Its policy is a CLOCK-PRO variant close to S3-FIFO: new
//! entries enter a small cold queue and reach the hot (main) queue only when read again
//! while there, or when re-inserted while their id is still remembered as a ghost. A
//! one-pass scan therefore churns through the cold queue and leaves the hot set alone,
//! where a plain LRU would have replaced all of it. Writing a sharded S3-FIFO here would
//! duplicate that, so no side index or custom policy is kept.
//!
//! # The bound
//!
//! An entry weighs `footprint + key text + kind + scope strings + MEMORY_ENTRY_OVERHEAD_BYTES`
//! ([`MemoryEntry::weight`]). The structures that do not belong to one entry are reserved
//! up front: the ghost ids quick_cache remembers are capped by its `estimated_items_capacity`
//! (sized here as if entries were `ASSUMED_MEAN_ENTRY_BYTES`), so their slots are taken
//! off the weight capacity handed to quick_cache. Sharding splits the capacity evenly and
//! rounds each shard up, so the total is rounded down to a multiple of the shard count.
//! The sum of weights held therefore never exceeds `max_bytes`, and `bytes()` (kept in an
//! atomic, subtracted under the shard lock and added after the insert) never shows more
//! than is actually held.
//!
//! # Large entries
//!
//! An entry heavier than `max_bytes / 8` is not admitted (and an older value under its id is
//! dropped): admitting it would evict that many bytes of hot entries at once for one value
//! whose reuse is unknown, and the disk and shared tiers keep it anyway. The shard count is
//! capped at `MAX_SHARDS` so that every shard can hold such an entry (quick_cache would
//! otherwise refuse entries heavier than its per-shard hot queue silently).
//!
//! # Concurrency
//!
//! `get` takes one shard's read lock (no global lock), bumps the entry's CLOCK reference
//! atomically and clones an `Arc`. Writes take one shard's write lock. Gauges move by
//! deltas outside the locks, so several tiers in one process add up and a dropped tier
//! takes its share with it.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::mem::size_of;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use odg_mrc::QuickCacheShape;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use crate::entry::EntryMeta;
use crate::key::EntryId;
use crate::metrics::{
    BYTES, CAPACITY_BYTES, ENTRIES, EVICTIONS_TOTAL, OVERSIZE_SKIPPED_TOTAL, TIER_MEMORY,
};
use crate::selector::Selector;

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;

/// One decoded value as the memory tier keeps it.
///
/// `Clone` copies the metadata (the kind and scope strings: up to three small allocations)
/// and bumps two reference counts; the value itself is shared. [`MemoryTier::get_shared`]
/// avoids even that.
#[derive(Clone)]
pub struct MemoryEntry {
    pub meta: EntryMeta,
    pub key_text: Arc<str>,
    /// The decoded value, shared with callers (they downcast it).
    pub value: Arc<dyn Any + Send + Sync>,
    /// Bytes the decoded value holds on the heap and inline, as estimated by its owner.
    pub footprint: usize,
}

impl MemoryEntry {
    /// What this entry counts against the tier's bound: the value's footprint, the key text,
    /// the kind and scope strings (their capacity where it is visible), and the fixed
    /// per-entry overhead.
    pub fn weight(&self) -> u64 {
        let scope = &self.meta.scope;
        let strings = self.key_text.len()
            + self.meta.kind.as_str().len()
            + scope.component.as_ref().map_or(0, String::capacity)
            + scope.version.as_ref().map_or(0, String::capacity);
        (self.footprint as u64)
            .saturating_add(strings as u64)
            .saturating_add(MEMORY_ENTRY_OVERHEAD_BYTES as u64)
    }
}

impl fmt::Debug for MemoryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryEntry")
            .field("meta", &self.meta)
            .field("key_text", &self.key_text)
            .field("footprint", &self.footprint)
            .finish_non_exhaustive()
    }
}

/// Strong and weak counts in front of every `Arc` allocation.
const ARC_COUNTS_BYTES: usize = 2 * size_of::<usize>();
/// Allocator header and size-class rounding per small heap block (glibc: 8-byte header and
/// 16-byte rounding; jemalloc and mimalloc: size classes at most 32 bytes apart below 256).
const ALLOCATION_SLACK_BYTES: usize = 32;
/// One slot of quick_cache's slab: its entry enum (`Resident { id, IndexedEntry, state,
/// referenced }`, 40 bytes on 64-bit) plus two u32 list links = 48; 64 leaves room for layout
/// changes; the tests check it against the parts we can name.
const INDEX_SLOT_BYTES: usize = 64;
/// One hash-table bucket: a 4-byte slab token and a 1-byte control byte at a load factor of
/// at most 7/8, doubled because the table grows by powers of two.
const INDEX_BUCKET_BYTES: usize = 16;

/// Bytes counted for every entry on top of its footprint and strings (576 on 64-bit targets):
///
/// - the `Arc<MemoryEntry>` block the index holds: counts + `MemoryEntry` (192) + slack = 240;
/// - the heap blocks of the kind, component and version strings: slack only (their bytes are
///   counted separately), 3 x 32 = 96;
/// - the `Arc<str>` key text and the `Arc<dyn Any>` value blocks: counts + slack, 2 x 48 = 96
///   (the value's own bytes are its footprint);
/// - the policy's slot (key, value handle, CLOCK state, list links), doubled because the slab
///   is a `Vec` that grows by doubling and never shrinks: 2 x 64 = 128;
/// - the hash-table bucket: 16.
///
/// `tests::overhead_is_the_documented_number_and_covers_measured_sizes` pins the number and
/// checks it against `size_of` of everything it names.
pub const MEMORY_ENTRY_OVERHEAD_BYTES: usize =
    (ARC_COUNTS_BYTES + size_of::<MemoryEntry>() + ALLOCATION_SLACK_BYTES)
        + 3 * ALLOCATION_SLACK_BYTES
        + 2 * (ARC_COUNTS_BYTES + ALLOCATION_SLACK_BYTES)
        + 2 * INDEX_SLOT_BYTES
        + INDEX_BUCKET_BYTES;

/// quick_cache sizes its ghost list (ids of recently evicted entries) from an estimated
/// entry count; we estimate as if entries weighed this much. Smaller real entries only mean
/// a relatively shorter ghost list, never more memory.
const ASSUMED_MEAN_ENTRY_BYTES: u64 = 4096;
/// Ghost ids kept, as a fraction of the estimated entry count. S3-FIFO keeps as many ghosts
/// as the main queue holds entries; with quick_cache's default of 0.5 a hot set interleaved
/// with as many one-hit wonders sometimes never got promoted in the tests (its ids fell off
/// the ghost list before they were read again). The reserve this costs is about 3.5 % of
/// `max_bytes` (one `GHOST_SLOT_BYTES` per `ASSUMED_MEAN_ENTRY_BYTES`).
const GHOST_ALLOCATION: f64 = 1.0;
/// What one ghost costs: a slab slot (doubled for growth) and a bucket; reserved up front.
const GHOST_SLOT_BYTES: u64 = (2 * INDEX_SLOT_BYTES + INDEX_BUCKET_BYTES) as u64;
/// Share of each shard for the hot (main) queue; the rest is the cold (probation) queue.
/// S3-FIFO's 10 % small queue gives a new entry time for a second read before it is dropped
/// (quick_cache's 97 % default favours frequency more strongly).
const HOT_ALLOCATION: f64 = 0.9;
/// At most this many shards, so that one shard's hot queue (capacity / shards x 0.9) can
/// still take an entry of `max_bytes / ADMISSION_DIVISOR`.
const MAX_SHARDS: usize = 4;
/// Entries heavier than `max_bytes / ADMISSION_DIVISOR` are not admitted.
const ADMISSION_DIVISOR: u64 = 8;

/// What the tier hands quick_cache at a bound of `max_bytes` (see "The bound" above), and its
/// admission limit: one function for the tier and for the miniature simulations of it
/// (`odg-mrc`), so the two cannot drift apart.
pub fn quick_cache_shape(max_bytes: u64) -> QuickCacheShape {
    let estimated_entries = usize::try_from(max_bytes / ASSUMED_MEAN_ENTRY_BYTES)
        .unwrap_or(usize::MAX)
        .max(1);
    // quick_cache keeps at most ceil(estimate / shards) x GHOST_ALLOCATION ghosts per shard.
    let ghost_slots = ((estimated_entries as u64).saturating_add(MAX_SHARDS as u64) as f64
        * GHOST_ALLOCATION)
        .ceil() as u64;
    let ghost_reserve = ghost_slots.saturating_mul(GHOST_SLOT_BYTES).min(max_bytes);
    let shards = quick_cache_shards(estimated_entries);
    // Each shard gets ceil(capacity / shards): round down so that they sum to at most the bound.
    let shard_capacity = (max_bytes - ghost_reserve) / shards as u64;
    let shard_hot_capacity = (shard_capacity as f64 * HOT_ALLOCATION) as u64;
    QuickCacheShape {
        weight_capacity: shard_capacity * shards as u64,
        estimated_items: estimated_entries,
        hot_allocation: HOT_ALLOCATION,
        ghost_allocation: GHOST_ALLOCATION,
        max_entry_bytes: (max_bytes / ADMISSION_DIVISOR).min(shard_hot_capacity),
        shards,
    }
}

/// The shards quick_cache 0.7 makes of `MAX_SHARDS` asked for: it halves them until each
/// expects at least 32 items (`sync::Cache::with_options`); `new` checks this against the cache.
fn quick_cache_shards(estimated_entries: usize) -> usize {
    let mut shards = MAX_SHARDS.next_power_of_two();
    while estimated_entries.div_ceil(shards) < 32 && shards > 1 {
        shards /= 2;
    }
    shards
}

/// What the index holds per entry: the shared entry and its weight, computed once (the
/// weigher runs during eviction scans and must be cheap and stable).
#[derive(Clone)]
struct IndexedEntry {
    entry: Arc<MemoryEntry>,
    weight: u64,
}

#[derive(Clone)]
struct ByWeight;

impl Weighter<EntryId, IndexedEntry> for ByWeight {
    fn weight(&self, _id: &EntryId, indexed: &IndexedEntry) -> u64 {
        indexed.weight
    }
}

/// Running totals of what the index holds. Subtracted under the shard lock when an entry
/// leaves and added after an insert returns, so they never exceed what is held (they may
/// briefly read low, even below zero, which readers clamp).
#[derive(Default)]
struct Totals {
    bytes: AtomicI64,
    entries: AtomicI64,
}

impl Totals {
    fn add(&self, weight: u64) {
        self.bytes.fetch_add(weight as i64, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
    }

    fn subtract(&self, weight: u64) {
        self.bytes.fetch_sub(weight as i64, Ordering::Relaxed);
        self.entries.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sees every entry that leaves during an insert: evicted ones and the replaced value.
#[derive(Clone)]
struct Accounting {
    totals: Arc<Totals>,
}

/// What left the index during one insert; dropped after the shard lock is released.
#[derive(Default)]
struct Departed {
    /// The id being inserted: its previous value leaving is a replacement, not an eviction.
    inserting: Option<EntryId>,
    evictions: u64,
    bytes: u64,
    entries: u64,
    /// Values released after the lock (freeing a large decoded value takes time); beyond
    /// these few slots they are freed in place.
    deferred: [Option<IndexedEntry>; 4],
}

impl Lifecycle<EntryId, IndexedEntry> for Accounting {
    type RequestState = Departed;

    fn on_evict(&self, departed: &mut Departed, id: EntryId, indexed: IndexedEntry) {
        self.totals.subtract(indexed.weight);
        departed.bytes += indexed.weight;
        departed.entries += 1;
        if departed.inserting != Some(id) {
            departed.evictions += 1;
        }
        if let Some(slot) = departed.deferred.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(indexed);
        }
    }
}

struct Inner {
    index: Cache<EntryId, IndexedEntry, ByWeight, DefaultHashBuilder, Accounting>,
    totals: Arc<Totals>,
    max_bytes: u64,
    /// Heaviest entry admitted: `max_bytes / 8`, never more than a shard's hot queue.
    max_entry_bytes: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        metrics::gauge!(CAPACITY_BYTES, "tier" => TIER_MEMORY).decrement(self.max_bytes as f64);
        publish(
            -self.totals.bytes.load(Ordering::Relaxed),
            -self.totals.entries.load(Ordering::Relaxed),
        );
    }
}

/// Moves the byte and entry gauges by what the totals moved.
fn publish(bytes_delta: i64, entries_delta: i64) {
    if bytes_delta != 0 {
        metrics::gauge!(BYTES, "tier" => TIER_MEMORY).increment(bytes_delta as f64);
    }
    if entries_delta != 0 {
        metrics::gauge!(ENTRIES, "tier" => TIER_MEMORY).increment(entries_delta as f64);
    }
}

/// The in-process tier: byte-bounded, scan-resistant, sharded. Clones share one cache.
#[derive(Clone)]
pub struct MemoryTier {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTier")
            .field("max_bytes", &self.inner.max_bytes)
            .field("bytes", &self.bytes())
            .field("len", &self.len())
            .finish()
    }
}

impl MemoryTier {
    pub fn new(max_bytes: u64) -> MemoryTier {
        let shape = quick_cache_shape(max_bytes);
        #[allow(
            clippy::expect_used,
            reason = "build fails only for a missing capacity, and both are set just above"
        )]
        let options = OptionsBuilder::new()
            .shards(MAX_SHARDS)
            .hot_allocation(shape.hot_allocation)
            .ghost_allocation(shape.ghost_allocation)
            .estimated_items_capacity(shape.estimated_items)
            .weight_capacity(shape.weight_capacity)
            .build()
            .expect("every option is set");
        let totals = Arc::new(Totals::default());
        let accounting = Accounting {
            totals: totals.clone(),
        };
        let index =
            Cache::with_options(options, ByWeight, DefaultHashBuilder::default(), accounting);
        // Each shard gets ceil(capacity / shards); the shape rounded the capacity down to a
        // multiple of the shard count, so that the shards sum to at most the bound.
        debug_assert_eq!(index.num_shards(), shape.shards);
        debug_assert_eq!(index.capacity(), shape.weight_capacity);
        let max_entry_bytes = shape.max_entry_bytes;
        metrics::gauge!(CAPACITY_BYTES, "tier" => TIER_MEMORY).increment(max_bytes as f64);
        MemoryTier {
            inner: Arc::new(Inner {
                index,
                totals,
                max_bytes,
                max_entry_bytes,
            }),
        }
    }

    /// The entry under `id`, marking it as used. The caller checks `key_text` and freshness.
    pub fn get(&self, id: &EntryId) -> Option<MemoryEntry> {
        self.get_shared(id).map(|entry| MemoryEntry::clone(&entry))
    }

    /// Like [`MemoryTier::get`] without copying the metadata: one reference-count increment.
    pub fn get_shared(&self, id: &EntryId) -> Option<Arc<MemoryEntry>> {
        self.inner.index.get(id).map(|indexed| indexed.entry)
    }

    /// Stores `entry` under `id`, replacing any previous value and evicting what no longer fits.
    /// An entry heavier than [`MemoryTier::max_entry_bytes`] is not admitted and removes the
    /// previous value under `id`, so an outdated value is never left behind.
    pub fn insert(&self, id: EntryId, entry: MemoryEntry) {
        let weight = entry.weight();
        if weight > self.inner.max_entry_bytes {
            metrics::counter!(OVERSIZE_SKIPPED_TOTAL, "tier" => TIER_MEMORY).increment(1);
            self.remove(&id);
            return;
        }
        let mut departed = Departed {
            inserting: Some(id),
            ..Departed::default()
        };
        let indexed = IndexedEntry {
            entry: Arc::new(entry),
            weight,
        };
        self.inner
            .index
            .insert_with_lifecycle(id, indexed, &mut departed);
        self.inner.totals.add(weight);
        publish(
            weight as i64 - departed.bytes as i64,
            1 - departed.entries as i64,
        );
        if departed.evictions > 0 {
            metrics::counter!(EVICTIONS_TOTAL, "tier" => TIER_MEMORY).increment(departed.evictions);
        }
        // `departed` drops here, outside the shard lock, with the values it deferred.
    }

    /// Removes the entry under `id`; whether there was one.
    pub fn remove(&self, id: &EntryId) -> bool {
        let totals = &self.inner.totals;
        let removed = self.inner.index.remove_if(id, |indexed| {
            totals.subtract(indexed.weight);
            true
        });
        match removed {
            Some((_, indexed)) => {
                publish(-(indexed.weight as i64), -1);
                true
            }
            None => false,
        }
    }

    /// Removes every entry the selector matches; returns how many.
    /// Visits every entry (one shard write lock at a time, removed values freed under it)
    /// except for `Selector::Id`, which is a plain removal. Invalidations are rare; reads of
    /// other shards go on meanwhile.
    pub fn purge(&self, selector: &Selector) -> usize {
        self.purge_observed(selector, |_| {})
    }

    /// [`MemoryTier::purge`], calling `on_removed` with each id removed (under the shard lock:
    /// it must not touch this tier).
    pub fn purge_observed(&self, selector: &Selector, on_removed: impl Fn(&EntryId)) -> usize {
        if let Selector::Id(id) = selector {
            let removed = self.remove(id);
            if removed {
                on_removed(id);
            }
            return usize::from(removed);
        }
        let totals = &self.inner.totals;
        let removed_bytes = Cell::new(0u64);
        let removed_entries = Cell::new(0usize);
        self.inner.index.retain(|id, indexed| {
            if !selector.matches(id, &indexed.entry.meta) {
                return true;
            }
            totals.subtract(indexed.weight);
            on_removed(id);
            removed_bytes.set(removed_bytes.get() + indexed.weight);
            removed_entries.set(removed_entries.get() + 1);
            false
        });
        publish(
            -(removed_bytes.get() as i64),
            -(removed_entries.get() as i64),
        );
        removed_entries.get()
    }

    /// Current total weight of the entries held (at most `max_bytes`).
    pub fn bytes(&self) -> u64 {
        self.inner.totals.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn len(&self) -> usize {
        self.inner.totals.entries.load(Ordering::Relaxed).max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    /// The heaviest entry ([`MemoryEntry::weight`]) the tier admits: `max_bytes / 8`.
    pub fn max_entry_bytes(&self) -> u64 {
        self.inner.max_entry_bytes
    }
}
