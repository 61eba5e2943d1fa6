//! `/rescore` over the demo landscape and an SQLite delivery DB: the preview's shape for one
//! artefact's findings, applying a rescoring (roles, the caller recorded as its user, the
//! summary following at once), and the original's errors.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::{jwt, metadata_state, request, send_any, ADMIN_TOKEN};

const COMPONENT: &str = "acme.org/shop/cart";

struct RescoreApp {
    router: axum::Router,
    _directory: tempfile::TempDir,
}

impl RescoreApp {
    async fn new() -> RescoreApp {
        let directory = tempfile::tempdir().unwrap();
        let sprints: odg_server::SprintsConfig = serde_json::from_value(json!({"sprints": [
            {"name": "2099a", "end_date": "2099-01-14"},
            {"name": "2099b", "end_date": "2099-01-28"},
        ]}))
        .unwrap();
        let calendar = odg_server::SprintCalendar::new(sprints).unwrap();
        let state = metadata_state(directory.path())
            .await
            .with_sprints(Some(calendar));
        RescoreApp {
            router: odg_server::router(state),
            _directory: directory,
        }
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        send_any(&self.router, request(method, uri, token, body)).await
    }

    /// The demo component's greatest version and first resource.
    async fn resource(&self) -> (String, Value) {
        let (status, descriptor) = self
            .call(
                "GET",
                &format!("/ocm/component?component_name={COMPONENT}"),
                None,
                Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        (
            descriptor["component"]["version"]
                .as_str()
                .unwrap()
                .to_string(),
            descriptor["component"]["resources"][0].clone(),
        )
    }
}

fn artefact(version: Option<&str>, resource: &Value, single: bool) -> Value {
    json!({
        "component_name": COMPONENT, "component_version": version, "artefact_kind": "resource",
        "artefact": {"artefact_name": resource["name"],
                     "artefact_version": if single { resource["version"].clone() } else { Value::Null },
                     "artefact_type": resource["type"], "artefact_extra_id": {}},
    })
}

fn preview_uri(version: &str, resource: &Value, types: &[&str]) -> String {
    let mut uri = format!(
        "/rescore?componentName={COMPONENT}&componentVersion={version}&artefactKind=resource\
         &artefactName={}&artefactVersion={}&artefactType={}&artefactExtraId=%7B%7D",
        resource["name"].as_str().unwrap(),
        resource["version"].as_str().unwrap(),
        resource["type"].as_str().unwrap(),
    );
    for r#type in types {
        uri.push_str(&format!("&type={type}"));
    }
    uri
}

fn finding(version: &str, resource: &Value, package_version: &str) -> Value {
    json!({
        "artefact": artefact(Some(version), resource, true),
        "meta": {"datasource": "bdba", "type": "finding/vulnerability"},
        "data": {"severity": "HIGH", "package_name": "openssl", "package_version": package_version,
                 "base_url": "https://bdba", "report_url": "https://bdba/1", "product_id": 1,
                 "group_id": 2, "cve": "CVE-2023-0286", "cvss_v3_score": 7.4,
                 "cvss": {"access_vector": "N", "attack_complexity": "H", "privileges_required": "N",
                          "user_interaction": "N", "scope": "U", "confidentiality": "H",
                          "integrity": "N", "availability": "H"},
                 "summary": "X.400 address type confusion"},
        "discovery_date": "2098-12-01",
    })
}

/// What the dashboard's dialog posts for the "artefact" scope.
fn dashboard_rescoring(version: &str, resource: &Value, severity: &str) -> Value {
    let _ = version;
    json!({
        "artefact": artefact(None, resource, false),
        "meta": {"datasource": "delivery-dashboard", "type": "rescorings",
                 "creation_date": "2099-01-01T10:00:00.000Z", "last_update": "2099-01-01T10:00:00.000Z"},
        "data": {"finding": {"package_name": "openssl", "cve": "CVE-2023-0286"},
                 "referenced_type": "finding/vulnerability", "severity": severity,
                 "matching_rules": ["custom-rescoring"], "comment": "not reachable",
                 "allowed_processing_time": null, "due_date": null},
    })
}

#[tokio::test]
async fn the_preview_groups_findings_and_an_applied_rescoring_decides() {
    let app = RescoreApp::new().await;
    let (version, resource) = app.resource().await;
    let scan_info = json!({
        "artefact": artefact(Some(&version), &resource, true),
        "meta": {"datasource": "bdba", "type": "meta/artefact_scan_info"}, "data": {},
    });
    let (status, answer) = app
        .call(
            "PUT",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            json!({"entries": [scan_info, finding(&version, &resource, "3.0.7"), finding(&version, &resource, "3.0.8")]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    let uri = preview_uri(&version, &resource, &["finding/vulnerability"]);
    let (status, proposals) = app.call("GET", &uri, None, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{proposals}");
    assert_eq!(
        proposals.as_array().unwrap().len(),
        1,
        "grouped across package versions: {proposals}"
    );
    let proposal = &proposals[0];
    assert_eq!(proposal["finding_type"], "finding/vulnerability");
    assert_eq!(
        proposal["finding"]["package_versions"],
        json!(["3.0.7", "3.0.8"])
    );
    assert_eq!(
        proposal["finding"]["cvss"],
        "AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:H"
    );
    // the demo's cart image is categorised as protected: the default rule set proposes one
    // step down for a network-reachable CVE
    assert_eq!(proposal["severity"], "MEDIUM");
    assert_eq!(proposal["finding"]["severity"], "HIGH");
    assert_eq!(
        proposal["matching_rules"],
        json!(["network-exposure-protected"])
    );
    assert_eq!(proposal["discovery_date"], "2098-12-01");
    // HIGH: 30 days, then the first sprint ending on or after that day
    assert_eq!(proposal["due_date"], "2098-12-31");
    assert_eq!(
        proposal["sprint"],
        json!({"name": "2099a", "end_date": "2099-01-14"})
    );
    assert_eq!(proposal["applicable_rescorings"], json!([]));
    assert_eq!(proposal["pending_scanner_writebacks"], json!([]));

    // applying needs a writer; the entries must be rescorings
    let body = json!({"entries": [dashboard_rescoring(&version, &resource, "LOW")]});
    assert_eq!(
        app.call("POST", "/rescore", None, body.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let reader = jwt(json!(["reader"]));
    assert_eq!(
        app.call("POST", "/rescore", Some(&reader), body.clone())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let mut not_a_rescoring = dashboard_rescoring(&version, &resource, "LOW");
    not_a_rescoring["meta"]["type"] = json!("finding/vulnerability");
    let (status, answer) = app
        .call(
            "POST",
            "/rescore",
            Some(ADMIN_TOKEN),
            json!({"entries": [not_a_rescoring]}),
        )
        .await;
    assert_eq!(
        (status, &answer["entry"]),
        (StatusCode::BAD_REQUEST, &json!(0)),
        "{answer}"
    );
    let writer = jwt(json!(["metadata-writer"]));
    let (status, answer) = app.call("POST", "/rescore", Some(&writer), body).await;
    assert_eq!((status, answer), (StatusCode::CREATED, Value::Null));

    let (_, proposals) = app.call("GET", &uri, None, Value::Null).await;
    let proposal = &proposals[0];
    assert_eq!(proposal["severity"], "LOW");
    assert_eq!(
        proposal["finding"]["severity"], "HIGH",
        "the finding keeps its own"
    );
    assert_eq!(proposal["matching_rules"], json!(["custom-rescoring"]));
    let applied = &proposal["applicable_rescorings"][0];
    assert!(applied["id"].is_string(), "{applied}");
    assert_eq!(
        applied["data"]["user"],
        json!({"username": "scanner", "type": "user"})
    );
    assert_eq!(applied["data"]["comment"], "not reachable");
    // LOW: 120 days after discovery, past the calendar: its last sprint
    assert_eq!(proposal["due_date"], "2099-03-31");
    assert_eq!(proposal["sprint"]["name"], "2099b");

    let (_, summary) = app
        .call(
            "GET",
            &format!("/components/compliance-summary?component_name={COMPONENT}&version={version}&recursion_depth=0"),
            None,
            Value::Null,
        )
        .await;
    let entry = summary["complianceSummary"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["type"] == "finding/vulnerability")
        .unwrap();
    assert_eq!(entry["categorisation"], "LOW", "{summary}");
}

#[tokio::test]
async fn bad_parameters_get_the_originals_errors() {
    let app = RescoreApp::new().await;
    let (version, resource) = app.resource().await;
    let (status, answer) = app
        .call(
            "GET",
            &preview_uri(&version, &resource, &["finding/unheard-of"]),
            None,
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("finding/unheard-of"));
    let good = preview_uri(&version, &resource, &[]);
    for (broken, why) in [
        (
            good.replace("artefactKind=resource", "artefactKind=image"),
            "artefactKind",
        ),
        (
            good.replace("artefactExtraId=%7B%7D", "artefactExtraId=%7Bx"),
            "artefactExtraId",
        ),
        (
            good.replace(&format!("componentName={COMPONENT}&"), ""),
            "componentName",
        ),
    ] {
        let (status, answer) = app.call("GET", &broken, None, Value::Null).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
    }
    // no findings: no proposals
    let (status, answer) = app.call("GET", &good, None, Value::Null).await;
    assert_eq!((status, answer), (StatusCode::OK, json!([])));
    let (status, answer) = app
        .call(
            "POST",
            "/rescore",
            Some(ADMIN_TOKEN),
            json!({"entries": "none"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}
