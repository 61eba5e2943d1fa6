//! `GET /features` and `GET /profiles` in the original's shapes: every feature the original knows,
//! each `available` only if this installation serves it (the dashboard hides what is unavailable).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::params::Params;
use crate::{ApiError, AppState};

const AVAILABLE: &str = "available";
const UNAVAILABLE: &str = "unavailable";

/// The original's features odg does not have (or has no configuration for), in its order.
const NOT_SERVED: [&str; 9] = [
    "cluster-access",
    "addressbook",
    "special-components",
    "sprints",
    "tests",
    "dora",
    "upgrade-prs",
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
    // odg serves only the OCM repositories of its own mapping, not the original's
    // `ocm-repository-cfgs` (virtual repositories, `<auto>`): reported unavailable.
    features.push(json!({"name": "ocm-repository-cfgs", "state": UNAVAILABLE}));
    features.extend(
        NOT_SERVED
            .iter()
            .map(|name| json!({"name": name, "state": UNAVAILABLE})),
    );
    Ok(Json(json!({ "features": features })))
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
