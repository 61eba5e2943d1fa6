//! Redis faults under two pods, each test with its own `redis-server` child process:
//!
//! - a pod cut off from Redis (a TCP link the test cuts) while another pod invalidates serves the
//!   corrected data soon after the link is back: generations are re-read on reconnect, since the
//!   pub/sub message it missed is gone;
//! - killing Redis under load fails no request, and the pods reconnect to a new Redis and
//!   invalidate across each other again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use odg_test_support::{DelayProxy, RedisServer, RegistryServer, TcpForwarder};
use reqwest::StatusCode;

use crate::cache_support::fleet_pod_args;
use crate::cache_support::{
    component_names, delete_cache, descriptor, fleet_tree, log_count, odg_push_one, percentile,
    poll_until, revision_of, seed, start_pod, wait_for_log, ApiRequest, Descriptor, ADMIN_TOKEN,
    FLEET_ROOT, FLEET_ROOT_VERSION,
};
use crate::harness::{http_client, OdgServer};

/// What a pod logs when its shared tier works again / when its subscription ends.
const TIER_AVAILABLE: &str = "shared cache tier available";
const SUBSCRIBED: &str = "subscribed to shared cache invalidations";
const SUBSCRIPTION_LOST: &str = "shared cache invalidation subscription lost";

fn pod_args(repository: &str, redis_url: &str, pod: &str) -> Vec<String> {
    fleet_pod_args(pod, redis_url, None, &["--ocm-repo", repository])
}

fn leaf(tree: &[Descriptor], name: &str, version: &str) -> Descriptor {
    tree.iter()
        .find(|d| d.name == name && d.version == version)
        .unwrap_or_else(|| panic!("{name} {version} is in the tree"))
        .clone()
}

async fn assert_revision(pod: &OdgServer, request: &ApiRequest, revision: &str, what: &str) {
    let http = http_client();
    let (status, body) = request
        .send(&http, pod.base_url(), &[])
        .await
        .expect("the pod answers");
    assert_eq!(status, StatusCode::OK, "{what}: {body}");
    assert_eq!(revision_of(&body).as_deref(), Some(revision), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_cut_off_from_redis_during_an_invalidation_serves_fresh_data_after_reconnecting() {
    let registry = RegistryServer::start().await;
    let repository = format!("{}/ocm", registry.url());
    let tree = fleet_tree("original");
    seed(&repository, &tree, 8).await;
    let target = leaf(&tree, "acme.org/fleet/leaf-04", "1.0.0");
    let redis = RedisServer::start().await;
    let link_b = TcpForwarder::start(redis.addr()).await;
    let link_b_url = format!("redis://127.0.0.1:{}", link_b.port());
    let (a, b) = tokio::join!(
        start_pod(pod_args(&repository, &redis.url(), "pod-a")),
        start_pod(pod_args(&repository, &link_b_url, "pod-b")),
    );
    assert!(wait_for_log(&b, SUBSCRIBED, 1, Duration::from_secs(5)).await);
    let read = ApiRequest::component(&target.name, Some(&target.version));
    for pod in [&a, &b] {
        assert_revision(pod, &read, "original", "warm").await;
    }

    let files = tempfile::tempdir().unwrap();
    let corrected = descriptor(&target.name, &target.version, &[], "corrected", 3);
    odg_push_one(&repository, files.path(), &corrected).await;

    link_b.cut();
    assert!(
        wait_for_log(&b, SUBSCRIPTION_LOST, 1, Duration::from_secs(5)).await,
        "pod B notices the cut; its log:\n{}",
        b.log()
    );
    let http = http_client();
    let (status, body) = delete_cache(
        &http,
        a.base_url(),
        Some(ADMIN_TOKEN),
        &[
            ("component_name", target.name.as_str()),
            ("version", target.version.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["published"], true, "{body}");
    assert_revision(&a, &read, "corrected", "pod A at once").await;

    // While cut off, B keeps answering (from its own tiers); it cannot know of the invalidation.
    let (status, body) = read
        .send(&http, b.base_url(), &[])
        .await
        .expect("B answers");
    assert_eq!(status, StatusCode::OK, "{body}");
    let while_cut = revision_of(&body);
    tokio::time::sleep(Duration::from_millis(300)).await; // under test: traffic while the link to Redis is cut

    link_b.restore();
    let restored = Instant::now();
    let latency = poll_until(&http, b.base_url(), &read, Duration::from_secs(3), |body| {
        revision_of(body).as_deref() == Some("corrected")
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "pod B still serves the old descriptor 3 s after its link to Redis is back; its log:\n{}",
            b.log()
        )
    });
    assert!(log_count(&b, SUBSCRIBED) >= 2, "B re-subscribed");
    eprintln!(
        "pod B served {while_cut:?} while cut off, and the corrected descriptor {latency:?} after \
         its link to Redis was restored ({} connections refused meanwhile)",
        link_b.refused()
    );
    // Elapsed since the restore includes the reconnect backoff (at most about 1.2 s).
    assert!(restored.elapsed() < Duration::from_secs(4));
}

/// What one request of the load answered.
#[derive(Debug)]
struct Outcome {
    pod: usize,
    request: ApiRequest,
    started_after: Duration,
    took: Duration,
    answer: Result<StatusCode, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_redis_under_load_fails_no_request_and_the_pods_come_back_to_a_new_one() {
    const TASKS: usize = 16;
    // The load is counted, not timed, so a slow machine runs longer instead of failing: Redis is
    // killed after this many answers, and the load goes on for as many started after the kill.
    const ANSWERS_BEFORE_KILL: usize = 100;
    const ANSWERS_AFTER_KILL: usize = 100;
    // Only a hang reaches this.
    const DEADLINE: Duration = Duration::from_secs(120);

    let registry = RegistryServer::start().await;
    let registry_repository = format!("{}/ocm", registry.url());
    let tree = fleet_tree("original");
    seed(&registry_repository, &tree, 8).await;
    // A little origin latency keeps fills (and their fleet leases) in flight when Redis dies.
    let proxy = DelayProxy::start(&registry.host(), Duration::from_millis(5)).await;
    let repository = format!("{}/ocm", proxy.url());
    let mut redis = RedisServer::start().await;
    let (a, b) = tokio::join!(
        start_pod(pod_args(&repository, &redis.url(), "pod-a")),
        start_pod(pod_args(&repository, &redis.url(), "pod-b")),
    );
    let mut requests: Vec<ApiRequest> = tree
        .iter()
        .map(|d| ApiRequest::component(&d.name, Some(&d.version)))
        .collect();
    for name in component_names(&tree) {
        requests.push(ApiRequest::component(&name, None));
        requests.push(ApiRequest::versions(&name));
    }
    requests.push(ApiRequest::dependencies(
        FLEET_ROOT,
        FLEET_ROOT_VERSION,
        "all",
    ));
    for mid in 0..5 {
        requests.push(ApiRequest::dependencies(
            &format!("acme.org/fleet/mid-{mid}"),
            "1.0.0",
            "componentReferences",
        ));
    }
    let requests = Arc::new(requests);

    let bases = Arc::new([a.base_url().to_owned(), b.base_url().to_owned()]);
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered_after_kill = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (requests, bases, outcomes, sent, killed, answered_after_kill) = (
            requests.clone(),
            bases.clone(),
            outcomes.clone(),
            sent.clone(),
            killed.clone(),
            answered_after_kill.clone(),
        );
        tasks.spawn(async move {
            let http = http_client();
            let mut index = task * 7;
            while answered_after_kill.load(Ordering::Relaxed) < ANSWERS_AFTER_KILL
                && started.elapsed() < DEADLINE
            {
                let after_kill = killed.load(Ordering::Relaxed);
                let request = requests[index % requests.len()].clone();
                let pod = (task + index) % 2;
                // Every fourth request skips the lookup but stores (`Shortcut-Cache`), so fills
                // and shared-tier writes go on during the outage too, not only hits.
                let headers: &[(&str, &str)] = if index % 4 == 0 {
                    &[("Shortcut-Cache", "true")]
                } else {
                    &[]
                };
                let started_after = started.elapsed();
                let answer = request
                    .send(&http, &bases[pod], headers)
                    .await
                    .map(|(status, _)| status);
                sent.fetch_add(1, Ordering::Relaxed);
                if after_kill {
                    answered_after_kill.fetch_add(1, Ordering::Relaxed);
                }
                outcomes.lock().unwrap().push(Outcome {
                    pod,
                    request,
                    started_after,
                    took: started.elapsed() - started_after,
                    answer,
                });
                index += 1;
            }
        });
    }
    while sent.load(Ordering::Relaxed) < ANSWERS_BEFORE_KILL && started.elapsed() < DEADLINE {
        tokio::time::sleep(Duration::from_millis(10)).await; // polling: until enough answers were sent
    }
    redis.kill();
    let killed_at = started.elapsed();
    killed.store(true, Ordering::Relaxed);
    let sent_before_kill = sent.load(Ordering::Relaxed);
    while let Some(result) = tasks.join_next().await {
        result.expect("a load task");
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let failures: Vec<&Outcome> = outcomes
        .iter()
        .filter(|outcome| !matches!(outcome.answer, Ok(status) if status.is_success()))
        .collect();
    let mut before: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.started_after < killed_at)
        .map(|o| o.took)
        .collect();
    let mut after: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.started_after >= killed_at)
        .map(|o| o.took)
        .collect();
    eprintln!(
        "{} requests from {TASKS} tasks in {:?}; Redis killed at {killed_at:?} after {sent_before_kill}; \
         before: p50 {:?} p99 {:?} max {:?}; after: {} requests, p50 {:?} p99 {:?} max {:?}; {} failed",
        outcomes.len(),
        started.elapsed(),
        percentile(&mut before, 50),
        percentile(&mut before, 99),
        percentile(&mut before, 100),
        after.len(),
        percentile(&mut after, 50),
        percentile(&mut after, 99),
        percentile(&mut after, 100),
        failures.len()
    );
    let failed: Vec<String> = failures
        .iter()
        .take(10)
        .map(|outcome| {
            format!(
                "pod {} at {:?}: {} {:?} -> {:?}",
                outcome.pod,
                outcome.started_after,
                outcome.request.path,
                outcome.request.query,
                outcome.answer
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} requests failed while Redis died: {failed:#?}",
        failures.len()
    );
    assert!(
        answered_after_kill.load(Ordering::Relaxed) >= ANSWERS_AFTER_KILL,
        "the load went on after the kill (or the pods hung until the deadline)"
    );
    assert!(
        log_count(&a, "shared cache tier unavailable") >= 1
            && log_count(&b, "shared cache tier unavailable") >= 1,
        "both pods say the shared tier is gone"
    );
    let per_pod = |pod: usize| outcomes.iter().filter(|o| o.pod == pod).count();
    assert!(per_pod(0) > 0 && per_pod(1) > 0);

    // A new, empty Redis on the same port: both pods find it and say so.
    let available_before = [log_count(&a, TIER_AVAILABLE), log_count(&b, TIER_AVAILABLE)];
    let subscribed_before = [log_count(&a, SUBSCRIBED), log_count(&b, SUBSCRIBED)];
    redis.restart().await;
    let back = Instant::now();
    for (index, pod) in [&a, &b].into_iter().enumerate() {
        assert!(
            wait_for_log(
                pod,
                TIER_AVAILABLE,
                available_before[index] + 1,
                Duration::from_secs(5)
            )
            .await
                && wait_for_log(
                    pod,
                    SUBSCRIBED,
                    subscribed_before[index] + 1,
                    Duration::from_secs(5)
                )
                .await,
            "pod {index} did not report Redis back; its log:\n{}",
            pod.log()
        );
    }
    let reconnected = back.elapsed();

    // And invalidation across pods works again.
    let target = leaf(&tree, "acme.org/fleet/leaf-07", "1.1.0");
    let read = ApiRequest::component(&target.name, Some(&target.version));
    for pod in [&a, &b] {
        assert_revision(pod, &read, "original", "warm after the restart").await;
    }
    let files = tempfile::tempdir().unwrap();
    let corrected = descriptor(&target.name, &target.version, &[], "corrected", 3);
    odg_push_one(&registry_repository, files.path(), &corrected).await;
    let http = http_client();
    let (status, body) = delete_cache(
        &http,
        a.base_url(),
        Some(ADMIN_TOKEN),
        &[
            ("component_name", target.name.as_str()),
            ("version", target.version.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["published"], true, "{body}");
    let latency = poll_until(&http, b.base_url(), &read, Duration::from_secs(1), |body| {
        revision_of(body).as_deref() == Some("corrected")
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "pod B missed the invalidation after Redis came back; its log:\n{}",
            b.log()
        )
    });
    eprintln!(
        "both pods reported the new Redis within {reconnected:?}; an invalidation on A reached B in {latency:?}"
    );
}
