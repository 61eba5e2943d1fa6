//! One metrics recorder for tests: counters and gauges in atomics (the `metrics` crate's own
//! `AtomicU64` handles; gauges hold `f64` bits), histograms as their number of samples, each read
//! back by its series name `name{label=value,...}` with the labels sorted (`name{}` without labels).
//!
//! Not metrics-util's `DebuggingRecorder`: its snapshots reset counters and gauges to zero, so a
//! gauge read twice, or moved after a read, would be wrong.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

type Series<T> = Arc<Mutex<HashMap<String, Arc<T>>>>;

#[derive(Clone, Default)]
pub struct CapturingRecorder {
    counters: Series<AtomicU64>,
    gauges: Series<AtomicU64>,
    histograms: Series<SampleCount>,
}

#[derive(Default)]
struct SampleCount(AtomicU64);

impl HistogramFn for SampleCount {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// `name{a=1,b=2}`, labels sorted by name.
pub fn series_name(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

fn handle<T: Default>(series: &Series<T>, key: &Key) -> Arc<T> {
    series
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(series_name(key))
        .or_default()
        .clone()
}

fn read<T>(series: &Series<T>, name: &str, value: impl Fn(&T) -> u64) -> u64 {
    series
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
        .map_or(0, |handle| value(handle))
}

impl CapturingRecorder {
    /// The recorder of this test binary, installed as the global recorder on first use.
    pub fn global() -> &'static CapturingRecorder {
        static GLOBAL: OnceLock<CapturingRecorder> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let recorder = CapturingRecorder::default();
            metrics::set_global_recorder(recorder.clone())
                .expect("no other global recorder in this test binary");
            recorder
        })
    }

    /// A counter's value (0 if never touched).
    pub fn counter(&self, series: &str) -> u64 {
        read(&self.counters, series, |value| {
            value.load(Ordering::Relaxed)
        })
    }

    /// A gauge's value (0 if never set).
    pub fn gauge(&self, series: &str) -> f64 {
        f64::from_bits(read(&self.gauges, series, |value| {
            value.load(Ordering::Relaxed)
        }))
    }

    /// How many samples a histogram recorded.
    pub fn histogram_count(&self, series: &str) -> u64 {
        read(&self.histograms, series, |value| {
            value.0.load(Ordering::Relaxed)
        })
    }
}

impl Recorder for CapturingRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(handle(&self.counters, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(handle(&self.gauges, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(handle(&self.histograms, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_recorded() {
        let recorder = CapturingRecorder::default();
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("requests", "b" => "2", "a" => "1").increment(3);
            metrics::gauge!("bytes", "tier" => "memory").set(10.0);
            metrics::gauge!("bytes", "tier" => "memory").decrement(2.5);
            metrics::histogram!("latency").record(0.1);
            metrics::histogram!("latency").record(0.2);
        });
        assert_eq!(recorder.counter("requests{a=1,b=2}"), 3);
        assert_eq!(recorder.gauge("bytes{tier=memory}"), 7.5);
        assert_eq!(recorder.histogram_count("latency{}"), 2);
        assert_eq!(recorder.counter("absent{}"), 0);
    }
}
