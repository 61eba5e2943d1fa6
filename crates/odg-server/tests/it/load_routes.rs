//! `/metrics` after mixed traffic, the in-flight gauge under errors and dropped requests, and
//! admission control under overload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use odg_components::{
    ComponentError, ComponentId, ComponentSource, FetchedDescriptor, OciComponentSource,
    OciSourceLimits,
};
use odg_ocm::{OcmRepositoryUrl, RepositoryMapping};
use odg_server::{AdmissionConfig, AdmissionMode, AppState};
use odg_test_support::prometheus::{samples, value_of};
use tower::ServiceExt;

use crate::support::{demo_stores, rule, send_whole, service_of_source};

/// A source that takes its time, to hold requests in flight.
#[derive(Debug)]
struct SlowSource {
    inner: OciComponentSource,
    delay: Duration,
}

#[async_trait]
impl ComponentSource for SlowSource {
    async fn descriptor(
        &self,
        repository: &OcmRepositoryUrl,
        component: &ComponentId,
    ) -> Result<Option<Arc<FetchedDescriptor>>, ComponentError> {
        tokio::time::sleep(self.delay).await; // under test: a slow origin
        self.inner.descriptor(repository, component).await
    }

    async fn versions(
        &self,
        repository: &OcmRepositoryUrl,
        name: &str,
    ) -> Result<Vec<String>, ComponentError> {
        tokio::time::sleep(self.delay).await; // under test: a slow origin
        self.inner.versions(repository, name).await
    }
}

async fn slow_state(delay: Duration, directory: &tempfile::TempDir) -> AppState {
    let (stores, repository) = demo_stores(directory.path()).await;
    let source = SlowSource {
        inner: OciComponentSource::new(Arc::new(stores), OciSourceLimits::default()),
        delay,
    };
    let service = service_of_source(
        Arc::new(source),
        RepositoryMapping::new(vec![rule(repository)]),
        vec![],
    );
    AppState::new(service).with_metrics(odg_server::metrics::install_recorder())
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let answer = send_whole(router, Request::get(uri).body(Body::empty()).unwrap()).await;
    let body = String::from_utf8(answer.body.to_vec()).unwrap();
    let (status, headers) = (answer.status, answer.headers);
    (status, headers, body)
}

#[tokio::test]
async fn metrics_cover_every_family_with_bounded_labels_and_in_flight_returns_to_zero() {
    let directory = tempfile::tempdir().unwrap();
    let router = odg_server::router(slow_state(Duration::from_millis(1), &directory).await);
    assert_eq!(
        get(&router, "/ocm/component?component_name=acme.org/shop/cart")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/ocm/component?component_name=acme.org/nothing")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&router, "/ocm/component").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&router, "/no/such/path/abc123").await.0,
        StatusCode::NOT_FOUND
    );
    // A request whose client goes away: the future is dropped mid-flight.
    let slow_router = odg_server::router(slow_state(Duration::from_secs(5), &directory).await);
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        slow_router.clone().oneshot(
            Request::get("/ocm/component?component_name=acme.org/shop/cart")
                .body(Body::empty())
                .unwrap(),
        ),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the request was still in flight when dropped"
    );

    let (status, headers, text) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    for family in [
        "http_server_request_duration_seconds",
        "http_server_active_requests",
        "odg_request_queue_wait_seconds",
        "odg_request_queue_waiting",
        "odg_cpu_pool_wait_seconds",
        "odg_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "tokio_runtime_workers",
        "tokio_runtime_global_queue_depth",
        "tokio_runtime_worker_busy_seconds_total",
    ] {
        assert!(
            !samples(&text, family).is_empty(),
            "{family} missing in:\n{text}"
        );
    }
    // Route templates, never raw paths; statuses as recorded.
    let durations = samples(&text, "http_server_request_duration_seconds_count");
    assert!(
        durations
            .iter()
            .any(|line| line.contains(r#"route="/ocm/component""#)
                && line.contains(r#"status="404""#))
    );
    assert!(durations
        .iter()
        .any(|line| line.contains(r#"status="400""#)));
    assert!(
        durations
            .iter()
            .any(|line| line.contains(r#"status="499""#)),
        "{durations:?}"
    );
    assert!(
        !text.contains("abc123") && !text.contains("acme.org/shop/cart"),
        "raw paths or parameters leaked"
    );
    for line in samples(&text, "http_server_active_requests") {
        if line.contains(r#"route="/metrics""#) {
            continue; // this very request
        }
        assert_eq!(value_of(line), 0.0, "{line}");
    }
}

#[tokio::test]
async fn overload_sheds_with_503_and_retry_after_while_admitted_requests_succeed_fixed() {
    overload_sheds_with_503_and_retry_after_while_admitted_requests_succeed(AdmissionMode::Fixed)
        .await;
}

#[tokio::test]
async fn overload_sheds_with_503_and_retry_after_while_admitted_requests_succeed_adaptive() {
    overload_sheds_with_503_and_retry_after_while_admitted_requests_succeed(
        AdmissionMode::Adaptive,
    )
    .await;
}

async fn overload_sheds_with_503_and_retry_after_while_admitted_requests_succeed(
    mode: AdmissionMode,
) {
    let directory = tempfile::tempdir().unwrap();
    let state = slow_state(Duration::from_millis(400), &directory)
        .await
        .with_admission(AdmissionConfig {
            mode,
            max_concurrent: 2,
            min_concurrent: 1,
            max_queued: 2,
            max_wait: Duration::from_millis(200),
            ..AdmissionConfig::default()
        });
    let router = odg_server::router(state);
    let started = Instant::now();
    let requests = (0..12).map(|index| {
        let router = router.clone();
        tokio::spawn(async move {
            get(
                &router,
                &format!(
                    "/ocm/component?component_name=acme.org/shop/cart&version=1.{}.0",
                    index % 4
                ),
            )
            .await
        })
    });
    let answers: Vec<_> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "nothing hangs: {:?}",
        started.elapsed()
    );
    let ok = answers
        .iter()
        .filter(|(status, ..)| *status == StatusCode::OK)
        .count();
    let shed: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(ok + shed.len(), answers.len(), "only 200s and 503s");
    assert!(ok >= 2, "the admitted requests succeed ({ok})");
    assert!(shed.len() >= 6, "the excess is shed ({})", shed.len());
    for (_, headers, body) in shed {
        assert!(headers.contains_key("retry-after"));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(body["error"].is_string(), "{body}");
        assert!(
            ["queue_full", "queue_timeout", "codel"]
                .contains(&body["reason"].as_str().unwrap_or("")),
            "{body}"
        );
    }
    // Health and metrics never queue, even now.
    let flood: Vec<_> = (0..4)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move {
                get(&router, "/ocm/component?component_name=acme.org/shop/cart").await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await; // lets the flood take the slots; the checks below hold either way
    assert_eq!(get(&router, "/live").await.0, StatusCode::OK);
    assert_eq!(get(&router, "/ready").await.0, StatusCode::OK);
    for request in flood {
        request.await.unwrap();
    }
    // And once the burst is over, requests are admitted again.
    assert_eq!(
        get(&router, "/ocm/component?component_name=acme.org/shop/cart")
            .await
            .0,
        StatusCode::OK
    );
}
