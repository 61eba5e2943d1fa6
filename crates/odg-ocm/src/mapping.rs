//! Repository mapping: which OCM repositories to try, in which order, for a component name.

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
}

impl RepositoryMapping {
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

/// One mapping entry as written in configuration; turned into a [`RepositoryRule`] with `try_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryRuleConfig {
    pub repository: String,
    /// Component name prefixes; absent together with `component_filter` means every component.
    #[serde(default)]
    pub prefixes: Option<Vec<String>>,
    /// A full-match regex over component names; exclusive with `prefixes`.
    #[serde(default)]
    pub component_filter: Option<String>,
    /// A [`VersionFilter`] name or regex.
    #[serde(default)]
    pub version_filter: Option<String>,
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
        let selector = match (&config.prefixes, &config.component_filter) {
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
            prefixes: prefixes
                .map(|prefixes| prefixes.iter().map(|prefix| prefix.to_string()).collect()),
            component_filter: filter.map(String::from),
            version_filter: version_filter.map(String::from),
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
                prefixes,
                component_filter: component_filter.map(String::from),
                version_filter: version_filter.map(String::from),
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
    fn rule_configs_refuse_unknown_fields() {
        let parsed: Result<RepositoryRuleConfig, _> =
            serde_json::from_str(r#"{"repository": "r.example.com", "prefix": ["a"]}"#);
        assert!(parsed.is_err());
        let parsed: RepositoryRuleConfig =
            serde_json::from_str(r#"{"repository": "r.example.com", "prefixes": ["a"]}"#).unwrap();
        assert_eq!(parsed.prefixes, Some(vec!["a".to_owned()]));
    }
}
