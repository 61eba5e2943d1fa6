//! Tests of the memory tier: the byte bound under concurrency, scan resistance, purges,
//! admission, and the gauges it publishes.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::thread;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::generations::Stamp;
use crate::key::{Kind, Scope};

fn id(number: u64) -> EntryId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&number.to_le_bytes());
    bytes[8..].copy_from_slice(&number.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    EntryId(bytes)
}

fn entry(kind: &str, scope: Scope, key_text: &str, footprint: usize) -> MemoryEntry {
    MemoryEntry {
        meta: EntryMeta {
            kind: Kind::new(kind).unwrap(),
            scope,
            stamp: Stamp::default(),
            created_at_ms: 1,
            fresh_until_ms: None,
            expires_at_ms: None,
        },
        key_text: Arc::from(key_text),
        value: Arc::new(key_text.to_string()),
        footprint,
    }
}

fn plain(number: u64, footprint: usize) -> MemoryEntry {
    entry(
        "descriptor",
        Scope::none(),
        &format!("key-{number}"),
        footprint,
    )
}

/// What the index holds, summed entry by entry.
fn held(tier: &MemoryTier) -> (u64, usize) {
    let mut bytes = 0;
    let mut count = 0;
    for (_, indexed) in tier.inner.index.iter() {
        assert_eq!(indexed.weight, indexed.entry.weight());
        bytes += indexed.weight;
        count += 1;
    }
    (bytes, count)
}

fn assert_totals_match_index(tier: &MemoryTier) {
    let (bytes, count) = held(tier);
    assert_eq!(tier.bytes(), bytes);
    assert_eq!(tier.len(), count);
    assert_eq!(tier.inner.index.weight(), bytes);
    assert_eq!(tier.inner.index.len(), count);
}

#[test]
fn overhead_is_the_documented_number_and_covers_measured_sizes() {
    #[cfg(target_pointer_width = "64")]
    assert_eq!(MEMORY_ENTRY_OVERHEAD_BYTES, 576);
    // The parts of quick_cache's slab slot we can name: key, value handle, u16 reference
    // count, u8 state (the enum tag lives in its niche), two u32 links.
    let slot = size_of::<EntryId>() + size_of::<IndexedEntry>() + 2 + 1 + 2 * 4;
    assert!(slot.next_multiple_of(8) <= INDEX_SLOT_BYTES, "slot {slot}");
    let measured = (ARC_COUNTS_BYTES + size_of::<MemoryEntry>())
        + 2 * ARC_COUNTS_BYTES
        + 2 * slot.next_multiple_of(8)
        + 2 * (4 + 1);
    assert!(
        measured <= MEMORY_ENTRY_OVERHEAD_BYTES,
        "measured {measured}"
    );
}

#[test]
fn weight_counts_footprint_strings_and_overhead() {
    let sample = entry(
        "descriptor",
        Scope::component_version("acme.org/a", "1.0.0"),
        "3:abc;",
        1000,
    );
    let expected = 1000 + "3:abc;".len() + "descriptor".len() + "acme.org/a".len() + "1.0.0".len();
    assert_eq!(
        sample.weight(),
        (expected + MEMORY_ENTRY_OVERHEAD_BYTES) as u64
    );
    let mut huge = sample.clone();
    huge.footprint = usize::MAX;
    assert!(
        huge.weight() >= usize::MAX as u64,
        "saturates instead of wrapping"
    );
}

#[test]
fn insert_get_replace_remove() {
    let tier = MemoryTier::new(1 << 20);
    assert!(tier.get(&id(1)).is_none());
    let first = plain(1, 100);
    let first_weight = first.weight();
    tier.insert(id(1), first);
    let got = tier.get(&id(1)).expect("inserted");
    assert_eq!(&*got.key_text, "key-1");
    assert_eq!(
        got.value.downcast_ref::<String>().map(String::as_str),
        Some("key-1")
    );
    assert!(
        Arc::ptr_eq(&got.value, &tier.get_shared(&id(1)).unwrap().value),
        "value is shared"
    );
    assert_eq!((tier.bytes(), tier.len()), (first_weight, 1));

    let second = plain(1, 5000);
    let second_weight = second.weight();
    tier.insert(id(1), second);
    assert_eq!(tier.get(&id(1)).unwrap().footprint, 5000);
    assert_eq!(
        (tier.bytes(), tier.len()),
        (second_weight, 1),
        "replacement swaps the weight"
    );

    assert!(tier.remove(&id(1)));
    assert!(!tier.remove(&id(1)));
    assert!(tier.get(&id(1)).is_none());
    assert_eq!((tier.bytes(), tier.len()), (0, 0));
    assert!(tier.is_empty());
    assert_totals_match_index(&tier);
}

#[test]
fn entries_heavier_than_an_eighth_are_not_admitted() {
    let max_bytes = 1 << 20;
    let tier = MemoryTier::new(max_bytes);
    assert_eq!(tier.max_entry_bytes(), max_bytes / 8);
    let fitting_footprint = |sample: &MemoryEntry| {
        (max_bytes / 8 - (sample.weight() - sample.footprint as u64)) as usize
    };

    let at_limit = plain(1, 0);
    let footprint = fitting_footprint(&at_limit);
    tier.insert(id(1), plain(1, footprint));
    assert_eq!(
        tier.get(&id(1)).unwrap().weight(),
        max_bytes / 8,
        "exactly an eighth is admitted"
    );

    tier.insert(id(2), plain(2, footprint + 1));
    assert!(tier.get(&id(2)).is_none(), "one byte more is not");
    assert!(tier.get(&id(1)).is_some(), "and it evicted nothing");

    tier.insert(id(1), plain(1, footprint + 1));
    assert!(
        tier.get(&id(1)).is_none(),
        "an oversize update drops the outdated value"
    );
    assert_eq!((tier.bytes(), tier.len()), (0, 0));
    assert_totals_match_index(&tier);

    let nothing = MemoryTier::new(0);
    nothing.insert(id(1), plain(1, 0));
    assert_eq!(
        (nothing.len(), nothing.max_entry_bytes()),
        (0, 0),
        "a zero bound admits nothing"
    );
}

#[test]
fn purge_by_every_selector_kind() {
    let tier = MemoryTier::new(1 << 20);
    let entries = [
        (
            1,
            entry(
                "descriptor",
                Scope::component_version("acme.org/a", "1.0"),
                "a1",
                10,
            ),
        ),
        (
            2,
            entry(
                "descriptor",
                Scope::component_version("acme.org/a", "2.0"),
                "a2",
                10,
            ),
        ),
        (
            3,
            entry("versions", Scope::component("acme.org/a"), "av", 10),
        ),
        (
            4,
            entry(
                "descriptor",
                Scope::component_version("acme.org/b", "1.0"),
                "b1",
                10,
            ),
        ),
        (
            5,
            entry("versions", Scope::component("acme.org/b"), "bv", 10),
        ),
        (6, entry("blob", Scope::none(), "blob", 10)),
    ];
    let fill = || {
        for (number, sample) in &entries {
            tier.insert(id(*number), sample.clone());
        }
        assert_eq!(tier.len(), entries.len());
    };
    let remaining = || {
        let mut left: Vec<u64> = (1..=6)
            .filter(|number| tier.get(&id(*number)).is_some())
            .collect();
        left.sort();
        left
    };

    fill();
    assert_eq!(
        tier.purge(&Selector::component_version("Acme.org/A", "1.0")),
        1
    );
    assert_eq!(remaining(), vec![2, 3, 4, 5, 6]);
    assert_totals_match_index(&tier);

    fill();
    assert_eq!(tier.purge(&Selector::component("acme.org/a")), 3);
    assert_eq!(remaining(), vec![4, 5, 6]);
    assert_totals_match_index(&tier);

    fill();
    assert_eq!(
        tier.purge(&Selector::Kind(Kind::new("versions").unwrap())),
        2
    );
    assert_eq!(remaining(), vec![1, 2, 4, 6]);
    assert_totals_match_index(&tier);

    fill();
    assert_eq!(tier.purge(&Selector::Id(id(6))), 1);
    assert_eq!(tier.purge(&Selector::Id(id(6))), 0);
    assert_eq!(remaining(), vec![1, 2, 3, 4, 5]);
    assert_totals_match_index(&tier);

    fill();
    assert_eq!(tier.purge(&Selector::Kind(Kind::new("absent").unwrap())), 0);
    assert_eq!(tier.purge(&Selector::All), 6);
    assert_eq!(remaining(), Vec::<u64>::new());
    assert_eq!((tier.bytes(), tier.len()), (0, 0));
    assert_totals_match_index(&tier);
}

/// Weights spread over four orders of magnitude, from the bare overhead to the admission limit.
fn random_footprint(rng: &mut StdRng, max_entry_bytes: u64) -> usize {
    let exponent = rng.random_range(0.0..(max_entry_bytes as f64).log2());
    (2f64.powf(exponent) as usize).saturating_sub(MEMORY_ENTRY_OVERHEAD_BYTES + 32)
}

#[test]
fn bound_holds_under_concurrent_inserts_of_random_sizes() {
    let max_bytes = 4 << 20;
    let tier = MemoryTier::new(max_bytes);
    let done = AtomicBool::new(false);
    let observed_max = AtomicU64::new(0);
    thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let bytes = tier.bytes();
                assert!(bytes <= max_bytes, "bytes() {bytes} above {max_bytes}");
                let index_weight = tier.inner.index.weight();
                assert!(
                    index_weight <= max_bytes,
                    "index weight {index_weight} above {max_bytes}"
                );
                observed_max.fetch_max(bytes.max(index_weight), Ordering::Relaxed);
            }
        });
        let writers: Vec<_> = (0..8u64)
            .map(|thread_number| {
                let tier = tier.clone();
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(thread_number);
                    for step in 0..4000u64 {
                        // Overlapping ids across threads: replacements race with evictions.
                        let number = rng.random_range(0..3000u64);
                        match rng.random_range(0..100) {
                            0..70 => {
                                let footprint = random_footprint(&mut rng, tier.max_entry_bytes());
                                tier.insert(id(number), plain(number, footprint));
                            }
                            70..90 => {
                                tier.get(&id(number));
                            }
                            90..99 => {
                                tier.remove(&id(number));
                            }
                            _ if step % 7 == 0 => {
                                tier.purge(&Selector::Id(id(number)));
                            }
                            _ => {
                                tier.insert(id(number), plain(number, usize::MAX / 2));
                            }
                        }
                        assert!(tier.bytes() <= max_bytes);
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
    });
    assert!(tier.bytes() <= max_bytes);
    assert!(
        tier.bytes() > max_bytes / 2,
        "the cache was filled: {}",
        tier.bytes()
    );
    assert!(observed_max.load(Ordering::Relaxed) <= max_bytes);
    assert_totals_match_index(&tier);
}

#[test]
fn bound_holds_with_one_thread_and_widely_varying_weights() {
    let max_bytes = 1 << 20;
    let tier = MemoryTier::new(max_bytes);
    let mut rng = StdRng::seed_from_u64(7);
    for number in 0..20_000u64 {
        let footprint = random_footprint(&mut rng, tier.max_entry_bytes());
        tier.insert(id(number), plain(number, footprint));
        assert!(tier.bytes() <= max_bytes);
        assert!(tier.inner.index.weight() <= max_bytes);
    }
    assert!(
        tier.bytes() > max_bytes / 2,
        "the cache stays well filled: {}",
        tier.bytes()
    );
    assert_totals_match_index(&tier);
}

/// Cache-aside: read, and on a miss load and insert. Returns whether it was a hit.
fn read_through(tier: &MemoryTier, number: u64, footprint: usize) -> bool {
    if tier.get(&id(number)).is_some() {
        return true;
    }
    tier.insert(id(number), plain(number, footprint));
    false
}

#[test]
fn hot_set_survives_a_scan_ten_times_the_capacity() {
    let max_bytes: u64 = 4 << 20;
    let footprint = 2048;
    let tier = MemoryTier::new(max_bytes);
    let entry_weight = plain(0, footprint).weight();
    let capacity_entries = max_bytes / entry_weight;
    let hot: Vec<u64> = (0..capacity_entries / 5).collect(); // a fifth of the capacity
    let mut next_cold = 1_000_000u64;

    // The cache starts full of one-hit wonders, so the hot set has to earn its place.
    for _ in 0..2 * capacity_entries {
        read_through(&tier, next_cold, footprint);
        next_cold += 1;
    }
    // Hot traffic, interleaved one to one with more one-hit wonders.
    for _ in 0..5 {
        for &number in &hot {
            read_through(&tier, number, footprint);
            read_through(&tier, next_cold, footprint);
            next_cold += 1;
        }
    }
    let warm_hits = hot
        .iter()
        .filter(|number| tier.get(&id(**number)).is_some())
        .count();
    assert_eq!(
        warm_hits,
        hot.len(),
        "the hot set is resident before the scan"
    );

    // One pass over cold keys weighing ten times the capacity, each read once.
    for _ in 0..10 * capacity_entries {
        read_through(&tier, next_cold, footprint);
        next_cold += 1;
    }
    let hits = hot
        .iter()
        .filter(|number| tier.get(&id(**number)).is_some())
        .count();
    let hit_ratio = hits as f64 / hot.len() as f64;
    // A plain LRU keeps exactly the last `capacity` bytes it saw: after this scan that is
    // scanned keys only, so its hot-set hit ratio would be 0 %.
    assert!(
        hit_ratio >= 0.8,
        "hot-set hit ratio after the scan: {hit_ratio:.3}"
    );
    assert!(tier.bytes() <= max_bytes);
    assert_totals_match_index(&tier);
}

/// The memory tier's series in the shared test recorder.
#[derive(Default)]
struct MemoryMetrics(odg_test_support::CapturingRecorder);

impl MemoryMetrics {
    fn counter(&self, name: &str) -> u64 {
        self.0.counter(&format!("{name}{{tier=memory}}"))
    }

    fn gauge(&self, name: &str) -> f64 {
        self.0.gauge(&format!("{name}{{tier=memory}}"))
    }
}

#[test]
fn gauges_and_counters_follow_the_tier() {
    let recorder = MemoryMetrics::default();
    metrics::with_local_recorder(&recorder.0, || {
        let max_bytes = 1 << 20;
        let tier = MemoryTier::new(max_bytes);
        let assert_gauges = |tier: &MemoryTier| {
            assert_eq!(recorder.gauge(BYTES), tier.bytes() as f64);
            assert_eq!(recorder.gauge(ENTRIES), tier.len() as f64);
            assert_eq!(recorder.gauge(CAPACITY_BYTES), max_bytes as f64);
        };
        assert_gauges(&tier);

        let mut rng = StdRng::seed_from_u64(3);
        let mut added = 0;
        let mut removed = 0;
        for step in 0..5000u64 {
            let number = rng.random_range(0..2000u64);
            let footprint = rng.random_range(0..8000usize);
            if tier.inner.index.peek(&id(number)).is_none() {
                added += 1;
            }
            tier.insert(id(number), plain(number, footprint));
            if step % 10 == 0 && tier.remove(&id(rng.random_range(0..2000u64))) {
                removed += 1;
            }
            assert_gauges(&tier);
        }
        // Every entry added and no longer held was removed or evicted; replacements are neither.
        let evictions = recorder.counter(EVICTIONS_TOTAL);
        assert!(evictions > 0, "a 1 MiB tier overflowed");
        assert_eq!(evictions, added - removed - tier.len() as u64);

        tier.insert(id(9_999), plain(9_999, usize::MAX / 2));
        assert_eq!(recorder.counter(OVERSIZE_SKIPPED_TOTAL), 1);

        let purged = tier.purge(&Selector::All);
        assert!(purged > 0);
        assert_gauges(&tier);
        assert_eq!(tier.len(), 0);

        tier.insert(id(1), plain(1, 10));
        let clone = tier.clone();
        drop(tier);
        assert_eq!(
            recorder.gauge(ENTRIES),
            1.0,
            "a clone keeps the cache alive"
        );
        drop(clone);
        assert_eq!(recorder.gauge(BYTES), 0.0);
        assert_eq!(recorder.gauge(ENTRIES), 0.0);
        assert_eq!(recorder.gauge(CAPACITY_BYTES), 0.0);
    });
}

#[test]
fn evictions_are_counted_exactly() {
    let recorder = MemoryMetrics::default();
    metrics::with_local_recorder(&recorder.0, || {
        let tier = MemoryTier::new(1 << 20);
        // Distinct ids only, no removals: every entry not resident at the end was evicted.
        let count = 3000u64;
        for number in 0..count {
            tier.insert(id(number), plain(number, 1500));
        }
        // Replacements are not evictions.
        for number in (count - 10)..count {
            if tier.get(&id(number)).is_some() {
                tier.insert(id(number), plain(number, 1400));
            }
        }
        assert_eq!(recorder.counter(EVICTIONS_TOTAL), count - tier.len() as u64);
        assert_totals_match_index(&tier);
    });
}

#[test]
fn tier_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<MemoryTier>();
    assert_send_sync::<MemoryEntry>();
}
