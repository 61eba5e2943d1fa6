//! Sizing advice from a curve: the smallest size reaching a target hit ratio, else the knee of
//! the curve (where a bigger cache stops paying), rounded up to whole MiB.

use crate::Curve;

const MIB: f64 = (1u64 << 20) as f64;

#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// The recommended bound in MiB (at least 1).
    pub recommended_mib: u64,
    /// Why: the target is reached there, or it is the knee (the target is not reachable).
    pub reaches_target: bool,
    /// Predicted hit ratio at the recommended bound.
    pub predicted_hit_ratio: f64,
    /// The best hit ratio any size reaches (cold misses remain).
    pub best_hit_ratio: f64,
}

/// The knee: the point of the curve (miss ratio over log size) farthest below the chord from
/// its first to its last point.
pub fn knee(curve: &Curve) -> Option<f64> {
    let points = curve.points();
    let (first, last) = (points.first()?, points.last()?);
    let (x0, y0) = (first.0.log2(), first.1);
    let (x1, y1) = (last.0.log2(), last.1);
    if x1 <= x0 {
        return Some(last.0);
    }
    points
        .iter()
        .map(|(bytes, miss)| {
            let x = bytes.log2();
            let chord = y0 + (y1 - y0) * (x - x0) / (x1 - x0);
            (*bytes, chord - miss)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(bytes, _)| bytes)
}

/// Advice for a cache whose hit ratio should reach `target_hit_ratio`; `None` while no key was
/// referenced twice (before any reference, or only cold misses so far): such a curve says
/// nothing about any size, and advising its smallest would shrink a cache that simply has not
/// seen its workload yet.
pub fn advise(curve: &Curve, target_hit_ratio: f64) -> Option<Advice> {
    let best_hit_ratio = 1.0 - curve.miss_ratio_at(f64::MAX)?;
    if best_hit_ratio <= 0.0 {
        return None;
    }
    let (bytes, reaches_target) = match curve.smallest_size_for_hit_ratio(target_hit_ratio) {
        Some(bytes) => (bytes, true),
        None => (knee(curve).unwrap_or(curve.working_set_bytes), false),
    };
    let recommended_mib = ((bytes / MIB).ceil() as u64).max(1);
    Some(Advice {
        recommended_mib,
        reaches_target,
        predicted_hit_ratio: 1.0 - curve.miss_ratio_at(recommended_mib as f64 * MIB)?,
        best_hit_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampledCurve;

    /// 100 keys of 64 KiB, each referenced ten times round-robin: everything misses below the
    /// working set (6.25 MiB), and 90 % hits from it.
    fn loop_curve() -> Curve {
        let curve = SampledCurve::new(1000);
        for _ in 0..10 {
            for key in 0..100u64 {
                curve.record(key.wrapping_mul(0x9E3779B97F4A7C15) >> 40, Some(64 * 1024));
            }
        }
        curve.snapshot()
    }

    #[test]
    fn only_cold_misses_give_no_advice() {
        let curve = SampledCurve::new(1000);
        for key in 0..100u64 {
            curve.record(key.wrapping_mul(0x9E3779B97F4A7C15) >> 40, Some(64 * 1024));
        }
        assert_eq!(advise(&curve.snapshot(), 0.95), None);
        assert!(advise(&loop_curve(), 0.95).is_some());
    }

    #[test]
    fn the_target_is_reached_at_the_working_set() {
        let advice = advise(&loop_curve(), 0.85).unwrap();
        assert!(advice.reaches_target);
        assert!((7..=8).contains(&advice.recommended_mib), "{advice:?}");
        assert!((advice.predicted_hit_ratio - 0.9).abs() < 1e-9);
    }

    #[test]
    fn an_unreachable_target_falls_back_to_the_knee() {
        let advice = advise(&loop_curve(), 0.95).unwrap();
        assert!(!advice.reaches_target);
        assert!((advice.best_hit_ratio - 0.9).abs() < 1e-9);
        assert!((7..=8).contains(&advice.recommended_mib), "{advice:?}");
        assert!(advise(&Curve::default(), 0.9).is_none());
    }
}
