//! What a cached value must be able to do: encode for disk and Redis, decode, tell its memory
//! footprint (the memory tier's bound counts it), and optionally shorten its own freshness.

use std::time::Duration;

pub trait CacheValue: Send + Sync + Sized + 'static {
    /// The payload stored in the disk and shared tiers (inside the entry envelope).
    fn encode(&self) -> Vec<u8>;
    fn decode(payload: &[u8]) -> Result<Self, String>;
    /// Bytes this value holds in memory, inline and on the heap.
    fn footprint(&self) -> usize;
    /// Freshness of this particular value; defaults to the kind's. A negative answer ("not in
    /// this repository") of an otherwise immutable kind, say, expires like a mutable one.
    fn fresh_for(&self, kind_default: Option<Duration>) -> Option<Duration> {
        kind_default
    }
}
