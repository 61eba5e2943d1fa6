//! `GET /components/compliance-summary`: per component of the tree (walked to `recursion_depth`,
//! duplicates kept) and finding type, the worst categorisation and a scan status, as the original.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use odg_cache::CacheMode;
use odg_components::{ComponentId, GREATEST};

use crate::params::QueryParams;
use crate::routes::metadata::{compliance, timed};
use crate::{ApiError, AppState};

pub async fn summary(
    State(state): State<AppState>,
    mode: Option<Extension<CacheMode>>,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let mode = mode.map_or(CacheMode::Normal, |Extension(mode)| mode);
    let result = summary_inner(&state, &params, mode).await;
    timed(
        "compliance_summary",
        started,
        result
            .as_ref()
            .map_or_else(ApiError::status, |_| StatusCode::OK),
    );
    result
}

async fn summary_inner(
    state: &AppState,
    params: &QueryParams,
    mode: CacheMode,
) -> Result<Response, ApiError> {
    let compliance = compliance(state)?;
    let name = params.required("component_name")?.trim().to_string();
    let version = params.required("version")?.trim().replace(' ', "+");
    let repository = match params.optional("ocm_repo_url")? {
        None | Some("") => None,
        Some(url) => Some(state.components.requested_repository(url)?),
    };
    let max_depth = params.depth("recursion_depth")?;
    let profile = params
        .optional("profile")?
        .filter(|profile| !profile.is_empty());
    let version = if version == GREATEST {
        state
            .components
            .resolve_version(&name, GREATEST, repository.as_ref())
            .await?
    } else {
        version
    };
    let root = ComponentId::new(name, version);
    let summary = compliance
        .summary(&root, repository.as_ref(), max_depth, profile, mode)
        .await?;
    let body = odg_components::run_cpu_bound(move || serde_json::to_vec(&summary))
        .await
        .map_err(ApiError::from)?
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "serialisation failed"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
