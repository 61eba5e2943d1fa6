//! The one error type handlers return: a status and a JSON body `{"error": ..., ...}`.
//!
//! Library errors map to statuses by their kind; internals (task failures, panics) are logged
//! and answered with a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
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
        };
        if let ComponentError::Task(detail) = &error {
            tracing::error!(%detail, "internal task failed");
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "the request could not be completed",
            );
        }
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
