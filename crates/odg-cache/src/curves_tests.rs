//! The memory tier's simulated curve against the memory tier itself: at a bound where
//! quick_cache makes one shard, the simulation at 1x counts exactly the tier's misses.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::entry::EntryMeta;
use crate::generations::Stamp;
use crate::key::{Kind, Scope};
use crate::memory::{MemoryEntry, MemoryTier};

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D049BB133111EB);
    x ^ (x >> 31)
}

/// Uniform ids, as SHA-256 gives them.
fn id(number: u64) -> EntryId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&splitmix(number).to_le_bytes());
    bytes[8..].copy_from_slice(&splitmix(!number).to_le_bytes());
    EntryId(bytes)
}

fn entry(kind: &str, number: u64) -> MemoryEntry {
    MemoryEntry {
        meta: EntryMeta {
            kind: Kind::new(kind).unwrap(),
            scope: Scope::none(),
            stamp: Stamp::default(),
            created_at_ms: 1,
            fresh_until_ms: None,
            expires_at_ms: None,
        },
        key_text: Arc::from(format!("key-{number}").as_str()),
        value: Arc::new(number),
        // 1..4 KiB, fixed per key
        footprint: 1024 + (splitmix(number) % 3072) as usize,
    }
}

/// Zipf(0.9) over `keys` keys with a scan of all of them every 1,000 lookups.
fn trace(keys: u64, length: usize) -> Vec<u64> {
    let cumulative: Vec<f64> = (1..=keys)
        .scan(0.0, |total, rank| {
            *total += 1.0 / (rank as f64).powf(0.9);
            Some(*total)
        })
        .collect();
    let total = cumulative[cumulative.len() - 1];
    let mut state = 3u64;
    let mut out = Vec::new();
    for position in 0..length {
        state = splitmix(state);
        let draw = (state >> 11) as f64 / (1u64 << 53) as f64 * total;
        out.push(cumulative.partition_point(|c| *c < draw) as u64);
        if position % 1000 == 999 {
            out.extend(0..keys);
        }
    }
    out
}

#[test]
fn simulation_at_the_bound_counts_the_memory_tiers_own_misses() {
    // 200 KiB: quick_cache makes one shard (fewer than 64 estimated entries), as the mini caches do
    let bound = 200 * 1024;
    assert_eq!(crate::memory::quick_cache_shape(bound).shards, 1);
    let tier = MemoryTier::new(bound);
    let policies = HashMap::from([
        ("descriptor".to_string(), KindPolicy::immutable()),
        ("versions".to_string(), KindPolicy::immutable()),
    ]);
    let curves = CacheCurves::new(&policies, 4096, bound, None, false);
    let mut misses = HashMap::<&str, u64>::new();
    let mut lookups = HashMap::<&str, u64>::new();
    for number in trace(300, 8_000) {
        // as `TieredCache::get_or_load`: look up, record, on a miss fill and store
        let kind = if number % 3 == 0 {
            "versions"
        } else {
            "descriptor"
        };
        let found = tier.get_shared(&id(number));
        curves.record(
            Tier::Memory,
            kind,
            &id(number),
            found.as_ref().map(|e| e.weight()),
            None,
        );
        *lookups.entry(kind).or_default() += 1;
        if found.is_none() {
            *misses.entry(kind).or_default() += 1;
            let stored = entry(kind, number);
            curves.set_size(Tier::Memory, kind, &id(number), stored.weight());
            tier.insert(id(number), stored);
        }
    }
    let report = curves.report();
    let memory = &report.tiers[0];
    assert_eq!(memory.tier, "memory");
    let at_bound = |kind: &str| {
        let curve = &memory.kinds.iter().find(|k| k.kind == kind).unwrap().curve;
        assert_eq!(curve.model(), "simulated");
        assert_eq!(curve.sampling_rate, 1.0);
        let point = curve
            .simulated
            .iter()
            .find(|point| point.bytes == bound as f64)
            .copied()
            .unwrap();
        (point.references as u64, point.misses as u64)
    };
    let total_misses = misses.values().sum::<u64>();
    let total_lookups = lookups.values().sum::<u64>();
    assert!(total_misses > total_lookups / 10 && total_misses < total_lookups * 9 / 10);
    assert_eq!(at_bound(ALL_KINDS), (total_lookups, total_misses));
    for kind in ["descriptor", "versions"] {
        assert_eq!(at_bound(kind), (lookups[kind], misses[kind]), "{kind}");
    }
    // the exported 1x point is that simulation
    let all = &memory.kinds[0].curve;
    let ratio = all.miss_ratio_at(bound as f64).unwrap();
    assert!((ratio - total_misses as f64 / total_lookups as f64).abs() < 1e-12);
}

#[test]
fn shape_matches_the_tier_quick_cache_builds_at_every_bound() {
    // `MemoryTier::new` asserts (in debug builds) that quick_cache made the shards and the
    // capacity the shape says; bounds across the shard-count steps
    for bound in [
        4096,
        100_000,
        258_048,
        300_000,
        520_000,
        1 << 20,
        256 << 20,
        8 << 30,
    ] {
        let tier = MemoryTier::new(bound);
        let shape = crate::memory::quick_cache_shape(bound);
        assert_eq!(tier.max_entry_bytes(), shape.max_entry_bytes);
        assert!(shape.weight_capacity <= bound);
    }
}

/// The validation benchmark's shape without HTTP: Zipf(0.9) over 500 keys of ~13 KiB. The
/// simulations of one pod at 1 MiB predict the real tier (4 shards, where the mini caches have
/// one) at 1 to 5 MiB within 2 points, when the stream does not depend on the bound (one kind).
#[test]
fn simulations_of_one_pod_predict_four_shard_tiers_at_other_bounds() {
    let keys = 500u64;
    let cumulative: Vec<f64> = (1..=keys)
        .scan(0.0, |total, rank| {
            *total += 1.0 / (rank as f64).powf(0.9);
            Some(*total)
        })
        .collect();
    let total = cumulative[cumulative.len() - 1];
    let mut state = 42u64;
    let trace: Vec<u64> = (0..12_000)
        .map(|_| {
            state = splitmix(state);
            let draw = (state >> 11) as f64 / (1u64 << 53) as f64 * total;
            cumulative.partition_point(|c| *c < draw) as u64
        })
        .collect();
    let stored = |number: u64| MemoryEntry {
        footprint: 12 * 1024,
        ..entry("descriptor", number)
    };
    let policies = HashMap::from([("descriptor".to_string(), KindPolicy::immutable())]);
    let mib = |count: u64| count << 20;
    let curves = CacheCurves::new(&policies, 4096, mib(1), None, false);
    let mut measured = Vec::new();
    for bound in [1, 2, 3, 5] {
        let tier = MemoryTier::new(mib(bound));
        assert_eq!(crate::memory::quick_cache_shape(mib(bound)).shards, 4);
        let mut misses = 0;
        for number in &trace {
            let found = tier.get_shared(&id(*number));
            if bound == 1 {
                let size = found.as_ref().map(|e| e.weight());
                curves.record(Tier::Memory, "descriptor", &id(*number), size, None);
            }
            if found.is_none() {
                misses += 1;
                if bound == 1 {
                    let weight = stored(*number).weight();
                    curves.set_size(Tier::Memory, "descriptor", &id(*number), weight);
                }
                tier.insert(id(*number), stored(*number));
            }
        }
        measured.push((bound, misses as f64 / trace.len() as f64));
    }
    let curve = curves.report().tiers[0].kinds[0].curve.clone();
    for (bound, measured) in measured {
        let predicted = curve.miss_ratio_at(mib(bound) as f64).unwrap();
        assert!(
            (predicted - measured).abs() < 0.02,
            "{bound} MiB: predicted {predicted:.3}, measured {measured:.3}"
        );
    }
}

/// Nested kinds, as `GET /ocm/component` makes them: a rendered answer's miss looks up its
/// descriptor in the same tier, so the tier's stream depends on its bound. With the parent
/// named, the simulations of a 1 MiB tier predict the real tiers at 2 to 5 MiB within 5 points.
#[test]
fn nested_lookups_reach_only_the_sizes_that_missed_their_parent() {
    let keys = 500u64;
    let cumulative: Vec<f64> = (1..=keys)
        .scan(0.0, |total, rank| {
            *total += 1.0 / (rank as f64).powf(0.9);
            Some(*total)
        })
        .collect();
    let total = cumulative[cumulative.len() - 1];
    let mut state = 42u64;
    let trace: Vec<u64> = (0..12_000)
        .map(|_| {
            state = splitmix(state);
            let draw = (state >> 11) as f64 / (1u64 << 53) as f64 * total;
            cumulative.partition_point(|c| *c < draw) as u64
        })
        .collect();
    // answers and descriptors of component n: ids n and n + keys
    let stored = |kind: &str, number: u64| MemoryEntry {
        footprint: 6 * 1024,
        ..entry(kind, number)
    };
    let policies = HashMap::from([
        ("answer".to_string(), KindPolicy::immutable()),
        ("descriptor".to_string(), KindPolicy::immutable()),
    ]);
    let mib = |count: u64| count << 20;
    let unnested = CacheCurves::new(&policies, 4096, mib(1), None, false);
    let nested = CacheCurves::new(&policies, 4096, mib(1), None, false);
    let mut measured = Vec::new();
    for bound in [1, 2, 3, 5] {
        let tier = MemoryTier::new(mib(bound));
        let (mut lookups, mut misses) = (0u64, 0u64);
        let look_up = |kind: &str, number: u64, parent: Option<u64>, misses: &mut u64| {
            let found = tier.get_shared(&id(number));
            if bound == 1 {
                let size = found.as_ref().map(|e| e.weight());
                let parent = parent.map(id);
                unnested.record(Tier::Memory, kind, &id(number), size, None);
                nested.record(Tier::Memory, kind, &id(number), size, parent.as_ref());
            }
            if found.is_none() {
                *misses += 1;
            }
            found.is_none()
        };
        let store = |kind: &str, number: u64| {
            let entry = stored(kind, number);
            if bound == 1 {
                for curves in [&unnested, &nested] {
                    curves.set_size(Tier::Memory, kind, &id(number), entry.weight());
                }
            }
            tier.insert(id(number), entry);
        };
        for number in &trace {
            lookups += 1;
            if look_up("answer", *number, None, &mut misses) {
                lookups += 1;
                if look_up("descriptor", number + keys, Some(*number), &mut misses) {
                    store("descriptor", number + keys);
                }
                store("answer", *number);
            }
        }
        measured.push((bound, misses as f64 / lookups as f64));
    }
    let all = |curves: &CacheCurves| curves.report().tiers[0].kinds[0].curve.clone();
    let (unnested, nested) = (all(&unnested), all(&nested));
    let mut unnested_error = 0.0f64;
    for (bound, measured) in measured {
        let predicted = nested.miss_ratio_at(mib(bound) as f64).unwrap();
        eprintln!(
            "{bound} MiB: nested {predicted:.3}, unnested {:.3}, measured {measured:.3}",
            unnested.miss_ratio_at(mib(bound) as f64).unwrap()
        );
        assert!(
            (predicted - measured).abs() < 0.05,
            "{bound} MiB: predicted {predicted:.3}, measured {measured:.3}"
        );
        let unnested = unnested.miss_ratio_at(mib(bound) as f64).unwrap();
        unnested_error = unnested_error.max((unnested - measured).abs());
    }
    // without the parent the same simulations are off by more: the test tells them apart
    assert!(unnested_error > 0.05, "{unnested_error}");
}
