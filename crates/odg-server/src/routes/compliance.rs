//! `GET /components/compliance-summary`: per component of the tree (walked to `recursion_depth`,
//! duplicates kept) and finding type, the worst categorisation and a scan status, as the original.

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use odg_cache::CacheMode;
use odg_components::{ComponentId, GREATEST};
use serde::Deserialize;

use crate::params::{DepthParam, Params, VersionParam};
use crate::routes::metadata::{compliance, timed};
use crate::routes::ocm::requested_repository;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct SummaryParams {
    component_name: String,
    /// Required here (the original's rule); `greatest` is resolved.
    version: VersionParam,
    #[serde(default)]
    ocm_repo_url: Option<String>,
    /// Absent or negative: the whole tree.
    #[serde(default)]
    recursion_depth: Option<DepthParam>,
    #[serde(default)]
    profile: Option<String>,
}

pub async fn summary(
    State(state): State<AppState>,
    mode: Option<Extension<CacheMode>>,
    Params(params): Params<SummaryParams>,
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
    params: &SummaryParams,
    mode: CacheMode,
) -> Result<Response, ApiError> {
    let compliance = compliance(state)?;
    let name = params.component_name.clone();
    let VersionParam(version) = params.version.clone();
    let repository = requested_repository(state, params.ocm_repo_url.as_deref())?;
    let max_depth = params.recursion_depth.and_then(|DepthParam(depth)| depth);
    let profile = params.profile.as_deref();
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
    let body = odg_offload::run_cpu_bound(move || serde_json::to_vec(&summary))
        .await
        .map_err(ApiError::from)?
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "serialisation failed"))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
