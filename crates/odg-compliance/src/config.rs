//! Finding configurations: per finding type its categorisations (ids and values), its artefact
//! filter and its discovery-date reuse, read from a YAML file or the original's defaults.
//!
//! The file is a list of findings, or `{findings: [...], profiles: [...]}`:
//!
//! ```yaml
//! findings:
//!   - type: finding/vulnerability
//!     categorisations:
//!       - {id: NONE, display_name: None, value: 0, rescoring: manual}
//!       - {id: HIGH, display_name: High, value: 4, allowed_processing_time: 30, rescoring: manual,
//!          selector: {cve_score_range: {min: 7.0, max: 8.9}}}
//!     filter:
//!       - {semantics: exclude, component_name: 'acme\.org/experimental/.*'}
//!     reuse_discovery_date: {enabled: true, max_reuse_time: 90d}
//! profiles:
//!   - {name: security, finding_types: [finding/vulnerability, finding/malware]}
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use odg_delivery_db::{ArtefactKind, ComponentArtefactId, DiscoveryDateReuse};
use odg_ocm::FullMatchRegex;
use serde::Deserialize;
use serde_json::Value;

use crate::ComplianceError;

pub const VULNERABILITY: &str = "finding/vulnerability";
pub const LICENSE: &str = "finding/license";
pub const MALWARE: &str = "finding/malware";
pub const IP: &str = "finding/ip";
pub const SCAN_INFO: &str = "meta/artefact_scan_info";
pub const RESCORINGS: &str = "rescorings";

/// The datasource whose findings of `finding_type` count: vulnerability and license → `bdba`,
/// ip → `blackduck`, malware → `clamav`, every other type → the source of the same name.
pub fn datasource_of(finding_type: &str) -> String {
    match finding_type {
        VULNERABILITY | LICENSE => "bdba".into(),
        IP => "blackduck".into(),
        MALWARE => "clamav".into(),
        other => other.strip_prefix("finding/").unwrap_or(other).to_string(),
    }
}

/// One severity a finding can have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Categorisation {
    /// Written into findings' `severity`; `set-to-` is reserved.
    pub id: String,
    pub display_name: String,
    /// 0 = not relevant; higher = worse.
    pub value: i64,
    /// Seconds, `None` = unlimited, `Some(None)`-like "input" is kept as [`ProcessingTime::Input`].
    pub allowed_processing_time: ProcessingTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessingTime {
    Unlimited,
    /// Chosen by whoever rescores (`input`).
    Input,
    Seconds(u64),
}

/// Which artefacts a finding type applies to.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    rules: Vec<FilterRule>,
}

#[derive(Debug, Clone)]
struct FilterRule {
    include: bool,
    /// (field, full-match case-insensitive regex)
    matchers: Vec<(FilterField, FullMatchRegex)>,
}

#[derive(Debug, Clone, Copy)]
enum FilterField {
    ComponentName,
    ArtefactKind,
    ArtefactName,
    ArtefactType,
}

impl FindingFilter {
    /// If any include rule exists, the artefact must match one; a matching exclude rejects it.
    pub fn accepts(&self, artefact: &ComponentArtefactId) -> bool {
        let value = |field: FilterField| -> String {
            let local = artefact.artefact.as_ref();
            match field {
                FilterField::ComponentName => artefact.component_name.clone(),
                FilterField::ArtefactKind => {
                    artefact.artefact_kind.map(|kind| kind.as_str().to_string())
                }
                FilterField::ArtefactName => local.and_then(|local| local.artefact_name.clone()),
                FilterField::ArtefactType => local.and_then(|local| local.artefact_type.clone()),
            }
            .unwrap_or_default()
        };
        let matches = |rule: &FilterRule| {
            rule.matchers
                .iter()
                .all(|(field, regex)| regex.is_match(&value(*field)))
        };
        let mut includes = self.rules.iter().filter(|rule| rule.include).peekable();
        if includes.peek().is_some() && !includes.any(matches) {
            return false;
        }
        !self.rules.iter().filter(|rule| !rule.include).any(matches)
    }
}

/// The configuration of one finding type.
#[derive(Debug, Clone)]
pub struct FindingConfig {
    pub r#type: String,
    pub datasource: String,
    pub categorisations: Vec<Categorisation>,
    pub filter: FindingFilter,
    pub reuse_discovery_date: DiscoveryDateReuse,
    /// A stable digest of what changes summaries (categorisations, filter): part of the cache key.
    pub fingerprint: String,
    /// Moves a finding's sprint by this many sprints from the one its due date falls into.
    pub sprint_assignment_offset: i64,
    /// Vulnerabilities only: the CVE rescoring rule set `/rescore` proposes severities with.
    pub cve_rescoring: Option<crate::cve_rescoring::CveRuleSet>,
}

impl FindingConfig {
    pub fn categorisation(&self, id: &str) -> Option<&Categorisation> {
        self.categorisations
            .iter()
            .find(|categorisation| categorisation.id == id)
    }
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub finding_types: Vec<String>,
}

/// All finding configurations and profiles.
#[derive(Debug, Clone)]
pub struct FindingConfigs {
    pub findings: Vec<FindingConfig>,
    pub profiles: Vec<Profile>,
    /// Each finding's configuration as the original serialises it in `/features` (file order):
    /// see [`serialised_finding`].
    pub raw_findings: Vec<Value>,
}

impl FindingConfigs {
    /// The original's defaults: vulnerability (the `gardener` categorisations), malware and license.
    #[allow(
        clippy::expect_used,
        reason = "the built-in file, parsed by the tests; a broken build fails them, not a pod"
    )]
    pub fn defaults() -> FindingConfigs {
        FindingConfigs::from_yaml(DEFAULT_FINDINGS)
            .expect("the built-in finding configuration is valid")
    }

    pub fn from_file(path: &Path) -> Result<FindingConfigs, ComplianceError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ComplianceError::Config(format!("reading {}: {error}", path.display()))
        })?;
        FindingConfigs::from_yaml(&text)
            .map_err(|error| ComplianceError::Config(format!("{}: {error}", path.display())))
    }

    pub fn from_yaml(text: &str) -> Result<FindingConfigs, ComplianceError> {
        let file: FileLayout = serde_yaml_ng::from_str(text)
            .map_err(|error| ComplianceError::Config(error.to_string()))?;
        let (findings, profiles) = match file {
            FileLayout::List(findings) => (findings, Vec::new()),
            FileLayout::Document { findings, profiles } => (findings, profiles),
        };
        // The file parsed again as plain data: the layout above already accepted it.
        let raw: Value = serde_yaml_ng::from_str(text)
            .map_err(|error| ComplianceError::Config(error.to_string()))?;
        let raw_findings = match raw {
            Value::Array(items) => items,
            Value::Object(mut document) => match document.remove("findings") {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
        .into_iter()
        .map(serialised_finding)
        .collect();
        let mut seen = HashMap::new();
        let findings = findings
            .into_iter()
            .map(|finding| {
                let r#type = finding.r#type.clone();
                if seen.insert(r#type.clone(), ()).is_some() {
                    return Err(ComplianceError::Config(format!(
                        "finding type {type:?} is configured twice"
                    )));
                }
                finding
                    .resolve()
                    .map_err(|error| ComplianceError::Config(format!("finding {type:?}: {error}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let profiles = profiles
            .into_iter()
            .map(|profile| Profile {
                name: profile.name,
                finding_types: profile.finding_types,
            })
            .collect();
        Ok(FindingConfigs {
            findings,
            profiles,
            raw_findings,
        })
    }

    pub fn get(&self, finding_type: &str) -> Option<&FindingConfig> {
        self.findings
            .iter()
            .find(|finding| finding.r#type == finding_type)
    }

    /// The profile a `profile` parameter selects, by the delivery service's rule: no name (or an
    /// empty one) selects the first configured profile; a name selects the profile of that name,
    /// and an unknown name selects none (so nothing is filtered by profile).
    pub fn profile(&self, name: Option<&str>) -> Option<&Profile> {
        match name {
            None | Some("") => self.profiles.first(),
            Some(name) => self.profiles.iter().find(|profile| profile.name == name),
        }
    }

    /// The findings a summary covers: those of the profile [`FindingConfigs::profile`] selects,
    /// or all when it selects none.
    pub fn for_profile(&self, profile: Option<&str>) -> Vec<&FindingConfig> {
        match self.profile(profile) {
            Some(profile) => self
                .findings
                .iter()
                .filter(|finding| profile.finding_types.contains(&finding.r#type))
                .collect(),
            None => self.findings.iter().collect(),
        }
    }

    /// The discovery-date reuse of `finding_type` (the default for unconfigured types).
    pub fn reuse(&self, finding_type: &str) -> DiscoveryDateReuse {
        self.get(finding_type)
            .map(|finding| finding.reuse_discovery_date)
            .unwrap_or_default()
    }
}

/// The original's `findings_cfg.yaml` defaults for the three types every installation has.
const DEFAULT_FINDINGS: &str = r#"
findings:
  - type: finding/vulnerability
    categorisations:
      - {id: NONE, display_name: None, value: 0, rescoring: manual}
      - {id: postpone, display_name: Postpone, value: 1, allowed_processing_time: input, rescoring: manual}
      - {id: LOW, display_name: Low, value: 1, allowed_processing_time: 120, rescoring: [manual, automatic], selector: {cve_score_range: {min: 0.0, max: 3.9}}}
      - {id: MEDIUM, display_name: Medium, value: 2, allowed_processing_time: 90, rescoring: [manual, automatic], selector: {cve_score_range: {min: 4.0, max: 6.9}}}
      - {id: HIGH, display_name: High, value: 4, allowed_processing_time: 30, rescoring: manual, selector: {cve_score_range: {min: 7.0, max: 8.9}}}
      - {id: CRITICAL, display_name: Critical, value: 8, allowed_processing_time: 30, rescoring: manual, selector: {cve_score_range: {min: 9.0, max: 10.0}}}
    # the original's default rule set (`defaults.yaml`, `gardener`)
    rescoring_ruleset:
      name: vulnerability-rescoring-v1
      operations:
        reduce: {order: [CRITICAL, HIGH, MEDIUM, LOW, NONE], value: 1}
      rules:
        - category_value: network_exposure:public
          name: network-exposure-public
          rules:
            - {cve_values: ['AV:A'], operation: reduce}
            - {cve_values: ['AV:L', 'AV:P'], operation: set-to-NONE}
        - category_value: network_exposure:protected
          name: network-exposure-protected
          rules:
            - {cve_values: ['AV:N'], operation: reduce}
            - {cve_values: ['AV:A', 'AV:L', 'AV:P'], operation: set-to-NONE}
        - category_value: network_exposure:private
          name: network-exposure-private
          rules:
            - {cve_values: ['AV:N', 'AV:A', 'AV:L', 'AV:P'], operation: set-to-NONE}
        - category_value: authentication_enforced:true
          name: authentication-enforced
          rules:
            - {cve_values: ['PR:L', 'PR:H'], operation: reduce}
        - category_value: user_interaction:gardener-operator
          name: user-interaction-gardener-operator
          rules:
            - {cve_values: ['UI:R'], operation: reduce}
        - category_value: confidentiality_requirement:none
          name: confidentiality-requirement-none
          rules:
            - {cve_values: ['C:H', 'C:L'], operation: reduce}
        - category_value: integrity_requirement:none
          name: integrity-requirement-none
          rules:
            - {cve_values: ['I:H', 'I:L'], operation: reduce}
        - category_value: availability_requirement:none
          name: availability-requirement-none
          rules:
            - {cve_values: ['A:H', 'A:L'], operation: reduce}
  - type: finding/malware
    categorisations:
      - {id: NONE, display_name: None, value: 0, rescoring: manual}
      - {id: BLOCKER, display_name: Blocker, value: 16, allowed_processing_time: 0, rescoring: manual, selector: {malware_names: ['.*']}}
  - type: finding/license
    categorisations:
      - {id: NONE, display_name: None, value: 0, rescoring: manual}
      - {id: BLOCKER, display_name: Blocker, value: 16, allowed_processing_time: 0, rescoring: manual, selector: {license_names: ['.*']}}
"#;

#[derive(Deserialize)]
#[serde(untagged)]
enum FileLayout {
    List(Vec<FindingFile>),
    Document {
        findings: Vec<FindingFile>,
        #[serde(default)]
        profiles: Vec<ProfileFile>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    finding_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingFile {
    r#type: String,
    categorisations: Vec<CategorisationFile>,
    #[serde(default)]
    filter: Vec<FilterFile>,
    #[serde(default)]
    reuse_discovery_date: Option<ReuseFile>,
    // Kept by the original for its extensions; accepted here and unused.
    #[serde(default)]
    rescoring_ruleset: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    issues: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    default_scope: Option<String>,
    #[serde(default)]
    sprint_assignment_offset: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategorisationFile {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    value: i64,
    #[serde(default)]
    allowed_processing_time: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    rescoring: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    selector: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterFile {
    semantics: String,
    component_name: Option<String>,
    artefact_kind: Option<String>,
    artefact_name: Option<String>,
    artefact_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReuseFile {
    #[serde(default = "enabled")]
    enabled: bool,
    max_reuse_time: Option<serde_yaml_ng::Value>,
}

fn enabled() -> bool {
    true
}

/// `input`, a number of days, or a number with a unit (`s`/`sec`, `m`/`min`, `h`/`hr`, `d`, `w`, `y`/`yr`).
fn parse_duration(value: &serde_yaml_ng::Value) -> Result<ProcessingTime, String> {
    use serde_yaml_ng::Value as Yaml;
    match value {
        Yaml::Null => Ok(ProcessingTime::Unlimited),
        Yaml::Number(number) => number
            .as_f64()
            .filter(|days| *days >= 0.0)
            .map(|days| ProcessingTime::Seconds((days * 86_400.0) as u64))
            .ok_or_else(|| format!("{number} is not a non-negative number of days")),
        Yaml::String(text) if text == "input" => Ok(ProcessingTime::Input),
        Yaml::String(text) => {
            let text = text.trim();
            let split = text
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let number: f64 = number
                .parse()
                .map_err(|_| format!("{text:?} is not a duration"))?;
            let seconds = match unit.trim() {
                "" | "d" => 86_400.0,
                "s" | "sec" => 1.0,
                "m" | "min" => 60.0,
                "h" | "hr" => 3_600.0,
                "w" => 604_800.0,
                "y" | "yr" => 31_536_000.0,
                other => return Err(format!("unknown unit {other:?} in {text:?}")),
            };
            Ok(ProcessingTime::Seconds((number * seconds) as u64))
        }
        other => Err(format!("{other:?} is not a duration")),
    }
}

/// A finding configuration as the original's `/features` serialises its parsed dataclass (the
/// dashboard computes with these values): every categorisation's `allowed_processing_time` in
/// seconds (a float; `input` and `null` as they are), `rescoring` as a list, absent optional
/// fields as `null`, and the defaults of `default_scope` (`artefact`), `reuse_discovery_date`
/// and `sprint_assignment_offset` filled in.
pub fn serialised_finding(mut finding: Value) -> Value {
    let Some(object) = finding.as_object_mut() else {
        return finding;
    };
    if let Some(Value::Array(categorisations)) = object.get_mut("categorisations") {
        for categorisation in categorisations.iter_mut().filter_map(Value::as_object_mut) {
            let time = categorisation
                .get("allowed_processing_time")
                .cloned()
                .unwrap_or(Value::Null);
            let seconds = match serde_yaml_ng::to_value(&time)
                .ok()
                .map(|yaml| parse_duration(&yaml))
            {
                Some(Ok(ProcessingTime::Seconds(seconds))) => serde_json::json!(seconds as f64),
                Some(Ok(ProcessingTime::Input)) => Value::String("input".into()),
                _ => Value::Null,
            };
            categorisation.insert("allowed_processing_time".into(), seconds);
            let rescoring = match categorisation.remove("rescoring") {
                Some(Value::String(mode)) => Value::Array(vec![Value::String(mode)]),
                Some(other) => other,
                None => Value::Null,
            };
            categorisation.insert("rescoring".into(), rescoring);
            categorisation.entry("selector").or_insert(Value::Null);
        }
    }
    for (key, default) in [
        ("filter", Value::Null),
        ("rescoring_ruleset", Value::Null),
        ("default_scope", Value::String("artefact".into())),
        ("sprint_assignment_offset", serde_json::json!(0)),
    ] {
        object.entry(key).or_insert(default);
    }
    let reuse = object
        .entry("reuse_discovery_date")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(reuse) = reuse.as_object_mut() {
        reuse.entry("enabled").or_insert(Value::Bool(true));
        let max = reuse.get("max_reuse_time").cloned().unwrap_or(Value::Null);
        let max = match serde_yaml_ng::to_value(&max)
            .ok()
            .map(|yaml| parse_duration(&yaml))
        {
            Some(Ok(ProcessingTime::Seconds(seconds))) => serde_json::json!(seconds as f64),
            _ => Value::Null,
        };
        reuse.insert("max_reuse_time".into(), max);
    }
    finding
}

/// An allowed processing time as stored in findings and rescorings (`"2592000s"`, `"30d"`,
/// `"input"`); `None` when it cannot be read.
pub fn parse_processing_time(text: &str) -> Option<ProcessingTime> {
    parse_duration(&serde_yaml_ng::Value::String(text.to_string())).ok()
}

/// A filter pattern: matched against the whole value, case-insensitively (the original's
/// `re.fullmatch(pattern, value, re.IGNORECASE)`), through `FullMatchRegex` so that an
/// unbalanced pattern such as `a)|(b` is refused instead of becoming an unanchored alternation.
fn full_match(pattern: &str) -> Result<FullMatchRegex, String> {
    FullMatchRegex::new_case_insensitive(pattern).map_err(|error| error.to_string())
}

impl FindingFile {
    fn resolve(self) -> Result<FindingConfig, String> {
        if self.categorisations.is_empty() {
            return Err("needs at least one categorisation".into());
        }
        let mut categorisations = Vec::new();
        for categorisation in self.categorisations {
            if categorisation.id.starts_with("set-to-") {
                return Err(format!(
                    "categorisation id {:?}: the prefix set-to- is reserved",
                    categorisation.id
                ));
            }
            if categorisations
                .iter()
                .any(|known: &Categorisation| known.id == categorisation.id)
            {
                return Err(format!(
                    "categorisation id {:?} appears twice",
                    categorisation.id
                ));
            }
            let allowed_processing_time = match &categorisation.allowed_processing_time {
                None => ProcessingTime::Unlimited,
                Some(value) => parse_duration(value)?,
            };
            let _ = (&categorisation.rescoring, &categorisation.selector);
            categorisations.push(Categorisation {
                display_name: categorisation
                    .display_name
                    .unwrap_or_else(|| categorisation.id.clone()),
                id: categorisation.id,
                value: categorisation.value,
                allowed_processing_time,
            });
        }
        if self.r#type == VULNERABILITY && !categorisations.iter().any(|c| c.value == 0) {
            return Err("vulnerability categorisations need one with value 0".into());
        }
        let mut rules = Vec::new();
        for rule in &self.filter {
            let include = match rule.semantics.as_str() {
                "include" => true,
                "exclude" => false,
                other => {
                    return Err(format!(
                        "filter semantics {other:?}: use include or exclude"
                    ))
                }
            };
            let mut matchers = Vec::new();
            for (field, pattern) in [
                (FilterField::ComponentName, &rule.component_name),
                (FilterField::ArtefactKind, &rule.artefact_kind),
                (FilterField::ArtefactName, &rule.artefact_name),
                (FilterField::ArtefactType, &rule.artefact_type),
            ] {
                if let Some(pattern) = pattern {
                    matchers.push((field, full_match(pattern)?));
                }
            }
            rules.push(FilterRule { include, matchers });
        }
        let reuse_discovery_date = match &self.reuse_discovery_date {
            None => DiscoveryDateReuse::default(),
            Some(reuse) => DiscoveryDateReuse {
                enabled: reuse.enabled,
                max_reuse_time: match &reuse.max_reuse_time {
                    None => None,
                    Some(value) => match parse_duration(value)? {
                        ProcessingTime::Seconds(seconds) => Some(Duration::from_secs(seconds)),
                        ProcessingTime::Unlimited => None,
                        ProcessingTime::Input => {
                            return Err("max_reuse_time cannot be input".into())
                        }
                    },
                },
            },
        };
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            for categorisation in &categorisations {
                hasher.update(format!(
                    "{}\u{0}{}\u{0}",
                    categorisation.id, categorisation.value
                ));
            }
            for rule in &self.filter {
                hasher.update(format!(
                    "{}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}",
                    rule.semantics,
                    rule.component_name,
                    rule.artefact_kind,
                    rule.artefact_name,
                    rule.artefact_type
                ));
            }
            hex::encode(&hasher.finalize()[..8])
        };
        let _ = (&self.issues, &self.default_scope);
        // A rule set written out is read (a reference to the original's shared defaults is
        // not: odg has no shared configuration, and proposes no automatic rescoring then).
        let cve_rescoring = match (&self.rescoring_ruleset, self.r#type.as_str()) {
            (Some(raw), VULNERABILITY) => {
                let raw: Value = serde_json::to_value(raw).map_err(|error| error.to_string())?;
                if raw.get("rules").is_some() {
                    Some(
                        crate::cve_rescoring::CveRuleSet::from_json(&raw)
                            .map_err(|error| format!("rescoring_ruleset: {error}"))?,
                    )
                } else {
                    None
                }
            }
            _ => None,
        };
        Ok(FindingConfig {
            datasource: datasource_of(&self.r#type),
            r#type: self.r#type,
            categorisations,
            filter: FindingFilter { rules },
            reuse_discovery_date,
            fingerprint,
            sprint_assignment_offset: self.sprint_assignment_offset.unwrap_or(0),
            cve_rescoring,
        })
    }
}

/// The local artefact id of a descriptor's resource or source, as a metadata artefact.
pub fn artefact_id(
    component_name: &str,
    component_version: &str,
    kind: ArtefactKind,
    artefact: &odg_ocm::Artefact,
) -> ComponentArtefactId {
    let extra = artefact
        .extra_identity
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .collect();
    ComponentArtefactId {
        component_name: Some(component_name.to_string()),
        component_version: Some(component_version.to_string()),
        artefact: Some(odg_delivery_db::LocalArtefactId {
            artefact_name: Some(artefact.name.clone()),
            artefact_version: artefact.version.clone(),
            artefact_type: artefact.artefact_type.clone(),
            artefact_extra_id: extra,
        }),
        artefact_kind: Some(kind),
        references: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_datasources() {
        let configs = FindingConfigs::defaults();
        let vulnerability = configs.get(VULNERABILITY).unwrap();
        assert_eq!(vulnerability.datasource, "bdba");
        assert_eq!(vulnerability.categorisation("HIGH").unwrap().value, 4);
        assert_eq!(vulnerability.categorisation("CRITICAL").unwrap().value, 8);
        assert_eq!(
            vulnerability
                .categorisation("LOW")
                .unwrap()
                .allowed_processing_time,
            ProcessingTime::Seconds(120 * 86_400)
        );
        assert_eq!(
            configs
                .get(MALWARE)
                .unwrap()
                .categorisation("BLOCKER")
                .unwrap()
                .value,
            16
        );
        assert_eq!(configs.get(MALWARE).unwrap().datasource, "clamav");
        assert_eq!(configs.get(LICENSE).unwrap().datasource, "bdba");
        assert_eq!(datasource_of("finding/diki"), "diki");
        assert_eq!(datasource_of(IP), "blackduck");
    }

    /// `/features` reports the configurations as the original serialises its parsed ones: the
    /// dashboard divides `allowed_processing_time` by 86,400 and rescores in `default_scope`.
    #[test]
    fn features_get_the_originals_serialised_shape() {
        let configs = FindingConfigs::defaults();
        let vulnerability = &configs.raw_findings[0];
        assert_eq!(vulnerability["default_scope"], "artefact");
        assert_eq!(vulnerability["sprint_assignment_offset"], 0);
        assert_eq!(
            vulnerability["reuse_discovery_date"],
            serde_json::json!({"enabled": true, "max_reuse_time": null})
        );
        let categorisation = |id: &str| {
            vulnerability["categorisations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|categorisation| categorisation["id"] == id)
                .unwrap()
                .clone()
        };
        assert_eq!(
            categorisation("HIGH")["allowed_processing_time"],
            2_592_000.0
        );
        assert_eq!(
            categorisation("HIGH")["rescoring"],
            serde_json::json!(["manual"])
        );
        assert_eq!(
            categorisation("LOW")["rescoring"],
            serde_json::json!(["manual", "automatic"])
        );
        assert_eq!(
            categorisation("postpone")["allowed_processing_time"],
            "input"
        );
        assert_eq!(
            categorisation("NONE")["allowed_processing_time"],
            Value::Null
        );
        assert_eq!(categorisation("NONE")["selector"], Value::Null);
        assert_eq!(
            vulnerability["rescoring_ruleset"]["name"],
            "vulnerability-rescoring-v1"
        );
        let rule_set = configs
            .get(VULNERABILITY)
            .unwrap()
            .cve_rescoring
            .as_ref()
            .unwrap();
        assert_eq!(rule_set.rules.len(), 10);
    }

    /// The delivery service's rule (`FeatureProfiles.find_profile`): no `profile` (or an empty
    /// one) means the first configured profile; an unknown name means no profile, so every
    /// configured finding type counts; without profiles, everything counts.
    #[test]
    fn profile_defaults_to_the_first_and_unknown_means_all_findings() {
        let configs = FindingConfigs::from_yaml(
            "findings:\n  - type: finding/malware\n    categorisations: [{id: NONE, value: 0}]\n  - type: finding/vulnerability\n    categorisations: [{id: NONE, value: 0}]\nprofiles:\n  - {name: malware-only, finding_types: [finding/malware]}\n  - {name: vulnerabilities, finding_types: [finding/vulnerability]}\n",
        )
        .unwrap();
        let types = |profile: Option<&str>| -> Vec<String> {
            configs
                .for_profile(profile)
                .into_iter()
                .map(|finding| finding.r#type.clone())
                .collect()
        };
        assert_eq!(types(None), [MALWARE], "no profile: the first one");
        assert_eq!(types(Some("")), [MALWARE], "empty profile: the first one");
        assert_eq!(types(Some("vulnerabilities")), ["finding/vulnerability"]);
        assert_eq!(
            types(Some("nonesuch")),
            [MALWARE, "finding/vulnerability"],
            "unknown profile: all findings"
        );
        assert!(configs.profile(Some("nonesuch")).is_none());

        let without_profiles = FindingConfigs::from_yaml(
            "- type: finding/malware\n  categorisations: [{id: NONE, value: 0}]\n",
        )
        .unwrap();
        assert_eq!(without_profiles.for_profile(None).len(), 1);
        assert_eq!(without_profiles.for_profile(Some("any")).len(), 1);
    }

    #[test]
    fn filters_and_profiles() {
        let configs = FindingConfigs::from_yaml(
            "findings:\n  - type: finding/malware\n    categorisations: [{id: NONE, value: 0}, {id: BLOCKER, value: 16}]\n    filter:\n      - {semantics: include, artefact_kind: resource}\n      - {semantics: exclude, artefact_name: 'TEST-.*'}\n    reuse_discovery_date: {enabled: true, max_reuse_time: 2w}\n  - type: finding/vulnerability\n    categorisations: [{id: NONE, value: 0}]\nprofiles:\n  - {name: malware-only, finding_types: [finding/malware]}\n",
        )
        .unwrap();
        let malware = configs.get(MALWARE).unwrap();
        let artefact = |kind, name: &str| ComponentArtefactId {
            artefact_kind: Some(kind),
            artefact: Some(odg_delivery_db::LocalArtefactId {
                artefact_name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(malware
            .filter
            .accepts(&artefact(ArtefactKind::Resource, "image")));
        assert!(!malware
            .filter
            .accepts(&artefact(ArtefactKind::Source, "image")));
        assert!(!malware
            .filter
            .accepts(&artefact(ArtefactKind::Resource, "test-image")));
        assert_eq!(
            malware.reuse_discovery_date.max_reuse_time,
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(configs.for_profile(Some("malware-only")).len(), 1);
        assert!(FindingConfigs::from_yaml(
            "- type: finding/vulnerability\n  categorisations: [{id: LOW, value: 1}]\n"
        )
        .is_err());
        assert!(FindingConfigs::from_yaml(
            "- type: x\n  categorisations: [{id: A, value: 1}]\n  unknown: 1\n"
        )
        .is_err());
    }
}
