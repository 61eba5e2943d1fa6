//! Miniature simulations (Waldspurger, Saemundsson, Ahmad, Park: "Cache Modeling and
//! Optimization using Miniature Simulations", USENIX ATC 2017): the miss ratio of a
//! quick_cache tier at several byte bounds, each from a scaled-down instance of quick_cache
//! itself, fed only the spatially sampled keys and given the bound times the sampling rate.
//!
//! # Why not the LRU stack distances alone
//!
//! The memory tier is quick_cache (CLOCK-PRO close to S3-FIFO: a probation queue, ghosts,
//! frequency bits); it keeps hot keys through one-hit wonders and scans far better than LRU,
//! so the LRU curve over-predicted its misses by up to 25 points (BENCHMARKS.md, issue 15).
//! A mini cache runs the real policy: no model of it to keep true.
//!
//! # What a mini cache mirrors
//!
//! [`QuickCacheShape`] is what the real tier hands quick_cache at a given bound (weight
//! capacity after its reserves, estimated items for the ghost list, hot and ghost allocation,
//! the tier's own admission limit); the caller computes it with the code that configures the
//! real tier. A mini cache has one shard: the real tier's shards each see a hash-partitioned
//! slice of the keys with a slice of the capacity, which is itself spatial sampling, so one
//! shard at `capacity x rate` models them; several shards at a scaled capacity would each be
//! too small. Keys only: the value is the entry's weight.
//!
//! The real tier inserts after a fill, and only after a miss: a mini cache that misses inserts
//! the key at once with its last known weight (a key seen for the first time has none: it is
//! inserted when the tier stores the value, [`MiniSimulations::inserted`]); a mini cache that
//! hits inserts nothing, even though the real tier (at another size) may have missed and filled.
//! A removal by the tier (an invalid entry, an invalidation) removes the key everywhere.
//!
//! Nested lookups: the tier's stream depends on its own hits where loading one key looks up
//! another in the same tier (a rendered answer's miss looks up its descriptor). A lookup made
//! while loading a simulated parent reaches only the mini caches that missed the parent, as the
//! real tier of that size would have made it only there. The converse is not simulated: where a
//! mini cache missed a parent the real tier hit, the lookups its loading would make are unknown,
//! so smaller sizes are predicted a little optimistic. The filter needs the parent in the sample
//! too (both hashes under the threshold): at rate 1 always, at rate r for about r of the nested
//! lookups; the others reach every mini cache as before.
//! Not mirrored: a store without a lookup before it (a refresh that skips the cache) inserts
//! nothing, and a store of a key a mini cache holds (a stale entry's refill) corrects its
//! weight without the reference bump quick_cache's replacing insert gives; both are rare next to
//! lookups. An entry the tier found unusable counts as a hit in the mini caches that held it.
//!
//! # Bounds
//!
//! Each mini cache holds at most the sampled keys plus its ghosts (quick_cache's ghost list is
//! capped by its estimated item count, scaled like the capacity): with the default sample of
//! 2,048 keys and 21 sizes, about 2.1 MiB in all (2,202,933 bytes measured by
//! `tests::memory_stays_bounded`, which asserts under 3 MiB). Only sampled lookups reach them;
//! the caller holds the curve's lock.

use std::collections::HashMap;

use quick_cache::unsync::Cache;
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};
use serde::{Deserialize, Serialize};

/// What the real tier hands quick_cache at one byte bound (its whole configuration that bears
/// on what stays cached).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuickCacheShape {
    /// Weight capacity over all shards (the bound less the tier's reserves).
    pub weight_capacity: u64,
    /// `estimated_items_capacity` over all shards: it caps the ghost list.
    pub estimated_items: usize,
    pub hot_allocation: f64,
    pub ghost_allocation: f64,
    /// Heavier entries are not admitted by the tier, and an older value of the key is dropped.
    pub max_entry_bytes: u64,
    /// Shards of the real tier (quick_cache may use fewer than asked for small caches); the
    /// mini caches use one, see the module docs. Reported, not simulated.
    pub shards: usize,
}

/// The configuration of the tier at a bound in bytes.
pub type ShapeOfBound = fn(u64) -> QuickCacheShape;

/// One simulated size: estimated references and misses of the whole stream at `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimulatedPoint {
    /// The full-scale bound simulated.
    pub bytes: f64,
    /// Estimated references (each sampled one counts `1 / rate`); after SHARDS-adj, the true count.
    pub references: f64,
    /// Estimated misses.
    pub misses: f64,
}

impl SimulatedPoint {
    pub fn miss_ratio(&self) -> Option<f64> {
        (self.references > 0.0).then(|| (self.misses / self.references).clamp(0.0, 1.0))
    }
}

/// The simulated bounds as multiples of the configured one: quarter doublings from 0.25x to
/// 8x (21 sizes), so the exported scales 0.25, 0.5, 1, 2, 4 and 8 are simulated exactly and
/// the advisor interpolates over at most a 19 % step.
pub fn default_scales() -> Vec<f64> {
    (-8..=12)
        .map(|step| (f64::from(step) / 4.0).exp2())
        .collect()
}

#[derive(Clone)]
struct ByWeight;

impl Weighter<u64, u64> for ByWeight {
    fn weight(&self, _key: &u64, weight: &u64) -> u64 {
        *weight
    }
}

/// (references, misses) per counting slot.
type Counts = [f64; 2];

struct MiniCache {
    /// The full-scale bound simulated, and the tier's configuration there.
    bytes: u64,
    shape: QuickCacheShape,
    cache: Cache<u64, u64, ByWeight, DefaultHashBuilder>,
    /// Slot 0: every lookup; slot `1 + s`: the lookups the caller put in slot `s` (a kind).
    counts: Vec<Counts>,
}

impl MiniCache {
    fn new(bytes: u64, shape: QuickCacheShape, rate: f64, slots: usize) -> MiniCache {
        let (weight_capacity, estimated_items) = scaled(&shape, rate);
        #[allow(
            clippy::expect_used,
            reason = "build fails only for a missing capacity, and both are set here"
        )]
        let options = OptionsBuilder::new()
            .shards(1)
            .hot_allocation(shape.hot_allocation)
            .ghost_allocation(shape.ghost_allocation)
            .estimated_items_capacity(estimated_items)
            .weight_capacity(weight_capacity)
            .build()
            .expect("every option is set");
        MiniCache {
            bytes,
            shape,
            cache: Cache::with_options(
                options,
                ByWeight,
                DefaultHashBuilder::default(),
                Default::default(),
            ),
            counts: vec![[0.0; 2]; slots + 1],
        }
    }

    /// The tier's insert: not admitted over its limit (and the older value goes).
    fn admit(&mut self, key: u64, weight: u64) {
        if weight > self.shape.max_entry_bytes {
            self.cache.remove(&key);
        } else {
            self.cache.insert(key, weight);
        }
    }
}

/// Capacity and estimated items of a mini cache at sampling rate `rate`.
fn scaled(shape: &QuickCacheShape, rate: f64) -> (u64, usize) {
    let capacity = (shape.weight_capacity as f64 * rate).round() as u64;
    let items = (shape.estimated_items as f64 * rate).round() as usize;
    (capacity.max(1), items.max(1))
}

/// The mini caches of one sampled stream, one per simulated bound.
pub struct MiniSimulations {
    minis: Vec<MiniCache>,
    /// Keys seen for the first time (weight unknown) per mini cache that missed them, as a
    /// bit set over `minis`: they are inserted when the tier stores the value.
    pending: HashMap<u64, u32>,
    /// Per key, the mini caches its last lookup missed in: a lookup made while loading that key
    /// (a nested kind: a rendered answer's descriptor) happens only there.
    missed_by: HashMap<u64, u32>,
    slots: usize,
}

impl std::fmt::Debug for MiniSimulations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniSimulations")
            .field(
                "bytes",
                &self.minis.iter().map(|m| m.bytes).collect::<Vec<_>>(),
            )
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// At most this many simulated sizes (the pending bit set is a `u32`).
pub const MAX_SIMULATED_SIZES: usize = 32;

impl MiniSimulations {
    /// Mini caches at each of `bounds` (full-scale bytes, at most [`MAX_SIMULATED_SIZES`]),
    /// configured by `shape`, at sampling rate `rate`; lookups may be counted in `slots` slots
    /// besides the total.
    pub fn new(bounds: &[u64], shape: ShapeOfBound, rate: f64, slots: usize) -> MiniSimulations {
        let minis = bounds
            .iter()
            .take(MAX_SIMULATED_SIZES)
            .map(|bytes| MiniCache::new(*bytes, shape(*bytes), rate, slots))
            .collect();
        MiniSimulations {
            minis,
            pending: HashMap::new(),
            missed_by: HashMap::new(),
            slots,
        }
    }

    /// A lookup of `key` (weight `weight` if known), counted with `weight_of_reference` (the
    /// inverse sampling rate) in the total and in `slot` if given. `parent`: the key being loaded
    /// when this lookup was made; if it is simulated, only the mini caches that missed it see
    /// this lookup (the others would not have loaded it).
    pub fn lookup(
        &mut self,
        key: u64,
        weight: Option<u64>,
        slot: Option<usize>,
        weight_of_reference: f64,
        parent: Option<u64>,
    ) {
        let slot = slot.filter(|slot| *slot < self.slots).map(|slot| slot + 1);
        let only = parent.and_then(|parent| self.missed_by.get(&parent).copied());
        let mut pending = 0u32;
        let mut missed = 0u32;
        for (index, mini) in self.minis.iter_mut().enumerate() {
            if only.is_some_and(|only| only & (1 << index) == 0) {
                continue;
            }
            let hit = mini.cache.get(&key).is_some();
            if !hit {
                missed |= 1 << index;
            }
            for counted in std::iter::once(0).chain(slot) {
                let counts = &mut mini.counts[counted];
                counts[0] += weight_of_reference;
                if !hit {
                    counts[1] += weight_of_reference;
                }
            }
            if !hit {
                match weight {
                    Some(weight) => mini.admit(key, weight),
                    None => pending |= 1 << index,
                }
            }
        }
        if pending != 0 {
            *self.pending.entry(key).or_insert(0) |= pending;
        }
        self.missed_by.insert(key, missed);
    }

    /// The tier stored `key` at `weight` (after a fill): inserted where a miss awaits it; where
    /// it is held, its weight is corrected without touching its recency or frequency.
    pub fn inserted(&mut self, key: u64, weight: u64) {
        let pending = self.pending.remove(&key).unwrap_or(0);
        for (index, mini) in self.minis.iter_mut().enumerate() {
            if pending & (1 << index) != 0 {
                mini.admit(key, weight);
            } else if mini.cache.peek(&key).is_some_and(|held| *held != weight) {
                if weight > mini.shape.max_entry_bytes {
                    mini.cache.remove(&key);
                } else if let Some(mut held) = mini.cache.peek_mut(&key) {
                    *held = weight;
                }
            }
        }
    }

    /// The tier removed `key`; `refill`: it is loading it again (an invalid entry), so every mini
    /// cache inserts it when the tier stores it.
    pub fn removed(&mut self, key: u64, refill: bool) {
        for mini in &mut self.minis {
            mini.cache.remove(&key);
        }
        if refill && !self.minis.is_empty() {
            self.pending
                .insert(key, u32::MAX >> (32 - self.minis.len()));
        } else {
            self.pending.remove(&key);
        }
    }

    /// `key` left the sample (the rate dropped): it is no longer simulated.
    pub fn forget(&mut self, key: u64) {
        self.removed(key, false);
        self.missed_by.remove(&key);
    }

    /// The sampling rate is now `rate`: every mini cache shrinks to its bound times it.
    pub fn rescale(&mut self, rate: f64) {
        for mini in &mut self.minis {
            let (capacity, _) = scaled(&mini.shape, rate);
            mini.cache.set_capacity(capacity);
        }
    }

    /// The points of the total (`slot` `None`) or of one slot, by increasing size.
    pub fn points(&self, slot: Option<usize>) -> Vec<SimulatedPoint> {
        let counted = match slot {
            None => 0,
            Some(slot) if slot < self.slots => slot + 1,
            Some(_) => return Vec::new(),
        };
        self.minis
            .iter()
            .map(|mini| SimulatedPoint {
                bytes: mini.bytes as f64,
                references: mini.counts[counted][0],
                misses: mini.counts[counted][1],
            })
            .collect()
    }

    /// Bytes held by the mini caches' structures (slabs and hash tables) and the pending set.
    pub fn memory_bytes(&self) -> usize {
        self.minis
            .iter()
            .map(|mini| mini.cache.memory_used().total())
            .sum::<usize>()
            + (self.pending.capacity() + self.missed_by.capacity())
                * (std::mem::size_of::<(u64, u32)>() + 1)
    }
}

#[cfg(test)]
#[path = "minisim_tests.rs"]
mod tests;
