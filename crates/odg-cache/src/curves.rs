//! The miss-ratio curves of this pod's cache (see `odg-mrc`): one per tier and kind, plus one per
//! tier over all kinds (the tiers are shared by the kinds, so the tier's own curve is the one to
//! size it by). Each tier's curves see the stream that reaches it: memory every normal lookup
//! of a kind kept in memory, disk the memory tier's misses, shared the misses of both.
//!
//! The key hash is the entry id's first eight bytes (SHA-256: uniform, already computed). Sizes
//! are what each tier counts against its bound: the memory entry's weight, the encoded envelope
//! on disk and in Redis. A miss does not know its size; the tier's store of the value tells it.
//!
//! The curves are built at start from the configured kinds and never change shape, so a lookup
//! finds its curve with one map probe and no lock. Kinds without a policy count in the tier's
//! all-kinds curve only.
//!
//! The model per tier: the memory tier is quick_cache, not an LRU, so its all-kinds curve also
//! runs miniature simulations of it (`odg_mrc::MiniSimulations`, configured by
//! [`quick_cache_shape`], the function that configures the tier) at 0.25x..8x of its bound in
//! quarter doublings, and those points are its curve; each kind's memory curve reads the same
//! mini caches (the kinds share the tier), counting that kind's lookups. The disk tier evicts
//! by least recent write and the shared tier is Redis (approximate LRU or LFU, as configured
//! there): they keep the LRU reuse-distance curve. A lookup made while loading another entry
//! (inside `CacheInner::fill`'s loader: a rendered answer's descriptor) names that entry as its
//! parent, so the simulations see it only at the sizes that missed the parent. Every curve still carries its LRU histogram
//! (the admin route's `buckets`); the exported `odg_cache_mrc_predicted_miss_ratio` reads the
//! tier's model.

use std::collections::HashMap;

use odg_mrc::{default_scales, Curve, SampledCurve};
use serde::Serialize;

use crate::entry::StoredEntry;
use crate::key::EntryId;
use crate::memory::quick_cache_shape;
use crate::metrics::{
    MRC_MISS_RATIO, MRC_SAMPLED_LOOKUPS, MRC_SIMULATION_BYTES, MRC_WORKING_SET_BYTES, TIER_DISK,
    TIER_MEMORY, TIER_SHARED,
};
use crate::policy::KindPolicy;

/// The sizes, as multiples of the tier's bound, at which `/metrics` reports the predicted miss ratio.
pub const EXPORTED_SCALES: [(f64, &str); 6] = [
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1"),
    (2.0, "2"),
    (4.0, "4"),
    (8.0, "8"),
];
/// The `kind` label of a tier's curve over all kinds.
pub const ALL_KINDS: &str = "all";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Memory,
    Disk,
    Shared,
}

impl Tier {
    fn index(self) -> usize {
        match self {
            Tier::Memory => 0,
            Tier::Disk => 1,
            Tier::Shared => 2,
        }
    }
}

const TIER_NAMES: [&str; 3] = [TIER_MEMORY, TIER_DISK, TIER_SHARED];

#[derive(Debug)]
struct TierCurves {
    /// The tier's configured byte bound (the shared tier has none the pod knows).
    bound_bytes: Option<u64>,
    all: SampledCurve,
    /// Per kind: its counting slot in `all`'s simulations (if any) and its own curve.
    kinds: HashMap<String, KindCurves>,
}

#[derive(Debug)]
struct KindCurves {
    slot: usize,
    curve: SampledCurve,
}

#[derive(Debug)]
pub(crate) struct CacheCurves {
    /// `None` where the tier is not configured.
    tiers: [Option<TierCurves>; 3],
}

/// The uniform 64-bit hash the sampler needs: the id is a SHA-256 prefix.
fn key_hash(id: &EntryId) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&id.0[..8]);
    u64::from_le_bytes(bytes)
}

/// Bytes of `entry`'s envelope as the disk and shared tiers store it (see `entry.rs`).
pub(crate) fn stored_bytes(entry: &StoredEntry) -> u64 {
    let scope = &entry.meta.scope;
    let fixed = 4 + 2 + 2 + 3 * 8 + 5 * 8 + 2 + 1 + 4 + 1 + 4 + 4 + 4 + 4;
    (fixed
        + entry.meta.kind.as_str().len()
        + scope.component.as_ref().map_or(0, String::len)
        + scope.version.as_ref().map_or(0, String::len)
        + entry.key_text.len()
        + entry.payload.len()) as u64
}

impl CacheCurves {
    pub(crate) fn new(
        policies: &HashMap<String, KindPolicy>,
        max_keys: usize,
        memory_bound: u64,
        disk_bound: Option<u64>,
        shared: bool,
    ) -> CacheCurves {
        let tier = |bound: Option<u64>, uses: fn(&KindPolicy) -> bool, simulated: bool| {
            let mut kinds: Vec<&String> = policies
                .iter()
                .filter(|(_, policy)| uses(policy))
                .map(|(kind, _)| kind)
                .collect();
            kinds.sort();
            let all = match bound.filter(|_| simulated) {
                Some(bound) => {
                    let bounds: Vec<u64> = default_scales()
                        .iter()
                        .map(|scale| (bound as f64 * scale) as u64)
                        .collect();
                    SampledCurve::with_simulations(
                        max_keys,
                        &bounds,
                        quick_cache_shape,
                        kinds.len(),
                    )
                }
                None => SampledCurve::new(max_keys),
            };
            TierCurves {
                bound_bytes: bound,
                all,
                kinds: kinds
                    .into_iter()
                    .enumerate()
                    .map(|(slot, kind)| {
                        let curve = SampledCurve::new(max_keys);
                        (kind.clone(), KindCurves { slot, curve })
                    })
                    .collect(),
            }
        };
        CacheCurves {
            tiers: [
                Some(tier(Some(memory_bound), |policy| policy.memory, true)),
                disk_bound.map(|bound| tier(Some(bound), |policy| policy.disk, false)),
                shared.then(|| tier(None, |policy| policy.shared, false)),
            ],
        }
    }

    /// A lookup of `id` (of `kind`) reached `tier`; `size` if the tier holds it; `parent`: the
    /// entry being loaded when the lookup was made (a nested kind), if any.
    pub(crate) fn record(
        &self,
        tier: Tier,
        kind: &str,
        id: &EntryId,
        size: Option<u64>,
        parent: Option<&EntryId>,
    ) {
        if let Some(curves) = &self.tiers[tier.index()] {
            let hash = key_hash(id);
            let kind = curves.kinds.get(kind);
            let parent = parent.map(key_hash);
            curves
                .all
                .record_in(hash, size, kind.map(|kind| kind.slot), parent);
            if let Some(kind) = kind {
                kind.curve.record(hash, size);
            }
        }
    }

    /// `tier` now holds `id` at `size` bytes: it stored it (the memory tier's simulations insert
    /// it where a miss awaits it).
    pub(crate) fn set_size(&self, tier: Tier, kind: &str, id: &EntryId, size: u64) {
        if let Some(curves) = &self.tiers[tier.index()] {
            let hash = key_hash(id);
            curves.all.set_size(hash, size);
            if let Some(kind) = curves.kinds.get(kind) {
                kind.curve.set_size(hash, size);
            }
        }
    }

    /// `tier` dropped `id`; `refill`: the lookup that found it unusable loads it again.
    pub(crate) fn removed(&self, tier: Tier, id: &EntryId, refill: bool) {
        if let Some(curves) = &self.tiers[tier.index()] {
            curves.all.removed(key_hash(id), refill);
        }
    }

    /// Bytes the miniature simulations take, over all tiers.
    pub(crate) fn simulation_memory_bytes(&self) -> usize {
        self.tiers
            .iter()
            .flatten()
            .map(|curves| curves.all.simulation_memory_bytes())
            .sum()
    }

    pub(crate) fn report(&self) -> CurvesReport {
        let tiers = self
            .tiers
            .iter()
            .zip(TIER_NAMES)
            .filter_map(|(curves, name)| {
                let curves = curves.as_ref()?;
                let mut kinds: Vec<KindCurve> = curves
                    .kinds
                    .iter()
                    .map(|(kind, curves_of_kind)| {
                        let mut curve = curves_of_kind.curve.snapshot_unadjusted();
                        curve.simulated = curves.all.simulated_points(curves_of_kind.slot);
                        KindCurve {
                            kind: kind.clone(),
                            curve: curve.adjusted_to(curves_of_kind.curve.references() as f64),
                        }
                    })
                    .collect();
                kinds.sort_by(|a, b| a.kind.cmp(&b.kind));
                kinds.insert(
                    0,
                    KindCurve {
                        kind: ALL_KINDS.to_string(),
                        curve: curves.all.snapshot(),
                    },
                );
                Some(TierReport {
                    tier: name.to_string(),
                    bound_bytes: curves.bound_bytes,
                    kinds,
                })
            })
            .collect();
        CurvesReport { tiers }
    }

    /// Sets the `/metrics` gauges from the curves now (called at scrape time).
    pub(crate) fn export_metrics(&self) {
        metrics::gauge!(MRC_SIMULATION_BYTES).set(self.simulation_memory_bytes() as f64);
        for tier in self.report().tiers {
            for kind in &tier.kinds {
                let labels = [("kind", kind.kind.clone()), ("tier", tier.tier.clone())];
                metrics::gauge!(MRC_WORKING_SET_BYTES, &labels).set(kind.curve.working_set_bytes);
                metrics::counter!(MRC_SAMPLED_LOOKUPS, &labels)
                    .absolute(kind.curve.sampled_references);
                let Some(bound) = tier.bound_bytes else {
                    continue;
                };
                for (scale, label) in EXPORTED_SCALES {
                    if let Some(ratio) = kind.curve.miss_ratio_at(bound as f64 * scale) {
                        metrics::gauge!(
                            MRC_MISS_RATIO,
                            "kind" => kind.kind.clone(),
                            "tier" => tier.tier.clone(),
                            "scale" => label
                        )
                        .set(ratio);
                    }
                }
            }
        }
    }
}

/// What `GET /cache/miss-ratio-curves` answers: every tier's curves, all kinds first.
#[derive(Debug, Clone, Serialize)]
pub struct CurvesReport {
    pub tiers: Vec<TierReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierReport {
    pub tier: String,
    /// The tier's configured bound; `null` for the shared tier (Redis's own `maxmemory`).
    pub bound_bytes: Option<u64>,
    pub kinds: Vec<KindCurve>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindCurve {
    pub kind: String,
    pub curve: Curve,
}

#[cfg(test)]
#[path = "curves_tests.rs"]
mod tests;
