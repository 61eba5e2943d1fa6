//! The one error type handlers return: a status and a JSON body `{"error": ..., ...}`.
//!
//! Library errors map to statuses by their kind; internals (task failures, panics) are logged
//! and answered with a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use odg_cache::CacheError;
use odg_components::{ComponentError, ComponentErrorKind};
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Map<String, Value>,
    /// Seconds a client should wait before retrying (503s: load shedding, shared tier down).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(message.into()));
        ApiError {
            status,
            body,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure of this pod's own; the detail goes to the log, not to the caller.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An invalidation that did not reach every tier or pod after `done` had happened (rows
    /// written, this pod's entries dropped): always a 503 to retry, whatever the cache's error,
    /// because what was done is idempotent and the rest may succeed on the next attempt.
    pub fn invalidation_incomplete(done: &str, error: CacheError) -> Self {
        tracing::warn!(%error, done, "invalidation incomplete");
        let message = match &error {
            CacheError::SharedUnavailable(reason) => format!(
                "{done}, but the shared cache is unreachable, so other pods may still serve \
                 what was invalidated: {reason}; retry"
            ),
            other => format!("{done}, but the invalidation failed: {other}; retry"),
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).with_retry_after(5)
    }

    /// The original's answer when a route needs a feature this installation lacks: 400
    /// `{"error_id": "feature-inactive", "missing_features": [...]}` (the dashboard reads both).
    pub fn feature_inactive(missing_features: &[&str]) -> Self {
        let message = if missing_features.len() == 1 {
            "Feature is inactive"
        } else {
            "Features are inactive"
        };
        ApiError::bad_request(message)
            .with("error_id", json!("feature-inactive"))
            .with("missing_features", json!(missing_features))
    }

    /// Adds a field beside `error` (e.g. the path to a broken dependency).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.body.insert(key.into(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(Value::Object(self.body))).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<crate::params::ParamError> for ApiError {
    fn from(error: crate::params::ParamError) -> Self {
        let parameter = error.parameter().map(str::to_string);
        let api_error = ApiError::bad_request(error.to_string());
        match parameter {
            Some(parameter) => api_error.with("parameter", Value::String(parameter)),
            None => api_error,
        }
    }
}

impl IntoResponse for crate::params::ParamError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl From<ComponentError> for ApiError {
    fn from(error: ComponentError) -> Self {
        let status = match error.kind() {
            ComponentErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ComponentErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ComponentErrorKind::NotFound => StatusCode::NOT_FOUND,
            ComponentErrorKind::BrokenDependency => StatusCode::FAILED_DEPENDENCY,
            ComponentErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ComponentErrorKind::CorruptDescriptor | ComponentErrorKind::Upstream => {
                StatusCode::BAD_GATEWAY
            }
            ComponentErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ComponentErrorKind::Internal => {
                tracing::error!(%error, "internal task failed");
                return ApiError::internal("the request could not be completed");
            }
        };
        if status.is_server_error() {
            tracing::warn!(error = %error, "upstream failure");
        }
        let api_error = ApiError::new(status, error.to_string());
        match &error {
            ComponentError::BrokenDependency { path, .. } => api_error.with("path", json!(path)),
            ComponentError::Cycle { cycle } => api_error.with("cycle", json!(cycle)),
            _ => api_error,
        }
    }
}

impl From<odg_offload::OffloadError> for ApiError {
    fn from(error: odg_offload::OffloadError) -> Self {
        tracing::error!(%error, "offloaded job failed");
        ApiError::internal("the request could not be completed")
    }
}

/// The cache's own errors: bad selectors are the caller's (400); an unreachable shared tier is
/// a 503 to retry; anything else is this pod's (500).
impl From<CacheError> for ApiError {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::InvalidInput(message) => ApiError::bad_request(message),
            CacheError::SharedUnavailable(_) => {
                tracing::warn!(%error, "shared cache unreachable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
                    .with_retry_after(5)
            }
            CacheError::Disk(_) => {
                tracing::error!(%error, "cache failed");
                ApiError::internal("the cache failed; see the service log")
            }
        }
    }
}

impl From<odg_delivery_db::StoreError> for ApiError {
    fn from(error: odg_delivery_db::StoreError) -> Self {
        use odg_delivery_db::{StoreError, StoreErrorKind};
        match error.kind() {
            StoreErrorKind::InvalidInput => {
                let api_error = ApiError::bad_request(error.to_string());
                match &error {
                    StoreError::InvalidEntry { index, source } => api_error
                        .with("entry", json!(index))
                        .with("field", json!(source.path)),
                    _ => api_error,
                }
            }
            StoreErrorKind::Unreachable => {
                tracing::warn!(%error, "delivery DB unreachable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
                    .with_retry_after(5)
            }
            StoreErrorKind::Unavailable => {
                tracing::warn!(%error, "delivery DB unavailable");
                let retry_after = match error {
                    StoreError::PoolExhausted { .. } => 1,
                    _ => 5,
                };
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
                    .with_retry_after(retry_after)
            }
            StoreErrorKind::Internal => {
                tracing::error!(%error, "delivery DB failed");
                ApiError::internal("the delivery database failed; see the service log")
            }
            StoreErrorKind::Conflict => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
            }
            StoreErrorKind::TooLarge => {
                let api_error = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string());
                match error {
                    StoreError::BlobTooLarge { limit } => api_error.with("limit", json!(limit)),
                    _ => api_error,
                }
            }
        }
    }
}

impl From<odg_compliance::ComplianceError> for ApiError {
    fn from(error: odg_compliance::ComplianceError) -> Self {
        use odg_compliance::ComplianceError;
        match error {
            ComplianceError::Components(error) => ApiError::from(error),
            ComplianceError::Store(error) => ApiError::from(error),
            ComplianceError::Data(message) => {
                tracing::error!(%message, "stored findings contradict the finding configuration");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
            }
            ComplianceError::Cache(error) => ApiError::from(error),
            ComplianceError::Config(message) => {
                tracing::error!(%message, "compliance summary failed");
                ApiError::internal("the compliance summary failed; see the service log")
            }
        }
    }
}
