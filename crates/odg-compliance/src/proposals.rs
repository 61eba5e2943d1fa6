//! `GET /rescore`'s answer: per finding of one artefact its rescoring proposal, in the original's
//! shape (`RescoringProposal`): the severity now (after the deciding rescoring), the rescorings
//! that apply, the due date and the sprint it falls into, and for the package-based types the
//! finding grouped across package versions with its filesystem paths and pending scanner
//! write-backs. Pure: rows in, proposals out (the route reads the rows).
//!
//! An unrescored vulnerability gets the severity its finding type's CVE rescoring rule set
//! proposes for the artefact's CVE categorisation (see [`crate::cve_rescoring`]), with the
//! matching rules' names, as the original proposes it.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use odg_delivery_db::{sort_millis, StoredMetadata};
use serde_json::{json, Map, Value};

use crate::config::{
    parse_processing_time, FindingConfig, FindingConfigs, IP, LICENSE, VULNERABILITY,
};
use crate::{rescoring, ProcessingTime};

pub const STRUCTURE_INFO: &str = "structure_info";
pub const SCANNER_WRITEBACK: &str = "meta/scanner_writeback";
pub const RESCORING: &str = "rescorings";
/// The matching rule of a proposal that keeps the finding's own severity.
pub const ORIGINAL_SEVERITY: &str = "original-severity";

/// A sprint as findings' due dates are assigned to it: its name and the date findings are due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SprintDue {
    pub name: String,
    pub due_date: NaiveDate,
}

/// The sprint of a due date: the first (by due date) that ends on or after it, moved by
/// `offset` sprints and kept within the calendar; the last one when all end before it.
pub fn sprint_for(due: NaiveDate, sprints: &[SprintDue], offset: i64) -> Option<&SprintDue> {
    let mut sorted: Vec<&SprintDue> = sprints.iter().collect();
    sorted.sort_by_key(|sprint| sprint.due_date);
    let last = sorted.len().checked_sub(1)?;
    let index = match sorted.iter().position(|sprint| sprint.due_date >= due) {
        Some(index) => (index as i64 + offset).clamp(0, last as i64) as usize,
        None => last,
    };
    sorted.get(index).copied()
}

fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}

fn date_of(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// `date + timedelta(seconds=n)` as Python computes it for a date: whole days only.
fn plus_seconds(date: NaiveDate, seconds: u64) -> Option<NaiveDate> {
    date.checked_add_days(Days::new(seconds / 86_400))
}

fn plus_processing_time(date: NaiveDate, time: &str) -> Option<NaiveDate> {
    match parse_processing_time(time)? {
        ProcessingTime::Seconds(seconds) => plus_seconds(date, seconds),
        ProcessingTime::Unlimited | ProcessingTime::Input => None,
    }
}

fn discovery_date(finding: &StoredMetadata) -> Option<NaiveDate> {
    let metadata = &finding.metadata;
    metadata
        .discovery_date
        .as_deref()
        .or(metadata.meta.creation_date.as_deref())
        .and_then(date_of)
}

/// The original's `effective_due_date`: a rescoring's explicit due date, else its allowed
/// processing time, else the categorisation's; without a rescoring the finding's own allowed
/// processing time, else the categorisation's. `None` means no due date (resolved).
fn due_date(
    finding: &StoredMetadata,
    rescoring: Option<&StoredMetadata>,
    config: &FindingConfig,
    severity: &str,
) -> Option<NaiveDate> {
    let discovered = discovery_date(finding)?;
    let own_time = match rescoring {
        Some(rescoring) => {
            let data = &rescoring.metadata.data;
            if let Some(due) = text(data, "due_date").and_then(date_of) {
                return Some(due);
            }
            text(data, "allowed_processing_time")
        }
        None => finding.metadata.allowed_processing_time.as_deref(),
    };
    if let Some(time) = own_time.filter(|time| !time.is_empty()) {
        return plus_processing_time(discovered, time);
    }
    match config.categorisation(severity)?.allowed_processing_time {
        ProcessingTime::Seconds(0) | ProcessingTime::Unlimited | ProcessingTime::Input => None,
        ProcessingTime::Seconds(seconds) => plus_seconds(discovered, seconds),
    }
}

/// The original's `str(CVSSV3)` of the `cvss` dictionary (a vector string is kept as it is);
/// `null` when a metric is missing (the original cannot read such a finding at all).
fn cvss_vector(cvss: Option<&Value>) -> Value {
    const METRICS: [(&str, &str); 8] = [
        ("AV", "access_vector"),
        ("AC", "attack_complexity"),
        ("PR", "privileges_required"),
        ("UI", "user_interaction"),
        ("S", "scope"),
        ("C", "confidentiality"),
        ("I", "integrity"),
        ("A", "availability"),
    ];
    match cvss {
        Some(Value::Object(parts)) => METRICS
            .iter()
            .map(|(short, long)| {
                let value = parts.get(*long)?.as_str()?;
                Some(format!("{short}:{value}"))
            })
            .collect::<Option<Vec<String>>>()
            .map_or(Value::Null, |parts| Value::String(parts.join("/"))),
        Some(Value::String(vector)) => Value::String(vector.clone()),
        _ => Value::Null,
    }
}

fn same_artefact(a: &StoredMetadata, b: &StoredMetadata) -> bool {
    let (a, b) = (&a.metadata.artefact, &b.metadata.artefact);
    a.component_name == b.component_name
        && a.component_version == b.component_version
        && a.artefact_kind == b.artefact_kind
        && a.artefact.clone().unwrap_or_default() == b.artefact.clone().unwrap_or_default()
}

fn package_versions(group: &[&StoredMetadata]) -> BTreeSet<String> {
    group
        .iter()
        .filter_map(|row| text(&row.metadata.data, "package_version"))
        .filter(|version| !version.is_empty())
        .map(str::to_string)
        .collect()
}

/// The structure infos' filesystem paths of the package versions with findings (of the
/// version-less package when no version was detected).
fn filesystem_paths(
    finding: &StoredMetadata,
    structure_infos: &[&StoredMetadata],
    versions: &BTreeSet<String>,
) -> Vec<Value> {
    let package = text(&finding.metadata.data, "package_name");
    structure_infos
        .iter()
        .filter(|info| same_artefact(info, finding))
        .filter(|info| text(&info.metadata.data, "package_name") == package)
        .filter(|info| match text(&info.metadata.data, "package_version") {
            Some(version) => versions.contains(version),
            None => versions.is_empty(),
        })
        .flat_map(|info| {
            info.metadata
                .data
                .get("filesystem_paths")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Licence and package-version write-backs about the package (any of its versions, or none),
/// written since the finding was last updated.
fn pending_writebacks(
    finding: &StoredMetadata,
    writebacks: &[&StoredMetadata],
    versions: &BTreeSet<String>,
) -> Vec<Value> {
    let package = text(&finding.metadata.data, "package_name");
    let since = finding
        .metadata
        .meta
        .last_update
        .as_deref()
        .and_then(sort_millis);
    writebacks
        .iter()
        .filter(|writeback| {
            let data = &writeback.metadata.data;
            let version_field = match text(data, "sub_type") {
                Some("license") => "package_version",
                Some("package-version") => "package_version_from",
                _ => return false,
            };
            let version_ok = match text(data, version_field).filter(|v| !v.is_empty()) {
                Some(version) => versions.contains(version),
                None => true,
            };
            let created = writeback
                .metadata
                .meta
                .creation_date
                .as_deref()
                .and_then(sort_millis);
            version_ok
                && text(data, "package_name") == package
                && match (since, created) {
                    (Some(since), Some(created)) => created >= since,
                    _ => true,
                }
        })
        .map(|writeback| writeback.metadata.to_json())
        .collect()
}

fn unique(values: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut seen = Vec::new();
    for value in values {
        if !value.is_null() && !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

/// The proposals for the rows about one artefact (`rows` as `DeliveryDb::artefact_rows` reads
/// them: findings, structure infos, rescorings and write-backs). Findings of types without a
/// configuration are skipped; `types`, when not empty, keeps only those types.
pub fn proposals(
    rows: &[StoredMetadata],
    configs: &FindingConfigs,
    types: &[String],
    sprints: &[SprintDue],
    cve_categorisation: Option<&Value>,
) -> Vec<Value> {
    let of_type = |wanted: &str| -> Vec<&StoredMetadata> {
        rows.iter()
            .filter(|row| row.metadata.meta.r#type == wanted)
            .collect()
    };
    let structure_infos = of_type(STRUCTURE_INFO);
    let writebacks = of_type(SCANNER_WRITEBACK);
    let rescorings: Vec<StoredMetadata> = of_type(RESCORING).into_iter().cloned().collect();
    let mut findings: Vec<(&StoredMetadata, &FindingConfig)> = rows
        .iter()
        .filter(|row| types.is_empty() || types.contains(&row.metadata.meta.r#type))
        .filter_map(|row| Some((row, configs.get(&row.metadata.meta.r#type)?)))
        .collect();
    findings.sort_by(|(a, _), (b, _)| {
        (&a.metadata.meta.r#type, &a.id).cmp(&(&b.metadata.meta.r#type, &b.id))
    });

    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut answer = Vec::new();
    for (finding, config) in &findings {
        if seen.contains(finding.id.as_str()) {
            continue;
        }
        let finding_type = config.r#type.as_str();
        let applicable = rescoring::for_finding(finding, finding_type, &rescorings);
        let data = &finding.metadata.data;
        let severity = text(data, "severity").unwrap_or_default();
        let (current_severity, matching_rules) = match applicable.first() {
            Some(deciding) => (
                text(&deciding.metadata.data, "severity").unwrap_or(severity),
                deciding
                    .metadata
                    .data
                    .get("matching_rules")
                    .cloned()
                    .unwrap_or_else(|| json!([])),
            ),
            None => (severity, json!([ORIGINAL_SEVERITY])),
        };
        let due = due_date(
            finding,
            applicable.first().copied(),
            config,
            current_severity,
        );
        // the due date follows the categorisation now; the proposal is what the rules suggest
        let (proposed_severity, matching_rules) = match (
            &config.cve_rescoring,
            cve_categorisation,
            applicable.is_empty(),
        ) {
            (Some(rule_set), Some(categorisation), true) if finding_type == VULNERABILITY => {
                let cvss = data.get("cvss").cloned().unwrap_or(Value::Null);
                let matched = rule_set.matching(categorisation, &cvss);
                let names: Vec<Option<String>> =
                    matched.iter().map(|rule| rule.name.clone()).collect();
                (
                    crate::cve_rescoring::rescore(current_severity, &matched),
                    json!(names),
                )
            }
            _ => (current_severity.to_string(), matching_rules),
        };
        let sprint = due
            .and_then(|due| sprint_for(due, sprints, config.sprint_assignment_offset))
            .map(|sprint| json!({"name": sprint.name, "end_date": sprint.due_date.to_string()}));
        let applicable_json: Vec<Value> = applicable
            .iter()
            .map(|rescoring| {
                let mut value = rescoring.metadata.to_json();
                if let Some(object) = value.as_object_mut() {
                    object.insert("id".into(), Value::String(rescoring.id.clone()));
                }
                value
            })
            .collect();

        // the package-based types are grouped across package versions
        let grouped_with = |same: &dyn Fn(&Value) -> bool| -> Vec<&StoredMetadata> {
            findings
                .iter()
                .map(|(row, _)| *row)
                .filter(|row| {
                    !seen.contains(row.id.as_str())
                        && row.metadata.meta.r#type == finding_type
                        && same_artefact(row, finding)
                        && text(&row.metadata.data, "package_name") == text(data, "package_name")
                        && same(&row.metadata.data)
                })
                .collect()
        };
        let (finding_json, group, writebacks_json) = match finding_type {
            VULNERABILITY | LICENSE | IP => {
                let group = match finding_type {
                    VULNERABILITY => grouped_with(&|other| other.get("cve") == data.get("cve")),
                    LICENSE => grouped_with(&|other| {
                        other.pointer("/license/name") == data.pointer("/license/name")
                    }),
                    _ => {
                        let labels = |value: &Value| {
                            let mut labels: Vec<String> = value
                                .get("labels")
                                .and_then(Value::as_array)
                                .map(|labels| {
                                    labels
                                        .iter()
                                        .filter_map(Value::as_str)
                                        .map(str::to_string)
                                        .collect()
                                })
                                .unwrap_or_default();
                            labels.sort();
                            labels
                        };
                        grouped_with(&|other| labels(other) == labels(data))
                    }
                };
                let versions = package_versions(&group);
                let mut object = Map::new();
                object.insert(
                    "package_name".into(),
                    data.get("package_name").cloned().unwrap_or(Value::Null),
                );
                object.insert("package_versions".into(), json!(versions));
                object.insert("severity".into(), json!(severity));
                match finding_type {
                    VULNERABILITY => {
                        let cve = data.get("cve").cloned().unwrap_or(Value::Null);
                        let url = cve
                            .as_str()
                            .map(|cve| format!("https://nvd.nist.gov/vuln/detail/{cve}"));
                        object.insert("cve".into(), cve);
                        object.insert(
                            "cvss_v3_score".into(),
                            data.get("cvss_v3_score").cloned().unwrap_or(Value::Null),
                        );
                        object.insert("cvss".into(), cvss_vector(data.get("cvss")));
                        object.insert(
                            "summary".into(),
                            data.get("summary").cloned().unwrap_or(Value::Null),
                        );
                        object.insert("urls".into(), json!(url.into_iter().collect::<Vec<_>>()));
                        object.insert(
                            "filesystem_paths".into(),
                            json!(filesystem_paths(finding, &structure_infos, &versions)),
                        );
                    }
                    LICENSE => {
                        object.insert(
                            "license".into(),
                            data.get("license").cloned().unwrap_or(Value::Null),
                        );
                        object.insert(
                            "filesystem_paths".into(),
                            json!(filesystem_paths(finding, &structure_infos, &versions)),
                        );
                    }
                    _ => {
                        object.insert(
                            "licenses".into(),
                            json!(unique(group.iter().map(|row| {
                                row.metadata
                                    .data
                                    .get("license")
                                    .cloned()
                                    .unwrap_or(Value::Null)
                            }))),
                        );
                        object.insert(
                            "policy_violations".into(),
                            json!(unique(group.iter().map(|row| {
                                row.metadata
                                    .data
                                    .get("policy_violation")
                                    .cloned()
                                    .unwrap_or(Value::Null)
                            }))),
                        );
                        object.insert(
                            "labels".into(),
                            data.get("labels").cloned().unwrap_or_else(|| json!([])),
                        );
                    }
                }
                let pending = pending_writebacks(finding, &writebacks, &versions);
                (Value::Object(object), group, json!(pending))
            }
            _ => (data.clone(), Vec::new(), Value::Null),
        };
        seen.extend(group.iter().map(|row| row.id.as_str()));
        seen.insert(finding.id.as_str());
        answer.push(json!({
            "finding": finding_json,
            "finding_type": finding_type,
            "severity": proposed_severity,
            "matching_rules": matching_rules,
            "applicable_rescorings": applicable_json,
            "discovery_date": discovery_date(finding).map(|date| date.to_string()),
            "due_date": due.map(|date| date.to_string()),
            "sprint": sprint,
            "pending_scanner_writebacks": writebacks_json,
        }));
    }
    answer
}

#[cfg(test)]
mod tests {
    use odg_delivery_db::ArtefactMetadata;

    use super::*;

    fn sprint(name: &str, due: &str) -> SprintDue {
        SprintDue {
            name: name.into(),
            due_date: date_of(due).unwrap(),
        }
    }

    /// The original's `find_sprint_for_ref_date`: the first sprint ending on or after the date,
    /// moved by the offset within the calendar; the last when every sprint ends before it.
    #[test]
    fn sprints_follow_the_originals_assignment() {
        let sprints = [
            sprint("s2", "2026-02-14"),
            sprint("s1", "2026-01-31"),
            sprint("s3", "2026-02-28"),
        ];
        let due = |text: &str, offset: i64| {
            sprint_for(date_of(text).unwrap(), &sprints, offset).map(|sprint| sprint.name.clone())
        };
        assert_eq!(due("2026-01-31", 0).as_deref(), Some("s1"));
        assert_eq!(due("2026-02-01", 0).as_deref(), Some("s2"));
        assert_eq!(due("2026-02-01", 1).as_deref(), Some("s3"));
        assert_eq!(due("2026-02-01", 5).as_deref(), Some("s3"));
        assert_eq!(due("2026-02-01", -3).as_deref(), Some("s1"));
        assert_eq!(due("2027-01-01", 0).as_deref(), Some("s3"));
        assert_eq!(sprint_for(date_of("2026-01-01").unwrap(), &[], 0), None);
    }

    fn row(id: &str, r#type: &str, data: Value, extra: Value) -> StoredMetadata {
        let mut entry = json!({
            "artefact": {
                "component_name": "acme.org/app", "component_version": "1.0.0",
                "artefact_kind": "resource",
                "artefact": {"artefact_name": "image", "artefact_version": "1.0.0",
                             "artefact_type": "ociImage", "artefact_extra_id": {}},
            },
            "meta": {"type": r#type, "datasource": "bdba",
                     "creation_date": "2026-01-10T00:00:00", "last_update": "2026-01-10T00:00:00"},
            "data": data,
            "discovery_date": "2026-01-10",
        });
        if let (Some(entry), Some(extra)) = (entry.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                entry.insert(key.clone(), value.clone());
            }
        }
        let metadata = ArtefactMetadata::from_json(&entry).unwrap();
        StoredMetadata {
            id: id.into(),
            referenced_type: text(&metadata.data, "referenced_type").map(str::to_string),
            metadata,
            data_key_hash: None,
            last_update_ms: None,
        }
    }

    fn vulnerability(id: &str, version: &str, cve: &str, severity: &str) -> StoredMetadata {
        row(
            id,
            VULNERABILITY,
            json!({"package_name": "openssl", "package_version": version, "cve": cve,
                   "severity": severity, "cvss_v3_score": 7.5, "summary": "s",
                   "cvss": {"access_vector": "N", "attack_complexity": "L",
                            "privileges_required": "N", "user_interaction": "N", "scope": "U",
                            "confidentiality": "H", "integrity": "N", "availability": "N"}}),
            json!({}),
        )
    }

    #[test]
    fn vulnerabilities_are_grouped_across_package_versions_with_their_paths() {
        let rows = vec![
            vulnerability("a", "3.0.1", "CVE-1", "HIGH"),
            vulnerability("b", "3.0.2", "CVE-1", "HIGH"),
            vulnerability("c", "3.0.2", "CVE-2", "LOW"),
            row(
                "s",
                STRUCTURE_INFO,
                json!({"package_name": "openssl", "package_version": "3.0.2",
                "filesystem_paths": [{"path": [{"path": "/usr/lib/libssl.so", "digest": "d"}]}]}),
                json!({}),
            ),
        ];
        let proposals = proposals(
            &rows,
            &FindingConfigs::defaults(),
            &[],
            &[sprint("s1", "2026-02-28")],
            None,
        );
        assert_eq!(proposals.len(), 2, "{proposals:#?}");
        let first = &proposals[0];
        assert_eq!(
            first["finding"]["package_versions"],
            json!(["3.0.1", "3.0.2"])
        );
        assert_eq!(
            first["finding"]["cvss"],
            "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
        );
        assert_eq!(
            first["finding"]["urls"],
            json!(["https://nvd.nist.gov/vuln/detail/CVE-1"])
        );
        assert_eq!(
            first["finding"]["filesystem_paths"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(first["severity"], "HIGH");
        assert_eq!(first["matching_rules"], json!(["original-severity"]));
        // HIGH: 30 days after discovery
        assert_eq!(first["due_date"], "2026-02-09");
        assert_eq!(
            first["sprint"],
            json!({"name": "s1", "end_date": "2026-02-28"})
        );
        assert_eq!(first["applicable_rescorings"], json!([]));
        assert_eq!(proposals[1]["finding"]["cve"], "CVE-2");
        assert_eq!(proposals[1]["due_date"], "2026-05-10");
    }

    #[test]
    fn a_rescoring_decides_severity_and_due_date() {
        let rescoring = row(
            "r",
            RESCORING,
            json!({"finding": {"package_name": "openssl", "cve": "CVE-1"},
                   "referenced_type": VULNERABILITY, "severity": "LOW",
                   "user": {"username": "alice", "github_hostname": "github.com", "type": "github-user"},
                   "matching_rules": ["custom-rescoring"], "comment": "not reachable",
                   "allowed_processing_time": null, "due_date": null}),
            json!({}),
        );
        let rows = vec![vulnerability("a", "3.0.1", "CVE-1", "HIGH"), rescoring];
        let proposals = proposals(
            &rows,
            &FindingConfigs::defaults(),
            &[VULNERABILITY.to_string()],
            &[],
            None,
        );
        assert_eq!(proposals.len(), 1);
        let proposal = &proposals[0];
        assert_eq!(proposal["severity"], "LOW");
        assert_eq!(proposal["finding"]["severity"], "HIGH");
        assert_eq!(proposal["matching_rules"], json!(["custom-rescoring"]));
        assert_eq!(proposal["applicable_rescorings"][0]["id"], "r");
        // LOW: 120 days
        assert_eq!(proposal["due_date"], "2026-05-10");
        assert_eq!(proposal["sprint"], Value::Null);
    }

    /// The original's automatic proposal: an unrescored vulnerability on an artefact
    /// categorised as protected, with authentication enforced, is reduced once per matching
    /// rule (here network exposure and privileges); a rescored one keeps its rescoring.
    #[test]
    fn the_cve_rule_set_proposes_for_unrescored_vulnerabilities() {
        let mut finding = vulnerability("a", "3.0.1", "CVE-1", "CRITICAL");
        finding.metadata.data["cvss"] = json!({"access_vector": "N", "attack_complexity": "L",
            "privileges_required": "L", "user_interaction": "N", "scope": "U",
            "confidentiality": "H", "integrity": "H", "availability": "H"});
        let categorisation = json!({"network_exposure": "protected", "authentication_enforced": true,
            "user_interaction": "end-user", "confidentiality_requirement": "high",
            "integrity_requirement": "high", "availability_requirement": "high", "comment": null});
        let configs = FindingConfigs::defaults();
        let proposed = proposals(
            std::slice::from_ref(&finding),
            &configs,
            &[],
            &[],
            Some(&categorisation),
        );
        assert_eq!(proposed[0]["severity"], "MEDIUM");
        assert_eq!(
            proposed[0]["matching_rules"],
            json!(["network-exposure-protected", "authentication-enforced"])
        );
        // CRITICAL's 30 days, not the proposal's: nothing is rescored yet
        assert_eq!(proposed[0]["due_date"], "2026-02-09");
        let without = proposals(std::slice::from_ref(&finding), &configs, &[], &[], None);
        assert_eq!(without[0]["severity"], "CRITICAL");
    }

    #[test]
    fn other_types_keep_their_data_and_unconfigured_types_are_skipped() {
        let rows = vec![
            row(
                "m",
                "finding/malware",
                json!({"severity": "BLOCKER", "finding": {
                "content_digest": "sha256:1", "filename": "/x", "malware": "eicar"}}),
                json!({}),
            ),
            row(
                "u",
                "finding/unknown",
                json!({"severity": "HIGH"}),
                json!({}),
            ),
        ];
        let proposals = proposals(&rows, &FindingConfigs::defaults(), &[], &[], None);
        assert_eq!(proposals.len(), 1);
        assert_eq!(proposals[0]["finding"]["finding"]["malware"], "eicar");
        // BLOCKER: allowed processing time 0, due at once -> no due date in the original's sense
        assert_eq!(proposals[0]["pending_scanner_writebacks"], Value::Null);
    }
}
