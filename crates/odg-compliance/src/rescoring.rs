//! Which rescorings apply to a finding, and which one decides: the original's one rule
//! (`rescorings_for_finding_by_specificity`), shared by the compliance summary and `/rescore`
//! so that the severity a summary counts is the one the rescoring dialog shows.

use odg_delivery_db::{classify, sort_millis, ComponentArtefactId, StoredMetadata};
use serde_json::Value;

use crate::config::{IP, LICENSE, VULNERABILITY};

/// The original's scopes: global (no component name) < component (no artefact name) <
/// artefact (no artefact version) < single.
pub fn specificity(scope: &ComponentArtefactId) -> u8 {
    let local = scope.artefact.as_ref();
    let set = |value: Option<&String>| value.is_some_and(|value| !value.is_empty());
    if !set(scope.component_name.as_ref()) {
        0
    } else if !set(local.and_then(|local| local.artefact_name.as_ref())) {
        1
    } else if !set(local.and_then(|local| local.artefact_version.as_ref())) {
        2
    } else {
        3
    }
}

fn field<'a>(data: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(data, |value, name| value.get(name))
}

fn sorted_labels(data: Option<&Value>) -> Vec<&str> {
    let mut labels: Vec<&str> = data
        .and_then(|data| data.get("labels"))
        .and_then(Value::as_array)
        .map(|labels| labels.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    labels.sort_unstable();
    labels
}

/// Whether `rescoring` applies to `finding` (of `finding_type`): same referenced type, kind and
/// artefact type; each scope field the rescoring sets equal to the finding's (its component
/// version only when the finding has one too); and the same finding: package and CVE for
/// vulnerabilities, package and licence name for licences, package and labels for IP findings,
/// the data key (`finding.key == data.key`) for every other type.
pub fn applies(rescoring: &StoredMetadata, finding: &StoredMetadata, finding_type: &str) -> bool {
    let scope = &rescoring.metadata.artefact;
    let about = &finding.metadata.artefact;
    if rescoring.referenced_type.as_deref() != Some(finding_type)
        || scope.artefact_kind != about.artefact_kind
    {
        return false;
    }
    let local = about.artefact.clone().unwrap_or_default();
    let scope_local = scope.artefact.clone().unwrap_or_default();
    if scope_local.artefact_type != local.artefact_type {
        return false;
    }
    let set_and_differs = |set: &Option<String>, actual: &Option<String>| {
        set.as_ref()
            .is_some_and(|value| !value.is_empty() && Some(value) != actual.as_ref())
    };
    if set_and_differs(&scope.component_name, &about.component_name)
        || set_and_differs(&scope_local.artefact_name, &local.artefact_name)
        || set_and_differs(&scope_local.artefact_version, &local.artefact_version)
        || (!scope_local.artefact_extra_id.is_empty()
            && scope_local.normalised_extra_id() != local.normalised_extra_id())
    {
        return false;
    }
    if let (Some(wanted), Some(actual)) = (&scope.component_version, &about.component_version) {
        if !wanted.is_empty() && !actual.is_empty() && wanted != actual {
            return false;
        }
    }
    let rescored = field(&rescoring.metadata.data, &["finding"]);
    let data = &finding.metadata.data;
    let same = |paths: &[(&[&str], &[&str])]| {
        paths.iter().all(|(in_rescoring, in_finding)| {
            rescored.and_then(|rescored| field(rescored, in_rescoring)) == field(data, in_finding)
        })
    };
    match finding_type {
        VULNERABILITY => same(&[(&["package_name"], &["package_name"]), (&["cve"], &["cve"])]),
        LICENSE => same(&[
            (&["package_name"], &["package_name"]),
            (&["license", "name"], &["license", "name"]),
        ]),
        IP => {
            same(&[(&["package_name"], &["package_name"])])
                && sorted_labels(rescored) == sorted_labels(Some(data))
        }
        _ => {
            let rescored_key = rescored
                .and_then(Value::as_object)
                .map(odg_delivery_db::rescoring_finding_key);
            let finding_key = data
                .as_object()
                .and_then(|data| classify(data).ok())
                .and_then(|payload| payload.data_key);
            rescored_key.is_some() && rescored_key == finding_key
        }
    }
}

/// The rescorings of `rescorings` that apply to `finding`, the deciding one first: most
/// specific first, the newest (by creation date) first among equals.
pub fn for_finding<'a>(
    finding: &StoredMetadata,
    finding_type: &str,
    rescorings: &'a [StoredMetadata],
) -> Vec<&'a StoredMetadata> {
    let mut applicable: Vec<&StoredMetadata> = rescorings
        .iter()
        .filter(|rescoring| applies(rescoring, finding, finding_type))
        .collect();
    let created = |rescoring: &StoredMetadata| {
        rescoring
            .metadata
            .meta
            .creation_date
            .as_deref()
            .and_then(sort_millis)
            .or(rescoring.last_update_ms)
    };
    applicable.sort_by(|a, b| {
        (specificity(&b.metadata.artefact), created(b))
            .cmp(&(specificity(&a.metadata.artefact), created(a)))
    });
    applicable
}

#[cfg(test)]
mod tests {
    use odg_delivery_db::ArtefactMetadata;
    use serde_json::json;

    use super::*;

    fn row(artefact: Value, r#type: &str, data: Value, created: &str) -> StoredMetadata {
        let metadata = ArtefactMetadata::from_json(&json!({
            "artefact": artefact,
            "meta": {"type": r#type, "datasource": "test", "creation_date": created,
                     "last_update": created},
            "data": data,
        }))
        .unwrap();
        StoredMetadata {
            id: created.into(),
            referenced_type: metadata
                .data
                .get("referenced_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            metadata,
            data_key_hash: None,
            last_update_ms: None,
        }
    }

    fn artefact(component: Option<&str>, name: Option<&str>, version: Option<&str>) -> Value {
        json!({
            "component_name": component, "component_version": null, "artefact_kind": "resource",
            "artefact": {"artefact_name": name, "artefact_version": version,
                         "artefact_type": "ociImage", "artefact_extra_id": {}},
        })
    }

    fn rescoring(scope: Value, finding: Value, referenced: &str, created: &str) -> StoredMetadata {
        row(
            scope,
            "rescorings",
            json!({"finding": finding, "referenced_type": referenced, "severity": "NONE",
                   "user": {"username": "alice"}, "matching_rules": ["custom-rescoring"]}),
            created,
        )
    }

    /// The original's `specificity`: what decides is whether the artefact version is set, not
    /// the component version (a "single" rescoring of a `greatest` version has none).
    #[test]
    fn specificity_follows_the_originals_scopes() {
        let scope = |value: Value| ComponentArtefactId::from_json(&value, true).unwrap();
        assert_eq!(specificity(&scope(artefact(None, Some("a"), Some("1")))), 0);
        assert_eq!(specificity(&scope(artefact(Some("c"), None, Some("1")))), 1);
        assert_eq!(specificity(&scope(artefact(Some("c"), Some("a"), None))), 2);
        assert_eq!(
            specificity(&scope(artefact(Some("c"), Some("a"), Some("1")))),
            3
        );
    }

    #[test]
    fn the_most_specific_then_the_newest_decides() {
        let finding = row(
            artefact(Some("c"), Some("a"), Some("1")),
            "finding/vulnerability",
            json!({"package_name": "openssl", "cve": "CVE-1", "severity": "HIGH"}),
            "2026-01-01T00:00:00",
        );
        let finding_data = json!({"package_name": "openssl", "cve": "CVE-1"});
        let rescorings = vec![
            rescoring(
                artefact(None, None, None),
                finding_data.clone(),
                "finding/vulnerability",
                "2026-03-01T00:00:00",
            ),
            rescoring(
                artefact(Some("c"), Some("a"), None),
                finding_data.clone(),
                "finding/vulnerability",
                "2026-01-02T00:00:00",
            ),
            rescoring(
                artefact(Some("c"), Some("a"), None),
                finding_data.clone(),
                "finding/vulnerability",
                "2026-02-01T00:00:00",
            ),
            rescoring(
                artefact(Some("c"), Some("a"), None),
                json!({"package_name": "openssl", "cve": "CVE-2"}),
                "finding/vulnerability",
                "2026-04-01T00:00:00",
            ),
            rescoring(
                artefact(Some("other"), None, None),
                finding_data,
                "finding/vulnerability",
                "2026-05-01T00:00:00",
            ),
        ];
        let order: Vec<&str> = for_finding(&finding, "finding/vulnerability", &rescorings)
            .iter()
            .map(|rescoring| rescoring.id.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "2026-02-01T00:00:00",
                "2026-01-02T00:00:00",
                "2026-03-01T00:00:00"
            ]
        );
    }

    /// Other finding types match on the finding's key, as the original's `finding.key ==
    /// data.key`: a rescoring naming a subset of a SAST finding's fields does not apply unless
    /// the key fields match, and extra fields in the finding do not matter.
    #[test]
    fn other_types_match_on_the_data_key() {
        let finding = row(
            artefact(Some("c"), Some("a"), Some("1")),
            "finding/sast",
            json!({"sast_status": "no-linter", "sub_type": "local-linting", "severity": "HIGH"}),
            "2026-01-01T00:00:00",
        );
        let matching = rescoring(
            artefact(Some("c"), None, None),
            json!({"sast_status": "no-linter", "sub_type": "local-linting"}),
            "finding/sast",
            "2026-01-02T00:00:00",
        );
        let other = rescoring(
            artefact(Some("c"), None, None),
            json!({"sast_status": "no-linter", "sub_type": "central-linting"}),
            "finding/sast",
            "2026-01-03T00:00:00",
        );
        assert!(applies(&matching, &finding, "finding/sast"));
        assert!(!applies(&other, &finding, "finding/sast"));
    }

    #[test]
    fn ip_findings_match_on_package_and_sorted_labels() {
        let finding = row(
            artefact(Some("c"), Some("a"), Some("1")),
            "finding/ip",
            json!({"package_name": "p", "labels": ["b", "a"], "severity": "HIGH"}),
            "2026-01-01T00:00:00",
        );
        let same = rescoring(
            artefact(Some("c"), None, None),
            json!({"package_name": "p", "labels": ["a", "b"], "license": null}),
            "finding/ip",
            "2026-01-02T00:00:00",
        );
        let fewer = rescoring(
            artefact(Some("c"), None, None),
            json!({"package_name": "p", "labels": ["a"], "license": null}),
            "finding/ip",
            "2026-01-02T00:00:00",
        );
        assert!(applies(&same, &finding, "finding/ip"));
        assert!(!applies(&fewer, &finding, "finding/ip"));
    }
}
