//! `GET /components/upgrade-prs`: a component's upgrade pull requests (see
//! [`crate::upgrade_prs`]), with the original's parameters: `componentName` (+
//! `componentVersion`, default the greatest, and `ocmRepo`), whose main source's repository is
//! asked, or `repoUrl`; `state` `open` (default), `closed` or `all`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::params::{Params, VersionParam};
use crate::routes::ocm::{requested_component, requested_repository};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePrsParams {
    #[serde(default)]
    component_name: Option<String>,
    #[serde(default)]
    component_version: Option<VersionParam>,
    #[serde(default)]
    repo_url: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    ocm_repo: Option<String>,
}

pub async fn upgrade_prs(
    State(state): State<AppState>,
    Params(params): Params<UpgradePrsParams>,
) -> Result<Json<Value>, ApiError> {
    let Some(upgrade_prs) = &state.upgrade_prs else {
        return Err(ApiError::feature_inactive(&["upgrade-prs"]));
    };
    let pr_state = params.state.as_deref().unwrap_or("open");
    if !matches!(pr_state, "open" | "closed" | "all") {
        return Err(ApiError::bad_request(format!(
            "state {pr_state:?}: use open, closed or all"
        )));
    }
    let repo_url = match (&params.component_name, &params.repo_url) {
        (Some(name), None) => {
            let repository = requested_repository(&state, params.ocm_repo.as_deref())?;
            let (component, _) = requested_component(
                &state,
                name,
                params.component_version.as_ref(),
                repository.as_ref(),
            )
            .await?;
            let fetched = state
                .components
                .descriptor(&component, repository.as_ref())
                .await?;
            // the original asks the component name as a repository when there is no source
            odg_components::main_source_repo_url(&fetched.descriptor.component)
                .unwrap_or(name)
                .to_string()
        }
        (None, Some(repo_url)) => repo_url.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "Exactly one of componentName and repoUrl must be passed",
            ))
        }
    };
    let pulls = upgrade_prs
        .of_repository(&repo_url, pr_state)
        .await
        .map_err(|error| ApiError::new(StatusCode::BAD_GATEWAY, error))?;
    Ok(Json(Value::Array(pulls)))
}
