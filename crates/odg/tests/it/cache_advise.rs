//! `odg cache advise` against running pods (the demo repository): the curves of two pods merged,
//! a recommendation per tier with its values-file lines; the `/metrics` points; and pods with
//! the curves switched off.

use crate::harness::{odg_command, run_bounded, OdgServer};

async fn look_up_the_demo(pod: &OdgServer, rounds: usize) {
    for _ in 0..rounds {
        pod.get_ok(
            "/ocm/component",
            &[("component_name", "acme.org/landscape")],
        )
        .await;
        pod.get_ok(
            "/ocm/component/dependencies",
            &[("component_name", "acme.org/landscape")],
        )
        .await;
    }
}

async fn advise(args: &[&str]) -> (bool, String, String) {
    let mut command = odg_command();
    command.arg("cache").arg("advise").args(args);
    let output = run_bounded(command, "odg cache advise").await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn advise_merges_the_pods_curves_and_recommends_a_bound_per_tier() {
    let first = OdgServer::start(&["--memory-cache-bytes", "4MiB"]).await;
    let second = OdgServer::start(&["--memory-cache-bytes", "4MiB"]).await;
    look_up_the_demo(&first, 3).await;
    look_up_the_demo(&second, 2).await;

    // the fixed points on /metrics: every scale of the memory tier's bound
    let metrics = first.metrics_text().await;
    for scale in ["0.25", "0.5", "1", "2", "4", "8"] {
        let line = format!("scale=\"{scale}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("odg_cache_mrc_predicted_miss_ratio")
                    && l.contains("kind=\"all\"")
                    && l.contains("tier=\"memory\"")
                    && l.contains(&line)),
            "no point at {scale}x in\n{metrics}"
        );
    }
    assert!(
        first
            .metric_sum(
                "odg_cache_mrc_sampled_lookups_total",
                &["kind=\"all\"", "tier=\"memory\""]
            )
            .await
            > 0.0
    );

    let (ok, stdout, stderr) = advise(&[
        "--url",
        first.base_url(),
        "--url",
        second.base_url(),
        "--target",
        "0.5",
        "--json",
    ])
    .await;
    assert!(ok, "{stderr}");
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let advice = answer["advice"].as_array().unwrap();
    let memory = advice
        .iter()
        .find(|entry| entry["tier"] == "memory" && entry["kind"] == "all")
        .unwrap_or_else(|| panic!("{stdout}"));
    let lookups_first = first
        .metric_sum("odg_cache_lookups_total", &["tier=\"memory\""])
        .await;
    let lookups_second = second
        .metric_sum("odg_cache_lookups_total", &["tier=\"memory\""])
        .await;
    // both pods' lookups, merged (SHARDS-adj makes the estimate the true count)
    assert_eq!(
        memory["lookups"].as_f64().unwrap(),
        lookups_first + lookups_second,
        "{memory}"
    );
    assert!(
        memory["lookups_per_second"].as_f64().unwrap() > 0.0,
        "{memory}"
    );
    assert_eq!(memory["bound_bytes"], 4 << 20);
    // the memory tier is modelled by miniature simulations of quick_cache
    assert_eq!(memory["model"], "simulated", "{memory}");
    assert!(memory["recommended_mib"].as_u64().unwrap() >= 1);
    // repeated lookups of the same few keys: the target of 50 % is reachable
    assert_eq!(memory["reaches_target"], true, "{memory}");
    assert!(memory["predicted_hit_ratio"].as_f64().unwrap() >= 0.5);

    let svg = tempfile::NamedTempFile::new().unwrap();
    let (ok, stdout, stderr) = advise(&[
        "--url",
        first.base_url(),
        "--svg",
        svg.path().to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("== memory tier, all:"), "{stdout}");
    assert!(stdout.contains("recommended:"), "{stdout}");
    assert!(stdout.contains("memoryMiB:"), "{stdout}");
    assert!(std::fs::read_to_string(svg.path())
        .unwrap()
        .starts_with("<svg"));
}

#[tokio::test]
async fn with_the_curves_off_the_route_is_404_and_advise_fails() {
    let pod = OdgServer::start(&["--miss-ratio-curves=false"]).await;
    look_up_the_demo(&pod, 1).await;
    let (status, body) = pod.get("/cache/miss-ratio-curves", &[]).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{body}");
    assert!(!pod
        .metrics_text()
        .await
        .contains("odg_cache_mrc_predicted_miss_ratio"));
    let (ok, _, stderr) = advise(&["--url", pod.base_url()]).await;
    assert!(!ok);
    assert!(stderr.contains("404"), "{stderr}");
}
