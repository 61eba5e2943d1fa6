//! The metrics a retried request emits, captured by a test recorder installed once for this binary.

use odg_oci::OciStore;
use odg_test_support::{CapturingRecorder, FakeRegistry, Fault, OciImageFixture, PathKind};

use crate::endpoint;

/// The recorder of this test binary (shared with `tls.rs`).
pub(crate) fn values() -> &'static CapturingRecorder {
    CapturingRecorder::global()
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

    // a series is a counter or a histogram (its sample count); the other kind reads 0
    let get = |key: String| (values.counter(&key) + values.histogram_count(&key)) as f64;
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

    // a series is a counter or a histogram (its sample count); the other kind reads 0
    let get = |key: String| (values.counter(&key) + values.histogram_count(&key)) as f64;
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
