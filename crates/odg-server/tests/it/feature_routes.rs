//! `/features` and `/profiles` in the original's shapes, reporting what this installation serves.

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::{demo_app, metadata_state, TestApp};

fn feature<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|feature| feature["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name}: {body}"))
}

async fn app_with_findings(yaml: &str) -> (TestApp, tempfile::TempDir) {
    let directory = tempfile::tempdir().unwrap();
    let state = metadata_state(directory.path()).await;
    let compliance = state.compliance.clone().unwrap();
    let configs = odg_compliance::FindingConfigs::from_yaml(yaml).unwrap();
    let state = state.with_compliance(odg_compliance::ComplianceService::new(
        compliance.db().clone(),
        compliance.components().clone(),
        configs,
    ));
    let app = TestApp {
        router: odg_server::router(state),
        cache: None,
        _directory: None,
    };
    (app, directory)
}

const FINDINGS: &str = "findings:\n  - type: finding/vulnerability\n    categorisations:\n      - {id: NONE, display_name: None, value: 0, rescoring: manual}\n  - type: finding/malware\n    categorisations:\n      - {id: CLEAN, display_name: Clean, value: 0, rescoring: manual}\nprofiles:\n  - {name: security, finding_types: [finding/malware]}\n  - {name: all, finding_types: [finding/vulnerability, finding/malware]}\n";

#[tokio::test]
async fn features_report_what_odg_serves_and_everything_else_unavailable() {
    let (app, _directory) = app_with_findings(FINDINGS).await;
    let (status, body) = app.get("/features").await;
    assert_eq!(status, StatusCode::OK);
    for feature in body["features"].as_array().unwrap() {
        assert!(feature["name"].is_string(), "{feature}");
        let state = feature["state"].as_str().unwrap();
        assert!(state == "available" || state == "unavailable", "{feature}");
    }
    assert_eq!(feature(&body, "delivery-db")["state"], "available");
    // no login configured here
    assert_eq!(feature(&body, "authentication")["state"], "unavailable");
    for missing in ["addressbook", "sprints", "dora", "upgrade-prs", "licenses"] {
        assert_eq!(feature(&body, missing)["state"], "unavailable", "{missing}");
    }
    let profiles = feature(&body, "profiles");
    assert_eq!(profiles["state"], "available");
    assert_eq!(profiles["profiles"][0]["name"], "security");
    assert_eq!(
        profiles["profiles"][0]["finding_types"][0],
        "finding/malware"
    );
    // no profile: the first one's finding types
    let findings = feature(&body, "finding-configurations");
    assert_eq!(findings["state"], "available");
    assert_eq!(findings["finding_cfgs"].as_array().unwrap().len(), 1);
    assert_eq!(findings["finding_cfgs"][0]["type"], "finding/malware");
    // a named profile: its types; an unknown one: all (the original's rule)
    let (_, body) = app.get("/features?profile=all").await;
    assert_eq!(
        feature(&body, "finding-configurations")["finding_cfgs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, body) = app.get("/features?profile=nonesuch").await;
    assert_eq!(
        feature(&body, "finding-configurations")["finding_cfgs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let (status, body) = app.get("/profiles").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"profiles": ["security", "all"]}));
}

#[tokio::test]
async fn without_the_delivery_db_or_profiles_those_features_are_unavailable() {
    let app = demo_app().await;
    let (status, body) = app.get("/features").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(feature(&body, "delivery-db")["state"], "unavailable");
    assert_eq!(feature(&body, "profiles")["state"], "unavailable");
    assert_eq!(
        feature(&body, "finding-configurations")["state"],
        "unavailable"
    );
    let (status, body) = app.get("/profiles").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"profiles": []}));
}

#[tokio::test]
async fn the_repository_mapping_is_reported_as_the_originals_oci_repository_cfgs() {
    let app = demo_app().await;
    let (status, body) = app.get("/features").await;
    assert_eq!(status, StatusCode::OK);
    let cfgs = feature(&body, "ocm-repository-cfgs");
    assert_eq!(cfgs["state"], "available", "{cfgs}");
    let all = cfgs["ocm_repository_cfgs"].as_array().unwrap();
    assert_eq!(all.len(), 2, "{cfgs}");
    // the original adds `<auto>` (every repository) first when it is not configured
    assert_eq!(
        all[0],
        serde_json::json!({"type": "virtual", "name": "<auto>",
            "selectors": [{"required_labels": null, "version_filter_overwrite": null}],
            "repositories": [crate::support::DEMO_REPOSITORY]})
    );
    let rules = &all[1..];
    assert_eq!(rules[0]["type"], "oci");
    assert_eq!(rules[0]["repository"], crate::support::DEMO_REPOSITORY);
    // the demo's one rule selects every component and every version
    assert_eq!(rules[0]["prefixes"], serde_json::Value::Null);
    assert_eq!(rules[0]["component_filter"], serde_json::Value::Null);
    assert_eq!(rules[0]["version_filter"], "any");
    assert_eq!(
        rules[0]["repositories"],
        serde_json::json!([crate::support::DEMO_REPOSITORY])
    );
}
