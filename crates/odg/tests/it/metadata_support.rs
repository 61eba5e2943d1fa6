//! What the delivery-DB tests share: a metadata write with the admin token, and the reading of a
//! compliance summary.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cache_support::ADMIN_TOKEN;
use crate::harness::{http_client, OdgServer};

/// `PUT` or `DELETE /artefacts/metadata` with the admin token; must answer as the original does
/// (201 to a `PUT`, 204 to a `DELETE`).
pub async fn write_metadata_as_admin(pod: &OdgServer, method: Method, entries: Vec<Value>) {
    let expected = if method == Method::PUT {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    };
    let response = http_client()
        .request(
            method.clone(),
            format!("{}/artefacts/metadata", pod.base_url()),
        )
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "entries": entries }))
        .send()
        .await
        .expect("the write answers");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, expected, "{method} /artefacts/metadata: {body}");
}

/// The categorisation of the vulnerability entry of a compliance summary's first component.
pub fn vulnerability_categorisation(summary: &Value) -> String {
    summary["complianceSummary"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["type"] == "finding/vulnerability")
        .and_then(|entry| entry["categorisation"].as_str())
        .unwrap_or_else(|| panic!("no vulnerability entry in {summary}"))
        .to_owned()
}
