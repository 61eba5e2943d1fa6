//! `GET /features` and `GET /profiles` in the original's shapes: every feature the original knows,
//! each `available` only if this installation serves it (the dashboard hides what is unavailable).

use axum::extract::State;
use axum::Json;
use odg_ocm::{ComponentSelector, VersionFilter};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::params::Params;
use crate::{ApiError, AppState};

const AVAILABLE: &str = "available";
const UNAVAILABLE: &str = "unavailable";

/// The original's features odg does not have (or has no configuration for), in its order.
const NOT_SERVED: [&str; 6] = [
    super::inactive_features::CLUSTER_ACCESS,
    "addressbook",
    "tests",
    "dora",
    "extensions-configuration",
    "licenses",
];

#[derive(Debug, Deserialize)]
pub struct FeaturesParams {
    /// The profile whose finding types `finding-configurations` lists: absent means the first
    /// profile, an unknown name means all (the original's rule).
    #[serde(default)]
    profile: Option<String>,
}

fn state_of(available: bool) -> &'static str {
    if available {
        AVAILABLE
    } else {
        UNAVAILABLE
    }
}

pub async fn features(
    State(state): State<AppState>,
    Params(params): Params<FeaturesParams>,
) -> Result<Json<Value>, ApiError> {
    let mut features = vec![
        json!({"name": "authentication", "state": state_of(state.auth.login_available())}),
        json!({"name": "delivery-db", "state": state_of(state.compliance.is_some())}),
    ];
    match state
        .compliance
        .as_ref()
        .map(|compliance| compliance.configs())
    {
        Some(configs) => {
            let profile = configs.profile(params.profile.as_deref());
            let finding_cfgs: Vec<&Value> = configs
                .raw_findings
                .iter()
                .filter(|raw| match profile {
                    None => true,
                    Some(profile) => raw
                        .get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|kind| profile.finding_types.iter().any(|t| t == kind)),
                })
                .collect();
            features.push(json!({
                "name": "finding-configurations",
                "state": AVAILABLE,
                "finding_cfgs": finding_cfgs,
            }));
            features.push(json!({
                "name": "profiles",
                "state": state_of(!configs.profiles.is_empty()),
                "profiles": configs.profiles.iter().map(|profile| json!({
                    "name": profile.name,
                    "finding_types": profile.finding_types,
                    "special_component_ids": [],
                })).collect::<Vec<_>>(),
            }));
        }
        None => {
            features.push(json!({"name": "finding-configurations", "state": UNAVAILABLE}));
            features.push(json!({"name": "profiles", "state": UNAVAILABLE, "profiles": []}));
        }
    }
    features.push(ocm_repository_cfgs(&state));
    features.push(super::special_components::feature(&state));
    features.push(super::sprints::feature(&state));
    features.push(json!({"name": "upgrade-prs", "state": state_of(state.upgrade_prs.is_some())}));
    features.extend(
        NOT_SERVED
            .iter()
            .map(|name| json!({"name": name, "state": UNAVAILABLE})),
    );
    Ok(Json(json!({ "features": features })))
}

/// The repository mapping as the original's OCM repository configurations: the virtual
/// repositories (`<auto>` first, added when not configured, as the original does) and the OCI
/// ones, each with the repositories it resolves to. The dashboard's component page waits for
/// this feature and offers these names and URLs as `ocm_repo_url`.
fn ocm_repository_cfgs(state: &AppState) -> Value {
    let mapping = state.components.mapping();
    let filter_name = |filter: Option<&VersionFilter>| filter.map(version_filter_name);
    let virtuals = mapping.virtual_repositories().into_iter().map(|repository| {
        let mut resolved: Vec<String> = Vec::new();
        for rule in mapping.virtual_rules(&repository.name).unwrap_or_default() {
            let url = rule.repository.to_string();
            if !resolved.contains(&url) {
                resolved.push(url);
            }
        }
        json!({
            "type": "virtual",
            "name": repository.name,
            "selectors": repository.selectors.iter().map(|selector| json!({
                "required_labels": (!selector.required_labels.is_empty()).then_some(&selector.required_labels),
                "version_filter_overwrite": filter_name(selector.version_filter_overwrite.as_ref()),
            })).collect::<Vec<_>>(),
            "repositories": resolved,
        })
    });
    let ocis = mapping.rules.iter().map(|rule| {
        let repository = rule.repository.to_string();
        let (prefixes, component_filter) = match &rule.selector {
            ComponentSelector::All => (Value::Null, Value::Null),
            ComponentSelector::Prefixes(prefixes) => (json!(prefixes), Value::Null),
            ComponentSelector::Regex(regex) => (Value::Null, json!([regex.as_str()])),
        };
        json!({
            "type": "oci",
            "repository": repository,
            "prefix": prefixes,
            "prefixes": prefixes,
            "component_filter": component_filter,
            "labels": (!rule.labels.is_empty()).then_some(&rule.labels),
            "version_filter": filter_name(rule.version_filter.as_ref()).unwrap_or_else(|| "any".into()),
            "repositories": [repository],
        })
    });
    let cfgs: Vec<Value> = if mapping.rules.is_empty() {
        Vec::new()
    } else {
        virtuals.chain(ocis).collect()
    };
    json!({
        "name": "ocm-repository-cfgs",
        "state": state_of(!cfgs.is_empty()),
        "ocm_repository_cfgs": cfgs,
    })
}

/// A version filter as configured: its name, or its pattern.
fn version_filter_name(filter: &VersionFilter) -> String {
    match filter {
        VersionFilter::Any => "any".into(),
        VersionFilter::SemverAny => "semver_any".into(),
        VersionFilter::SemverReleases => "semver_releases".into(),
        VersionFilter::SemverNonReleases => "semver_non_releases".into(),
        VersionFilter::Regex(regex) => regex.as_str().into(),
    }
}

/// `{"profiles": [names]}`, empty without profiles.
pub async fn profiles(State(state): State<AppState>) -> Json<Value> {
    let names: Vec<&str> = state
        .compliance
        .as_ref()
        .map(|compliance| {
            compliance
                .configs()
                .profiles
                .iter()
                .map(|profile| profile.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "profiles": names }))
}
