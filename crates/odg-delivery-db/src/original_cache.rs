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

#[cfg(test)]
mod tests {
    use super::compliance_summary_cache_ids;

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
