//! `DELETE /cache`: invalidation through every tier of every pod, for callers with the cache-admin role.
//!
//! It also takes the original's forms, so that its clients (`odg_client.mark_cache_for_deletion`,
//! which extensions call after writing findings) work unchanged: `id` is an odg entry id and an
//! original cache id alike (both 32 hex digits), a body holds one of the original's cache
//! descriptors instead of parameters, and `deleteAfter` schedules the deletion. An original id
//! marks the row in the original's `cache` table, which odg shares during a switch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
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
    /// The original's schedule: an RFC 3339 time; now when absent or past.
    #[serde(default, rename = "deleteAfter")]
    delete_after: Option<String>,
}

/// Scheduled invalidations waiting in this process at most (each is a sleeping task).
const MAX_SCHEDULED: usize = 10_000;
/// How far ahead an invalidation may be scheduled.
const MAX_SCHEDULE_AHEAD: Duration = Duration::from_secs(7 * 24 * 3600);
static SCHEDULED: AtomicUsize = AtomicUsize::new(0);

/// What one request asks for: odg's selector, and the original's cache id to mark.
struct Invalidation {
    selector: Option<Selector>,
    original_id: Option<String>,
}

fn no_selector_params(params: &InvalidateParams) -> bool {
    params.id.is_none()
        && params.component_name.is_none()
        && params.version.is_none()
        && params.kind.is_none()
        && !params.all
}

fn invalidation(params: &InvalidateParams, body: &Bytes) -> Result<Invalidation, ApiError> {
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    if !has_body || !no_selector_params(params) {
        if has_body {
            return Err(ApiError::bad_request(
                "give the selector as parameters or a cache descriptor as the body, not both",
            ));
        }
        let selector = selector(params)?;
        return Ok(Invalidation {
            original_id: params.id.as_ref().map(|id| id.trim().to_ascii_lowercase()),
            selector: Some(selector),
        });
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the body is not JSON: {error}")))?;
    let descriptor = odg_delivery_db::original_cache_descriptor(&body)
        .map_err(|error| ApiError::bad_request(format!("cache descriptor: {error}")))?;
    let selector = match &descriptor.component {
        Some((name, version)) => {
            odg_ocm::validate_component_name(name)
                .map_err(|error| ApiError::bad_request(error.to_string()))?;
            Some(Selector::component_version(name, version))
        }
        None => None,
    };
    Ok(Invalidation {
        selector,
        original_id: Some(descriptor.id),
    })
}

/// `deleteAfter` as a delay from now (`None`: now or past) and its RFC 3339 form.
fn schedule(delete_after: Option<&str>) -> Result<(Option<Duration>, Option<String>), ApiError> {
    let Some(text) = delete_after else {
        return Ok((None, None));
    };
    let at = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|error| {
        ApiError::bad_request(format!(
            "deleteAfter {text:?} is not a time with a zone (RFC 3339): {error}"
        ))
    })?;
    let ahead = (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
        .filter(|ahead| !ahead.is_zero());
    if ahead.is_some_and(|ahead| ahead > MAX_SCHEDULE_AHEAD) {
        return Err(ApiError::bad_request(
            "deleteAfter is more than 7 days ahead; odg schedules invalidations in memory",
        ));
    }
    Ok((ahead, Some(at.to_rfc3339())))
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
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let principal = state
        .auth
        .authorize(&headers, "DELETE", "/cache", ROLE_CACHE_ADMIN)?;
    let Invalidation {
        selector,
        original_id,
    } = invalidation(&params, &body)?;
    let (delay, delete_after) = schedule(params.delete_after.as_deref())?;
    tracing::info!(subject = %principal.subject, selector = ?selector, original_id, ?delay, "cache invalidation");

    // The original's cache table, when this installation shares the original's database.
    let original_marked = match (&original_id, &state.compliance) {
        (Some(id), Some(compliance)) => Some(
            compliance
                .db()
                .mark_original_cache_entry(id, delete_after.as_deref())
                .await?,
        ),
        _ => None,
    };
    let selector_json = selector
        .as_ref()
        .and_then(|selector| serde_json::to_value(odg_cache::SelectorMessage::from(selector)).ok())
        .unwrap_or(Value::Null);
    let mut answer = json!({"invalidated": selector_json});
    if let Some(marked) = original_marked {
        answer["originalCacheEntryMarked"] = json!(marked);
    }
    let Some(selector) = selector else {
        return Ok(Json(answer));
    };
    if let Some(delay) = delay {
        if SCHEDULED.fetch_add(1, Ordering::SeqCst) >= MAX_SCHEDULED {
            SCHEDULED.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too many scheduled invalidations are waiting; retry later or invalidate now",
            )
            .with_retry_after(60));
        }
        let components = state.components.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(error) = components.invalidate(&selector).await {
                tracing::warn!(%error, ?selector, "scheduled invalidation incomplete");
            }
            SCHEDULED.fetch_sub(1, Ordering::SeqCst);
        });
        answer["scheduledFor"] = json!(delete_after);
        return Ok(Json(answer));
    }
    match state.components.invalidate(&selector).await {
        Ok(report) => {
            answer["memoryEntries"] = json!(report.memory_entries);
            answer["diskEntries"] = json!(report.disk_entries);
            answer["published"] = json!(report.published);
            Ok(Json(answer))
        }
        Err(error) => Err(
            ApiError::invalidation_incomplete("this pod dropped the entries", error)
                .with("invalidated", selector_json),
        ),
    }
}
