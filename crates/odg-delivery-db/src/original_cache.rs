//! The original delivery service's own cache of compliance-summary parts, in the `cache` table it
//! shares with odg during a switch. When the original writes or deletes artefact metadata it marks
//! the affected parts for deletion (`delete_after` = now) so that it recomputes them; odg does the
//! same in the same transaction, or the original, running beside odg on one database, would keep
//! serving summaries that miss odg's writes.
//!
//! A part's id is the original's cache id of the function call
//! `compliance_summary.component_datatype_summaries(component=ComponentIdentity(name, version),
//! finding_type=..., datasource=...)`: BLAKE2s-16 over
//! `python-function|pickle-4.0|<function>|<args>|<kwargs>`, the arguments serialised by its stable
//! normaliser (mappings as `|--key|:value|-...--|` sorted by key, sequences as `|__a|_b__|`
//! sorted). The test vectors were computed with the original's own code.

use crate::identity::entry_id;

const FUNCTION: &str = "compliance_summary.component_datatype_summaries";
/// The original's `deliverydb_cache.model.EncodingFormat.PICKLE`.
const ENCODING_FORMAT: &str = "pickle-4.0";
/// The original refuses (ValueError) to serialise a string containing one of these, so it never
/// has a cache entry for such arguments.
const JOIN_SEQUENCES: [&str; 5] = ["|-", "--|", "|_", "__|", "|:"];

/// The original's finding and meta types (`odg.model.Datatype`): only these name a summary part.
const DATATYPES: [&str; 22] = [
    "meta/artefact_scan_info",
    "compliance/snapshots",
    "rescorings",
    "meta/responsibles",
    "meta/scanner_writeback",
    "meta/uuid",
    "sla_violation",
    "finding/crypto",
    "finding/diki",
    "finding/falco",
    "finding/kyverno",
    "finding/ghas",
    "finding/inventory",
    "finding/ip",
    "finding/license",
    "finding/malware",
    "finding/osid",
    "finding/sast",
    "finding/vulnerability",
    "crypto_asset",
    "osid",
    "structure_info",
];

const SCAN_INFO: &str = "meta/artefact_scan_info";

/// The data types a datasource's scan covers (`odg.model.Datasource.datatypes`): a scan info
/// changes every one of them (from unknown to clean or findings).
fn datasource_datatypes(datasource: &str) -> &'static [&'static str] {
    match datasource {
        "blackduck" => &["finding/ip"],
        "bdba" => &["finding/license", "structure_info", "finding/vulnerability"],
        "clamav" => &["finding/malware"],
        "crypto" => &["finding/crypto", "crypto_asset"],
        "diki" => &["finding/diki"],
        "falco" => &["finding/falco"],
        "ghas" => &["finding/ghas"],
        "inventory" => &["finding/inventory"],
        "osid" => &["osid", "finding/osid"],
        "kyverno" => &["finding/kyverno"],
        "responsibles" => &["meta/responsibles"],
        "sast" => &["finding/sast"],
        _ => &[],
    }
}

/// The ids of the original's cached summary parts that a write or delete of a row with these
/// columns makes stale; none when the component name or version is missing (the original cannot
/// compute the id either and skips).
pub fn compliance_summary_cache_ids(
    component_name: Option<&str>,
    component_version: Option<&str>,
    r#type: &str,
    datasource: &str,
) -> Vec<String> {
    let (Some(name), Some(version)) = (component_name, component_version) else {
        return Vec::new();
    };
    if name.is_empty() || version.is_empty() || r#type.is_empty() || datasource.is_empty() {
        return Vec::new();
    }
    let datatypes: Vec<&str> = if r#type == SCAN_INFO {
        datasource_datatypes(datasource).to_vec()
    } else {
        vec![r#type]
    };
    if [name, version, datasource]
        .iter()
        .any(|text| JOIN_SEQUENCES.iter().any(|join| text.contains(join)))
    {
        return Vec::new();
    }
    datatypes
        .into_iter()
        .filter(|datatype| DATATYPES.contains(datatype))
        .map(|datatype| {
            // kwargs, keys sorted: component (a dataclass: name, version), datasource, finding_type
            let kwargs = format!(
                "|--component|:|--name|:{name}|-version|:{version}--||-datasource|:{datasource}|-finding_type|:{datatype}--|"
            );
            // args: the empty tuple
            let key = format!("python-function|{ENCODING_FORMAT}|{FUNCTION}||____||{kwargs}");
            entry_id(&key)
        })
        .collect()
}

/// A cache descriptor as the original's `DELETE /cache` takes it in the body
/// (`deliverydb_cache.model`): its cache id, and for a component descriptor the component
/// version it caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalCacheDescriptor {
    pub id: String,
    /// `(name, version)` of a `component-descriptor` descriptor.
    pub component: Option<(String, String)>,
}

/// Reads a body descriptor the way the original does (`type` selects the class; every field
/// its key needs must be there) and computes its id: BLAKE2s-16 over the class's key.
pub fn original_cache_descriptor(
    body: &serde_json::Value,
) -> Result<OriginalCacheDescriptor, String> {
    let text = |name: &str| -> Result<&str, String> {
        body.get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("the descriptor needs the string field {name:?}"))
    };
    // `str(None)` where the original's optional fields are absent
    let optional = |name: &str| -> Result<String, String> {
        match body.get(name) {
            None | Some(serde_json::Value::Null) => Ok("None".into()),
            Some(serde_json::Value::String(value)) => Ok(value.clone()),
            Some(_) => Err(format!("{name:?} must be a string")),
        }
    };
    let kind = text("type")?;
    let encoding = text("encoding_format")?;
    match kind {
        "component-descriptor" => {
            let name = text("component_name")?;
            let version = text("component_version")?;
            let repository = body
                .get("ocm_repository")
                .ok_or("the descriptor needs \"ocm_repository\"")?;
            let base_url = repository
                .get("baseUrl")
                .and_then(serde_json::Value::as_str)
                .ok_or("ocm_repository needs the string field \"baseUrl\"")?;
            let oci_ref = match repository
                .get("subPath")
                .and_then(serde_json::Value::as_str)
                .filter(|sub_path| !sub_path.is_empty())
            {
                None => base_url.to_string(),
                Some(sub_path) => format!(
                    "{}/{}",
                    base_url.trim_end_matches('/'),
                    sub_path.trim_start_matches('/')
                ),
            };
            Ok(OriginalCacheDescriptor {
                id: entry_id(&format!("{kind}|{encoding}|{name}|{version}|{oci_ref}")),
                component: Some((name.to_string(), version.to_string())),
            })
        }
        "python-function" => Ok(OriginalCacheDescriptor {
            id: entry_id(&format!(
                "{kind}|{encoding}|{}|{}|{}",
                text("function_name")?,
                text("args")?,
                text("kwargs")?
            )),
            component: None,
        }),
        "http-route" => Ok(OriginalCacheDescriptor {
            id: entry_id(&format!(
                "{kind}|{encoding}|{}|{}|{}",
                text("route")?,
                optional("params")?,
                optional("body")?
            )),
            component: None,
        }),
        other => Err(format!(
            "type {other:?}: expected component-descriptor, python-function or http-route"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{compliance_summary_cache_ids, entry_id, original_cache_descriptor};

    /// Ids computed with the original's `deliverydb_cache.model` classes.
    #[test]
    fn body_descriptors_get_the_originals_ids() {
        let descriptor = original_cache_descriptor(&serde_json::json!({
            "type": "component-descriptor", "encoding_format": "json",
            "component_name": "acme.org/app", "component_version": "1.0.0",
            "ocm_repository": {"baseUrl": "ghcr.io/acme/", "subPath": "/ocm", "type": "OCIRegistry"},
        }))
        .unwrap();
        assert_eq!(
            descriptor.id,
            entry_id("component-descriptor|json|acme.org/app|1.0.0|ghcr.io/acme/ocm")
        );
        assert_eq!(
            descriptor.component,
            Some(("acme.org/app".into(), "1.0.0".into()))
        );
        let route = original_cache_descriptor(&serde_json::json!({
            "type": "http-route", "encoding_format": "json", "route": "/ocm/component",
        }))
        .unwrap();
        assert_eq!(
            route.id,
            entry_id("http-route|json|/ocm/component|None|None")
        );
        for bad in [
            serde_json::json!({"type": "redis", "encoding_format": "json"}),
            serde_json::json!({"type": "python-function", "encoding_format": "json"}),
            serde_json::json!({"type": "component-descriptor", "encoding_format": "json",
                "component_name": "a", "component_version": "1", "ocm_repository": {}}),
        ] {
            assert!(original_cache_descriptor(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_match_the_originals_cache_ids() {
        // computed with the original's deliverydb_cache.model.CachedPythonFunction and
        // deliverydb_cache.util.normalise_and_serialise_object
        assert_eq!(
            compliance_summary_cache_ids(
                Some("acme.org/shop/checkout"),
                Some("1.3.0"),
                "finding/vulnerability",
                "bdba"
            ),
            ["060795bea8cc4e6bb6cf0a227bc916e5"]
        );
        // a scan info makes every data type of its datasource stale
        let scan = compliance_summary_cache_ids(
            Some("acme.org/shop/checkout"),
            Some("1.3.0"),
            "meta/artefact_scan_info",
            "bdba",
        );
        assert_eq!(scan.len(), 3);
        assert!(scan.contains(&"6ce7fade7e9a5c090cef7cb7156992dc".to_string()));
        assert!(scan.contains(&"060795bea8cc4e6bb6cf0a227bc916e5".to_string()));
    }

    #[test]
    fn rows_the_original_cannot_key_mark_nothing() {
        assert!(
            compliance_summary_cache_ids(None, Some("1"), "finding/vulnerability", "bdba")
                .is_empty()
        );
        assert!(
            compliance_summary_cache_ids(Some("a"), None, "finding/vulnerability", "bdba")
                .is_empty()
        );
        assert!(compliance_summary_cache_ids(
            Some("a|-b"),
            Some("1"),
            "finding/vulnerability",
            "bdba"
        )
        .is_empty());
        assert!(
            compliance_summary_cache_ids(Some("a"), Some("1"), "finding/custom", "x").is_empty()
        );
        assert!(compliance_summary_cache_ids(
            Some("a"),
            Some("1"),
            "meta/artefact_scan_info",
            "unknown"
        )
        .is_empty());
    }
}
