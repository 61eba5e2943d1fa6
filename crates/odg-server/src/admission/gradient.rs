//! The adaptive concurrency limit: a gradient on measured latency against a baseline measured at
//! low concurrency, in the manner of Envoy's adaptive concurrency filter (itself after Netflix's
//! concurrency-limits).
//!
//! Every window (at least 100 ms and 16 requests, at most 1 s) the 90th percentile of the time
//! admitted requests spent in their handlers (the window's latency: the tail, which is what
//! overload spoils first and what clients feel, while a median can sit still as the tail grows)
//! is compared with the target, `TOLERANCE` times the baseline but at least the baseline plus a
//! slack (the queue's target; see [`GradientController::new`]), and the
//! limit is multiplied by the gradient `target / latency`: by at least 0.5 (one odd window cannot
//! empty the pod) and, growing, by at most 2, and only if the limit is what held requests back
//! (at least half of it was in use). When latency grows with concurrency (a CPU-bound pod), one
//! step lands near the concurrency at which the latency is at the target, and there it stays; an
//! additive increase (Envoy's square-root headroom) would overshoot small limits at every other
//! window (from 3 to 5 on two cores: 2.5x the baseline).
//!
//! The limit stays within `[floor, ceiling]` (`--admission-min-limit`, `--max-concurrent-requests`).
//!
//! **Why a gradient, not AIMD.** AIMD needs a congestion signal: dropped requests (timeouts), or
//! an absolute latency threshold. odg's routes span four orders of magnitude (a warm descriptor in
//! 0.3 ms, a cold dependency walk in seconds), so no single threshold fits every deployment and
//! mix, and timeouts come only after the queue has been long for a while. A gradient compares
//! latency with what the same mix takes when the pod is not loaded: no threshold to configure,
//! and the limit moves in proportion to how far latency is off, not by a fixed step.
//!
//! **Why a baseline measured at low concurrency, not Netflix Gradient2's long-term average.** Under
//! sustained overload a long-term average follows the inflated latency upwards, and the limit with
//! it. The baseline here is the latency of windows in which at most `floor` requests ran at once
//! (by definition of the floor, unloaded): they come by themselves whenever load is light, and
//! whenever the limit is at the floor. A pod busy above the floor for `PROBE_INTERVAL` (plus
//! jitter, so a fleet started together does not probe together) drops to the floor until one such
//! window has been measured (Envoy's minRTT recalculation), then resumes its limit.
//!
//! **Why it cannot collapse for good.** A slower mix (cold walks, a slow registry) first drives the
//! limit down; at the floor its windows are unloaded by definition, so within a few windows the
//! baseline is the slow mix's latency and the limit grows again.
//!
//! Times are nanoseconds since the admission's epoch and are passed in: the controller's tests
//! feed windows directly, without clocks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

/// Median latency up to this multiple of the baseline counts as unloaded.
pub(crate) const TOLERANCE: f64 = 1.5;
/// The largest decrease in one window (halving), so one odd window cannot empty the pod.
const MAX_DECREASE: f64 = 0.5;
/// The largest increase in one window.
const MAX_INCREASE: f64 = 2.0;
/// Weight of a new unloaded window in the baseline.
const BASELINE_WEIGHT: f64 = 0.25;
const MIN_WINDOW: u64 = 100_000_000;
const MAX_WINDOW: u64 = 1_000_000_000;
/// Enough for a 90th percentile that is not just the maximum.
const MIN_WINDOW_SAMPLES: u64 = 16;
/// A pod busy above the floor this long measures its baseline again.
pub(crate) const PROBE_INTERVAL: u64 = 30_000_000_000;

/// What one window measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowStats {
    /// The window's latency: the 90th percentile of handler times, nanoseconds.
    pub latency: u64,
    pub samples: u64,
    /// The most requests admitted at once during the window.
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// At the ceiling until the first window: a new pod admits like a fixed one, and takes that
    /// window's latency as its first baseline (an overestimate if it started under load; unloaded
    /// windows and the periodic measurement correct it).
    Starting,
    /// At the floor until a window with at most `floor` requests in flight has been measured,
    /// then back to `resume`.
    Measuring {
        resume: f64,
        baseline: Option<u64>,
    },
    Tracking {
        baseline: u64,
    },
}

/// The limit's arithmetic, without atomics or clocks.
#[derive(Debug)]
pub(crate) struct GradientController {
    floor: f64,
    ceiling: f64,
    limit: f64,
    phase: Phase,
    /// When the baseline was last measured.
    measured_at: u64,
    probe_interval: u64,
    /// Latency this far above the baseline is within target whatever the ratio (see `new`).
    slack: u64,
}

impl GradientController {
    /// Starts at the ceiling (see [`Phase::Starting`]). The target is `TOLERANCE` times the
    /// baseline, but at least the baseline plus `slack` (the queue's CoDel target): for warm
    /// answers of a few microseconds a rise to 2x is noise, and limiting for it would send
    /// requests through the queue, whose mutex, channel and timer cost more than the rise
    /// (measured: 10-25 % of warm throughput at 16 clients without the slack).
    pub(crate) fn new(
        floor: usize,
        ceiling: usize,
        probe_interval: u64,
        slack: u64,
    ) -> GradientController {
        let ceiling = ceiling.max(1) as f64;
        let floor = (floor.max(1) as f64).min(ceiling);
        GradientController {
            floor,
            ceiling,
            limit: ceiling,
            phase: Phase::Starting,
            measured_at: 0,
            probe_interval,
            slack,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        match self.phase {
            Phase::Measuring { .. } => self.floor as usize,
            Phase::Starting | Phase::Tracking { .. } => {
                self.limit.clamp(self.floor, self.ceiling) as usize
            }
        }
    }

    /// The unloaded latency the limit is judged against, nanoseconds.
    pub(crate) fn baseline(&self) -> Option<u64> {
        match self.phase {
            Phase::Starting => None,
            Phase::Measuring { baseline, .. } => baseline,
            Phase::Tracking { baseline } => Some(baseline),
        }
    }

    /// Takes one window's figures; returns the new limit.
    pub(crate) fn on_window(&mut self, now: u64, window: WindowStats) -> usize {
        if window.samples == 0 {
            return self.limit();
        }
        let unloaded = window.max_in_flight as f64 <= self.floor;
        let baseline = match self.phase {
            Phase::Starting => {
                self.phase = Phase::Tracking {
                    baseline: window.latency.max(1),
                };
                self.measured_at = now;
                return self.limit();
            }
            Phase::Measuring { resume, .. } => {
                if unloaded {
                    self.phase = Phase::Tracking {
                        baseline: window.latency.max(1),
                    };
                    self.measured_at = now;
                    self.limit = resume;
                }
                // Otherwise requests admitted before the limit fell are still running: wait.
                return self.limit();
            }
            Phase::Tracking { baseline } => baseline,
        };
        let baseline = if unloaded {
            self.measured_at = now;
            let blended =
                baseline as f64 * (1.0 - BASELINE_WEIGHT) + window.latency as f64 * BASELINE_WEIGHT;
            blended.max(1.0) as u64
        } else if now.saturating_sub(self.measured_at) >= self.probe_interval {
            self.phase = Phase::Measuring {
                resume: self.limit,
                baseline: Some(baseline),
            };
            return self.limit();
        } else {
            baseline
        };
        self.phase = Phase::Tracking { baseline };
        let target = (baseline as f64 * TOLERANCE).max(baseline.saturating_add(self.slack) as f64);
        let gradient = target / window.latency.max(1) as f64;
        if gradient < 1.0 {
            self.limit *= gradient.max(MAX_DECREASE);
        } else if window.max_in_flight as f64 * 2.0 >= self.limit {
            // Grow only when the limit is what holds requests back: an idle pod's limit would
            // otherwise drift to the ceiling and protect nothing when load comes.
            self.limit *= gradient.min(MAX_INCREASE);
        }
        self.limit = self.limit.clamp(self.floor, self.ceiling);
        self.limit()
    }
}

/// Latency histogram buckets: exact below 8 ns, then 8 per power of two (within 6 %), up to
/// 2^40 ns (18 minutes).
const BUCKETS: usize = 38 * 8;

fn bucket_of(nanos: u64) -> usize {
    let nanos = nanos.min((1 << 40) - 1);
    if nanos < 8 {
        return nanos as usize;
    }
    let exponent = 63 - nanos.leading_zeros() as usize;
    let mantissa = ((nanos >> (exponent - 3)) & 7) as usize;
    ((exponent - 2) * 8 + mantissa).min(BUCKETS - 1)
}

/// The middle of a bucket, nanoseconds.
fn bucket_value(index: usize) -> u64 {
    if index < 8 {
        return index as u64;
    }
    let exponent = index / 8 + 2;
    let lower = (8 + (index % 8) as u64) << (exponent - 3);
    lower + (1 << (exponent - 3)) / 2
}

/// The percentile of the window's latencies that the limit controls.
const CONTROL_PERCENTILE: f64 = 0.9;

/// The `fraction` percentile of the counted latencies, and their number.
fn percentile_of(counts: &[u64], fraction: f64) -> (u64, u64) {
    let total: u64 = counts.iter().sum();
    let rank = ((total as f64 * fraction).ceil() as u64).max(1);
    let mut seen = 0;
    for (index, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return (bucket_value(index), total);
        }
    }
    (0, total)
}

/// The limit as the request path sees it: samples go into atomic counters (no lock per request);
/// the request that finds its window over takes the controller (a `try_lock`, never waited for)
/// and computes the next limit.
#[derive(Debug)]
pub(crate) struct Limiter {
    buckets: Box<[AtomicU64]>,
    samples: AtomicU64,
    window_start: AtomicU64,
    max_in_flight: AtomicUsize,
    controller: Mutex<GradientController>,
}

/// A window closed: the new limit and the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitUpdate {
    pub limit: usize,
    pub baseline: Option<u64>,
}

impl Limiter {
    pub(crate) fn new(controller: GradientController, now: u64) -> Limiter {
        Limiter {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            samples: AtomicU64::new(0),
            window_start: AtomicU64::new(now),
            max_in_flight: AtomicUsize::new(0),
            controller: Mutex::new(controller),
        }
    }

    /// A request was admitted and `in_flight` now run.
    pub(crate) fn on_admit(&self, in_flight: usize) {
        // A plain load first: the shared line is written only when the maximum grows.
        if in_flight > self.max_in_flight.load(Ordering::Relaxed) {
            self.max_in_flight.fetch_max(in_flight, Ordering::Relaxed);
        }
    }

    /// Records one handled request's latency at `now`; returns the new limit when this call
    /// closed a window. `in_flight` (admitted now) starts the next window's maximum.
    pub(crate) fn on_complete(
        &self,
        latency: u64,
        now: u64,
        in_flight: usize,
    ) -> Option<LimitUpdate> {
        self.buckets[bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
        let samples = self.samples.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.due(now, samples) {
            return None;
        }
        let mut controller = match self.controller.try_lock() {
            Ok(controller) => controller,
            // A panic cannot leave the controller half-updated (it only does arithmetic).
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another request is closing this window.
            Err(TryLockError::WouldBlock) => return None,
        };
        // It may have closed it between our check and the lock.
        if !self.due(now, self.samples.load(Ordering::Relaxed)) {
            return None;
        }
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.swap(0, Ordering::Relaxed))
            .collect();
        self.samples.store(0, Ordering::Relaxed);
        self.window_start.store(now, Ordering::Relaxed);
        let max_in_flight = self.max_in_flight.swap(in_flight, Ordering::Relaxed);
        let (latency, total) = percentile_of(&counts, CONTROL_PERCENTILE);
        let limit = controller.on_window(
            now,
            WindowStats {
                latency,
                samples: total,
                max_in_flight,
            },
        );
        Some(LimitUpdate {
            limit,
            baseline: controller.baseline(),
        })
    }

    fn due(&self, now: u64, samples: u64) -> bool {
        let elapsed = now.saturating_sub(self.window_start.load(Ordering::Relaxed));
        (elapsed >= MIN_WINDOW && samples >= MIN_WINDOW_SAMPLES)
            || (elapsed >= MAX_WINDOW && samples > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const WINDOW: u64 = 100 * MS;

    fn window(latency_ms: f64, max_in_flight: usize) -> WindowStats {
        WindowStats {
            latency: (latency_ms * MS as f64) as u64,
            samples: 50,
            max_in_flight,
        }
    }

    /// A controller (floor 2, ceiling 256) that has measured a 10 ms baseline and runs at `limit`.
    fn tracking_at(limit: f64) -> (GradientController, u64) {
        let mut controller = GradientController::new(2, 256, PROBE_INTERVAL, 0);
        assert_eq!(controller.on_window(WINDOW, window(10.0, 2)), 256);
        assert_eq!(controller.baseline(), Some(10 * MS));
        controller.limit = limit;
        (controller, WINDOW)
    }

    /// A pod whose latency grows with concurrency beyond `cores` (CPU-bound), 10 ms alone.
    fn cpu_bound(limit: usize, cores: usize) -> f64 {
        10.0 * (limit as f64 / cores as f64).max(1.0)
    }

    #[test]
    fn a_new_pod_admits_up_to_the_ceiling_and_takes_its_first_window_as_baseline() {
        let mut controller = GradientController::new(4, 256, PROBE_INTERVAL, 0);
        assert_eq!(controller.limit(), 256);
        assert_eq!(controller.baseline(), None);
        assert_eq!(controller.on_window(WINDOW, window(40.0, 9)), 256);
        assert_eq!(controller.baseline(), Some(40 * MS));
        // A slower window after that is judged against it.
        assert_eq!(controller.on_window(2 * WINDOW, window(120.0, 200)), 128);
    }

    #[test]
    fn latency_within_tolerance_grows_the_limit_while_it_is_in_use() {
        let (mut controller, mut now) = tracking_at(20.0);
        let mut last = controller.limit();
        for _ in 0..5 {
            now += WINDOW;
            let limit = controller.on_window(now, window(12.0, last));
            assert!(limit > last, "{limit} > {last}");
            last = limit;
        }
        // Not while most of it is unused: the pod is not what holds requests back.
        now += WINDOW;
        assert_eq!(controller.on_window(now, window(12.0, last / 4)), last);
    }

    #[test]
    fn the_ceiling_holds() {
        let (mut controller, mut now) = tracking_at(250.0);
        for _ in 0..10 {
            now += WINDOW;
            controller.on_window(now, window(10.0, 256));
        }
        assert_eq!(controller.limit(), 256);
    }

    #[test]
    fn a_cpu_bound_overload_settles_near_the_cores_and_stays_within_tolerance() {
        let (mut controller, mut now) = tracking_at(64.0);
        let mut limits = Vec::new();
        for _ in 0..50 {
            now += WINDOW;
            let in_use = controller.limit();
            limits.push(controller.on_window(now, window(cpu_bound(in_use, 2), in_use)));
        }
        let settled = &limits[10..];
        assert!(
            settled.iter().all(|&limit| (2..=4).contains(&limit)),
            "{limits:?}"
        );
        // The latency at each settled limit is at most 2x the 10 ms alone.
        assert!(
            settled.iter().all(|&limit| cpu_bound(limit, 2) <= 20.0),
            "{limits:?}"
        );
    }

    #[test]
    fn fast_answers_may_slow_down_by_the_slack_whatever_the_ratio() {
        // A 50 us baseline with 5 ms of slack: 3 ms is 60x the baseline, and still within target.
        let mut controller = GradientController::new(2, 256, PROBE_INTERVAL, 5 * MS);
        controller.on_window(WINDOW, window(0.05, 2));
        controller.limit = 16.0;
        assert!(controller.on_window(2 * WINDOW, window(3.0, 16)) >= 16);
        assert!(controller.on_window(3 * WINDOW, window(20.0, 16)) < 16);
    }

    #[test]
    fn one_slow_window_at_most_halves_the_limit() {
        let (mut controller, now) = tracking_at(100.0);
        assert_eq!(
            controller.on_window(now + WINDOW, window(10_000.0, 100)),
            50
        );
    }

    #[test]
    fn a_slower_request_mix_cannot_hold_the_limit_at_the_floor() {
        // The mix turns to 60 ms requests whatever the concurrency (an I/O-bound route with a
        // slow upstream): six times the baseline.
        let (mut controller, mut now) = tracking_at(64.0);
        let mut limits = Vec::new();
        for _ in 0..60 {
            now += WINDOW;
            let in_use = controller.limit();
            limits.push(controller.on_window(now, window(60.0, in_use)));
        }
        assert!(
            limits[..8].contains(&2),
            "falls to the floor first: {limits:?}"
        );
        assert!(
            limits[8..].windows(2).all(|pair| pair[1] >= pair[0]),
            "then only grows: {limits:?}"
        );
        // At the floor the windows are unloaded: the baseline becomes the slow mix's latency ...
        let baseline = controller.baseline().unwrap_or(0);
        assert!(
            baseline as f64 * TOLERANCE >= 60.0 * MS as f64,
            "{baseline}"
        );
        // ... and the limit recovers, growing again while latency stays flat.
        assert!(*limits.last().unwrap_or(&0) > 64, "{limits:?}");
    }

    #[test]
    fn a_busy_pod_measures_its_baseline_again_and_resumes_its_limit() {
        let (mut controller, mut now) = tracking_at(40.0);
        // Busy above the floor, latency fine, for the whole probe interval.
        let mut limit = controller.limit();
        while now < WINDOW + PROBE_INTERVAL - WINDOW {
            now += WINDOW;
            limit = controller.on_window(now, window(11.0, limit / 2));
        }
        assert!(limit > 2);
        now += WINDOW;
        assert_eq!(
            controller.on_window(now, window(11.0, limit / 2)),
            2,
            "probe at the floor"
        );
        // Requests from before still running: keeps measuring.
        now += WINDOW;
        assert_eq!(controller.on_window(now, window(11.0, limit / 2)), 2);
        // Measured at the floor: the mix got faster, and the limit is back where it was.
        now += WINDOW;
        assert_eq!(controller.on_window(now, window(4.0, 2)), limit);
        assert_eq!(controller.baseline(), Some(4 * MS));
    }

    #[test]
    fn unloaded_windows_move_the_baseline_gradually() {
        let (mut controller, now) = tracking_at(20.0);
        controller.on_window(now + WINDOW, window(30.0, 1));
        assert_eq!(controller.baseline(), Some(15 * MS));
    }

    #[test]
    fn buckets_are_within_six_percent() {
        for nanos in [
            0,
            1,
            7,
            8,
            15,
            16,
            1_000,
            123_456,
            10_000_000,
            3_000_000_000,
        ] {
            let value = bucket_value(bucket_of(nanos));
            let error = (value as f64 - nanos as f64).abs() / (nanos as f64).max(1.0);
            assert!(error <= 0.0625, "{nanos}: {value}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn the_limiter_closes_windows_by_time_and_count() {
        let limiter = Limiter::new(GradientController::new(2, 64, PROBE_INTERVAL, 0), 0);
        limiter.on_admit(1);
        // Not before 100 ms, however many samples.
        for _ in 0..20 {
            assert_eq!(limiter.on_complete(5 * MS, 50 * MS, 0), None);
        }
        // At 100 ms with enough samples: the first window's latency becomes the baseline.
        let update = limiter.on_complete(5 * MS, 100 * MS, 0);
        assert_eq!(update.map(|update| update.limit), Some(64));
        let baseline = update.and_then(|update| update.baseline).unwrap_or(0);
        assert!(baseline.abs_diff(5 * MS) < MS / 3, "{baseline}");
        // A single sample closes a window only after a second.
        assert_eq!(limiter.on_complete(5 * MS, 500 * MS, 0), None);
        assert!(limiter.on_complete(5 * MS, 1_100 * MS, 0).is_some());
    }
}
