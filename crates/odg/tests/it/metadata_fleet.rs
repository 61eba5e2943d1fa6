//! The delivery DB across a fleet: two `odg serve` pods on one Redis (the suite's, isolated by a
//! key prefix) and one PostgreSQL (a database of its own), serving the demo repository.
//!
//! Pod B reads (and caches) a compliance summary; pod A writes a finding; the very next summary
//! read on B, sent right after A's write answered and without polling, reflects the write. Then
//! the same for a rescoring, a delete, and a burst of alternating writes. B's link to Redis is
//! slowed down (40 ms each way), so invalidation messages reach it long after the next request:
//! only the per-read generation check keeps it from answering from its cache.

use serde_json::{json, Value};

use crate::cache_support::fleet_pod_args;
use crate::cache_support::{shared_redis_url, start_pod, SharedRedisPrefix};
use crate::harness::OdgServer;
use crate::metadata_support::{vulnerability_categorisation, write_metadata_as_admin};

const COMPONENT: &str = "acme.org/shop/cart";

/// What is under test is the per-read generation check, not how fast a loaded runner gets a
/// Redis reply through B's slowed link: a Redis operation may take far longer than the 250 ms
/// default before a write counts the shared cache as unreachable (answering 503).
const PATIENT_REDIS: &str = "cache:\n  redis_operation_timeout_ms: 10000\n";

fn pod_args(
    database_url: &str,
    redis_url: &str,
    prefix: &str,
    pod: &str,
    config: &std::path::Path,
) -> Vec<String> {
    fleet_pod_args(
        pod,
        redis_url,
        Some(prefix),
        &[
            "--database-url",
            database_url,
            "--config",
            config.to_str().expect("a UTF-8 temporary path"),
        ],
    )
}

async fn summary(pod: &OdgServer) -> Value {
    pod.get_ok(
        "/components/compliance-summary",
        &[
            ("component_name", COMPONENT),
            ("version", "greatest"),
            ("recursion_depth", "0"),
        ],
    )
    .await
}

/// Memory-tier hits of summary parts on a pod, from its `/metrics`.
async fn summary_memory_hits(pod: &OdgServer) -> f64 {
    pod.metric_sum(
        "odg_cache_lookups_total",
        &[
            r#"kind="compliance-summary""#,
            r#"tier="memory""#,
            r#"result="hit""#,
        ],
    )
    .await
}

#[tokio::test]
async fn a_write_through_one_pod_shows_in_the_next_summary_of_the_other() {
    let database = odg_test_support::TestDatabase::create("metadata_fleet").await;
    let prefix = SharedRedisPrefix::new("metadata-fleet");
    let redis = shared_redis_url();
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("odg.yaml");
    std::fs::write(&config, PATIENT_REDIS).unwrap();
    let a = start_pod(pod_args(
        &database.url(),
        &redis,
        &prefix.prefix,
        "pod-a",
        &config,
    ))
    .await;
    let redis_addr: std::net::SocketAddr = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("the suite's Redis URL is redis://host:port");
    let slow_link = odg_test_support::TcpForwarder::start(redis_addr).await;
    let b = start_pod(pod_args(
        &database.url(),
        &format!("redis://{}", slow_link.addr()),
        &prefix.prefix,
        "pod-b",
        &config,
    ))
    .await;
    slow_link.set_latency(std::time::Duration::from_millis(40));

    let descriptor = b
        .get_ok("/ocm/component", &[("component_name", COMPONENT)])
        .await;
    let version = descriptor["component"]["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource = descriptor["component"]["resources"][0].clone();
    let artefact = json!({"artefact_name": resource["name"], "artefact_version": resource["version"],
                          "artefact_type": resource["type"], "artefact_extra_id": resource.get("extraIdentity").cloned().unwrap_or(json!({}))});
    let scan_info = json!({"artefact": {"component_name": COMPONENT, "component_version": version, "artefact_kind": "resource", "artefact": artefact},
                           "meta": {"datasource": "bdba", "type": "meta/artefact_scan_info"}, "data": {}});
    // Version-less, as BDBA writes findings: the write must reach every version's summary.
    let finding = |severity: &str| {
        json!({"artefact": {"component_name": COMPONENT, "component_version": null, "artefact_kind": "resource", "artefact": artefact},
               "meta": {"datasource": "bdba", "type": "finding/vulnerability"},
               "data": {"severity": severity, "package_name": "openssl", "package_version": "3.0.7", "base_url": "https://bdba",
                        "report_url": "https://bdba/1", "product_id": 1, "group_id": 2, "cve": "CVE-2023-0286",
                        "cvss_v3_score": 7.4, "cvss": {}, "summary": null}})
    };
    let rescoring = json!({"artefact": {"component_name": COMPONENT, "component_version": null, "artefact_kind": "resource",
                                        "artefact": {"artefact_name": resource["name"], "artefact_type": resource["type"]}},
                           "meta": {"datasource": "delivery-dashboard", "type": "rescorings"},
                           "data": {"finding": {"package_name": "openssl", "cve": "CVE-2023-0286"}, "referenced_type": "finding/vulnerability",
                                    "severity": "NONE", "user": {"username": "jane"}}});

    // Scanned, no findings: clean on both pods; B's second read comes from its memory tier.
    write_metadata_as_admin(&a, reqwest::Method::PUT, vec![scan_info]).await;
    assert_eq!(vulnerability_categorisation(&summary(&b).await), "CLEAN");
    assert_eq!(vulnerability_categorisation(&summary(&b).await), "CLEAN");
    assert!(
        summary_memory_hits(&b).await >= 1.0,
        "B served the summary from its cache"
    );
    assert_eq!(vulnerability_categorisation(&summary(&a).await), "CLEAN");

    // A finding through A: B's next summary shows it, no waiting.
    write_metadata_as_admin(&a, reqwest::Method::PUT, vec![finding("HIGH")]).await;
    assert_eq!(vulnerability_categorisation(&summary(&b).await), "HIGH");
    // A rescoring through B, read on A; its deletion through A, read on B.
    write_metadata_as_admin(&b, reqwest::Method::PUT, vec![rescoring.clone()]).await;
    assert_eq!(vulnerability_categorisation(&summary(&a).await), "CLEAN");
    write_metadata_as_admin(&a, reqwest::Method::DELETE, vec![rescoring]).await;
    assert_eq!(vulnerability_categorisation(&summary(&b).await), "HIGH");

    // A burst: the severity alternates, each read right after the other pod's write answered.
    for round in 0..20 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let severity = if round % 3 == 0 { "CRITICAL" } else { "MEDIUM" };
        write_metadata_as_admin(writer, reqwest::Method::PUT, vec![finding(severity)]).await;
        // Warm the reader's cache with the current state, then check it once more.
        assert_eq!(
            vulnerability_categorisation(&summary(reader).await),
            severity,
            "round {round}"
        );
        assert_eq!(
            vulnerability_categorisation(&summary(reader).await),
            severity,
            "round {round}"
        );
    }
    write_metadata_as_admin(&b, reqwest::Method::DELETE, vec![finding("MEDIUM")]).await;
    assert_eq!(vulnerability_categorisation(&summary(&a).await), "CLEAN");
    drop((a, b));
}
