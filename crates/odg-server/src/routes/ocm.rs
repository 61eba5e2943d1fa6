//! `/ocm/component`, `/ocm/component/versions` and `/ocm/component/dependencies`, with the
//! original's parameter names and response shapes.

//!
//! Answers come from the rendered-answer cache ([`odg_components::RenderedAnswer`]) and go out
//! through [`crate::representation`]: strong `ETag`s, 304s, precompressed bodies.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use odg_components::{ComponentId, Populate, RenderedAnswer, VersionQuery, WalkOptions, GREATEST};
use odg_ocm::{OcmRepositoryUrl, VersionFilter};

use crate::params::QueryParams;
use crate::representation::{answer_response, Freshness};
use crate::{ApiError, AppState};

/// Versions never contain spaces, but a `+` in an unencoded query string decodes to one.
fn version_param(params: &QueryParams, name: &str) -> Result<Option<String>, ApiError> {
    Ok(params
        .optional(name)?
        .map(|value| value.trim().replace(' ', "+")))
}

fn repository_param(
    state: &AppState,
    params: &QueryParams,
) -> Result<Option<OcmRepositoryUrl>, ApiError> {
    match params.optional("ocm_repo_url")? {
        None | Some("") => Ok(None),
        Some(url) => Ok(Some(state.components.requested_repository(url)?)),
    }
}

/// Resolves `component_name` + `version` (default `greatest`) to a concrete component version,
/// and says how long an answer about it holds: a pinned version's forever, `greatest`'s only
/// until the version list changes.
async fn requested_component(
    state: &AppState,
    params: &QueryParams,
    repository: Option<&OcmRepositoryUrl>,
) -> Result<(ComponentId, Freshness), ApiError> {
    let name = params.required("component_name")?.trim().to_string();
    let version = version_param(params, "version")?.filter(|version| !version.is_empty());
    let version = version.as_deref().unwrap_or(GREATEST);
    let freshness = if version == GREATEST {
        Freshness::Revalidate
    } else {
        Freshness::Immutable
    };
    let resolved = state
        .components
        .resolve_version(&name, version, repository)
        .await?;
    Ok((ComponentId::new(name, resolved), freshness))
}

/// GET `/ocm/component`: the descriptor as JSON, or with `raw=true` the stored document as a JSON string.
pub async fn component(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let raw = params.boolean("raw")?;
    let _ignore_cache = params.boolean("ignore_cache")?;
    let repository = repository_param(&state, &params)?;
    let (component, freshness) = requested_component(&state, &params, repository.as_ref()).await?;
    let answer = state
        .components
        .descriptor_answer(&component, repository.as_ref(), raw)
        .await?;
    answer_response(&headers, &answer, freshness).await
}

/// GET `/ocm/component/versions`: ascending version strings, the greatest `max` of them.
/// Not cached as bytes (the version lists are, with their own freshness); a list renders in
/// microseconds, inline.
pub async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let name = params.required("component_name")?.trim().to_string();
    let repository = repository_param(&state, &params)?;
    let version_filter = match params.optional("version_filter")? {
        None | Some("") => None,
        Some(filter) => Some(
            filter
                .parse::<VersionFilter>()
                .map_err(|error| ApiError::bad_request(format!("version_filter: {error}")))?,
        ),
    };
    let date = |name: &str| -> Result<Option<String>, ApiError> {
        match params.optional(name)? {
            None | Some("") => Ok(None),
            Some(value) if odg_components::is_iso_date(value) => Ok(Some(value.to_string())),
            Some(value) => Err(ApiError::bad_request(format!(
                "the parameter {name} must be a date as YYYY-MM-DD, got {value:?}"
            ))),
        }
    };
    let query = VersionQuery {
        version_filter,
        upper_bound: version_param(&params, "version")?.filter(|version| !version.is_empty()),
        max: params.unsigned("max", 5)?,
        start_date: date("start_date")?,
        end_date: date("end_date")?,
    };
    let versions = state
        .components
        .versions(&name, repository.as_ref(), &query)
        .await?;
    let json = serde_json::to_vec(&versions).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "serialisation failed",
        )
    })?;
    answer_response(&headers, &RenderedAnswer::new(json), Freshness::Revalidate).await
}

/// GET `/ocm/component/dependencies`: the tree depth first, each element with its `comp_ref` path.
pub async fn dependencies(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Response, ApiError> {
    let populate = match params.optional("populate")? {
        None | Some("") | Some("all") => Populate::All,
        Some("componentReferences") => Populate::ComponentReferences,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "populate={other:?} is not implemented; use all or componentReferences"
            )))
        }
    };
    let defaults = state.components.walk_options().clone();
    let options = WalkOptions {
        max_depth: params.depth("recursion_depth")?.or(defaults.max_depth),
        ..defaults
    };
    let repository = repository_param(&state, &params)?;
    let (root, freshness) = requested_component(&state, &params, repository.as_ref()).await?;
    let answer = state
        .components
        .dependencies_answer(&root, repository.as_ref(), &options, populate)
        .await?;
    answer_response(&headers, &answer, freshness).await
}
