//! `PUT` and `DELETE /artefacts/metadata` (callers with the metadata-writer role) and
//! `POST /artefacts/metadata/query`, with the original's body shapes. A write is one
//! transaction: a malformed entry rejects the whole request with 400 naming the entry, and
//! nothing is written. A write answers only after the summary parts it affects are invalidated
//! in every pod (through Redis); if the other pods cannot be told, it answers 503 (the rows are
//! written: retrying is safe, writes are idempotent upserts).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, StreamExt};
use metrics::histogram;
use odg_cache::CacheError;
use odg_compliance::ComplianceService;
use odg_delivery_db::{
    prepare_entries, ComponentArtefactId, LocalArtefactId, MetadataQuery, QueryEntry,
};
use serde_json::{json, Value};

use crate::auth::ROLE_METADATA_WRITER;
use crate::params::Params;
use crate::{ApiError, AppState};

/// Largest request body of the metadata routes (scanners write findings in bulk).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Histogram: seconds per metadata request by `route` (put, delete, query, compliance_summary)
/// and `outcome` (ok, invalid, unauthorized, unavailable, error).
pub const METADATA_REQUEST_DURATION: &str = "odg_metadata_request_duration_seconds";

/// Records a handler's duration with its route and outcome label.
pub(crate) fn timed(route: &'static str, started: Instant, status: StatusCode) {
    let outcome = match status.as_u16() {
        200..=299 => "ok",
        401 | 403 => "unauthorized",
        400..=499 => "invalid",
        503 => "unavailable",
        _ => "error",
    };
    histogram!(METADATA_REQUEST_DURATION, "route" => route, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

pub(crate) fn compliance(state: &AppState) -> Result<&ComplianceService, ApiError> {
    state.compliance.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the delivery database is not configured",
        )
    })
}

/// `{"entries": [...]}`; other top-level keys are refused. An empty body means no entries.
pub(crate) fn entries_of(body: &Bytes) -> Result<Vec<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the body is not JSON: {error}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad_request(
            "the body must be an object {\"entries\": [...]}",
        ));
    };
    if let Some(unknown) = object.keys().find(|key| key.as_str() != "entries") {
        return Err(ApiError::bad_request(format!(
            "unknown key {unknown:?} in the body; expected {{\"entries\": [...]}}"
        )));
    }
    match object.get("entries") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => Ok(entries.clone()),
        Some(_) => Err(ApiError::bad_request("entries must be a list")),
    }
}

fn invalidation_error(error: CacheError) -> ApiError {
    ApiError::invalidation_incomplete("the metadata is written", error)
}

/// Writes `entries` in one transaction (the original's ids and update rules), then invalidates
/// the summary parts they affect in every pod: what every metadata write does.
pub(crate) async fn write_entries(
    compliance: &ComplianceService,
    entries: &[Value],
) -> Result<odg_delivery_db::PutReport, ApiError> {
    let prepared = prepare_entries(entries)?;
    let configs = compliance.configs();
    let report = compliance
        .db()
        .put(&prepared, &|finding_type: &str| configs.reuse(finding_type))
        .await?;
    compliance
        .invalidate_for(&prepared)
        .await
        .map_err(invalidation_error)?;
    Ok(report)
}

/// PUT `/artefacts/metadata`: 201 after one commit; 200 for no entries.
pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = put_inner(&state, &headers, &body).await;
    let status = result
        .as_ref()
        .map_or_else(ApiError::status, |(status, _)| *status);
    timed("put", started, status);
    result.map(|(status, body)| (status, Json(body)).into_response())
}

async fn put_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(StatusCode, Value), ApiError> {
    let principal =
        state
            .auth
            .authorize(headers, "PUT", "/artefacts/metadata", ROLE_METADATA_WRITER)?;
    let compliance = compliance(state)?;
    let entries = entries_of(body)?;
    if entries.is_empty() {
        return Ok((StatusCode::OK, json!({"inserted": 0, "updated": 0})));
    }
    let report = write_entries(compliance, &entries).await?;
    tracing::debug!(subject = %principal.subject, inserted = report.inserted, updated = report.updated, "artefact metadata written");
    Ok((
        StatusCode::CREATED,
        json!({"inserted": report.inserted, "updated": report.updated}),
    ))
}

/// DELETE `/artefacts/metadata`: deletes each entry by its computed id; 204.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = delete_inner(&state, &headers, &body).await;
    let status = result
        .as_ref()
        .map_or_else(ApiError::status, |()| StatusCode::NO_CONTENT);
    timed("delete", started, status);
    result.map(|()| StatusCode::NO_CONTENT.into_response())
}

async fn delete_inner(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<(), ApiError> {
    let principal = state.auth.authorize(
        headers,
        "DELETE",
        "/artefacts/metadata",
        ROLE_METADATA_WRITER,
    )?;
    let compliance = compliance(state)?;
    let prepared = prepare_entries(&entries_of(body)?)?;
    let deleted = compliance.db().delete(&prepared).await?;
    tracing::debug!(subject = %principal.subject, deleted, "artefact metadata deleted");
    compliance
        .invalidate_for(&prepared)
        .await
        .map_err(invalidation_error)?;
    Ok(())
}

/// The metadata query's filters, each repeatable (OR'd within, AND'd across).
#[derive(Debug, Default, serde::Deserialize)]
pub struct QueryFilterParams {
    #[serde(default, rename = "type")]
    types: Vec<String>,
    #[serde(default, rename = "referenced_type")]
    referenced_types: Vec<String>,
    #[serde(default, rename = "datasource")]
    datasources: Vec<String>,
}

/// POST `/artefacts/metadata/query`: repeatable `type`, `referenced_type`, `datasource`; body
/// `{"entries": [ComponentArtefactId...]}` (OR'd); the matching rules of the original.
pub async fn query(
    State(state): State<AppState>,
    Params(params): Params<QueryFilterParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = query_inner(&state, params, &body).await;
    let status = result
        .as_ref()
        .map_or_else(ApiError::status, |_| StatusCode::OK);
    timed("query", started, status);
    let rows = result?;
    let body = odg_offload::run_cpu_bound(move || serde_json::to_vec(&Value::Array(rows)))
        .await
        .map_err(ApiError::from)?
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "serialisation failed"))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

async fn query_inner(
    state: &AppState,
    params: QueryFilterParams,
    body: &Bytes,
) -> Result<Vec<Value>, ApiError> {
    let compliance = compliance(state)?;
    let values = entries_of(body)?;
    let limits = state.metadata_query;
    if values.len() > limits.max_entries {
        return Err(ApiError::bad_request(format!(
            "the body holds {} entries; at most {} are allowed per query, send them in batches",
            values.len(),
            limits.max_entries
        ))
        .with("max_entries", json!(limits.max_entries)));
    }
    let mut seen = HashSet::new();
    let mut ids: Vec<ComponentArtefactId> = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let id = ComponentArtefactId::from_json(value, false).map_err(|error| {
            ApiError::bad_request(format!("entries[{index}].{error}")).with("entry", json!(index))
        })?;
        // a repeated entry adds nothing to the OR of the entries
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    let version_artefacts = version_artefacts_of(compliance, &ids, limits.lookup_concurrency).await;
    let entries = ids
        .into_iter()
        .map(|id| {
            let artefacts = match (&id.component_name, &id.component_version) {
                (Some(name), Some(version)) => version_artefacts
                    .get(&(name.clone(), version.clone()))
                    .cloned()
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            QueryEntry {
                id,
                version_artefacts: artefacts,
            }
        })
        .collect();
    let query = MetadataQuery {
        types: params.types,
        referenced_types: params.referenced_types,
        datasources: params.datasources,
        entries,
    };
    let rows = compliance.db().query(&query).await?;
    let configs = compliance.configs();
    Ok(rows
        .into_iter()
        .filter(|row| {
            configs
                .get(&row.metadata.meta.r#type)
                .is_none_or(|config| config.filter.accepts(&row.metadata.artefact))
        })
        .map(|row| row.metadata.to_json())
        .collect())
}

/// The artefacts of each distinct component version the entries name (for the version rule):
/// one descriptor lookup per version, through the cache, `concurrency` at a time, so that the
/// registry sees at most one request chain per distinct version however the entries repeat.
async fn version_artefacts_of(
    compliance: &ComplianceService,
    ids: &[ComponentArtefactId],
    concurrency: usize,
) -> HashMap<(String, String), Vec<LocalArtefactId>> {
    // owned, so that the lookups' futures borrow nothing of the request (they must be `Send`
    // for any lifetime, which borrowed tuples in a stream closure cannot show the compiler)
    let versions: HashSet<(String, String)> = ids
        .iter()
        .filter_map(|id| Some((id.component_name.clone()?, id.component_version.clone()?)))
        .collect();
    stream::iter(versions)
        .map(|(name, version)| async move {
            let artefacts = compliance.version_artefacts(&name, &version).await;
            ((name, version), artefacts)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}
