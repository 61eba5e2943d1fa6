//! `DELETE /cache`: invalidation through every tier of every pod, for callers with the cache-admin role.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use odg_cache::{EntryId, Kind, Selector};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::ROLE_CACHE_ADMIN;
use crate::params::{Params, VersionParam};
use crate::{ApiError, AppState};

/// Exactly one selector: `id`, `component_name` (+ `version`), `kind`, or `all=true`.
#[derive(Debug, Deserialize)]
pub struct InvalidateParams {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    component_name: Option<String>,
    #[serde(default)]
    version: Option<VersionParam>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    all: bool,
}

fn selector(params: &InvalidateParams) -> Result<Selector, ApiError> {
    let id = params.id.as_deref();
    let name = params.component_name.as_deref();
    let version = params.version.as_ref().map(|VersionParam(version)| version);
    let kind = params.kind.as_deref();
    let all = params.all;
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
    Ok(if let Some(id) = id {
        Selector::Id(EntryId::from_hex(id)?)
    } else if let Some(name) = name {
        odg_ocm::validate_component_name(name)
            .map_err(|error| ApiError::bad_request(error.to_string()))?;
        match version {
            Some(version) => Selector::component_version(name, version),
            None => Selector::component(name),
        }
    } else if let Some(kind) = kind {
        Selector::Kind(Kind::new(kind)?)
    } else {
        Selector::All
    })
}

pub async fn invalidate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<InvalidateParams>,
) -> Result<Json<Value>, ApiError> {
    let principal = state
        .auth
        .authorize(&headers, "DELETE", "/cache", ROLE_CACHE_ADMIN)?;
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
        Err(error) => Err(
            ApiError::invalidation_incomplete("this pod dropped the entries", error)
                .with("invalidated", selector_json),
        ),
    }
}
