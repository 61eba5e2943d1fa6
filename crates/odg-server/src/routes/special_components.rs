//! The landing page's components (the original's "special components"), from configuration:
//! reported in `/features` as `special-components` (unavailable when none are configured), and
//! `GET /special-component/current-dependencies?id=...`. odg takes their versions as written
//! (a version or `greatest`, which the dashboard resolves); the original's `currentVersion`
//! lookups (a file in a GitHub repository) are not supported, so the current versions it
//! reports are `null`, as the original's are without them.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::params::Params;
use crate::{ApiError, AppState};

/// One landing-page component, in the original's field names (what the dashboard reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpecialComponent {
    /// Unique and never reused: the dashboard keys per-user settings by it.
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// Groups components in the dashboard's navigation.
    #[serde(rename = "type")]
    pub kind: String,
    /// A version, or `greatest`.
    pub version: String,
    #[serde(default)]
    pub icon: Option<String>,
    #[serde(default)]
    pub release_pipeline_url: Option<String>,
    #[serde(default)]
    pub ocm_repo: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<SpecialComponentDependency>,
}

/// A component shown with a special component's current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpecialComponentDependency {
    pub name: String,
    pub display_name: String,
}

/// The `/features` entry.
pub fn feature(state: &AppState) -> Value {
    let components: Vec<Value> = state
        .special_components
        .iter()
        .map(|component| {
            let mut value = json!(component);
            if let Some(object) = value.as_object_mut() {
                // the original's fields odg has no source for
                object.insert("sprintRules".into(), Value::Null);
                object.insert("currentVersion".into(), Value::Null);
                if let Some(dependencies) =
                    object.get_mut("dependencies").and_then(Value::as_array_mut)
                {
                    for dependency in dependencies {
                        if let Some(dependency) = dependency.as_object_mut() {
                            dependency.insert("currentVersion".into(), Value::Null);
                        }
                    }
                }
            }
            value
        })
        .collect();
    let state = if components.is_empty() {
        "unavailable"
    } else {
        "available"
    };
    json!({"name": "special-components", "state": state, "specialComponents": components})
}

#[derive(Debug, Deserialize)]
pub struct CurrentDependenciesParams {
    id: String,
}

/// `GET /special-component/current-dependencies?id=`: the component's display name and its
/// dependencies; `{}` for an unknown id (the original's answer); 400 `feature-inactive` when no
/// special components are configured.
pub async fn current_dependencies(
    State(state): State<AppState>,
    Params(params): Params<CurrentDependenciesParams>,
) -> Result<Json<Value>, ApiError> {
    if state.special_components.is_empty() {
        return Err(ApiError::feature_inactive(&["special-components"]));
    }
    let Some(component) = state
        .special_components
        .iter()
        .find(|component| component.id == params.id)
    else {
        return Ok(Json(json!({})));
    };
    Ok(Json(json!({
        "displayName": component.display_name,
        "componentDependencies": component.dependencies.iter().map(|dependency| json!({
            "name": dependency.name,
            "displayName": dependency.display_name,
            "version": null,
        })).collect::<Vec<_>>(),
        "version": null,
    })))
}
