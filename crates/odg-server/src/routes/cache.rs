//! `DELETE /cache`: invalidation through every tier of every pod, for callers with the cache-admin role.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use odg_cache::{CacheError, EntryId, Kind, Selector};
use serde_json::{json, Value};

use crate::auth::ROLE_CACHE_ADMIN;
use crate::params::QueryParams;
use crate::{ApiError, AppState};

/// Exactly one selector: `id`, `component_name` (+ `version`), `kind`, or `all=true`.
fn selector(params: &QueryParams) -> Result<Selector, ApiError> {
    let id = params.optional("id")?.filter(|value| !value.is_empty());
    let name = params
        .optional("component_name")?
        .filter(|value| !value.is_empty());
    let version = params
        .optional("version")?
        .filter(|value| !value.is_empty());
    let kind = params.optional("kind")?.filter(|value| !value.is_empty());
    let all = params.boolean("all")?;
    let given = [id.is_some(), name.is_some(), kind.is_some(), all]
        .iter()
        .filter(|given| **given)
        .count();
    if given != 1 {
        return Err(ApiError::bad_request(
            "give exactly one of: id, component_name (optionally with version), kind, all=true",
        ));
    }
    if version.is_some() && name.is_none() {
        return Err(ApiError::bad_request("version needs component_name"));
    }
    let invalid = |error: CacheError| ApiError::bad_request(error.to_string());
    Ok(if let Some(id) = id {
        Selector::Id(EntryId::from_hex(id).map_err(invalid)?)
    } else if let Some(name) = name {
        odg_ocm::validate_component_name(name)
            .map_err(|error| ApiError::bad_request(error.to_string()))?;
        match version {
            Some(version) => Selector::component_version(name, &version.replace(' ', "+")),
            None => Selector::component(name),
        }
    } else if let Some(kind) = kind {
        Selector::Kind(Kind::new(kind).map_err(invalid)?)
    } else {
        Selector::All
    })
}

pub async fn invalidate(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authorize(&headers, ROLE_CACHE_ADMIN)?;
    let selector = selector(&params)?;
    tracing::info!(subject = %principal.subject, selector = ?selector, "cache invalidation");
    let selector_json =
        serde_json::to_value(odg_cache::SelectorMessage::from(&selector)).unwrap_or(Value::Null);
    match state.components.invalidate(&selector).await {
        Ok(report) => Ok(Json(json!({
            "invalidated": selector_json,
            "memoryEntries": report.memory_entries,
            "diskEntries": report.disk_entries,
            "published": report.published,
        }))),
        Err(CacheError::SharedUnavailable(reason)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this pod dropped the entries, but the shared cache is unreachable, so other pods were not told: {reason}; retry"
            ),
        )
        .with("invalidated", selector_json)
        .with_retry_after(5)),
        Err(error) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string()).with_retry_after(5)),
    }
}
