//! `/ocm/component`, `/ocm/component/versions` and `/ocm/component/dependencies`, with the
//! original's parameter names and response shapes.
//!
//! Answers come from the rendered-answer cache ([`odg_components::RenderedAnswer`]) and go out
//! through [`crate::representation`]: strong `ETag`s, 304s, precompressed bodies.

use axum::extract::State;
use axum::response::Response;
use odg_components::{
    ComponentId, Populate, RenderedAnswer, VersionQuery, WalkOptions, GREATEST,
    IGNORE_LOOKUP_NEEDS_REPOSITORY,
};
use odg_ocm::{RepositoryChoice, VersionFilter};
use serde::Deserialize;

use crate::params::{parsed_option, DateParam, DepthParam, Params, VersionParam};
use crate::representation::{answer_response, Freshness, Negotiation};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct ComponentParams {
    component_name: String,
    #[serde(default)]
    version: Option<VersionParam>,
    #[serde(default)]
    ocm_repo_url: Option<String>,
    /// The stored document as a JSON string instead of the descriptor as JSON.
    #[serde(default)]
    raw: bool,
    /// Only `ocm_repo_url` is asked for the descriptor, not the repository mapping's candidates
    /// (the original's rule; `ocm_repo_url` is then required).
    #[serde(default)]
    ignore_lookup: bool,
}

#[derive(Debug, Deserialize)]
pub struct VersionsParams {
    component_name: String,
    #[serde(default)]
    ocm_repo_url: Option<String>,
    #[serde(default, deserialize_with = "parsed_option")]
    version_filter: Option<VersionFilter>,
    /// Only versions up to this one.
    #[serde(default)]
    version: Option<VersionParam>,
    #[serde(default = "default_max_versions")]
    max: usize,
    #[serde(default)]
    start_date: Option<DateParam>,
    #[serde(default)]
    end_date: Option<DateParam>,
}

fn default_max_versions() -> usize {
    5
}

/// `populate`: what each element of `componentDependencies` carries.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
enum PopulateParam {
    #[default]
    #[serde(rename = "all")]
    All,
    #[serde(rename = "componentReferences")]
    ComponentReferences,
}

#[derive(Debug, Deserialize)]
pub struct DependenciesParams {
    component_name: String,
    #[serde(default)]
    version: Option<VersionParam>,
    #[serde(default)]
    ocm_repo_url: Option<String>,
    #[serde(default)]
    populate: PopulateParam,
    /// Negative or absent: the configured default (unlimited unless configured).
    #[serde(default)]
    recursion_depth: Option<DepthParam>,
}

/// `ocm_repo_url`, checked against the allowed repositories (never an open proxy).
pub(crate) fn requested_repository(
    state: &AppState,
    url: Option<&str>,
) -> Result<Option<RepositoryChoice>, ApiError> {
    url.map(|url| state.components.requested_repository(url))
        .transpose()
        .map_err(ApiError::from)
}

/// The original refuses `ignore_lookup` without `ocm_repo_url` before looking anything up; a
/// virtual repository's name is no repository to look in alone.
pub(crate) fn check_ignore_lookup(
    ignore_lookup: bool,
    repository: Option<&RepositoryChoice>,
) -> Result<(), ApiError> {
    if ignore_lookup && repository.and_then(RepositoryChoice::repository).is_none() {
        return Err(ApiError::bad_request(IGNORE_LOOKUP_NEEDS_REPOSITORY));
    }
    Ok(())
}

/// Resolves a name + version (default `greatest`) to a concrete component version, and says how
/// long an answer about it holds: a pinned version's forever, `greatest`'s only until the
/// version list changes.
pub(crate) async fn requested_component(
    state: &AppState,
    name: &str,
    version: Option<&VersionParam>,
    repository: Option<&RepositoryChoice>,
) -> Result<(ComponentId, Freshness), ApiError> {
    let version = version.map_or(GREATEST, |VersionParam(version)| version.as_str());
    let freshness = if version == GREATEST {
        Freshness::Revalidate
    } else {
        Freshness::Immutable
    };
    let resolved = state
        .components
        .resolve_version(name, version, repository)
        .await?;
    Ok((ComponentId::new(name, resolved), freshness))
}

/// GET `/ocm/component`: the descriptor as JSON, or with `raw=true` the stored document as a JSON string.
pub async fn component(
    State(state): State<AppState>,
    negotiation: Negotiation,
    Params(params): Params<ComponentParams>,
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
        .descriptor_answer(
            &component,
            repository.as_ref(),
            params.raw,
            params.ignore_lookup,
        )
        .await?;
    answer_response(&negotiation, &answer, freshness).await
}

/// GET `/ocm/component/versions`: ascending version strings, the greatest `max` of them.
/// Not cached as bytes (the version lists are, with their own freshness); a list renders in
/// microseconds, inline.
pub async fn versions(
    State(state): State<AppState>,
    negotiation: Negotiation,
    Params(params): Params<VersionsParams>,
) -> Result<Response, ApiError> {
    let repository = requested_repository(&state, params.ocm_repo_url.as_deref())?;
    let query = VersionQuery {
        version_filter: params.version_filter,
        upper_bound: params.version.map(|VersionParam(version)| version),
        max: params.max,
        start_date: params.start_date.map(|DateParam(date)| date),
        end_date: params.end_date.map(|DateParam(date)| date),
    };
    let versions = state
        .components
        .versions(&params.component_name, repository.as_ref(), &query)
        .await?;
    let json = serde_json::to_vec(&versions).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "serialisation failed",
        )
    })?;
    answer_response(
        &negotiation,
        &RenderedAnswer::new(json),
        Freshness::Revalidate,
    )
    .await
}

/// GET `/ocm/component/dependencies`: the tree depth first, each element with its `comp_ref` path.
pub async fn dependencies(
    State(state): State<AppState>,
    negotiation: Negotiation,
    Params(params): Params<DependenciesParams>,
) -> Result<Response, ApiError> {
    let populate = match params.populate {
        PopulateParam::All => Populate::All,
        PopulateParam::ComponentReferences => Populate::ComponentReferences,
    };
    let defaults = state.components.walk_options().clone();
    let options = WalkOptions {
        // a negative depth asks for no limit but the configured one
        max_depth: params
            .recursion_depth
            .and_then(|DepthParam(depth)| depth)
            .or(defaults.max_depth),
        ..defaults
    };
    let repository = requested_repository(&state, params.ocm_repo_url.as_deref())?;
    let (root, freshness) = requested_component(
        &state,
        &params.component_name,
        params.version.as_ref(),
        repository.as_ref(),
    )
    .await?;
    let answer = state
        .components
        .dependencies_answer(&root, repository.as_ref(), &options, populate)
        .await?;
    answer_response(&negotiation, &answer, freshness).await
}
