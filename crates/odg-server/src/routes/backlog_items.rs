//! `/service-extensions/backlog-items`: work items for the extensions (scan this artefact), with
//! the original's parameters, bodies and answers, kept in the delivery DB (`odg_backlog_items`)
//! where the original keeps Kubernetes custom resources. An item is named as the original names
//! the resource, so the same artefact asked for twice is one item whose priority only rises.
//!
//! odg adds the claim the original's extensions make on the cluster directly (they are HTTP
//! clients here): `POST .../claim?service=` hands out the next item (highest priority, oldest),
//! `DELETE .../claim?name=` gives it back; a claim older than [`CLAIM_LEASE_MINUTES`] is free
//! again, as the original's backlog controller frees it.
//!
//! Writes need the `backlog-writer` role (or `admin`), or a session whose RBAC roles allow the
//! method here (the original's `writer`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use odg_delivery_db::{
    entry_id, BacklogCreation, BacklogItem, ComponentArtefactId, NewBacklogItem,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::metadata::compliance;
use crate::auth::ROLE_BACKLOG_WRITER;
use crate::params::Params;
use crate::{ApiError, AppState};

const PATH: &str = "/service-extensions/backlog-items";
const CLAIM_PATH: &str = "/service-extensions/backlog-items/claim";
/// The original's label and annotations, kept in the answer's metadata.
const LABEL_SERVICE: &str = "delivery-gear.gardener.cloud/service";
const LABEL_CLAIMED: &str = "delivery-gear.gardener.cloud/claimed";
const ANNOTATION_CLAIMED_BY: &str = "delivery-gear.gardener.cloud/claimed-by";
const ANNOTATION_CLAIMED_AT: &str = "delivery-gear.gardener.cloud/claimed-at";
/// A claim older than this is released (the original's `remove_claim_after_minutes` default).
pub const CLAIM_LEASE_MINUTES: i64 = 30;
/// Artefacts one `POST` may name, and names one `DELETE` may name.
pub const MAX_ITEMS_PER_REQUEST: usize = 1_000;

/// The original's `BacklogPriorities`.
const PRIORITIES: [(&str, i64); 5] = [
    ("NONE", 0),
    ("LOW", 1),
    ("MEDIUM", 2),
    ("HIGH", 4),
    ("CRITICAL", 8),
];

#[derive(Debug, Deserialize)]
pub struct ServiceParams {
    service: String,
}

#[derive(Debug, Deserialize)]
pub struct CreateParams {
    service: String,
    /// A priority's name, any case [default: CRITICAL].
    #[serde(default)]
    priority: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NameParams {
    name: String,
}

#[derive(Debug, Deserialize)]
pub struct NamesParams {
    #[serde(default)]
    name: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ClaimParams {
    service: String,
    /// Who claims (the original: the pod's host name) [default: the caller's subject].
    #[serde(default)]
    claimed_by: Option<String>,
}

/// A service name must be a Kubernetes label value, as the original's label selector needs.
fn checked_service(service: &str) -> Result<&str, ApiError> {
    let valid = service.len() <= 63
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && service.starts_with(|c: char| c.is_ascii_alphanumeric())
        && service.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(service)
    } else {
        Err(ApiError::bad_request(format!(
            "service {service:?} is not a valid name (at most 63 letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit)"
        ))
        .with("parameter", json!("service")))
    }
}

/// The original's resource name: `<service>-<BLAKE2s-16 of the artefact's key>`, lower case,
/// `_` as `-`.
fn item_name(service: &str, artefact: &ComponentArtefactId) -> String {
    let service = service.to_lowercase().replace('_', "-");
    format!("{service}-{}", entry_id(&artefact.key()))
}

/// An item as the original lists the resource: metadata (name, uid, labels, annotations,
/// creation time) and the spec.
fn item_json(item: BacklogItem) -> Value {
    let mut labels = Map::new();
    labels.insert(LABEL_SERVICE.into(), json!(item.service));
    if let Some(claimed) = item.claimed {
        labels.insert(
            LABEL_CLAIMED.into(),
            json!(if claimed { "True" } else { "False" }),
        );
    }
    let annotations = match &item.claim {
        Some(claim) => json!({
            ANNOTATION_CLAIMED_BY: claim.claimed_by,
            ANNOTATION_CLAIMED_AT: claim.claimed_at,
        }),
        None if item.claimed == Some(false) => json!({}),
        None => Value::Null,
    };
    json!({
        "metadata": {
            "name": item.name,
            "uid": item.uid,
            "labels": labels,
            "annotations": annotations,
            "creationTimestamp": item.creation_timestamp,
        },
        "spec": item.spec,
    })
}

fn body_object(body: &Bytes, expected: &str) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request(format!(
            "the body must be an object {expected}"
        ))),
        Err(error) => Err(ApiError::bad_request(format!(
            "the body is not JSON: {error}"
        ))),
    }
}

fn priority_named(name: &str) -> Result<i64, ApiError> {
    PRIORITIES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "priority {name:?} is not one of NONE, LOW, MEDIUM, HIGH, CRITICAL"
            ))
            .with("parameter", json!("priority"))
        })
}

/// The original's timestamps: ISO 8601 without offset, microseconds (`datetime.now().isoformat()`).
fn now_timestamp() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Claim times: fixed width, UTC, so that the lease compares them as text.
fn claim_time(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// `GET ?service=`: the service's items.
pub async fn list(
    State(state): State<AppState>,
    Params(params): Params<ServiceParams>,
) -> Result<Json<Value>, ApiError> {
    let service = checked_service(&params.service)?;
    let items = compliance(&state)?.db().backlog_items(service).await?;
    Ok(Json(Value::Array(
        items.into_iter().map(item_json).collect(),
    )))
}

/// `POST ?service=&priority=` with `{"artefacts": [ComponentArtefactId...]}`: an item per
/// artefact, or a raised priority for one that exists; 201 `{"created", "raised", "unchanged"}`.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<CreateParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    state
        .auth
        .authorize(&headers, "POST", PATH, ROLE_BACKLOG_WRITER)?;
    let service = checked_service(&params.service)?;
    let priority = priority_named(params.priority.as_deref().unwrap_or("CRITICAL"))?;
    let db = compliance(&state)?.db();
    let object = body_object(&body, "{\"artefacts\": [...]}")?;
    let artefacts = match object.get("artefacts") {
        Some(Value::Array(artefacts)) => artefacts,
        _ => return Err(ApiError::bad_request("artefacts must be a list")),
    };
    if artefacts.len() > MAX_ITEMS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "{} artefacts; at most {MAX_ITEMS_PER_REQUEST} per request",
            artefacts.len()
        )));
    }
    let timestamp = now_timestamp();
    let creation_timestamp = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut items = Vec::with_capacity(artefacts.len());
    for (index, value) in artefacts.iter().enumerate() {
        let artefact = ComponentArtefactId::from_json(value, false).map_err(|error| {
            ApiError::bad_request(format!("artefacts[{index}].{error}")).with("entry", json!(index))
        })?;
        items.push(NewBacklogItem {
            name: item_name(service, &artefact),
            uid: uuid::Uuid::new_v4().to_string(),
            service: service.to_string(),
            priority,
            timestamp: timestamp.clone(),
            spec: json!({
                "timestamp": timestamp,
                "artefact": artefact.to_json(),
                "priority": priority,
            }),
            creation_timestamp: creation_timestamp.clone(),
        });
    }
    let outcomes = db.create_backlog_items(&items).await?;
    let count = |wanted: BacklogCreation| outcomes.iter().filter(|o| **o == wanted).count();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "created": count(BacklogCreation::Created),
            "raised": count(BacklogCreation::Raised),
            "unchanged": count(BacklogCreation::Unchanged),
        })),
    )
        .into_response())
}

/// `PUT ?name=` with `{"spec": {timestamp, artefact, priority}}`: replaces the item's spec; an
/// item that no longer exists is ignored (it was processed); 204.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<NameParams>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .authorize(&headers, "PUT", PATH, ROLE_BACKLOG_WRITER)?;
    let db = compliance(&state)?.db();
    let object = body_object(&body, "{\"spec\": {...}}")?;
    let Some(Value::Object(spec)) = object.get("spec") else {
        return Err(ApiError::bad_request("spec must be an object").with("field", json!("spec")));
    };
    let field_error = |field: &str, message: String| {
        ApiError::bad_request(format!("spec.{field}: {message}"))
            .with("field", json!(format!("spec.{field}")))
    };
    let timestamp = match spec.get("timestamp") {
        Some(Value::String(text)) if parses_as_iso_time(text) => text.clone(),
        _ => {
            return Err(field_error(
                "timestamp",
                "must be an ISO 8601 date-time".into(),
            ))
        }
    };
    let priority = match spec.get("priority").and_then(Value::as_i64) {
        Some(value) if PRIORITIES.iter().any(|(_, known)| *known == value) => value,
        _ => {
            return Err(field_error(
                "priority",
                "must be one of 0, 1, 2, 4, 8 (NONE to CRITICAL)".into(),
            ))
        }
    };
    let artefact = spec
        .get("artefact")
        .ok_or_else(|| field_error("artefact", "is required".into()))
        .and_then(|value| {
            ComponentArtefactId::from_json(value, false)
                .map_err(|error| field_error("artefact", error.to_string()))
        })?;
    let mut stored = spec.clone();
    stored.insert("artefact".into(), artefact.to_json());
    db.update_backlog_item(&params.name, &Value::Object(stored), priority, &timestamp)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parses_as_iso_time(text: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(text).is_ok()
        || [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S%.f",
        ]
        .iter()
        .any(|format| chrono::NaiveDateTime::parse_from_str(text, format).is_ok())
        || text.parse::<chrono::NaiveDate>().is_ok()
}

/// `DELETE ?name=...` (repeatable, at least one): 204; absent names are fine.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<NamesParams>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .authorize(&headers, "DELETE", PATH, ROLE_BACKLOG_WRITER)?;
    if params.name.is_empty() {
        return Err(
            ApiError::bad_request("name is required (repeatable)").with("parameter", json!("name"))
        );
    }
    if params.name.len() > MAX_ITEMS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "{} names; at most {MAX_ITEMS_PER_REQUEST} per request",
            params.name.len()
        ))
        .with("parameter", json!("name")));
    }
    compliance(&state)?
        .db()
        .delete_backlog_items(&params.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../claim?service=[&claimed_by=]`: the next item, now claimed (200), or 204 when the
/// service has none free.
pub async fn claim(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<ClaimParams>,
) -> Result<Response, ApiError> {
    let principal = state
        .auth
        .authorize(&headers, "POST", CLAIM_PATH, ROLE_BACKLOG_WRITER)?;
    let service = checked_service(&params.service)?;
    let claimed_by = params.claimed_by.unwrap_or(principal.subject);
    let now = Utc::now();
    let lease_expired_before = claim_time(now - chrono::Duration::minutes(CLAIM_LEASE_MINUTES));
    let claimed = compliance(&state)?
        .db()
        .claim_backlog_item(
            service,
            &claimed_by,
            &claim_time(now),
            &lease_expired_before,
        )
        .await?;
    Ok(match claimed {
        Some(item) => Json(item_json(item)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `DELETE .../claim?name=`: the item is free again (the original's `remove_claim`); 204, or
/// 404 for an unknown item.
pub async fn release(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<NameParams>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .authorize(&headers, "DELETE", CLAIM_PATH, ROLE_BACKLOG_WRITER)?;
    if compliance(&state)?
        .db()
        .release_backlog_claim(&params.name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no backlog item {:?}",
            params.name
        )))
    }
}
