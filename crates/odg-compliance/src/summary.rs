//! The compliance summary of one component version for one finding type: per artefact the worst
//! categorisation of its findings (after rescorings) and a scan status, and the component's
//! entry, the worst of its artefacts' (see `artefact-metadata.md` §4). Pure: rows in, summary out.

use odg_delivery_db::{ComponentArtefactId, LocalArtefactId, StoredMetadata};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{FindingConfig, SCAN_INFO};
use crate::{rescoring, ComplianceError};

pub const CLEAN: &str = "CLEAN";
pub const UNKNOWN: &str = "UNKNOWN";

/// One line of the summary, in the original's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryEntry {
    pub r#type: String,
    pub source: String,
    pub categorisation: String,
    pub value: i64,
    #[serde(rename = "scanStatus")]
    pub scan_status: String,
}

/// The summary of one component version for one finding type: what the cache holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeSummary {
    /// Each artefact the type's filter accepts (resources, then sources) with its entry.
    pub artefacts: Vec<(Value, SummaryEntry)>,
    /// The highest-valued artefact entry; `None` when no artefact is left.
    pub component: Option<SummaryEntry>,
}

fn same_local(a: &Option<LocalArtefactId>, b: &Option<LocalArtefactId>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.artefact_name == b.artefact_name
                && a.artefact_version == b.artefact_version
                && a.artefact_type == b.artefact_type
                && a.artefact_extra_id == b.artefact_extra_id
        }
        (None, None) => true,
        _ => false,
    }
}

/// Whether a row is about `artefact` (same kind and local artefact id).
pub fn is_about(row: &StoredMetadata, artefact: &ComponentArtefactId) -> bool {
    let id = &row.metadata.artefact;
    id.artefact_kind == artefact.artefact_kind && same_local(&id.artefact, &artefact.artefact)
}

/// Keeps the rows about this version: its own, and version-less ones about one of its artefacts.
pub fn rows_of_version(
    rows: Vec<StoredMetadata>,
    version: &str,
    artefacts: &[ComponentArtefactId],
) -> Vec<StoredMetadata> {
    rows.into_iter()
        .filter(|row| match &row.metadata.artefact.component_version {
            Some(row_version) => row_version == version,
            None => artefacts
                .iter()
                .any(|artefact| same_local(&row.metadata.artefact.artefact, &artefact.artefact)),
        })
        .collect()
}

/// The severity of `finding`: the deciding applicable rescoring's (see [`crate::rescoring`]),
/// else its own `data.severity`.
fn severity_of<'a>(
    finding: &'a StoredMetadata,
    rescorings: &'a [StoredMetadata],
    finding_type: &str,
) -> Option<&'a str> {
    rescoring::for_finding(finding, finding_type, rescorings)
        .first()
        .and_then(|rescoring| rescoring.metadata.data.get("severity"))
        .or_else(|| finding.metadata.data.get("severity"))
        .and_then(Value::as_str)
}

/// Steps 4 and 5: `rows` are the version's scan infos and findings from the type's source,
/// `rescorings` those that may apply, `artefacts` the version's resources then sources.
pub fn summarise(
    config: &FindingConfig,
    artefacts: &[ComponentArtefactId],
    rows: &[StoredMetadata],
    rescorings: &[StoredMetadata],
) -> Result<TypeSummary, ComplianceError> {
    let entry = |categorisation: &str, value: i64, scan_status: &str| SummaryEntry {
        r#type: config.r#type.clone(),
        source: config.datasource.clone(),
        categorisation: categorisation.to_string(),
        value,
        scan_status: scan_status.to_string(),
    };
    let scan_infos: Vec<&StoredMetadata> = rows
        .iter()
        .filter(|row| row.metadata.meta.r#type == SCAN_INFO)
        .collect();
    let findings: Vec<&StoredMetadata> = if scan_infos.is_empty() {
        Vec::new()
    } else {
        rows.iter()
            .filter(|row| row.metadata.meta.r#type == config.r#type)
            .collect()
    };
    let mut summary = TypeSummary::default();
    for artefact in artefacts
        .iter()
        .filter(|artefact| config.filter.accepts(artefact))
    {
        let scanned = scan_infos.iter().any(|row| is_about(row, artefact));
        let artefact_entry = if !scanned {
            entry(UNKNOWN, -1, "no_data")
        } else {
            let mut worst: Option<(&str, i64)> = None;
            for finding in findings.iter().filter(|row| is_about(row, artefact)) {
                let severity =
                    severity_of(finding, rescorings, &config.r#type).ok_or_else(|| {
                        ComplianceError::Data(format!(
                            "finding {} of type {} has no severity",
                            finding.id, config.r#type
                        ))
                    })?;
                let categorisation = config.categorisation(severity).ok_or_else(|| {
                    ComplianceError::Data(format!(
                        "finding {} has severity {severity:?}, which the {} configuration does not define",
                        finding.id, config.r#type
                    ))
                })?;
                if worst.is_none_or(|(_, value)| categorisation.value > value) {
                    worst = Some((categorisation.id.as_str(), categorisation.value));
                }
            }
            match worst {
                None => entry(CLEAN, 0, "ok"),
                Some((_, 0)) => entry(CLEAN, 0, "ok"),
                Some((id, value)) => entry(id, value, "ok"),
            }
        };
        if summary
            .component
            .as_ref()
            .is_none_or(|worst| artefact_entry.value > worst.value)
        {
            summary.component = Some(artefact_entry.clone());
        }
        summary.artefacts.push((artefact.to_json(), artefact_entry));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use odg_delivery_db::ArtefactMetadata;
    use serde_json::json;

    use super::*;
    use crate::config::{FindingConfigs, VULNERABILITY};

    fn artefact(name: &str) -> ComponentArtefactId {
        ComponentArtefactId::from_json(
            &json!({
                "component_name": "acme.org/app",
                "component_version": "1.0.0",
                "artefact_kind": "resource",
                "artefact": {
                    "artefact_name": name, "artefact_version": "1.0.0",
                    "artefact_type": "ociImage", "artefact_extra_id": {},
                },
            }),
            true,
        )
        .unwrap()
    }

    fn row(
        id: &str,
        about: &ComponentArtefactId,
        r#type: &str,
        data: Value,
        updated: i64,
    ) -> StoredMetadata {
        StoredMetadata {
            id: id.into(),
            metadata: ArtefactMetadata::from_json(&json!({
                "artefact": about.to_json(),
                "meta": {"type": r#type, "datasource": "bdba"},
                "data": data,
            }))
            .unwrap(),
            data_key_hash: None,
            last_update_ms: Some(updated),
            referenced_type: None,
        }
    }

    fn scanned(about: &ComponentArtefactId) -> StoredMetadata {
        row("scan", about, SCAN_INFO, json!({}), 1)
    }

    fn vulnerability(about: &ComponentArtefactId, cve: &str, severity: &str) -> StoredMetadata {
        row(
            cve,
            about,
            VULNERABILITY,
            json!({"package_name": "openssl", "package_version": "1.0", "cve": cve, "cvss_v3_score": 5.0, "severity": severity}),
            1,
        )
    }

    fn rescoring(
        about: &ComponentArtefactId,
        cve: &str,
        severity: &str,
        updated: i64,
    ) -> StoredMetadata {
        let mut rescoring = row(
            &format!("rescoring-{severity}"),
            about,
            "rescorings",
            json!({"finding": {"package_name": "openssl", "cve": cve}, "referenced_type": VULNERABILITY, "severity": severity, "matching_rules": ["original-severity"]}),
            updated,
        );
        rescoring.referenced_type = Some(VULNERABILITY.into());
        rescoring
    }

    fn summarise_vulnerabilities(
        artefacts: &[ComponentArtefactId],
        rows: &[StoredMetadata],
        rescorings: &[StoredMetadata],
    ) -> Result<TypeSummary, ComplianceError> {
        let configs = FindingConfigs::defaults();
        summarise(
            configs.get(VULNERABILITY).unwrap(),
            artefacts,
            rows,
            rescorings,
        )
    }

    fn entry_of(summary: &TypeSummary, index: usize) -> (&str, i64, &str) {
        let entry = &summary.artefacts[index].1;
        (
            entry.categorisation.as_str(),
            entry.value,
            entry.scan_status.as_str(),
        )
    }

    #[test]
    fn an_artefact_without_a_scan_is_unknown_and_one_without_findings_clean() {
        let (image, chart) = (artefact("image"), artefact("chart"));
        let summary =
            summarise_vulnerabilities(&[image.clone(), chart.clone()], &[scanned(&chart)], &[])
                .unwrap();
        assert_eq!(entry_of(&summary, 0), (UNKNOWN, -1, "no_data"));
        assert_eq!(entry_of(&summary, 1), (CLEAN, 0, "ok"));
        let component = summary.component.unwrap();
        assert_eq!(
            (component.categorisation.as_str(), component.value),
            (CLEAN, 0)
        );
    }

    #[test]
    fn findings_without_a_scan_info_do_not_count() {
        let image = artefact("image");
        let summary = summarise_vulnerabilities(
            std::slice::from_ref(&image),
            &[vulnerability(&image, "CVE-1", "CRITICAL")],
            &[],
        )
        .unwrap();
        assert_eq!(entry_of(&summary, 0), (UNKNOWN, -1, "no_data"));
    }

    #[test]
    fn the_worst_finding_wins_per_artefact_and_the_worst_artefact_for_the_component() {
        let (image, chart) = (artefact("image"), artefact("chart"));
        let rows = [
            scanned(&image),
            scanned(&chart),
            vulnerability(&image, "CVE-1", "LOW"),
            vulnerability(&image, "CVE-2", "HIGH"),
            vulnerability(&chart, "CVE-3", "MEDIUM"),
        ];
        let summary =
            summarise_vulnerabilities(&[image.clone(), chart.clone()], &rows, &[]).unwrap();
        assert_eq!(entry_of(&summary, 0), ("HIGH", 4, "ok"));
        assert_eq!(entry_of(&summary, 1), ("MEDIUM", 2, "ok"));
        assert_eq!(summary.component.unwrap().categorisation, "HIGH");
    }

    #[test]
    fn the_newest_applicable_rescoring_decides_and_others_findings_are_untouched() {
        let image = artefact("image");
        let rows = [
            scanned(&image),
            vulnerability(&image, "CVE-1", "CRITICAL"),
            vulnerability(&image, "CVE-2", "LOW"),
        ];
        let rescorings = [
            rescoring(&image, "CVE-1", "HIGH", 10),
            rescoring(&image, "CVE-1", "NONE", 20),
        ];
        let summary =
            summarise_vulnerabilities(std::slice::from_ref(&image), &rows, &rescorings).unwrap();
        // CVE-1 rescored to NONE (the newer one), CVE-2 stays LOW
        assert_eq!(entry_of(&summary, 0), ("LOW", 1, "ok"));
        // a rescoring of another CVE leaves CRITICAL in place
        let other = [rescoring(&image, "CVE-9", "NONE", 30)];
        let summary =
            summarise_vulnerabilities(std::slice::from_ref(&image), &rows, &other).unwrap();
        assert_eq!(entry_of(&summary, 0), ("CRITICAL", 8, "ok"));
    }

    #[test]
    fn a_severity_the_configuration_does_not_define_is_a_data_error() {
        let image = artefact("image");
        let rows = [
            scanned(&image),
            vulnerability(&image, "CVE-1", "APOCALYPTIC"),
        ];
        match summarise_vulnerabilities(std::slice::from_ref(&image), &rows, &[]) {
            Err(ComplianceError::Data(message)) => {
                assert!(message.contains("APOCALYPTIC"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
