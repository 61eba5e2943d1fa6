//! The metrics a retried request emits, captured by a test recorder installed once for this binary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use odg_oci::OciStore;
use odg_test_support::{FakeRegistry, Fault, OciImageFixture, PathKind};

use crate::endpoint;

pub(crate) type Values = Arc<Mutex<HashMap<String, f64>>>;

#[derive(Debug, Default)]
struct CapturingRecorder {
    values: Values,
}

struct Handle {
    key: String,
    values: Values,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self
            .values
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.values
            .lock()
            .unwrap()
            .insert(self.key.clone(), value as f64);
    }
}

impl HistogramFn for Handle {
    fn record(&self, _value: f64) {
        // Histograms are captured as their sample count.
        *self
            .values
            .lock()
            .unwrap()
            .entry(self.key.clone())
            .or_default() += 1.0;
    }
}

fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for CapturingRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle {
            key: render(key),
            values: self.values.clone(),
        }))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Handle {
            key: render(key),
            values: self.values.clone(),
        }))
    }
}

pub(crate) fn values() -> Values {
    static VALUES: OnceLock<Values> = OnceLock::new();
    VALUES
        .get_or_init(|| {
            let recorder = CapturingRecorder::default();
            let values = recorder.values.clone();
            metrics::set_global_recorder(recorder).expect("no other recorder in this test binary");
            values
        })
        .clone()
}

#[tokio::test]
async fn retried_request_emits_counters_retries_and_durations() {
    let values = values();
    let image = OciImageFixture::simple("metrics");
    let fake = FakeRegistry::builder()
        .image("team/app", "1.0.0", &image)
        .fault(Fault::status(PathKind::Manifest, 1, 503))
        .start()
        .await;
    let host = fake.host();
    endpoint(&host)
        .get_manifest("team/app", "1.0.0")
        .await
        .unwrap();
    let _ = endpoint(&host)
        .get_manifest("team/app", "9.9.9")
        .await
        .unwrap_err();

    let values = values.lock().unwrap();
    let get = |key: String| values.get(&key).copied().unwrap_or_default();
    assert_eq!(
        get(format!(
            "odg_registry_requests_total{{host={host},operation=manifest,outcome=unavailable}}"
        )),
        1.0
    );
    assert_eq!(
        get(format!(
            "odg_registry_requests_total{{host={host},operation=manifest,outcome=ok}}"
        )),
        1.0
    );
    assert_eq!(
        get(format!(
            "odg_registry_requests_total{{host={host},operation=manifest,outcome=not_found}}"
        )),
        1.0
    );
    assert_eq!(
        get(format!(
            "odg_registry_retries_total{{host={host},operation=manifest}}"
        )),
        1.0
    );
    assert_eq!(
        get(format!(
            "odg_registry_request_duration_seconds{{host={host},operation=manifest}}"
        )),
        3.0
    );
}

#[tokio::test]
async fn redirects_are_counted_as_followed_or_refused() {
    let values = values();
    let image = OciImageFixture::simple("metrics-redirect");
    let (digest, _) = image.blobs().into_iter().next().unwrap();
    let storage = FakeRegistry::builder()
        .image("team/app", "1.0.0", &image)
        .start()
        .await;
    let fake = FakeRegistry::builder()
        .image("team/app", "1.0.0", &image)
        .fault(Fault::redirect(
            PathKind::Blob,
            1,
            307,
            &format!("{}/v2/team/app/blobs/{digest}", storage.url()),
        ))
        .fault(Fault::redirect(
            PathKind::Blob,
            1,
            307,
            "http://169.254.169.254/latest/meta-data/",
        ))
        .start()
        .await;
    let host = fake.host();
    let store = endpoint(&host);
    store.get_blob("team/app", &digest, 1 << 20).await.unwrap();
    store
        .get_blob("team/app", &digest, 1 << 20)
        .await
        .unwrap_err();

    let values = values.lock().unwrap();
    let get = |key: String| values.get(&key).copied().unwrap_or_default();
    assert_eq!(
        get(format!(
            "odg_registry_redirects_total{{host={host},outcome=followed}}"
        )),
        1.0
    );
    assert_eq!(
        get(format!(
            "odg_registry_redirects_total{{host={host},outcome=refused}}"
        )),
        1.0
    );
}
