//! GET `/ocm/component/responsibles`: who is responsible for a component version or one of its
//! artefacts, from the descriptor's responsibles label (see
//! [`odg_components::responsibles_json`] for the shape and what stands in for the original's
//! GitHub fallback). Served as a cached [`odg_components::RenderedAnswer`] with its `ETag`.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::params::{Params, VersionParam};
use crate::representation::{answer_response, Negotiation};
use crate::routes::ocm::{check_ignore_lookup, requested_component, requested_repository};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct ResponsiblesParams {
    component_name: String,
    #[serde(default)]
    version: Option<VersionParam>,
    /// A resource or source of the component: its own label, when it has one, wins.
    #[serde(default)]
    artifact_name: Option<String>,
    #[serde(default)]
    ocm_repo_url: Option<String>,
    /// Only `ocm_repo_url` is asked for the descriptor (the original's rule, as on `/ocm/component`).
    #[serde(default)]
    ignore_lookup: bool,
}

pub async fn responsibles(
    State(state): State<AppState>,
    negotiation: Negotiation,
    Params(params): Params<ResponsiblesParams>,
) -> Result<Response, ApiError> {
    let repository = requested_repository(&state, params.ocm_repo_url.as_deref())?;
    check_ignore_lookup(params.ignore_lookup, repository.as_ref())?;
    let (component, freshness) = requested_component(
        &state,
        &params.component_name,
        params.version.as_ref(),
        repository.as_ref(),
    )
    .await?;
    let answer = state
        .components
        .responsibles_answer(
            &component,
            repository.as_ref(),
            params.artifact_name.as_deref(),
            params.ignore_lookup,
        )
        .await?;
    answer_response(&negotiation, &answer, freshness).await
}
