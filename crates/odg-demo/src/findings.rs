//! Made-up scan results for the demo landscape, so that the dashboard's compliance views are
//! worth opening: vulnerabilities, licences and malware findings on some shop services' images,
//! with the scan infos (`meta/artefact_scan_info`) that say the images were scanned. Entries in
//! the original's artefact-metadata shape (what `PUT /artefacts/metadata` takes); writing them
//! twice changes nothing, since an entry's id is computed from its identity.

use serde_json::{json, Value};

use crate::short_name;

/// The demo's scanned components and versions: the shop services' newest two releases.
const SCANNED: &[(&str, &str)] = &[
    ("acme.org/shop/checkout", "1.2.0"),
    ("acme.org/shop/checkout", "1.3.0"),
    ("acme.org/shop/cart", "1.3.0"),
    ("acme.org/shop/catalog", "1.3.0"),
];

/// Made-up vulnerabilities: (package, version, CVE, CVSS v3 score, CVSS v3 vector, severity).
const VULNERABILITIES: &[(&str, &str, &str, f64, &str, &str)] = &[
    (
        "openssl",
        "3.0.13",
        "CVE-2024-0727",
        5.5,
        "AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H",
        "MEDIUM",
    ),
    (
        "openssl",
        "3.0.13",
        "CVE-2024-2511",
        7.5,
        "AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
        "HIGH",
    ),
    (
        "glibc",
        "2.36",
        "CVE-2023-4911",
        7.8,
        "AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
        "HIGH",
    ),
    (
        "zlib",
        "1.2.13",
        "CVE-2023-45853",
        9.8,
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CRITICAL",
    ),
    (
        "curl",
        "8.4.0",
        "CVE-2023-46218",
        3.7,
        "AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N",
        "LOW",
    ),
];

/// A CVSS v3 vector as BDBA's findings hold it: one field per metric, by its long name.
fn cvss_fields(vector: &str) -> Value {
    let mut fields = serde_json::Map::new();
    for part in vector.split('/') {
        if let Some((metric, value)) = part.split_once(':') {
            let name = match metric {
                "AV" => "access_vector",
                "AC" => "attack_complexity",
                "PR" => "privileges_required",
                "UI" => "user_interaction",
                "S" => "scope",
                "C" => "confidentiality",
                "I" => "integrity",
                _ => "availability",
            };
            fields.insert(name.into(), json!(value));
        }
    }
    Value::Object(fields)
}

const BDBA: &str = "https://bdba.acme.invalid";

fn artefact(component: &str, version: &str) -> Value {
    json!({
        "component_name": component,
        "component_version": version,
        "artefact_kind": "resource",
        "artefact": {
            "artefact_name": short_name(component),
            "artefact_version": version,
            "artefact_type": "ociImage",
            "artefact_extra_id": {},
        },
    })
}

fn bdba_fields(product_id: u64, package: &str, package_version: &str) -> Value {
    json!({
        "package_name": package,
        "package_version": package_version,
        "base_url": BDBA,
        "report_url": format!("{BDBA}/products/{product_id}/"),
        "product_id": product_id,
        "group_id": 7,
    })
}

fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// Every demo finding and scan info, in the order written.
pub fn demo_findings() -> Vec<Value> {
    let mut entries = Vec::new();
    for (index, (component, version)) in SCANNED.iter().enumerate() {
        let product_id = 4700 + index as u64;
        let artefact = artefact(component, version);
        for datasource in ["bdba", "clamav"] {
            entries.push(json!({
                "artefact": artefact,
                "meta": {"datasource": datasource, "type": "meta/artefact_scan_info"},
                "data": {"report_url": format!("{BDBA}/products/{product_id}/"), "product_id": product_id},
            }));
        }
        // Each component gets a different share of the made-up vulnerabilities.
        for (package, package_version, cve, score, vector, severity) in
            VULNERABILITIES.iter().skip(index % 2).take(4 - index % 3)
        {
            entries.push(json!({
                "artefact": artefact,
                "meta": {"datasource": "bdba", "type": "finding/vulnerability"},
                "data": merged(bdba_fields(product_id, package, package_version), json!({
                    "severity": severity,
                    "cve": cve,
                    "cvss_v3_score": score,
                    "cvss": cvss_fields(vector),
                    "summary": format!("{package} {package_version}: {cve}"),
                })),
            }));
        }
        entries.push(json!({
            "artefact": artefact,
            "meta": {"datasource": "bdba", "type": "finding/license"},
            "data": merged(bdba_fields(product_id, "left-pad", "1.3.0"), json!({
                "severity": "BLOCKER",
                "license": {"name": "AGPL-3.0"},
            })),
        }));
    }
    // One malware finding, on the checkout release candidate's predecessor.
    entries.push(json!({
        "artefact": artefact("acme.org/shop/checkout", "1.3.0"),
        "meta": {"datasource": "clamav", "type": "finding/malware"},
        "data": {
            "severity": "BLOCKER",
            "finding": {
                "filename": "/usr/share/doc/eicar.com",
                "content_digest": "sha256:275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                "malware": "Eicar-Signature",
                "context": null,
            },
            "octets_count": 68,
            "scan_duration_seconds": 0.25,
            "clamav_version": "1.4.1",
        },
    }));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_finding_type_is_there_and_names_a_demo_component_resource() {
        let entries = demo_findings();
        let types: HashSet<&str> = entries
            .iter()
            .filter_map(|entry| entry["meta"]["type"].as_str())
            .collect();
        for expected in [
            "finding/vulnerability",
            "finding/license",
            "finding/malware",
            "meta/artefact_scan_info",
        ] {
            assert!(types.contains(expected), "{expected}");
        }
        let landscape = crate::demo_landscape();
        for entry in &entries {
            let name = entry["artefact"]["component_name"].as_str().unwrap();
            let version = entry["artefact"]["component_version"].as_str().unwrap();
            let resource = entry["artefact"]["artefact"]["artefact_name"]
                .as_str()
                .unwrap();
            let descriptor = landscape
                .iter()
                .find(|d| d.component.name == name && d.component.version == version)
                .unwrap_or_else(|| panic!("{name}:{version} is not in the landscape"));
            assert!(
                descriptor
                    .component
                    .resources
                    .iter()
                    .any(|r| r.name == resource && r.version.as_deref() == Some(version)),
                "{name}:{version} has no resource {resource}"
            );
        }
    }
}
