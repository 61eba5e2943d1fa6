//! Names and label values of the metrics this crate records (through the `metrics` facade).
//! Label values come from fixed sets: tiers, results, operations, selector kinds, and the
//! configured cache kinds.

/// Counter: lookups by `kind`, `tier` (memory, disk, shared) and `result` (hit, stale, miss, invalid).
pub const LOOKUPS_TOTAL: &str = "odg_cache_lookups_total";
/// Counter: loads from the origin by `kind` and `result` (ok, error).
pub const ORIGIN_LOADS_TOTAL: &str = "odg_cache_origin_loads_total";
/// Counter: entries evicted to stay within the byte bound, by `tier`.
pub const EVICTIONS_TOTAL: &str = "odg_cache_evictions_total";
/// Gauge: fills whose value is answered but still being written into the disk and shared tiers.
pub const WRITEBACKS_IN_FLIGHT: &str = "odg_cache_writebacks_in_flight";
/// Gauge: bytes held, by `tier` (memory counts key, value and per-entry overhead).
pub const BYTES: &str = "odg_cache_bytes";
/// Gauge: the configured byte bound, by `tier`.
pub const CAPACITY_BYTES: &str = "odg_cache_capacity_bytes";
/// Gauge: entries held, by `tier`.
pub const ENTRIES: &str = "odg_cache_entries";
/// Counter: torn, corrupt or unreadable entries dropped, by `tier`.
pub const CORRUPT_ENTRIES_TOTAL: &str = "odg_cache_corrupt_entries_total";
/// Counter: tier operations that failed, by `tier` and `operation` (get, put, delete, lease, ...).
pub const ERRORS_TOTAL: &str = "odg_cache_errors_total";
/// Counter: values not stored in a tier because they exceed its per-entry limit, by `tier`.
pub const OVERSIZE_SKIPPED_TOTAL: &str = "odg_cache_oversize_skipped_total";
/// Gauge: 1 while the shared tier (Redis) is reachable, else 0.
pub const REDIS_UP: &str = "odg_cache_redis_up";
/// Counter: Redis (re)connections established.
pub const REDIS_RECONNECTS_TOTAL: &str = "odg_cache_redis_reconnects_total";
/// Counter: requests that waited for another request's load in this pod instead of loading, by `kind`.
pub const COALESCED_WAITERS_TOTAL: &str = "odg_cache_coalesced_waiters_total";
/// Counter: fleet lease outcomes by `kind` and `result` (acquired, waited_hit, waited_timeout, unavailable).
pub const LEASE_TOTAL: &str = "odg_cache_fleet_lease_total";
/// Histogram: seconds spent waiting for another pod's fill, by `kind`.
pub const LEASE_WAIT_SECONDS: &str = "odg_cache_fleet_lease_wait_seconds";
/// Counter: invalidations applied, by `selector` and `origin` (local, remote, resync).
pub const INVALIDATIONS_TOTAL: &str = "odg_cache_invalidations_total";
/// Counter: stale entries served while a refresh ran, by `kind`.
pub const STALE_SERVED_TOTAL: &str = "odg_cache_stale_served_total";

pub const TIER_MEMORY: &str = "memory";
pub const TIER_DISK: &str = "disk";
pub const TIER_SHARED: &str = "shared";

/// Gauge: predicted miss ratio at `scale` times the tier's bound, by `kind` (a configured kind,
/// or `all`), `tier` (memory, disk) and `scale` (0.25, 0.5, 1, 2, 4, 8). The model is the
/// tier's: miniature simulations of quick_cache for memory, LRU reuse distances for disk.
pub const MRC_MISS_RATIO: &str = "odg_cache_mrc_predicted_miss_ratio";
/// Gauge: estimated bytes of all distinct keys seen, by `kind` and `tier`.
pub const MRC_WORKING_SET_BYTES: &str = "odg_cache_mrc_working_set_bytes";
/// Gauge: bytes the memory tier's miniature simulations take (mini caches and pending fills).
pub const MRC_SIMULATION_BYTES: &str = "odg_cache_mrc_simulation_bytes";
/// Counter: lookups sampled into the curve, by `kind` and `tier`.
pub const MRC_SAMPLED_LOOKUPS: &str = "odg_cache_mrc_sampled_lookups_total";
