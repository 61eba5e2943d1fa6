//! A tiered cache that knows nothing of OCI or HTTP: byte-bounded memory, a crash-safe disk
//! tier, a shared Redis tier; generation-stamped entries, single-flight per pod and per fleet,
//! stale-while-revalidate, and invalidation that reaches every pod.

mod disk;
mod entry;
mod error;
mod generations;
mod key;
mod memory;
pub mod metrics;
mod selector;
mod shared;

pub use entry::{
    decode_entry, encode_entry, EntryDecodeError, EntryMeta, Freshness, StoredEntry,
    ENTRY_FORMAT_VERSION,
};
pub use error::CacheError;
pub use generations::{Generations, Stamp, EPOCH_FIELD};
pub use key::{CacheKey, EntryId, Kind, Scope};
pub use selector::{Selector, SelectorMessage};
