//! `GET /delivery/sprint-infos` and `GET /delivery/sprint-infos/current`: the configured sprint
//! calendar (`sprints.rs`) in the original's shapes. As in the original, neither route needs the
//! `sprints` feature: without a calendar the list is empty and there is no current sprint (400).

use axum::extract::State;
use axum::Json;
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::params::Params;
use crate::{ApiError, AppState};

/// The `/features` entry: available when a calendar is configured.
pub fn feature(state: &AppState) -> Value {
    let available = state.sprints.is_some();
    json!({"name": "sprints", "state": if available { "available" } else { "unavailable" }})
}

pub(crate) fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// `{"sprints": [Sprint...]}`: a configured list in its order, a generated calendar newest first.
pub async fn sprint_infos(State(state): State<AppState>) -> Json<Value> {
    let sprints = state
        .sprints
        .as_ref()
        .map(|calendar| calendar.sprints(today()))
        .unwrap_or_default();
    Json(json!({ "sprints": sprints }))
}

#[derive(Debug, Deserialize)]
pub struct CurrentParams {
    /// Sprints after (positive) or before (negative) the current one.
    #[serde(default)]
    offset: i64,
    /// "Today" for the computation: an ISO 8601 date or date-time (its date counts).
    #[serde(default)]
    before: Option<String>,
}

/// The sprint due on or after today (or `before`), moved by `offset` sprints; 400 when there
/// is none (no calendar, or an empty list), as the original.
pub async fn current(
    State(state): State<AppState>,
    Params(params): Params<CurrentParams>,
) -> Result<Json<Value>, ApiError> {
    let today = today();
    let reference = match params.before.as_deref() {
        None => today,
        Some(text) => parse_reference_date(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid date format: {text:?} (an ISO 8601 date, YYYY-MM-DD, or date-time)"
            ))
            .with("parameter", json!("before"))
        })?,
    };
    let sprint = state
        .sprints
        .as_ref()
        .and_then(|calendar| calendar.current(today, reference, params.offset))
        .ok_or_else(|| {
            ApiError::bad_request(format!("No sprint found for ref_date={reference}"))
        })?;
    Ok(Json(json!(sprint)))
}

/// The date of an ISO 8601 date or date-time (with or without offset), as `isoparse(..).date()`.
fn parse_reference_date(text: &str) -> Option<NaiveDate> {
    if let Ok(date) = text.parse::<NaiveDate>() {
        return Some(date);
    }
    if let Ok(date_time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(date_time.date_naive());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|date_time| date_time.date())
}
