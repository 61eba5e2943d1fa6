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

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod advice;
mod curve;
mod fenwick;
mod sampled;

pub use advice::{advise, knee, Advice};
pub use curve::{bucket_index, bucket_upper_bytes, Bucket, Curve, BUCKETS, BUCKETS_PER_OCTAVE};
pub use fenwick::Fenwick;
pub use sampled::{SampledCurve, DEFAULT_MAX_SAMPLED_KEYS, SPATIAL_MODULUS};

#[cfg(test)]
mod exact_tests;
