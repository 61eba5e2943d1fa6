//! A tiered cache that knows nothing of OCI or HTTP: byte-bounded memory, a crash-safe disk
//! tier, a shared Redis tier; generation-stamped entries, single-flight per pod and per fleet,
//! stale-while-revalidate, and invalidation that reaches every pod.

// Production code neither unwraps nor expects: failures become errors, and the few invariants
// that cannot fail are marked where they are, each with its reason (checked by the tidy test).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod curves;
mod disk;
mod entry;
mod error;
mod flight;
mod generations;
mod invalidation;
mod key;
mod locks;
mod memory;
pub mod metrics;
mod policy;
pub mod prune;
mod selector;
mod shared;
mod tiered;
mod value;

pub use curves::{CurvesReport, KindCurve, TierReport, ALL_KINDS, EXPORTED_SCALES};
pub use disk::DiskTier;
pub use entry::{
    decode_entry, decode_entry_header, encode_entry, EntryDecodeError, EntryMeta, Freshness,
    StoredEntry, ENTRY_FORMAT_VERSION,
};
pub use error::CacheError;
pub use generations::{Generations, Stamp, EPOCH_FIELD};
pub use invalidation::InvalidationReport;
pub use key::{CacheKey, EntryId, Kind, Scope};
pub use memory::{MemoryEntry, MemoryTier, MEMORY_ENTRY_OVERHEAD_BYTES};
pub use odg_mrc::{Curve, DEFAULT_MAX_SAMPLED_KEYS as DEFAULT_MISS_RATIO_CURVE_KEYS};
pub use policy::KindPolicy;
pub use selector::{Selector, SelectorMessage};
pub use shared::{InvalidationMessage, Lease, SharedEvent, SharedTier, SharedTierConfig};
pub use tiered::{CacheConfig, CacheMode, DiskConfig, TieredCache};
pub use value::CacheValue;
