//! POST `/components/diff`: the difference of two component versions' dependency trees (see
//! [`odg_components::diff_json`] for the shape). The body is the original's:
//! `{"left_component": {"name", "version"}, "right_component": {"name", "version"}}`; a
//! malformed body is a JSON 400 naming the field. Served as a cached
//! [`odg_components::RenderedAnswer`].

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::params::VersionParam;
use crate::representation::{answer_response, Freshness, Negotiation};
use crate::routes::ocm::requested_component;
use crate::{ApiError, AppState};

/// One side of the diff.
#[derive(Debug, Deserialize)]
struct ComponentRef {
    name: String,
    version: String,
}

fn field_error(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("{field}: {message}")).with("field", json!(field))
}

/// Deserialises `object[field]` into `T`; a mistake names the field (`left_component.version`).
fn field<T: DeserializeOwned>(object: &Map<String, Value>, field: &str) -> Result<T, ApiError> {
    let value = object
        .get(field)
        .ok_or_else(|| field_error(field, "missing"))?;
    if let Value::Object(inner) = value {
        // Name the inner field when one is missing or not a string.
        for name in ["name", "version"] {
            match inner.get(name) {
                Some(Value::String(_)) => {}
                Some(_) => return Err(field_error(&format!("{field}.{name}"), "must be a string")),
                None => return Err(field_error(&format!("{field}.{name}"), "missing")),
            }
        }
    }
    T::deserialize(value).map_err(|error| field_error(field, error))
}

fn diff_request(body: &[u8]) -> Result<(ComponentRef, ComponentRef), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the body is not JSON: {error}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad_request(
            "the body must be an object {\"left_component\": {...}, \"right_component\": {...}}",
        ));
    };
    Ok((
        field(&object, "left_component")?,
        field(&object, "right_component")?,
    ))
}

pub async fn diff(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (left, right) = diff_request(&body)?;
    let resolve = |side: ComponentRef| {
        let state = state.clone();
        async move {
            let version = VersionParam(side.version);
            requested_component(&state, &side.name, Some(&version), None).await
        }
    };
    let ((left, _), (right, _)) = futures::future::try_join(resolve(left), resolve(right)).await?;
    let options = state.components.walk_options().clone();
    let answer = state
        .components
        .diff_answer(&left, &right, &options)
        .await?;
    // A POST has no conditional form here, and caches do not reuse POST answers: only the
    // coding is negotiated, and the answer says to revalidate.
    answer_response(
        &Negotiation::encoding_only(&headers),
        &answer,
        Freshness::Revalidate,
    )
    .await
}
