//! A miss-ratio curve: a log-scale histogram of (estimated, full-stream) reuse distances in
//! bytes, with the cold (first-touch) references, from which the miss ratio of an LRU cache of
//! any byte size follows; and, where the tier is not an LRU, the points of its miniature
//! simulations (`minisim.rs`), which then are the curve ([`Curve::miss_ratio_at`] reads them,
//! [`Curve::lru_miss_ratio_at`] still reads the histogram). Curves of several pods (or periods)
//! merge by adding their counts.
//!
//! Bucket `i` holds the distances `d` with `upper(i - 1) < d <= upper(i)`, where
//! `upper(i) = 2^(i / BUCKETS_PER_OCTAVE)` bytes: 16 buckets per doubling (4.4 % wide). At a
//! size on a bucket boundary the predicted miss ratio is exact for the sampled stream; between
//! boundaries it is interpolated linearly inside the bucket.

use serde::{Deserialize, Serialize};

use crate::minisim::SimulatedPoint;

pub const BUCKETS_PER_OCTAVE: usize = 16;
/// 64 doublings: every `u64` byte distance has a bucket.
pub const BUCKETS: usize = 64 * BUCKETS_PER_OCTAVE;

/// The largest distance bucket `index` holds, in bytes.
pub fn bucket_upper_bytes(index: usize) -> f64 {
    // computed once: `bucket_index` reads up to three bounds per sampled lookup, and `exp2` is
    // several hundred instructions on the request path (callgrind on the warm descriptor route)
    static UPPER_BYTES: std::sync::LazyLock<Vec<f64>> = std::sync::LazyLock::new(|| {
        (0..BUCKETS)
            .map(|index| (index as f64 / BUCKETS_PER_OCTAVE as f64).exp2())
            .collect()
    });
    UPPER_BYTES
        .get(index)
        .copied()
        .unwrap_or_else(|| (index as f64 / BUCKETS_PER_OCTAVE as f64).exp2())
}

/// The bucket of a distance of `bytes` (distances under one byte go to bucket 0).
pub fn bucket_index(bytes: f64) -> usize {
    if bytes.is_nan() || bytes <= 1.0 {
        return 0;
    }
    let mut index = ((bytes.log2() * BUCKETS_PER_OCTAVE as f64).ceil() as usize).min(BUCKETS - 1);
    // the logarithm may round across a boundary: settle on the smallest upper bound >= bytes
    while index > 0 && bucket_upper_bytes(index - 1) >= bytes {
        index -= 1;
    }
    while index < BUCKETS - 1 && bucket_upper_bytes(index) < bytes {
        index += 1;
    }
    index
}

/// One non-empty histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub index: u16,
    /// `bucket_upper_bytes(index)`, for readers of the JSON.
    pub upper_bytes: f64,
    /// Estimated references (of the whole stream, not just the sample) with this distance.
    pub references: f64,
}

/// A snapshot of a sampled curve, or the sum of several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Estimated references of the whole stream (each sampled one counts `1 / rate`).
    pub references: f64,
    /// Estimated first references: misses at every size.
    pub cold_references: f64,
    /// References actually sampled (measured, not estimated).
    pub sampled_references: u64,
    /// The sampling rate now (the lowest of merged curves); 1 = every key.
    pub sampling_rate: f64,
    /// Estimated bytes of all distinct keys seen: the size from which only cold misses remain.
    pub working_set_bytes: f64,
    /// Non-empty buckets, by increasing index.
    pub buckets: Vec<Bucket>,
    /// The miniature simulations of the real policy, by increasing size; empty where the tier
    /// is modelled as LRU (then the histogram is the curve).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub simulated: Vec<SimulatedPoint>,
}

impl Curve {
    /// A curve from a dense histogram (`BUCKETS` long).
    pub(crate) fn from_histogram(
        histogram: &[f64],
        references: f64,
        cold_references: f64,
        sampled_references: u64,
        sampling_rate: f64,
        working_set_bytes: f64,
    ) -> Curve {
        let buckets = histogram
            .iter()
            .enumerate()
            .filter(|(_, count)| **count != 0.0)
            .map(|(index, count)| Bucket {
                index: index as u16,
                upper_bytes: bucket_upper_bytes(index),
                references: *count,
            })
            .collect();
        Curve {
            references,
            cold_references,
            sampled_references,
            sampling_rate,
            working_set_bytes,
            buckets,
            simulated: Vec::new(),
        }
    }

    /// Which model `miss_ratio_at` and `points` read: `"simulated"` or `"lru"`.
    pub fn model(&self) -> &'static str {
        if self.simulated.is_empty() {
            "lru"
        } else {
            "simulated"
        }
    }

    /// The predicted miss ratio (0..=1) of a cache of `bytes`; `None` before any reference.
    /// From the simulated points where there are any (interpolated linearly over log size
    /// between them, the nearest one's outside their range: the simulations say nothing there
    /// and the advisor stays inside it), else from the LRU histogram.
    pub fn miss_ratio_at(&self, bytes: f64) -> Option<f64> {
        if self.simulated.is_empty() {
            return self.lru_miss_ratio_at(bytes);
        }
        let ratios = || {
            self.simulated
                .iter()
                .filter_map(|point| Some((point.bytes, point.miss_ratio()?)))
        };
        let below = ratios().take_while(|(size, _)| *size <= bytes).last();
        let above = ratios().find(|(size, _)| *size >= bytes);
        match (below, above) {
            (Some((low, low_ratio)), Some((high, high_ratio))) if high > low => {
                let share = (bytes.log2() - low.log2()) / (high.log2() - low.log2());
                Some(low_ratio + (high_ratio - low_ratio) * share)
            }
            (Some((_, ratio)), _) | (None, Some((_, ratio))) => Some(ratio),
            (None, None) => None,
        }
    }

    /// The predicted miss ratio (0..=1) of an LRU cache of `bytes` (the reuse-distance
    /// histogram); `None` before any reference.
    pub fn lru_miss_ratio_at(&self, bytes: f64) -> Option<f64> {
        if self.references <= 0.0 {
            return None;
        }
        let mut misses = self.cold_references;
        for bucket in &self.buckets {
            let upper = bucket_upper_bytes(usize::from(bucket.index));
            let lower = if bucket.index == 0 {
                0.0
            } else {
                bucket_upper_bytes(usize::from(bucket.index) - 1)
            };
            if bytes >= upper {
                continue;
            }
            if bytes <= lower {
                misses += bucket.references;
            } else {
                misses += bucket.references * (upper - bytes) / (upper - lower);
            }
        }
        Some((misses / self.references).clamp(0.0, 1.0))
    }

    /// `(bytes, miss ratio)`: the simulated points where there are any, else every bucket
    /// boundary from the first non-empty bucket to the working set: the curve to plot.
    pub fn points(&self) -> Vec<(f64, f64)> {
        if !self.simulated.is_empty() {
            return self
                .simulated
                .iter()
                .filter_map(|point| Some((point.bytes, point.miss_ratio()?)))
                .collect();
        }
        let (Some(first), Some(last)) = (self.buckets.first(), self.buckets.last()) else {
            return Vec::new();
        };
        let mut points = Vec::new();
        let start = usize::from(first.index).saturating_sub(1);
        for index in start..=usize::from(last.index) {
            let bytes = bucket_upper_bytes(index);
            if let Some(ratio) = self.lru_miss_ratio_at(bytes) {
                points.push((bytes, ratio));
            }
        }
        points
    }

    /// The smallest size (a bucket boundary) whose predicted hit ratio reaches `target`, if any.
    pub fn smallest_size_for_hit_ratio(&self, target: f64) -> Option<f64> {
        self.points()
            .into_iter()
            .find(|(_, miss)| 1.0 - miss >= target)
            .map(|(bytes, _)| bytes)
    }

    /// SHARDS-adj: the sample holds `references` estimated references where the stream had
    /// `actual` (counted by the caller, outside the engine); the difference, mostly the luck of
    /// drawing or missing a very hot key, is put at distance zero (a hit at every size), so
    /// that the error no longer shifts the whole curve. The simulated points get the same
    /// difference as hits (each point counts its own references: nested lookups reach only some
    /// mini caches). Returns the adjusted curve.
    pub fn adjusted_to(&self, actual: f64) -> Curve {
        if self.references <= 0.0 || actual <= 0.0 {
            return self.clone();
        }
        let mut dense = vec![0.0f64; BUCKETS];
        for bucket in &self.buckets {
            if let Some(slot) = dense.get_mut(usize::from(bucket.index)) {
                *slot += bucket.references;
            }
        }
        dense[0] += actual - self.references;
        let mut curve = Curve::from_histogram(
            &dense,
            actual,
            self.cold_references,
            self.sampled_references,
            self.sampling_rate,
            self.working_set_bytes,
        );
        curve.buckets.retain(|bucket| bucket.references != 0.0);
        curve.simulated = self
            .simulated
            .iter()
            .map(|point| SimulatedPoint {
                references: (point.references + actual - self.references).max(point.misses),
                ..*point
            })
            .collect();
        curve
    }

    /// Adds `other` (another pod, or another period) into this curve. Simulated points add
    /// where the sizes match (pods with the same bound); elsewhere `other`'s miss ratio is
    /// interpolated at this curve's sizes.
    pub fn merge(&mut self, other: &Curve) {
        let simulated = merge_simulated(self, other);
        let mut dense = vec![0.0f64; BUCKETS];
        for bucket in self.buckets.iter().chain(other.buckets.iter()) {
            if let Some(slot) = dense.get_mut(usize::from(bucket.index)) {
                *slot += bucket.references;
            }
        }
        let sampling_rate = match (self.references > 0.0, other.references > 0.0) {
            (true, true) => self.sampling_rate.min(other.sampling_rate),
            (false, _) => other.sampling_rate,
            (_, false) => self.sampling_rate,
        };
        *self = Curve::from_histogram(
            &dense,
            self.references + other.references,
            self.cold_references + other.cold_references,
            self.sampled_references + other.sampled_references,
            sampling_rate,
            self.working_set_bytes.max(other.working_set_bytes),
        );
        self.simulated = simulated;
    }
}

fn merge_simulated(this: &Curve, other: &Curve) -> Vec<SimulatedPoint> {
    if this.simulated.is_empty() {
        return other.simulated.clone();
    }
    if other.simulated.is_empty() {
        return this.simulated.clone();
    }
    let same_sizes = this.simulated.len() == other.simulated.len()
        && this
            .simulated
            .iter()
            .zip(&other.simulated)
            .all(|(a, b)| a.bytes == b.bytes);
    this.simulated
        .iter()
        .enumerate()
        .map(|(index, point)| {
            let (references, misses) = if same_sizes {
                let theirs = other.simulated[index];
                (theirs.references, theirs.misses)
            } else {
                let references = other.simulated[0].references;
                let ratio = other.miss_ratio_at(point.bytes).unwrap_or(0.0);
                (references, ratio * references)
            };
            SimulatedPoint {
                bytes: point.bytes,
                references: point.references + references,
                misses: point.misses + misses,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_distance_lands_in_the_bucket_whose_bounds_hold_it() {
        for bytes in [1.5, 2.0, 3.0, 100.0, 1024.0, 1025.0, 1e6, 7.3e9, 1e19] {
            let index = bucket_index(bytes);
            assert!(bucket_upper_bytes(index) >= bytes, "{bytes}");
            assert!(
                index == 0 || bucket_upper_bytes(index - 1) < bytes,
                "{bytes}"
            );
        }
        assert_eq!(bucket_index(0.0), 0);
        assert_eq!(bucket_index(f64::NAN), 0);
    }

    #[test]
    fn miss_ratio_falls_with_size_and_merging_adds_streams() {
        let mut histogram = vec![0.0; BUCKETS];
        histogram[bucket_index(1000.0)] = 50.0;
        histogram[bucket_index(100_000.0)] = 30.0;
        let curve = Curve::from_histogram(&histogram, 100.0, 20.0, 100, 1.0, 2e5);
        assert_eq!(curve.miss_ratio_at(10.0), Some(1.0));
        assert_eq!(curve.miss_ratio_at(1e9), Some(0.2));
        let middle = curve.miss_ratio_at(10_000.0).unwrap_or(0.0);
        assert!((middle - 0.5).abs() < 1e-9, "{middle}");
        assert_eq!(
            curve.smallest_size_for_hit_ratio(0.5),
            Some(bucket_upper_bytes(bucket_index(1000.0)))
        );
        assert_eq!(curve.smallest_size_for_hit_ratio(0.9), None);

        let mut merged = curve.clone();
        merged.merge(&Curve::from_histogram(
            &vec![0.0; BUCKETS],
            100.0,
            100.0,
            7,
            0.5,
            10.0,
        ));
        assert_eq!(merged.references, 200.0);
        assert_eq!(merged.sampling_rate, 0.5);
        assert_eq!(merged.miss_ratio_at(1e9), Some(0.6));
        assert_eq!(Curve::default().miss_ratio_at(1.0), None);
    }

    #[test]
    fn simulated_points_are_the_curve_and_merge_by_size() {
        let point = |bytes: f64, misses: f64| SimulatedPoint {
            bytes,
            references: 100.0,
            misses,
        };
        let mut histogram = vec![0.0; BUCKETS];
        histogram[bucket_index(1000.0)] = 90.0;
        let mut curve = Curve::from_histogram(&histogram, 100.0, 10.0, 100, 1.0, 2e5);
        assert_eq!(curve.model(), "lru");
        curve.simulated = vec![point(1024.0, 80.0), point(4096.0, 20.0)];
        assert_eq!(curve.model(), "simulated");
        // on the points, between them over log size, clamped outside
        assert_eq!(curve.miss_ratio_at(1024.0), Some(0.8));
        let middle = curve.miss_ratio_at(2048.0).unwrap();
        assert!((middle - 0.5).abs() < 1e-12, "{middle}");
        assert_eq!(curve.miss_ratio_at(10.0), Some(0.8));
        assert_eq!(curve.miss_ratio_at(1e12), Some(0.2));
        assert_eq!(curve.points(), vec![(1024.0, 0.8), (4096.0, 0.2)]);
        assert_eq!(curve.lru_miss_ratio_at(1e9), Some(0.1));
        // SHARDS-adj keeps the estimated misses over the true count
        let adjusted = curve.adjusted_to(200.0);
        assert_eq!(adjusted.miss_ratio_at(1024.0), Some(0.4));

        // pods with the same bound: points add
        let mut merged = curve.clone();
        let mut other = curve.clone();
        other.simulated = vec![point(1024.0, 40.0), point(4096.0, 0.0)];
        merged.merge(&other);
        assert_eq!(merged.miss_ratio_at(1024.0), Some(0.6));
        assert_eq!(merged.miss_ratio_at(4096.0), Some(0.1));
        // another bound: its ratio interpolated at these sizes
        let mut shifted = curve.clone();
        shifted.simulated = vec![point(2048.0, 50.0), point(8192.0, 10.0)];
        let mut merged = curve.clone();
        merged.merge(&shifted);
        assert_eq!(merged.miss_ratio_at(1024.0), Some(0.65));
        let at_4096 = merged.miss_ratio_at(4096.0).unwrap();
        assert!((at_4096 - 0.25).abs() < 1e-12, "{at_4096}");
    }
}
