//! Repository mapping: which OCM repositories to try, in which order, for a component name.
//!
//! As in the original, the mapping holds OCI repository rules and virtual repositories: a
//! virtual repository has a name (the dashboard's `<auto>` is one) and selectors that pick rules
//! by their labels and may override their version filter. A caller names either a repository
//! URL or a virtual repository ([`RepositoryChoice`]); naming none means `<auto>`, which unless
//! configured otherwise is every rule with its own filter.

use serde::{Deserialize, Serialize};

use crate::error::OcmError;
use crate::full_match_regex::FullMatchRegex;
use crate::repository::OcmRepositoryUrl;
use crate::version::VersionFilter;

/// Which component names a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSelector {
    All,
    /// Names starting with any of these (case-sensitive, as in the Python service).
    Prefixes(Vec<String>),
    /// Names the regex matches completely.
    Regex(FullMatchRegex),
}

impl ComponentSelector {
    pub fn matches(&self, component_name: &str) -> bool {
        match self {
            ComponentSelector::All => true,
            ComponentSelector::Prefixes(prefixes) => prefixes
                .iter()
                .any(|prefix| component_name.starts_with(prefix.as_str())),
            ComponentSelector::Regex(regex) => regex.is_match(component_name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRule {
    pub repository: OcmRepositoryUrl,
    pub selector: ComponentSelector,
    /// Which versions this repository offers for the selected components; `None` = all.
    pub version_filter: Option<VersionFilter>,
    /// What virtual repositories select this rule by (`required_labels`).
    pub labels: Vec<String>,
}

/// The name of the virtual repository used when a caller names none (the dashboard's default).
pub const AUTO: &str = "<auto>";

/// One selector of a virtual repository: the rules carrying all `required_labels` (every rule
/// when there are none), in rule order, with `version_filter_overwrite` replacing their filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtualSelector {
    pub required_labels: Vec<String>,
    pub version_filter_overwrite: Option<VersionFilter>,
}

/// A named selection of the mapping's rules (the original's `VirtualOcmRepositoryCfg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualRepository {
    pub name: String,
    /// Never empty: a configuration without selectors has one that selects every rule.
    pub selectors: Vec<VirtualSelector>,
}

/// Where a caller asks to look: a repository URL (checked against the allowed hosts by the
/// caller), or a virtual repository of the mapping by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RepositoryChoice {
    Repository(OcmRepositoryUrl),
    Virtual(String),
}

impl std::fmt::Display for RepositoryChoice {
    /// Distinct for every choice (cache keys hold it): a virtual name cannot be read as a URL.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepositoryChoice::Repository(url) => write!(formatter, "{url}"),
            RepositoryChoice::Virtual(name) => write!(formatter, "virtual:{name}"),
        }
    }
}

impl RepositoryChoice {
    /// The repository URL, when one was named.
    pub fn repository(&self) -> Option<&OcmRepositoryUrl> {
        match self {
            RepositoryChoice::Repository(url) => Some(url),
            RepositoryChoice::Virtual(_) => None,
        }
    }
}

/// A repository to try, with the versions it may offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryCandidate {
    pub repository: OcmRepositoryUrl,
    pub version_filter: Option<VersionFilter>,
}

/// The ordered rules; the order is the order in which repositories are tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryMapping {
    pub rules: Vec<RepositoryRule>,
    /// Configured virtual repositories; `<auto>` is implied when not among them.
    pub virtuals: Vec<VirtualRepository>,
}

impl RepositoryMapping {
    /// A mapping of rules only (`<auto>` = every rule).
    pub fn new(rules: Vec<RepositoryRule>) -> RepositoryMapping {
        RepositoryMapping {
            rules,
            virtuals: Vec::new(),
        }
    }

    /// A mapping with virtual repositories; each selector must select at least one rule (the
    /// original fails every lookup through one that does not: here the configuration fails).
    pub fn with_virtuals(
        rules: Vec<RepositoryRule>,
        virtuals: Vec<VirtualRepository>,
    ) -> Result<RepositoryMapping, OcmError> {
        let mapping = RepositoryMapping { rules, virtuals };
        for repository in &mapping.virtuals {
            for selector in &repository.selectors {
                if !mapping.rules.iter().any(|rule| selects(selector, rule)) {
                    return Err(OcmError::InvalidRepositoryRule {
                        repository: repository.name.clone(),
                        reason: format!(
                            "the selector with required_labels {:?} selects no repository",
                            selector.required_labels
                        ),
                    });
                }
            }
        }
        Ok(mapping)
    }

    /// The virtual repositories as the original lists them: `<auto>` first when not configured.
    pub fn virtual_repositories(&self) -> Vec<VirtualRepository> {
        let mut virtuals = self.virtuals.clone();
        if !virtuals.iter().any(|repository| repository.name == AUTO) {
            virtuals.insert(
                0,
                VirtualRepository {
                    name: AUTO.into(),
                    selectors: vec![VirtualSelector::default()],
                },
            );
        }
        virtuals
    }

    /// Whether `name` is a virtual repository here (`<auto>` always is).
    pub fn is_virtual(&self, name: &str) -> bool {
        name == AUTO
            || self
                .virtuals
                .iter()
                .any(|repository| repository.name == name)
    }

    /// The rules a virtual repository resolves to, selector by selector, with their filters
    /// overridden; `None` for an unknown name.
    pub fn virtual_rules(&self, name: &str) -> Option<Vec<RepositoryRule>> {
        let repository = self
            .virtual_repositories()
            .into_iter()
            .find(|repository| repository.name == name)?;
        Some(
            repository
                .selectors
                .iter()
                .flat_map(|selector| {
                    self.rules
                        .iter()
                        .filter(|rule| selects(selector, rule))
                        .map(|rule| RepositoryRule {
                            version_filter: selector
                                .version_filter_overwrite
                                .clone()
                                .or_else(|| rule.version_filter.clone()),
                            ..rule.clone()
                        })
                })
                .collect(),
        )
    }

    /// The repositories to try for `component_name` as the caller chose: a repository URL first
    /// (see [`Self::candidates`]), a virtual repository's rules, or `<auto>`'s when none.
    pub fn candidates_for(
        &self,
        component_name: &str,
        choice: Option<&RepositoryChoice>,
    ) -> Vec<RepositoryCandidate> {
        let name = match choice {
            Some(RepositoryChoice::Repository(url)) => {
                return self.candidates(component_name, Some(url))
            }
            Some(RepositoryChoice::Virtual(name)) => name.as_str(),
            None => AUTO,
        };
        let rules = self.virtual_rules(name).unwrap_or_default();
        RepositoryMapping::new(rules).candidates(component_name, None)
    }

    /// The repositories to try for `component_name`, each once:
    /// 1. `preferred` (the caller's `ocm_repo_url`, or the referencing component's current repository
    ///    context) first, even when no rule selects it, with the version filter of the first rule for that
    ///    same repository that selects the component, else no filter;
    /// 2. then every rule that selects the component, in rule order. A repository that appears again keeps
    ///    its first position and filter.
    pub fn candidates(
        &self,
        component_name: &str,
        preferred: Option<&OcmRepositoryUrl>,
    ) -> Vec<RepositoryCandidate> {
        let matching_rules = self
            .rules
            .iter()
            .filter(|rule| rule.selector.matches(component_name));
        let mut candidates: Vec<RepositoryCandidate> = Vec::new();
        if let Some(preferred) = preferred {
            let version_filter = matching_rules
                .clone()
                .find(|rule| &rule.repository == preferred)
                .and_then(|rule| rule.version_filter.clone());
            candidates.push(RepositoryCandidate {
                repository: preferred.clone(),
                version_filter,
            });
        }
        for rule in matching_rules {
            let already_listed = candidates
                .iter()
                .any(|candidate| candidate.repository == rule.repository);
            if !already_listed {
                candidates.push(RepositoryCandidate {
                    repository: rule.repository.clone(),
                    version_filter: rule.version_filter.clone(),
                });
            }
        }
        candidates
    }
}

fn selects(selector: &VirtualSelector, rule: &RepositoryRule) -> bool {
    selector
        .required_labels
        .iter()
        .all(|label| rule.labels.contains(label))
        && (selector.required_labels.is_empty() || !rule.labels.is_empty())
}

/// A single value or a list of them, as the original's configuration accepts both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// One mapping entry as written in configuration; turned into a [`RepositoryRule`] with `try_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryRuleConfig {
    /// `oci` when given (the original's type of these entries).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub repository: String,
    /// Component name prefixes (a list or one); absent together with `component_filter` means
    /// every component. `prefix` is the original's older name for it.
    #[serde(default, alias = "prefix")]
    pub prefixes: Option<OneOrMany<String>>,
    /// A full-match regex over component names; exclusive with `prefixes`.
    #[serde(default)]
    pub component_filter: Option<String>,
    /// A [`VersionFilter`] name or regex.
    #[serde(default)]
    pub version_filter: Option<String>,
    /// What virtual repositories select this entry by.
    #[serde(default)]
    pub labels: Option<OneOrMany<String>>,
}

/// One selector of a virtual repository as written in configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualSelectorConfig {
    #[serde(default)]
    pub required_labels: Option<OneOrMany<String>>,
    #[serde(default)]
    pub version_filter_overwrite: Option<String>,
}

/// A virtual repository as written in configuration (`type: virtual`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualRepositoryConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub selectors: Option<OneOrMany<VirtualSelectorConfig>>,
}

impl TryFrom<VirtualRepositoryConfig> for VirtualRepository {
    type Error = OcmError;

    fn try_from(config: VirtualRepositoryConfig) -> Result<VirtualRepository, OcmError> {
        let invalid = |reason: String| OcmError::InvalidRepositoryRule {
            repository: config.name.clone(),
            reason,
        };
        if config.kind != "virtual" {
            return Err(invalid(format!("type {:?}: expected virtual", config.kind)));
        }
        let selectors = match config.selectors.clone() {
            None => vec![VirtualSelector::default()],
            Some(selectors) => selectors
                .into_vec()
                .into_iter()
                .map(|selector| {
                    Ok(VirtualSelector {
                        required_labels: selector
                            .required_labels
                            .map(OneOrMany::into_vec)
                            .unwrap_or_default(),
                        version_filter_overwrite: selector
                            .version_filter_overwrite
                            .as_deref()
                            .map(str::parse::<VersionFilter>)
                            .transpose()
                            .map_err(|error| invalid(error.to_string()))?,
                    })
                })
                .collect::<Result<_, OcmError>>()?,
        };
        Ok(VirtualRepository {
            name: config.name,
            selectors,
        })
    }
}

impl TryFrom<RepositoryRuleConfig> for RepositoryRule {
    type Error = OcmError;

    fn try_from(config: RepositoryRuleConfig) -> Result<RepositoryRule, OcmError> {
        let invalid = |reason: String| OcmError::InvalidRepositoryRule {
            repository: config.repository.clone(),
            reason,
        };
        let repository: OcmRepositoryUrl = config
            .repository
            .parse()
            .map_err(|error: OcmError| invalid(error.to_string()))?;
        if config.kind.as_deref().is_some_and(|kind| kind != "oci") {
            return Err(invalid(format!(
                "type {:?}: expected oci (or virtual with a name)",
                config.kind
            )));
        }
        let prefixes = config.prefixes.clone().map(OneOrMany::into_vec);
        let selector = match (&prefixes, &config.component_filter) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give either prefixes or component_filter, not both".into(),
                ))
            }
            // An empty list would select nothing, which is surely not what was meant.
            (Some(prefixes), None) if prefixes.is_empty() => {
                return Err(invalid(
                    "prefixes is empty; omit it to select every component".into(),
                ))
            }
            (Some(prefixes), None) => ComponentSelector::Prefixes(prefixes.clone()),
            (None, Some(pattern)) => ComponentSelector::Regex(
                FullMatchRegex::new(pattern).map_err(|error| invalid(error.to_string()))?,
            ),
            (None, None) => ComponentSelector::All,
        };
        let version_filter = config
            .version_filter
            .as_deref()
            .map(str::parse::<VersionFilter>)
            .transpose()
            .map_err(|error| invalid(error.to_string()))?;
        Ok(RepositoryRule {
            repository,
            selector,
            version_filter,
            labels: config.labels.map(OneOrMany::into_vec).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OcmErrorKind;

    fn url(text: &str) -> OcmRepositoryUrl {
        text.parse().unwrap()
    }

    fn rule(
        repository: &str,
        prefixes: Option<&[&str]>,
        filter: Option<&str>,
        version_filter: Option<&str>,
    ) -> RepositoryRule {
        RepositoryRule::try_from(RepositoryRuleConfig {
            repository: repository.into(),
            prefixes: prefixes.map(|prefixes| {
                OneOrMany::Many(prefixes.iter().map(|prefix| prefix.to_string()).collect())
            }),
            component_filter: filter.map(String::from),
            version_filter: version_filter.map(String::from),
            ..RepositoryRuleConfig::default()
        })
        .unwrap()
    }

    fn candidate(repository: &str, version_filter: Option<&str>) -> RepositoryCandidate {
        RepositoryCandidate {
            repository: url(repository),
            version_filter: version_filter.map(|filter| filter.parse().unwrap()),
        }
    }

    fn mapping() -> RepositoryMapping {
        RepositoryMapping {
            virtuals: Vec::new(),
            rules: vec![
                rule(
                    "releases.example.com/ocm",
                    Some(&["example.com/"]),
                    None,
                    Some("semver_releases"),
                ),
                rule(
                    "snapshots.example.com/ocm",
                    None,
                    Some(r"example\.com/demo/.*"),
                    None,
                ),
                rule("https://releases.example.com/ocm", None, None, Some("any")),
                rule("fallback.example.com", None, None, None),
            ],
        }
    }

    #[test]
    fn matching_rules_come_in_order_deduplicated_by_repository() {
        assert_eq!(
            mapping().candidates("example.com/demo/app", None),
            vec![
                candidate("releases.example.com/ocm", Some("semver_releases")),
                candidate("snapshots.example.com/ocm", None),
                candidate("fallback.example.com", None),
            ]
        );
        assert_eq!(
            mapping().candidates("other.org/app", None),
            vec![
                candidate("releases.example.com/ocm", Some("any")),
                candidate("fallback.example.com", None)
            ]
        );
    }

    #[test]
    fn the_preferred_repository_comes_first_with_its_matching_rules_filter() {
        assert_eq!(
            mapping().candidates(
                "example.com/demo/app",
                Some(&url("snapshots.example.com/ocm"))
            ),
            vec![
                candidate("snapshots.example.com/ocm", None),
                candidate("releases.example.com/ocm", Some("semver_releases")),
                candidate("fallback.example.com", None),
            ]
        );
        // for a component the first rule does not select, the filter comes from the third rule
        assert_eq!(
            mapping().candidates("other.org/app", Some(&url("releases.example.com/ocm")))[0],
            candidate("releases.example.com/ocm", Some("any"))
        );
    }

    #[test]
    fn a_preferred_repository_without_a_rule_has_no_filter() {
        let candidates = mapping().candidates("other.org/app", Some(&url("http://127.0.0.1:5000")));
        assert_eq!(candidates[0], candidate("http://127.0.0.1:5000", None));
        assert_eq!(candidates.len(), 3);
        let no_rules = RepositoryMapping::default();
        assert_eq!(
            no_rules.candidates("x", Some(&url("a.example.com"))),
            vec![candidate("a.example.com", None)]
        );
        assert!(no_rules.candidates("x", None).is_empty());
    }

    #[test]
    fn selectors_match_as_documented() {
        assert!(ComponentSelector::All.matches(""));
        let prefixes = ComponentSelector::Prefixes(vec!["a.com/".into(), "b.com/x".into()]);
        assert!(prefixes.matches("a.com/app") && prefixes.matches("b.com/xy"));
        assert!(!prefixes.matches("A.com/app") && !prefixes.matches("b.com/y"));
        let regex = ComponentSelector::Regex(FullMatchRegex::new("a.com/[a-z]+").unwrap());
        assert!(regex.matches("a.com/app") && !regex.matches("a.com/app/sub"));
    }

    #[test]
    fn rule_configs_are_validated() {
        let config = |prefixes: Option<Vec<String>>,
                      component_filter: Option<&str>,
                      version_filter: Option<&str>| {
            RepositoryRuleConfig {
                repository: "registry.example.com/ocm".into(),
                prefixes: prefixes.map(OneOrMany::Many),
                component_filter: component_filter.map(String::from),
                version_filter: version_filter.map(String::from),
                ..RepositoryRuleConfig::default()
            }
        };
        for bad in [
            config(Some(vec!["a".into()]), Some("a.*"), None),
            config(Some(vec![]), None, None),
            config(None, Some("("), None),
            config(None, None, Some("(")),
            RepositoryRuleConfig {
                repository: "ftp://x".into(),
                ..RepositoryRuleConfig::default()
            },
        ] {
            let error = RepositoryRule::try_from(bad).unwrap_err();
            assert_eq!(error.kind(), OcmErrorKind::InvalidInput, "{error}");
        }
        let all = RepositoryRule::try_from(config(None, None, Some("semver_any"))).unwrap();
        assert_eq!(all.selector, ComponentSelector::All);
        assert_eq!(all.version_filter, Some(VersionFilter::SemverAny));
    }

    #[test]
    fn rule_configs_refuse_unknown_fields_and_read_the_originals_forms() {
        let parsed: Result<RepositoryRuleConfig, _> =
            serde_json::from_str(r#"{"repository": "r.example.com", "prefixs": ["a"]}"#);
        assert!(parsed.is_err());
        for text in [
            r#"{"repository": "r.example.com", "prefixes": ["a"]}"#,
            r#"{"repository": "r.example.com", "prefixes": "a"}"#,
            r#"{"repository": "r.example.com", "prefix": "a", "type": "oci"}"#,
        ] {
            let parsed: RepositoryRuleConfig = serde_json::from_str(text).unwrap();
            let rule = RepositoryRule::try_from(parsed).unwrap();
            assert_eq!(
                rule.selector,
                ComponentSelector::Prefixes(vec!["a".into()]),
                "{text}"
            );
        }
    }

    fn labelled(repository: &str, labels: &[&str], version_filter: Option<&str>) -> RepositoryRule {
        RepositoryRule {
            labels: labels.iter().map(|label| label.to_string()).collect(),
            ..rule(repository, None, None, version_filter)
        }
    }

    fn virtual_repository(name: &str, selectors: &[(&[&str], Option<&str>)]) -> VirtualRepository {
        VirtualRepository {
            name: name.into(),
            selectors: selectors
                .iter()
                .map(|(labels, overwrite)| VirtualSelector {
                    required_labels: labels.iter().map(|label| label.to_string()).collect(),
                    version_filter_overwrite: overwrite.map(|filter| filter.parse().unwrap()),
                })
                .collect(),
        }
    }

    /// The original's `VirtualOcmRepositoryCfg.iter_ocm_repository_cfgs`: per selector, in
    /// order, the rules with all required labels (all rules without), filters overridden;
    /// `<auto>` without configuration is every rule with its own filter.
    #[test]
    fn virtual_repositories_select_rules_by_labels() {
        let rules = vec![
            labelled("releases.example.com/ocm", &["releases"], None),
            labelled(
                "snapshots.example.com/ocm",
                &["snapshots"],
                Some("semver_non_releases"),
            ),
            labelled("other.example.com/ocm", &[], None),
        ];
        let plain = RepositoryMapping::new(rules.clone());
        assert_eq!(
            plain.candidates_for("x", None),
            plain.candidates("x", None),
            "<auto> is the whole mapping"
        );
        assert_eq!(
            plain.candidates_for("x", Some(&RepositoryChoice::Virtual(AUTO.into()))),
            plain.candidates("x", None)
        );
        let mapping = RepositoryMapping::with_virtuals(
            rules.clone(),
            vec![
                virtual_repository(AUTO, &[(&[], Some("semver_releases"))]),
                virtual_repository(
                    "snapshots-first",
                    &[(&["snapshots"], None), (&["releases"], Some("any"))],
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            mapping.candidates_for("x", None),
            vec![
                candidate("releases.example.com/ocm", Some("semver_releases")),
                candidate("snapshots.example.com/ocm", Some("semver_releases")),
                candidate("other.example.com/ocm", Some("semver_releases")),
            ]
        );
        assert_eq!(
            mapping.candidates_for(
                "x",
                Some(&RepositoryChoice::Virtual("snapshots-first".into()))
            ),
            vec![
                candidate("snapshots.example.com/ocm", Some("semver_non_releases")),
                candidate("releases.example.com/ocm", Some("any")),
            ]
        );
        assert!(mapping.is_virtual(AUTO) && mapping.is_virtual("snapshots-first"));
        assert!(!mapping.is_virtual("releases.example.com/ocm"));
        let unresolvable = RepositoryMapping::with_virtuals(
            rules,
            vec![virtual_repository("nightly", &[(&["nightly"], None)])],
        );
        assert!(unresolvable.is_err());
    }
}
