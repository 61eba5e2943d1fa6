//! The mini caches against quick_cache itself run on the whole trace: equal when unsampled,
//! close when sampled; and their memory bound.

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, OptionsBuilder};

use super::*;
use crate::SampledCurve;

/// The memory tier's configuration in miniature (odg-cache's is tested against the tier itself).
fn shape(bound: u64) -> QuickCacheShape {
    QuickCacheShape {
        weight_capacity: bound,
        estimated_items: (bound / 4096).max(1) as usize,
        hot_allocation: 0.9,
        ghost_allocation: 1.0,
        max_entry_bytes: bound / 8,
        shards: 1,
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D049BB133111EB);
    x ^ (x >> 31)
}

/// Keys (uniform hashes) of a Zipf(0.9) trace over `keys` keys, with scan bursts over all keys
/// every `scan_every` lookups if given; deterministic.
fn zipf_trace(keys: u64, length: usize, scan_every: Option<usize>, seed: u64) -> Vec<u64> {
    let mut cumulative = Vec::with_capacity(keys as usize);
    let mut total = 0.0;
    for rank in 1..=keys {
        total += 1.0 / (rank as f64).powf(0.9);
        cumulative.push(total);
    }
    let mut state = seed;
    let mut trace = Vec::with_capacity(length);
    for position in 0..length {
        state = splitmix(state);
        let draw = (state >> 11) as f64 / (1u64 << 53) as f64 * total;
        let rank = cumulative.partition_point(|c| *c < draw) as u64;
        trace.push(splitmix(rank ^ seed));
        if scan_every.is_some_and(|every| position % every == every - 1) {
            trace.extend((0..keys).map(|rank| splitmix(rank ^ seed)));
        }
    }
    trace
}

/// Entry weights of 1..9 KiB, fixed per key.
fn weight_of(key: u64) -> u64 {
    1024 + (key >> 40) % (8 * 1024)
}

/// The tier's behaviour on quick_cache run on every key: look up, on a miss fill and insert
/// (not over the admission limit). Returns the misses at each bound.
fn real_misses(trace: &[u64], bounds: &[u64]) -> Vec<u64> {
    bounds
        .iter()
        .map(|bound| {
            let shape = shape(*bound);
            let options = OptionsBuilder::new()
                .shards(1)
                .hot_allocation(shape.hot_allocation)
                .ghost_allocation(shape.ghost_allocation)
                .estimated_items_capacity(shape.estimated_items)
                .weight_capacity(shape.weight_capacity)
                .build()
                .unwrap();
            let cache: Cache<u64, u64, ByWeight, DefaultHashBuilder> = Cache::with_options(
                options,
                ByWeight,
                DefaultHashBuilder::default(),
                Default::default(),
            );
            let mut misses = 0;
            for key in trace {
                if cache.get(key).is_none() {
                    misses += 1;
                    if weight_of(*key) <= shape.max_entry_bytes {
                        cache.insert(*key, weight_of(*key));
                    }
                }
            }
            misses
        })
        .collect()
}

/// Feeds `trace` to a curve as odg-cache does: the size is known on a hit, and stored after a
/// miss's fill.
fn simulate(curve: &SampledCurve, trace: &[u64]) {
    let mut held = std::collections::HashSet::new();
    for key in trace {
        let hit = held.contains(key);
        curve.record(*key, hit.then(|| weight_of(*key)));
        if !hit {
            curve.set_size(*key, weight_of(*key));
            held.insert(*key);
        }
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn unsampled_mini_caches_equal_quick_cache_on_the_whole_trace() {
    let bounds = [MIB / 2, MIB, 2 * MIB, 4 * MIB];
    for scans in [None, Some(2_000)] {
        let trace = zipf_trace(1_500, 10_000, scans, 7);
        // every key stays in the sample: rate 1, the simulations are exact
        let curve = SampledCurve::with_simulations(4_096, &bounds, shape, 0);
        simulate(&curve, &trace);
        let snapshot = curve.snapshot();
        assert_eq!(snapshot.sampling_rate, 1.0);
        let simulated: Vec<u64> = snapshot
            .simulated
            .iter()
            .map(|point| point.misses as u64)
            .collect();
        assert_eq!(simulated, real_misses(&trace, &bounds), "scans {scans:?}");
        // the simulations differ from LRU, or this test would not tell them apart
        let lru = snapshot.lru_miss_ratio_at(MIB as f64).unwrap();
        let real = snapshot.miss_ratio_at(MIB as f64).unwrap();
        assert!((lru - real).abs() > 0.01, "lru {lru} simulated {real}");
    }
}

#[test]
fn sampled_mini_caches_are_within_three_points_of_quick_cache_on_zipf_and_five_with_scans() {
    let bounds: Vec<u64> = [8, 16, 32, 64].iter().map(|mib| mib * MIB).collect();
    for (scans, tolerance) in [(None, 0.03), (Some(50_000), 0.05)] {
        let trace = zipf_trace(40_000, 200_000, scans, 11);
        let curve = SampledCurve::with_simulations(2_048, &bounds, shape, 0);
        simulate(&curve, &trace);
        let snapshot = curve.snapshot();
        assert!(snapshot.sampling_rate < 0.1, "{}", snapshot.sampling_rate);
        let real = real_misses(&trace, &bounds);
        for (point, real) in snapshot.simulated.iter().zip(real) {
            let predicted = point.misses / point.references;
            let measured = real as f64 / trace.len() as f64;
            eprintln!(
                "{} MiB, scans {scans:?}: predicted {predicted:.3}, quick_cache {measured:.3}",
                point.bytes / MIB as f64
            );
            assert!(
                (predicted - measured).abs() < tolerance,
                "{} MiB, scans {scans:?}: predicted {predicted:.3}, quick_cache {measured:.3}",
                point.bytes / MIB as f64
            );
        }
    }
}

#[test]
fn removals_and_pending_fills_mirror_the_tier() {
    let mut simulations = MiniSimulations::new(&[MIB], shape, 1.0, 2);
    // a first sighting: missed, weight unknown, inserted when the tier stores it
    simulations.lookup(1, None, Some(1), 1.0, None);
    simulations.inserted(1, 4096);
    simulations.lookup(1, Some(4096), Some(0), 1.0, None);
    // an invalid entry: removed and refilled
    simulations.removed(1, true);
    simulations.lookup(2, Some(4096), None, 1.0, None);
    simulations.inserted(1, 4096);
    simulations.lookup(1, Some(4096), None, 1.0, None);
    // an invalidation: removed, not refilled
    simulations.removed(1, false);
    simulations.inserted(1, 4096);
    simulations.lookup(1, None, None, 1.0, None);
    let total = simulations.points(None)[0];
    assert_eq!((total.references, total.misses), (5.0, 3.0));
    let kind_one = simulations.points(Some(1))[0];
    assert_eq!((kind_one.references, kind_one.misses), (1.0, 1.0));
    let kind_zero = simulations.points(Some(0))[0];
    assert_eq!((kind_zero.references, kind_zero.misses), (1.0, 0.0));
    assert!(simulations.points(Some(2)).is_empty());
}

#[test]
fn memory_stays_bounded() {
    // the worst case: every simulated size holds every sampled key, and ghosts of as many
    let bound = 64 * MIB;
    let bounds: Vec<u64> = default_scales()
        .iter()
        .map(|scale| (bound as f64 * scale) as u64)
        .collect();
    let curve = SampledCurve::with_simulations(
        crate::DEFAULT_MAX_SAMPLED_KEYS,
        &bounds,
        |bound| QuickCacheShape {
            estimated_items: (bound / 256) as usize,
            ..shape(bound)
        },
        4,
    );
    let trace: Vec<u64> = (0..50_000u64).map(splitmix).collect();
    for key in trace.iter().chain(&trace) {
        curve.record_in(*key, Some(300), Some((*key % 4) as usize), None);
    }
    let bytes = curve.simulation_memory_bytes();
    eprintln!("mini caches: {bytes} bytes for {} sizes", bounds.len());
    assert!(bytes < 3 << 20, "{bytes}");
}
