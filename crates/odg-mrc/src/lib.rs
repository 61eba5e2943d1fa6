//! Sampled, byte-weighted miss-ratio curves of LRU caches, built online in bounded memory from
//! the stream of lookups a cache tier sees: fixed-size SHARDS (Waldspurger et al., FAST 2015).
//!
//! A [`SampledCurve`] samples keys spatially (by a uniform hash: a key is in the sample while
//! `hash mod 2^24 < threshold`), measures each sampled reference's reuse distance in bytes (the
//! bytes of the distinct sampled keys touched since that key's last reference, plus its own,
//! scaled by the sampling rate) with a [`Fenwick`] tree over access stamps, and keeps a log-scale
//! histogram of those distances. When the sample outgrows its bound, the keys with the largest
//! hash residues are dropped and the threshold lowered to theirs. A [`Curve`] is a snapshot of
//! the histogram: the predicted miss ratio of an LRU cache of any byte size, mergeable across
//! pods. Knows nothing of the cache that feeds it, of metrics or of HTTP.
//!
//! Where the cache is not an LRU, the same sample also feeds miniature simulations
//! ([`MiniSimulations`], Waldspurger et al., ATC 2017): scaled-down quick_cache instances, one per
//! simulated bound, configured as the caller's tier ([`QuickCacheShape`]); their points are then
//! the curve.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod advice;
mod curve;
mod fenwick;
mod minisim;
mod sampled;

pub use advice::{advise, knee, Advice};
pub use curve::{bucket_index, bucket_upper_bytes, Bucket, Curve, BUCKETS, BUCKETS_PER_OCTAVE};
pub use fenwick::Fenwick;
pub use minisim::{
    default_scales, MiniSimulations, QuickCacheShape, ShapeOfBound, SimulatedPoint,
    MAX_SIMULATED_SIZES,
};
pub use sampled::{SampledCurve, DEFAULT_MAX_SAMPLED_KEYS, SPATIAL_MODULUS};

#[cfg(test)]
mod exact_tests;
