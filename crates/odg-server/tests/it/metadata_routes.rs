//! The delivery DB routes over the demo landscape and an SQLite file: authentication and roles of
//! writes, 400s for malformed entries (nothing written), and compliance summaries that follow
//! writes, rescorings and deletes at once (version-less findings included).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::support::{jwt, metadata_state, request, send_any, ADMIN_TOKEN};

struct TestApp {
    router: axum::Router,
    _directory: tempfile::TempDir,
}

impl TestApp {
    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        send(self, Request::get(uri).body(Body::empty()).unwrap()).await
    }
}

async fn metadata_app() -> TestApp {
    let directory = tempfile::tempdir().unwrap();
    TestApp {
        router: odg_server::router(metadata_state(directory.path()).await),
        _directory: directory,
    }
}

/// Sends a request whose answer may have no body (204).
async fn send(app: &TestApp, request: Request<Body>) -> (StatusCode, Value) {
    send_any(&app.router, request).await
}

fn entry(
    component: &str,
    version: Option<&str>,
    resource: &Value,
    r#type: &str,
    data: Value,
) -> Value {
    let source = match r#type {
        "finding/malware" => "clamav",
        _ => "bdba",
    };
    json!({
        "artefact": {"component_name": component, "component_version": version, "artefact_kind": "resource",
                     "artefact": {"artefact_name": resource["name"], "artefact_version": resource["version"],
                                  "artefact_type": resource["type"], "artefact_extra_id": resource.get("extraIdentity").cloned().unwrap_or(json!({}))}},
        "meta": {"datasource": source, "type": r#type},
        "data": data,
    })
}

fn vulnerability(severity: &str) -> Value {
    json!({"severity": severity, "package_name": "openssl", "package_version": "3.0.7", "base_url": "https://bdba",
           "report_url": "https://bdba/1", "product_id": 1, "group_id": 2, "cve": "CVE-2023-0286",
           "cvss_v3_score": 7.4, "cvss": {}, "summary": null})
}

/// The entry of `finding_type` of the component `name` in a summary.
fn component_entry<'a>(summary: &'a Value, name: &str, finding_type: &str) -> &'a Value {
    summary["complianceSummary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|component| component["componentId"]["name"] == name)
        .and_then(|component| {
            component["entries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|entry| entry["type"] == finding_type)
        })
        .unwrap_or_else(|| panic!("no {finding_type} entry for {name} in {summary}"))
}

const COMPONENT: &str = "acme.org/shop/cart";

async fn first_resource(app: &TestApp) -> (String, Value) {
    let (status, descriptor) = app
        .get(&format!("/ocm/component?component_name={COMPONENT}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let version = descriptor["component"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let resource = descriptor["component"]["resources"][0].clone();
    assert!(resource.is_object(), "{COMPONENT} has a resource");
    (version, resource)
}

#[tokio::test]
async fn writes_need_the_metadata_writer_role() {
    let app = metadata_app().await;
    let (version, resource) = first_resource(&app).await;
    let body = json!({"entries": [entry(COMPONENT, Some(&version), &resource, "meta/artefact_scan_info", json!({}))]});
    for method in ["PUT", "DELETE"] {
        let (status, _) = send(
            &app,
            request(method, "/artefacts/metadata", None, body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method}");
        let reader = jwt(json!(["reader", "cache-admin"]));
        let (status, answer) = send(
            &app,
            request(method, "/artefacts/metadata", Some(&reader), body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}: {answer}");
    }
    let writer = jwt(json!(["metadata-writer"]));
    let (status, answer) = send(
        &app,
        request("PUT", "/artefacts/metadata", Some(&writer), body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer, json!({"inserted": 1, "updated": 0}));
    let (status, answer) = send(
        &app,
        request(
            "PUT",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(
        (status, answer),
        (StatusCode::CREATED, json!({"inserted": 0, "updated": 1}))
    );
    let (status, _) = send(
        &app,
        request(
            "PUT",
            "/artefacts/metadata",
            Some(&writer),
            json!({"entries": []}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "no entries: a no-op");
    let (status, answer) = send(
        &app,
        request("DELETE", "/artefacts/metadata", Some(&writer), body),
    )
    .await;
    assert_eq!((status, answer), (StatusCode::NO_CONTENT, Value::Null));
}

#[tokio::test]
async fn malformed_entries_are_refused_and_nothing_is_written() {
    let app = metadata_app().await;
    let (version, resource) = first_resource(&app).await;
    let valid = entry(
        COMPONENT,
        Some(&version),
        &resource,
        "meta/artefact_scan_info",
        json!({}),
    );
    let mut bad_kind = valid.clone();
    bad_kind["artefact"]["artefact_kind"] = json!("image");
    let mut unknown_key = valid.clone();
    unknown_key["id"] = json!("2093e5c71e75adb0c50b7890760f4280");
    let mut no_artefact = valid.clone();
    no_artefact["artefact"]["artefact"] = Value::Null;
    let mut bad_extra_id = valid.clone();
    bad_extra_id["artefact"]["artefact"]["artefact_extra_id"] = json!({"n": 1});
    for (body, field) in [
        (
            json!({"entries": [valid.clone(), bad_kind]}),
            "artefact.artefact_kind",
        ),
        (json!({"entries": [valid.clone(), unknown_key]}), "id"),
        (
            json!({"entries": [valid.clone(), no_artefact]}),
            "artefact.artefact",
        ),
        (
            json!({"entries": [valid.clone(), bad_extra_id]}),
            "artefact.artefact.artefact_extra_id.n",
        ),
    ] {
        let (status, answer) = send(
            &app,
            request("PUT", "/artefacts/metadata", Some(ADMIN_TOKEN), body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["entry"], 1, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with("entries[1]."),
            "{answer}"
        );
    }
    for body in [
        json!({"entries": [valid.clone()], "extra": 1}),
        json!([valid.clone()]),
        json!({"entries": {}}),
    ] {
        let (status, answer) = send(
            &app,
            request("PUT", "/artefacts/metadata", Some(ADMIN_TOKEN), body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    }
    let not_json = Request::put("/artefacts/metadata")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::from("{entries"))
        .unwrap();
    assert_eq!(send(&app, not_json).await.0, StatusCode::BAD_REQUEST);
    let (status, rows) = send(
        &app,
        request("POST", "/artefacts/metadata/query", None, json!({})),
    )
    .await;
    assert_eq!(
        (status, rows),
        (StatusCode::OK, json!([])),
        "nothing was written"
    );
}

#[tokio::test]
async fn summaries_follow_writes_rescorings_and_deletes() {
    let app = metadata_app().await;
    let (version, resource) = first_resource(&app).await;
    let summary_uri = format!(
        "/components/compliance-summary?component_name={COMPONENT}&version=greatest&recursion_depth=0"
    );
    let summary = app.get(&summary_uri).await.1;
    assert_eq!(
        component_entry(&summary, COMPONENT, "finding/vulnerability")["categorisation"],
        "UNKNOWN"
    );
    assert_eq!(
        summary["complianceSummary"][0]["componentId"]["version"],
        version.as_str()
    );

    // A scan info of this version, and a version-less finding (shared across versions, as BDBA
    // writes them) about the same resource.
    let scan_info = entry(
        COMPONENT,
        Some(&version),
        &resource,
        "meta/artefact_scan_info",
        json!({}),
    );
    let finding = entry(
        COMPONENT,
        None,
        &resource,
        "finding/vulnerability",
        vulnerability("HIGH"),
    );
    let (status, answer) = send(
        &app,
        request(
            "PUT",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            json!({"entries": [scan_info]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let summary = app.get(&summary_uri).await.1;
    let vulnerability_entry = component_entry(&summary, COMPONENT, "finding/vulnerability");
    assert_eq!(
        (
            vulnerability_entry["categorisation"].as_str(),
            vulnerability_entry["value"].as_i64()
        ),
        (Some("CLEAN"), Some(0))
    );
    assert_eq!(
        component_entry(&summary, COMPONENT, "finding/malware")["scanStatus"],
        "no_data",
        "other sources untouched"
    );

    send(
        &app,
        request(
            "PUT",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            json!({"entries": [finding.clone()]}),
        ),
    )
    .await;
    let summary = app.get(&summary_uri).await.1;
    let vulnerability_entry = component_entry(&summary, COMPONENT, "finding/vulnerability");
    assert_eq!(vulnerability_entry["categorisation"], "HIGH", "{summary}");
    assert_eq!(vulnerability_entry["value"], 4);
    assert_eq!(vulnerability_entry["scanStatus"], "ok");

    // A rescoring of this component to NONE: clean again.
    let rescoring = json!({
        "artefact": {"component_name": COMPONENT, "component_version": null, "artefact_kind": "resource",
                     "artefact": {"artefact_name": resource["name"], "artefact_type": resource["type"]}},
        "meta": {"datasource": "delivery-dashboard", "type": "rescorings"},
        "data": {"finding": {"package_name": "openssl", "cve": "CVE-2023-0286"}, "referenced_type": "finding/vulnerability",
                 "severity": "NONE", "user": {"username": "jane"}, "matching_rules": ["custom-rescoring"]}
    });
    let (status, answer) = send(
        &app,
        request(
            "PUT",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            json!({"entries": [rescoring.clone()]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let summary = app.get(&summary_uri).await.1;
    assert_eq!(
        component_entry(&summary, COMPONENT, "finding/vulnerability")["categorisation"],
        "CLEAN",
        "{summary}"
    );

    // Deleting the rescoring brings HIGH back; deleting the finding makes it clean.
    send(
        &app,
        request(
            "DELETE",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            json!({"entries": [rescoring]}),
        ),
    )
    .await;
    assert_eq!(
        component_entry(
            &app.get(&summary_uri).await.1,
            COMPONENT,
            "finding/vulnerability"
        )["categorisation"],
        "HIGH"
    );
    send(
        &app,
        request(
            "DELETE",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            json!({"entries": [finding.clone()]}),
        ),
    )
    .await;
    assert_eq!(
        component_entry(
            &app.get(&summary_uri).await.1,
            COMPONENT,
            "finding/vulnerability"
        )["categorisation"],
        "CLEAN"
    );

    // The query route: by type, with the version rule for the version-less finding.
    send(
        &app,
        request(
            "PUT",
            "/artefacts/metadata",
            Some(ADMIN_TOKEN),
            json!({"entries": [finding]}),
        ),
    )
    .await;
    let (status, rows) = send(
        &app,
        request(
            "POST",
            "/artefacts/metadata/query?type=finding/vulnerability",
            None,
            json!({"entries": [{"component_name": COMPONENT, "component_version": version}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["data"]["severity"], "HIGH");
    let (status, answer) = send(
        &app,
        request(
            "GET",
            "/components/compliance-summary?component_name=acme.org/shop/cart",
            None,
            Value::Null,
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "version is required: {answer}"
    );
}
