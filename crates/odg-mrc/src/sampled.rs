//! [`SampledCurve`]: the online engine. Fixed-size SHARDS: a key is sampled while its hash
//! residue `hash mod SPATIAL_MODULUS` is under the threshold; at most `max_keys` keys are
//! tracked, and when one more arrives the keys with the largest residues leave and the
//! threshold drops to theirs (the sampling rate is `threshold / SPATIAL_MODULUS`).
//!
//! Cost: a lookup of an unsampled key is one relaxed atomic load and a compare, plus one relaxed
//! counter increment (the stream's true reference count, for SHARDS-adj) — no lock, no
//! allocation. A sampled reference takes a mutex (uncontended unless two sampled lookups of
//! the same curve coincide), a hash-map probe and O(log n) Fenwick work; stamps are compacted
//! when they run out (O(n), every `max_keys` references at most: amortised O(1)).
//!
//! Sizes: a reference may not know its key's size yet (a miss: the value is not loaded); the
//! key is tracked with the size it had, or 0, and [`SampledCurve::set_size`] corrects it once the
//! tier stores the value. Counts are kept as estimates of the whole stream (each sampled
//! reference weighs `1 / rate` at the rate of its time), so curves of pods merge by addition.
//!
//! Simulations: a curve made [`SampledCurve::with_simulations`] also feeds its sample to
//! miniature simulations of a quick_cache tier (`minisim.rs`) under the same lock: they see
//! exactly the keys the reuse distances see, forget the keys that leave the sample and shrink
//! when the rate drops.

use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::curve::{bucket_index, Curve, BUCKETS};
use crate::fenwick::Fenwick;
use crate::minisim::{MiniSimulations, ShapeOfBound, SimulatedPoint};

/// Residues are taken modulo this (the low 24 bits of the hash): rates down to 1 in 16 Mi.
pub const SPATIAL_MODULUS: u64 = 1 << 24;
/// Keys tracked per curve by default: about 240 KiB per curve (map, heap, stamps, histogram),
/// under 5 MiB for every kind and tier.
pub const DEFAULT_MAX_SAMPLED_KEYS: usize = 2048;

fn residue(hash: u64) -> u64 {
    hash & (SPATIAL_MODULUS - 1)
}

#[derive(Debug)]
pub struct SampledCurve {
    /// Mirror of `State::threshold` read without the lock; only lowered.
    threshold: AtomicU64,
    /// Every reference, sampled or not: the snapshot is adjusted to it (SHARDS-adj). Without
    /// it, drawing or missing one very hot key shifts the whole curve (12 points on the Zipf
    /// test with 1024 keys; 2.5 with it).
    references: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct Tracked {
    stamp: usize,
    size: u64,
}

#[derive(Debug)]
struct State {
    max_keys: usize,
    threshold: u64,
    keys: HashMap<u64, Tracked>,
    /// (residue, hash) of every tracked key; the largest residues leave first.
    by_residue: BinaryHeap<(u64, u64)>,
    /// Byte weight of the key last referenced at each stamp (0 where none is).
    weights: Fenwick,
    /// The key last referenced at each stamp, for compaction.
    owners: Vec<Option<u64>>,
    next_stamp: usize,
    live_bytes: u64,
    histogram: Vec<f64>,
    references: f64,
    cold_references: f64,
    sampled_references: u64,
    simulations: Option<MiniSimulations>,
}

impl SampledCurve {
    /// A curve tracking at most `max_keys` keys (at least 1), starting at sampling rate 1.
    pub fn new(max_keys: usize) -> SampledCurve {
        SampledCurve::build(max_keys, None)
    }

    /// A curve that also runs miniature simulations of the quick_cache tier `shape` describes,
    /// at each of `bounds` (full-scale bytes), counting lookups in `slots` slots besides the total.
    pub fn with_simulations(
        max_keys: usize,
        bounds: &[u64],
        shape: ShapeOfBound,
        slots: usize,
    ) -> SampledCurve {
        SampledCurve::build(
            max_keys,
            Some(MiniSimulations::new(bounds, shape, 1.0, slots)),
        )
    }

    fn build(max_keys: usize, simulations: Option<MiniSimulations>) -> SampledCurve {
        let max_keys = max_keys.max(1);
        let stamps = 2 * max_keys + 2;
        SampledCurve {
            threshold: AtomicU64::new(SPATIAL_MODULUS),
            references: AtomicU64::new(0),
            state: Mutex::new(State {
                max_keys,
                threshold: SPATIAL_MODULUS,
                keys: HashMap::with_capacity(max_keys + 1),
                by_residue: BinaryHeap::with_capacity(max_keys + 1),
                weights: Fenwick::new(stamps),
                owners: vec![None; stamps],
                next_stamp: 0,
                live_bytes: 0,
                histogram: vec![0.0; BUCKETS],
                references: 0.0,
                cold_references: 0.0,
                sampled_references: 0,
                simulations,
            }),
        }
    }

    /// Whether `hash` is in the sample now: the only work done for a key that is not.
    #[inline]
    pub fn samples(&self, hash: u64) -> bool {
        residue(hash) < self.threshold.load(Ordering::Relaxed)
    }

    /// A reference to the key of `hash` (a uniform 64-bit hash of the key), of `size` bytes if known.
    #[inline]
    pub fn record(&self, hash: u64, size: Option<u64>) {
        self.record_in(hash, size, None, None);
    }

    /// Like [`SampledCurve::record`], counted in the simulations' `slot` too (a kind); `parent`:
    /// the hash of the key being loaded when this lookup was made (see `MiniSimulations::lookup`).
    #[inline]
    pub fn record_in(
        &self,
        hash: u64,
        size: Option<u64>,
        slot: Option<usize>,
        parent: Option<u64>,
    ) {
        self.references.fetch_add(1, Ordering::Relaxed);
        if self.samples(hash) {
            self.record_sampled(hash, size, slot, parent);
        }
    }

    /// The tier removed the key of `hash`; `refill`: it loads it again at once (see
    /// `MiniSimulations::removed`). Only the simulations care: reuse distances ignore removals.
    pub fn removed(&self, hash: u64, refill: bool) {
        if self.samples(hash) {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(simulations) = &mut state.simulations {
                simulations.removed(hash, refill);
            }
        }
    }

    /// The key of `hash` now weighs `size` bytes (its value was stored).
    #[inline]
    pub fn set_size(&self, hash: u64, size: u64) {
        if self.samples(hash) {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.set_size(hash, size);
        }
    }

    #[cold]
    fn record_sampled(
        &self,
        hash: u64,
        size: Option<u64>,
        slot: Option<usize>,
        parent: Option<u64>,
    ) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // the threshold may have dropped between the unlocked check and the lock
        if residue(hash) >= state.threshold {
            return;
        }
        state.reference(hash, size, slot, parent);
        self.threshold.store(state.threshold, Ordering::Relaxed);
    }

    pub fn sampling_rate(&self) -> f64 {
        self.threshold.load(Ordering::Relaxed) as f64 / SPATIAL_MODULUS as f64
    }

    /// References recorded, sampled or not.
    pub fn references(&self) -> u64 {
        self.references.load(Ordering::Relaxed)
    }

    /// The curve now, adjusted to the true reference count (SHARDS-adj).
    pub fn snapshot(&self) -> Curve {
        self.snapshot_unadjusted()
            .adjusted_to(self.references() as f64)
    }

    /// The curve of the sample alone (each reference weighted by the inverse rate of its time).
    pub fn snapshot_unadjusted(&self) -> Curve {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = state.rate();
        let mut curve = Curve::from_histogram(
            &state.histogram,
            state.references,
            state.cold_references,
            state.sampled_references,
            rate,
            state.live_bytes as f64 / rate,
        );
        if let Some(simulations) = &state.simulations {
            curve.simulated = simulations.points(None);
        }
        curve
    }

    /// The simulated points of the lookups counted in `slot` (estimates, not adjusted); empty
    /// without simulations.
    pub fn simulated_points(&self, slot: usize) -> Vec<SimulatedPoint> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .simulations
            .as_ref()
            .map(|simulations| simulations.points(Some(slot)))
            .unwrap_or_default()
    }

    /// Bytes the simulations' structures take (0 without).
    pub fn simulation_memory_bytes(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .simulations
            .as_ref()
            .map_or(0, MiniSimulations::memory_bytes)
    }
}

impl State {
    fn rate(&self) -> f64 {
        self.threshold as f64 / SPATIAL_MODULUS as f64
    }

    fn reference(
        &mut self,
        hash: u64,
        size: Option<u64>,
        slot: Option<usize>,
        parent: Option<u64>,
    ) {
        let weight = 1.0 / self.rate();
        self.references += weight;
        self.sampled_references += 1;
        if self.next_stamp == self.owners.len() {
            self.compact();
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let known_size = match self.keys.get(&hash) {
            Some(tracked) => size.unwrap_or(tracked.size),
            None => size.unwrap_or(0),
        };
        // before the reuse-distance update: a new key may leave the sample at once below, and
        // the simulations must forget it then
        if let Some(simulations) = &mut self.simulations {
            let known = (known_size > 0).then_some(known_size);
            simulations.lookup(hash, known, slot, weight, parent);
        }
        match self.keys.entry(hash) {
            Entry::Occupied(mut occupied) => {
                let tracked = occupied.get_mut();
                let own = size.unwrap_or(tracked.size);
                let between = self.weights.range(tracked.stamp + 1, stamp);
                let distance = (between.saturating_add(own)) as f64 * weight;
                self.histogram[bucket_index(distance)] += weight;
                self.weights
                    .add(tracked.stamp, 0u64.wrapping_sub(tracked.size));
                self.owners[tracked.stamp] = None;
                self.live_bytes = self.live_bytes - tracked.size + own;
                tracked.stamp = stamp;
                tracked.size = own;
                self.weights.add(stamp, own);
                self.owners[stamp] = Some(hash);
            }
            Entry::Vacant(vacant) => {
                self.cold_references += weight;
                let own = size.unwrap_or(0);
                vacant.insert(Tracked { stamp, size: own });
                self.weights.add(stamp, own);
                self.owners[stamp] = Some(hash);
                self.live_bytes += own;
                self.by_residue.push((residue(hash), hash));
                if self.keys.len() > self.max_keys {
                    self.lower_threshold();
                }
            }
        }
    }

    fn set_size(&mut self, hash: u64, size: u64) {
        if let Some(simulations) = &mut self.simulations {
            simulations.inserted(hash, size);
        }
        if let Some(tracked) = self.keys.get_mut(&hash) {
            self.weights
                .add(tracked.stamp, size.wrapping_sub(tracked.size));
            self.live_bytes = self.live_bytes - tracked.size + size;
            tracked.size = size;
        }
    }

    /// Drops the keys with the largest residue (all that share it) and lowers the threshold to it.
    fn lower_threshold(&mut self) {
        let Some(&(largest, _)) = self.by_residue.peek() else {
            return;
        };
        while let Some(&(residue, hash)) = self.by_residue.peek() {
            if residue < largest {
                break;
            }
            self.by_residue.pop();
            if let Some(simulations) = &mut self.simulations {
                simulations.forget(hash);
            }
            if let Some(tracked) = self.keys.remove(&hash) {
                self.weights
                    .add(tracked.stamp, 0u64.wrapping_sub(tracked.size));
                self.owners[tracked.stamp] = None;
                self.live_bytes -= tracked.size;
            }
        }
        self.threshold = largest;
        let rate = self.rate();
        if let Some(simulations) = &mut self.simulations {
            simulations.rescale(rate);
        }
    }

    /// Renumbers the live keys' stamps 0..n in order, freeing the stamps above.
    fn compact(&mut self) {
        let live: Vec<u64> = self.owners.iter().flatten().copied().collect();
        self.owners.iter_mut().for_each(|owner| *owner = None);
        self.weights.clear();
        for (stamp, hash) in live.iter().enumerate() {
            if let Some(tracked) = self.keys.get_mut(hash) {
                tracked.stamp = stamp;
                self.weights.add(stamp, tracked.size);
                self.owners[stamp] = Some(*hash);
            }
        }
        self.next_stamp = live.len();
    }
}
