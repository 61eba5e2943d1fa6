//! The extensions against running services: `odg enumerate` and `odg cache-manager` as
//! subprocesses, `odg serve` pods in front of a real registry (behind a counting proxy) and the
//! suite's real Redis (a key prefix of each test's own).
//!
//! - A second enumerate run fetches nothing from the origin, and its own summary says so; both
//!   runs query the artefact metadata of the tree and count the rows written beforehand.
//! - A prefill through one pod fills the shared tier: a fresh pod then serves a whole
//!   enumeration without one origin fetch. Pruning brings the shared tier within a budget.
//! - A failing enumeration exits non-zero and names what failed.

use std::time::Duration;

use odg_test_support::{DelayProxy, RegistryServer};
use serde_json::{json, Value};

use crate::cache_support::fleet_pod_args;
use crate::cache_support::{
    fleet_tree, seed, shared_redis_url, start_pod, strings, SharedRedisPrefix, ADMIN_TOKEN,
    FLEET_ROOT, FLEET_ROOT_VERSION,
};
use crate::harness::{odg_command, run_bounded, OdgServer};
use crate::metadata_support::write_metadata_as_admin;

/// Latency the proxy adds to every registry request (a distant registry, briefly).
const ORIGIN_LATENCY: Duration = Duration::from_millis(2);

/// Runs `odg SUBCOMMAND ARGS...`; returns success, stdout and stderr.
async fn odg(subcommand: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = odg_command();
    command.arg(subcommand).args(args);
    let output = run_bounded(command, subcommand).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `(hits, misses)` of one tier from the text summary's `cache lookups:` line.
fn tier_counts(stdout: &str, tier: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|line| line.starts_with("cache lookups:"))
        .unwrap_or_else(|| panic!("no cache lookups line:\n{stdout}"));
    let part = line
        .split([':', ','])
        .map(str::trim)
        .find(|part| part.starts_with(&format!("{tier} ")))
        .unwrap_or_else(|| panic!("no {tier} tier in {line:?}"));
    let words: Vec<&str> = part.split_whitespace().collect();
    // "<tier> <hits> hit / <misses> miss (<ratio>)"
    (words[1].parse().unwrap(), words[4].parse().unwrap())
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("not JSON ({error}):\n{stdout}"))
}

/// A registry seeded with the 30-descriptor fleet tree, behind a counting proxy.
async fn seeded_origin() -> (RegistryServer, DelayProxy, String) {
    let registry = RegistryServer::start().await;
    seed(
        &format!("{}/ocm", registry.url()),
        &fleet_tree("original"),
        8,
    )
    .await;
    let proxy = DelayProxy::start(&registry.host(), ORIGIN_LATENCY).await;
    let repository = format!("{}/ocm", proxy.url());
    (registry, proxy, repository)
}

/// `PUT /artefacts/metadata` with the admin token: a scan info of the root's first resource and a
/// vulnerability finding of a mid component's, both with their component version.
async fn write_metadata(pod: &OdgServer) {
    let entry = |component: &str, version: &str, meta: Value, data: Value| {
        json!({"artefact": {"component_name": component, "component_version": version, "artefact_kind": "resource",
                            "artefact": {"artefact_name": "resource-0000", "artefact_version": version,
                                         "artefact_type": "ociImage", "artefact_extra_id": {}}},
               "meta": meta, "data": data})
    };
    let entries = [
        entry(
            FLEET_ROOT,
            FLEET_ROOT_VERSION,
            json!({"datasource": "bdba", "type": "meta/artefact_scan_info"}),
            json!({}),
        ),
        entry(
            "acme.org/fleet/mid-0",
            "1.0.0",
            json!({"datasource": "bdba", "type": "finding/vulnerability"}),
            json!({"severity": "HIGH", "package_name": "openssl", "package_version": "3.0.7", "base_url": "https://bdba",
                   "report_url": "https://bdba/1", "product_id": 1, "group_id": 2, "cve": "CVE-2023-0286",
                   "cvss_v3_score": 7.4, "cvss": {}, "summary": null}),
        ),
    ];
    write_metadata_as_admin(pod, reqwest::Method::PUT, entries.to_vec()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_enumeration_fetches_nothing_from_the_origin() {
    let (_registry, proxy, repository) = seeded_origin().await;
    let pod = start_pod(strings(&[
        "--ocm-repo",
        &repository,
        "--admin-token",
        ADMIN_TOKEN,
    ]))
    .await;
    write_metadata(&pod).await;
    let before_runs = proxy.total_requests();
    let args = [
        "--url",
        pod.base_url(),
        "--component",
        FLEET_ROOT,
        "--concurrency",
        "4",
        "--max-start-jitter",
        "0",
    ];

    let (ok, stdout, stderr) =
        odg("enumerate", &[&args[..], &["--summary", "json"]].concat()).await;
    assert!(ok, "first run failed:\n{stdout}\n{stderr}");
    let first = json(&stdout);
    let cold_fetches = proxy.total_requests() - before_runs;
    eprintln!(
        "first run: {} origin requests at the proxy\n{stdout}",
        cold_fetches
    );
    assert_eq!(first["ok"], true);
    assert_eq!(first["root_versions"], 1);
    // The root, its 5 mid components and the 21 leaf versions they reference (of 24 seeded).
    assert_eq!(first["component_versions"], 27, "the whole tree: {first}");
    assert_eq!(first["requests"]["by_route"]["component"], 27);
    assert_eq!(first["requests"]["failed"], 0);
    // One metadata query (27 entries fit in one batch) finds both rows written above.
    assert_eq!(first["requests"]["by_route"]["metadata"], 1, "{first}");
    assert_eq!(
        first["metadata"],
        json!({"component_versions": 27, "queries": 1, "failed_queries": 0, "rows": 2}),
        "{first}"
    );
    assert!(cold_fetches > 0);
    assert_eq!(
        first["service"]["delta"]["registry_requests"].as_f64(),
        Some(cold_fetches as f64),
        "the summary's origin fetches are the proxy's count: {first}"
    );

    let (ok, stdout, stderr) = odg("enumerate", &args).await;
    assert!(ok, "second run failed:\n{stdout}\n{stderr}");
    eprintln!("second run:\n{stdout}");
    assert_eq!(
        proxy.total_requests(),
        before_runs + cold_fetches,
        "the second run fetched from the origin: {:#?}",
        proxy.path_counts()
    );
    assert!(
        stdout.contains("origin fetches 0 (registry requests), origin loads 0"),
        "{stdout}"
    );
    let (hits, misses) = tier_counts(&stdout, "memory");
    assert!(hits >= 27 && misses == 0, "{stdout}");
    assert!(stdout.starts_with("enumerate: ok"), "{stdout}");
    assert!(
        stdout.contains("metadata: 1 queries (0 failed) for 27 component versions, 2 rows"),
        "{stdout}"
    );
    assert!(stdout.contains(", metadata 1"), "its own route: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefill_through_one_pod_serves_a_fresh_pod_and_pruning_keeps_the_budget() {
    let (_registry, proxy, repository) = seeded_origin().await;
    let prefix = SharedRedisPrefix::new("extensions");
    let redis_url = shared_redis_url();
    let pod_args = |pod: &str| {
        fleet_pod_args(
            pod,
            &redis_url,
            Some(&prefix.prefix),
            &["--ocm-repo", &repository, "--disk-cache-bytes", "0"],
        )
    };
    let a = start_pod(pod_args("pod-a")).await;
    let (ok, stdout, stderr) = odg(
        "cache-manager",
        &[
            "--url",
            a.base_url(),
            "--component",
            FLEET_ROOT,
            "--summary",
            "json",
        ],
    )
    .await;
    assert!(ok, "prefill failed:\n{stdout}\n{stderr}");
    let prefill = &json(&stdout)["prefill"];
    eprintln!("prefill through pod A:\n{prefill:#}");
    assert_eq!(prefill["ok"], true);
    assert_eq!(prefill["requests"]["by_route"]["dependencies"], 1);
    let prefill_fetches = proxy.total_requests();
    assert!(prefill_fetches > 0);
    // Fills answer before they write the shared tier: wait until those writes landed.
    a.writebacks_landed().await;

    let b = start_pod(pod_args("pod-b")).await;
    let (ok, stdout, stderr) = odg(
        "enumerate",
        &[
            "--url",
            b.base_url(),
            "--component",
            FLEET_ROOT,
            "--no-metadata",
        ],
    )
    .await;
    assert!(ok, "enumerate on pod B failed:\n{stdout}\n{stderr}");
    eprintln!("enumerate on the fresh pod B:\n{stdout}");
    assert_eq!(
        proxy.total_requests(),
        prefill_fetches,
        "pod B went to the origin: {:#?}",
        proxy.path_counts()
    );
    assert!(
        stdout.contains("origin fetches 0 (registry requests), origin loads 0"),
        "{stdout}"
    );
    assert!(stdout.contains("metadata: skipped"), "{stdout}");
    assert!(
        !stdout.contains(", metadata "),
        "no metadata queries: {stdout}"
    );
    let (hits, misses) = tier_counts(&stdout, "shared");
    assert!(
        hits >= 27 && misses == 0,
        "every fill came from Redis: {stdout}"
    );

    // Pruning: learn the size (dry run, no budget pressure), then halve it.
    let prune = |budget: String, dry_run: bool| {
        let redis_url = redis_url.clone();
        let prefix = prefix.prefix.clone();
        async move {
            let mut args = vec![
                "--no-prefill".to_owned(),
                "--redis-url".to_owned(),
                redis_url,
                "--redis-key-prefix".to_owned(),
                prefix,
                "--prune-budget".to_owned(),
                budget,
                "--summary".to_owned(),
                "json".to_owned(),
            ];
            if dry_run {
                args.push("--dry-run".to_owned());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, stdout, stderr) = odg("cache-manager", &args).await;
            assert!(ok, "prune failed:\n{stdout}\n{stderr}");
            json(&stdout)["prune"].clone()
        }
    };
    let sized = prune("1TiB".to_owned(), true).await;
    let scanned = sized["bytes_scanned"].as_u64().unwrap();
    assert!(
        sized["entries_scanned"].as_u64().unwrap() >= 29,
        "descriptors, the version list and the tree: {sized:#}"
    );
    assert_eq!(sized["deleted_for_budget"], 0);
    let budget = scanned / 2;
    let pruned = prune(budget.to_string(), false).await;
    eprintln!("pruned to {budget} bytes:\n{pruned:#}");
    assert!(pruned["deleted_for_budget"].as_u64().unwrap() > 0);
    assert!(pruned["bytes_after"].as_u64().unwrap() <= budget);
    assert_eq!(
        pruned["by_kind"]["dependencies"]["deleted"], 0,
        "the tree is the costliest to recompute: {pruned:#}"
    );
    let again = prune(budget.to_string(), true).await;
    assert!(
        again["bytes_scanned"].as_u64().unwrap() <= budget,
        "Redis holds what the report said: {again:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enumeration_exits_non_zero_and_names_the_failure() {
    let (_registry, _proxy, repository) = seeded_origin().await;
    let pod = start_pod(strings(&["--ocm-repo", &repository])).await;
    let (ok, stdout, _) = odg(
        "enumerate",
        &[
            "--url",
            pod.base_url(),
            "--component",
            FLEET_ROOT,
            "--component",
            "acme.org/fleet/root:9.9.9",
        ],
    )
    .await;
    assert!(!ok, "{stdout}");
    assert!(stdout.starts_with("enumerate: FAILED"), "{stdout}");
    assert!(
        stdout.contains("failed: dependencies acme.org/fleet/root:9.9.9: 404"),
        "{stdout}"
    );

    let (ok, _, stderr) = odg("enumerate", &["--url", pod.base_url()]).await;
    assert!(!ok);
    assert!(stderr.contains("no components"), "{stderr}");
}
