//! Fills that end badly: one started before an invalidation (its value is older than the
//! invalidation), and one whose load fails. The registry sits behind a `DelayProxy` that can hold
//! every blob request, which freezes a fill between its manifest and its descriptor layer.

use std::time::{Duration, Instant};

use odg_test_support::{DelayProxy, PathKind, RegistryServer};
use reqwest::StatusCode;

use crate::cache_support::fleet_pod_args;
use crate::cache_support::{
    delete_cache, descriptor, fleet_tree, odg_push_one, revision_of, seed, shared_redis_url,
    start_pod, ApiRequest, Descriptor, SharedRedisPrefix, ADMIN_TOKEN,
};
use crate::harness::http_client;

fn pod_args(repository: &str, prefix: &str, pod: &str) -> Vec<String> {
    fleet_pod_args(
        pod,
        &shared_redis_url(),
        Some(prefix),
        &["--ocm-repo", repository],
    )
}

async fn wait_until(what: &str, timeout: Duration, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < timeout, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(5)).await; // polling: until the condition holds
    }
}

/// A request that arrives after `DELETE /cache` answered must not be answered with what a fill
/// that started before the invalidation loads: that value may be exactly what was invalidated.
/// Here the fill read the old manifest and waits for the old layer; meanwhile the descriptor is
/// corrected and invalidated on the same pod; a second request must get the correction.
/// (The second request's own fill finds the first fill's fleet lease and waits for an entry that
/// never comes, so today it answers only after `fleet_wait`, 3 s: the bug that
/// `a_failed_fill_on_one_pod_does_not_hold_up_the_other_pod` shows.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_after_an_invalidation_never_joins_a_fill_that_started_before_it() {
    let registry = RegistryServer::start().await;
    let registry_repository = format!("{}/ocm", registry.url());
    let tree = fleet_tree("original");
    seed(&registry_repository, &tree, 8).await;
    let proxy = DelayProxy::start(&registry.host(), Duration::ZERO).await;
    let repository = format!("{}/ocm", proxy.url());
    let prefix = SharedRedisPrefix::new("fill-invalidated");
    let pod = start_pod(pod_args(&repository, &prefix.prefix, "pod-a")).await;
    let target = tree
        .iter()
        .find(|d| d.name == "acme.org/fleet/leaf-05" && d.version == "1.0.0")
        .expect("in the tree")
        .clone();
    let read = ApiRequest::component(&target.name, Some(&target.version));
    let http = http_client();

    proxy.hold(PathKind::Blob);
    let first = {
        let (http, base, read) = (http.clone(), pod.base_url().to_owned(), read.clone());
        tokio::spawn(async move { read.send(&http, &base, &[]).await })
    };
    wait_until(
        "the first fill reaches the layer",
        Duration::from_secs(5),
        || proxy.waiting() == 1,
    )
    .await;

    let files = tempfile::tempdir().unwrap();
    let corrected = descriptor(&target.name, &target.version, &[], "corrected", 3);
    odg_push_one(&registry_repository, files.path(), &corrected).await;
    let (status, body) = delete_cache(
        &http,
        pod.base_url(),
        Some(ADMIN_TOKEN),
        &[
            ("component_name", target.name.as_str()),
            ("version", target.version.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let asked = Instant::now();
    let second = {
        let (http, base, read) = (http.clone(), pod.base_url().to_owned(), read.clone());
        tokio::spawn(async move { read.send(&http, &base, &[]).await })
    };
    // A fill of its own would reach the proxy (its layer is held too); give it the time to.
    let deadline = Instant::now() + Duration::from_millis(500);
    while proxy.waiting() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await; // polling: until both requests wait at the proxy
    }
    let own_fill = proxy.waiting() >= 2;
    proxy.release(PathKind::Blob);

    let (status, body) = first.await.unwrap().expect("the first request is answered");
    assert_eq!(status, StatusCode::OK, "{body}");
    let first_revision = revision_of(&body);
    let (status, body) = second
        .await
        .unwrap()
        .expect("the second request is answered");
    let second_took = asked.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    eprintln!(
        "asked before the invalidation: {first_revision:?}; asked after it: {:?} in {second_took:?} \
         (own fill: {own_fill})",
        revision_of(&body)
    );
    assert_eq!(
        revision_of(&body).as_deref(),
        Some("corrected"),
        "a request made after DELETE /cache answered got the invalidated descriptor from a fill \
         that started before it"
    );
    let (status, body) = read.send(&http, pod.base_url(), &[]).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        revision_of(&body).as_deref(),
        Some("corrected"),
        "the old fill was not stored"
    );
}

/// A descriptor whose layer names another component: every load of it fails (502, not cached).
fn broken_descriptor() -> Descriptor {
    let mut broken = descriptor("acme.org/fleet/other", "1.0.0", &[], "original", 1);
    broken.name = "acme.org/fleet/broken".to_owned();
    broken
}

/// Both pods are asked for a key at once; one takes the fleet lease, the other waits for its
/// result in Redis. The load fails, so no result ever comes: the waiting pod should notice that
/// the lease is gone and answer (here: with its own failed load) without waiting out
/// `fleet_wait_ms` (3 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fill_on_one_pod_does_not_hold_up_the_other_pod() {
    let registry = RegistryServer::start().await;
    let registry_repository = format!("{}/ocm", registry.url());
    seed(&registry_repository, &[broken_descriptor()], 1).await;
    // The failing load takes two origin round trips (manifest, layer): 100 ms.
    let proxy = DelayProxy::start(&registry.host(), Duration::from_millis(50)).await;
    let repository = format!("{}/ocm", proxy.url());
    let prefix = SharedRedisPrefix::new("fill-failed");
    let (a, b) = tokio::join!(
        start_pod(pod_args(&repository, &prefix.prefix, "pod-a")),
        start_pod(pod_args(&repository, &prefix.prefix, "pod-b")),
    );
    let read = ApiRequest::component("acme.org/fleet/broken", Some("1.0.0"));
    let http = http_client();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let ask = |base: String| {
        let (http, read, barrier) = (http.clone(), read.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            let started = Instant::now();
            let answer = read.send(&http, &base, &[]).await;
            (answer, started.elapsed())
        })
    };
    let (on_a, on_b) = (ask(a.base_url().to_owned()), ask(b.base_url().to_owned()));
    let (answer_a, took_a) = on_a.await.unwrap();
    let (answer_b, took_b) = on_b.await.unwrap();
    eprintln!(
        "pod A: {:?} in {took_a:?}; pod B: {:?} in {took_b:?}",
        answer_a.as_ref().map(|(status, _)| *status),
        answer_b.as_ref().map(|(status, _)| *status)
    );
    for answer in [&answer_a, &answer_b] {
        let (status, body) = answer.as_ref().expect("answered");
        assert_eq!(*status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|error| !error.is_empty()),
            "{body}"
        );
    }
    let slowest = took_a.max(took_b);
    assert!(
        slowest < Duration::from_secs(1),
        "a failed load of 100 ms kept a pod waiting {slowest:?}"
    );
}
