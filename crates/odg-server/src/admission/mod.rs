//! Admission control: a limit on the requests handled at once, a bounded queue of requests waiting
//! for a slot, and shedding of everything beyond with 503, `Retry-After` and a JSON error, so an
//! overloaded pod stays fast for the requests it admits and tells the others clearly to come back
//! (or go to another pod).
//!
//! Two modes:
//! - `adaptive` (the default): the limit follows measured handler latency
//!   ([`gradient`]: a gradient against the latency measured at low concurrency, within
//!   `[min_concurrent, max_concurrent]`), and the queue sheds by waiting time
//!   ([`codel`]: a standing queue is served newest first and its stale waiters are shed at once).
//!   So under overload admitted requests run at about the latency of an unloaded pod, and the
//!   excess is answered 503 within milliseconds instead of after `max_wait`.
//! - `fixed`: `max_concurrent` at once, the queue FIFO, each waiter shed after `max_wait`.
//!
//! In both, `max_concurrent`, `max_queued` and `max_wait` are hard bounds, and memory is bounded
//! by them: a waiter is one queue entry and one channel.

mod codel;
mod gradient;
mod slots;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use serde::Deserialize;

use crate::metrics::{ADMISSION_LIMIT, ADMITTED_IN_FLIGHT, QUEUE_WAIT, REQUESTS_SHED};
use crate::ApiError;
use codel::Codel;
use gradient::{GradientController, Limiter, PROBE_INTERVAL};
pub use slots::Shed;
use slots::Slots;

/// How the concurrency limit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdmissionMode {
    /// `max_concurrent` at once, FIFO queue, `max_wait`.
    Fixed,
    /// A limit following measured latency, and a queue shedding by waiting time.
    #[default]
    Adaptive,
}

impl AdmissionMode {
    pub const NAMES: [&'static str; 2] = ["fixed", "adaptive"];

    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionMode::Fixed => "fixed",
            AdmissionMode::Adaptive => "adaptive",
        }
    }
}

impl fmt::Display for AdmissionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AdmissionMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "fixed" => Ok(AdmissionMode::Fixed),
            "adaptive" => Ok(AdmissionMode::Adaptive),
            other => Err(format!(
                "unknown admission mode {other:?} (one of: {})",
                AdmissionMode::NAMES.join(", ")
            )),
        }
    }
}

/// The defaults, in one place (the CLI's help and the configuration file's documentation name
/// them).
pub mod defaults {
    use super::AdmissionMode;

    /// Fixed until adaptive mode is tuned: in the end-to-end tests its CoDel queue shed requests
    /// of a pod serving four uncached requests at once (a 5 ms queue target against 100 ms
    /// handlers and a floor of two), which an operator would call an outage, not protection.
    pub const MODE: AdmissionMode = AdmissionMode::Fixed;
    /// The hard ceiling of requests handled at once (in adaptive mode, of the limit).
    pub const MAX_CONCURRENT: usize = 256;
    pub const MAX_QUEUED: usize = 1024;
    pub const MAX_WAIT_MS: u64 = 2_000;
    /// CoDel's target: a standing queue is one whose oldest waiter waited longer than this
    /// throughout an interval. CoDel's own default for networks; a waiter of an overloaded queue
    /// is shed after twice it.
    pub const QUEUE_TARGET_MS: u64 = 5;
    /// CoDel's interval (its own default).
    pub const QUEUE_INTERVAL_MS: u64 = 100;

    /// The adaptive limit's floor: the CPUs this process may use (at that concurrency a
    /// CPU-bound mix is not yet slowed by its own load), at least 2.
    pub fn min_concurrent() -> usize {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2)
            .max(2)
    }
}

#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    pub mode: AdmissionMode,
    /// Fixed mode: the limit; adaptive mode: the ceiling of the limit.
    pub max_concurrent: usize,
    /// Adaptive mode: the floor of the limit (at most `max_concurrent`).
    pub min_concurrent: usize,
    pub max_queued: usize,
    pub max_wait: Duration,
    /// Adaptive mode: CoDel's target wait.
    pub queue_target: Duration,
    /// Adaptive mode: CoDel's interval.
    pub queue_interval: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            mode: defaults::MODE,
            max_concurrent: defaults::MAX_CONCURRENT,
            min_concurrent: defaults::min_concurrent(),
            max_queued: defaults::MAX_QUEUED,
            max_wait: Duration::from_millis(defaults::MAX_WAIT_MS),
            queue_target: Duration::from_millis(defaults::QUEUE_TARGET_MS),
            queue_interval: Duration::from_millis(defaults::QUEUE_INTERVAL_MS),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admission {
    slots: Arc<Slots>,
    retry_after_seconds: u64,
}

/// Counts an admitted request until it ends, however it ends.
struct Admitted;

impl Drop for Admitted {
    fn drop(&mut self) {
        warm_path_metrics().admitted_in_flight.decrement(1.0);
    }
}

/// The handles every admitted request touches, registered on the first request (after
/// `odg serve` installed the recorder), so the warm path does no registry lookups.
struct WarmPathMetrics {
    queue_wait: metrics::Histogram,
    admitted_in_flight: metrics::Gauge,
}

fn warm_path_metrics() -> &'static WarmPathMetrics {
    static METRICS: std::sync::OnceLock<WarmPathMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| WarmPathMetrics {
        queue_wait: histogram!(QUEUE_WAIT),
        admitted_in_flight: gauge!(ADMITTED_IN_FLIGHT),
    })
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Admission {
        let epoch = tokio::time::Instant::now();
        let ceiling = config.max_concurrent.max(1);
        let (limit, limiter, codel) = match config.mode {
            AdmissionMode::Fixed => (ceiling, None, None),
            AdmissionMode::Adaptive => {
                // Pods started together should not all probe at the same moment: up to a third
                // of the probe interval later, by the start time's nanoseconds.
                let jitter = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| u64::from(since.subsec_nanos()))
                    % (PROBE_INTERVAL / 3);
                let controller = GradientController::new(
                    config.min_concurrent,
                    ceiling,
                    PROBE_INTERVAL + jitter,
                    codel::nanos(config.queue_target),
                );
                (
                    controller.limit(),
                    Some(Limiter::new(controller, 0)),
                    Some(Codel::new(config.queue_target, config.queue_interval, 0)),
                )
            }
        };
        gauge!(ADMISSION_LIMIT).set(limit as f64);
        Admission {
            slots: Arc::new(Slots::new(
                limit,
                limiter,
                codel,
                config.max_queued,
                config.max_wait,
                epoch,
            )),
            retry_after_seconds: config.max_wait.as_secs().max(1),
        }
    }

    /// The concurrency limit now.
    pub fn limit(&self) -> usize {
        self.slots.limit()
    }

    fn shed(&self, reason: Shed) -> Response {
        counter!(REQUESTS_SHED, "reason" => reason.as_str()).increment(1);
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is at capacity; retry after the time in Retry-After",
        )
        .with("reason", serde_json::Value::String(reason.as_str().into()))
        .with_retry_after(self.retry_after_seconds)
        .into_response()
    }
}

/// An admitted request: holds its slot until [`Entered::leave`] (or its drop, when the client
/// went away and the request was dropped: then the slot is released without a latency sample).
pub(crate) struct Entered {
    slot: slots::Slot,
    admitted_at: std::time::Instant,
    _counted: Admitted,
}

impl Entered {
    /// The handler's time is the limiter's sample.
    pub(crate) fn leave(self) {
        let Entered {
            slot,
            admitted_at,
            _counted,
        } = self;
        slot.complete(admitted_at.elapsed());
    }
}

impl Admission {
    /// Waits for a slot (or not at all, when the queue sheds): the request may go on, or here is
    /// its 503.
    pub(crate) async fn enter(&self) -> Result<Entered, Response> {
        let started = std::time::Instant::now();
        let slot = match self.slots.acquire().await {
            Ok(slot) => slot,
            Err(reason) => {
                if reason != Shed::QueueFull {
                    warm_path_metrics()
                        .queue_wait
                        .record(started.elapsed().as_secs_f64());
                }
                return Err(self.shed(reason));
            }
        };
        Ok(Admission::entered(slot, started))
    }

    /// Admitted at once, if a slot is free: what [`Admission::enter`] does first, without a
    /// future (the warm path's middleware takes this and awaits `enter` only when it fails).
    pub(crate) fn try_enter(&self) -> Option<Entered> {
        let started = std::time::Instant::now();
        let slot = self.slots.try_acquire()?;
        Some(Admission::entered(slot, started))
    }

    fn entered(slot: slots::Slot, started: std::time::Instant) -> Entered {
        let admitted_at = std::time::Instant::now();
        let metrics = warm_path_metrics();
        metrics
            .queue_wait
            .record(admitted_at.duration_since(started).as_secs_f64());
        metrics.admitted_in_flight.increment(1.0);
        Entered {
            slot,
            admitted_at,
            _counted: Admitted,
        }
    }
}
